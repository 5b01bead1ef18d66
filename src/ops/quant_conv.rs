//! Quantized and hybrid CONV_2D and DEPTHWISE_CONV_2D.

use super::conv::Geometry;
use super::{PrepareCtx, Prepared};
use crate::error::Result;
use crate::options::{Conv2D, DepthwiseConv2D};

pub(super) fn prepare_conv(ctx: &PrepareCtx<'_>, _g: &Geometry, _o: &Conv2D) -> Result<Prepared> {
    Err(ctx.unsupported_dtypes())
}

pub(super) fn prepare_depthwise(
    ctx: &PrepareCtx<'_>,
    _g: &Geometry,
    _depth_multiplier: usize,
    _o: &DepthwiseConv2D,
) -> Result<Prepared> {
    Err(ctx.unsupported_dtypes())
}
