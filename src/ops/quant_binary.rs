//! Quantized ADD and MUL (int8, uint8, int16), with broadcasting.

use ferrolite_kernels::broadcast::BroadcastPlan;
use ferrolite_kernels::quant::add::{self, AddQuant};
use ferrolite_kernels::quant::add16::{self, AddSub16};
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
    if !matches!(dtype, DType::I8 | DType::U8 | DType::I16) {
        return Err(ctx.unsupported_dtypes());
    }
    let plan = QPlan::new(&x.shape, &y.shape).map_err(|e| ctx.quant_err(e))?;
    if dtype == DType::I16 {
        return prepare_i16(ctx, op, plan, a);
    }
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

/// int16 ADD (general or power-of-two path) and MUL (zero points 0).
fn prepare_i16(ctx: &PrepareCtx<'_>, op: Op, plan: QPlan, a: Activation) -> Result<Prepared> {
    let (x, y, out) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    let (p1, p2, po) = (
        ctx.per_tensor(x, "input 0")?,
        ctx.per_tensor(y, "input 1")?,
        ctx.per_tensor(out, "output")?,
    );
    let err = |e| ctx.quant_err(e);
    let act = fused(a);
    let params = match op {
        Op::Add => {
            let pot = match &ctx.op.options {
                crate::options::OpOptions::Add {
                    pot_scale_int16, ..
                } => *pot_scale_int16,
                // The schema's default.
                _ => true,
            };
            let q = AddSub16::new(p1, p2, po, act, pot, false).map_err(err)?;
            let (l1, l2, lo) = plan.lens();
            if q.is_pot() && (l1 != lo || l2 != lo) {
                return Err(ctx.unsupported(
                    "int16 ADD with power-of-two scales (pot_scale_int16) and broadcasting",
                ));
            }
            Params16::Add(q)
        }
        Op::Mul => {
            if p1.zero_point != 0 || p2.zero_point != 0 || po.zero_point != 0 {
                return Err(ctx.unsupported("int16 MUL with non-zero zero points"));
            }
            Params16::Mul(MulQuant::new::<i16>(p1, p2, po, act).map_err(err)?)
        }
    };
    Ok(Prepared::Kernel(Box::new(QBinary16 { params, plan })))
}

/// int16 SUB (general or power-of-two path, both broadcasting). `pot_scale_int16` is the
/// operator option (schema default true).
pub(super) fn sub_i16(
    ctx: &PrepareCtx<'_>,
    plan: QPlan,
    act: ferrolite_kernels::quant::FusedActivation,
    pot_scale_int16: bool,
) -> Result<Box<dyn Kernel>> {
    let (x, y, out) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    let q = AddSub16::new(
        ctx.per_tensor(x, "input 0")?,
        ctx.per_tensor(y, "input 1")?,
        ctx.per_tensor(out, "output")?,
        act,
        pot_scale_int16,
        true,
    )
    .map_err(|e| ctx.quant_err(e))?;
    Ok(Box::new(QBinary16 {
        params: Params16::Add(q),
        plan,
    }))
}

enum Params16 {
    Add(AddSub16),
    Mul(MulQuant),
}

struct QBinary16 {
    params: Params16,
    plan: QPlan,
}

impl Kernel for QBinary16 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let (a, b) = (e.inputs.get::<i16>(0)?, e.inputs.get::<i16>(1)?);
        let out = cast_mut::<i16>(e.output)?;
        match &self.params {
            Params16::Add(q) => add16::add_sub_i16(q, &self.plan, a, b, out),
            Params16::Mul(q) => mul::mul(q, &self.plan, a, b, out),
        }
        .map_err(kernel_err)
    }
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
            return add::add_i8(q, &self.plan, a, b, out, self.isa, e.threads).map_err(kernel_err);
        }
        if let (true, Params::Mul(q)) = (self.signed, &self.params) {
            let (a, b) = (e.inputs.get::<i8>(0)?, e.inputs.get::<i8>(1)?);
            let out = cast_mut::<i8>(e.output)?;
            return mul::mul_i8(q, &self.plan, a, b, out, self.isa, e.threads).map_err(kernel_err);
        }
        if self.signed {
            self.run::<i8>(e)
        } else {
            self.run::<u8>(e)
        }
    }

    fn mul8(&self) -> Option<MulQuant> {
        let (l1, l2, lo) = self.plan.lens();
        match &self.params {
            Params::Mul(q) if l1 == lo && l2 == lo => Some(*q),
            _ => None,
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
