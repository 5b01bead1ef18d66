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
pub mod broadcast;
pub mod conv;
pub mod depthwise;
pub mod gemm;
pub mod isa;
pub mod parallel;
pub mod pool;
pub mod quant;
pub mod reduce;
pub mod softmax;
