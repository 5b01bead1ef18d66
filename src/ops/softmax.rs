//! SOFTMAX over the last dimension.

use ferrolite_kernels::softmax;

use super::{cast_mut, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;
use crate::options::OpOptions;

pub(super) fn prepare(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 1, 1)?;
    let beta = match &ctx.op.options {
        OpOptions::Softmax { beta } => *beta,
        _ => return Err(ctx.invalid("missing SoftmaxOptions")),
    };
    let input = ctx.input(0)?;
    if input.shape.is_empty() {
        return Err(ctx.invalid("input must have at least one dimension"));
    }
    ctx.set_output_shape(0, &input.shape)?;
    // An empty last dimension means an empty tensor: nothing to compute, and a row length of
    // 1 keeps the kernels' precondition (depth > 0) on the empty slices.
    let depth = input.shape.last().copied().unwrap_or(1).max(1);
    match (input.dtype, ctx.output(0)?.dtype) {
        (DType::F32, DType::F32) => Ok(Prepared::Kernel(Box::new(SoftmaxF32 { depth, beta }))),
        _ => super::quant_softmax::prepare(ctx, depth, beta),
    }
}

struct SoftmaxF32 {
    depth: usize,
    beta: f32,
}

impl Kernel for SoftmaxF32 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let input = e.inputs.get::<f32>(0)?;
        let out = cast_mut::<f32>(e.output)?;
        softmax::softmax_f32(input, out, self.depth, self.beta, e.threads);
        Ok(())
    }
}
