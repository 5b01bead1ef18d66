//! Elementwise activations (the RELU family, LEAKY_RELU, LOGISTIC, TANH, HARD_SWISH, GELU,
//! ELU, PRELU) and unary math (EXP, LOG, SQRT, RSQRT, SQUARE, ABS, NEG, FLOOR, CEIL, ROUND,
//! SIN, COS).
//!
//! Float kernels are one pass of a scalar function; the scalar functions follow the
//! reference's operation order (see [`special`]). Quantized 8-bit kernels are table lookups:
//! [`lut`] builds the tables, from the reference's float formula or from the fixed-point
//! formulas in [`quant`]. Nothing here depends on the thread count.

pub mod lut;
pub mod quant;
pub mod special;

use crate::activation::Clamp;
use crate::broadcast::{binary_f32, BroadcastPlan};

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

#[inline(always)]
fn map(input: &[f32], output: &mut [f32], f: impl Fn(f32) -> f32) {
    for (o, &x) in output.iter_mut().zip(input) {
        *o = f(x);
    }
}

/// `output[i] = op(input[i])` over the common length.
pub fn unary_f32(op: UnaryF32, input: &[f32], output: &mut [f32]) {
    use UnaryF32::*;
    match op {
        Relu => map(input, output, |x| if x > 0.0 { x } else { 0.0 }),
        Relu6 => map(input, output, |x| {
            Clamp::RELU6.apply(if x > 0.0 { x } else { 0.0 })
        }),
        ReluN1To1 => map(input, output, |x| Clamp::RELU_N1_TO_1.apply(x)),
        Relu0To1 => map(input, output, |x| Clamp { min: 0.0, max: 1.0 }.apply(x)),
        LeakyRelu(alpha) => map(input, output, |x| if x > 0.0 { x } else { x * alpha }),
        Logistic => map(input, output, special::logistic),
        Tanh => map(input, output, f32::tanh),
        HardSwish => map(input, output, special::hard_swish),
        Gelu { approximate: true } => map(input, output, special::gelu_approx),
        Gelu { approximate: false } => map(input, output, special::gelu_exact),
        Elu => map(input, output, special::elu),
        Exp => map(input, output, f32::exp),
        Log => map(input, output, f32::ln),
        Sqrt => map(input, output, f32::sqrt),
        Rsqrt => map(input, output, |x| 1.0 / x.sqrt()),
        Square => map(input, output, |x| x * x),
        Abs => map(input, output, f32::abs),
        Neg => map(input, output, |x| -x),
        Floor => map(input, output, f32::floor),
        Ceil => map(input, output, f32::ceil),
        Round => map(input, output, f32::round_ties_even),
        Sin => map(input, output, f32::sin),
        Cos => map(input, output, f32::cos),
    }
}

/// Elements per thread part below which splitting is not worth it.
const MIN_ELEMS_PER_PART: usize = if cfg!(test) { 4 } else { 1 << 14 };

/// [`unary_f32`] split over `threads` (each element is independent, so results do not
/// depend on the split). Only the first `min(input.len(), output.len())` elements are
/// computed.
pub fn unary_f32_threaded(op: UnaryF32, input: &[f32], output: &mut [f32], threads: usize) {
    let n = input.len().min(output.len());
    crate::parallel::for_each_part(
        &mut output[..n],
        1,
        MIN_ELEMS_PER_PART,
        threads,
        |i, part| unary_f32(op, &input[i..i + part.len()], part),
    );
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
        let (mut a, mut b) = (vec![0f32; 103], vec![0f32; 103]);
        unary_f32(UnaryF32::Gelu { approximate: false }, &x, &mut a);
        unary_f32_threaded(UnaryF32::Gelu { approximate: false }, &x, &mut b, 3);
        assert_eq!(a, b);
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
