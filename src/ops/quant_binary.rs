//! Quantized ADD and MUL.

use ferrolite_kernels::broadcast::BroadcastPlan;

use super::binary::Op;
use super::{PrepareCtx, Prepared};
use crate::error::Result;
use crate::options::Activation;

pub(super) fn prepare(
    ctx: &PrepareCtx<'_>,
    _op: Op,
    _plan: BroadcastPlan,
    _a: Activation,
) -> Result<Prepared> {
    Err(ctx.unsupported_dtypes())
}
