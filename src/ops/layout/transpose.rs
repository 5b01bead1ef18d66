//! TRANSPOSE, TILE and BROADCAST_TO: each output axis reads one input axis with a stride
//! (permuted, repeated, or 0 for a broadcast axis).

use ferrolite_kernels::layout::{strides, AxisMap, GatherPlan};

use super::super::{PrepareCtx, Prepared};
use super::{
    const_ints, elem_size, kernel_or_fold, plan_err, same_dtype, to_usize, Fill, GatherCopy,
};
use crate::error::Result;

/// TRANSPOSE and BROADCAST_TO accept this many dimensions, like the reference.
const MAX_RANK: usize = 8;

fn finish(ctx: &PrepareCtx<'_>, axes: &[AxisMap], esize: usize) -> Result<Prepared> {
    let plan =
        GatherPlan::new_within(axes, ctx.env.max_memory_bytes).map_err(|e| plan_err(ctx, e))?;
    kernel_or_fold(
        ctx,
        Box::new(GatherCopy::new(ctx, plan, esize, Fill::Bytes([0; 8]))),
    )
}

pub(crate) fn prepare_transpose(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let input = ctx.input(0)?;
    same_dtype(ctx, ctx.output(0)?, input, "output")?;
    let esize = elem_size(ctx, input)?;
    let rank = input.shape.len();
    if rank > MAX_RANK {
        return Err(ctx.unsupported(format!("TRANSPOSE of rank {rank} (at most {MAX_RANK})")));
    }
    let perm_t = ctx.input(1)?;
    if perm_t.shape.len() != 1 || perm_t.numel != rank {
        return Err(ctx.invalid(format!(
            "perm must be a vector of {rank} values, has shape {:?}",
            perm_t.shape
        )));
    }
    let perm = const_ints(ctx, 1, "perm")?;
    let mut seen = vec![false; rank];
    let mut axes_in = Vec::with_capacity(rank);
    for &p in &perm {
        let a = super::axis_index(ctx, p, rank, "perm entry")?;
        if std::mem::replace(&mut seen[a], true) {
            return Err(ctx.invalid(format!("perm {perm:?} repeats axis {a}")));
        }
        axes_in.push(a);
    }
    let out_shape: Vec<usize> = axes_in.iter().map(|&a| input.shape[a]).collect();
    ctx.set_output_shape(0, &out_shape)?;
    let st = strides(&input.shape);
    let axes: Vec<AxisMap> = axes_in
        .iter()
        .map(|&a| AxisMap::copy(input.shape[a], 0, st[a] as isize))
        .collect();
    finish(ctx, &axes, esize)
}

pub(crate) fn prepare_tile(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let input = ctx.input(0)?;
    same_dtype(ctx, ctx.output(0)?, input, "output")?;
    let esize = elem_size(ctx, input)?;
    let rank = input.shape.len();
    let m_t = ctx.input(1)?;
    if m_t.shape.len() != 1 || m_t.numel != rank {
        return Err(ctx.invalid(format!(
            "multiples must be a vector of {rank} values, has shape {:?}",
            m_t.shape
        )));
    }
    let multiples = const_ints(ctx, 1, "multiples")?;
    let st = strides(&input.shape);
    let mut out_shape = Vec::with_capacity(rank);
    let mut axes = Vec::with_capacity(2 * rank);
    for ((&d, &m), &s) in input.shape.iter().zip(&multiples).zip(&st) {
        let m = to_usize(ctx, m, "multiple")?;
        let len = d
            .checked_mul(m)
            .filter(|&n| n <= ctx.max_elements)
            .ok_or_else(|| ctx.invalid("tiled size is too large"))?;
        out_shape.push(len);
        // Output index `r·d + k` of this axis reads input index `k`: split it into a
        // repeat axis (step 0) and the input axis.
        axes.push(AxisMap::copy(m, 0, 0));
        axes.push(AxisMap::copy(d, 0, s as isize));
    }
    ctx.set_output_shape(0, &out_shape)?;
    finish(ctx, &axes, esize)
}

pub(crate) fn prepare_broadcast_to(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let input = ctx.input(0)?;
    same_dtype(ctx, ctx.output(0)?, input, "output")?;
    let esize = elem_size(ctx, input)?;
    let shape_t = ctx.input(1)?;
    if shape_t.shape.len() != 1 {
        return Err(ctx.invalid(format!(
            "shape must be a vector, has shape {:?}",
            shape_t.shape
        )));
    }
    let target: Vec<usize> = const_ints(ctx, 1, "shape")?
        .into_iter()
        .map(|d| to_usize(ctx, d, "dimension"))
        .collect::<Result<_>>()?;
    let (rank, in_rank) = (target.len(), input.shape.len());
    if rank > MAX_RANK || in_rank > rank {
        return Err(ctx.invalid(format!(
            "cannot broadcast shape {:?} to {target:?} (rank at most {MAX_RANK})",
            input.shape
        )));
    }
    let st = strides(&input.shape);
    let lead = rank - in_rank;
    let mut axes = Vec::with_capacity(rank);
    for (i, &len) in target.iter().enumerate() {
        let step = match i.checked_sub(lead) {
            None => 0,
            Some(j) if input.shape[j] == len => st[j] as isize,
            Some(j) if input.shape[j] == 1 => 0,
            Some(_) => {
                return Err(ctx.invalid(format!(
                    "cannot broadcast shape {:?} to {target:?}",
                    input.shape
                )))
            }
        };
        axes.push(AxisMap::copy(len, 0, step));
    }
    ctx.set_output_shape(0, &target)?;
    finish(ctx, &axes, esize)
}
