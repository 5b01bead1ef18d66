//! The GPU delegate on wgpu: WGSL compute shaders for the float path, with quantized models
//! run on dequantized values the way TFLite's GPU delegate runs them.
//!
//! Each partition is compiled once: weights are converted to f32 in the layout each shader
//! reads and uploaded to one constant buffer; every activation tensor of the partition gets
//! a range of one GPU arena, planned with the same planner as the CPU arena; pipelines and
//! bind groups are built then. `invoke` uploads the partition inputs, records one command
//! encoder, submits it once and reads back only the tensors the CPU needs.
//!
//! Precision: computation is f32. fp16 weights are folded to f32 by the CPU preparation.
//! Quantized tensors are held as their dequantized f32 values: int8 weights and biases are
//! dequantized at compile time, int8 inputs at upload, and outputs are quantized again at
//! read-back (QUANTIZE nodes inside a partition round to their grid). Results therefore
//! follow float arithmetic, not TFLite's integer kernels: see `docs/gpu.md` for tolerances.

mod context;
mod lower;
mod program;

use std::sync::Arc;

use crate::delegate::{Delegate, DelegateKernel, Node, Partition};
use crate::error::Result;
use context::Context;
pub use context::ADAPTER_ENV;

/// How the GPU delegate is set up.
#[derive(Debug, Clone, Default)]
pub struct GpuOptions {
    /// Use the adapter whose name contains this (case-insensitive); `None` reads
    /// `FERROLITE_ADAPTER`, else takes the best adapter (hardware before software).
    pub adapter: Option<String>,
}

impl GpuOptions {
    pub fn adapter(mut self, name: impl Into<String>) -> Self {
        self.adapter = Some(name.into());
        self
    }
}

/// Runs the nodes it supports on a wgpu device.
pub struct GpuDelegate {
    ctx: Arc<Context>,
}

impl std::fmt::Debug for GpuDelegate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuDelegate")
            .field("adapter", &self.ctx.info.name)
            .finish()
    }
}

impl GpuDelegate {
    /// Opens the GPU. Fails with a clear error when there is no adapter (or none matches).
    pub fn new(options: GpuOptions) -> Result<GpuDelegate> {
        let wanted = options
            .adapter
            .or_else(|| std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty()));
        Ok(GpuDelegate {
            ctx: Arc::new(Context::open(wanted.as_deref())?),
        })
    }

    /// The adapter's name and backend, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`.
    pub fn adapter(&self) -> String {
        format!("{} ({:?})", self.ctx.info.name, self.ctx.info.backend)
    }
}

impl Delegate for GpuDelegate {
    fn name(&self) -> &str {
        "gpu"
    }

    fn supports(&self, node: &Node<'_>) -> std::result::Result<(), String> {
        let mut weights = lower::Weights::new(true);
        let offset = |_t: usize| 0usize;
        let mut c = lower::Ctx {
            offset: &offset,
            weights: &mut weights,
        };
        lower::lower(node, &mut c).map(|_| ())
    }

    fn compile(&self, partition: &Partition<'_>) -> Result<Box<dyn DelegateKernel>> {
        Ok(Box::new(program::Program::compile(
            self.ctx.clone(),
            partition,
        )?))
    }
}
