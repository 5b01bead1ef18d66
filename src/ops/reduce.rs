//! MEAN.

use ferrolite_kernels::reduce::{self, MAX_RANK};

use super::{cast_mut, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;
use crate::options::OpOptions;

/// The reduced axes of a reduction node: a constant int32 axis list, negative axes counted
/// from the end, duplicates allowed (as in TFLite).
pub(super) struct Reduction {
    pub shape: Vec<usize>,
    pub mask: Vec<bool>,
    pub out_shape: Vec<usize>,
}

pub(super) fn reduction(ctx: &PrepareCtx<'_>) -> Result<Reduction> {
    ctx.expect_arity(2, 2, 1)?;
    let keep_dims = match &ctx.op.options {
        OpOptions::Reducer { keep_dims } => *keep_dims,
        _ => false,
    };
    let input = ctx.input(0)?;
    let axes_t = ctx.input(1)?;
    if axes_t.dtype != DType::I32 {
        return Err(ctx.unsupported_dtypes());
    }
    let axes = ctx
        .const_vec::<i32>(1)?
        .ok_or_else(|| ctx.unsupported("non-constant axes"))?;
    let rank = input.shape.len();
    if rank > MAX_RANK {
        return Err(ctx.unsupported(format!("rank {rank} (at most {MAX_RANK})")));
    }
    let mut mask = vec![false; rank];
    for &a in &axes {
        let a = if a < 0 { a + rank as i32 } else { a };
        if a < 0 || a as usize >= rank {
            return Err(ctx.invalid(format!("axis out of range for rank {rank}: {axes:?}")));
        }
        mask[a as usize] = true;
    }
    let out_shape = input
        .shape
        .iter()
        .zip(&mask)
        .filter_map(|(&d, &m)| match (m, keep_dims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    Ok(Reduction {
        shape: input.shape.clone(),
        mask,
        out_shape,
    })
}

pub(super) fn prepare_mean(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let r = reduction(ctx)?;
    ctx.set_output_shape(0, &r.out_shape)?;
    match (ctx.input(0)?.dtype, ctx.output(0)?.dtype) {
        (DType::F32, DType::F32) => Ok(Prepared::Kernel(Box::new(MeanF32 { r }))),
        _ => super::quant_reduce::prepare_mean(ctx, r),
    }
}

struct MeanF32 {
    r: Reduction,
}

impl Kernel for MeanF32 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let input = e.inputs.get::<f32>(0)?;
        let out = cast_mut::<f32>(e.output)?;
        reduce::mean_f32(input, &self.r.shape, &self.r.mask, out);
        Ok(())
    }
}
