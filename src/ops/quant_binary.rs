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

pub(super) fn prepare(
    ctx: &PrepareCtx<'_>,
    op: Op,
    _f32_plan: BroadcastPlan,
    a: Activation,
) -> Result<Prepared> {
    let (x, y, out) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    let dtype = out.dtype;
    if x.dtype != dtype || y.dtype != dtype {
        return Err(ctx.unsupported_dtypes());
    }
    if matches!(dtype, DType::I32 | DType::I64) {
        let plan = QPlan::new(&x.shape, &y.shape).map_err(|e| ctx.quant_err(e))?;
        // Integer activations clamp to the activation's range in the integer type.
        let (lo, hi) = match a {
            Activation::Relu => (0, i64::MAX),
            Activation::Relu6 => (0, 6),
            Activation::ReluN1To1 => (-1, 1),
            _ => (i64::MIN, i64::MAX),
        };
        return Ok(Prepared::Kernel(Box::new(IntBinary {
            op,
            plan,
            lo,
            hi,
            wide: dtype == DType::I64,
        })));
    }
    if !matches!(dtype, DType::I8 | DType::U8) {
        return Err(ctx.unsupported_dtypes());
    }
    let plan = QPlan::new(&x.shape, &y.shape).map_err(|e| ctx.quant_err(e))?;
    let (p1, p2, po) = (
        ctx.per_tensor(x, "input 0")?,
        ctx.per_tensor(y, "input 1")?,
        ctx.per_tensor(out, "output")?,
    );
    let act = fused(a);
    let err = |e| ctx.quant_err(e);
    let params = match (op, dtype) {
        (Op::Add, DType::I8) => Params::Add(AddQuant::new::<i8>(p1, p2, po, act).map_err(err)?),
        (Op::Add, _) => Params::Add(AddQuant::new::<u8>(p1, p2, po, act).map_err(err)?),
        (Op::Mul, DType::I8) => Params::Mul(MulQuant::new::<i8>(p1, p2, po, act).map_err(err)?),
        (Op::Mul, _) => Params::Mul(MulQuant::new::<u8>(p1, p2, po, act).map_err(err)?),
    };
    Ok(Prepared::Kernel(Box::new(QBinary {
        params,
        plan,
        signed: dtype == DType::I8,
        isa: ctx.isa,
    })))
}

struct QBinary {
    params: Params,
    plan: QPlan,
    signed: bool,
    isa: ferrolite_kernels::isa::Isa,
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
        if let (true, Params::Add(q)) = (self.signed, &self.params) {
            let (a, b) = (e.inputs.get::<i8>(0)?, e.inputs.get::<i8>(1)?);
            let out = cast_mut::<i8>(e.output)?;
            return add::add_i8(q, &self.plan, a, b, out, self.isa).map_err(kernel_err);
        }
        if self.signed {
            self.run::<i8>(e)
        } else {
            self.run::<u8>(e)
        }
    }
}

/// ADD and MUL on int32 and int64, wrapping like the reference's C++ arithmetic.
struct IntBinary {
    op: Op,
    plan: QPlan,
    lo: i64,
    hi: i64,
    wide: bool,
}

impl IntBinary {
    fn run<T: bytemuck::Pod + Into<i64>>(&self, e: Eval<'_>, narrow: fn(i64) -> T) -> Result<()> {
        let (a, b) = (e.inputs.get::<T>(0)?, e.inputs.get::<T>(1)?);
        let out = cast_mut::<T>(e.output)?;
        let (n1, n2, n3) = self.plan.lens();
        if a.len() < n1 || b.len() < n2 || out.len() < n3 {
            return Err(crate::error::Error::Internal(
                "integer binary operands too short".into(),
            ));
        }
        let op = self.op;
        let (lo, hi) = (self.lo, self.hi);
        self.plan.for_each(|i, j, o| {
            let (x, y): (i64, i64) = (a[i].into(), b[j].into());
            let v = match op {
                Op::Add => x.wrapping_add(y),
                Op::Mul => x.wrapping_mul(y),
            };
            // Wrap to the element type first, then clamp, as the reference's C++ does.
            let wrapped: i64 = narrow(v).into();
            out[o] = narrow(wrapped.clamp(lo, hi));
        });
        Ok(())
    }
}

impl Kernel for IntBinary {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        if self.wide {
            self.run::<i64>(e, |v| v)
        } else {
            self.run::<i32>(e, |v| v as i32)
        }
    }
}
