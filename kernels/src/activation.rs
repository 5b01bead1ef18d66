//! Fused activation clamps for float kernels.
//!
//! TFLite applies a fused activation as `min(max(x, lo), hi)` with C++ `std::max`/`std::min`
//! semantics. Those differ from Rust's `f32::max`/`f32::min` on NaN: the C++ forms keep the
//! NaN of `x` (the comparison is false, so `x` is returned), whereas Rust's would replace it by
//! the bound. [`Clamp::apply`] reproduces the C++ behaviour, which also compiles to plain
//! `maxps`/`minps` and so vectorizes.

/// A closed range `[min, max]` that results are clamped to after the bias is added.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clamp {
    pub min: f32,
    pub max: f32,
}

impl Clamp {
    /// Fused activation `NONE`. TFLite still clamps to the finite float range in that case,
    /// so `+inf` becomes `f32::MAX` (and `-inf` becomes `f32::MIN`), exactly like the reference.
    pub const NONE: Clamp = Clamp {
        min: f32::MIN,
        max: f32::MAX,
    };
    /// Fused `RELU`: `[0, f32::MAX]`.
    pub const RELU: Clamp = Clamp {
        min: 0.0,
        max: f32::MAX,
    };
    /// Fused `RELU_N1_TO_1`: `[-1, 1]`.
    pub const RELU_N1_TO_1: Clamp = Clamp {
        min: -1.0,
        max: 1.0,
    };
    /// Fused `RELU6`: `[0, 6]`.
    pub const RELU6: Clamp = Clamp { min: 0.0, max: 6.0 };
    /// No clamp at all, not even to the finite range: for ops that have no fused activation
    /// (MAXIMUM, MINIMUM, ...), where infinities must pass through unchanged.
    pub const IDENTITY: Clamp = Clamp {
        min: f32::NEG_INFINITY,
        max: f32::INFINITY,
    };

    /// Clamps one value with the reference's comparison order (NaN passes through).
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        let lo = if x < self.min { self.min } else { x };
        if self.max < lo {
            self.max
        } else {
            lo
        }
    }

    /// Clamps every element of `xs` in place.
    #[inline]
    pub fn apply_slice(self, xs: &mut [f32]) {
        for x in xs {
            *x = self.apply(*x);
        }
    }
}

/// A residual ADD fused into the kernel that produces one of its operands: once an output
/// element is final (bias added, the kernel's own activation applied) it becomes
/// `clamp(out + data[i])`, `data` being laid out like the output. That is the float ADD's
/// arithmetic on the two values the unfused graph would have stored, so results are
/// bit-identical; the sum is only made while the output is still in cache.
#[derive(Clone, Copy, Debug)]
pub struct Residual<'a> {
    pub data: &'a [f32],
    pub clamp: Clamp,
}

impl Residual<'_> {
    /// Adds elements `at .. at + out.len()` of the residual to `out` and clamps.
    /// Panics if the residual is shorter (a caller bug).
    #[inline]
    pub fn apply(&self, out: &mut [f32], at: usize) {
        let r = &self.data[at..at + out.len()];
        for (o, &x) in out.iter_mut().zip(r) {
            *o = self.clamp.apply(*o + x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_special_values() {
        assert_eq!(Clamp::RELU6.apply(7.5), 6.0);
        assert_eq!(Clamp::RELU6.apply(-0.5), 0.0);
        assert_eq!(Clamp::RELU6.apply(3.25), 3.25);
        assert_eq!(Clamp::RELU_N1_TO_1.apply(-3.0), -1.0);
        assert_eq!(Clamp::RELU.apply(-1e30), 0.0);
        // NONE is the finite range, as in the reference.
        assert_eq!(Clamp::NONE.apply(f32::INFINITY), f32::MAX);
        assert_eq!(Clamp::NONE.apply(f32::NEG_INFINITY), f32::MIN);
        assert_eq!(Clamp::IDENTITY.apply(f32::INFINITY), f32::INFINITY);
        // NaN survives, like std::min(std::max(NaN, lo), hi) in C++.
        assert!(Clamp::RELU.apply(f32::NAN).is_nan());
        let mut v = [-2.0, 0.5, 9.0];
        Clamp::RELU6.apply_slice(&mut v);
        assert_eq!(v, [0.0, 0.5, 6.0]);
    }
}
