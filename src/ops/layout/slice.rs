//! STRIDED_SLICE and SLICE.
//!
//! STRIDED_SLICE follows the reference's two steps. First the masks are resolved into one
//! (start, stop, stride) per *effective* axis: the ellipsis expands to full ranges, each
//! new-axis bit inserts an axis of size 1, and specs beyond the given ones take whole axes.
//! Then each axis is clamped: a negative index counts from the end, `begin_mask` and
//! `end_mask` take the whole direction, `offset` makes `end` relative to `begin`, and a
//! shrink axis takes one element and disappears from the output shape.

use ferrolite_kernels::layout::{strides, AxisMap, GatherPlan, LayoutError};

use super::super::{cast, cast_mut, Eval, Kernel, PrepareCtx, Prepared};
use super::{
    const_ints, elem_size, kernel_or_fold, plan_err, run_err, same_dtype, to_usize, Fill,
    GatherCopy,
};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::options::OpOptions;

/// One effective axis after the masks are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spec {
    start: i64,
    stop: i64,
    stride: i64,
    begin_mask: bool,
    end_mask: bool,
    shrink: bool,
    /// The `end` value as given (the output size along this axis in `offset` mode).
    raw_end: i64,
}

/// The effective input shape and per-axis specs (the reference's
/// `BuildStridedSliceParams`).
#[allow(clippy::too_many_arguments)]
fn effective_specs(
    shape: &[usize],
    begin: &[i64],
    end: &[i64],
    strides_v: &[i64],
    begin_mask: u32,
    end_mask: u32,
    ellipsis_mask: u32,
    new_axis_mask: u32,
    shrink_mask: u32,
) -> Option<(Vec<usize>, Vec<Spec>)> {
    let bit = |m: u32, i: usize| i < 32 && m & (1u32 << i) != 0;
    let n = begin.len();
    let rank = shape.len();
    let num_add_axis = (0..n)
        .filter(|&i| !bit(ellipsis_mask, i) && bit(new_axis_mask, i))
        .count();
    let eff = rank + num_add_axis;
    if eff >= 32 {
        return None;
    }
    let mut eff_ellipsis = 0u32;
    let mut eff_new = 0u32;
    let mut ellipsis_start = eff;
    let mut expanded = 0usize;
    let mut i = 0;
    while i < eff {
        if bit(ellipsis_mask, i) {
            ellipsis_start = i;
            let reach = (i + 1 + num_add_axis + rank) as i64 - n as i64;
            let end_idx = (i + 1).max(reach.min(eff as i64).max(0) as usize);
            expanded = end_idx - ellipsis_start - 1;
            while i < end_idx {
                eff_ellipsis |= 1 << i;
                i += 1;
            }
            continue;
        }
        if bit(new_axis_mask, i - expanded) {
            eff_new |= 1 << i;
        }
        i += 1;
    }
    let mut eff_shape = Vec::with_capacity(eff);
    let mut specs = Vec::with_capacity(eff);
    let mut added_ellipsis = 0usize;
    let mut added_axes = 0usize;
    let full = Spec {
        start: 0,
        stop: 0,
        stride: 1,
        begin_mask: true,
        end_mask: true,
        shrink: false,
        raw_end: 0,
    };
    for i in 0..eff {
        if bit(eff_ellipsis, i) {
            added_ellipsis = i.saturating_sub(ellipsis_start);
            eff_shape.push(*shape.get(i - added_axes)?);
            specs.push(full);
        } else if bit(eff_new, i) {
            eff_shape.push(1);
            specs.push(Spec {
                start: 0,
                stop: 1,
                stride: 1,
                begin_mask: false,
                end_mask: false,
                shrink: false,
                raw_end: 1,
            });
            added_axes += 1;
        } else if i >= n + expanded {
            eff_shape.push(*shape.get(i - added_axes)?);
            specs.push(full);
        } else {
            let o = i.checked_sub(added_ellipsis)?;
            eff_shape.push(*shape.get(i - added_axes)?);
            specs.push(Spec {
                start: *begin.get(o)?,
                stop: *end.get(o)?,
                stride: *strides_v.get(o)?,
                begin_mask: bit(begin_mask, o),
                end_mask: bit(end_mask, o),
                shrink: bit(shrink_mask, o),
                raw_end: *end.get(o)?,
            });
        }
    }
    Some((eff_shape, specs))
}

/// `StartForAxis` and `EndForAxis` of the reference.
fn start_stop(s: &Spec, size: i64, offset: bool) -> (i64, i64) {
    let clamp = |v: i64| {
        if s.stride > 0 {
            v.clamp(0, size)
        } else {
            v.clamp(-1, size - 1)
        }
    };
    let mut start = s.start;
    if start < 0 {
        start += size;
    }
    start = clamp(start);
    if s.begin_mask {
        start = if s.stride > 0 { 0 } else { size - 1 };
    }
    if s.shrink {
        return (start, if start >= size { start } else { start + 1 });
    }
    let mut stop = s.stop;
    if offset {
        stop = stop.saturating_add(start);
    }
    if stop < 0 {
        stop = stop.saturating_add(size);
    }
    stop = clamp(stop);
    if s.end_mask {
        stop = if s.stride > 0 { size } else { -1 };
    }
    (start, stop)
}

/// Elements visited from `start` towards `stop` (exclusive) in steps of `stride`.
fn count(start: i64, stop: i64, stride: i64) -> i64 {
    let (start, stop, stride) = (i128::from(start), i128::from(stop), i128::from(stride));
    let n = if stride > 0 && stop > start {
        (stop - start + stride - 1) / stride
    } else if stride < 0 && stop < start {
        (start - stop - stride - 1) / -stride
    } else {
        0
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn prepare_strided_slice(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let OpOptions::StridedSlice(o) = &ctx.op.options else {
        return Err(ctx.invalid("missing StridedSliceOptions"));
    };
    ctx.expect_arity(4, 4, 1)?;
    let input = ctx.input(0)?;
    same_dtype(ctx, ctx.output(0)?, input, "output")?;
    let esize = elem_size(ctx, input)?;
    for (k, what) in [(1, "begin"), (2, "end"), (3, "strides")] {
        if ctx.input(k)?.shape.len() != 1 {
            return Err(ctx.invalid(format!("{what} must be a vector")));
        }
    }
    // In offset mode the output shape does not depend on `begin`, so a run-time `begin` (a
    // dynamic slice of fixed size) is supported: the plan starts at 0 and is shifted.
    let dynamic = o.offset && ctx.const_bytes(1).is_none();
    let begin = if dynamic {
        dynamic_begin_type(ctx)?;
        vec![0; ctx.input(1)?.numel]
    } else {
        const_ints(ctx, 1, "begin")?
    };
    let end = const_ints(ctx, 2, "end")?;
    let strides_v = const_ints(ctx, 3, "strides")?;
    if begin.len() != end.len() || begin.len() != strides_v.len() {
        return Err(ctx.invalid("begin, end and strides differ in length"));
    }
    if begin.len() > 31 {
        return Err(ctx.invalid("more than 31 slice indices"));
    }
    if o.offset && begin.len() != input.shape.len() {
        return Err(
            ctx.unsupported("offset STRIDED_SLICE with fewer indices than input dimensions")
        );
    }
    if dynamic && strides_v.iter().any(|&s| s < 0) {
        return Err(ctx.unsupported("non-constant begin with negative strides"));
    }
    if o.offset && (o.ellipsis_mask != 0 || o.new_axis_mask != 0) {
        return Err(
            ctx.unsupported("STRIDED_SLICE with offset together with ellipsis or new-axis masks")
        );
    }
    if let Some(s) = strides_v
        .iter()
        .find(|&&s| s == 0 || s <= i64::from(i32::MIN))
    {
        return Err(ctx.invalid(format!("stride {s} is not allowed")));
    }
    let (eff_shape, specs) = effective_specs(
        &input.shape,
        &begin,
        &end,
        &strides_v,
        o.begin_mask as u32,
        o.end_mask as u32,
        o.ellipsis_mask as u32,
        o.new_axis_mask as u32,
        o.shrink_axis_mask as u32,
    )
    .ok_or_else(|| {
        ctx.invalid(format!(
            "masks do not fit input shape {:?} and {} indices",
            input.shape,
            begin.len()
        ))
    })?;
    let st = strides(&eff_shape);
    let mut out_shape = Vec::new();
    let mut axes = Vec::with_capacity(specs.len());
    let mut dyn_axes = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let size = eff_shape[i] as i64;
        let (start, stop) = start_stop(s, size, o.offset);
        let n = count(start, stop, s.stride);
        if s.shrink {
            if n != 1 {
                return Err(ctx.invalid(format!(
                    "shrink axis {i}: index {} selects no element of a dimension of size {size}",
                    s.start
                )));
            }
        } else {
            // In offset mode the reference sizes the output from `end` as given.
            if o.offset {
                let declared = count(0, s.raw_end, s.stride);
                if declared != n {
                    return Err(ctx.invalid(format!(
                        "axis {i}: offset slice of {} from {start} runs past a dimension of size {size}",
                        s.raw_end
                    )));
                }
            }
            out_shape.push(n as usize);
        }
        let a = if n == 0 {
            AxisMap::new()
        } else {
            // A single position needs no step (and a huge stride must not overflow).
            let step = if n == 1 {
                0
            } else {
                s.stride as isize * st[i] as isize
            };
            AxisMap::copy(n as usize, start as usize * st[i], step)
        };
        axes.push(a);
        dyn_axes.push(DynAxis {
            size: eff_shape[i],
            span: if n == 0 {
                0
            } else {
                ((n - 1) * s.stride + 1) as usize
            },
            stride: st[i],
            fixed: s.begin_mask,
        });
    }
    ctx.set_output_shape(0, &out_shape)?;
    let plan =
        GatherPlan::new_within(&axes, ctx.env.max_memory_bytes).map_err(|e| plan_err(ctx, e))?;
    if dynamic {
        let k = DynamicBegin::new(ctx, plan, esize, dyn_axes, true)?;
        return Ok(Prepared::Kernel(Box::new(k)));
    }
    kernel_or_fold(
        ctx,
        Box::new(GatherCopy::new(ctx, plan, esize, Fill::Bytes([0; 8]))),
    )
}

pub(crate) fn prepare_slice(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(3, 3, 1)?;
    let input = ctx.input(0)?;
    same_dtype(ctx, ctx.output(0)?, input, "output")?;
    let esize = elem_size(ctx, input)?;
    let rank = input.shape.len();
    for (k, what) in [(1, "begin"), (2, "size")] {
        let t = ctx.input(k)?;
        if t.shape.len() != 1 || t.numel != rank {
            return Err(ctx.invalid(format!("{what} must be a vector of {rank} values")));
        }
    }
    let size = const_ints(ctx, 2, "size")?;
    // A run-time `begin` with constant sizes keeps the output shape static.
    let dynamic = ctx.const_bytes(1).is_none();
    let begin = if dynamic {
        dynamic_begin_type(ctx)?;
        if size.contains(&-1) {
            return Err(ctx.unsupported("non-constant begin with size −1"));
        }
        vec![0; rank]
    } else {
        const_ints(ctx, 1, "begin")?
    };
    let st = strides(&input.shape);
    let mut out_shape = Vec::with_capacity(rank);
    let mut axes = Vec::with_capacity(rank);
    let mut dyn_axes = Vec::with_capacity(rank);
    for (i, ((&b, &s), &d)) in begin.iter().zip(&size).zip(&input.shape).enumerate() {
        let b = to_usize(ctx, b, "begin")?;
        let len = if s == -1 {
            d.checked_sub(b)
        } else {
            to_usize(ctx, s, "size")?
                .checked_add(b)
                .filter(|&e| e <= d)
                .map(|e| e - b)
        }
        .ok_or_else(|| {
            ctx.invalid(format!(
                "axis {i}: begin {b} and size {s} exceed the dimension {d}"
            ))
        })?;
        out_shape.push(len);
        axes.push(AxisMap::copy(len, b * st[i], st[i] as isize));
        dyn_axes.push(DynAxis {
            size: d,
            span: len,
            stride: st[i],
            fixed: false,
        });
    }
    ctx.set_output_shape(0, &out_shape)?;
    let plan =
        GatherPlan::new_within(&axes, ctx.env.max_memory_bytes).map_err(|e| plan_err(ctx, e))?;
    if dynamic {
        let k = DynamicBegin::new(ctx, plan, esize, dyn_axes, false)?;
        return Ok(Prepared::Kernel(Box::new(k)));
    }
    kernel_or_fold(
        ctx,
        Box::new(GatherCopy::new(ctx, plan, esize, Fill::Bytes([0; 8]))),
    )
}

/// A run-time `begin` must be int32 or int64, like the reference's.
fn dynamic_begin_type(ctx: &PrepareCtx<'_>) -> Result<DType> {
    match ctx.input(1)?.dtype {
        t @ (DType::I32 | DType::I64) => Ok(t),
        other => Err(ctx.unsupported(format!("non-constant begin of dtype {other}"))),
    }
}

/// One input axis of a slice whose start is read at run time.
#[derive(Debug, Clone, Copy)]
struct DynAxis {
    size: usize,
    /// Input positions the slice covers from its start: `(count − 1)·stride + 1`.
    span: usize,
    /// Elements between consecutive positions of this axis.
    stride: usize,
    /// The start is fixed at 0 by `begin_mask`.
    fixed: bool,
}

/// SLICE, or STRIDED_SLICE with `offset`, whose `begin` is a run-time tensor: the plan was
/// built for start 0 and is shifted by the starts read at each run. A start that would put
/// the slice past the input is an error (the reference fails or leaves output unwritten).
struct DynamicBegin {
    plan: GatherPlan,
    esize: usize,
    axes: Vec<DynAxis>,
    wide: bool,
    /// STRIDED_SLICE semantics: negative starts count from the end and starts are clamped.
    strided: bool,
    loc: String,
}

impl DynamicBegin {
    fn new(
        ctx: &PrepareCtx<'_>,
        plan: GatherPlan,
        esize: usize,
        axes: Vec<DynAxis>,
        strided: bool,
    ) -> Result<Self> {
        Ok(DynamicBegin {
            plan,
            esize,
            axes,
            wide: dynamic_begin_type(ctx)? == DType::I64,
            strided,
            loc: ctx.loc().to_string(),
        })
    }

    /// The element shift of the slice for these starts.
    fn shift(&self, begin: impl Iterator<Item = i64>) -> Result<usize> {
        let mut shift = 0usize;
        for (a, b) in self.axes.iter().zip(begin) {
            let size = a.size as i64;
            let start = if a.fixed {
                0
            } else if self.strided {
                (if b < 0 { b.saturating_add(size) } else { b }).clamp(0, size)
            } else {
                b
            };
            if start < 0 || start.saturating_add(a.span as i64) > size {
                return Err(run_err(
                    &self.loc,
                    LayoutError::IndexOutOfRange {
                        index: b,
                        limit: (size - a.span as i64 + 1).max(0) as usize,
                    },
                ));
            }
            shift += start as usize * a.stride;
        }
        Ok(shift)
    }
}

impl Kernel for DynamicBegin {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let shift = if self.wide {
            self.shift(e.inputs.get::<i64>(1)?.iter().copied())?
        } else {
            self.shift(e.inputs.get::<i32>(1)?.iter().map(|&v| i64::from(v)))?
        };
        if self.plan.output_len() == 0 {
            return Ok(());
        }
        let src = e.inputs.bytes(0)?;
        let out = e.output;
        let r = match self.esize {
            1 => self.plan.run_shifted(src, 0, out, shift),
            2 => self
                .plan
                .run_shifted::<u16>(cast(src)?, 0, cast_mut(out)?, shift),
            4 => self
                .plan
                .run_shifted::<u32>(cast(src)?, 0, cast_mut(out)?, shift),
            _ => self
                .plan
                .run_shifted::<u64>(cast(src)?, 0, cast_mut(out)?, shift),
        };
        r.map_err(|err| match err {
            LayoutError::BufferSize { .. } => Error::Internal(format!("{}: {err}", self.loc)),
            other => run_err(&self.loc, other),
        })
    }
}
