//! Quantized SOFTMAX.

use super::{PrepareCtx, Prepared};
use crate::error::Result;

pub(super) fn prepare(ctx: &PrepareCtx<'_>, _depth: usize, _beta: f32) -> Result<Prepared> {
    Err(ctx.unsupported_dtypes())
}
