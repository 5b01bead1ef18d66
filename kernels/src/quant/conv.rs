//! Quantized CONV_2D (int8 per-channel, legacy uint8 per-tensor), bit-exact with TFLite's
//! reference kernels (`reference_integer_ops::ConvPerChannel`, `reference_ops::Conv`).
//!
//! Per output element: `acc = Σ (w + w_off)·(x + x_off)` over the in-bounds taps (wrapping
//! `i32`), `+ bias`, `MultiplyByQuantizedMultiplier` (double rounding) with the channel's
//! multiplier, `+ out_zp`, clamp to the activation range.
//!
//! The int8 kernel folds the input zero point for windows that lie entirely inside the
//! input: `Σ w·(x + x_off) = Σ w·x + x_off·Σw`. Both sides are computed with wrapping
//! `i32` arithmetic, which is a ring, so the identity holds bit for bit even when
//! intermediate sums overflow; for real int8 data they do not (each term is at most
//! 128·255 in magnitude, so overflow needs more than 65 000 taps). Windows that touch the
//! padding use the direct form, because there `Σw` runs over the valid taps only.

use super::error::{check_len, QuantError};
use super::fixedpoint::{multiply_by_quantized_multiplier, quantize_multiplier};
use super::geometry::{mul_all, ConvGeometry};
use super::params::{activation_range_for, clamp_i32, FusedActivation, QuantElem, QuantParams};

/// Prepare-time parameters of a quantized convolution or depthwise convolution
/// (TFLite's `PopulateConvolutionQuantizationParams`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvQuant {
    /// `−input_zero_point`.
    pub input_offset: i32,
    /// `−filter_zero_point` (uint8 only; 0 for int8, whose weights are symmetric).
    pub filter_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// One quantized multiplier per output channel.
    pub multipliers: Vec<i32>,
    /// One shift per output channel (positive = left).
    pub shifts: Vec<i32>,
    /// Lower clamp (activation ∩ element range).
    pub act_min: i32,
    /// Upper clamp.
    pub act_max: i32,
}

impl ConvQuant {
    /// int8 activations with symmetric int8 weights, per-channel or per-tensor.
    ///
    /// Each channel's effective scale is `(f64)in · (f64)w[c] / (f64)out`; a single filter
    /// scale is broadcast to all `out_channels`. More than one scale requires exactly
    /// `out_channels` of them. Filter zero points are not used (see
    /// [`check_filter_zero_points`], which CONV_2D but not DEPTHWISE_CONV_2D applies).
    pub fn new_i8(
        input: QuantParams,
        filter_scales: &[f32],
        output: QuantParams,
        activation: FusedActivation,
        out_channels: usize,
    ) -> Result<Self, QuantError> {
        Self::new_per_channel::<i8>(input, filter_scales, output, activation, out_channels)
    }

    fn new_per_channel<T: QuantElem>(
        input: QuantParams,
        filter_scales: &[f32],
        output: QuantParams,
        activation: FusedActivation,
        out_channels: usize,
    ) -> Result<Self, QuantError> {
        if filter_scales.is_empty()
            || (filter_scales.len() > 1 && filter_scales.len() != out_channels)
        {
            return Err(QuantError::ChannelCountMismatch {
                expected: out_channels,
                got: filter_scales.len(),
            });
        }
        let mut multipliers = Vec::with_capacity(out_channels);
        let mut shifts = Vec::with_capacity(out_channels);
        for c in 0..out_channels {
            let w = if filter_scales.len() > 1 {
                filter_scales[c]
            } else {
                filter_scales[0]
            };
            let eff = f64::from(input.scale) * f64::from(w) / f64::from(output.scale);
            let (m, s) = quantize_multiplier(eff)?;
            multipliers.push(m);
            shifts.push(s);
        }
        let (act_min, act_max) = activation_range_for::<T>(activation, output)?;
        Ok(Self {
            input_offset: input.zero_point_i32()?.wrapping_neg(),
            filter_offset: 0,
            output_offset: output.zero_point_i32()?,
            multipliers,
            shifts,
            act_min,
            act_max,
        })
    }

    /// Legacy uint8: asymmetric per-tensor weights.
    ///
    /// The multiplier is `GetQuantizedConvolutionMultipler`: the product `in·w` taken in
    /// **f32**, then divided by `out` in f64. If `bias_scale` is given, TFLite's consistency
    /// check `|(f64)in·(f64)w − bias| / out ≤ 0.02` is applied.
    pub fn new_u8(
        input: QuantParams,
        filter: QuantParams,
        bias_scale: Option<f32>,
        output: QuantParams,
        activation: FusedActivation,
        out_channels: usize,
    ) -> Result<Self, QuantError> {
        let (m, s) = legacy_multiplier(input.scale, filter.scale, bias_scale, output.scale)?;
        let (act_min, act_max) = activation_range_for::<u8>(activation, output)?;
        Ok(Self {
            input_offset: input.zero_point_i32()?.wrapping_neg(),
            filter_offset: filter.zero_point_i32()?.wrapping_neg(),
            output_offset: output.zero_point_i32()?,
            multipliers: vec![m; out_channels],
            shifts: vec![s; out_channels],
            act_min,
            act_max,
        })
    }

    /// Requantizes one accumulator (bias already added) for output channel `c`.
    #[inline]
    pub(crate) fn requantize(&self, acc: i32, c: usize) -> i32 {
        let v = multiply_by_quantized_multiplier(acc, self.multipliers[c], self.shifts[c])
            .wrapping_add(self.output_offset);
        clamp_i32(v, self.act_min, self.act_max)
    }
}

/// `GetQuantizedConvolutionMultipler` plus its optional bias-scale check, as a quantized
/// multiplier. Shared by the legacy uint8 convolution paths.
pub(crate) fn legacy_multiplier(
    input_scale: f32,
    filter_scale: f32,
    bias_scale: Option<f32>,
    output_scale: f32,
) -> Result<(i32, i32), QuantError> {
    if let Some(b) = bias_scale {
        let product = f64::from(input_scale) * f64::from(filter_scale);
        let diff = (product - f64::from(b)).abs();
        let ratio = diff / f64::from(output_scale);
        if ratio.is_nan() || ratio > 0.02 {
            return Err(QuantError::BiasScaleMismatch);
        }
    }
    let product = f64::from(input_scale * filter_scale);
    if product.is_nan() || product < 0.0 {
        return Err(QuantError::MultiplierOutOfRange {
            what: "input·filter scale",
            value: product,
        });
    }
    quantize_multiplier(product / f64::from(output_scale))
}

/// CONV_2D's check that int8 weights are symmetric (all zero points 0).
pub fn check_filter_zero_points(zero_points: &[i64]) -> Result<(), QuantError> {
    if zero_points.iter().any(|&z| z != 0) {
        Err(QuantError::NonZeroFilterZeroPoint)
    } else {
        Ok(())
    }
}

/// Per-row sums of a row-major `[rows, row_len]` weight matrix (conv filters are
/// `[out_c, kh·kw·ic]`, FC weights `[units, depth]`), with wrapping `i32` addition.
///
/// Computed once at prepare time; the int8 kernels use it to fold the input zero point.
pub fn filter_row_sums<T: QuantElem>(filter: &[T], rows: usize, row_len: usize) -> Vec<i32> {
    (0..rows)
        .map(|r| {
            filter
                .get(r * row_len..(r + 1) * row_len)
                .unwrap_or(&[])
                .iter()
                .fold(0_i32, |a, &w| a.wrapping_add(w.to_i32()))
        })
        .collect()
}

/// `Σ (w + w_off)·(x + x_off)` with wrapping `i32` arithmetic.
#[inline]
pub(crate) fn dot_offset<T: QuantElem>(w: &[T], x: &[T], w_off: i32, x_off: i32) -> i32 {
    w.iter().zip(x).fold(0_i32, |acc, (&w, &x)| {
        acc.wrapping_add(
            w.to_i32()
                .wrapping_add(w_off)
                .wrapping_mul(x.to_i32().wrapping_add(x_off)),
        )
    })
}

/// `Σ w·x` over int8 with wrapping `i32` accumulation.
#[inline]
pub(crate) fn dot_i8(w: &[i8], x: &[i8]) -> i32 {
    w.iter().zip(x).fold(0_i32, |acc, (&w, &x)| {
        acc.wrapping_add(i32::from(w) * i32::from(x))
    })
}

/// Checks the conv-specific geometry (groups) and buffer lengths; returns the number of
/// input channels per group.
fn check_conv(
    g: &ConvGeometry,
    groups: usize,
    q: &ConvQuant,
    input_len: usize,
    filter_len: usize,
    bias_len: Option<usize>,
    output_len: usize,
) -> Result<usize, QuantError> {
    g.validate()?;
    if groups == 0 || g.in_c % groups != 0 || g.out_c % groups != 0 {
        return Err(QuantError::BadGeometry(
            "groups must divide in and out channels",
        ));
    }
    let fic = g.in_c / groups;
    check_len("input", g.input_len(), input_len)?;
    let filter_needed = mul_all(&[g.out_c, g.filter_h, g.filter_w, fic])
        .ok_or(QuantError::BadGeometry("size overflow"))?;
    check_len("filter", filter_needed, filter_len)?;
    check_len("output", g.output_len(), output_len)?;
    if let Some(b) = bias_len {
        check_len("bias", g.out_c, b)?;
    }
    check_len(
        "multipliers",
        g.out_c,
        q.multipliers.len().min(q.shifts.len()),
    )?;
    Ok(fic)
}

/// Accumulator of one output element by the direct form over in-bounds taps.
#[allow(clippy::too_many_arguments)]
#[inline]
fn conv_acc_direct<T: QuantElem>(
    g: &ConvGeometry,
    fic: usize,
    fpg: usize,
    q: &ConvQuant,
    input: &[T],
    filter: &[T],
    b: usize,
    oy: usize,
    ox: usize,
    oc: usize,
) -> i32 {
    let ic0 = (oc / fpg) * fic;
    let mut acc = 0_i32;
    for ky in 0..g.filter_h {
        let Some(iy) = ConvGeometry::tap(oy, g.stride_h, g.pad_top, ky, g.dilation_h, g.in_h)
        else {
            continue;
        };
        for kx in 0..g.filter_w {
            let Some(ix) = ConvGeometry::tap(ox, g.stride_w, g.pad_left, kx, g.dilation_w, g.in_w)
            else {
                continue;
            };
            let xi = ((b * g.in_h + iy) * g.in_w + ix) * g.in_c + ic0;
            let wi = ((oc * g.filter_h + ky) * g.filter_w + kx) * fic;
            acc = acc.wrapping_add(dot_offset(
                &filter[wi..wi + fic],
                &input[xi..xi + fic],
                q.filter_offset,
                q.input_offset,
            ));
        }
    }
    acc
}

/// int8 CONV_2D with per-channel requantization.
///
/// Layouts: input `[N, H, W, C]`, filter `[OC, KH, KW, C/groups]`, bias `[OC]`, output
/// `[N, OH, OW, OC]`; `filter_row_sums` from [`filter_row_sums`] with
/// `row_len = KH·KW·C/groups`. `groups` is `C / filter_dim_3` (1 for ordinary conv).
/// Work is done one output row at a time, so it can later be split across threads by
/// output rows.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_i8(
    g: &ConvGeometry,
    groups: usize,
    q: &ConvQuant,
    input: &[i8],
    filter: &[i8],
    filter_row_sums: &[i32],
    bias: Option<&[i32]>,
    output: &mut [i8],
) -> Result<(), QuantError> {
    let fic = check_conv(
        g,
        groups,
        q,
        input.len(),
        filter.len(),
        bias.map(<[i32]>::len),
        output.len(),
    )?;
    check_len("filter row sums", g.out_c, filter_row_sums.len())?;
    let fpg = g.out_c / groups;
    let row_len = g.out_w * g.out_c;
    if row_len == 0 {
        return Ok(());
    }
    for (row, out_row) in output[..g.output_len()].chunks_mut(row_len).enumerate() {
        let (b, oy) = (row / g.out_h, row % g.out_h);
        for ox in 0..g.out_w {
            let inside = q.filter_offset == 0 && g.window_inside(oy, ox);
            let out_px = &mut out_row[ox * g.out_c..(ox + 1) * g.out_c];
            for (oc, out) in out_px.iter_mut().enumerate() {
                let mut acc = if inside {
                    // Folded form: Σ w·x over the full window, then x_off·Σw.
                    let ic0 = (oc / fpg) * fic;
                    let mut dot = 0_i32;
                    for ky in 0..g.filter_h {
                        let iy = oy * g.stride_h + ky * g.dilation_h - g.pad_top;
                        for kx in 0..g.filter_w {
                            let ix = ox * g.stride_w + kx * g.dilation_w - g.pad_left;
                            let xi = ((b * g.in_h + iy) * g.in_w + ix) * g.in_c + ic0;
                            let wi = ((oc * g.filter_h + ky) * g.filter_w + kx) * fic;
                            dot = dot
                                .wrapping_add(dot_i8(&filter[wi..wi + fic], &input[xi..xi + fic]));
                        }
                    }
                    dot.wrapping_add(q.input_offset.wrapping_mul(filter_row_sums[oc]))
                } else {
                    conv_acc_direct(g, fic, fpg, q, input, filter, b, oy, ox, oc)
                };
                if let Some(bias) = bias {
                    acc = acc.wrapping_add(bias[oc]);
                }
                *out = i8::from_i32(q.requantize(acc, oc));
            }
        }
    }
    Ok(())
}

/// Legacy uint8 CONV_2D (per-tensor, asymmetric weights), same layouts as [`conv2d_i8`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_u8(
    g: &ConvGeometry,
    groups: usize,
    q: &ConvQuant,
    input: &[u8],
    filter: &[u8],
    bias: Option<&[i32]>,
    output: &mut [u8],
) -> Result<(), QuantError> {
    let fic = check_conv(
        g,
        groups,
        q,
        input.len(),
        filter.len(),
        bias.map(<[i32]>::len),
        output.len(),
    )?;
    let fpg = g.out_c / groups;
    let row_len = g.out_w * g.out_c;
    if row_len == 0 {
        return Ok(());
    }
    for (row, out_row) in output[..g.output_len()].chunks_mut(row_len).enumerate() {
        let (b, oy) = (row / g.out_h, row % g.out_h);
        for ox in 0..g.out_w {
            for oc in 0..g.out_c {
                let mut acc = conv_acc_direct(g, fic, fpg, q, input, filter, b, oy, ox, oc);
                if let Some(bias) = bias {
                    acc = acc.wrapping_add(bias[oc]);
                }
                out_row[ox * g.out_c + oc] = u8::from_i32(q.requantize(acc, oc));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::quant::fixedpoint::multiply_by_quantized_multiplier as mbqm;

    /// Small deterministic generator for test data.
    pub(crate) struct Lcg(pub u64);
    impl Lcg {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
        pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next() % ((hi - lo + 1) as u64)) as i64
        }
        pub(crate) fn vec_i8(&mut self, n: usize, lo: i64, hi: i64) -> Vec<i8> {
            (0..n).map(|_| self.range(lo, hi) as i8).collect()
        }
        pub(crate) fn vec_u8(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.range(0, 255) as u8).collect()
        }
        pub(crate) fn unit(&mut self) -> f32 {
            (self.next() % 1_000_000) as f32 / 1_000_000.0
        }
    }

    /// Straightforward conv in the shape of TFLite's reference loop, with an i64
    /// accumulator checked to stay in i32 range for these inputs.
    #[allow(clippy::too_many_arguments)]
    fn naive_conv(
        g: &ConvGeometry,
        groups: usize,
        q: &ConvQuant,
        input: &[i32],
        filter: &[i32],
        bias: Option<&[i32]>,
    ) -> Vec<i32> {
        let fic = g.in_c / groups;
        let fpg = g.out_c / groups;
        let mut out = vec![0; g.output_len()];
        for b in 0..g.batches {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    for oc in 0..g.out_c {
                        let grp = oc / fpg;
                        let mut acc: i64 = 0;
                        for ky in 0..g.filter_h {
                            for kx in 0..g.filter_w {
                                let iy =
                                    (oy * g.stride_h + ky * g.dilation_h) as i64 - g.pad_top as i64;
                                let ix = (ox * g.stride_w + kx * g.dilation_w) as i64
                                    - g.pad_left as i64;
                                if iy < 0 || ix < 0 || iy >= g.in_h as i64 || ix >= g.in_w as i64 {
                                    continue;
                                }
                                for ic in 0..fic {
                                    let x = input[((b * g.in_h + iy as usize) * g.in_w
                                        + ix as usize)
                                        * g.in_c
                                        + grp * fic
                                        + ic] as i64;
                                    let w = filter
                                        [((oc * g.filter_h + ky) * g.filter_w + kx) * fic + ic]
                                        as i64;
                                    acc +=
                                        (w + q.filter_offset as i64) * (x + q.input_offset as i64);
                                }
                            }
                        }
                        if let Some(bias) = bias {
                            acc += bias[oc] as i64;
                        }
                        let acc = i32::try_from(acc).expect("test accumulators stay in range");
                        let v = mbqm(acc, q.multipliers[oc], q.shifts[oc]) + q.output_offset;
                        out[((b * g.out_h + oy) * g.out_w + ox) * g.out_c + oc] =
                            v.max(q.act_min).min(q.act_max);
                    }
                }
            }
        }
        out
    }

    pub(crate) fn random_geometry(r: &mut Lcg, in_c: usize, out_c: usize) -> ConvGeometry {
        let (in_h, in_w) = (r.range(1, 7) as usize, r.range(1, 7) as usize);
        let (filter_h, filter_w) = (r.range(1, 3) as usize, r.range(1, 3) as usize);
        let (stride_h, stride_w) = (r.range(1, 2) as usize, r.range(1, 2) as usize);
        let (dilation_h, dilation_w) = (r.range(1, 2) as usize, r.range(1, 2) as usize);
        let same = r.range(0, 1) == 1;
        let dims = |size: usize, k: usize, s: usize, d: usize| {
            let eff = (k - 1) * d + 1;
            let out = if same {
                size.div_ceil(s)
            } else {
                (size + s).saturating_sub(eff) / s
            };
            let total = ((out.max(1) - 1) * s + eff).saturating_sub(size);
            (out, total / 2)
        };
        let (out_h, pad_top) = dims(in_h, filter_h, stride_h, dilation_h);
        let (out_w, pad_left) = dims(in_w, filter_w, stride_w, dilation_w);
        ConvGeometry {
            batches: r.range(1, 2) as usize,
            in_h,
            in_w,
            in_c,
            out_h,
            out_w,
            out_c,
            filter_h,
            filter_w,
            stride_h,
            stride_w,
            dilation_h,
            dilation_w,
            pad_top,
            pad_left,
        }
    }

    #[test]
    fn int8_conv_matches_naive() {
        let mut r = Lcg(42);
        for case in 0..60 {
            let groups = if case % 5 == 0 { 2 } else { 1 };
            let in_c = groups * r.range(1, 5) as usize;
            let out_c = groups * r.range(1, 4) as usize;
            let g = random_geometry(&mut r, in_c, out_c);
            let per_channel = case % 3 != 0;
            let scales: Vec<f32> = if per_channel {
                (0..out_c).map(|_| 0.002 + 0.02 * r.unit()).collect()
            } else {
                vec![0.01]
            };
            let input_p = QuantParams::new(0.02 + 0.05 * r.unit(), r.range(-128, 127));
            let output_p = QuantParams::new(0.05 + 0.3 * r.unit(), r.range(-128, 127));
            let act = [
                FusedActivation::None,
                FusedActivation::Relu,
                FusedActivation::Relu6,
            ][case % 3];
            let q = ConvQuant::new_i8(input_p, &scales, output_p, act, out_c).unwrap();
            let fic = in_c / groups;
            let input = r.vec_i8(g.input_len(), -128, 127);
            let filter = r.vec_i8(out_c * g.filter_h * g.filter_w * fic, -127, 127);
            let bias: Vec<i32> = (0..out_c).map(|_| r.range(-5000, 5000) as i32).collect();
            let sums = filter_row_sums(&filter, out_c, g.filter_h * g.filter_w * fic);
            let mut out = vec![0_i8; g.output_len()];
            let with_bias = case % 4 != 0;
            conv2d_i8(
                &g,
                groups,
                &q,
                &input,
                &filter,
                &sums,
                with_bias.then_some(&bias[..]),
                &mut out,
            )
            .unwrap();
            let want = naive_conv(
                &g,
                groups,
                &q,
                &input.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                &filter.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                with_bias.then_some(&bias[..]),
            );
            let got: Vec<i32> = out.iter().map(|&v| v as i32).collect();
            assert_eq!(got, want, "case {case} {g:?}");
        }
    }

    #[test]
    fn uint8_conv_matches_naive() {
        let mut r = Lcg(7);
        for case in 0..40 {
            let in_c = r.range(1, 4) as usize;
            let out_c = r.range(1, 4) as usize;
            let g = random_geometry(&mut r, in_c, out_c);
            let q = ConvQuant::new_u8(
                QuantParams::new(0.02, r.range(0, 255)),
                QuantParams::new(0.01, r.range(0, 255)),
                None,
                QuantParams::new(0.1 + r.unit(), r.range(0, 255)),
                [FusedActivation::None, FusedActivation::Relu6][case % 2],
                out_c,
            )
            .unwrap();
            let input = r.vec_u8(g.input_len());
            let filter = r.vec_u8(out_c * g.filter_h * g.filter_w * in_c);
            let bias: Vec<i32> = (0..out_c).map(|_| r.range(-5000, 5000) as i32).collect();
            let mut out = vec![0_u8; g.output_len()];
            conv2d_u8(&g, 1, &q, &input, &filter, Some(&bias), &mut out).unwrap();
            let want = naive_conv(
                &g,
                1,
                &q,
                &input.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                &filter.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                Some(&bias),
            );
            let got: Vec<i32> = out.iter().map(|&v| v as i32).collect();
            assert_eq!(got, want, "case {case}");
        }
    }

    #[test]
    fn folding_is_exact_under_wraparound() {
        // Extreme values whose products overflow i32 when summed: the folded and direct
        // forms must still agree bit for bit (wrapping arithmetic is a ring).
        let w = vec![-128_i8; 200_000];
        let x = vec![-128_i8; 200_000];
        let off = 255;
        let direct = dot_offset(&w, &x, 0, off);
        let sums = filter_row_sums(&w, 1, w.len());
        let folded = dot_i8(&w, &x).wrapping_add(off.wrapping_mul(sums[0]));
        assert_eq!(direct, folded);
        let exact = (-128_i64) * (-128 + 255) * 200_000;
        assert_ne!(i64::from(direct), exact, "the sums really do wrap");
        assert_eq!(direct, exact as i32);
    }

    #[test]
    fn multipliers_use_double_per_channel_and_f32_product_for_uint8() {
        // Per-channel: (f64)in·(f64)w/(f64)out.
        let q = ConvQuant::new_i8(
            QuantParams::new(0.1, 0),
            &[0.3, 0.7],
            QuantParams::new(0.9, 0),
            FusedActivation::None,
            2,
        )
        .unwrap();
        for (c, w) in [0.3_f32, 0.7].into_iter().enumerate() {
            let want = quantize_multiplier(0.1_f32 as f64 * w as f64 / 0.9_f32 as f64).unwrap();
            assert_eq!((q.multipliers[c], q.shifts[c]), want);
        }
        // uint8: f32 product, f64 division. 0.1·0.3 differs between f32 and f64.
        let q = ConvQuant::new_u8(
            QuantParams::new(0.1, 0),
            QuantParams::new(0.3, 0),
            None,
            QuantParams::new(0.9, 0),
            FusedActivation::None,
            1,
        )
        .unwrap();
        let want = quantize_multiplier((0.1_f32 * 0.3_f32) as f64 / 0.9_f32 as f64).unwrap();
        let other = quantize_multiplier(0.1_f32 as f64 * 0.3_f32 as f64 / 0.9_f32 as f64).unwrap();
        assert_ne!(want, other, "the test must distinguish the two formulas");
        assert_eq!((q.multipliers[0], q.shifts[0]), want);
    }

    #[test]
    fn builder_errors() {
        let p = QuantParams::new(0.1, 0);
        assert!(ConvQuant::new_i8(p, &[0.1, 0.2], p, FusedActivation::None, 3).is_err());
        assert!(ConvQuant::new_i8(p, &[], p, FusedActivation::None, 3).is_err());
        assert!(ConvQuant::new_i8(
            p,
            &[0.1],
            QuantParams::new(0.1, 1 << 40),
            FusedActivation::None,
            1
        )
        .is_err());
        assert!(check_filter_zero_points(&[0, 0, 1]).is_err());
        assert!(check_filter_zero_points(&[0, 0]).is_ok());
        assert_eq!(
            ConvQuant::new_u8(p, p, Some(0.5), p, FusedActivation::None, 1),
            Err(QuantError::BiasScaleMismatch)
        );
        assert!(ConvQuant::new_u8(p, p, Some(0.01), p, FusedActivation::None, 1).is_ok());
    }

    #[test]
    fn short_buffers_are_errors_not_panics() {
        let mut r = Lcg(1);
        let g = random_geometry(&mut r, 2, 2);
        let q = ConvQuant::new_i8(
            QuantParams::new(0.1, 0),
            &[0.1],
            QuantParams::new(0.1, 0),
            FusedActivation::None,
            2,
        )
        .unwrap();
        let input = vec![0_i8; g.input_len()];
        let filter = vec![0_i8; 2 * g.filter_h * g.filter_w * 2];
        let mut out = vec![0_i8; g.output_len()];
        assert!(conv2d_i8(&g, 1, &q, &input[1..], &filter, &[0, 0], None, &mut out).is_err());
        assert!(conv2d_i8(&g, 1, &q, &input, &filter, &[0], None, &mut out).is_err());
        assert!(conv2d_i8(&g, 3, &q, &input, &filter, &[0, 0], None, &mut out).is_err());
        assert!(conv2d_i8(&g, 1, &q, &input, &filter, &[0, 0], Some(&[1]), &mut out).is_err());
    }
}
