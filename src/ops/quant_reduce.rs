//! Quantized MEAN.

use super::reduce::Reduction;
use super::{PrepareCtx, Prepared};
use crate::error::Result;

pub(super) fn prepare_mean(ctx: &PrepareCtx<'_>, _r: Reduction) -> Result<Prepared> {
    Err(ctx.unsupported_dtypes())
}
