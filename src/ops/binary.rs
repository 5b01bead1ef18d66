//! Elementwise binary operators with numpy broadcasting: ADD, MUL.

use ferrolite_kernels::activation::Clamp;
use ferrolite_kernels::broadcast::{self, BroadcastPlan};

use super::conv::clamp;
use super::{cast_mut, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;
use crate::options::{Activation, OpOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Mul,
}

pub(super) fn prepare(ctx: &PrepareCtx<'_>, op: Op) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let activation = match (&ctx.op.options, op) {
        (OpOptions::Add { activation, .. }, Op::Add) | (OpOptions::Mul { activation }, Op::Mul) => {
            *activation
        }
        // Options are optional in old files; the default is no activation.
        (OpOptions::None, _) => Activation::None,
        _ => return Err(ctx.invalid("options do not belong to this operator")),
    };
    let (a, b, out) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    let plan = BroadcastPlan::new(&a.shape, &b.shape).ok_or_else(|| {
        ctx.invalid(format!(
            "shapes {:?} and {:?} do not broadcast (or rank > 6)",
            a.shape, b.shape
        ))
    })?;
    ctx.set_output_shape(0, plan.output_shape())?;
    match (a.dtype, b.dtype, out.dtype) {
        (DType::F32, DType::F32, DType::F32) => Ok(Prepared::Kernel(Box::new(BinaryF32 {
            op,
            plan,
            clamp: clamp(activation),
        }))),
        _ => super::quant_binary::prepare(ctx, op, plan, activation),
    }
}

struct BinaryF32 {
    op: Op,
    plan: BroadcastPlan,
    clamp: Clamp,
}

impl Kernel for BinaryF32 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let a = e.inputs.get::<f32>(0)?;
        let b = e.inputs.get::<f32>(1)?;
        let out = cast_mut::<f32>(e.output)?;
        let (plan, clamp, threads) = (&self.plan, self.clamp, e.threads);
        match self.op {
            Op::Add => broadcast::binary_f32_threads(plan, a, b, out, clamp, |x, y| x + y, threads),
            Op::Mul => broadcast::binary_f32_threads(plan, a, b, out, clamp, |x, y| x * y, threads),
        }
        Ok(())
    }
}
