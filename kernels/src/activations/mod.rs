//! Elementwise activations (the RELU family, LEAKY_RELU, LOGISTIC, TANH, HARD_SWISH, GELU,
//! ELU, PRELU) and unary math (EXP, LOG, SQRT, RSQRT, SQUARE, ABS, NEG, FLOOR, CEIL, ROUND,
//! SIN, COS).
//!
//! Float kernels are one pass of a scalar function: the transcendental ones branch-free
//! approximations that vectorize ([`vmath`]), the others exact or the C library's, as in the
//! reference. Quantized 8-bit kernels are table lookups:
//! [`lut`] builds the tables, from the reference's float formula or from the fixed-point
//! formulas in [`quant`]. Nothing here depends on the thread count.

pub mod lut;
pub mod quant;
pub mod special;
pub mod vmath;

use crate::activation::Clamp;
use crate::broadcast::{binary_f32, BroadcastPlan};
use crate::isa::Isa;

/// A float elementwise function of one input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryF32 {
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// Clamp to `[−1, 1]`.
    ReluN1To1,
    /// Clamp to `[0, 1]`.
    Relu0To1,
    /// `x > 0 ? x : alpha·x` (alpha may exceed 1 or be negative).
    LeakyRelu(f32),
    /// The sigmoid, with the reference's cut-offs.
    Logistic,
    Tanh,
    /// `x · relu6(x + 3) / 6`.
    HardSwish,
    /// GELU, exact (erfc form) or tanh-approximated.
    Gelu {
        approximate: bool,
    },
    /// ELU with alpha 1.
    Elu,
    Exp,
    Log,
    Sqrt,
    /// `1/√x`.
    Rsqrt,
    Square,
    Abs,
    Neg,
    Floor,
    Ceil,
    /// Round half to even.
    Round,
    Sin,
    Cos,
}

/// `output[i] = f(input[i])`, the call written in the loop so that an `#[inline(always)]`
/// function inlines (and a closure is called directly).
macro_rules! each {
    ($input:expr, $output:expr, $f:expr) => {{
        let f = $f;
        for (o, &x) in $output.iter_mut().zip($input) {
            *o = f(x);
        }
    }};
}

/// `output[i] = op(input[i])` over the common length.
pub fn unary_f32(op: UnaryF32, input: &[f32], output: &mut [f32]) {
    unary_f32_body::<{ vmath::PORTABLE_FMA }>(op, input, output);
}

/// [`unary_f32`] compiled for tier `isa` (if the CPU has it): the loops vectorize wider,
/// the results are the same.
pub fn unary_f32_in(isa: Isa, op: UnaryF32, input: &[f32], output: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.or_generic() == Isa::Avx2 {
        // SAFETY: AVX2 and FMA were just confirmed.
        return unsafe { unary_f32_avx2(op, input, output) };
    }
    let _ = isa;
    unary_f32_body::<{ vmath::PORTABLE_FMA }>(op, input, output);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn unary_f32_avx2(op: UnaryF32, input: &[f32], output: &mut [f32]) {
    unary_f32_body::<true>(op, input, output);
}

/// The transcendental activations use the branch-free [`vmath`] versions, which vectorize;
/// the others are exact or call the C library as the reference does. (The loops are spelled
/// out by `each!`: through a generic `map(f)` LLVM left the function out of line in the
/// AVX2 copy, one call per element.)
#[inline(always)]
fn unary_f32_body<const F: bool>(op: UnaryF32, input: &[f32], output: &mut [f32]) {
    use UnaryF32::*;
    match op {
        Relu => each!(input, output, |x: f32| if x > 0.0 { x } else { 0.0 }),
        Relu6 => each!(input, output, |x: f32| {
            Clamp::RELU6.apply(if x > 0.0 { x } else { 0.0 })
        }),
        ReluN1To1 => each!(input, output, |x: f32| Clamp::RELU_N1_TO_1.apply(x)),
        Relu0To1 => each!(input, output, |x: f32| Clamp { min: 0.0, max: 1.0 }
            .apply(x)),
        LeakyRelu(alpha) => each!(input, output, |x: f32| if x > 0.0 { x } else { x * alpha }),
        Logistic => each!(input, output, vmath::logistic::<F>),
        Tanh => each!(input, output, vmath::tanh::<F>),
        HardSwish => each!(input, output, special::hard_swish),
        Gelu { approximate: true } => each!(input, output, vmath::gelu_approx::<F>),
        Gelu { approximate: false } => each!(input, output, vmath::gelu_exact::<F>),
        Elu => each!(input, output, vmath::elu::<F>),
        Exp => each!(input, output, vmath::exp::<F>),
        Log => each!(input, output, f32::ln),
        Sqrt => each!(input, output, f32::sqrt),
        Rsqrt => each!(input, output, |x: f32| 1.0 / x.sqrt()),
        Square => each!(input, output, |x: f32| x * x),
        Abs => each!(input, output, f32::abs),
        Neg => each!(input, output, |x: f32| -x),
        Floor => each!(input, output, f32::floor),
        Ceil => each!(input, output, f32::ceil),
        Round => each!(input, output, f32::round_ties_even),
        Sin => each!(input, output, f32::sin),
        Cos => each!(input, output, f32::cos),
    }
}

/// Elements per thread part below which splitting is not worth it.
const MIN_ELEMS_PER_PART: usize = if cfg!(test) { 4 } else { 1 << 14 };

/// [`unary_f32_in`] split over `threads` (each element is independent, so results do not
/// depend on the split). Only the first `min(input.len(), output.len())` elements are
/// computed.
pub fn unary_f32_threaded(
    isa: Isa,
    op: UnaryF32,
    input: &[f32],
    output: &mut [f32],
    threads: usize,
) {
    let n = input.len().min(output.len());
    crate::parallel::for_each_part(
        &mut output[..n],
        1,
        MIN_ELEMS_PER_PART,
        threads,
        |i, part| unary_f32_in(isa, op, &input[i..i + part.len()], part),
    );
}

/// SiLU: `output[i] = clamp(x · logistic(x))` for `x = input[i]`, the same operations as
/// [`unary_f32_in`]`(Logistic)` followed by a float MUL with that clamp; split over
/// `threads` like [`unary_f32_threaded`].
pub fn silu_f32_threaded(
    isa: Isa,
    clamp: Clamp,
    input: &[f32],
    output: &mut [f32],
    threads: usize,
) {
    let n = input.len().min(output.len());
    crate::parallel::for_each_part(
        &mut output[..n],
        1,
        MIN_ELEMS_PER_PART,
        threads,
        |i, part| silu_f32_in(isa, clamp, &input[i..i + part.len()], part),
    );
}

/// One part of [`silu_f32_threaded`].
fn silu_f32_in(isa: Isa, clamp: Clamp, input: &[f32], output: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.or_generic() == Isa::Avx2 {
        // SAFETY: AVX2 and FMA were just confirmed.
        return unsafe { silu_f32_avx2(clamp, input, output) };
    }
    let _ = isa;
    silu_body::<{ vmath::PORTABLE_FMA }>(clamp, input, output);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn silu_f32_avx2(clamp: Clamp, input: &[f32], output: &mut [f32]) {
    silu_body::<true>(clamp, input, output);
}

#[inline(always)]
fn silu_body<const F: bool>(clamp: Clamp, input: &[f32], output: &mut [f32]) {
    each!(input, output, |x: f32| clamp
        .apply(x * vmath::logistic::<F>(x)));
}

/// Float PRELU with broadcasting of `alpha`: `x ≥ 0 ? x : x·alpha`. Preconditions as for
/// [`binary_f32`], with `plan` built from the input and alpha shapes.
pub fn prelu_f32(plan: &BroadcastPlan, input: &[f32], alpha: &[f32], output: &mut [f32]) {
    binary_f32(plan, input, alpha, output, Clamp::IDENTITY, |x, a| {
        if x >= 0.0 {
            x
        } else {
            x * a
        }
    });
}

/// Integer ABS and NEG, wrapping like two's complement hardware (`|MIN| = MIN`).
pub trait WrappingInt: Copy {
    fn abs_wrapping(self) -> Self;
    fn neg_wrapping(self) -> Self;
}

impl WrappingInt for i32 {
    fn abs_wrapping(self) -> Self {
        self.wrapping_abs()
    }
    fn neg_wrapping(self) -> Self {
        self.wrapping_neg()
    }
}

impl WrappingInt for i64 {
    fn abs_wrapping(self) -> Self {
        self.wrapping_abs()
    }
    fn neg_wrapping(self) -> Self {
        self.wrapping_neg()
    }
}

/// `output[i] = |input[i]|` (or `−input[i]` when `negate`), wrapping at the type minimum.
pub fn abs_or_neg_int<T: WrappingInt>(negate: bool, input: &[T], output: &mut [T]) {
    for (o, &x) in output.iter_mut().zip(input) {
        *o = if negate {
            x.neg_wrapping()
        } else {
            x.abs_wrapping()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_unary_ops() {
        let x = [-7.5f32, -2.5, -0.5, 0.0, 0.5, 1.5, 2.5, 8.0];
        let mut out = [0f32; 8];
        let check = |op: UnaryF32, want: &[f32]| {
            let mut out = [0f32; 8];
            unary_f32(op, &x, &mut out);
            for (i, (&g, &w)) in out.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "{op:?}[{i}]: {g} vs {w}"
                );
            }
        };
        check(UnaryF32::Relu, &[0.0, 0.0, 0.0, 0.0, 0.5, 1.5, 2.5, 8.0]);
        check(UnaryF32::Relu6, &[0.0, 0.0, 0.0, 0.0, 0.5, 1.5, 2.5, 6.0]);
        check(
            UnaryF32::ReluN1To1,
            &[-1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0, 1.0],
        );
        check(
            UnaryF32::Relu0To1,
            &[0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0],
        );
        check(
            UnaryF32::LeakyRelu(0.1),
            &[-0.75, -0.25, -0.05, 0.0, 0.5, 1.5, 2.5, 8.0],
        );
        check(
            UnaryF32::Round,
            &[-8.0, -2.0, -0.0, 0.0, 0.0, 2.0, 2.0, 8.0],
        );
        check(
            UnaryF32::Floor,
            &[-8.0, -3.0, -1.0, 0.0, 0.0, 1.0, 2.0, 8.0],
        );
        check(UnaryF32::Ceil, &[-7.0, -2.0, 0.0, 0.0, 1.0, 2.0, 3.0, 8.0]);
        check(
            UnaryF32::Square,
            &[56.25, 6.25, 0.25, 0.0, 0.25, 2.25, 6.25, 64.0],
        );
        check(UnaryF32::Neg, &[7.5, 2.5, 0.5, 0.0, -0.5, -1.5, -2.5, -8.0]);
        check(UnaryF32::Abs, &[7.5, 2.5, 0.5, 0.0, 0.5, 1.5, 2.5, 8.0]);
        let hs: Vec<f32> = x
            .iter()
            .map(|&v| (v as f64 * (v as f64 + 3.0).clamp(0.0, 6.0) / 6.0) as f32)
            .collect();
        check(UnaryF32::HardSwish, &hs);
        unary_f32(UnaryF32::Rsqrt, &[4.0, 0.25], &mut out[..2]);
        assert_eq!(&out[..2], &[0.5, 2.0]);
    }

    #[test]
    fn threaded_equals_sequential() {
        let x: Vec<f32> = (0..103).map(|i| (i as f32 - 50.0) * 0.1).collect();
        for isa in Isa::available() {
            let (mut a, mut b) = (vec![0f32; 103], vec![0f32; 103]);
            let op = UnaryF32::Gelu { approximate: false };
            unary_f32_in(isa, op, &x, &mut a);
            unary_f32_threaded(isa, op, &x, &mut b, 3);
            assert_eq!(a, b, "{isa:?}");
        }
    }

    #[test]
    fn prelu_broadcasts_alpha() {
        let plan = BroadcastPlan::new(&[2, 3], &[3]).unwrap();
        let mut out = [0f32; 6];
        prelu_f32(
            &plan,
            &[1.0, -1.0, -2.0, -4.0, 0.0, 3.0],
            &[0.5, 0.25, 2.0],
            &mut out,
        );
        assert_eq!(out, [1.0, -0.25, -4.0, -2.0, 0.0, 3.0]);
    }

    #[test]
    fn integer_abs_neg_wrap() {
        let mut out = [0i32; 3];
        abs_or_neg_int(false, &[i32::MIN, -5, 7], &mut out);
        assert_eq!(out, [i32::MIN, 5, 7]);
        let mut out = [0i64; 2];
        abs_or_neg_int(true, &[i64::MIN, -5], &mut out);
        assert_eq!(out, [i64::MIN, 5]);
    }
}
