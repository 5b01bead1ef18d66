//! aarch64 kernels of the [`Isa::Neon`](crate::isa::Isa::Neon) tier: Advanced SIMD intrinsics.

pub(crate) mod depthwise;
pub(crate) mod gemm;
pub(crate) mod qconv;
pub(crate) mod qconv_dot;
pub(crate) mod qdepthwise;
pub(crate) mod qfc;
