//! gemmlowp's 16-bit fixed-point logistic and tanh, which TFLite's integer LSTM applies to
//! its int16 gates (`ApplySigmoid` on Q3.12, `ApplyTanh` on Q(b).(15−b)). Values are raw
//! `i16` with a runtime number of integer bits; sums and differences wrap like the C++
//! `int16_t` conversions, products use the saturating rounding doubling high multiply.

use crate::quant::fixedpoint::rounding_divide_by_pot;

/// `a + b`, wrapped to 16 bits.
fn add(a: i16, b: i16) -> i16 {
    a.wrapping_add(b)
}

fn sub(a: i16, b: i16) -> i16 {
    a.wrapping_sub(b)
}

fn sat_add(a: i16, b: i16) -> i16 {
    a.saturating_add(b)
}

/// Saturating rounding doubling high multiply of two Q15-style raws.
fn mul(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    let ab = i32::from(a) * i32::from(b);
    let nudge = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

/// Rounding (half away from zero) right shift.
fn rdbp(x: i16, e: i32) -> i16 {
    if e == 0 {
        return x;
    }
    let x = i32::from(x);
    let mask = (1i32 << e) - 1;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    ((x >> e) + i32::from(remainder > threshold)) as i16
}

/// Multiplies by `2^e`: saturating for `e > 0`, rounding for `e < 0`.
fn mul_pot(x: i16, e: i32) -> i16 {
    if e <= 0 {
        return rdbp(x, -e);
    }
    let threshold = (1i32 << (15 - e)) - 1;
    let xi = i32::from(x);
    if xi > threshold {
        i16::MAX
    } else if xi < -threshold {
        i16::MIN
    } else {
        (xi << e) as i16
    }
}

/// An int32 gemmlowp constant rescaled to 16 bits.
fn constant(raw32: i32) -> i16 {
    rounding_divide_by_pot(raw32, 16) as i16
}

const ONE_Q0: i16 = i16::MAX;

/// `exp(x)` for `x` in `[−1/4, 0)`, Q0.15 in and out.
fn exp_on_interval(a: i16) -> i16 {
    let constant_term = constant(1_895_147_668);
    let one_third = constant(715_827_883);
    let x = add(a, 1 << 12);
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = mul_pot(x4, -2);
    let poly = mul_pot(add(mul(add(x4_over_4, x3), one_third), x2), -1);
    sat_add(constant_term, mul(constant_term, add(x, poly)))
}

/// `exp(a)` for `a ≤ 0` with `int_bits` integer bits; Q0.15 result.
fn exp_on_negative_values(a: i16, int_bits: i32) -> i16 {
    let frac_bits = 15 - int_bits;
    let one_quarter: i16 = 1 << (frac_bits - 2);
    let mask = one_quarter - 1;
    let a_mod = sub(a & mask, one_quarter);
    let mut result = exp_on_interval(mul_pot(a_mod, int_bits));
    let remainder = i32::from(sub(a_mod, a));
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
        if int_bits > exponent {
            let shift = frac_bits + exponent;
            if remainder & (1 << shift) != 0 {
                result = mul(result, constant(multiplier));
            }
        }
    }
    if int_bits > 5 {
        let clamp = constant(-(1 << (36 - int_bits)));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = ONE_Q0;
    }
    result
}

/// Newton iterations for `1 / (1 + a)` shared by logistic and tanh: returns `x` in Q2.13
/// and `(1 + a) / 2` in Q0.15.
fn reciprocal_iterations(a: i16) -> i16 {
    let half_den = {
        let sum = i32::from(a) + i32::from(ONE_Q0);
        let sign = if sum >= 0 { 1 } else { -1 };
        ((sum + sign) / 2) as i16
    };
    let c48_17 = constant(1_515_870_810);
    let c_neg32_17 = constant(-1_010_580_540);
    let one_q2: i16 = 1 << 13;
    let mut x = add(c48_17, mul(half_den, c_neg32_17));
    for _ in 0..3 {
        let hdx = mul(half_den, x);
        let one_minus = sub(one_q2, hdx);
        x = add(x, mul_pot(mul(x, one_minus), 2));
    }
    x
}

/// `1 / (1 + a)` for `a` in `[0, 1]`, Q0.15.
fn one_over_one_plus_x(a: i16) -> i16 {
    // x is 1/(1+a) / 2 ... in Q2.13, read as Q1.14 (×½), then rescaled to Q0.15.
    mul_pot(reciprocal_iterations(a), 1)
}

/// `(1 − a) / (1 + a)` for `a` in `[0, 1]`, Q0.15.
fn one_minus_x_over_one_plus_x(a: i16) -> i16 {
    mul_pot(sub(reciprocal_iterations(a), 1 << 13), 2)
}

/// gemmlowp `logistic` of a raw with `int_bits` integer bits; Q0.15 result.
pub fn logistic(a: i16, int_bits: i32) -> i16 {
    let abs = if a > 0 { a } else { a.wrapping_neg() };
    let pos = one_over_one_plus_x(exp_on_negative_values(abs.wrapping_neg(), int_bits));
    if a == 0 {
        1 << 14
    } else if a > 0 {
        pos
    } else {
        sub(ONE_Q0, pos)
    }
}

/// gemmlowp `tanh` of a raw with `int_bits` integer bits; Q0.15 result.
pub fn tanh(a: i16, int_bits: i32) -> i16 {
    let n = if a < 0 { a } else { a.wrapping_neg() };
    let t = one_minus_x_over_one_plus_x(exp_on_negative_values(n, int_bits + 1));
    if a == 0 {
        0
    } else if a < 0 {
        t.wrapping_neg()
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within a few Q0.15 steps of the real functions over the whole input range.
    #[test]
    fn close_to_real_functions() {
        for int_bits in 0..=6 {
            let scale = f64::from(1u32 << (15 - int_bits));
            for raw in (i16::MIN..=i16::MAX).step_by(7) {
                let x = f64::from(raw) / scale;
                let t = f64::from(tanh(raw, int_bits)) / 32768.0;
                assert!((t - x.tanh()).abs() < 2e-3, "tanh {x}: {t}");
                if int_bits == 3 {
                    let s = f64::from(logistic(raw, int_bits)) / 32768.0;
                    let want = 1.0 / (1.0 + (-x).exp());
                    assert!((s - want).abs() < 2e-3, "logistic {x}: {s} vs {want}");
                }
            }
        }
        assert_eq!(logistic(0, 3), 16384);
        assert_eq!(tanh(0, 3), 0);
    }
}
