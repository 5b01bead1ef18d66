//! Kernels of the "layers" operators: TRANSPOSE_CONV, BATCH_MATMUL, LOG_SOFTMAX,
//! L2_NORMALIZATION, RANGE, DENSIFY and int4 unpacking.
//!
//! Float kernels compute each output element independently (no reduction is split), so
//! results do not depend on the thread count. Integer kernels reproduce TFLite's reference
//! kernels (`BUILTIN_REF`) bit for bit; each module says which reference function it follows.

pub mod batch_matmul;
pub mod densify;
pub mod l2_norm;
pub mod log_softmax;
pub mod range;
pub mod transpose_conv;
