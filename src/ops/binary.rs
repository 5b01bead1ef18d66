use super::{PrepareCtx, Prepared};
use crate::error::Result;
pub(super) enum Op { Add, Mul }
pub(super) fn prepare(ctx: &PrepareCtx<'_>, _op: Op) -> Result<Prepared> { Err(ctx.unsupported_dtypes()) }
