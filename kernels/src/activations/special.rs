//! Scalar transcendental helpers with the exact float operation order of TFLite's kernels.
//!
//! TFLite builds the int8 tables of LOGISTIC, TANH, GELU, ELU, EXP and LOG by evaluating a
//! float function on every input value (see [`super::lut`]); the table entries are only
//! reproduced bit for bit if the float function is evaluated with the same operations in the
//! same order. `f32::exp`, `tanh`, `exp_m1` and `ln` call the platform's C math library,
//! exactly like the reference does. Rust's standard library has no `erfc`, so [`erfc_f32`]
//! computes it in `f64` and rounds once, which gives the correctly rounded value.

use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI, PI};

/// `erfc(x)` in `f64`, to about 1e-14 relative accuracy: the Maclaurin series of `erf`
/// below 2.5 (where `1 − erf` loses at most a few digits), the continued fraction of `erfc`
/// above, and `erfc(−x) = 2 − erfc(x)` for negative arguments.
pub fn erfc_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < 0.0 {
        return 2.0 - erfc_f64(-x);
    }
    if x < 2.5 {
        // erf(x) = 2/√π · Σ (−1)^n x^(2n+1) / (n! (2n+1)).
        let x2 = x * x;
        let mut power = x; // (−1)^n x^(2n+1) / n!
        let mut sum = x;
        for n in 1..200 {
            power *= -x2 / n as f64;
            let term = power / (2 * n + 1) as f64;
            sum += term;
            if term.abs() <= 1e-18 * sum.abs() {
                break;
            }
        }
        return 1.0 - sum * FRAC_2_SQRT_PI;
    }
    if x > 27.0 {
        // Below the smallest f64 subnormal.
        return 0.0;
    }
    // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated from
    // the tail; 120 levels are far more than double precision needs for x ≥ 2.5.
    let mut tail = x;
    for k in (1..=120).rev() {
        tail = x + (k as f64 * 0.5) / tail;
    }
    (-x * x).exp() / (tail * PI.sqrt())
}

/// `erfc` of an `f32`, correctly rounded (up to the rare case where the `f64` value lies
/// within 1e-14 of a rounding boundary).
pub fn erfc_f32(x: f32) -> f32 {
    erfc_f64(f64::from(x)) as f32
}

/// `sqrt(2/π)` as the reference stores it: computed in double, rounded to float.
const SQRT_2_OVER_PI: f32 = (FRAC_2_SQRT_PI * FRAC_1_SQRT_2) as f32;

/// Exact GELU, `0.5·x·erfc(−x/√2)`, in the reference's float order.
pub fn gelu_exact(x: f32) -> f32 {
    0.5 * x * erfc_f32(x * -(FRAC_1_SQRT_2 as f32))
}

/// Tanh-approximated GELU, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, in the
/// reference's float order (`x³` as `((0.044715·x)·x)·x`).
pub fn gelu_approx(x: f32) -> f32 {
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh())
}

/// The sigmoid the int8 LOGISTIC table is built from.
pub fn sigmoid_lut(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The float LOGISTIC kernel: 1 above 16.619…, `exp(x)` below −9 (where `1/(1+e^−x)`
/// and `e^x` agree in float), the plain formula in between.
pub fn logistic(x: f32) -> f32 {
    const UPPER: f32 = 16.619_047;
    const LOWER: f32 = -9.0;
    if x > UPPER {
        1.0
    } else if x < LOWER {
        x.exp()
    } else {
        1.0 / (1.0 + (-x).exp())
    }
}

/// ELU with alpha 1: `expm1(x)` for negative inputs.
pub fn elu(x: f32) -> f32 {
    if x < 0.0 {
        x.exp_m1()
    } else {
        x
    }
}

/// HARD_SWISH in float: `x · min(6, max(0, x + 3)) / 6`.
pub fn hard_swish(x: f32) -> f32 {
    // `std::min(6, std::max(0, x + 3))`: a NaN sum becomes 0, as in the reference.
    let shifted = x + 3.0;
    let lo = if 0.0 < shifted { shifted } else { 0.0 };
    let r = if lo < 6.0 { lo } else { 6.0 };
    x * r / 6.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_independent_values() {
        // Values from Python's math.erfc (an independent implementation).
        let cases: [(f64, f64); 9] = [
            (0.0, 1.0),
            (0.1, 0.887_537_083_981_715_2),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_265),
            (2.5, 0.000_406_952_017_444_958_9),
            (3.0, 2.209_049_699_858_543_8e-5),
            (5.0, 1.537_459_794_428_035_1e-12),
            (-1.5, 1.966_105_146_475_310_8),
        ];
        for (x, want) in cases {
            let got = erfc_f64(x);
            assert!(
                ((got - want) / want).abs() < 1e-13,
                "erfc({x}) = {got}, want {want}"
            );
        }
        assert_eq!(erfc_f64(40.0), 0.0);
        assert_eq!(erfc_f64(-40.0), 2.0);
        assert!(erfc_f64(f64::NAN).is_nan());
        // Continuity across the switch between the series and the continued fraction.
        let below = erfc_f64(2.5 - 1e-12);
        let above = erfc_f64(2.5);
        assert!(((below - above) / above).abs() < 1e-10);
    }

    #[test]
    fn gelu_and_friends_match_their_definitions() {
        for i in -40..=40 {
            let x = i as f32 * 0.1;
            let xd = f64::from(x);
            let exact = 0.5 * xd * (1.0 + libm_free_erf(xd / 2f64.sqrt()));
            assert!((f64::from(gelu_exact(x)) - exact).abs() < 1e-6, "{x}");
            let approx =
                0.5 * xd * (1.0 + ((2.0 / PI).sqrt() * (xd + 0.044715 * xd.powi(3))).tanh());
            assert!((f64::from(gelu_approx(x)) - approx).abs() < 1e-6, "{x}");
            let s = 1.0 / (1.0 + (-xd).exp());
            assert!((f64::from(logistic(x)) - s).abs() < 1e-6);
            assert!((f64::from(sigmoid_lut(x)) - s).abs() < 1e-6);
            let e = if xd < 0.0 { xd.exp() - 1.0 } else { xd };
            assert!((f64::from(elu(x)) - e).abs() < 1e-6);
            let h = xd * (xd + 3.0).clamp(0.0, 6.0) / 6.0;
            assert!((f64::from(hard_swish(x)) - h).abs() < 1e-6);
        }
        assert_eq!(logistic(100.0), 1.0);
        assert!(logistic(-100.0) > 0.0);
    }

    /// erf by plain midpoint integration of 2/√π·e^(−t²), independent of the series.
    fn libm_free_erf(x: f64) -> f64 {
        let n = 20_000;
        let h = x / n as f64;
        let s: f64 = (0..n)
            .map(|i| {
                let t = (i as f64 + 0.5) * h;
                (-t * t).exp()
            })
            .sum();
        s * h * FRAC_2_SQRT_PI
    }
}
