use super::{PrepareCtx, Prepared};
use crate::error::Result;
pub(super) fn prepare_conv(ctx: &PrepareCtx<'_>) -> Result<Prepared> { Err(ctx.unsupported_dtypes()) }
pub(super) fn prepare_depthwise(ctx: &PrepareCtx<'_>) -> Result<Prepared> { Err(ctx.unsupported_dtypes()) }
