//! AVERAGE_POOL_2D and MAX_POOL_2D.

use ferrolite_kernels::pool::{self, PoolParams};

use super::conv::clamp;
use super::geometry::{self, positive};
use super::{cast_mut, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;
use crate::options::OpOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Average,
    Max,
}

pub(super) fn prepare(ctx: &PrepareCtx<'_>, kind: Kind) -> Result<Prepared> {
    ctx.expect_arity(1, 1, 1)?;
    let OpOptions::Pool2D(o) = &ctx.op.options else {
        return Err(ctx.invalid("missing Pool2DOptions"));
    };
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    if input.shape.len() != 4 {
        return Err(ctx.invalid(format!("input must be 4-D, has shape {:?}", input.shape)));
    }
    let (Some(stride_h), Some(stride_w), Some(filter_h), Some(filter_w)) = (
        positive(o.stride_h),
        positive(o.stride_w),
        positive(o.filter_h),
        positive(o.filter_w),
    ) else {
        return Err(ctx.invalid(format!(
            "strides ({}, {}) and filter ({}, {}) must be at least 1",
            o.stride_h, o.stride_w, o.filter_h, o.filter_w
        )));
    };
    let (batch, in_h, in_w, channels) = (
        input.shape[0],
        input.shape[1],
        input.shape[2],
        input.shape[3],
    );
    let bad = || ctx.invalid("window geometry overflows");
    let y = geometry::axis(o.padding, in_h, filter_h, stride_h, 1).ok_or_else(bad)?;
    let x = geometry::axis(o.padding, in_w, filter_w, stride_w, 1).ok_or_else(bad)?;
    ctx.set_output_shape(0, &[batch, y.out, x.out, channels])?;
    let p = PoolParams {
        batch,
        in_h,
        in_w,
        channels,
        out_h: y.out,
        out_w: x.out,
        filter_h,
        filter_w,
        stride_h,
        stride_w,
        pad_top: y.pad_before,
        pad_left: x.pad_before,
        clamp: clamp(o.activation),
    };
    match (input.dtype, output.dtype) {
        (DType::F32, DType::F32) => Ok(Prepared::Kernel(Box::new(PoolF32 { kind, p }))),
        _ => super::quant_pool::prepare(ctx, kind, &p, o.activation),
    }
}

struct PoolF32 {
    kind: Kind,
    p: PoolParams,
}

impl Kernel for PoolF32 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let input = e.inputs.get::<f32>(0)?;
        let out = cast_mut::<f32>(e.output)?;
        match self.kind {
            Kind::Average => pool::avg_pool_f32(&self.p, input, out, e.threads),
            Kind::Max => pool::max_pool_f32(&self.p, input, out, e.threads),
        }
        Ok(())
    }
}
