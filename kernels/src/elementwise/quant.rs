//! Quantized SUB, SQUARED_DIFFERENCE and comparisons, bit-exact with TFLite's reference
//! kernels.
//!
//! All three bring both inputs to a common fixed-point scale first, like ADD does:
//! `(x − zp)·2^left_shift` times a multiplier below one
//! (`MultiplyByQuantizedMultiplierSmallerThanOneExp`, double rounding). SUB uses ADD's
//! parameters (left shift 20, multipliers `s_i / 2·max(s1, s2)`) and subtracts;
//! SQUARED_DIFFERENCE uses a left shift of 7 and squares the difference; comparisons use a
//! left shift of 8 with each input's own scale as the multiplier and compare the results.

use crate::quant::add::AddQuant;
use crate::quant::fixedpoint::{
    get_reciprocal, multiply_by_quantized_multiplier_greater_than_one as mbqm_gt1,
    multiply_by_quantized_multiplier_smaller_than_one_exp as mbqm_lt1, quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp, saturating_rounding_doubling_high_mul as srdhm,
};
use crate::quant::params::{activation_range_for, clamp_i32};
use crate::quant::{FusedActivation, QuantElem, QuantError, QuantParams};

/// Fails unless every zero point lies in `T`'s range (SUB and SQUARED_DIFFERENCE check it).
fn check_zero_points<T: QuantElem>(params: &[QuantParams]) -> Result<(), QuantError> {
    for p in params {
        let zp = p.zero_point_i32()?;
        if zp < T::MIN || zp > T::MAX {
            return Err(QuantError::ZeroPointOutOfRange(p.zero_point));
        }
    }
    Ok(())
}

/// Prepare-time parameters of a quantized SUB (8-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubQuant {
    add: AddQuant,
}

impl SubQuant {
    /// Same multipliers as ADD. The reference also accepts an output multiplier above one
    /// (an output range narrower than 2^-20 of the inputs') but then shifts by a negative
    /// amount, which is undefined; that case is refused here.
    pub fn new<T: QuantElem>(
        input1: QuantParams,
        input2: QuantParams,
        output: QuantParams,
        activation: FusedActivation,
    ) -> Result<Self, QuantError> {
        check_zero_points::<T>(&[input1, input2, output])?;
        Ok(Self {
            add: AddQuant::new::<T>(input1, input2, output, activation)?,
        })
    }

    /// `clamp(MBQM(a1 − a2, m_out) + zp_out)` with `a_i` the inputs on the common scale.
    #[inline]
    pub fn apply(&self, x1: i32, x2: i32) -> i32 {
        self.combine(self.term1(x1), self.term2(x2))
    }
}

impl TermwiseQuant for SubQuant {
    #[inline]
    fn term1(&self, x1: i32) -> i32 {
        let q = &self.add;
        let shift = 1i32.wrapping_shl(q.left_shift as u32);
        mbqm_lt1(
            q.input1_offset.wrapping_add(x1).wrapping_mul(shift),
            q.input1_multiplier,
            q.input1_shift,
        )
    }

    #[inline]
    fn term2(&self, x2: i32) -> i32 {
        let q = &self.add;
        let shift = 1i32.wrapping_shl(q.left_shift as u32);
        mbqm_lt1(
            q.input2_offset.wrapping_add(x2).wrapping_mul(shift),
            q.input2_multiplier,
            q.input2_shift,
        )
    }

    #[inline]
    fn combine(&self, a: i32, b: i32) -> i32 {
        let q = &self.add;
        let raw = mbqm_lt1(a.wrapping_sub(b), q.output_multiplier, q.output_shift)
            .wrapping_add(q.output_offset);
        clamp_i32(raw, q.act_min, q.act_max)
    }
}

/// A quantized binary operation that rescales each input on its own (`term1`, `term2`)
/// before combining the two: with 8-bit inputs each term takes only 256 values, which
/// [`TermTables`] computes once.
pub trait TermwiseQuant {
    fn term1(&self, x1: i32) -> i32;
    fn term2(&self, x2: i32) -> i32;
    fn combine(&self, a: i32, b: i32) -> i32;
}

/// The terms of a [`TermwiseQuant`] for every 8-bit input, indexed by the raw byte, and the
/// operation itself: `apply` gives `combine(term1(x1), term2(x2))`, the same value, with two
/// lookups instead of two requantizations.
#[derive(Debug, Clone)]
pub struct TermTables<Q> {
    q: Q,
    t1: Box<[i32; 256]>,
    t2: Box<[i32; 256]>,
}

impl<Q: TermwiseQuant> TermTables<Q> {
    /// Tables for int8 (`signed`) or uint8 inputs.
    pub fn new(q: Q, signed: bool) -> Self {
        let value = |byte: usize| {
            if signed {
                i32::from(byte as u8 as i8)
            } else {
                byte as i32
            }
        };
        let mut t1 = Box::new([0i32; 256]);
        let mut t2 = Box::new([0i32; 256]);
        for (byte, (a, b)) in t1.iter_mut().zip(t2.iter_mut()).enumerate() {
            *a = q.term1(value(byte));
            *b = q.term2(value(byte));
        }
        Self { q, t1, t2 }
    }

    /// The result for the raw bytes `x1`, `x2` (already clamped to the element type).
    #[inline]
    pub fn apply(&self, x1: u8, x2: u8) -> i32 {
        self.q
            .combine(self.t1[usize::from(x1)], self.t2[usize::from(x2)])
    }
}

/// Prepare-time parameters of the int8 SQUARED_DIFFERENCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SquaredDifferenceQuant {
    input1_offset: i32,
    input2_offset: i32,
    output_offset: i32,
    input1: (i32, i32),
    input2: (i32, i32),
    output: (i32, i32),
}

impl SquaredDifferenceQuant {
    /// All three multipliers must be below one, as the reference requires.
    pub fn new(
        input1: QuantParams,
        input2: QuantParams,
        output: QuantParams,
    ) -> Result<Self, QuantError> {
        check_zero_points::<i8>(&[input1, input2, output])?;
        // `2 · max(s1, s2)` is formed in float (exact), then used in double.
        let twice_max = f64::from(2.0 * input1.scale.max(input2.scale));
        let real_out = (twice_max * twice_max) / f64::from((1 << 14) as f32 * output.scale);
        Ok(Self {
            input1_offset: input1.zero_point_i32()?.wrapping_neg(),
            input2_offset: input2.zero_point_i32()?.wrapping_neg(),
            output_offset: output.zero_point_i32()?,
            input1: quantize_multiplier_smaller_than_one_exp(f64::from(input1.scale) / twice_max)?,
            input2: quantize_multiplier_smaller_than_one_exp(f64::from(input2.scale) / twice_max)?,
            output: quantize_multiplier_smaller_than_one_exp(real_out)?,
        })
    }

    /// `clamp(MBQM((a1 − a2)², m_out) + zp_out)` to int8.
    #[inline]
    pub fn apply(&self, x1: i32, x2: i32) -> i32 {
        self.combine(self.term1(x1), self.term2(x2))
    }
}

impl TermwiseQuant for SquaredDifferenceQuant {
    #[inline]
    fn term1(&self, x1: i32) -> i32 {
        mbqm_lt1(
            self.input1_offset.wrapping_add(x1).wrapping_mul(1 << 7),
            self.input1.0,
            self.input1.1,
        )
    }

    #[inline]
    fn term2(&self, x2: i32) -> i32 {
        mbqm_lt1(
            self.input2_offset.wrapping_add(x2).wrapping_mul(1 << 7),
            self.input2.0,
            self.input2.1,
        )
    }

    #[inline]
    fn combine(&self, a: i32, b: i32) -> i32 {
        let d = a.wrapping_sub(b);
        let raw = mbqm_lt1(d.wrapping_mul(d), self.output.0, self.output.1)
            .wrapping_add(self.output_offset);
        clamp_i32(raw, i32::from(i8::MIN), i32::from(i8::MAX))
    }
}

/// Prepare-time parameters of a quantized comparison (int8, uint8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompareQuant {
    input1_offset: i32,
    input2_offset: i32,
    input1: (i32, i32),
    input2: (i32, i32),
}

impl CompareQuant {
    /// The reference multiplies by each input's scale. For scales of one or more it would
    /// shift by a negative amount (undefined), so those are refused.
    pub fn new(input1: QuantParams, input2: QuantParams) -> Result<Self, QuantError> {
        Ok(Self {
            input1_offset: input1.zero_point_i32()?.wrapping_neg(),
            input2_offset: input2.zero_point_i32()?.wrapping_neg(),
            input1: quantize_multiplier_smaller_than_one_exp(f64::from(input1.scale))?,
            input2: quantize_multiplier_smaller_than_one_exp(f64::from(input2.scale))?,
        })
    }

    /// Input 1's value on the common comparison scale.
    #[inline]
    pub fn scaled1(&self, x: i32) -> i32 {
        mbqm_lt1(
            self.input1_offset.wrapping_add(x).wrapping_mul(1 << 8),
            self.input1.0,
            self.input1.1,
        )
    }

    /// Input 2's value on the common comparison scale.
    #[inline]
    pub fn scaled2(&self, x: i32) -> i32 {
        mbqm_lt1(
            self.input2_offset.wrapping_add(x).wrapping_mul(1 << 8),
            self.input2.0,
            self.input2.1,
        )
    }
}

/// Prepare-time parameters of a quantized DIV (int8, uint8): the quotient of the offset
/// inputs through a fixed-point reciprocal of the divisor, then one requantization by
/// `s1 / (s2 · s_out)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DivQuant {
    input1_zp: i32,
    input2_zp: i32,
    output_zp: i32,
    multiplier: i32,
    shift: i32,
    act_min: i32,
    act_max: i32,
}

/// gemmlowp's `RoundingDivideByPOT` as the reference binary executes it on x86 for any
/// exponent. Within `[0, 31]` it is the usual rounding shift. Outside, the reference's C++ is
/// undefined, and x86 masks shift counts: the mask is `(1 << (e mod 64)) − 1` cut to 32
/// bits and the shift is by `e mod 32`. DIV reaches exponents above 31 for numerators of ±1
/// with large divisors, where this gives a large value instead of 0.
fn rounding_divide_by_pot_x86(x: i32, exponent: i32) -> i32 {
    let mask = (1i64.wrapping_shl(exponent as u32 & 63) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1).wrapping_add(i32::from(x < 0));
    (x >> (exponent as u32 & 31)).wrapping_add(i32::from(remainder > threshold))
}

/// GCC's `__builtin_clrsb`: redundant sign bits below the top one (31 for 0 and −1).
fn count_leading_sign_bits(x: i32) -> i32 {
    let magnitude = if x < 0 { !x } else { x };
    magnitude.leading_zeros() as i32 - 1
}

impl DivQuant {
    /// Parameters for element type `T`; the real multiplier is formed in `f32`.
    pub fn new<T: QuantElem>(
        input1: QuantParams,
        input2: QuantParams,
        output: QuantParams,
        activation: FusedActivation,
    ) -> Result<Self, QuantError> {
        let (multiplier, shift) =
            quantize_multiplier(f64::from(input1.scale / (input2.scale * output.scale)))?;
        let (act_min, act_max) = activation_range_for::<T>(activation, output)?;
        Ok(Self {
            input1_zp: input1.zero_point_i32()?,
            input2_zp: input2.zero_point_i32()?,
            output_zp: output.zero_point_i32()?,
            multiplier,
            shift,
            act_min,
            act_max,
        })
    }

    /// The divisor's zero point: a stored divisor equal to it is a division by zero, which
    /// the caller must reject before calling [`DivQuant::apply`].
    pub fn divisor_zero(&self) -> i32 {
        self.input2_zp
    }

    /// The quotient of stored values `x1 / x2` (`x2` not the divisor's zero point).
    pub fn apply(&self, x1: i32, x2: i32) -> i32 {
        let mut num = x1.wrapping_sub(self.input1_zp);
        let mut den = x2.wrapping_sub(self.input2_zp);
        // The reciprocal must be positive to serve as a multiplier: move the sign up.
        if den < 0 {
            num = num.wrapping_neg();
            den = den.wrapping_neg();
        }
        let (recip, recip_shift) = get_reciprocal(den, 31);
        let headroom = count_leading_sign_bits(num);
        let unscaled = mbqm_gt1(num, recip, headroom);
        let total_shift = self.shift - recip_shift - headroom;
        let scaled = srdhm(unscaled, self.multiplier);
        let raw = rounding_divide_by_pot_x86(scaled, total_shift.wrapping_neg())
            .wrapping_add(self.output_zp);
        clamp_i32(raw, self.act_min, self.act_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(scale: f32, zp: i64) -> QuantParams {
        QuantParams::new(scale, zp)
    }

    #[test]
    fn sub_tracks_real_difference() {
        let q = SubQuant::new::<i8>(p(0.05, -3), p(0.12, 10), p(0.1, 2), FusedActivation::None)
            .unwrap();
        for x1 in (-128..=127).step_by(7) {
            for x2 in (-128..=127).step_by(5) {
                let real = 0.05 * f64::from(x1 + 3) - 0.12 * f64::from(x2 - 10);
                let want = ((real / 0.1).round() + 2.0).clamp(-128.0, 127.0);
                let got = q.apply(x1, x2);
                assert!(
                    (f64::from(got) - want).abs() <= 1.0,
                    "{x1} {x2}: {got} vs {want}"
                );
            }
        }
        let relu =
            SubQuant::new::<i8>(p(0.1, 0), p(0.1, 0), p(0.1, -128), FusedActivation::Relu).unwrap();
        assert_eq!(relu.apply(5, 20), -128);
        assert_eq!(relu.apply(20, 5), -113);
        assert!(
            SubQuant::new::<i8>(p(0.1, 0), p(0.1, 200), p(0.1, 0), FusedActivation::None).is_err()
        );
    }

    #[test]
    fn squared_difference_tracks_real_value() {
        let q = SquaredDifferenceQuant::new(p(0.02, 5), p(0.03, -7), p(0.05, -128)).unwrap();
        for x1 in (-128..=127).step_by(3) {
            for x2 in (-128..=127).step_by(11) {
                let d = 0.02 * f64::from(x1 - 5) - 0.03 * f64::from(x2 + 7);
                let want = ((d * d / 0.05).round() - 128.0).clamp(-128.0, 127.0);
                let got = q.apply(x1, x2);
                assert!(
                    (f64::from(got) - want).abs() <= 1.0,
                    "{x1} {x2}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn div_tracks_real_quotient() {
        let q = DivQuant::new::<i8>(p(0.05, 3), p(0.02, -10), p(0.1, 5), FusedActivation::None)
            .unwrap();
        for x1 in -128..=127 {
            for x2 in (-128..=127).step_by(3) {
                // Numerators of a few units over large divisors take the x86 shift path
                // tested below.
                if x2 == -10 || (x1 - 3i32).abs() < 4 {
                    continue;
                }
                let real = 0.05 * f64::from(x1 - 3) / (0.02 * f64::from(x2 + 10));
                let want = ((real / 0.1).round() + 5.0).clamp(-128.0, 127.0);
                let got = q.apply(x1, x2);
                assert!(
                    (f64::from(got) - want).abs() <= 1.0,
                    "{x1} {x2}: {got} vs {want}"
                );
            }
        }
        // A numerator of −1 over a large divisor needs a shift by 32, which x86 performs as a
        // shift by 0: the quotient stays large and clamps (the reference's behaviour).
        assert_eq!(rounding_divide_by_pot_x86(-1000, 32), -1000);
        assert_eq!(rounding_divide_by_pot_x86(1000, 32), 1001);
        for e in 0..=31 {
            for x in [i32::MIN, -12345, -1, 0, 1, 7, 12345, i32::MAX] {
                assert_eq!(
                    rounding_divide_by_pot_x86(x, e),
                    crate::quant::fixedpoint::rounding_divide_by_pot(x, e),
                    "{x} {e}"
                );
            }
        }
        assert_eq!(count_leading_sign_bits(0), 31);
        assert_eq!(count_leading_sign_bits(-1), 31);
        assert_eq!(count_leading_sign_bits(-128), 24);
        assert_eq!(count_leading_sign_bits(128), 23);
        assert_eq!(count_leading_sign_bits(i32::MIN), 0);
    }

    #[test]
    fn comparison_scaling_orders_real_values() {
        let q = CompareQuant::new(p(0.05, 3), p(0.02, -10)).unwrap();
        for x1 in -128..=127 {
            for x2 in (-128..=127).step_by(3) {
                let (r1, r2) = (0.05 * f64::from(x1 - 3), 0.02 * f64::from(x2 + 10));
                // Values far enough apart must compare like the reals.
                if (r1 - r2).abs() > 1e-3 {
                    assert_eq!(q.scaled1(x1) < q.scaled2(x2), r1 < r2, "{x1} {x2}");
                }
            }
        }
        assert_eq!(q.scaled1(3), 0);
        assert!(CompareQuant::new(p(1.5, 0), p(0.1, 0)).is_err());
    }

    /// The tables give `apply`'s value for every pair of 8-bit inputs.
    #[test]
    fn term_tables_match_apply_on_every_pair() {
        let sub8 = SubQuant::new::<i8>(
            p(0.02, 5),
            p(0.03, -7),
            p(0.05, -128),
            FusedActivation::Relu,
        )
        .unwrap();
        let subu8 =
            SubQuant::new::<u8>(p(0.1, 128), p(0.07, 3), p(0.2, 100), FusedActivation::None)
                .unwrap();
        let sq = SquaredDifferenceQuant::new(p(0.02, 5), p(0.03, -7), p(0.05, -128)).unwrap();
        let (t_sub8, t_subu8, t_sq) = (
            TermTables::new(sub8, true),
            TermTables::new(subu8, false),
            TermTables::new(sq, true),
        );
        for x in 0..=255u8 {
            for y in 0..=255u8 {
                let (xi, yi) = (i32::from(x as i8), i32::from(y as i8));
                assert_eq!(t_sub8.apply(x, y), sub8.apply(xi, yi));
                assert_eq!(t_sq.apply(x, y), sq.apply(xi, yi));
                assert_eq!(t_subu8.apply(x, y), subu8.apply(i32::from(x), i32::from(y)));
            }
        }
    }
}
