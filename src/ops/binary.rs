//! Elementwise binary operators with numpy broadcasting: ADD, MUL.

use ferrolite_kernels::activation::Clamp;
use ferrolite_kernels::broadcast::{self, BroadcastPlan};
use ferrolite_kernels::elementwise::{broadcast_map, IntClamp};
use ferrolite_kernels::quant::broadcast::BroadcastPlan as QPlan;

use super::conv::clamp;
use super::{cast_mut, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
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
        (DType::I32, DType::I32, DType::I32) | (DType::I64, DType::I64, DType::I64) => {
            let qplan = QPlan::new(&a.shape, &b.shape)
                .map_err(|_| ctx.invalid("shapes do not broadcast"))?;
            Ok(Prepared::Kernel(Box::new(BinaryInt {
                op,
                plan: qplan,
                clamp: int_activation(activation),
                wide: a.dtype == DType::I64,
            })))
        }
        _ => super::quant_binary::prepare(ctx, op, plan, activation),
    }
}

/// The reference's activation range for plain integer tensors: RELU and RELU6 clamp at 0 (and
/// 6), RELU_N1_TO_1 at ±1; the others leave the type's range.
fn int_activation(a: Activation) -> IntClamp {
    let (lo, hi) = match a {
        Activation::Relu => (0, i64::MAX),
        Activation::Relu6 => (0, 6),
        Activation::ReluN1To1 => (-1, 1),
        _ => (i64::MIN, i64::MAX),
    };
    IntClamp { lo, hi }
}

/// ADD and MUL of int32 or int64 tensors: wrapping arithmetic (what the reference's C++
/// produces on two's-complement machines), then the activation clamp.
struct BinaryInt {
    op: Op,
    plan: QPlan,
    clamp: IntClamp,
    wide: bool,
}

impl Kernel for BinaryInt {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let (c, plan) = (self.clamp, &self.plan);
        let r = match (self.wide, self.op) {
            (false, Op::Add) => broadcast_map(
                plan,
                e.inputs.get::<i32>(0)?,
                e.inputs.get::<i32>(1)?,
                cast_mut::<i32>(e.output)?,
                |x, y| c.apply_i32(x.wrapping_add(y)),
            ),
            (false, Op::Mul) => broadcast_map(
                plan,
                e.inputs.get::<i32>(0)?,
                e.inputs.get::<i32>(1)?,
                cast_mut::<i32>(e.output)?,
                |x, y| c.apply_i32(x.wrapping_mul(y)),
            ),
            (true, Op::Add) => broadcast_map(
                plan,
                e.inputs.get::<i64>(0)?,
                e.inputs.get::<i64>(1)?,
                cast_mut::<i64>(e.output)?,
                |x, y| c.apply_i64(x.wrapping_add(y)),
            ),
            (true, Op::Mul) => broadcast_map(
                plan,
                e.inputs.get::<i64>(0)?,
                e.inputs.get::<i64>(1)?,
                cast_mut::<i64>(e.output)?,
                |x, y| c.apply_i64(x.wrapping_mul(y)),
            ),
        };
        r.map_err(kernel_err)
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
