//! Branch-free float transcendentals for the float activations (LOGISTIC, TANH, EXP, ELU,
//! GELU), written so that LLVM vectorizes a loop over a slice: only multiplies, adds,
//! comparisons, selects and integer bit operations, no calls. Compiled inside a
//! `#[target_feature]` function the same code runs 8 lanes wide on AVX2, and 4 on NEON or
//! SSE2 otherwise.
//!
//! The reference kernels call the C library's `expf` per element (or Eigen's
//! approximations); these are not bit-identical with it but accurate to a few ulp, far
//! inside the float tolerance (`1e-5 · max(1, max|ref|)`). The AVX2 and aarch64 copies use
//! fused multiply-adds (`F = true`), the x86 portable copy does not, so their last bits may
//! differ; within a tier they do not depend on the thread count.

/// `1.5 · 2^23`: adding it rounds a float of magnitude below 2^22 to an integer, which then
/// sits in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two: the high part has few significant bits, so `k · LN2_HI` is exact for
/// the `|k| ≤ 151` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `a·b + c`: fused where the tier has FMA (`F`), as two roundings otherwise. (A fused
/// multiply-add without the hardware instruction is a slow library call.)
#[inline(always)]
fn madd<const F: bool>(a: f32, b: f32, c: f32) -> f32 {
    if F {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Whether the portable copy may use fused multiply-adds: every aarch64 CPU has them.
pub(crate) const PORTABLE_FMA: bool = cfg!(target_arch = "aarch64");

/// `e^r · 2^k` split: `x = k·ln2 + r`, `|r| ≤ ln2/2`, for `|x·log2 e| < 2^22`; returns
/// `(e^r, k)`.
#[inline(always)]
fn exp_reduced<const F: bool>(x: f32) -> (f32, i32) {
    let v = madd::<F>(x, LOG2_E, ROUND_MAGIC);
    let kf = v - ROUND_MAGIC;
    let k = (v.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let r = madd::<F>(kf, -LN2_HI, x);
    let r = madd::<F>(kf, -LN2_LO, r);
    // e^r as 1 + r + r²·p(r), p the minimax fit of Cephes' `expf`.
    let mut p = 1.987_569_1e-4_f32;
    p = madd::<F>(p, r, 1.398_199_9e-3);
    p = madd::<F>(p, r, 8.333_452e-3);
    p = madd::<F>(p, r, 4.166_579_6e-2);
    p = madd::<F>(p, r, 1.666_666_5e-1);
    p = madd::<F>(p, r, 0.5);
    (madd::<F>(p, r * r, r + 1.0), k)
}

/// `2^k` for `−126 ≤ k ≤ 127`.
#[inline(always)]
fn pow2(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `e^x` for every float: overflow to infinity above 88.72, gradual underflow to 0 below
/// −87.3, NaN stays NaN; relative error within 1.5e-7 (see the tests).
#[inline(always)]
pub fn exp<const F: bool>(x: f32) -> f32 {
    // The clamp keeps `k` small; beyond it the result is infinity or 0 anyway (NaN passes).
    let (e, k) = exp_reduced::<F>(x.clamp(-104.0, 89.0));
    // 2^k in two factors, each a normal float for −151 ≤ k ≤ 129: the product then
    // overflows or underflows (gradually) exactly where e^x does.
    let k1 = k >> 1;
    e * pow2(k1) * pow2(k - k1)
}

/// `1.5 · 2^23 + 127`: adding it rounds a float of magnitude below 2^22 to an integer `n`
/// and leaves `n + 127` (the biased exponent of `2^n`) in the low mantissa bits, so that the
/// sum's bits shifted left by 23 are `2^n` (for `−126 ≤ n ≤ 128`).
const EXP2_MAGIC: f32 = 12_583_039.0;
/// `ln 2` rounded to float. One product `n · LN2` (|n| ≤ 126) is off by at most 2.4e-7
/// relative in `e^r`, which the sigmoid turns into an absolute error below 6e-8.
const LN2: f32 = std::f32::consts::LN_2;
/// `e^r ≈ 1 + r·(C1 + C2·r + C3·r² + C4·r³ + C5·r⁴)` on `|r| ≤ ln2/2`: a fit of the relative
/// error (made with numpy, reweighted least squares), within 1.5e-7.
const EXPM1_POLY: [f32; 5] = [
    0.999_999_64,
    0.499_990_8,
    0.166_677_16,
    0.041_907_247,
    0.008_288_608,
];

/// The sigmoid, `1/(1 + e^−x)`, from `f = e/(1 + e)` with `e = e^−|x|` (never above 1):
/// `f` for negative `x`, `1 − f` for positive. About 20 vector instructions per 8 values
/// (one reduction step, a degree-5 polynomial, `2^n` from the rounding's bits, one
/// division), where the earlier form with the reference's cut-offs took about 45. The
/// reference's cut-offs (exactly 1 above 16.619…, `e^x` below −9) are not reproduced: the
/// values there differ from them by under 6e-8 and 1.5e-8 absolute. Below −87.33 `e` is 0
/// where the reference's `e^x` runs through the subnormals (an error under 1.2e-38).
/// A NaN input is returned as it is; ±∞ give 1 and 0, ±0 give 0.5.
#[inline(always)]
pub fn logistic<const F: bool>(x: f32) -> f32 {
    const MIN: f32 = -87.33;
    let positive = x > 0.0;
    // `−|x|`, but a NaN passes unchanged (sign and payload): the result is then `x` itself,
    // so that `x · logistic(x)` (SiLU) is the same NaN whichever operand the product takes
    // it from.
    let z = if positive { -x } else { x };
    // Not `max`, which would turn NaN into the bound.
    let zc = if z < MIN { MIN } else { z };
    let v = madd::<F>(zc, LOG2_E, EXP2_MAGIC);
    let two_n = f32::from_bits(v.to_bits() << 23);
    let n = v - EXP2_MAGIC;
    let r = madd::<F>(n, -LN2, zc);
    let [c1, c2, c3, c4, c5] = EXPM1_POLY;
    let mut p = madd::<F>(c5, r, c4);
    p = madd::<F>(p, r, c3);
    p = madd::<F>(p, r, c2);
    p = madd::<F>(p, r, c1);
    // e^z = 2^n · (1 + r·p)
    let e = madd::<F>(r * two_n, p, two_n);
    let e = if z < MIN { 0.0 } else { e };
    let f = e / (1.0 + e);
    if positive {
        1.0 - f
    } else {
        f
    }
}

/// `tanh(x) = sign(x)·(1 − e^−2|x|)/(1 + e^−2|x|)`; absolute error within 2e-7 (see the
/// tests).
#[inline(always)]
pub fn tanh<const F: bool>(x: f32) -> f32 {
    let e = exp::<F>(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

/// ELU with alpha 1: `e^x − 1` for negative inputs.
#[inline(always)]
pub fn elu<const F: bool>(x: f32) -> f32 {
    let e = exp::<F>(x) - 1.0;
    if x < 0.0 {
        e
    } else {
        x
    }
}

/// `erfc(z)`: Numerical Recipes' Chebyshev fit `t·e^(−z² + P(t))`, `t = 1/(1 + |z|/2)`,
/// whose fractional error is below 1.2e-7 for `z ≥ 0`, and `2 − erfc(−z)` below 0.
#[inline(always)]
pub fn erfc<const F: bool>(z: f32) -> f32 {
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    let mut p = 0.170_872_77_f32;
    p = madd::<F>(p, t, -0.822_152_23);
    p = madd::<F>(p, t, 1.488_515_9);
    p = madd::<F>(p, t, -1.135_204);
    p = madd::<F>(p, t, 0.278_868_07);
    p = madd::<F>(p, t, -0.186_288_06);
    p = madd::<F>(p, t, 0.096_784_18);
    p = madd::<F>(p, t, 0.374_091_96);
    p = madd::<F>(p, t, 1.000_023_7);
    p = madd::<F>(p, t, -1.265_512_2);
    let r = t * exp::<F>(p - a * a);
    if z < 0.0 {
        2.0 - r
    } else {
        r
    }
}

/// `sqrt(2/π)` rounded to float, as the reference stores it.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// Exact GELU, `0.5·x·erfc(−x/√2)`.
#[inline(always)]
pub fn gelu_exact<const F: bool>(x: f32) -> f32 {
    0.5 * x * erfc::<F>(x * -std::f32::consts::FRAC_1_SQRT_2)
}

/// Tanh-approximated GELU, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
#[inline(always)]
pub fn gelu_approx<const F: bool>(x: f32) -> f32 {
    0.5 * x * (1.0 + tanh::<F>(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activations::special;

    /// Every `step`-th float bit pattern of each sign, within `lo ..= hi`.
    fn sweep(lo: f32, hi: f32, step: u32) -> impl Iterator<Item = f32> {
        (0..u32::MAX / step)
            .map(move |i| f32::from_bits(i * step))
            .flat_map(|x| [x, -x])
            .filter(move |x| (lo..=hi).contains(x))
    }

    #[test]
    fn exp_is_accurate_over_the_range() {
        exp_accuracy::<false>();
        exp_accuracy::<true>();
    }

    fn exp_accuracy<const F: bool>() {
        let exp = exp::<F>;
        let mut worst = 0.0_f64;
        for x in sweep(-87.0, 88.7, 389) {
            let want = f64::from(x).exp();
            let rel = ((f64::from(exp(x)) - want) / want).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 1.5e-7, "worst relative error {worst:e}");
        // Subnormal results: absolute error below the smallest normal's ulp scale.
        for x in sweep(-104.0, -87.0, 389) {
            let want = f64::from(x).exp();
            assert!((f64::from(exp(x)) - want).abs() < 2e-45, "{x}");
        }
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-200.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
        // Where the C library's expf overflows and where it is still finite.
        assert_eq!(exp(88.73), f32::INFINITY);
        assert!(exp(88.72).is_finite());
    }

    /// A NaN comes out of the sigmoid as it went in, sign and payload, so that SiLU's
    /// `x · logistic(x)` does not depend on which NaN operand the product returns.
    #[test]
    fn logistic_returns_a_nan_input_unchanged() {
        for bits in [0x7fc0_0000_u32, 0xffc0_0000, 0x7fc0_1234, 0xffa0_0001] {
            let x = f32::from_bits(bits);
            assert_eq!(logistic::<false>(x).to_bits(), x.to_bits() | 0x0040_0000);
            assert_eq!(logistic::<true>(x).to_bits(), x.to_bits() | 0x0040_0000);
        }
    }

    #[test]
    fn activations_follow_the_reference_within_tolerance() {
        activations_accuracy::<false>();
        activations_accuracy::<true>();
    }

    fn activations_accuracy<const F: bool>() {
        let cases: [(fn(f32) -> f32, fn(f32) -> f32, &str); 5] = [
            (logistic::<F>, special::logistic, "logistic"),
            (tanh::<F>, f32::tanh, "tanh"),
            (elu::<F>, special::elu, "elu"),
            (gelu_exact::<F>, special::gelu_exact, "gelu"),
            (gelu_approx::<F>, special::gelu_approx, "gelu_approx"),
        ];
        for (fast, reference, name) in cases {
            let mut worst = 0.0_f32;
            for x in sweep(-200.0, 200.0, 1999) {
                let (a, b) = (fast(x), reference(x));
                // The float tolerance: absolute, scaled by max(1, |value|).
                worst = worst.max((a - b).abs() / b.abs().max(1.0));
            }
            assert!(worst < 5e-7, "{name}: worst scaled error {worst:e}");
            for x in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 0.0, -0.0] {
                let (a, b) = (fast(x), reference(x));
                assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) || a == b,
                    "{name}({x}) = {a}, reference {b}"
                );
            }
        }
    }
}
