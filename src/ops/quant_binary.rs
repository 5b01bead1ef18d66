//! Quantized ADD and MUL (int8, uint8), with broadcasting.

use ferrolite_kernels::broadcast::BroadcastPlan;
use ferrolite_kernels::quant::add::{self, AddQuant};
use ferrolite_kernels::quant::broadcast::BroadcastPlan as QPlan;
use ferrolite_kernels::quant::mul::{self, MulQuant};
use ferrolite_kernels::quant::QuantElem;

use super::binary::Op;
use super::{cast_mut, fused, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;
use crate::options::Activation;

enum Params {
    Add(AddQuant),
    Mul(MulQuant),
}

pub(super) fn prepare(ctx: &PrepareCtx<'_>, op: Op, _f32_plan: BroadcastPlan, a: Activation) -> Result<Prepared> {
    let (x, y, out) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    let dtype = out.dtype;
    if x.dtype != dtype || y.dtype != dtype || !matches!(dtype, DType::I8 | DType::U8) {
        return Err(ctx.unsupported_dtypes());
    }
    let plan = QPlan::new(&x.shape, &y.shape).map_err(|e| ctx.quant_err(e))?;
    let (p1, p2, po) = (ctx.per_tensor(x, "input 0")?, ctx.per_tensor(y, "input 1")?, ctx.per_tensor(out, "output")?);
    let act = fused(a);
    let err = |e| ctx.quant_err(e);
    let params = match (op, dtype) {
        (Op::Add, DType::I8) => Params::Add(AddQuant::new::<i8>(p1, p2, po, act).map_err(err)?),
        (Op::Add, _) => Params::Add(AddQuant::new::<u8>(p1, p2, po, act).map_err(err)?),
        (Op::Mul, DType::I8) => Params::Mul(MulQuant::new::<i8>(p1, p2, po, act).map_err(err)?),
        (Op::Mul, _) => Params::Mul(MulQuant::new::<u8>(p1, p2, po, act).map_err(err)?),
    };
    Ok(Prepared::Kernel(Box::new(QBinary { params, plan, signed: dtype == DType::I8 })))
}

struct QBinary {
    params: Params,
    plan: QPlan,
    signed: bool,
}

impl QBinary {
    fn run<T: QuantElem + bytemuck::Pod>(&self, e: Eval<'_>) -> Result<()> {
        let (a, b) = (e.inputs.get::<T>(0)?, e.inputs.get::<T>(1)?);
        let out = cast_mut::<T>(e.output)?;
        match &self.params {
            Params::Add(q) => add::add(q, &self.plan, a, b, out),
            Params::Mul(q) => mul::mul(q, &self.plan, a, b, out),
        }
        .map_err(kernel_err)
    }
}

impl Kernel for QBinary {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        if self.signed {
            self.run::<i8>(e)
        } else {
            self.run::<u8>(e)
        }
    }
}
