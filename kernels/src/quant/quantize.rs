//! QUANTIZE, DEQUANTIZE and integer requantization, bit-exact with TFLite's reference
//! kernels (`reference_ops::AffineQuantize`, `Dequantize`, `Requantize`).

use super::error::{check_len, QuantError};
use super::fixedpoint::{f32_to_i32_x86, multiply_by_quantized_multiplier, quantize_multiplier};
use super::params::{clamp_i32, QuantElem, QuantParams};
use crate::isa::Isa;

/// float → int8/uint8: `clamp((int32)roundf(x / scale) + zp)`, the division in f32,
/// rounding half away from zero, and x86's conversion of NaN and out-of-range values to
/// `i32::MIN` (so huge or non-finite inputs end at the type's minimum, as on REF).
pub fn quantize_f32<T: QuantElem>(
    output: QuantParams,
    input: &[f32],
    out: &mut [T],
) -> Result<(), QuantError> {
    quantize_f32_in(Isa::Generic, output, input, out)
}

/// [`quantize_f32`] compiled for tier `isa` (if the CPU has it): the loop vectorizes 8
/// lanes wide in the AVX2 copy (the division, the rounding and the x86 conversion are the
/// same operations), with the same results.
pub fn quantize_f32_in<T: QuantElem>(
    isa: Isa,
    output: QuantParams,
    input: &[f32],
    out: &mut [T],
) -> Result<(), QuantError> {
    check_len("output", input.len(), out.len())?;
    let zp = output.zero_point_i32()?;
    #[cfg(target_arch = "x86_64")]
    if isa.or_generic() == Isa::Avx2 {
        // SAFETY: AVX2 and FMA were just confirmed.
        unsafe { quantize_avx2(output.scale, zp, input, out) };
        return Ok(());
    }
    let _ = isa;
    quantize_body(output.scale, zp, input, out);
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_avx2<T: QuantElem>(scale: f32, zp: i32, input: &[f32], out: &mut [T]) {
    quantize_body(scale, zp, input, out);
}

/// `clamp(round_half_away(x / scale) + zp)`, the conversion x86's.
#[inline(always)]
fn quantize_body<T: QuantElem>(scale: f32, zp: i32, input: &[f32], out: &mut [T]) {
    for (o, &x) in out.iter_mut().zip(input) {
        let v = f32_to_i32_x86((x / scale).round()).wrapping_add(zp);
        *o = T::from_i32(clamp_i32(v, T::MIN, T::MAX));
    }
}

/// int8/uint8 → float: `(f32)((f64)scale · (q − zp))`.
pub fn dequantize<T: QuantElem>(
    input_params: QuantParams,
    input: &[T],
    out: &mut [f32],
) -> Result<(), QuantError> {
    check_len("output", input.len(), out.len())?;
    let zp = input_params.zero_point_i32()?;
    let scale = f64::from(input_params.scale);
    for (o, &q) in out.iter_mut().zip(input) {
        *o = (scale * f64::from(q.to_i32().wrapping_sub(zp))) as f32;
    }
    Ok(())
}

/// Prepare-time parameters of an integer → integer QUANTIZE (int8 ↔ uint8, int8 → int8,
/// uint8 → uint8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    /// `z_in`.
    pub input_zero_point: i32,
    /// `z_out`.
    pub output_zero_point: i32,
    /// Quantized `(f64)s_in / (f64)s_out`.
    pub multiplier: i32,
    /// Its shift.
    pub shift: i32,
}

impl Requant {
    /// Builds the multiplier from the two tensors' parameters.
    pub fn new(input: QuantParams, output: QuantParams) -> Result<Self, QuantError> {
        let (multiplier, shift) =
            quantize_multiplier(f64::from(input.scale) / f64::from(output.scale))?;
        Ok(Self {
            input_zero_point: input.zero_point_i32()?,
            output_zero_point: output.zero_point_i32()?,
            multiplier,
            shift,
        })
    }
}

/// `clamp(MBQM(q − z_in, m, shift) + z_out)`. When the scales are equal (multiplier
/// `2^30`, shift 1) and the types are int8/uint8 with zero points 128 apart, TFLite flips
/// the sign bit instead; that gives the same bytes, and we take the same shortcut.
pub fn requantize<I: QuantElem, O: QuantElem>(
    q: &Requant,
    input: &[I],
    out: &mut [O],
) -> Result<(), QuantError> {
    check_len("output", input.len(), out.len())?;
    let same_scale = q.multiplier == 1 << 30 && q.shift == 1;
    let zp_diff = q.input_zero_point.wrapping_sub(q.output_zero_point);
    let int8_to_uint8 = I::MIN == -128 && I::MAX == 127 && O::MIN == 0 && O::MAX == 255;
    let uint8_to_int8 = I::MIN == 0 && I::MAX == 255 && O::MIN == -128 && O::MAX == 127;
    if same_scale && ((int8_to_uint8 && zp_diff == -128) || (uint8_to_int8 && zp_diff == 128)) {
        for (o, &x) in out.iter_mut().zip(input) {
            // x ^ 0x80 on the byte: ±128 with the type change.
            *o = O::from_i32(x.to_i32().wrapping_sub(zp_diff));
        }
        return Ok(());
    }
    for (o, &x) in out.iter_mut().zip(input) {
        let v = multiply_by_quantized_multiplier(
            x.to_i32().wrapping_sub(q.input_zero_point),
            q.multiplier,
            q.shift,
        )
        .wrapping_add(q.output_zero_point);
        *o = O::from_i32(clamp_i32(v, O::MIN, O::MAX));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector copy against the portable loop, on ties, extremes, infinities and NaN.
    #[test]
    fn quantize_tiers_agree() {
        let mut x: Vec<f32> = (-300..300).map(|i| i as f32 * 0.25).collect();
        x.extend([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            3e9,
            -3e9,
            2_147_483_520.0,
            -0.0,
            0.499_999_97,
            -0.499_999_97,
            1e-40,
        ]);
        for &(scale, zp) in &[(0.5_f32, 3_i64), (0.007, -128), (1.0, 0), (3.3, 100)] {
            let p = QuantParams::new(scale, zp);
            let (mut a8, mut b8) = (vec![0_i8; x.len()], vec![0_i8; x.len()]);
            let (mut a16, mut b16) = (vec![0_i16; x.len()], vec![0_i16; x.len()]);
            quantize_f32(p, &x, &mut a8).unwrap();
            quantize_f32(p, &x, &mut a16).unwrap();
            for isa in Isa::available() {
                quantize_f32_in(isa, p, &x, &mut b8).unwrap();
                quantize_f32_in(isa, p, &x, &mut b16).unwrap();
                assert_eq!(a8, b8, "{isa:?} scale {scale}");
                assert_eq!(a16, b16, "{isa:?} scale {scale}");
            }
        }
    }

    /// Reference-interpreter outputs (ai-edge-litert 2.3.0, `BUILTIN_REF`) for QUANTIZE
    /// f32 → int8/uint8 with scale 0.1, zero point 3: huge, infinite and NaN inputs go to
    /// the minimum (x86 conversion), ties round away from zero.
    #[test]
    fn quantize_matches_reference_interpreter() {
        let x = [
            1e20_f32,
            -1e20,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.25,
            3e8,
            0.05,
            -0.05,
            0.15,
            2.147_483_6e7,
        ];
        let p = QuantParams::new(0.1, 3);
        let mut i8s = [0_i8; 11];
        quantize_f32(p, &x, &mut i8s).unwrap();
        assert_eq!(i8s, [-128, -128, -128, -128, -128, 6, -128, 4, 2, 5, 127]);
        let mut u8s = [0_u8; 11];
        quantize_f32(p, &x, &mut u8s).unwrap();
        assert_eq!(u8s, [0, 0, 0, 0, 0, 6, 0, 4, 2, 5, 255]);
    }

    #[test]
    fn dequantize_uses_double_product() {
        let p = QuantParams::new(0.1, -3);
        let mut out = [0.0_f32; 3];
        dequantize(p, &[-128_i8, -3, 127], &mut out).unwrap();
        for (o, q) in out.iter().zip([-128_i32, -3, 127]) {
            assert_eq!(*o, (0.1_f32 as f64 * (q + 3) as f64) as f32);
        }
        // The optimized kernel's `q·s + (−zp·s)` gives −36.6 here; REF's single product
        // `s·(q − zp)` gives −36.600002.
        let s = 0.3_f32;
        let mut out = [0.0_f32; 1];
        dequantize(QuantParams::new(s, -3), &[-125_i8], &mut out).unwrap();
        assert_eq!(out[0], -36.600_002);
        assert_ne!(out[0], -125.0 * s + 3.0 * s);
    }

    #[test]
    fn requantize_matches_formula_and_shortcut() {
        // int8 → uint8 with equal scales and zero points 128 apart: a pure ±128 shift.
        let q = Requant::new(QuantParams::new(0.5, -5), QuantParams::new(0.5, 123)).unwrap();
        assert_eq!((q.multiplier, q.shift), (1 << 30, 1));
        let x: Vec<i8> = (-128..=127).collect();
        let mut u = vec![0_u8; 256];
        requantize(&q, &x, &mut u).unwrap();
        for (a, b) in x.iter().zip(&u) {
            assert_eq!(i32::from(*b), i32::from(*a) + 128);
            assert_eq!(*b, (*a as u8) ^ 0x80);
        }
        // General case against the primitive, with exact rational rounding as a check on
        // the final values being within one step of the real result.
        let q = Requant::new(QuantParams::new(0.37, 10), QuantParams::new(0.21, -20)).unwrap();
        let mut o = vec![0_i8; 256];
        requantize(&q, &x, &mut o).unwrap();
        for (a, b) in x.iter().zip(&o) {
            let real = (f64::from(*a) - 10.0) * 0.37_f32 as f64 / 0.21_f32 as f64 - 20.0;
            let want = real.round().clamp(-128.0, 127.0);
            assert!(
                (f64::from(*b) - want).abs() <= 1.0,
                "{a} → {b}, real {real}"
            );
            let mbqm = multiply_by_quantized_multiplier(i32::from(*a) - 10, q.multiplier, q.shift);
            assert_eq!(i32::from(*b), (mbqm - 20).clamp(-128, 127));
        }
    }
}
