use super::{PrepareCtx, Prepared};
use crate::error::Result;
pub(super) enum Kind { Average, Max }
pub(super) fn prepare(ctx: &PrepareCtx<'_>, _k: Kind) -> Result<Prepared> { Err(ctx.unsupported_dtypes()) }
