use super::{PrepareCtx, Prepared};
use crate::error::Result;
pub(super) fn prepare(ctx: &PrepareCtx<'_>) -> Result<Prepared> { Err(ctx.unsupported_dtypes()) }
