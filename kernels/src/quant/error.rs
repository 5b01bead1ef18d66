//! The error type of the quantized kernels' prepare-time builders and run-time checks.

use core::fmt;

/// Why a quantized operator cannot be prepared or run.
///
/// Every condition under which TFLite's `Prepare` or `Eval` would fail (or abort the
/// process through a `TFLITE_CHECK`) is reported as one of these instead.
#[derive(Debug, Clone, PartialEq)]
pub enum QuantError {
    /// A zero point does not fit in `i32` (TFLite stores them as `int32`).
    ZeroPointOutOfRange(i64),
    /// A real multiplier is NaN or infinite.
    NonFiniteMultiplier(f64),
    /// A multiplier fell outside the range a TFLite helper accepts (for example
    /// `QuantizeMultiplierSmallerThanOneExp` needs `0 < m < 1`).
    MultiplierOutOfRange {
        /// Which multiplier, in words.
        what: &'static str,
        /// Its real value.
        value: f64,
    },
    /// Quantizing an activation bound (0, 6, ±1) overflowed `i32`.
    ActivationRangeOverflow,
    /// A per-channel parameter list has the wrong length.
    ChannelCountMismatch {
        /// Number of channels expected.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
    /// Weights that TFLite requires to be symmetric have a non-zero zero point.
    NonZeroFilterZeroPoint,
    /// Output quantization parameters that the op requires are not met.
    BadOutputParams(&'static str),
    /// A shape, stride or other geometry value is inconsistent.
    BadGeometry(&'static str),
    /// A buffer is shorter than the geometry requires.
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Elements needed.
        needed: usize,
        /// Elements given.
        got: usize,
    },
    /// An averaging window contains no valid input element (TFLite's `AveragePool`
    /// returns an error in that case).
    EmptyPoolingWindow,
    /// The fused activation is not supported by this operator (TFLite's `Prepare` rejects
    /// it too).
    UnsupportedActivation,
    /// A bias scale differs too much from `input_scale · filter_scale` (legacy uint8
    /// convolution check: `|in·w − bias| / out ≤ 0.02`).
    BiasScaleMismatch,
    /// The softmax reciprocal exponent left `[0, 31]` (a `TFLITE_CHECK` in TFLite).
    SoftmaxExponentOutOfRange(i32),
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroPointOutOfRange(z) => write!(f, "zero point {z} does not fit in i32"),
            Self::NonFiniteMultiplier(m) => write!(f, "real multiplier {m} is not finite"),
            Self::MultiplierOutOfRange { what, value } => {
                write!(f, "{what} multiplier {value} is out of range")
            }
            Self::ActivationRangeOverflow => {
                write!(f, "quantized activation bound overflows i32")
            }
            Self::ChannelCountMismatch { expected, got } => {
                write!(f, "expected {expected} per-channel values, got {got}")
            }
            Self::NonZeroFilterZeroPoint => write!(f, "filter zero points must all be 0"),
            Self::BadOutputParams(why) => write!(f, "bad output quantization: {why}"),
            Self::BadGeometry(why) => write!(f, "bad geometry: {why}"),
            Self::BufferTooSmall { what, needed, got } => {
                write!(f, "{what} buffer has {got} elements, needs {needed}")
            }
            Self::UnsupportedActivation => write!(f, "unsupported fused activation"),
            Self::BiasScaleMismatch => write!(f, "bias scale does not match input·filter scale"),
            Self::EmptyPoolingWindow => write!(f, "pooling window has no valid element"),
            Self::SoftmaxExponentOutOfRange(e) => {
                write!(f, "softmax output exponent {e} outside [0, 31]")
            }
        }
    }
}

impl std::error::Error for QuantError {}

/// Returns an error unless `got >= needed`.
pub(crate) fn check_len(what: &'static str, needed: usize, got: usize) -> Result<(), QuantError> {
    if got < needed {
        Err(QuantError::BufferTooSmall { what, needed, got })
    } else {
        Ok(())
    }
}
