//! Quantized AVERAGE_POOL_2D and MAX_POOL_2D (int8, uint8, int16).

use ferrolite_kernels::pool::PoolParams;
use ferrolite_kernels::quant::pool as qpool;
use ferrolite_kernels::quant::{PoolGeometry, QuantElem};

use super::pool::Kind;
use super::{cast_mut, fused, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;
use crate::options::Activation;

pub(super) fn prepare(
    ctx: &PrepareCtx<'_>,
    kind: Kind,
    p: &PoolParams,
    a: Activation,
) -> Result<Prepared> {
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    if input.dtype != output.dtype || !matches!(input.dtype, DType::I8 | DType::U8 | DType::I16) {
        return Err(ctx.unsupported_dtypes());
    }
    let (qi, qo) = (
        ctx.per_tensor(input, "input")?,
        ctx.per_tensor(output, "output")?,
    );
    // Pooling works on raw values, so input and output must share their parameters.
    if (qi.scale - qo.scale).abs() > 1e-6 || qi.zero_point != qo.zero_point {
        return Err(ctx.invalid("input and output quantization parameters differ"));
    }
    let g = PoolGeometry {
        batches: p.batch,
        in_h: p.in_h,
        in_w: p.in_w,
        channels: p.channels,
        out_h: p.out_h,
        out_w: p.out_w,
        filter_h: p.filter_h,
        filter_w: p.filter_w,
        stride_h: p.stride_h,
        stride_w: p.stride_w,
        pad_top: p.pad_top,
        pad_left: p.pad_left,
    };
    g.validate().map_err(|e| ctx.quant_err(e))?;
    let elem = input.dtype;
    let (lo, hi) = match elem {
        DType::I8 => qpool::pool_activation_range::<i8>(fused(a), qo),
        DType::I16 => qpool::pool_activation_range::<i16>(fused(a), qo),
        _ => qpool::pool_activation_range::<u8>(fused(a), qo),
    }
    .map_err(|e| ctx.quant_err(e))?;
    Ok(Prepared::Kernel(Box::new(QPool {
        kind,
        g,
        lo,
        hi,
        elem,
    })))
}

struct QPool {
    kind: Kind,
    g: PoolGeometry,
    lo: i32,
    hi: i32,
    /// Element type: int8, uint8 or int16.
    elem: DType,
}

impl QPool {
    fn run<T: QuantElem + bytemuck::Pod>(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<T>(0)?;
        let out = cast_mut::<T>(e.output)?;
        match self.kind {
            Kind::Average => qpool::average_pool(&self.g, self.lo, self.hi, x, out),
            Kind::Max => qpool::max_pool(&self.g, self.lo, self.hi, x, out, e.threads),
        }
        .map_err(kernel_err)
    }
}

impl Kernel for QPool {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        match self.elem {
            DType::I8 => self.run::<i8>(e),
            DType::I16 => self.run::<i16>(e),
            _ => self.run::<u8>(e),
        }
    }
}
