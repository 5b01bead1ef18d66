//! Fixed-point primitives with TFLite's exact rounding.
//!
//! These reproduce, bit for bit, `QuantizeMultiplier` (`quantization_util.cc`), the
//! double-rounding `MultiplyByQuantizedMultiplier` family (`kernels/internal/common.h/.cc`,
//! the default build: `TFLITE_SINGLE_ROUNDING` unset) and the gemmlowp `fixedpoint.h`
//! helpers that the reference softmax uses.
//!
//! Integer overflow is never a panic here: where TFLite relies on two's-complement
//! wrap-around (formally undefined behaviour in C++, but what every compiler emits) we use
//! `wrapping_*`, and where it relies on x86 conversion behaviour we emulate that (see
//! [`f32_to_i32_x86`]).

use super::error::QuantError;

/// A quantized multiplier: `real ≈ multiplier · 2^(shift − 31)`, `multiplier` in
/// `[2^30, 2^31)` (or 0, or negative for negative reals).
pub type QuantizedMultiplier = (i32, i32);

/// Splits a finite, non-zero `f64` into `(q, e)` with `|q|` in `[0.5, 1)` and `x = q·2^e`,
/// like C's `frexp`.
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    if exp_bits == 0 {
        // Subnormal: scale into the normal range first so the exponent field is meaningful.
        let (q, e) = frexp(x * f64::from_bits(0x4350_0000_0000_0000)); // 2^54
        return (q, e - 54);
    }
    let e = exp_bits - 1022;
    let q = f64::from_bits((bits & !(0x7ff_u64 << 52)) | (1022_u64 << 52));
    (q, e)
}

/// TFLite's `QuantizeMultiplier`: `real ≈ m · 2^(shift − 31)` with `m` rounded half away
/// from zero to 31 fractional bits.
///
/// Zero gives `(0, 0)`; a shift below −31 flushes to `(0, 0)` like TFLite does. Positive
/// shifts are not capped (that only happens in single-rounding builds). Non-finite input is
/// an error (TFLite's result would be meaningless there).
pub fn quantize_multiplier(real: f64) -> Result<QuantizedMultiplier, QuantError> {
    if !real.is_finite() {
        return Err(QuantError::NonFiniteMultiplier(real));
    }
    if real == 0.0 {
        return Ok((0, 0));
    }
    let (q, mut shift) = frexp(real);
    // q·2^31 is exact in f64 and its rounding is half away from zero, as TfLiteRound.
    let mut q_fixed = (q * (1_i64 << 31) as f64).round() as i64;
    if q_fixed == 1_i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return Ok((0, 0));
    }
    Ok((q_fixed as i32, shift))
}

/// Whether the AVX2 requantization may take these multipliers: none is `i32::MIN`, the one
/// multiplier for which the doubling high multiply can saturate (real multipliers lie in
/// `[2^30, 2^31)`; only a negative scale could produce it). Layers with such a multiplier
/// run the scalar kernels.
pub(crate) fn multipliers_fit(multipliers: &[i32]) -> bool {
    !multipliers.contains(&i32::MIN)
}

/// `QuantizeMultiplierSmallerThanOneExp`: requires `0 < real < 1`; the shift is ≤ 0.
pub fn quantize_multiplier_smaller_than_one_exp(
    real: f64,
) -> Result<QuantizedMultiplier, QuantError> {
    if !(real > 0.0 && real < 1.0) {
        return Err(QuantError::MultiplierOutOfRange {
            what: "smaller-than-one",
            value: real,
        });
    }
    let (m, s) = quantize_multiplier(real)?;
    if s > 0 {
        // Only reachable through rounding up to 1.0; TFLite's CHECK fails there too.
        return Err(QuantError::MultiplierOutOfRange {
            what: "smaller-than-one",
            value: real,
        });
    }
    Ok((m, s))
}

/// `QuantizeMultiplierGreaterThanOne`: requires `real > 1`; the shift is ≥ 0.
pub fn quantize_multiplier_greater_than_one(real: f64) -> Result<QuantizedMultiplier, QuantError> {
    if !real.is_finite() || real <= 1.0 {
        return Err(QuantError::MultiplierOutOfRange {
            what: "greater-than-one",
            value: real,
        });
    }
    quantize_multiplier(real)
}

/// gemmlowp `SaturatingRoundingDoublingHighMul`: `(a·b + nudge) / 2^31` truncated toward
/// zero, nudge = 2^30 for a non-negative product and 1 − 2^30 otherwise; only
/// `i32::MIN · i32::MIN` saturates (to `i32::MAX`).
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Rust's `/` truncates toward zero like C's; the quotient fits in i32 except for the
    // saturated case handled above.
    ((ab + nudge) / (1_i64 << 31)) as i32
}

/// gemmlowp `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from zero.
///
/// Precondition: `exponent` in `[0, 31]` (larger values are treated as 31).
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let e = exponent.clamp(0, 31);
    let mask = ((1_i64 << e) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> e) + i32::from(remainder > threshold)
}

/// Multiplies by `2^shift` with TFLite's `1 << shift` semantics on x86: the shift count is
/// taken mod 32 and the product wraps.
#[inline]
fn wrapping_mul_pow2(x: i32, shift: i32) -> i32 {
    x.wrapping_mul(1_i32.wrapping_shl(shift as u32))
}

/// TFLite's default (double-rounding) `MultiplyByQuantizedMultiplier`:
/// `RDBPOT(SRDHM(x · 2^max(shift, 0), m), max(−shift, 0))`, the left shift wrapping.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.max(0);
    let right = shift.saturating_neg().max(0);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(wrapping_mul_pow2(x, left), multiplier),
        right,
    )
}

/// `MultiplyByQuantizedMultiplierSmallerThanOneExp` (double rounding): no left shift;
/// `shift` ≤ 0.
#[inline]
pub fn multiply_by_quantized_multiplier_smaller_than_one_exp(
    x: i32,
    multiplier: i32,
    shift: i32,
) -> i32 {
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x, multiplier),
        shift.saturating_neg(),
    )
}

/// `MultiplyByQuantizedMultiplierGreaterThanOne` (double rounding): `shift` ≥ 0, no
/// rounding division.
#[inline]
pub fn multiply_by_quantized_multiplier_greater_than_one(
    x: i32,
    multiplier: i32,
    shift: i32,
) -> i32 {
    saturating_rounding_doubling_high_mul(wrapping_mul_pow2(x, shift), multiplier)
}

/// The 64-bit-accumulator `MultiplyByQuantizedMultiplier` (used by int16 kernels):
/// the multiplier is reduced to 16 bits (`(m + 2^15) >> 16`, capped at `0x7FFF`), then
/// `(x·m' + 2^(14−shift)) >> (15−shift)`, truncated to `i32`.
///
/// Preconditions (as TFLite's asserts): `multiplier ≥ 0`, `shift` in `[−31, 7]`,
/// `|x| < 2^47`. Outside them the result is meaningless but no panic occurs.
#[inline]
pub fn multiply_by_quantized_multiplier_i64(x: i64, multiplier: i32, shift: i32) -> i32 {
    let reduced = if multiplier < 0x7FFF_0000 {
        (multiplier.wrapping_add(1 << 15)) >> 16
    } else {
        0x7FFF
    };
    let total_shift = 15_i32.saturating_sub(shift).clamp(1, 63) as u32;
    let round = 1_i64 << (total_shift - 1);
    let v = x.wrapping_mul(i64::from(reduced)).wrapping_add(round);
    (v >> total_shift) as i32
}

/// C's `round` / `roundf` on an `f32`: half away from zero.
#[inline]
pub fn round_half_away_f32(x: f32) -> f32 {
    x.round()
}

/// C's `round` on an `f64`: half away from zero.
#[inline]
pub fn round_half_away_f64(x: f64) -> f64 {
    x.round()
}

/// `static_cast<int32_t>(float)` as x86 executes it (`cvttss2si`): truncation toward
/// zero, and the "integer indefinite" `i32::MIN` for NaN and out-of-range values.
///
/// TFLite reference kernels hit this for huge or non-finite inputs (e.g. QUANTIZE of 1e20
/// gives −128 on x86, not 127); Rust's saturating `as` would differ.
#[inline]
pub fn f32_to_i32_x86(x: f32) -> i32 {
    if x.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        i32::MIN
    } else {
        x as i32
    }
}

/// `static_cast<int32_t>(double)` as x86 executes it (`cvttsd2si`); see [`f32_to_i32_x86`].
#[inline]
pub fn f64_to_i32_x86(x: f64) -> i32 {
    if x.is_nan() || x >= 2_147_483_648.0 || x <= -2_147_483_649.0 {
        i32::MIN
    } else {
        x as i32
    }
}

/// `f64_to_i32_x86(x.round())` (round half away from zero, then the x86 conversion) without
/// the C library's `round`, which baseline x86-64 calls out of line (no `roundsd` before
/// SSE4.1) and which dominated per-channel FULLY_CONNECTED requantization. Truncates to i64
/// (exact below 2^62 in magnitude), then steps away from zero when the fraction left, which
/// `x − trunc(x)` gives exactly, is at least one half.
#[inline]
pub fn round_to_i32_x86(x: f64) -> i32 {
    const LIMIT: f64 = (1u64 << 62) as f64;
    if x.is_nan() || x.abs() >= LIMIT {
        // NaN, infinities and huge values: far outside i32 whichever way they round.
        return i32::MIN;
    }
    let t = x as i64;
    let frac = x - t as f64;
    // Written without branches: which way a product rounds is data, and mispredicted
    // jumps cost more than the comparisons.
    let r = t + i64::from(frac >= 0.5) - i64::from(frac <= -0.5);
    i32::try_from(r).unwrap_or(i32::MIN)
}

// ---------------------------------------------------------------------------------------
// gemmlowp fixed-point math used by the reference softmax. Raw values are i32; the number
// of integer bits of each quantity is given in the function name or documentation.
// ---------------------------------------------------------------------------------------

/// gemmlowp `SaturatingRoundingMultiplyByPOT<E>` for `E > 0`: saturating `x · 2^E`.
#[inline]
fn saturating_shift_left(x: i32, exponent: u32) -> i32 {
    let threshold = (1_i32 << (31 - exponent)) - 1;
    if x > threshold {
        i32::MAX
    } else if x < -threshold {
        i32::MIN
    } else {
        x << exponent
    }
}

/// gemmlowp `exp_on_interval_between_negative_one_quarter_and_0_excl` on a Q0.31 value.
fn exp_on_interval_neg_quarter_to_zero(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8) in Q0.31
    const ONE_THIRD: i32 = 715_827_883; // 1/3 in Q0.31
    let srdhm = saturating_rounding_doubling_high_mul;
    // Taylor expansion around −1/8: x = a + 1/8.
    let x = a.wrapping_add(1 << 28);
    let x2 = srdhm(x, x);
    let x3 = srdhm(x2, x);
    let x4 = srdhm(x2, x2);
    let x4_over_4 = rounding_divide_by_pot(x4, 2);
    let poly = rounding_divide_by_pot(
        srdhm(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2),
        1,
    );
    CONSTANT_TERM.wrapping_add(srdhm(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// gemmlowp `exp_on_negative_values` for an input with 5 integer bits (Q5.26), result in
/// Q0.31. Meaningful for `a ≤ 0`.
pub fn exp_on_negative_values_q5(a: i32) -> i32 {
    const INTEGER_BITS: i32 = 5;
    const FRACTIONAL_BITS: i32 = 31 - INTEGER_BITS;
    let one_quarter: i32 = 1 << (FRACTIONAL_BITS - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_neg_quarter_to_zero(saturating_shift_left(
        a_mod_quarter_minus_one_quarter,
        INTEGER_BITS as u32,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // exp(−2^k) for k = −2..=4 in Q0.31, applied for each set bit of the remainder.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if remainder & (1 << (FRACTIONAL_BITS + exponent)) != 0 {
            result = saturating_rounding_doubling_high_mul(result, multiplier);
        }
    }
    // With 5 integer bits gemmlowp applies no extra clamp below −32.
    if a == 0 {
        result = i32::MAX;
    }
    result
}

/// gemmlowp `RoundingHalfSum` on i32.
#[inline]
fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = i64::from(a) + i64::from(b);
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// gemmlowp `one_over_one_plus_x_for_x_in_0_1` on a Q0.31 value, result in Q0.31.
pub fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    const F2_48_OVER_17: i32 = 1_515_870_810;
    const F2_NEG_32_OVER_17: i32 = -1_010_580_540;
    const F2_ONE: i32 = 1 << 29;
    let srdhm = saturating_rounding_doubling_high_mul;
    let half_denominator = rounding_half_sum(a, i32::MAX);
    // Newton–Raphson iterations in Q2.29.
    let mut x = F2_48_OVER_17.wrapping_add(srdhm(half_denominator, F2_NEG_32_OVER_17));
    for _ in 0..3 {
        let half_denominator_times_x = srdhm(half_denominator, x);
        let one_minus = F2_ONE.wrapping_sub(half_denominator_times_x);
        x = x.wrapping_add(saturating_shift_left(srdhm(x, one_minus), 2));
    }
    // x/2 keeps the raw value (Q1.30), then rescale to Q0.31.
    saturating_shift_left(x, 1)
}

/// TFLite's `GetReciprocal`: for a positive fixed-point `x` with `x_integer_digits`
/// integer bits, returns `(1/x` scaled into Q0.31`, num_bits_over_unit)`.
pub fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let num_bits_over_unit = x_integer_digits - headroom_plus_one;
    let shifted = (x as u32)
        .checked_shl(headroom_plus_one as u32)
        .unwrap_or(0);
    let shifted_sum_minus_one = shifted.wrapping_sub(1_u32 << 31) as i32;
    (
        one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
        num_bits_over_unit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact `round(num / den)` with ties away from zero, for `den > 0`.
    fn div_round_half_away(num: i128, den: i128) -> i128 {
        let q = num.abs() / den;
        let r = num.abs() % den;
        let q = if 2 * r >= den { q + 1 } else { q };
        if num < 0 {
            -q
        } else {
            q
        }
    }

    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *state >> 11
    }

    #[test]
    fn frexp_matches_definition() {
        for &x in &[1.0, 0.5, 0.75, 3.0, 1e-300, 5e-324, -2.5, 1e300, 0.1] {
            let (q, e) = frexp(x);
            assert!((0.5..1.0).contains(&q.abs()), "{x}: q={q}");
            // Scale in steps so no intermediate power of two overflows or underflows.
            let mut v = q;
            let mut k = e;
            while k > 500 {
                v *= 2f64.powi(500);
                k -= 500;
            }
            while k < -500 {
                v *= 2f64.powi(-500);
                k += 500;
            }
            assert_eq!(v * 2f64.powi(k), x, "{x}");
        }
    }

    #[test]
    fn quantize_multiplier_edges() {
        assert_eq!(quantize_multiplier(0.0).unwrap(), (0, 0));
        assert_eq!(quantize_multiplier(1.0).unwrap(), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.5).unwrap(), (1 << 30, 0));
        assert_eq!(quantize_multiplier(0.25).unwrap(), (1 << 30, -1));
        // 1 − 2^-40 rounds up to 2^31, which is halved with the shift bumped.
        assert_eq!(
            quantize_multiplier(1.0 - 2f64.powi(-40)).unwrap(),
            (1 << 30, 1)
        );
        // Tiny values flush to zero once the shift would be below −31.
        assert_eq!(quantize_multiplier(2f64.powi(-33)).unwrap(), (0, 0));
        assert_eq!(quantize_multiplier(2f64.powi(-32)).unwrap(), (1 << 30, -31));
        // Large values keep large shifts (double-rounding builds do not cap them).
        assert_eq!(quantize_multiplier(2f64.powi(40)).unwrap(), (1 << 30, 41));
        assert_eq!(quantize_multiplier(-0.5).unwrap(), (-(1 << 30), 0));
        assert!(quantize_multiplier(f64::NAN).is_err());
        assert!(quantize_multiplier(f64::INFINITY).is_err());
        // A tie at the 31st fractional bit rounds away from zero: 0.5 + 2^-32 = (2^30 + 0.5)/2^31.
        assert_eq!(
            quantize_multiplier(0.5 + 2f64.powi(-32)).unwrap(),
            ((1 << 30) + 1, 0)
        );
    }

    #[test]
    fn quantize_multiplier_is_accurate() {
        let mut s = 7;
        for _ in 0..2000 {
            let mant = (lcg(&mut s) % 1_000_000) as f64 / 1_000_000.0 + 1e-7;
            let exp = (lcg(&mut s) % 40) as i32 - 20;
            let d = mant * 2f64.powi(exp);
            let (m, sh) = quantize_multiplier(d).unwrap();
            assert!((1 << 30..=i32::MAX).contains(&m));
            let back = f64::from(m) * 2f64.powi(sh - 31);
            assert!((back - d).abs() <= d * 2f64.powi(-31), "{d} -> {m},{sh}");
        }
    }

    #[test]
    fn smaller_and_greater_than_one_checks() {
        assert!(quantize_multiplier_smaller_than_one_exp(0.0).is_err());
        assert!(quantize_multiplier_smaller_than_one_exp(1.0).is_err());
        assert!(quantize_multiplier_smaller_than_one_exp(1.0 - 2f64.powi(-40)).is_err());
        assert_eq!(
            quantize_multiplier_smaller_than_one_exp(0.375).unwrap(),
            (3 << 29, -1)
        );
        assert!(quantize_multiplier_greater_than_one(1.0).is_err());
        assert_eq!(
            quantize_multiplier_greater_than_one(3.0).unwrap(),
            (3 << 29, 2)
        );
    }

    fn srdhm_exact(a: i32, b: i32) -> i32 {
        // Saturation only for MIN·MIN; otherwise ab / 2^31 rounded to nearest with ties
        // toward +∞ (the negative-side nudge 1 − 2^30 plus truncation toward zero is
        // exactly floor(ab/2^31 + 1/2)).
        if a == i32::MIN && b == i32::MIN {
            return i32::MAX;
        }
        (i128::from(a) * i128::from(b) + (1 << 30)).div_euclid(1 << 31) as i32
    }

    #[test]
    fn srdhm_saturation_and_ties() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MAX),
            -i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MAX, i32::MAX),
            i32::MAX - 1
        );
        // Ties go toward +∞: ab = 2^30 (0.5) gives 1, ab = −2^30 (−0.5) gives 0,
        // ab = −3·2^30 (−1.5) gives −1.
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 15, 1 << 15), 1);
        assert_eq!(
            saturating_rounding_doubling_high_mul(-(1 << 15), 1 << 15),
            0
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(-(3 << 15), 1 << 15),
            -1
        );
        assert_eq!(saturating_rounding_doubling_high_mul(3 << 14, 1 << 15), 1);
        let mut s = 11;
        for _ in 0..20_000 {
            let a = lcg(&mut s) as i32;
            let b = lcg(&mut s) as i32;
            assert_eq!(
                saturating_rounding_doubling_high_mul(a, b),
                srdhm_exact(a, b)
            );
            let a = (lcg(&mut s) % 2000) as i32 - 1000;
            assert_eq!(
                saturating_rounding_doubling_high_mul(a, b),
                srdhm_exact(a, b)
            );
        }
    }

    #[test]
    fn rdbpot_rounds_half_away() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(-3, 1), -2);
        assert_eq!(rounding_divide_by_pot(3, 1), 2);
        assert_eq!(rounding_divide_by_pot(-4, 3), -1);
        assert_eq!(rounding_divide_by_pot(-4, 4), 0);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
        let mut s = 3;
        for _ in 0..20_000 {
            let x = lcg(&mut s) as i32;
            let e = (lcg(&mut s) % 32) as i32;
            let want = div_round_half_away(i128::from(x), 1 << e) as i32;
            assert_eq!(rounding_divide_by_pot(x, e), want, "{x} {e}");
        }
    }

    /// MBQM computed from its definition with wide integers: the left shift wraps in 32
    /// bits, then two separate round-half-away steps.
    fn mbqm_exact(x: i32, m: i32, shift: i32) -> i32 {
        let left = shift.max(0);
        let right = (-shift).max(0);
        let shifted = (i64::from(x) << left) as i32; // wraps like the C++ code
        let high = srdhm_exact(shifted, m);
        div_round_half_away(i128::from(high), 1_i128 << right) as i32
    }

    #[test]
    fn mbqm_matches_definition() {
        let mut s = 5;
        for _ in 0..20_000 {
            let x = lcg(&mut s) as i32 >> (lcg(&mut s) % 31);
            let m = (1 << 30) + (lcg(&mut s) % (1 << 30)) as i32;
            let shift = (lcg(&mut s) % 40) as i32 - 31;
            assert_eq!(
                multiply_by_quantized_multiplier(x, m, shift),
                mbqm_exact(x, m, shift),
                "{x} {m} {shift}"
            );
        }
        // The left shift wraps before the multiply.
        assert_eq!(
            multiply_by_quantized_multiplier(1 << 30, 1 << 30, 2),
            mbqm_exact(1 << 30, 1 << 30, 2)
        );
        assert_eq!(multiply_by_quantized_multiplier(1 << 30, 1 << 30, 2), 0);
        // Double rounding differs from one exact rounding: 11·0.5 = 5.5 → SRDHM gives 6,
        // then 6/4 = 1.5 → 2, whereas 11/8 = 1.375 rounds to 1 in one step.
        assert_eq!(multiply_by_quantized_multiplier(11, 1 << 30, -2), 2);
        // Negative ties: −5·0.5 = −2.5 → SRDHM gives −2 (ties toward +∞), −2/2 = −1.
        assert_eq!(multiply_by_quantized_multiplier(-5, 1 << 30, -1), -1);
    }

    #[test]
    fn smaller_than_one_and_greater_than_one_variants() {
        let mut s = 9;
        for _ in 0..5000 {
            let x = lcg(&mut s) as i32 >> 8;
            let m = (1 << 30) + (lcg(&mut s) % (1 << 30)) as i32;
            let sh = -((lcg(&mut s) % 32) as i32);
            assert_eq!(
                multiply_by_quantized_multiplier_smaller_than_one_exp(x, m, sh),
                mbqm_exact(x, m, sh)
            );
            let sh = (lcg(&mut s) % 8) as i32;
            assert_eq!(
                multiply_by_quantized_multiplier_greater_than_one(x, m, sh),
                mbqm_exact(x, m, sh)
            );
        }
    }

    #[test]
    fn mbqm_i64_matches_definition() {
        let mut s = 13;
        for _ in 0..5000 {
            let x = (lcg(&mut s) as i64) >> 17; // |x| < 2^47
            let m = (lcg(&mut s) % (1 << 31)) as i32;
            let shift = (lcg(&mut s) % 39) as i32 - 31;
            let reduced = if m < 0x7FFF_0000 {
                (i128::from(m) + (1 << 15)) >> 16
            } else {
                0x7FFF
            };
            let total = 15 - shift;
            let want = ((i128::from(x) * reduced + (1_i128 << (total - 1))) >> total) as i32;
            assert_eq!(multiply_by_quantized_multiplier_i64(x, m, shift), want);
        }
        // Multipliers at or above 0x7FFF0000 are capped at 0x7FFF rather than rounded up
        // to 2^15: 2^20·32767/2^15 + 1/2 = 1048544.5 → 1048544.
        assert_eq!(
            multiply_by_quantized_multiplier_i64(1 << 20, i32::MAX, 0),
            1_048_544
        );
    }

    #[test]
    fn x86_conversions() {
        assert_eq!(f32_to_i32_x86(2.9), 2);
        assert_eq!(f32_to_i32_x86(-2.9), -2);
        assert_eq!(f32_to_i32_x86(f32::NAN), i32::MIN);
        assert_eq!(f32_to_i32_x86(3e9), i32::MIN);
        assert_eq!(f32_to_i32_x86(-3e9), i32::MIN);
        assert_eq!(f32_to_i32_x86(2_147_483_648.0), i32::MIN);
        assert_eq!(f32_to_i32_x86(-2_147_483_648.0), i32::MIN);
        assert_eq!(f32_to_i32_x86(2_147_483_520.0), 2_147_483_520);
        assert_eq!(f64_to_i32_x86(2_147_483_647.9), i32::MAX);
        assert_eq!(f64_to_i32_x86(-2_147_483_648.9), i32::MIN);
        assert_eq!(f64_to_i32_x86(f64::INFINITY), i32::MIN);
        assert_eq!(round_half_away_f32(2.5), 3.0);
        assert_eq!(round_half_away_f32(-2.5), -3.0);
        assert_eq!(round_half_away_f64(-0.5), -1.0);
    }

    #[test]
    fn exp_on_negative_values_is_close_to_exp() {
        for i in 0..=2000 {
            let a = -((i64::from(i) << 26) / 100) as i32; // −20.00 … 0 in Q5.26
            let got = f64::from(exp_on_negative_values_q5(a)) / 2f64.powi(31);
            let want = (f64::from(a) / 2f64.powi(26)).exp();
            // gemmlowp's 4th-order Taylor step is accurate to about 3e-7.
            assert!(
                (got - want).abs() < 1e-9 + want * 5e-7,
                "{a}: {got} vs {want}"
            );
        }
        assert_eq!(exp_on_negative_values_q5(0), i32::MAX);
    }

    #[test]
    fn reciprocal_is_close() {
        for k in 1..2000 {
            let x = k * 997 + (1 << 19); // values ≥ 1.0 in Q12.19
            let (r, bits) = get_reciprocal(x, 12);
            let got = f64::from(r) / 2f64.powi(31) / 2f64.powi(bits);
            let want = 2f64.powi(19) / f64::from(x);
            assert!((got - want).abs() < want * 1e-8, "{x}: {got} vs {want}");
        }
    }

    #[test]
    fn round_to_i32_matches_round_then_convert() {
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999999999999994,
            -0.49999999999999994,
            4503599627370495.5,
            2147483647.4,
            2147483647.5,
            -2147483648.4,
            -2147483648.5,
            -2147483649.0,
            2147483648.0,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            (1u64 << 62) as f64,
            -((1u64 << 62) as f64),
        ];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Halves and near-halves of every size, and random bit patterns.
            let v = (x >> 11) as f64 / (1u64 << (x % 60)) as f64;
            xs.push(if i % 2 == 0 { v } else { -v });
            xs.push((v * 2.0).round() / 2.0);
            xs.push(f64::from_bits(x));
        }
        for &v in &xs {
            assert_eq!(round_to_i32_x86(v), f64_to_i32_x86(v.round()), "{v:e}");
        }
    }
}
