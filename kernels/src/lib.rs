//! Numeric kernels for ferrolite.
//!
//! Everything here works on plain slices and small parameter structs. Nothing in this crate
//! knows about flatbuffers, tensors or graphs: the interpreter in the `ferrolite` crate
//! validates shapes and options first, then calls these functions with consistent arguments.
//!
//! Float kernels may reorder sums (blocking, SIMD), but they never split a reduction across
//! threads, so their results do not depend on the thread count. Integer kernels reproduce the
//! arithmetic of TFLite's reference kernels bit for bit.

pub mod activation;
pub mod activations;
pub mod broadcast;
pub mod buffer;
pub mod conv;
mod conv_planar;
pub mod depthwise;
pub mod depthwise_block;
pub mod detection;
pub mod elementwise;
pub mod gemm;
pub mod isa;
pub mod layers;
pub mod layout;
pub mod lstm;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod parallel;
pub mod pool;
pub mod quant;
pub mod reduce;
pub mod reductions;
pub mod resize;
pub mod softmax;
mod winograd;
#[cfg(target_arch = "x86_64")]
mod x86;
