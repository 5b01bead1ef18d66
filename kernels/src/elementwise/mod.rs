//! Binary and ternary elementwise operators with numpy broadcasting: SUB, DIV,
//! SQUARED_DIFFERENCE, MAXIMUM, MINIMUM, POW, the comparisons, the logical operators,
//! SELECT and SELECT_V2.
//!
//! Float arithmetic goes through [`crate::broadcast::binary_f32`]. Everything else (integer
//! arithmetic, comparisons to bool, quantized formulas) goes through [`broadcast_map`], which
//! walks a [`crate::quant::broadcast::BroadcastPlan`] with any element types. Quantized
//! formulas are in [`quant`], the three-operand broadcast of SELECT_V2 in [`select`].

pub mod quant;
pub mod select;

use crate::quant::broadcast::BroadcastPlan;
use crate::quant::QuantError;

/// `out[o] = f(a[ia], b[ib])` over the broadcast iteration of `plan`, in output order.
/// Fails (without writing) if a slice is shorter than the plan's shapes require.
pub fn broadcast_map<A: Copy, B: Copy, O>(
    plan: &BroadcastPlan,
    a: &[A],
    b: &[B],
    out: &mut [O],
    mut f: impl FnMut(A, B) -> O,
) -> Result<(), QuantError> {
    let (la, lb, lo) = plan.lens();
    if a.len() < la || b.len() < lb || out.len() < lo {
        return Err(QuantError::BufferTooSmall {
            what: "broadcast operand",
            needed: la.max(lb).max(lo),
            got: a.len().min(b.len()).min(out.len()),
        });
    }
    if la == lo && lb == lo {
        for ((o, &x), &y) in out[..lo].iter_mut().zip(a).zip(b) {
            *o = f(x, y);
        }
    } else {
        plan.for_each(|ia, ib, o| out[o] = f(a[ia], b[ib]));
    }
    Ok(())
}

/// The fused-activation clamp of integer (int32, int64) arithmetic: `[lo, hi]` from
/// TFLite's `CalculateActivationRange<T>` (RELU `[0, max]`, RELU6 `[0, 6]`, RELU_N1_TO_1
/// `[−1, 1]`, otherwise the whole type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntClamp {
    pub lo: i64,
    pub hi: i64,
}

impl IntClamp {
    /// No clamp.
    pub const NONE: IntClamp = IntClamp {
        lo: i64::MIN,
        hi: i64::MAX,
    };

    /// Clamps like `std::min(std::max(x, lo), hi)`.
    #[inline]
    pub fn apply_i64(self, x: i64) -> i64 {
        x.max(self.lo).min(self.hi)
    }

    /// The same on an `i32` (bounds beyond the `i32` range do not clamp).
    #[inline]
    pub fn apply_i32(self, x: i32) -> i32 {
        i64::from(x).max(self.lo).min(self.hi) as i32
    }
}

/// Integer POW as the reference computes it: `(int)pow((double)a, (double)b)`, converting
/// like x86 (`i32::MIN` for results outside the `i32` range).
pub fn pow_i32(a: i32, b: i32) -> i32 {
    crate::quant::fixedpoint::f64_to_i32_x86(f64::from(a).powf(f64::from(b)))
}

/// MAXIMUM as the reference writes it: `a > b ? a : b` (so a NaN in `a` yields `b`).
#[inline]
pub fn maximum<T: PartialOrd>(a: T, b: T) -> T {
    if a > b {
        a
    } else {
        b
    }
}

/// MINIMUM: `a < b ? a : b`.
#[inline]
pub fn minimum<T: PartialOrd>(a: T, b: T) -> T {
    if a < b {
        a
    } else {
        b
    }
}

/// The six comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
}

impl Comparison {
    /// `a op b`, with IEEE semantics for floats (every comparison with NaN is false, except
    /// NOT_EQUAL).
    #[inline]
    pub fn eval<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Comparison::Equal => a == b,
            Comparison::NotEqual => a != b,
            Comparison::Less => a < b,
            Comparison::LessEqual => a <= b,
            Comparison::Greater => a > b,
            Comparison::GreaterEqual => a >= b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_map_matches_indexing() {
        let plan = BroadcastPlan::new(&[2, 1, 3], &[4, 1]).unwrap();
        let a: Vec<i32> = (0..6).collect();
        let b: Vec<i32> = (0..4).map(|v| v * 100).collect();
        let mut out = vec![0i64; 24];
        broadcast_map(&plan, &a, &b, &mut out, |x, y| i64::from(x + y)).unwrap();
        for i in 0..2 {
            for j in 0..4 {
                for k in 0..3 {
                    assert_eq!(out[(i * 4 + j) * 3 + k], (i * 3 + k + j * 100) as i64);
                }
            }
        }
        assert!(broadcast_map(&plan, &a[..5], &b, &mut out, |x, y| i64::from(x + y)).is_err());
    }

    #[test]
    fn scalar_helpers() {
        assert_eq!(pow_i32(3, 4), 81);
        assert_eq!(pow_i32(2, 31), i32::MIN); // out of range, as x86 converts
        assert_eq!(pow_i32(-2, 3), -8);
        assert_eq!(pow_i32(5, 0), 1);
        assert!(maximum(f32::NAN, 1.0) == 1.0);
        assert!(maximum(1.0, f32::NAN).is_nan());
        assert!(minimum(f32::NAN, 1.0) == 1.0);
        assert_eq!(minimum(3, -2), -2);
        assert!(Comparison::NotEqual.eval(f32::NAN, f32::NAN));
        assert!(!Comparison::LessEqual.eval(f32::NAN, 1.0));
        assert!(Comparison::GreaterEqual.eval(2, 2));
        let relu6 = IntClamp { lo: 0, hi: 6 };
        assert_eq!(relu6.apply_i32(-3), 0);
        assert_eq!(relu6.apply_i64(9), 6);
        assert_eq!(IntClamp::NONE.apply_i32(i32::MIN), i32::MIN);
    }
}
