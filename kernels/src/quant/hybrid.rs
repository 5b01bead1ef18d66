//! Dynamic-range ("hybrid") FULLY_CONNECTED and CONV_2D: f32 activations, int8 symmetric
//! weights, bit-exact with the TFLite runtime of ai-edge-litert 2.3.0 on x86-64.
//!
//! The float input is quantized on the fly, per row (FC: each input row; CONV: each whole
//! batch image). On x86 TFLite's `tensor_utils` quantizers are the NEON versions compiled
//! through the NEON_2_SSE translation layer, and their arithmetic differs from the portable
//! C++ in three observable ways, all reproduced here (and checked against the reference
//! interpreter):
//! - asymmetric scale: `(f64)(f32)(max − min) / 255` (the difference is taken in f32);
//! - `1/scale` is computed in f64 and rounded to f32;
//! - the first `n & !7` elements are rounded by `trunc(x ± 0.5)` evaluated in f32 (so
//!   0.49999997 rounds to 1), the remaining ones by `roundf`; asymmetric quantization adds
//!   the zero point after rounding.
//!
//! Which quantization is used:
//! - FULLY_CONNECTED honours `asymmetric_quantize_inputs`.
//! - CONV_2D ignores that option: with per-channel weights whose scales are not all
//!   equal (or with groups > 1) it uses the asymmetric quantizer and the reference
//!   per-channel kernel; otherwise the symmetric quantizer and `optimized_ops::HybridConv`
//!   (the reference registration calls it too).
//!
//! Outputs: FC `bias + (f32)(Σw·q − zp·Σw) · (w_s[c]·s_in)`, then the fused activation;
//! CONV per-channel `((f32)acc · w_s[c]) · s_in + bias`, CONV per-tensor
//! `(0 + (f32)acc · (s_in·w_s)) + bias`, then the clamp — each product and sum rounded to
//! f32 separately (no fused multiply-add).

use super::conv::filter_row_sums;
use super::error::{check_len, QuantError};
use super::fixedpoint::{f32_to_i32_x86, f64_to_i32_x86};
use super::fully_connected::FcShape;
use super::geometry::{mul_all, ConvGeometry};
use super::params::{activation_range_f32, clamp_f32, FusedActivation};
use crate::isa::Isa;

/// Elements handled by the vector loop of the quantizers (blocks of 8).
#[inline]
fn vector_part(n: usize) -> usize {
    n & !7
}

/// NEON_2_SSE's `RoundToNearest`: add ±0.5 in f32, then truncate (x86 conversion).
#[inline]
fn round_vector_lane(x: f32) -> i32 {
    let half = if x < 0.0 { -0.5 } else { 0.5 };
    f32_to_i32_x86(x + half)
}

/// Asymmetric int8 quantization of one row (`tensor_utils::AsymmetricQuantizeFloats` as
/// built for x86). Returns `(scale, zero_point)`; an all-zero (or empty) row gives scale 1,
/// zero point 0 and zeros.
pub fn quantize_asymmetric(values: &[f32], out: &mut [i8]) -> (f32, i32) {
    quantize_asymmetric_in(Isa::Generic, values, out)
}

/// [`quantize_asymmetric`] with the vector loops of tier `isa` (the same results).
pub(crate) fn quantize_asymmetric_in(isa: Isa, values: &[f32], out: &mut [i8]) -> (f32, i32) {
    let n = values.len().min(out.len());
    let (values, out) = (&values[..n], &mut out[..n]);
    let (min, max) = min_max(isa, values, 0.0, 0.0);
    if min == max {
        out.fill(0);
        return (1.0, 0);
    }
    let scale = f64::from(max - min) / 255.0;
    let (rmin, rmax) = (f64::from(min), f64::from(max));
    let zp_from_min = -128.0 - rmin / scale;
    let zp_from_max = 127.0 - rmax / scale;
    let err_min = 128.0 + (rmin / scale).abs();
    let err_max = 127.0 + (rmax / scale).abs();
    let zp_f = if err_min < err_max {
        zp_from_min
    } else {
        zp_from_max
    };
    let zero_point = if zp_f <= -128.0 {
        -128
    } else if zp_f >= 127.0 {
        127
    } else {
        i32::from(f64_to_i32_x86(zp_f.round()) as i8)
    };
    let scale_f = scale as f32;
    let inv = if scale_f == 0.0 {
        0.0
    } else {
        (1.0 / f64::from(scale_f)) as f32
    };
    let nv = vector_part(n);
    round_vector_part(isa, &values[..nv], inv, zero_point, -128, &mut out[..nv]);
    for (o, &v) in out[nv..].iter_mut().zip(&values[nv..]) {
        let q = f32_to_i32_x86(zero_point as f32 + (v * inv).round());
        *o = q.clamp(-128, 127) as i8;
    }
    (scale_f, zero_point)
}

/// Symmetric int8 quantization of one row (`tensor_utils::SymmetricQuantizeFloats` as
/// built for x86): `scale = max|x| / 127`, values in `[−127, 127]`. An all-zero (or empty)
/// row gives scale 1 and zeros.
pub fn quantize_symmetric(values: &[f32], out: &mut [i8]) -> f32 {
    quantize_symmetric_in(Isa::Generic, values, out)
}

/// [`quantize_symmetric`] with the vector loops of tier `isa` (the same results).
pub(crate) fn quantize_symmetric_in(isa: Isa, values: &[f32], out: &mut [i8]) -> f32 {
    let n = values.len().min(out.len());
    let (values, out) = (&values[..n], &mut out[..n]);
    let Some(&first) = values.first() else {
        return 1.0;
    };
    let (min, max) = min_max(isa, values, first, first);
    // std::max(|min|, |max|).
    let range = if min.abs() < max.abs() {
        max.abs()
    } else {
        min.abs()
    };
    if range == 0.0 {
        out.fill(0);
        return 1.0;
    }
    let scale = range / 127.0;
    let inv = 127.0 / range;
    let nv = vector_part(n);
    round_vector_part(isa, &values[..nv], inv, 0, -127, &mut out[..nv]);
    for (o, &v) in out[nv..].iter_mut().zip(&values[nv..]) {
        *o = f32_to_i32_x86((v * inv).round()).clamp(-127, 127) as i8;
    }
    scale
}

/// `Σ a[i]·b[i]`, wrapping in `i32`.
/// [`dot_i8`] of `x` with each of the `sums.len()` rows of `w` (`depth` values each).
fn dots_i8(isa: Isa, x: &[i8], w: &[i8], depth: usize, sums: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.or_generic() == Isa::Avx2 {
        assert!(x.len() >= depth && w.len() >= sums.len() * depth);
        // SAFETY: AVX2 was just confirmed, and the lengths asserted.
        return unsafe { crate::x86::hquant::dots_i8(x, w, depth, sums) };
    }
    for (u, s) in sums.iter_mut().enumerate() {
        *s = dot_i8(isa, &x[..depth], &w[u * depth..(u + 1) * depth]);
    }
}

fn dot_i8(isa: Isa, a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if isa.or_generic() == Isa::Avx2 {
        // SAFETY: AVX2 was just confirmed.
        return unsafe { crate::x86::hquant::dot_i8(a, b) };
    }
    let _ = isa;
    a.iter().zip(b).fold(0_i32, |s, (&a, &b)| {
        s.wrapping_add(i32::from(a) * i32::from(b))
    })
}

/// The row's range by `v < min`, `max < v` from `(min0, max0)` (NaN values skipped).
fn min_max(isa: Isa, values: &[f32], min0: f32, max0: f32) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if isa.or_generic() == Isa::Avx2 {
        // SAFETY: AVX2 was just confirmed.
        return unsafe { crate::x86::hquant::min_max(values, min0, max0) };
    }
    let _ = isa;
    let (mut min, mut max) = (min0, max0);
    for &v in values {
        if v < min {
            min = v;
        }
        if max < v {
            max = v;
        }
    }
    (min, max)
}

/// The quantizers' vector loop (a multiple of 8 values): `clamp(round(x·inv) + zp, lo,
/// 127)` with NEON_2_SSE's rounding.
fn round_vector_part(isa: Isa, values: &[f32], inv: f32, zp: i32, lo: i32, out: &mut [i8]) {
    #[cfg(target_arch = "x86_64")]
    if isa.or_generic() == Isa::Avx2 {
        // SAFETY: AVX2 was just confirmed; `values` is a multiple of 8 long and `out` as
        // long (callers pass equal slices of `vector_part` length).
        return unsafe { crate::x86::hquant::round_blocks(values, inv, zp, lo, 127, out) };
    }
    let _ = isa;
    for (o, &v) in out.iter_mut().zip(values) {
        *o = round_vector_lane(v * inv).wrapping_add(zp).clamp(lo, 127) as i8;
    }
}

/// `ApplyActivationToVector` as used by the hybrid FC (C++ `std::max`/`std::min`
/// argument order, which decides the sign of zero). Tanh uses `f32::tanh`, which is
/// not bit-identical to TFLite's Eigen approximation.
#[inline]
fn apply_vector_activation(activation: FusedActivation, x: f32) -> f32 {
    let max = |a: f32, b: f32| if a < b { b } else { a };
    let min = |a: f32, b: f32| if b < a { b } else { a };
    match activation {
        FusedActivation::None => x,
        FusedActivation::Relu => max(0.0, x),
        FusedActivation::ReluN1To1 => max(-1.0, min(x, 1.0)),
        FusedActivation::Relu6 => max(0.0, min(x, 6.0)),
        FusedActivation::Tanh => x.tanh(),
        FusedActivation::SignBit => {
            if x.is_sign_negative() {
                1.0
            } else {
                0.0
            }
        }
    }
}

/// Prepare-time parameters of a hybrid FULLY_CONNECTED.
#[derive(Debug, Clone, PartialEq)]
pub struct HybridFcParams {
    /// Per-unit weight scales, or a single per-tensor scale.
    pub filter_scales: Vec<f32>,
    /// The `asymmetric_quantize_inputs` option.
    pub asymmetric_inputs: bool,
    /// The fused activation (all of TFLite's are accepted on the hybrid path).
    pub activation: FusedActivation,
}

impl HybridFcParams {
    /// More than one scale means per-channel (exactly `units` needed).
    pub fn new(
        filter_scales: &[f32],
        units: usize,
        asymmetric_inputs: bool,
        activation: FusedActivation,
    ) -> Result<Self, QuantError> {
        if filter_scales.is_empty() || (filter_scales.len() > 1 && filter_scales.len() != units) {
            return Err(QuantError::ChannelCountMismatch {
                expected: units,
                got: filter_scales.len(),
            });
        }
        Ok(Self {
            filter_scales: filter_scales.to_vec(),
            asymmetric_inputs,
            activation,
        })
    }
}

/// Scratch (`i8` elements) needed by [`hybrid_fully_connected`]: one quantized input row.
pub fn hybrid_fc_scratch_len(shape: FcShape) -> usize {
    shape.depth
}

/// Hybrid FULLY_CONNECTED. Weights `[units, depth]` int8; `filter_row_sums` from
/// [`filter_row_sums`]`(filter, units, depth)`; `scratch` of at least
/// [`hybrid_fc_scratch_len`] elements. An all-zero input tensor short-circuits to
/// `activation(bias)`, as in TFLite.
#[allow(clippy::too_many_arguments)]
pub fn hybrid_fully_connected(
    p: &HybridFcParams,
    shape: FcShape,
    input: &[f32],
    filter: &[i8],
    filter_row_sums: &[i32],
    bias: Option<&[f32]>,
    scratch: &mut [i8],
    output: &mut [f32],
) -> Result<(), QuantError> {
    hybrid_fully_connected_in(
        Isa::Generic,
        p,
        shape,
        input,
        filter,
        filter_row_sums,
        bias,
        scratch,
        output,
    )
}

/// [`hybrid_fully_connected`] with the vector loops of tier `isa` (the same results).
#[allow(clippy::too_many_arguments)]
pub fn hybrid_fully_connected_in(
    isa: Isa,
    p: &HybridFcParams,
    shape: FcShape,
    input: &[f32],
    filter: &[i8],
    filter_row_sums: &[i32],
    bias: Option<&[f32]>,
    scratch: &mut [i8],
    output: &mut [f32],
) -> Result<(), QuantError> {
    let FcShape {
        batches,
        depth,
        units,
    } = shape;
    let n_in = batches
        .checked_mul(depth)
        .ok_or(QuantError::BadGeometry("fully connected size overflow"))?;
    let n_out = batches
        .checked_mul(units)
        .ok_or(QuantError::BadGeometry("fully connected size overflow"))?;
    check_len("input", n_in, input.len())?;
    check_len(
        "filter",
        units
            .checked_mul(depth)
            .ok_or(QuantError::BadGeometry("fully connected size overflow"))?,
        filter.len(),
    )?;
    check_len("output", n_out, output.len())?;
    check_len("filter row sums", units, filter_row_sums.len())?;
    check_len("scratch", depth, scratch.len())?;
    if let Some(b) = bias {
        check_len("bias", units, b.len())?;
    }
    if p.filter_scales.len() != 1 && p.filter_scales.len() != units {
        return Err(QuantError::ChannelCountMismatch {
            expected: units,
            got: p.filter_scales.len(),
        });
    }
    if units == 0 {
        return Ok(());
    }
    let output = &mut output[..n_out];
    for row in output.chunks_mut(units) {
        match bias {
            Some(b) => row.copy_from_slice(&b[..units]),
            None => row.fill(0.0),
        }
    }
    let all_zero = input[..n_in].iter().all(|&v| v == 0.0);
    if !all_zero {
        let per_channel = p.filter_scales.len() > 1;
        let q = &mut scratch[..depth];
        for (b, out_row) in output.chunks_mut(units).enumerate() {
            let x = &input[b * depth..(b + 1) * depth];
            let (scale, zp) = if p.asymmetric_inputs {
                quantize_asymmetric_in(isa, x, q)
            } else {
                (quantize_symmetric_in(isa, x, q), 0)
            };
            let tensor_scale = scale * p.filter_scales[0];
            // Units in blocks: their dot products in one call, then each step of the
            // epilogue over the whole block (loops that vectorize).
            let mut dots = [0_i32; UNIT_BLOCK];
            for (blk, o_blk) in out_row.chunks_mut(UNIT_BLOCK).enumerate() {
                let (u0, n) = (blk * UNIT_BLOCK, o_blk.len());
                let dots = &mut dots[..n];
                dots_i8(isa, q, &filter[u0 * depth..(u0 + n) * depth], depth, dots);
                if zp != 0 {
                    for (d, &rs) in dots.iter_mut().zip(&filter_row_sums[u0..u0 + n]) {
                        *d = d.wrapping_sub(zp.wrapping_mul(rs));
                    }
                }
                if per_channel {
                    let fs = &p.filter_scales[u0..u0 + n];
                    for ((o, &d), &f) in o_blk.iter_mut().zip(dots.iter()).zip(fs) {
                        *o += d as f32 * (f * scale);
                    }
                } else {
                    for (o, &d) in o_blk.iter_mut().zip(dots.iter()) {
                        *o += d as f32 * tensor_scale;
                    }
                }
            }
        }
    }
    if p.activation != FusedActivation::None {
        for o in output.iter_mut() {
            *o = apply_vector_activation(p.activation, *o);
        }
    }
    Ok(())
}

/// Units of a hybrid FULLY_CONNECTED whose dot products one call computes.
const UNIT_BLOCK: usize = 64;

/// Prepare-time parameters of a hybrid CONV_2D.
#[derive(Debug, Clone, PartialEq)]
pub struct HybridConvParams {
    /// Per-output-channel weight scales (a single scale is broadcast).
    pub filter_scales: Vec<f32>,
    /// Asymmetric per-channel path (scales differ, or groups > 1) versus symmetric
    /// per-tensor path.
    pub per_channel: bool,
    /// Float clamp from the fused activation.
    pub act_min: f32,
    /// Float clamp from the fused activation.
    pub act_max: f32,
}

impl HybridConvParams {
    /// `filter_scales` as stored (one, or `out_channels`).
    pub fn new(
        filter_scales: &[f32],
        out_channels: usize,
        groups: usize,
        activation: FusedActivation,
    ) -> Result<Self, QuantError> {
        if filter_scales.is_empty()
            || (filter_scales.len() > 1 && filter_scales.len() != out_channels)
        {
            return Err(QuantError::ChannelCountMismatch {
                expected: out_channels,
                got: filter_scales.len(),
            });
        }
        if groups != 1 && filter_scales.len() != out_channels {
            // TFLite's Prepare rejects grouped hybrid convolutions without per-channel
            // scales (checked against the reference interpreter).
            return Err(QuantError::ChannelCountMismatch {
                expected: out_channels,
                got: filter_scales.len(),
            });
        }
        let scales_differ = filter_scales.iter().any(|&s| s != filter_scales[0]);
        let filter_scales = if filter_scales.len() == 1 {
            vec![filter_scales[0]; out_channels]
        } else {
            filter_scales.to_vec()
        };
        let (act_min, act_max) = activation_range_f32(activation);
        Ok(Self {
            filter_scales,
            per_channel: scales_differ || groups != 1,
            act_min,
            act_max,
        })
    }
}

/// Scratch (`i8` elements) needed by [`hybrid_conv2d`]: one quantized batch image.
pub fn hybrid_conv_scratch_len(g: &ConvGeometry) -> usize {
    g.in_h * g.in_w * g.in_c
}

/// Hybrid CONV_2D. Filter `[OC, KH, KW, C/groups]` int8, bias `[OC]` f32, `scratch` of
/// at least [`hybrid_conv_scratch_len`] elements.
#[allow(clippy::too_many_arguments)]
pub fn hybrid_conv2d(
    p: &HybridConvParams,
    g: &ConvGeometry,
    groups: usize,
    input: &[f32],
    filter: &[i8],
    bias: Option<&[f32]>,
    scratch: &mut [i8],
    output: &mut [f32],
) -> Result<(), QuantError> {
    g.validate()?;
    if groups == 0 || g.in_c % groups != 0 || g.out_c % groups != 0 {
        return Err(QuantError::BadGeometry(
            "groups must divide in and out channels",
        ));
    }
    let fic = g.in_c / groups;
    let fpg = g.out_c / groups;
    let image = hybrid_conv_scratch_len(g);
    check_len("input", g.input_len(), input.len())?;
    let filter_needed = mul_all(&[g.out_c, g.filter_h, g.filter_w, fic])
        .ok_or(QuantError::BadGeometry("size overflow"))?;
    check_len("filter", filter_needed, filter.len())?;
    check_len("output", g.output_len(), output.len())?;
    check_len("scratch", image, scratch.len())?;
    check_len("filter scales", g.out_c, p.filter_scales.len())?;
    if let Some(b) = bias {
        check_len("bias", g.out_c, b.len())?;
    }
    let q = &mut scratch[..image];
    let out_image = g.out_h * g.out_w * g.out_c;
    for b in 0..g.batches {
        let x = &input[b * image..(b + 1) * image];
        let (scale, zp) = if p.per_channel {
            quantize_asymmetric(x, q)
        } else {
            (quantize_symmetric(x, q), 0)
        };
        let tensor_scale = scale * p.filter_scales[0];
        let out_b = &mut output[b * out_image..(b + 1) * out_image];
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                for oc in 0..g.out_c {
                    let ic0 = (oc / fpg) * fic;
                    let mut acc = 0_i32;
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
                            let xq = &q[(iy * g.in_w + ix) * g.in_c + ic0..][..fic];
                            let w =
                                &filter[((oc * g.filter_h + ky) * g.filter_w + kx) * fic..][..fic];
                            for (&w, &xq) in w.iter().zip(xq) {
                                acc = acc.wrapping_add(
                                    i32::from(w).wrapping_mul(i32::from(xq).wrapping_sub(zp)),
                                );
                            }
                        }
                    }
                    let o = &mut out_b[(oy * g.out_w + ox) * g.out_c + oc];
                    *o = if p.per_channel {
                        let mut v = acc as f32 * p.filter_scales[oc] * scale;
                        if let Some(bias) = bias {
                            v += bias[oc];
                        }
                        clamp_f32(v, p.act_min, p.act_max)
                    } else {
                        let v = 0.0 + acc as f32 * tensor_scale;
                        match bias {
                            // The optimized path clamps only when there is a bias.
                            Some(bias) => clamp_f32(v + bias[oc], p.act_min, p.act_max),
                            None => v,
                        }
                    };
                }
            }
        }
    }
    Ok(())
}

/// Row sums for [`hybrid_fully_connected`] (same as the integer FC's).
pub fn hybrid_fc_row_sums(filter: &[i8], shape: FcShape) -> Vec<i32> {
    filter_row_sums(filter, shape.units, shape.depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(v: &[u32]) -> Vec<f32> {
        v.iter().map(|&b| f32::from_bits(b)).collect()
    }

    /// FC with identity weights (scale 1) makes the output equal the quantized input
    /// (times its scale, 1 here). Reference-interpreter outputs (ai-edge-litert 2.3.0,
    /// `BUILTIN_REF`): 0.49999997 rounds to 1 in the first 8 elements (vector loop) and to
    /// 0 in the tail (`roundf`).
    #[test]
    fn quantizer_rounding_matches_reference_interpreter() {
        let k = 13;
        let mut eye = vec![0_i8; k * k];
        for i in 0..k {
            eye[i * k + i] = 1;
        }
        let shape = FcShape {
            batches: 1,
            depth: k,
            units: k,
        };
        let sums = hybrid_fc_row_sums(&eye, shape);
        let h = 0.499_999_97_f32;
        let mut scratch = vec![0_i8; k];
        let mut y = vec![0.0_f32; k];

        let x = [
            127.0, h, 2.5, -2.5, -h, 0.0, 0.0, 0.0, h, 2.5, -2.5, -h, 0.0,
        ];
        let p = HybridFcParams::new(&[1.0], k, false, FusedActivation::None).unwrap();
        hybrid_fully_connected(&p, shape, &x, &eye, &sums, None, &mut scratch, &mut y).unwrap();
        assert_eq!(
            y,
            [127.0, 1.0, 3.0, -3.0, -1.0, 0.0, 0.0, 0.0, 0.0, 3.0, -3.0, 0.0, 0.0]
        );

        let x = [
            255.0,
            h,
            2.5,
            1.499_999_9,
            0.5,
            0.0,
            0.0,
            0.0,
            h,
            2.5,
            1.499_999_9,
            0.5,
            0.0,
        ];
        let p = HybridFcParams::new(&[1.0], k, true, FusedActivation::None).unwrap();
        hybrid_fully_connected(&p, shape, &x, &eye, &sums, None, &mut scratch, &mut y).unwrap();
        assert_eq!(
            y,
            [255.0, 1.0, 3.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 3.0, 1.0, 1.0, 0.0]
        );
    }

    /// Random per-channel asymmetric FC with RELU; expected bits from the reference
    /// interpreter.
    #[test]
    fn fc_matches_reference_interpreter() {
        let x = bits(&[
            0xc05e7f83, 0xc02b171c, 0xc02e38bf, 0xbf340729, 0xc0940156, 0xbec16e44, 0xbff50cfa,
            0x3fe4c2fb, 0x3ff4f3f1, 0x40323585, 0x3fc478ec, 0xbdd935c1, 0x3fdc1b75, 0x4040b39b,
            0xbfa751f9, 0x3f9c3ff9, 0xbdaecac0, 0x40385278, 0xbfd63ec1, 0xbf1a6451, 0x3f398472,
            0x3f042707, 0xc051d96e, 0x3f386644, 0xbe72aeec, 0xbef58076,
        ]);
        let w: [i8; 39] = [
            -16, -27, 124, -27, 66, 30, -29, -12, -108, 27, -26, -71, -86, -93, 101, -44, 95, -103,
            -110, -34, 119, -10, 51, 56, 29, 94, -44, -114, -89, 116, -101, 56, -13, 125, 115, -97,
            -124, -32, -21,
        ];
        let ws = bits(&[0x3c84c761, 0x3c1e5be5, 0x3c407d0d]);
        let bias = bits(&[0xbe20855a, 0xbf9124c5, 0x3d933b6b]);
        let want = bits(&[
            0x00000000, 0x41329f29, 0x4145277c, 0x40333c0b, 0x00000000, 0x00000000,
        ]);
        let shape = FcShape {
            batches: 2,
            depth: 13,
            units: 3,
        };
        let p = HybridFcParams::new(&ws, 3, true, FusedActivation::Relu).unwrap();
        let sums = hybrid_fc_row_sums(&w, shape);
        let mut scratch = vec![0_i8; hybrid_fc_scratch_len(shape)];
        let mut y = vec![0.0_f32; 6];
        hybrid_fully_connected(&p, shape, &x, &w, &sums, Some(&bias), &mut scratch, &mut y)
            .unwrap();
        assert_eq!(
            y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    /// The vector tiers against the portable loops on random FCs: the same bits.
    #[test]
    fn fc_tiers_match_portable_loops() {
        let mut r = crate::quant::conv::tests::Lcg(21);
        for (case, (batches, depth, units)) in [
            (1, 5, 3),
            (3, 16, 7),
            (2, 47, 9),
            (4, 130, 33),
            (1, 1, 1),
            (2, 32, 70),
        ]
        .into_iter()
        .enumerate()
        {
            let shape = FcShape {
                batches,
                depth,
                units,
            };
            let w = r.vec_i8(units * depth, -127, 127);
            let x: Vec<f32> = (0..batches * depth)
                .map(|_| (r.unit() - 0.3) * 8.0)
                .collect();
            let sums = hybrid_fc_row_sums(&w, shape);
            let scales: Vec<f32> = (0..units).map(|_| 0.001 + r.unit() * 0.01).collect();
            let bias: Vec<f32> = (0..units).map(|_| r.unit() - 0.5).collect();
            for asymmetric in [false, true] {
                let p =
                    HybridFcParams::new(&scales, units, asymmetric, FusedActivation::Relu).unwrap();
                let mut scratch = vec![0_i8; hybrid_fc_scratch_len(shape)];
                let mut want = vec![0.0_f32; batches * units];
                let b = (case % 2 == 0).then_some(&bias[..]);
                hybrid_fully_connected(&p, shape, &x, &w, &sums, b, &mut scratch, &mut want)
                    .unwrap();
                for isa in Isa::available() {
                    let mut got = vec![0.0_f32; batches * units];
                    hybrid_fully_connected_in(
                        isa,
                        &p,
                        shape,
                        &x,
                        &w,
                        &sums,
                        b,
                        &mut scratch,
                        &mut got,
                    )
                    .unwrap();
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "case {case} {isa:?}");
                }
            }
        }
    }

    fn conv_geometry() -> ConvGeometry {
        // Input [1, 4, 3, 2], filter 2×2, SAME padding, stride 1 → output [1, 4, 3, 3].
        ConvGeometry {
            batches: 1,
            in_h: 4,
            in_w: 3,
            in_c: 2,
            out_h: 4,
            out_w: 3,
            out_c: 3,
            filter_h: 2,
            filter_w: 2,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
        }
    }

    #[test]
    fn conv_per_channel_matches_reference_interpreter() {
        let x = bits(&[
            0xc013471e, 0xc019a1d8, 0x4087e625, 0x3d84aa36, 0x3fa4a75b, 0x40a27034, 0x3fc92cbc,
            0xbe69c399, 0x3ddf99b7, 0xbfbe9707, 0x400c1348, 0xbf291a4a, 0x4061a1a5, 0xbf308431,
            0xbf350e11, 0xbf56b8a2, 0x3fa02d79, 0x3ebf6c2b, 0x402f8b19, 0xbf8da852, 0x3f149a18,
            0x40780f21, 0xbef6269e, 0x3f885950,
        ]);
        let w: [i8; 24] = [
            1, 7, -41, -3, -84, -33, -6, 73, 119, 82, 61, 108, -48, 117, -49, -114, 72, -66, 121,
            76, 29, 18, -62, 77,
        ];
        let ws = bits(&[0x3bf15949, 0x3c3ca175, 0x3c965fa6]);
        let bias = bits(&[0xbfcfae6f, 0xbefb29e2, 0x3e23b754]);
        let want: [u32; 36] = [
            0x00000000, 0x00000000, 0x40c00000, 0x00000000, 0x40c00000, 0x40c00000, 0x00000000,
            0x407c4ab8, 0x00000000, 0x00000000, 0x00000000, 0x3ff9aa12, 0x00000000, 0x00000000,
            0x409095ec, 0x00000000, 0x3fd9e4b8, 0x4095c509, 0x00000000, 0x00000000, 0x40c00000,
            0x00000000, 0x4037b833, 0x40c00000, 0x00000000, 0x4051c642, 0x3fbb5170, 0x00000000,
            0x40c00000, 0x40c00000, 0x00000000, 0x409e63f8, 0x00000000, 0x00000000, 0x00000000,
            0x00000000,
        ];
        let g = conv_geometry();
        let p = HybridConvParams::new(&ws, 3, 1, FusedActivation::Relu6).unwrap();
        assert!(p.per_channel);
        let mut scratch = vec![0_i8; hybrid_conv_scratch_len(&g)];
        let mut y = vec![0.0_f32; g.output_len()];
        hybrid_conv2d(&p, &g, 1, &x, &w, Some(&bias), &mut scratch, &mut y).unwrap();
        assert_eq!(y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
    }

    #[test]
    fn conv_per_tensor_matches_reference_interpreter() {
        let x = bits(&[
            0xc0201a6b, 0x3e17570e, 0x3fa9cda1, 0xbf1d0fa4, 0xbf9eebb6, 0xbf9ec075, 0x3ff0eeb4,
            0xc0446aa9, 0xbf19d4c4, 0xbf56bc44, 0x3e9373f6, 0xbe0e7ac3, 0xc00dc2c3, 0x408290d3,
            0x3eb5dfdc, 0xc02bc7e9, 0xbfe434fc, 0x3e47da94, 0x3f9ceb99, 0xc02bcbbd, 0x3fb61a2c,
            0xc02fc809, 0xbfcb5d11, 0x3fda64d8,
        ]);
        let w: [i8; 24] = [
            -13, 23, 48, 72, -63, 79, 15, 56, 95, -78, -33, -5, -85, 17, -122, -14, -107, -21, -16,
            37, -122, -61, 46, 120,
        ];
        let ws = bits(&[0x3c4985f0, 0x3c4985f0, 0x3c4985f0]);
        let bias = bits(&[0x3f506750, 0xbf2c3487, 0xbf690dbd]);
        let want: [u32; 36] = [
            0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x4005bb06, 0x00000000, 0x3e9f3f30,
            0x00000000, 0x3f398ec5, 0x401b5663, 0x40c00000, 0x00000000, 0x00000000, 0x3f7d96b7,
            0x3f45cc63, 0x40126f65, 0x3fd68d92, 0x3f9fe67c, 0x00000000, 0x00000000, 0x00000000,
            0x00000000, 0x40438405, 0x3fa755f6, 0x4080d1b2, 0x00000000, 0x401ccefc, 0x00000000,
            0x403bfaa4, 0x00000000, 0x3ec9bc35, 0x40844459, 0x00000000, 0x3fc614ae, 0x00000000,
            0x3f38bf97,
        ];
        let g = conv_geometry();
        let p = HybridConvParams::new(&ws, 3, 1, FusedActivation::Relu6).unwrap();
        assert!(
            !p.per_channel,
            "equal scales take the symmetric per-tensor path"
        );
        let mut scratch = vec![0_i8; hybrid_conv_scratch_len(&g)];
        let mut y = vec![0.0_f32; g.output_len()];
        hybrid_conv2d(&p, &g, 1, &x, &w, Some(&bias), &mut scratch, &mut y).unwrap();
        assert_eq!(y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
    }

    #[test]
    fn quantizers_are_close_to_ideal() {
        let mut s = 3_u64;
        for n in [1_usize, 5, 8, 13, 40] {
            let x: Vec<f32> = (0..n)
                .map(|_| {
                    s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.3) * 7.0
                })
                .collect();
            let mut q = vec![0_i8; n];
            let (scale, zp) = quantize_asymmetric(&x, &mut q);
            for (&v, &qv) in x.iter().zip(&q) {
                let ideal = v / scale + zp as f32;
                assert!(
                    (f32::from(qv) - ideal).abs() <= 0.5 + 1e-3,
                    "{v} {qv} {ideal}"
                );
            }
            let scale = quantize_symmetric(&x, &mut q);
            for (&v, &qv) in x.iter().zip(&q) {
                assert!((f32::from(qv) - v / scale).abs() <= 0.5 + 1e-3);
            }
        }
        let mut q = [5_i8; 3];
        assert_eq!(quantize_asymmetric(&[0.0; 3], &mut q), (1.0, 0));
        assert_eq!(q, [0; 3]);
        assert_eq!(quantize_symmetric(&[], &mut q), 1.0);
    }

    #[test]
    fn zero_input_short_circuits_to_activated_bias() {
        let shape = FcShape {
            batches: 2,
            depth: 3,
            units: 2,
        };
        let w = [1_i8; 6];
        let p = HybridFcParams::new(&[0.5], 2, true, FusedActivation::Relu).unwrap();
        let mut scratch = [0_i8; 3];
        let mut y = [9.0_f32; 4];
        hybrid_fully_connected(
            &p,
            shape,
            &[0.0; 6],
            &w,
            &hybrid_fc_row_sums(&w, shape),
            Some(&[-1.0, 2.0]),
            &mut scratch,
            &mut y,
        )
        .unwrap();
        assert_eq!(y, [0.0, 2.0, 0.0, 2.0]);
    }

    #[test]
    fn shape_errors() {
        let shape = FcShape {
            batches: 1,
            depth: 4,
            units: 2,
        };
        let p = HybridFcParams::new(&[0.5], 2, true, FusedActivation::None).unwrap();
        let mut y = [0.0_f32; 2];
        let r = hybrid_fully_connected(
            &p,
            shape,
            &[1.0; 4],
            &[1; 8],
            &[4, 4],
            None,
            &mut [0; 3],
            &mut y,
        );
        assert!(r.is_err(), "scratch too small");
        assert!(HybridFcParams::new(&[0.1, 0.2, 0.3], 2, true, FusedActivation::None).is_err());
        assert!(HybridConvParams::new(&[0.1, 0.2], 3, 1, FusedActivation::None).is_err());
        assert!(HybridConvParams::new(&[0.1], 4, 2, FusedActivation::None).is_err());
        assert!(
            HybridConvParams::new(&[0.1; 4], 4, 2, FusedActivation::None)
                .unwrap()
                .per_channel
        );
    }
}
