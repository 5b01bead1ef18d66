//! Quantized DEPTHWISE_CONV_2D (int8 per-channel, legacy uint8 per-tensor), bit-exact with
//! `reference_integer_ops::DepthwiseConvPerChannel` and `reference_ops::DepthwiseConv`.
//!
//! Filter layout `[1, KH, KW, OC]` with `OC = IC·M`; output channel `oc` reads input
//! channel `oc / M`. `M` comes from the shapes (`OC / IC`), never from the
//! `depth_multiplier` option, as in TFLite. Requantization is the same as CONV_2D's
//! (double-rounding `MultiplyByQuantizedMultiplier`), so the parameters are a
//! [`ConvQuant`] (note DEPTHWISE_CONV_2D does not reject non-zero int8 filter zero points;
//! it ignores them).
//!
//! Accumulators for a block of output channels live in a fixed-size stack array, so the
//! kernel allocates nothing and the inner loop runs over contiguous channels.

use super::conv::ConvQuant;
use super::error::{check_len, QuantError};
use super::geometry::{mul_all, ConvGeometry};
use super::params::QuantElem;

/// Output channels accumulated together for one output pixel.
const CHANNEL_BLOCK: usize = 64;

fn check_depthwise(
    g: &ConvGeometry,
    q: &ConvQuant,
    input_len: usize,
    filter_len: usize,
    bias_len: Option<usize>,
    output_len: usize,
) -> Result<usize, QuantError> {
    g.validate()?;
    if g.in_c == 0 || g.out_c % g.in_c != 0 {
        return Err(QuantError::BadGeometry(
            "depthwise output channels must be a multiple of input channels",
        ));
    }
    check_len("input", g.input_len(), input_len)?;
    let filter_needed = mul_all(&[g.filter_h, g.filter_w, g.out_c])
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
    Ok(g.out_c / g.in_c)
}

/// DEPTHWISE_CONV_2D on int8 or uint8 data (`q.filter_offset` is 0 for int8).
///
/// Layouts: input `[N, H, W, IC]`, filter `[1, KH, KW, OC]`, bias `[OC]`, output
/// `[N, OH, OW, OC]`. Processes one output row at a time (splittable across threads).
pub fn depthwise_conv2d<T: QuantElem>(
    g: &ConvGeometry,
    q: &ConvQuant,
    input: &[T],
    filter: &[T],
    bias: Option<&[i32]>,
    output: &mut [T],
) -> Result<(), QuantError> {
    let m = check_depthwise(
        g,
        q,
        input.len(),
        filter.len(),
        bias.map(<[i32]>::len),
        output.len(),
    )?;
    let row_len = g.out_w * g.out_c;
    if row_len == 0 {
        return Ok(());
    }
    let mut acc = [0_i32; CHANNEL_BLOCK];
    for (row, out_row) in output[..g.output_len()].chunks_mut(row_len).enumerate() {
        let (b, oy) = (row / g.out_h, row % g.out_h);
        for ox in 0..g.out_w {
            for c0 in (0..g.out_c).step_by(CHANNEL_BLOCK) {
                let n = CHANNEL_BLOCK.min(g.out_c - c0);
                let acc = &mut acc[..n];
                acc.fill(0);
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
                        let x_px = &input[((b * g.in_h + iy) * g.in_w + ix) * g.in_c..][..g.in_c];
                        let w = &filter[(ky * g.filter_w + kx) * g.out_c + c0..][..n];
                        if m == 1 {
                            for ((a, &w), &x) in acc.iter_mut().zip(w).zip(&x_px[c0..c0 + n]) {
                                *a = a.wrapping_add(
                                    w.to_i32()
                                        .wrapping_add(q.filter_offset)
                                        .wrapping_mul(x.to_i32().wrapping_add(q.input_offset)),
                                );
                            }
                        } else {
                            for (j, (a, &w)) in acc.iter_mut().zip(w).enumerate() {
                                let x = x_px[(c0 + j) / m];
                                *a = a.wrapping_add(
                                    w.to_i32()
                                        .wrapping_add(q.filter_offset)
                                        .wrapping_mul(x.to_i32().wrapping_add(q.input_offset)),
                                );
                            }
                        }
                    }
                }
                let out = &mut out_row[ox * g.out_c + c0..][..n];
                for (j, (o, &a)) in out.iter_mut().zip(acc.iter()).enumerate() {
                    let oc = c0 + j;
                    let a = match bias {
                        Some(bias) => a.wrapping_add(bias[oc]),
                        None => a,
                    };
                    *o = T::from_i32(q.requantize(a, oc));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::conv::tests::{random_geometry, Lcg};
    use crate::quant::fixedpoint::multiply_by_quantized_multiplier as mbqm;
    use crate::quant::params::{FusedActivation, QuantParams};

    /// The reference loop order (batch, y, x, ic, m), i64 accumulation.
    fn naive(
        g: &ConvGeometry,
        q: &ConvQuant,
        input: &[i32],
        filter: &[i32],
        bias: Option<&[i32]>,
    ) -> Vec<i32> {
        let m = g.out_c / g.in_c;
        let mut out = vec![0; g.output_len()];
        for b in 0..g.batches {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    for ic in 0..g.in_c {
                        for k in 0..m {
                            let oc = ic * m + k;
                            let mut acc = 0_i64;
                            for ky in 0..g.filter_h {
                                for kx in 0..g.filter_w {
                                    let iy = (oy * g.stride_h + ky * g.dilation_h) as i64
                                        - g.pad_top as i64;
                                    let ix = (ox * g.stride_w + kx * g.dilation_w) as i64
                                        - g.pad_left as i64;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= g.in_h as i64
                                        || ix >= g.in_w as i64
                                    {
                                        continue;
                                    }
                                    let x = input[((b * g.in_h + iy as usize) * g.in_w
                                        + ix as usize)
                                        * g.in_c
                                        + ic] as i64;
                                    let w = filter[(ky * g.filter_w + kx) * g.out_c + oc] as i64;
                                    acc +=
                                        (w + q.filter_offset as i64) * (x + q.input_offset as i64);
                                }
                            }
                            if let Some(bias) = bias {
                                acc += bias[oc] as i64;
                            }
                            let v =
                                mbqm(acc as i32, q.multipliers[oc], q.shifts[oc]) + q.output_offset;
                            out[((b * g.out_h + oy) * g.out_w + ox) * g.out_c + oc] =
                                v.max(q.act_min).min(q.act_max);
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn int8_and_uint8_match_naive() {
        let mut r = Lcg(99);
        for case in 0..60 {
            let in_c = r.range(1, 5) as usize;
            // Some cases exceed one channel block to exercise the blocking.
            let mult = if case % 7 == 0 {
                40
            } else {
                r.range(1, 3) as usize
            };
            let out_c = in_c * mult;
            let g = random_geometry(&mut r, in_c, out_c);
            let act = [FusedActivation::None, FusedActivation::Relu6][case % 2];
            let bias: Vec<i32> = (0..out_c).map(|_| r.range(-3000, 3000) as i32).collect();
            let with_bias = case % 3 != 0;
            if case % 2 == 0 {
                let scales: Vec<f32> = (0..out_c).map(|_| 0.001 + 0.02 * r.unit()).collect();
                let q = ConvQuant::new_i8(
                    QuantParams::new(0.03, r.range(-128, 127)),
                    &scales,
                    QuantParams::new(0.1 + r.unit(), r.range(-128, 127)),
                    act,
                    out_c,
                )
                .unwrap();
                let input = r.vec_i8(g.input_len(), -128, 127);
                let filter = r.vec_i8(g.filter_h * g.filter_w * out_c, -127, 127);
                let mut out = vec![0_i8; g.output_len()];
                depthwise_conv2d(
                    &g,
                    &q,
                    &input,
                    &filter,
                    with_bias.then_some(&bias[..]),
                    &mut out,
                )
                .unwrap();
                let want = naive(
                    &g,
                    &q,
                    &input.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                    &filter.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                    with_bias.then_some(&bias[..]),
                );
                assert_eq!(
                    out.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                    want,
                    "case {case}"
                );
            } else {
                let q = ConvQuant::new_u8(
                    QuantParams::new(0.03, r.range(0, 255)),
                    QuantParams::new(0.005, r.range(0, 255)),
                    None,
                    QuantParams::new(0.1 + r.unit(), r.range(0, 255)),
                    act,
                    out_c,
                )
                .unwrap();
                let input = r.vec_u8(g.input_len());
                let filter = r.vec_u8(g.filter_h * g.filter_w * out_c);
                let mut out = vec![0_u8; g.output_len()];
                depthwise_conv2d(
                    &g,
                    &q,
                    &input,
                    &filter,
                    with_bias.then_some(&bias[..]),
                    &mut out,
                )
                .unwrap();
                let want = naive(
                    &g,
                    &q,
                    &input.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                    &filter.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                    with_bias.then_some(&bias[..]),
                );
                assert_eq!(
                    out.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                    want,
                    "case {case}"
                );
            }
        }
    }

    #[test]
    fn bad_channel_ratio_is_an_error() {
        let mut r = Lcg(3);
        let g = random_geometry(&mut r, 3, 4);
        let q = ConvQuant::new_i8(
            QuantParams::new(0.1, 0),
            &[0.1],
            QuantParams::new(0.1, 0),
            FusedActivation::None,
            4,
        )
        .unwrap();
        let input = vec![0_i8; g.input_len()];
        let filter = vec![0_i8; g.filter_h * g.filter_w * 4];
        let mut out = vec![0_i8; g.output_len()];
        assert!(depthwise_conv2d(&g, &q, &input, &filter, None, &mut out).is_err());
    }
}
