//! Fixed-point formulas of the quantized activations, bit-exact with TFLite's reference
//! kernels. Each takes one quantized input value (as `i32`) and returns the unclamped or
//! clamped output value; [`super::lut::Lut8::from_int`] turns the unary ones into tables.
//!
//! Real multipliers are formed in `f32` where the reference divides `float` scales (RELU,
//! LEAKY_RELU, HARD_SWISH, ABS, PRELU) and only then widened to `f64` for
//! `QuantizeMultiplier`.

use crate::quant::fixedpoint::{
    f32_to_i32_x86, multiply_by_quantized_multiplier as mbqm, quantize_multiplier,
    rounding_divide_by_pot, saturating_rounding_doubling_high_mul as srdhm,
};
use crate::quant::params::clamp_i32;
use crate::quant::{QuantElem, QuantError, QuantParams};

/// `QuantizeMultiplier` of a real multiplier computed in `f32`.
fn qm(real: f32) -> Result<(i32, i32), QuantError> {
    quantize_multiplier(f64::from(real))
}

/// The quantized RELU family (`QuantizedReluX`): rescale from the input to the output
/// parameters, then clamp to the quantized `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReluQuant {
    input_zp: i32,
    output_zp: i32,
    multiplier: i32,
    shift: i32,
    min: i32,
    max: i32,
}

impl ReluQuant {
    /// Parameters for clamping to `[lo, hi]` (`hi = +∞` for plain RELU) in element type `T`.
    pub fn new<T: QuantElem>(
        input: QuantParams,
        output: QuantParams,
        lo: f32,
        hi: f32,
    ) -> Result<Self, QuantError> {
        let (multiplier, shift) = qm(input.scale / output.scale)?;
        let output_zp = output.zero_point_i32()?;
        // The bounds are quantized as `zp + (int)roundf(bound / scale)`, in f32.
        let bound = |b: f32| output_zp.wrapping_add(f32_to_i32_x86((b / output.scale).round()));
        let min = T::MIN.max(bound(lo));
        let max = if hi == f32::INFINITY {
            T::MAX
        } else {
            T::MAX.min(bound(hi))
        };
        Ok(Self {
            input_zp: input.zero_point_i32()?,
            output_zp,
            multiplier,
            shift,
            min,
            max,
        })
    }

    /// The output for input value `q`.
    pub fn apply(&self, q: i32) -> i32 {
        let v = mbqm(q.wrapping_sub(self.input_zp), self.multiplier, self.shift);
        clamp_i32(self.output_zp.wrapping_add(v), self.min, self.max)
    }
}

/// Quantized LEAKY_RELU: separate multipliers for the identity (`x ≥ 0`) and the `alpha`
/// branch. A negative alpha gives a negative multiplier; like the reference, its magnitude
/// is applied and the sign flipped afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeakyReluQuant {
    input_zp: i32,
    output_zp: i32,
    identity: (i32, i32),
    alpha: (i32, i32),
}

impl LeakyReluQuant {
    /// Parameters for slope `alpha`.
    pub fn new(input: QuantParams, output: QuantParams, alpha: f32) -> Result<Self, QuantError> {
        Ok(Self {
            input_zp: input.zero_point_i32()?,
            output_zp: output.zero_point_i32()?,
            identity: qm(input.scale / output.scale)?,
            alpha: qm(input.scale * alpha / output.scale)?,
        })
    }

    /// The output for input value `q`, before clamping to the type.
    pub fn apply(&self, q: i32) -> i32 {
        let v = q.wrapping_sub(self.input_zp);
        let scaled = if v >= 0 {
            mbqm(v, self.identity.0, self.identity.1)
        } else if self.alpha.0 < 0 {
            mbqm(v, self.alpha.0.wrapping_neg(), self.alpha.1).wrapping_neg()
        } else {
            mbqm(v, self.alpha.0, self.alpha.1)
        };
        self.output_zp.wrapping_add(scaled)
    }
}

/// Quantized HARD_SWISH in 16-bit fixed point (`reference_ops::HardSwish`): the input
/// moves to a 2^-7 finer scale, a "relu-ish" factor in [0, 1] is derived from it with
/// saturation at ±3, and the product is shifted to the output scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardSwishQuant {
    input_zp: i32,
    output_zp: i32,
    output_multiplier: i16,
    output_exponent: i32,
    reluish_multiplier: i16,
    reluish_exponent: i32,
}

/// `DownScaleInt32ToInt16Multiplier`: rounds a Q31 multiplier to Q15.
fn downscale_multiplier(m: i32) -> i16 {
    if m >= i32::MAX - (1 << 15) {
        i16::MAX
    } else {
        (m.wrapping_add(1 << 15) >> 16) as i16
    }
}

impl HardSwishQuant {
    /// Fails where the reference's Prepare does: an output multiplier needing a left shift.
    pub fn new(input: QuantParams, output: QuantParams) -> Result<Self, QuantError> {
        let hires_input_scale = (1.0f32 / 128.0) * input.scale;
        let reluish_scale = 3.0f32 / 32768.0;
        let (om, output_exponent) = qm(hires_input_scale / output.scale)?;
        if output_exponent > 0 {
            return Err(QuantError::BadOutputParams(
                "HARD_SWISH output scale below input scale / 128",
            ));
        }
        let (rm, reluish_exponent) = qm(hires_input_scale / reluish_scale)?;
        Ok(Self {
            input_zp: input.zero_point_i32()?,
            output_zp: output.zero_point_i32()?,
            output_multiplier: downscale_multiplier(om),
            output_exponent,
            reluish_multiplier: downscale_multiplier(rm),
            reluish_exponent,
        })
    }

    /// The output for input value `q`, before clamping to the type.
    pub fn apply(&self, q: i32) -> i32 {
        // The reference keeps these in int16 variables; narrowing wraps.
        let input_value = q.wrapping_sub(self.input_zp) as i16;
        let hires = (i32::from(input_value) * 128) as i16;
        let preshift_output = srdhm16(hires, self.output_multiplier);
        let mut reluish = hires;
        if self.reluish_exponent > 0 {
            reluish = saturating_left_shift16(reluish, self.reluish_exponent - 1);
        }
        reluish = srdhm16(reluish, self.reluish_multiplier);
        if self.reluish_exponent > 0 {
            reluish = saturating_left_shift16(reluish, 1);
        }
        if self.reluish_exponent < 0 {
            reluish = rdbpot16(reluish, -self.reluish_exponent);
        }
        // From [−1, 1] to [0, 1] in Q15.
        reluish = ((i32::from(reluish) + (1 << 15)) >> 1) as i16;
        let preshift = sdhm16(reluish, preshift_output);
        let out = rdbpot16(preshift, self.output_exponent.saturating_neg());
        i32::from(out.wrapping_add(self.output_zp as i16))
    }
}

/// gemmlowp's 16-bit `SaturatingRoundingDoublingHighMul`.
fn srdhm16(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        return i16::MAX;
    }
    let ab = i32::from(a) * i32::from(b);
    let nudge = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

/// The non-rounding `SaturatingDoublingHighMul` (truncates toward zero).
fn sdhm16(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        return i16::MAX;
    }
    ((i32::from(a) * i32::from(b)) / (1 << 15)) as i16
}

/// `value · 2^amount` saturated to the int16 range (`1 << amount` as the reference forms
/// it in `int`).
fn saturating_left_shift16(value: i16, amount: i32) -> i16 {
    let factor = i64::from(1i32.wrapping_shl(amount.clamp(0, 31) as u32));
    (i64::from(value) * factor).clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
}

/// gemmlowp's `RoundingDivideByPOT` on an int16 value, with int16 mask arithmetic.
fn rdbpot16(x: i16, exponent: i32) -> i16 {
    let e = exponent.clamp(0, 31);
    let mask = ((1i64 << e) - 1) as i16;
    let remainder = x & mask;
    let threshold = (mask >> 1).wrapping_add(i16::from(x < 0));
    ((i32::from(x) >> e) as i16).wrapping_add(i16::from(remainder > threshold))
}

/// Quantized ABS: `|q − zp_in|`, rescaled only when the scales differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsQuant {
    input_zp: i32,
    output_zp: i32,
    rescale: Option<(i32, i32)>,
}

impl AbsQuant {
    /// Parameters from the input and output quantization.
    pub fn new(input: QuantParams, output: QuantParams) -> Result<Self, QuantError> {
        let rescale = if input.scale != output.scale {
            Some(qm(input.scale / output.scale)?)
        } else {
            None
        };
        Ok(Self {
            input_zp: input.zero_point_i32()?,
            output_zp: output.zero_point_i32()?,
            rescale,
        })
    }

    /// The output for input value `q`, before clamping to the type.
    pub fn apply(&self, q: i32) -> i32 {
        let v = q.wrapping_sub(self.input_zp).wrapping_abs();
        let v = match self.rescale {
            Some((m, s)) => mbqm(v, m, s),
            None => v,
        };
        v.wrapping_add(self.output_zp)
    }
}

/// Quantized int8 RSQRT: `1/√(q − zp)` by gemmlowp's Newton–Raphson inverse square root,
/// then one requantization with `1/(√in_scale · out_scale)`. Inputs below the zero point
/// are an error at run time (see [`RsqrtQuant::domain_min`]); the zero point itself maps
/// to the largest value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsqrtQuant {
    input_zp: i32,
    output_zp: i32,
    multiplier: i32,
    shift: i32,
}

impl RsqrtQuant {
    /// Parameters from the input and output quantization.
    pub fn new(input: QuantParams, output: QuantParams) -> Result<Self, QuantError> {
        let (multiplier, shift) =
            quantize_multiplier(1.0 / f64::from(input.scale.sqrt() * output.scale))?;
        Ok(Self {
            input_zp: input.zero_point_i32()?,
            output_zp: output.zero_point_i32()?,
            multiplier,
            shift,
        })
    }

    /// The smallest valid input value (the input zero point).
    pub fn domain_min(&self) -> i32 {
        self.input_zp
    }

    /// The output for input value `q ≥ domain_min()`, before clamping to int8.
    pub fn apply(&self, q: i32) -> i32 {
        const SHIFT: i32 = 20;
        let v = q.wrapping_sub(self.input_zp);
        if v == 0 {
            return i32::from(i8::MAX);
        }
        let (inv, inv_shift) = inv_sqrt_multiplier_exp(v);
        let data = mbqm(1, inv, inv_shift + SHIFT);
        mbqm(data, self.multiplier, self.shift - SHIFT).wrapping_add(self.output_zp)
    }
}

/// gemmlowp-style `SaturatingRoundingMultiplyByPOT<e>` for `e > 0`.
fn saturating_mul_pot(x: i32, e: u32) -> i32 {
    let threshold = (1i32 << (31 - e)) - 1;
    if x > threshold {
        i32::MAX
    } else if x < -threshold {
        i32::MIN
    } else {
        x << e
    }
}

/// TFLite's `GetInvSqrtQuantizedMultiplierExp` with `reverse_shift = −1`: a multiplier and
/// a left shift representing `1/√input`, computed in Q3.28 fixed point.
fn inv_sqrt_multiplier_exp(input: i32) -> (i32, i32) {
    if input <= 1 {
        return (i32::MAX, 0);
    }
    let mut input = input;
    let mut shift = 11i32;
    while input >= 1 << 29 {
        input /= 4;
        shift += 1;
    }
    let max_left_shift_bits = (input as u32).leading_zeros() - 1;
    let left_shift_bit_pairs = max_left_shift_bits / 2 - 1;
    shift -= left_shift_bit_pairs as i32;
    input <<= 2 * left_shift_bit_pairs;
    // Q3.28 values: products of two Q3 values are Q6, of three Q9; rescaling back to Q3 is a
    // saturating left shift.
    let fixed_input = input >> 1;
    let half_input = rounding_divide_by_pot(fixed_input, 1);
    let half_three = (1 << 28) + (1 << 27);
    let mut x = 1i32 << 28;
    for _ in 0..5 {
        let x3 = saturating_mul_pot(srdhm(srdhm(x, x), x), 6);
        let diff = srdhm(half_three, x).wrapping_sub(srdhm(half_input, x3));
        x = saturating_mul_pot(diff, 3);
    }
    // Times √2/2 in Q0.31.
    let mut inv = srdhm(x, 1_518_500_250);
    if shift < 0 {
        inv = inv.wrapping_shl((-shift) as u32);
        shift = 0;
    }
    (inv, -shift)
}

/// Int8 SQRT as the reference computes it: `(int)(√(in_scale·(q − zp_in)) / out_scale)
/// + zp_out`, truncating. Inputs below the zero point are an error at run time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SqrtQuant {
    input: QuantParams,
    input_zp: i32,
    output_scale: f32,
    output_zp: i32,
}

impl SqrtQuant {
    /// Parameters from the input and output quantization.
    pub fn new(input: QuantParams, output: QuantParams) -> Result<Self, QuantError> {
        Ok(Self {
            input,
            input_zp: input.zero_point_i32()?,
            output_scale: output.scale,
            output_zp: output.zero_point_i32()?,
        })
    }

    /// The smallest valid input value (the input zero point).
    pub fn domain_min(&self) -> i32 {
        self.input_zp
    }

    /// The output for input value `q ≥ domain_min()`, before clamping to the type.
    pub fn apply(&self, q: i32) -> i32 {
        let x = self.input.scale * q.wrapping_sub(self.input_zp) as f32;
        f32_to_i32_x86(x.sqrt() / self.output_scale).wrapping_add(self.output_zp)
    }
}

/// Quantized PRELU: the identity multiplier for `x ≥ 0`, the product with the dequantized
/// alpha otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreluQuant {
    input_zp: i32,
    alpha_zp: i32,
    output_zp: i32,
    positive: (i32, i32),
    negative: (i32, i32),
}

impl PreluQuant {
    /// Parameters from the input, alpha and output quantization.
    pub fn new(
        input: QuantParams,
        alpha: QuantParams,
        output: QuantParams,
    ) -> Result<Self, QuantError> {
        Ok(Self {
            input_zp: input.zero_point_i32()?,
            alpha_zp: alpha.zero_point_i32()?,
            output_zp: output.zero_point_i32()?,
            positive: qm(input.scale / output.scale)?,
            negative: qm(input.scale * alpha.scale / output.scale)?,
        })
    }

    /// The output for input value `x` and alpha value `a`, clamped to `T`.
    pub fn apply<T: QuantElem>(&self, x: i32, a: i32) -> i32 {
        let v = x.wrapping_sub(self.input_zp);
        let out = if v >= 0 {
            mbqm(v, self.positive.0, self.positive.1)
        } else {
            let alpha = a.wrapping_sub(self.alpha_zp);
            mbqm(v.wrapping_mul(alpha), self.negative.0, self.negative.1)
        };
        clamp_i32(out.wrapping_add(self.output_zp), T::MIN, T::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(scale: f32, zp: i64) -> QuantParams {
        QuantParams::new(scale, zp)
    }

    #[test]
    fn relu_family_matches_float_rounding() {
        let (i, o) = (p(0.05, -10), p(0.03, -128));
        let relu6 = ReluQuant::new::<i8>(i, o, 0.0, 6.0).unwrap();
        for q in -128..=127 {
            let x = 0.05 * (q + 10) as f64;
            let want = ((x / 0.03).round() - 128.0).clamp(-128.0, (6.0f64 / 0.03).round() - 128.0);
            let got = relu6.apply(q);
            // MBQM rounds the rescale once more than the f64 ideal: allow 1 step.
            assert!((f64::from(got) - want).abs() <= 1.0, "{q}: {got} vs {want}");
        }
        // The clamp bounds are exactly the quantized 0 and 6.
        assert_eq!(relu6.apply(127), 72);
        assert_eq!(relu6.apply(-128), -128);
        let relu = ReluQuant::new::<u8>(p(0.1, 100), p(0.1, 100), 0.0, f32::INFINITY).unwrap();
        assert_eq!(relu.apply(90), 100);
        assert_eq!(relu.apply(255), 255);
    }

    #[test]
    fn leaky_relu_both_branches() {
        let l = LeakyReluQuant::new(p(0.1, 0), p(0.1, 0), 0.25).unwrap();
        assert_eq!(l.apply(40), 40);
        assert_eq!(l.apply(-40), -10);
        assert_eq!(l.apply(-2), -1); // −0.5 rounds away from zero
        let n = LeakyReluQuant::new(p(0.1, 0), p(0.1, 0), -0.5).unwrap();
        assert_eq!(n.apply(-40), 20);
        assert_eq!(n.apply(40), 40);
    }

    #[test]
    fn hard_swish_tracks_the_float_function() {
        let (i, o) = (p(0.04, 5), p(0.025, -60));
        let h = HardSwishQuant::new(i, o).unwrap();
        for q in -128..=127 {
            let x = 0.04 * (q - 5) as f64;
            let y = x * (x + 3.0).clamp(0.0, 6.0) / 6.0;
            let want = (y / 0.025).round() - 60.0;
            let got = f64::from(h.apply(q).clamp(-128, 127));
            assert!(
                (got - want.clamp(-128.0, 127.0)).abs() <= 2.0,
                "{q}: {got} vs {want}"
            );
        }
        assert!(HardSwishQuant::new(p(1.0, 0), p(0.001, 0)).is_err());
    }

    #[test]
    fn int16_helpers() {
        assert_eq!(srdhm16(i16::MIN, i16::MIN), i16::MAX);
        assert_eq!(srdhm16(16384, 16384), 8192);
        assert_eq!(srdhm16(-3, 16384), -1); // −1.5 rounds toward zero on ties below 0
        assert_eq!(sdhm16(-3, 16384), -1);
        assert_eq!(sdhm16(3, 16384), 1);
        assert_eq!(rdbpot16(5, 1), 3);
        assert_eq!(rdbpot16(-5, 1), -3);
        assert_eq!(rdbpot16(-4, 1), -2);
        assert_eq!(saturating_left_shift16(20000, 1), i16::MAX);
        assert_eq!(saturating_left_shift16(-20000, 2), i16::MIN);
        assert_eq!(downscale_multiplier(i32::MAX), i16::MAX);
        assert_eq!(downscale_multiplier(1 << 30), 1 << 14);
    }

    #[test]
    fn inv_sqrt_is_accurate() {
        for v in [
            2,
            3,
            7,
            100,
            255,
            4096,
            1 << 20,
            (1 << 29) + 12345,
            i32::MAX,
        ] {
            let (m, s) = inv_sqrt_multiplier_exp(v);
            let got = f64::from(m) * 2f64.powi(s - 31);
            let want = 1.0 / f64::from(v).sqrt();
            // Five Newton steps from 1 leave about 1e-6 relative error at the extremes.
            assert!(((got - want) / want).abs() < 1e-5, "{v}: {got} vs {want}");
        }
        assert_eq!(inv_sqrt_multiplier_exp(1), (i32::MAX, 0));
    }

    #[test]
    fn rsqrt_sqrt_abs_prelu() {
        let (i, o) = (p(0.02, -128), p(0.05, -100));
        let r = RsqrtQuant::new(i, o).unwrap();
        assert_eq!(r.domain_min(), -128);
        assert_eq!(r.apply(-128), 127);
        for q in -127..=127 {
            let x = 0.02 * (q + 128) as f64;
            let want = (1.0 / x.sqrt() / 0.05).round() - 100.0;
            let got = r.apply(q).clamp(-128, 127);
            assert!((f64::from(got) - want.min(127.0)).abs() <= 1.0, "{q}");
        }
        let s = SqrtQuant::new(i, o).unwrap();
        // √(0.02·100) / 0.05 = 28.28… → 28 − 100.
        assert_eq!(s.apply(-28), -72);
        let a = AbsQuant::new(p(0.1, 3), p(0.1, -7)).unwrap();
        assert_eq!(a.apply(-10), 13 - 7);
        let a = AbsQuant::new(p(0.1, 3), p(0.2, -7)).unwrap();
        assert_eq!(a.apply(-10), 7 - 7); // 13 · 0.5 = 6.5 → 7
        let pr = PreluQuant::new(p(0.1, 0), p(0.01, 0), p(0.1, 0)).unwrap();
        assert_eq!(pr.apply::<i8>(50, 25), 50);
        assert_eq!(pr.apply::<i8>(-40, 25), -10); // −4 · 0.25
        assert_eq!(pr.apply::<i8>(-127, 127), -128); // −161.29 clamps
    }
}
