//! Integer (quantized) kernels, bit-exact with TFLite's reference kernels (`BUILTIN_REF`).
//!
//! Each operator comes as a prepare-time parameter builder, which takes the quantization
//! parameters exactly as the model stores them (`f32` scales, `i64` zero points) and
//! computes multipliers the way TFLite's `Prepare` does, and one or more run-time kernels
//! on plain slices that never allocate.
//!
//! Supported element types: int8 (asymmetric activations, symmetric weights, per-channel or
//! per-tensor) and legacy uint8 (asymmetric weights and activations, per-tensor). The
//! dynamic-range ("hybrid") CONV_2D and FULLY_CONNECTED kernels take `f32` activations and
//! int8 weights.
//! The int16x8 kernels (`conv16`, `add16`, `activation16`, `softmax16`) take int16
//! activations with zero point 0 and int8 weights.
//!
//! Kernels check buffer lengths against their geometry and return an error rather than
//! panic; arithmetic that TFLite lets wrap is done with wrapping operations, and
//! float-to-int conversions reproduce x86 (NaN and out-of-range values become `i32::MIN`).
//!
//! "TFLite" here means the runtime in ai-edge-litert 2.3.0 on x86-64. Besides the unit
//! tests, every kernel was compared with its `BUILTIN_REF` interpreter on randomized
//! single-op models and on every integer and hybrid layer of the shared ResNet18 models
//! and of MobileNetV2 (whose final softmax, where the reference kernel aborts, was compared
//! with the optimized kernel instead), with no mismatching output. Facts that differ from older TFLite
//! versions or from the portable C++ sources are noted in each module (FULLY_CONNECTED's
//! double-precision requantization, MEAN's single code path, the hybrid quantizers'
//! x86 rounding).

pub mod activation16;
pub mod add;
pub mod add16;
pub mod broadcast;
pub(crate) mod channel_consts;
pub mod conv;
pub mod conv16;
pub mod conv_packed;
pub(crate) mod conv_window;
pub mod depthwise;
pub mod depthwise_packed;
pub(crate) mod dw_window;
pub mod error;
pub mod fc_packed;
pub mod fixedpoint;
pub mod fully_connected;
pub mod geometry;
pub mod hybrid;
pub mod hybrid_depthwise;
pub mod hybrid_packed;
pub mod mean;
pub mod mul;
pub mod params;
pub mod pool;
pub mod quantize;
pub mod softmax;
pub mod softmax16;

pub use error::QuantError;
pub use geometry::{ConvGeometry, PoolGeometry};
pub use params::{FusedActivation, QuantElem, QuantParams};
