//! SPLIT, SPLIT_V and UNPACK: one input cut along an axis into several outputs.
//!
//! With `outer` positions before the axis, output `k` takes one block of `chunk_k` elements
//! from each input row.

use ferrolite_kernels::layout::copy_blocks;

use super::super::{Eval, Kernel, PrepareCtx, Prepared};
use super::{const_ints, elem_size, numel, run_err, same_dtype, same_params, to_usize};
use crate::error::{Error, Result};
use crate::options::OpOptions;

struct Split {
    /// Which input holds the data (SPLIT has the axis first).
    input: usize,
    outer: usize,
    /// Elements per input row.
    row: usize,
    /// (offset within the input row, elements) of each output.
    outs: Vec<(usize, usize)>,
    esize: usize,
    loc: String,
}

impl Kernel for Split {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let es = self.esize;
        if self.outer == 0 || self.row == 0 {
            return Ok(());
        }
        let src = e.inputs.bytes(self.input)?;
        let mut first = Some(e.output);
        let mut rest = e.more_outputs.iter_mut();
        for &(off, chunk) in &self.outs {
            let dst: &mut [u8] = match first.take() {
                Some(d) => d,
                None => rest
                    .next()
                    .map(|d| &mut **d)
                    .ok_or_else(|| Error::Internal(format!("{}: missing output", self.loc)))?,
            };
            copy_blocks(
                src,
                off * es,
                self.row * es,
                dst,
                0,
                chunk * es,
                self.outer,
                chunk * es,
            )
            .map_err(|err| run_err(&self.loc, err))?;
        }
        Ok(())
    }

    fn reads_input(&self, k: usize) -> bool {
        k == self.input
    }
}

/// Sets the output shapes and builds the kernel for splitting input `data` along `axis`
/// into pieces of `sizes` (which sum to the axis' size). `keep_axis` is false for UNPACK.
fn build(
    ctx: &PrepareCtx<'_>,
    data: usize,
    axis: usize,
    sizes: &[usize],
    keep_axis: bool,
) -> Result<Prepared> {
    let input = ctx.input(data)?;
    let esize = elem_size(ctx, input)?;
    let shape = &input.shape;
    for (k, &n) in sizes.iter().enumerate() {
        same_dtype(ctx, ctx.output(k)?, input, &format!("output {k}"))?;
        let mut s = shape.clone();
        if keep_axis {
            s[axis] = n;
        } else {
            s.remove(axis);
        }
        ctx.set_output_shape(k, &s)?;
    }
    let outer = numel(ctx, &shape[..axis])?;
    let inner = numel(ctx, &shape[axis + 1..])?;
    let mut outs = Vec::with_capacity(sizes.len());
    let mut off = 0;
    for &n in sizes {
        outs.push((off * inner, n * inner));
        off += n;
    }
    Ok(Prepared::Kernel(Box::new(Split {
        input: data,
        outer,
        row: shape[axis] * inner,
        outs,
        esize,
        loc: ctx.loc().to_string(),
    })))
}

/// A constant scalar axis from input `k`, normalized for rank `rank`.
fn const_axis(ctx: &PrepareCtx<'_>, k: usize, rank: usize) -> Result<usize> {
    let v = const_ints(ctx, k, "axis")?;
    let [a] = v.as_slice() else {
        return Err(ctx.invalid("axis must hold one value"));
    };
    super::axis_index(ctx, *a, rank, "axis")
}

pub(crate) fn prepare_split(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let OpOptions::Split { num_splits } = &ctx.op.options else {
        return Err(ctx.invalid("missing SplitOptions"));
    };
    let n = ctx.op.outputs.len();
    if usize::try_from(*num_splits).ok() != Some(n) || n == 0 {
        return Err(ctx.invalid(format!("num_splits {num_splits} but {n} outputs")));
    }
    ctx.expect_arity(2, 2, n)?;
    let input = ctx.input(1)?;
    let axis = const_axis(ctx, 0, input.shape.len())?;
    let d = input.shape[axis];
    if d % n != 0 {
        return Err(ctx.invalid(format!("dimension {d} does not split into {n} equal parts")));
    }
    build(ctx, 1, axis, &vec![d / n; n], true)
}

pub(crate) fn prepare_split_v(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let OpOptions::Split { num_splits } = &ctx.op.options else {
        return Err(ctx.invalid("missing SplitVOptions"));
    };
    let n = ctx.op.outputs.len();
    if usize::try_from(*num_splits).ok() != Some(n) || n == 0 {
        return Err(ctx.invalid(format!("num_splits {num_splits} but {n} outputs")));
    }
    ctx.expect_arity(3, 3, n)?;
    let input = ctx.input(0)?;
    let axis = const_axis(ctx, 2, input.shape.len())?;
    let splits_t = ctx.input(1)?;
    if splits_t.shape.len() != 1 || splits_t.numel != n {
        return Err(ctx.invalid(format!("size_splits must be a vector of {n} values")));
    }
    let splits = const_ints(ctx, 1, "size_splits")?;
    let d = input.shape[axis];
    let mut unknown = None;
    let mut known = 0usize;
    let mut sizes = Vec::with_capacity(n);
    for (i, &s) in splits.iter().enumerate() {
        if s == -1 && unknown.is_none() {
            unknown = Some(i);
            sizes.push(0);
        } else {
            let s = to_usize(ctx, s, "split size")?;
            known = known
                .checked_add(s)
                .ok_or_else(|| ctx.invalid("split sizes overflow"))?;
            sizes.push(s);
        }
    }
    match unknown {
        Some(i) if known <= d => sizes[i] = d - known,
        None if known == d => {}
        _ => {
            return Err(ctx.invalid(format!(
                "size_splits {splits:?} do not add up to the dimension {d}"
            )))
        }
    }
    build(ctx, 0, axis, &sizes, true)
}

pub(crate) fn prepare_unpack(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let OpOptions::Unpack { num, axis } = &ctx.op.options else {
        return Err(ctx.invalid("missing UnpackOptions"));
    };
    let n = ctx.op.outputs.len();
    ctx.expect_arity(1, 1, n)?;
    let input = ctx.input(0)?;
    if input.numel == 0 {
        return Err(ctx.invalid("UNPACK of an empty tensor"));
    }
    let axis = super::axis_index(ctx, i64::from(*axis), input.shape.len(), "axis")?;
    let d = input.shape[axis];
    if usize::try_from(*num).ok() != Some(n) || n != d {
        return Err(ctx.invalid(format!(
            "num {num} and {n} outputs must equal the dimension {d}"
        )));
    }
    for k in 0..n {
        same_params(ctx, input, ctx.output(k)?, &format!("output {k}"))?;
    }
    build(ctx, 0, axis, &vec![1; n], false)
}
