//! Quantization parameters as stored in a model, fused activations, and the element
//! types the integer kernels work on.

use super::error::QuantError;
use super::fixedpoint::f32_to_i32_x86;

/// A tensor's affine quantization, exactly as the model stores it: an `f32` scale and an
/// `i64` zero point. Builders convert them the way TFLite's `Prepare` does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantParams {
    /// `real = scale · (q − zero_point)`.
    pub scale: f32,
    /// The quantized value of real 0.
    pub zero_point: i64,
}

impl QuantParams {
    /// Shorthand constructor.
    pub fn new(scale: f32, zero_point: i64) -> Self {
        Self { scale, zero_point }
    }

    /// The zero point as TFLite holds it (`int32`); larger values are rejected.
    pub fn zero_point_i32(&self) -> Result<i32, QuantError> {
        i32::try_from(self.zero_point).map_err(|_| QuantError::ZeroPointOutOfRange(self.zero_point))
    }
}

/// The `fused_activation_function` option of TFLite ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FusedActivation {
    /// No clamp.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// Clamp to `[−1, 1]`.
    ReluN1To1,
    /// Clamp to `[0, 6]`.
    Relu6,
    /// `tanh`: ignored (no clamp) by the quantized kernels, as in TFLite.
    Tanh,
    /// Sign bit: ignored (no clamp) by the quantized kernels, as in TFLite.
    SignBit,
}

/// An 8-bit (later 16-bit) quantized element type.
pub trait QuantElem: Copy + Default + Send + Sync + 'static {
    /// Smallest representable value, as `i32`.
    const MIN: i32;
    /// Largest representable value, as `i32`.
    const MAX: i32;
    /// Widens to `i32`.
    fn to_i32(self) -> i32;
    /// Narrows an `i32` already clamped to `[MIN, MAX]` (wraps otherwise, never panics).
    fn from_i32(v: i32) -> Self;
}

impl QuantElem for i8 {
    const MIN: i32 = i8::MIN as i32;
    const MAX: i32 = i8::MAX as i32;
    #[inline]
    fn to_i32(self) -> i32 {
        i32::from(self)
    }
    #[inline]
    fn from_i32(v: i32) -> Self {
        v as i8
    }
}

impl QuantElem for u8 {
    const MIN: i32 = u8::MIN as i32;
    const MAX: i32 = u8::MAX as i32;
    #[inline]
    fn to_i32(self) -> i32 {
        i32::from(self)
    }
    #[inline]
    fn from_i32(v: i32) -> Self {
        v as u8
    }
}

impl QuantElem for i16 {
    const MIN: i32 = i16::MIN as i32;
    const MAX: i32 = i16::MAX as i32;
    #[inline]
    fn to_i32(self) -> i32 {
        i32::from(self)
    }
    #[inline]
    fn from_i32(v: i32) -> Self {
        v as i16
    }
}

/// Clamps like C++ `std::min(std::max(v, lo), hi)`: never panics, even if `lo > hi`
/// (then the result is `hi`, as in TFLite).
#[inline]
pub fn clamp_i32(v: i32, lo: i32, hi: i32) -> i32 {
    v.max(lo).min(hi)
}

/// TFLite's `Quantize` helper in `kernel_util.cc`: `zp + (int)roundf(f / scale)`, with the
/// division and rounding in `f32`, failing when the rounded value is outside the `i32`
/// range as an `f32` comparison sees it.
fn quantize_bound(scale: f32, zero_point: i32, f: f32) -> Result<i32, QuantError> {
    let tmp = (f / scale).round();
    // The range test is done in f32, so 2^31 itself passes; x86 then converts it to
    // i32::MIN, which we reproduce.
    if !(tmp >= i32::MIN as f32 && tmp <= i32::MAX as f32) {
        return Err(QuantError::ActivationRangeOverflow);
    }
    Ok(zero_point.wrapping_add(f32_to_i32_x86(tmp)))
}

/// `CalculateActivationRangeQuantized` for an output with `scale`/`zero_point` and the
/// element range `[qmin, qmax]`: quantizes 0, 6 or ±1 and intersects with the range.
///
/// `Tanh` and `SignBit` give the full range, as in TFLite.
pub fn activation_range_quantized(
    activation: FusedActivation,
    scale: f32,
    zero_point: i32,
    qmin: i32,
    qmax: i32,
) -> Result<(i32, i32), QuantError> {
    Ok(match activation {
        FusedActivation::Relu => (qmin.max(quantize_bound(scale, zero_point, 0.0)?), qmax),
        FusedActivation::Relu6 => (
            qmin.max(quantize_bound(scale, zero_point, 0.0)?),
            qmax.min(quantize_bound(scale, zero_point, 6.0)?),
        ),
        FusedActivation::ReluN1To1 => (
            qmin.max(quantize_bound(scale, zero_point, -1.0)?),
            qmax.min(quantize_bound(scale, zero_point, 1.0)?),
        ),
        FusedActivation::None | FusedActivation::Tanh | FusedActivation::SignBit => (qmin, qmax),
    })
}

/// [`activation_range_quantized`] for the element type `T` of the output tensor.
pub fn activation_range_for<T: QuantElem>(
    activation: FusedActivation,
    output: QuantParams,
) -> Result<(i32, i32), QuantError> {
    activation_range_quantized(
        activation,
        output.scale,
        output.zero_point_i32()?,
        T::MIN,
        T::MAX,
    )
}

/// `CalculateActivationRange` for `f32` outputs (hybrid kernels): `(lowest, max)` for no
/// clamp, `[0, max]`, `[−1, 1]`, `[0, 6]`.
pub fn activation_range_f32(activation: FusedActivation) -> (f32, f32) {
    match activation {
        FusedActivation::Relu => (0.0, f32::MAX),
        FusedActivation::ReluN1To1 => (-1.0, 1.0),
        FusedActivation::Relu6 => (0.0, 6.0),
        FusedActivation::None | FusedActivation::Tanh | FusedActivation::SignBit => {
            (f32::MIN, f32::MAX)
        }
    }
}

/// C++ `std::min(std::max(x, lo), hi)` on floats (`ActivationFunctionWithMinMax`),
/// including its NaN behaviour (NaN passes through).
#[inline]
pub fn clamp_f32(x: f32, lo: f32, hi: f32) -> f32 {
    let a = if x < lo { lo } else { x };
    if hi < a {
        hi
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_ranges_hand_derived() {
        // scale 0.1, zp −10: 0 → −10, 6 → 50, ±1 → −20 / 0.
        let r = |a| activation_range_quantized(a, 0.1, -10, -128, 127).unwrap();
        assert_eq!(r(FusedActivation::None), (-128, 127));
        assert_eq!(r(FusedActivation::Relu), (-10, 127));
        assert_eq!(r(FusedActivation::Relu6), (-10, 50));
        assert_eq!(r(FusedActivation::ReluN1To1), (-20, 0));
        assert_eq!(r(FusedActivation::Tanh), (-128, 127));
        assert_eq!(r(FusedActivation::SignBit), (-128, 127));
        // Bounds beyond the type range are intersected with it.
        let r = activation_range_quantized(FusedActivation::Relu6, 0.01, 100, -128, 127).unwrap();
        assert_eq!(r, (100, 127));
        let r = activation_range_quantized(FusedActivation::Relu, 0.5, -200, 0, 255).unwrap();
        assert_eq!(r, (0, 255));
    }

    #[test]
    fn activation_range_rounds_in_f32_half_away() {
        // 6 / 4 = 1.5 → 2 (half away from zero); −1 / 0.4 = −2.5 → −3.
        assert_eq!(
            activation_range_quantized(FusedActivation::Relu6, 4.0, 0, -128, 127).unwrap(),
            (0, 2)
        );
        assert_eq!(
            activation_range_quantized(FusedActivation::ReluN1To1, 0.4, 0, -128, 127).unwrap(),
            (-3, 3)
        );
        // 6/0.3 in f32 is exactly 20.0 (the f32 quotient, not the real 19.99999…).
        assert_eq!(
            activation_range_quantized(FusedActivation::Relu6, 0.3, 0, -128, 127).unwrap(),
            (0, 20)
        );
    }

    #[test]
    fn activation_range_overflow_and_nan() {
        assert!(activation_range_quantized(FusedActivation::Relu6, 1e-12, 0, -128, 127).is_err());
        assert!(activation_range_quantized(FusedActivation::Relu, 0.0, 0, -128, 127).is_err());
        assert!(
            activation_range_quantized(FusedActivation::Relu6, f32::NAN, 0, -128, 127).is_err()
        );
        // Exactly 2^31 passes the f32 range test and becomes i32::MIN (x86), so the upper
        // bound collapses to that.
        let (lo, hi) =
            activation_range_quantized(FusedActivation::Relu6, 6.0 / 2_147_483_648.0, 0, -128, 127)
                .unwrap();
        assert_eq!((lo, hi), (0, i32::MIN));
    }

    #[test]
    fn clamps_never_panic() {
        assert_eq!(clamp_i32(5, 10, 0), 0);
        assert_eq!(clamp_i32(-5, -1, 1), -1);
        assert!(clamp_f32(f32::NAN, 0.0, 6.0).is_nan());
        assert_eq!(clamp_f32(7.0, 0.0, 6.0), 6.0);
        assert_eq!(clamp_f32(-7.0, 0.0, 6.0), 0.0);
    }

    #[test]
    fn zero_point_conversion() {
        assert_eq!(QuantParams::new(1.0, -128).zero_point_i32().unwrap(), -128);
        assert!(QuantParams::new(1.0, 1 << 40).zero_point_i32().is_err());
    }
}
