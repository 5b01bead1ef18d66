//! Quantized and hybrid FULLY_CONNECTED.

use super::fully_connected::Shape;
use super::{PrepareCtx, Prepared};
use crate::error::Result;
use crate::options::FullyConnected;

pub(super) fn prepare(ctx: &PrepareCtx<'_>, _s: &Shape, _o: &FullyConnected) -> Result<Prepared> {
    Err(ctx.unsupported_dtypes())
}
