//! Quantized AVERAGE_POOL_2D and MAX_POOL_2D.

use ferrolite_kernels::pool::PoolParams;

use super::pool::Kind;
use super::{PrepareCtx, Prepared};
use crate::error::Result;
use crate::options::Activation;

pub(super) fn prepare(
    ctx: &PrepareCtx<'_>,
    _kind: Kind,
    _p: &PoolParams,
    _a: Activation,
) -> Result<Prepared> {
    Err(ctx.unsupported_dtypes())
}
