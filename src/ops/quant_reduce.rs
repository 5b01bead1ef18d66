//! Quantized MEAN (int8, uint8, int16).

use ferrolite_kernels::quant::mean::{self, MeanQuant, ReducePlan};
use ferrolite_kernels::quant::QuantElem;

use super::reduce::Reduction;
use super::{cast_mut, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;

pub(super) fn prepare_mean(ctx: &PrepareCtx<'_>, r: Reduction) -> Result<Prepared> {
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    if input.dtype != output.dtype || !matches!(input.dtype, DType::I8 | DType::U8 | DType::I16) {
        return Err(ctx.unsupported_dtypes());
    }
    let axes: Vec<i64> = r
        .mask
        .iter()
        .enumerate()
        .filter(|(_, &m)| m)
        .map(|(i, _)| i as i64)
        .collect();
    let plan = ReducePlan::new(&r.shape, &axes).map_err(|e| ctx.quant_err(e))?;
    let q = MeanQuant::new(
        ctx.per_tensor(input, "input")?,
        ctx.per_tensor(output, "output")?,
        plan.count(),
    )
    .map_err(|e| ctx.quant_err(e))?;
    Ok(Prepared::Kernel(Box::new(QMean {
        q,
        plan,
        elem: input.dtype,
    })))
}

struct QMean {
    q: MeanQuant,
    plan: ReducePlan,
    /// Element type: int8, uint8 or int16.
    elem: DType,
}

impl QMean {
    fn run<T: QuantElem + bytemuck::Pod>(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<T>(0)?;
        mean::mean(&self.q, &self.plan, x, cast_mut::<T>(e.output)?).map_err(kernel_err)
    }
}

impl Kernel for QMean {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        match self.elem {
            DType::I8 => self.run::<i8>(e),
            DType::I16 => self.run::<i16>(e),
            _ => self.run::<u8>(e),
        }
    }
}
