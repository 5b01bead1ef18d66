//! Dynamic-range ("hybrid") DEPTHWISE_CONV_2D: f32 activations, int8 symmetric weights,
//! f32 bias and output, bit-exact with the TFLite runtime of ai-edge-litert 2.3.0 on
//! x86-64 (`BUILTIN_REF`).
//!
//! What TFLite does (`depthwise_conv.cc`, `EvalHybridPerChannel`, and
//! `reference_integer_ops::DepthwiseConvHybridPerChannel`):
//! - Every batch image is quantized on its own with the *asymmetric* quantizer
//!   ([`quantize_asymmetric`](super::hybrid::quantize_asymmetric), the x86 build of `AsymmetricQuantizeFloats`), whatever the
//!   filter's quantization; there is no symmetric or per-tensor special path, unlike
//!   CONV_2D.
//! - The accumulator is `Σ w·(q − zp)` in wrapping i32, over the taps inside the input.
//! - The output is `((f32)acc · (w_s[oc] · s_in)) + bias[oc]`: the two scales are
//!   multiplied first, each operation rounded to f32, then
//!   `min(max(x, act_min), act_max)`. Filter zero points are never read.
//!
//! Filter layout `[1, KH, KW, OC]` with `OC = IC·M`; output channel `oc` reads input
//! channel `oc / M`.

use super::error::{check_len, QuantError};
use super::geometry::{mul_all, ConvGeometry};
#[cfg(test)]
use super::hybrid::quantize_asymmetric;
use super::hybrid::quantize_asymmetric_in;
use super::params::{activation_range_f32, clamp_f32, FusedActivation};
use crate::isa::Isa;

/// Output channels accumulated together for one output pixel.
const CHANNEL_BLOCK: usize = 64;

/// Prepare-time parameters of a hybrid DEPTHWISE_CONV_2D.
#[derive(Debug, Clone, PartialEq)]
pub struct HybridDepthwiseParams {
    /// One weight scale per output channel (a single per-tensor scale is broadcast).
    pub filter_scales: Vec<f32>,
    /// Float clamp from the fused activation.
    pub act_min: f32,
    /// Float clamp from the fused activation.
    pub act_max: f32,
}

impl HybridDepthwiseParams {
    /// `filter_scales` as stored: one per output channel, or a single one.
    ///
    /// TANH and SIGN_BIT give no clamp, as in TFLite's `CalculateActivationRange`.
    pub fn new(
        filter_scales: &[f32],
        out_channels: usize,
        activation: FusedActivation,
    ) -> Result<Self, QuantError> {
        let filter_scales = match filter_scales {
            [s] => vec![*s; out_channels],
            s if s.len() == out_channels => s.to_vec(),
            s => {
                return Err(QuantError::ChannelCountMismatch {
                    expected: out_channels,
                    got: s.len(),
                })
            }
        };
        let (act_min, act_max) = activation_range_f32(activation);
        Ok(Self {
            filter_scales,
            act_min,
            act_max,
        })
    }
}

/// Scratch (`i8` elements) needed by [`hybrid_depthwise_conv2d`]: one quantized batch
/// image.
pub fn hybrid_depthwise_scratch_len(g: &ConvGeometry) -> usize {
    g.in_h * g.in_w * g.in_c
}

/// Hybrid DEPTHWISE_CONV_2D.
///
/// Layouts: input `[N, H, W, IC]` f32, filter `[1, KH, KW, OC]` int8, bias `[OC]` f32,
/// output `[N, OH, OW, OC]` f32, with `OC` a multiple of `IC`; `scratch` of at least
/// [`hybrid_depthwise_scratch_len`] elements. Lengths and geometry are checked and
/// reported as errors.
pub fn hybrid_depthwise_conv2d(
    p: &HybridDepthwiseParams,
    g: &ConvGeometry,
    input: &[f32],
    filter: &[i8],
    bias: Option<&[f32]>,
    scratch: &mut [i8],
    output: &mut [f32],
) -> Result<(), QuantError> {
    hybrid_depthwise_conv2d_in(Isa::Generic, p, g, input, filter, bias, scratch, output)
}

/// [`hybrid_depthwise_conv2d`] compiled for tier `isa` (if the CPU has it): the channel
/// loops vectorize 8 lanes wide in the AVX2 copy; the results are the same.
#[allow(clippy::too_many_arguments)]
pub fn hybrid_depthwise_conv2d_in(
    isa: Isa,
    p: &HybridDepthwiseParams,
    g: &ConvGeometry,
    input: &[f32],
    filter: &[i8],
    bias: Option<&[f32]>,
    scratch: &mut [i8],
    output: &mut [f32],
) -> Result<(), QuantError> {
    #[cfg(target_arch = "x86_64")]
    if isa.or_generic() == Isa::Avx2 {
        // SAFETY: AVX2 and FMA were just confirmed.
        return unsafe { depthwise_avx2(p, g, input, filter, bias, scratch, output) };
    }
    let _ = isa;
    depthwise(Isa::Generic, p, g, input, filter, bias, scratch, output)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn depthwise_avx2(
    p: &HybridDepthwiseParams,
    g: &ConvGeometry,
    input: &[f32],
    filter: &[i8],
    bias: Option<&[f32]>,
    scratch: &mut [i8],
    output: &mut [f32],
) -> Result<(), QuantError> {
    depthwise(Isa::Avx2, p, g, input, filter, bias, scratch, output)
}

/// The kernel; `isa` picks the quantizer's loops (inlined into each tier's copy).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn depthwise(
    isa: Isa,
    p: &HybridDepthwiseParams,
    g: &ConvGeometry,
    input: &[f32],
    filter: &[i8],
    bias: Option<&[f32]>,
    scratch: &mut [i8],
    output: &mut [f32],
) -> Result<(), QuantError> {
    g.validate()?;
    if g.in_c == 0 || g.out_c % g.in_c != 0 {
        return Err(QuantError::BadGeometry(
            "depthwise output channels must be a multiple of input channels",
        ));
    }
    let m = g.out_c / g.in_c;
    let image = hybrid_depthwise_scratch_len(g);
    check_len("input", g.input_len(), input.len())?;
    let filter_needed = mul_all(&[g.filter_h, g.filter_w, g.out_c])
        .ok_or(QuantError::BadGeometry("size overflow"))?;
    check_len("filter", filter_needed, filter.len())?;
    check_len("output", g.output_len(), output.len())?;
    check_len("scratch", image, scratch.len())?;
    check_len("filter scales", g.out_c, p.filter_scales.len())?;
    if let Some(b) = bias {
        check_len("bias", g.out_c, b.len())?;
    }
    let out_image = g.out_h * g.out_w * g.out_c;
    if out_image == 0 {
        return Ok(());
    }
    let q = &mut scratch[..image];
    let mut acc = [0_i32; CHANNEL_BLOCK];
    for (b, out_b) in output[..g.output_len()].chunks_mut(out_image).enumerate() {
        let (scale, zp) = quantize_asymmetric_in(isa, &input[b * image..(b + 1) * image], q);
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let out_px = &mut out_b[(oy * g.out_w + ox) * g.out_c..][..g.out_c];
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
                            let Some(ix) = ConvGeometry::tap(
                                ox,
                                g.stride_w,
                                g.pad_left,
                                kx,
                                g.dilation_w,
                                g.in_w,
                            ) else {
                                continue;
                            };
                            let x_px = &q[(iy * g.in_w + ix) * g.in_c..][..g.in_c];
                            let w = &filter[(ky * g.filter_w + kx) * g.out_c + c0..][..n];
                            let tap = |a: &mut i32, w: i8, x: i8| {
                                *a = a.wrapping_add(
                                    i32::from(w).wrapping_mul(i32::from(x).wrapping_sub(zp)),
                                );
                            };
                            if m == 1 {
                                for ((a, &w), &x) in acc.iter_mut().zip(w).zip(&x_px[c0..c0 + n]) {
                                    tap(a, w, x);
                                }
                            } else {
                                for (j, (a, &w)) in acc.iter_mut().zip(w).enumerate() {
                                    tap(a, w, x_px[(c0 + j) / m]);
                                }
                            }
                        }
                    }
                    let out = &mut out_px[c0..c0 + n];
                    for (j, (o, &a)) in out.iter_mut().zip(acc.iter()).enumerate() {
                        let oc = c0 + j;
                        // Scales first, then the accumulator: TFLite's order of rounding.
                        let mut v = a as f32 * (p.filter_scales[oc] * scale);
                        if let Some(bias) = bias {
                            v += bias[oc];
                        }
                        *o = clamp_f32(v, p.act_min, p.act_max);
                    }
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

    fn bits(v: &[u32]) -> Vec<f32> {
        v.iter().map(|&b| f32::from_bits(b)).collect()
    }

    /// TFLite's reference loop order (batch, y, x, ic, m) with an i64 accumulator,
    /// quantizing the whole batch image first; the float epilogue written out with
    /// explicit f32 operations in TFLite's order.
    fn naive(
        p: &HybridDepthwiseParams,
        g: &ConvGeometry,
        input: &[f32],
        filter: &[i8],
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        let m = g.out_c / g.in_c;
        let image = g.in_h * g.in_w * g.in_c;
        let mut out = vec![0.0_f32; g.output_len()];
        let mut q = vec![0_i8; image];
        for b in 0..g.batches {
            let (scale, zp) = quantize_asymmetric(&input[b * image..(b + 1) * image], &mut q);
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    for ic in 0..g.in_c {
                        for k in 0..m {
                            let oc = k + ic * m;
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
                                    let x = q[(iy as usize * g.in_w + ix as usize) * g.in_c + ic]
                                        as i64;
                                    let w = filter[(ky * g.filter_w + kx) * g.out_c + oc] as i64;
                                    acc += w * (x - zp as i64);
                                }
                            }
                            let acc = i32::try_from(acc).expect("test accumulators fit i32");
                            let s: f32 = p.filter_scales[oc] * scale;
                            let mut v: f32 = acc as f32 * s;
                            if let Some(bias) = bias {
                                v += bias[oc];
                            }
                            let v = v.max(p.act_min).min(p.act_max);
                            out[((b * g.out_h + oy) * g.out_w + ox) * g.out_c + oc] = v;
                        }
                    }
                }
            }
        }
        out
    }

    /// Every tier against the portable copy on random layers: the same bits.
    #[test]
    fn tiers_match_portable_copy() {
        let mut r = Lcg(17);
        for (ic, m) in [(1, 1), (5, 1), (24, 1), (70, 1), (3, 2), (8, 3)] {
            for case in 0..4 {
                let g = random_geometry(&mut r, ic, ic * m);
                let filter = r.vec_i8(g.filter_h * g.filter_w * g.out_c, -127, 127);
                let scales: Vec<f32> = (0..g.out_c).map(|_| 0.002 + r.unit() * 0.01).collect();
                let bias: Vec<f32> = (0..g.out_c).map(|_| r.unit() - 0.5).collect();
                let input: Vec<f32> = (0..g.input_len()).map(|_| (r.unit() - 0.2) * 5.0).collect();
                let act = [FusedActivation::None, FusedActivation::Relu6][case % 2];
                let p = HybridDepthwiseParams::new(&scales, g.out_c, act).unwrap();
                let b = (case < 2).then_some(&bias[..]);
                let mut q = vec![0_i8; hybrid_depthwise_scratch_len(&g)];
                let mut want = vec![0.0_f32; g.output_len()];
                hybrid_depthwise_conv2d(&p, &g, &input, &filter, b, &mut q, &mut want).unwrap();
                for isa in Isa::available() {
                    let mut got = vec![0.0_f32; g.output_len()];
                    hybrid_depthwise_conv2d_in(isa, &p, &g, &input, &filter, b, &mut q, &mut got)
                        .unwrap();
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{g:?} {isa:?}");
                }
            }
        }
    }

    #[test]
    fn matches_naive() {
        let mut r = Lcg(7);
        for case in 0..80 {
            let in_c = r.range(1, 5) as usize;
            // Some cases exceed one channel block to exercise the blocking.
            let mult = if case % 9 == 0 {
                30
            } else {
                r.range(1, 3) as usize
            };
            let out_c = in_c * mult;
            let g = random_geometry(&mut r, in_c, out_c);
            let act = [
                FusedActivation::None,
                FusedActivation::Relu6,
                FusedActivation::Relu,
                FusedActivation::ReluN1To1,
            ][case % 4];
            let scales: Vec<f32> = if case % 5 == 0 {
                vec![0.004 + 0.01 * r.unit()]
            } else {
                (0..out_c).map(|_| 0.001 + 0.02 * r.unit()).collect()
            };
            let p = HybridDepthwiseParams::new(&scales, out_c, act).unwrap();
            let lo = -4.0 + 3.0 * r.unit();
            let span = 1.0 + 6.0 * r.unit();
            let input: Vec<f32> = (0..g.input_len()).map(|_| lo + span * r.unit()).collect();
            let filter = r.vec_i8(g.filter_h * g.filter_w * out_c, -127, 127);
            let bias: Vec<f32> = (0..out_c).map(|_| 4.0 * r.unit() - 2.0).collect();
            let bias = (case % 3 != 0).then_some(&bias[..]);
            let mut scratch = vec![0_i8; hybrid_depthwise_scratch_len(&g)];
            let mut out = vec![f32::NAN; g.output_len()];
            hybrid_depthwise_conv2d(&p, &g, &input, &filter, bias, &mut scratch, &mut out).unwrap();
            let want = naive(&p, &g, &input, &filter, bias);
            assert_eq!(
                out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "case {case}"
            );
        }
    }

    /// Input [1, 3, 4, 2], filter 2×2, depth multiplier 2, stride 1, SAME (no padding
    /// before, one row and column after), with no activation and with RELU6; expected bits
    /// from the reference interpreter (ai-edge-litert 2.3.0, `BUILTIN_REF`). Input 3 is
    /// 0.49999997, a rounding edge case of the quantizer's vector loop.
    #[test]
    fn matches_reference_interpreter() {
        let x = bits(&[
            0x4003ec13, 0xbf019e7e, 0xbec390fa, 0x3effffff, 0xc00b4127, 0xc0724d26, 0x3f7cc9d4,
            0xbfd694c1, 0xc099a093, 0xc0023fa3, 0xbf95a198, 0xc03ee993, 0xc06ecb52, 0x3dbb95ef,
            0x400f8f54, 0xbf15345c, 0xbfedf363, 0x3f766563, 0x3fe583f5, 0xbf4001bd, 0x3fae4b30,
            0x4026dc2e, 0xbf0473be, 0xc0022999,
        ]);
        let w: [i8; 16] = [
            -93, -95, 76, 0, 23, 26, 54, -120, -4, -90, -25, 109, 12, -110, 11, -94,
        ];
        let ws = bits(&[0x3cabc215, 0x3c6c8bfc, 0x3c19adff, 0x3c48571d]);
        let bias = bits(&[0x3ea6c04e, 0xbee61572, 0xbf395c40, 0x3f1379ed]);
        let want_none: [u32; 48] = [
            0xc071326c, 0x4094ec31, 0xbf2868b0, 0x3f14914b, 0xbf53a4ff, 0x40d55202, 0xbfc9810a,
            0x4001e091, 0x40bd9af8, 0x40860d21, 0xc08b348c, 0x40754775, 0xbfe4d9ec, 0xc096bede,
            0xbfe4fd33, 0xbe4b15d8, 0x411b899b, 0x40a7d20c, 0xc07f7ea5, 0x40e39b32, 0x3f7da6c7,
            0xc0985450, 0xc0176e8f, 0xc064151f, 0x41068ba0, 0x40918005, 0xbfe3bbc0, 0x40e80735,
            0xc07f80ea, 0xc035a275, 0xbf2950d9, 0xc00898fc, 0x409a3a8a, 0x4031b864, 0xbed8b16c,
            0x3fd79a78, 0xc021ca1a, 0xc01a10f6, 0x3d7d3060, 0xc050aabe, 0xc025b00e, 0xc0212e07,
            0x3de0d0a8, 0x4063d76e, 0x3fac3392, 0x3e8922e2, 0xc00b1e92, 0x3f1379ed,
        ];
        let want_relu6: [u32; 48] = [
            0x00000000, 0x4094ec31, 0x00000000, 0x3f14914b, 0x00000000, 0x40c00000, 0x00000000,
            0x4001e091, 0x40bd9af8, 0x40860d21, 0x00000000, 0x40754775, 0x00000000, 0x00000000,
            0x00000000, 0x00000000, 0x40c00000, 0x40a7d20c, 0x00000000, 0x40c00000, 0x3f7da6c7,
            0x00000000, 0x00000000, 0x00000000, 0x40c00000, 0x40918005, 0x00000000, 0x40c00000,
            0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x409a3a8a, 0x4031b864, 0x00000000,
            0x3fd79a78, 0x00000000, 0x00000000, 0x3d7d3060, 0x00000000, 0x00000000, 0x00000000,
            0x3de0d0a8, 0x4063d76e, 0x3fac3392, 0x3e8922e2, 0x00000000, 0x3f1379ed,
        ];
        let g = ConvGeometry {
            batches: 1,
            in_h: 3,
            in_w: 4,
            in_c: 2,
            out_h: 3,
            out_w: 4,
            out_c: 4,
            filter_h: 2,
            filter_w: 2,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
        };
        let mut scratch = vec![0_i8; hybrid_depthwise_scratch_len(&g)];
        for (act, want) in [
            (FusedActivation::None, want_none),
            (FusedActivation::Relu6, want_relu6),
        ] {
            let p = HybridDepthwiseParams::new(&ws, 4, act).unwrap();
            let mut y = vec![0.0_f32; g.output_len()];
            hybrid_depthwise_conv2d(&p, &g, &x, &w, Some(&bias), &mut scratch, &mut y).unwrap();
            assert_eq!(
                y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want,
                "{act:?}"
            );
        }
    }

    #[test]
    fn all_zero_input_gives_clamped_bias() {
        let g = ConvGeometry {
            batches: 1,
            in_h: 2,
            in_w: 2,
            in_c: 1,
            out_h: 2,
            out_w: 2,
            out_c: 2,
            filter_h: 1,
            filter_w: 1,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
        };
        let p = HybridDepthwiseParams::new(&[0.5, 0.25], 2, FusedActivation::Relu).unwrap();
        let mut scratch = [0_i8; 4];
        let mut out = [9.0_f32; 8];
        hybrid_depthwise_conv2d(
            &p,
            &g,
            &[0.0; 4],
            &[3, -3],
            Some(&[-1.0, 2.0]),
            &mut scratch,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [0.0, 2.0, 0.0, 2.0, 0.0, 2.0, 0.0, 2.0]);
    }

    #[test]
    fn shape_errors() {
        assert!(HybridDepthwiseParams::new(&[0.1, 0.2], 3, FusedActivation::None).is_err());
        assert!(HybridDepthwiseParams::new(&[], 3, FusedActivation::None).is_err());
        let p = HybridDepthwiseParams::new(&[0.1], 4, FusedActivation::None).unwrap();
        assert_eq!(p.filter_scales, [0.1; 4]);
        let mut r = Lcg(1);
        let g = random_geometry(&mut r, 3, 4);
        let input = vec![1.0_f32; g.input_len()];
        let filter = vec![1_i8; g.filter_h * g.filter_w * 4];
        let mut out = vec![0.0_f32; g.output_len()];
        let mut scratch = vec![0_i8; hybrid_depthwise_scratch_len(&g)];
        // 4 output channels are not a multiple of 3 input channels.
        assert!(
            hybrid_depthwise_conv2d(&p, &g, &input, &filter, None, &mut scratch, &mut out).is_err()
        );
        let g = random_geometry(&mut r, 2, 4);
        let input = vec![1.0_f32; g.input_len()];
        let filter = vec![1_i8; g.filter_h * g.filter_w * 4];
        let mut out = vec![0.0_f32; g.output_len()];
        let mut small = vec![0_i8; hybrid_depthwise_scratch_len(&g) - 1];
        assert!(
            hybrid_depthwise_conv2d(&p, &g, &input, &filter, None, &mut small, &mut out).is_err()
        );
    }
}
