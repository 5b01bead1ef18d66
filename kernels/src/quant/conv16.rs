//! int16x8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: int16 activations with zero
//! point 0, symmetric int8 weights, an optional int32 or int64 bias, int16 output.
//!
//! Facts from TFLite's reference kernels (`reference_integer_ops::ConvPerChannel`,
//! `DepthwiseConvPerChannel` and `FullyConnected[PerChannel]` for `int16_t` data, as the
//! LiteRT runtime selects them):
//!
//! - the accumulator has the bias's type: with an int32 bias (CONV_2D and
//!   FULLY_CONNECTED only) products are summed in a wrapping `i32`; with an int64 bias or
//!   none, in `i64`. DEPTHWISE_CONV_2D always uses `i64`.
//! - CONV_2D and DEPTHWISE_CONV_2D requantize with `MultiplyByQuantizedMultiplier` of the
//!   accumulator's width: the 32-bit double-rounding version for `i32`, the 64-bit one
//!   (multiplier reduced to 16 bits) for `i64`.
//! - FULLY_CONNECTED requantizes in double precision like its int8 kernel:
//!   `round_half_away((f64)acc · ((f64)in · (f64)w / (f64)out))`, then truncation to
//!   `i32` (x86 semantics for out-of-range values).
//! - Zero points of input and output are 0 (TFLite's `Prepare` enforces it), so there are
//!   no offsets; the result is clamped to the fused activation's range.

use super::error::{check_len, QuantError};
use super::fixedpoint::{
    f64_to_i32_x86, multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_i64,
    quantize_multiplier, round_half_away_f64,
};
use super::fully_connected::FcShape;
use super::geometry::{mul_all, ConvGeometry};
use super::params::{activation_range_for, clamp_i32, FusedActivation, QuantParams};

/// A constant bias of an int16x8 layer; its type selects the accumulator width.
#[derive(Debug, Clone, PartialEq)]
pub enum Bias16 {
    /// No bias: 64-bit accumulation.
    None,
    /// int32 bias: wrapping 32-bit accumulation.
    I32(Vec<i32>),
    /// int64 bias: 64-bit accumulation.
    I64(Vec<i64>),
}

impl Bias16 {
    fn len(&self) -> Option<usize> {
        match self {
            Bias16::None => None,
            Bias16::I32(b) => Some(b.len()),
            Bias16::I64(b) => Some(b.len()),
        }
    }

    /// Bias of channel `c` widened to `i64` (0 without bias). `c` must be in range.
    #[inline]
    fn get(&self, c: usize) -> i64 {
        match self {
            Bias16::None => 0,
            Bias16::I32(b) => i64::from(b[c]),
            Bias16::I64(b) => b[c],
        }
    }

    fn accumulates_in_i32(&self) -> bool {
        matches!(self, Bias16::I32(_))
    }

    /// Bytes held.
    pub fn byte_size(&self) -> usize {
        match self {
            Bias16::None => 0,
            Bias16::I32(b) => b.len() * 4,
            Bias16::I64(b) => b.len() * 8,
        }
    }
}

/// Checks the zero point TFLite requires to be 0 for int16 tensors.
pub fn check_zero_point_16(p: QuantParams) -> Result<(), QuantError> {
    if p.zero_point != 0 {
        return Err(QuantError::BadOutputParams("int16 zero points must be 0"));
    }
    Ok(())
}

/// Prepare-time parameters of an int16x8 CONV_2D or DEPTHWISE_CONV_2D.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv16Quant {
    /// One quantized multiplier per output channel.
    pub multipliers: Vec<i32>,
    /// One shift per output channel (positive = left).
    pub shifts: Vec<i32>,
    /// Lower clamp.
    pub act_min: i32,
    /// Upper clamp.
    pub act_max: i32,
}

fn channel_scale(filter_scales: &[f32], c: usize) -> f32 {
    if filter_scales.len() > 1 {
        filter_scales[c]
    } else {
        filter_scales[0]
    }
}

fn check_scale_count(filter_scales: &[f32], channels: usize) -> Result<(), QuantError> {
    if filter_scales.is_empty() || (filter_scales.len() > 1 && filter_scales.len() != channels) {
        return Err(QuantError::ChannelCountMismatch {
            expected: channels,
            got: filter_scales.len(),
        });
    }
    Ok(())
}

impl Conv16Quant {
    /// Per-channel multipliers `QuantizeMultiplier((f64)in · (f64)w[c] / (f64)out)` (one
    /// filter scale is broadcast) and the int16 activation range. Input and output zero
    /// points must be 0.
    pub fn new(
        input: QuantParams,
        filter_scales: &[f32],
        output: QuantParams,
        activation: FusedActivation,
        out_channels: usize,
    ) -> Result<Self, QuantError> {
        check_zero_point_16(input)?;
        check_zero_point_16(output)?;
        check_scale_count(filter_scales, out_channels)?;
        let mut multipliers = Vec::with_capacity(out_channels);
        let mut shifts = Vec::with_capacity(out_channels);
        for c in 0..out_channels {
            let w = channel_scale(filter_scales, c);
            let eff = f64::from(input.scale) * f64::from(w) / f64::from(output.scale);
            let (m, s) = quantize_multiplier(eff)?;
            multipliers.push(m);
            shifts.push(s);
        }
        let (act_min, act_max) = activation_range_for::<i16>(activation, output)?;
        Ok(Self {
            multipliers,
            shifts,
            act_min,
            act_max,
        })
    }

    /// Requantizes the accumulator (bias included) of channel `c`, with the rounding of
    /// the accumulator's width.
    #[inline]
    fn requantize(&self, acc: i64, acc32: bool, c: usize) -> i16 {
        let (m, s) = (self.multipliers[c], self.shifts[c]);
        let v = if acc32 {
            // Wrapping i32 accumulation equals the i64 sum truncated to 32 bits.
            multiply_by_quantized_multiplier(acc as i32, m, s)
        } else {
            multiply_by_quantized_multiplier_i64(acc, m, s)
        };
        clamp_i32(v, self.act_min, self.act_max) as i16
    }
}

fn check_common(
    g: &ConvGeometry,
    q: &Conv16Quant,
    input_len: usize,
    filter_needed: usize,
    filter_len: usize,
    bias: &Bias16,
    output_len: usize,
) -> Result<(), QuantError> {
    check_len("input", g.input_len(), input_len)?;
    check_len("filter", filter_needed, filter_len)?;
    check_len("output", g.output_len(), output_len)?;
    if let Some(b) = bias.len() {
        check_len("bias", g.out_c, b)?;
    }
    check_len(
        "multipliers",
        g.out_c,
        q.multipliers.len().min(q.shifts.len()),
    )
}

/// Runs `row(b, oy, out_row)` for every output row `(b, oy)` of `output`, split over
/// `threads` (each row is computed the same way whatever the split).
fn for_each_output_row(
    g: &ConvGeometry,
    output: &mut [i16],
    threads: usize,
    row: impl Fn(usize, usize, &mut [i16]) + Sync,
) {
    let row_len = g.out_w * g.out_c;
    if row_len == 0 || g.out_h == 0 {
        return;
    }
    crate::parallel::for_each_part(output, row_len, 1, threads, |first, part| {
        for (i, out_row) in part.chunks_exact_mut(row_len).enumerate() {
            let r = first + i;
            row(r / g.out_h, r % g.out_h, out_row);
        }
    });
}

/// int16x8 CONV_2D. Layouts: input `[N, H, W, IC]`, filter `[OC, KH, KW, IC]`, output
/// `[N, OH, OW, OC]`; taps outside the input are skipped (zero padding). Output rows are
/// split over `threads`.
pub fn conv2d_i16(
    g: &ConvGeometry,
    q: &Conv16Quant,
    input: &[i16],
    filter: &[i8],
    bias: &Bias16,
    output: &mut [i16],
    threads: usize,
) -> Result<(), QuantError> {
    g.validate()?;
    let filter_needed = mul_all(&[g.out_c, g.filter_h, g.filter_w, g.in_c])
        .ok_or(QuantError::BadGeometry("size overflow"))?;
    check_common(
        g,
        q,
        input.len(),
        filter_needed,
        filter.len(),
        bias,
        output.len(),
    )?;
    let acc32 = bias.accumulates_in_i32();
    for_each_output_row(g, output, threads, |b, oy, out_row| {
        for (ox, px) in out_row.chunks_exact_mut(g.out_c).enumerate() {
            for (oc, o) in px.iter_mut().enumerate() {
                let mut acc: i64 = 0;
                for ky in 0..g.filter_h {
                    let Some(iy) =
                        ConvGeometry::tap(oy, g.stride_h, g.pad_top, ky, g.dilation_h, g.in_h)
                    else {
                        continue;
                    };
                    for kx in 0..g.filter_w {
                        let Some(ix) =
                            ConvGeometry::tap(ox, g.stride_w, g.pad_left, kx, g.dilation_w, g.in_w)
                        else {
                            continue;
                        };
                        let xi = ((b * g.in_h + iy) * g.in_w + ix) * g.in_c;
                        let wi = ((oc * g.filter_h + ky) * g.filter_w + kx) * g.in_c;
                        let xs = &input[xi..xi + g.in_c];
                        let ws = &filter[wi..wi + g.in_c];
                        // |x·w| < 2^22, so an i32 product is exact before widening.
                        acc += xs
                            .iter()
                            .zip(ws)
                            .map(|(&x, &w)| i64::from(i32::from(x) * i32::from(w)))
                            .sum::<i64>();
                    }
                }
                acc = acc.wrapping_add(bias.get(oc));
                *o = q.requantize(acc, acc32, oc);
            }
        }
    });
    Ok(())
}

/// int16x8 DEPTHWISE_CONV_2D. Layouts: input `[N, H, W, IC]`, filter `[1, KH, KW, OC]`
/// with `OC = IC·M` (output channel `oc` reads input channel `oc / M`), output
/// `[N, OH, OW, OC]`. TFLite accumulates in `i64` whatever the bias type. Output rows are
/// split over `threads`.
pub fn depthwise_i16(
    g: &ConvGeometry,
    q: &Conv16Quant,
    input: &[i16],
    filter: &[i8],
    bias: &Bias16,
    output: &mut [i16],
    threads: usize,
) -> Result<(), QuantError> {
    g.validate()?;
    if g.in_c == 0 || g.out_c % g.in_c != 0 {
        return Err(QuantError::BadGeometry(
            "depthwise output channels must be a multiple of input channels",
        ));
    }
    let m = g.out_c / g.in_c;
    let filter_needed = mul_all(&[g.filter_h, g.filter_w, g.out_c])
        .ok_or(QuantError::BadGeometry("size overflow"))?;
    check_common(
        g,
        q,
        input.len(),
        filter_needed,
        filter.len(),
        bias,
        output.len(),
    )?;
    for_each_output_row(g, output, threads, |b, oy, out_row| {
        for (ox, px) in out_row.chunks_exact_mut(g.out_c).enumerate() {
            for (oc, o) in px.iter_mut().enumerate() {
                let ic = oc / m;
                let mut acc: i64 = 0;
                for ky in 0..g.filter_h {
                    let Some(iy) =
                        ConvGeometry::tap(oy, g.stride_h, g.pad_top, ky, g.dilation_h, g.in_h)
                    else {
                        continue;
                    };
                    for kx in 0..g.filter_w {
                        let Some(ix) =
                            ConvGeometry::tap(ox, g.stride_w, g.pad_left, kx, g.dilation_w, g.in_w)
                        else {
                            continue;
                        };
                        let x = input[((b * g.in_h + iy) * g.in_w + ix) * g.in_c + ic];
                        let w = filter[(ky * g.filter_w + kx) * g.out_c + oc];
                        acc += i64::from(x) * i64::from(w);
                    }
                }
                acc = acc.wrapping_add(bias.get(oc));
                *o = q.requantize(acc, false, oc);
            }
        }
    });
    Ok(())
}

/// Prepare-time parameters of an int16x8 FULLY_CONNECTED.
#[derive(Debug, Clone, PartialEq)]
pub struct Fc16Quant {
    /// `(f64)in · (f64)w / (f64)out`, one per unit, or a single one (per-tensor).
    pub effective_scales: Vec<f64>,
    /// `−filter_zero_point` on the per-tensor path (TFLite honours it there); 0 when
    /// per-channel (weights are assumed symmetric).
    pub filter_offset: i32,
    /// Lower clamp.
    pub act_min: i32,
    /// Upper clamp.
    pub act_max: i32,
}

impl Fc16Quant {
    /// More than one filter scale selects the per-channel path (exactly `units` scales
    /// required). Input and output zero points must be 0. `Tanh` and `SignBit` fused
    /// activations are refused (TFLite's `Prepare` does too).
    pub fn new(
        input: QuantParams,
        filter_scales: &[f32],
        filter_zero_points: &[i64],
        output: QuantParams,
        activation: FusedActivation,
        units: usize,
    ) -> Result<Self, QuantError> {
        if matches!(activation, FusedActivation::Tanh | FusedActivation::SignBit) {
            return Err(QuantError::UnsupportedActivation);
        }
        check_zero_point_16(input)?;
        check_zero_point_16(output)?;
        check_scale_count(filter_scales, units)?;
        let filter_offset = if filter_scales.len() > 1 {
            0
        } else {
            let zp = filter_zero_points.first().copied().unwrap_or(0);
            QuantParams::new(filter_scales[0], zp)
                .zero_point_i32()?
                .wrapping_neg()
        };
        let effective_scales = filter_scales
            .iter()
            .map(|&w| f64::from(input.scale) * f64::from(w) / f64::from(output.scale))
            .collect();
        let (act_min, act_max) = activation_range_for::<i16>(activation, output)?;
        Ok(Self {
            effective_scales,
            filter_offset,
            act_min,
            act_max,
        })
    }
}

/// int16x8 FULLY_CONNECTED: input `[batches, depth]`, weights `[units, depth]`, output
/// `[batches, units]` (sizes in `shape`).
pub fn fully_connected_i16(
    shape: FcShape,
    q: &Fc16Quant,
    input: &[i16],
    filter: &[i8],
    bias: &Bias16,
    output: &mut [i16],
) -> Result<(), QuantError> {
    let FcShape {
        batches,
        depth,
        units,
    } = shape;
    let mul = |a: usize, b: usize| {
        a.checked_mul(b)
            .ok_or(QuantError::BadGeometry("fully connected size overflow"))
    };
    check_len("input", mul(batches, depth)?, input.len())?;
    check_len("filter", mul(units, depth)?, filter.len())?;
    check_len("output", mul(batches, units)?, output.len())?;
    if let Some(b) = bias.len() {
        check_len("bias", units, b)?;
    }
    if q.effective_scales.is_empty()
        || (q.effective_scales.len() > 1 && q.effective_scales.len() != units)
    {
        return Err(QuantError::ChannelCountMismatch {
            expected: units,
            got: q.effective_scales.len(),
        });
    }
    let acc32 = bias.accumulates_in_i32();
    let w_off = i64::from(q.filter_offset);
    for b in 0..batches {
        let xs = &input[b * depth..(b + 1) * depth];
        for u in 0..units {
            let ws = &filter[u * depth..(u + 1) * depth];
            let mut acc: i64 = xs
                .iter()
                .zip(ws)
                .map(|(&x, &w)| (i64::from(w) + w_off) * i64::from(x))
                .fold(0_i64, i64::wrapping_add);
            acc = acc.wrapping_add(bias.get(u));
            if acc32 {
                acc = i64::from(acc as i32);
            }
            let scale = if q.effective_scales.len() > 1 {
                q.effective_scales[u]
            } else {
                q.effective_scales[0]
            };
            let v = f64_to_i32_x86(round_half_away_f64(acc as f64 * scale));
            output[b * units + u] = clamp_i32(v, q.act_min, q.act_max) as i16;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(in_h: usize, in_w: usize, in_c: usize, out_c: usize, k: usize) -> ConvGeometry {
        ConvGeometry {
            batches: 1,
            in_h,
            in_w,
            in_c,
            out_h: in_h,
            out_w: in_w,
            out_c,
            filter_h: k,
            filter_w: k,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: k / 2,
            pad_left: k / 2,
        }
    }

    #[test]
    fn conv_1x1_hand_derived() {
        // One pixel, two input channels, one output channel: acc = 1000·2 + (−500)·3 = 500,
        // + bias 100 = 600; scale in·w/out = 0.5 → 300.
        let g = geom(1, 1, 2, 1, 1);
        let q = Conv16Quant::new(
            QuantParams::new(1.0, 0),
            &[0.5],
            QuantParams::new(1.0, 0),
            FusedActivation::None,
            1,
        )
        .unwrap();
        let mut out = [0i16; 1];
        conv2d_i16(
            &g,
            &q,
            &[1000, -500],
            &[2, 3],
            &Bias16::I64(vec![100]),
            &mut out,
            1,
        )
        .unwrap();
        assert_eq!(out, [300]);
        // The same through the 32-bit accumulator path.
        conv2d_i16(
            &g,
            &q,
            &[1000, -500],
            &[2, 3],
            &Bias16::I32(vec![100]),
            &mut out,
            1,
        )
        .unwrap();
        assert_eq!(out, [300]);
    }

    #[test]
    fn conv_matches_naive_float_within_one() {
        // 3x3 SAME on a 4x5 image; compare with a float computation (rounding of the
        // 16-bit reduced multiplier may differ by at most one step).
        let g = geom(4, 5, 3, 2, 3);
        let x: Vec<i16> = (0..60)
            .map(|i| ((i * 7919) % 2001 - 1000) as i16 * 30)
            .collect();
        let w: Vec<i8> = (0..54).map(|i| ((i * 37) % 255 - 127) as i8).collect();
        let scales = [0.002_f32, 0.003];
        let (in_s, out_s) = (0.0005_f32, 0.05_f32);
        let q = Conv16Quant::new(
            QuantParams::new(in_s, 0),
            &scales,
            QuantParams::new(out_s, 0),
            FusedActivation::None,
            2,
        )
        .unwrap();
        let bias = vec![1234_i64, -4321];
        let mut out = vec![0i16; 40];
        conv2d_i16(&g, &q, &x, &w, &Bias16::I64(bias.clone()), &mut out, 1).unwrap();
        // The same rows computed by two threads.
        let mut two = vec![0i16; 40];
        conv2d_i16(&g, &q, &x, &w, &Bias16::I64(bias.clone()), &mut two, 2).unwrap();
        assert_eq!(out, two);
        for y in 0..4_i64 {
            for xx in 0..5_i64 {
                for oc in 0..2 {
                    let mut acc = bias[oc];
                    for ky in 0..3_i64 {
                        for kx in 0..3_i64 {
                            let (iy, ix) = (y + ky - 1, xx + kx - 1);
                            if !(0..4).contains(&iy) || !(0..5).contains(&ix) {
                                continue;
                            }
                            for ic in 0..3 {
                                let xv = x[((iy * 5 + ix) * 3) as usize + ic];
                                let wv = w[oc * 27 + ((ky * 3 + kx) * 3) as usize + ic];
                                acc += i64::from(xv) * i64::from(wv);
                            }
                        }
                    }
                    let real =
                        acc as f64 * f64::from(in_s) * f64::from(scales[oc]) / f64::from(out_s);
                    let expect = real.round().clamp(-32768.0, 32767.0);
                    let got = f64::from(out[((y * 5 + xx) * 2) as usize + oc]);
                    assert!((got - expect).abs() <= 1.0, "{got} vs {expect}");
                }
            }
        }
    }

    #[test]
    fn depthwise_multiplier_two_hand_derived() {
        // 1x1 image, 1 input channel, M = 2: outputs w0·x and w1·x, scale 1.
        let g = geom(1, 1, 1, 2, 1);
        let q = Conv16Quant::new(
            QuantParams::new(1.0, 0),
            &[1.0, 0.25],
            QuantParams::new(1.0, 0),
            FusedActivation::Relu,
            2,
        )
        .unwrap();
        let mut out = [0i16; 2];
        depthwise_i16(&g, &q, &[-400], &[3, -8], &Bias16::None, &mut out, 1).unwrap();
        // −1200 → relu 0; 3200·0.25 = 800.
        assert_eq!(out, [0, 800]);
    }

    #[test]
    fn fc_double_rounding_and_clamp() {
        let q = Fc16Quant::new(
            QuantParams::new(0.5, 0),
            &[0.5, 1.0],
            &[0, 0],
            QuantParams::new(1.0, 0),
            FusedActivation::None,
            2,
        )
        .unwrap();
        // Unit 0: (3·1 + 1·3)·0.25 + 0 → acc 6 → 1.5 → 2 (half away). Unit 1: acc
        // 200000·… saturates to 32767.
        let mut out = [0i16; 2];
        let shape = FcShape {
            batches: 1,
            depth: 2,
            units: 2,
        };
        fully_connected_i16(
            shape,
            &q,
            &[3, 1],
            &[1, 3, 127, 127],
            &Bias16::I64(vec![0, 200_000]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [2, 32767]);
        assert!(Fc16Quant::new(
            QuantParams::new(0.5, 3),
            &[0.5],
            &[0],
            QuantParams::new(1.0, 0),
            FusedActivation::None,
            1
        )
        .is_err());
    }

    #[test]
    fn short_buffers_are_errors() {
        let g = geom(2, 2, 1, 1, 1);
        let q = Conv16Quant::new(
            QuantParams::new(1.0, 0),
            &[1.0],
            QuantParams::new(1.0, 0),
            FusedActivation::None,
            1,
        )
        .unwrap();
        let mut out = [0i16; 4];
        assert!(conv2d_i16(&g, &q, &[0; 3], &[1], &Bias16::None, &mut out, 1).is_err());
        assert!(depthwise_i16(&g, &q, &[0; 4], &[1], &Bias16::I64(vec![]), &mut out, 1).is_err());
    }
}
