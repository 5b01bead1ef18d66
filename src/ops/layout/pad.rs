//! PAD, PADV2 and MIRROR_PAD.
//!
//! The paddings are a constant `[rank, 2]` matrix of non-negative (before, after) counts. PAD
//! fills with zero (the output zero point for quantized tensors), PADV2 with its third input,
//! which may be a run-time tensor. MIRROR_PAD reflects the edge: REFLECT leaves the border
//! element out, SYMMETRIC repeats it, so the paddings are bounded by `size − 1` and `size`.

use ferrolite_kernels::layout::{strides, AxisMap, GatherPlan};

use super::super::{PrepareCtx, Prepared};
use super::{
    const_ints, elem_size, kernel_or_fold, params_of, plan_err, same_dtype, same_params, to_usize,
    Fill, GatherCopy,
};
use crate::dtype::DType;
use crate::error::Result;
use crate::options::OpOptions;

/// The (before, after) pairs of the constant paddings input.
fn paddings(ctx: &PrepareCtx<'_>, rank: usize) -> Result<Vec<(usize, usize)>> {
    let t = ctx.input(1)?;
    if t.shape.len() != 2 || t.shape[0] != rank || t.shape[1] != 2 {
        return Err(ctx.invalid(format!(
            "paddings must have shape [{rank}, 2], has {:?}",
            t.shape
        )));
    }
    let v = const_ints(ctx, 1, "paddings")?;
    v.chunks_exact(2)
        .map(|p| {
            let bound = |x: i64| -> Result<usize> {
                if x > i64::from(i32::MAX) {
                    return Err(ctx.invalid(format!("padding {x} is too large")));
                }
                to_usize(ctx, x, "padding")
            };
            Ok((bound(p[0])?, bound(p[1])?))
        })
        .collect()
}

fn output_shape(
    ctx: &PrepareCtx<'_>,
    shape: &[usize],
    pads: &[(usize, usize)],
) -> Result<Vec<usize>> {
    shape
        .iter()
        .zip(pads)
        .map(|(&d, &(a, b))| {
            d.checked_add(a)
                .and_then(|x| x.checked_add(b))
                .ok_or_else(|| ctx.invalid("padded size overflows"))
        })
        .collect()
}

pub(crate) fn prepare_pad(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 3, 1)?;
    let input = ctx.input(0)?;
    let output = ctx.output(0)?;
    same_dtype(ctx, output, input, "output")?;
    let esize = elem_size(ctx, input)?;
    let rank = input.shape.len();
    let pads = paddings(ctx, rank)?;
    let out_shape = output_shape(ctx, &input.shape, &pads)?;
    ctx.set_output_shape(0, &out_shape)?;

    let quantized = matches!(input.dtype, DType::I8 | DType::U8 | DType::I16)
        && (input.quantization.is_some() || input.dtype == DType::U8);
    let fill = match ctx.input_opt(2) {
        None => {
            // Zero, which for quantized tensors is the output's zero point.
            let zp = if quantized { params_of(output).1 } else { 0 };
            let fits = match input.dtype {
                DType::I8 => i8::try_from(zp).is_ok(),
                DType::U8 => u8::try_from(zp).is_ok(),
                DType::I16 => i16::try_from(zp).is_ok(),
                _ => true,
            };
            if !fits {
                return Err(ctx.invalid(format!(
                    "output zero point {zp} is not representable in {}",
                    input.dtype
                )));
            }
            Fill::Bytes(zp.to_le_bytes())
        }
        Some(value) => {
            same_dtype(ctx, value, input, "constant value")?;
            if value.numel != 1 {
                return Err(ctx.invalid(format!(
                    "constant value must have one element, has {}",
                    value.numel
                )));
            }
            if quantized {
                // The value is stored in the output's quantization.
                same_params(ctx, value, output, "constant value")?;
            }
            match ctx.const_bytes(2).and_then(|b| b.get(..esize)) {
                Some(b) => {
                    let mut bytes = [0u8; 8];
                    bytes[..esize].copy_from_slice(b);
                    Fill::Bytes(bytes)
                }
                None => Fill::Input(2),
            }
        }
    };

    let st = strides(&input.shape);
    let axes: Vec<AxisMap> = input
        .shape
        .iter()
        .zip(&pads)
        .zip(&st)
        .map(|((&d, &(before, after)), &s)| {
            let mut a = AxisMap::new();
            a.push_fill(before)
                .push_copy(d, 0, s as isize)
                .push_fill(after);
            a
        })
        .collect();
    let plan =
        GatherPlan::new_within(&axes, ctx.env.max_memory_bytes).map_err(|e| plan_err(ctx, e))?;
    kernel_or_fold(ctx, Box::new(GatherCopy::new(ctx, plan, esize, fill)))
}

pub(crate) fn prepare_mirror_pad(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let OpOptions::MirrorPad { symmetric } = &ctx.op.options else {
        return Err(ctx.invalid("missing MirrorPadOptions"));
    };
    ctx.expect_arity(2, 2, 1)?;
    let input = ctx.input(0)?;
    let output = ctx.output(0)?;
    same_dtype(ctx, output, input, "output")?;
    let esize = elem_size(ctx, input)?;
    if matches!(input.dtype, DType::I8 | DType::U8 | DType::I16) {
        same_params(ctx, input, output, "output")?;
    }
    if input.dtype == DType::I16 && params_of(input).1 != 0 {
        return Err(ctx.invalid("int16 MIRROR_PAD needs zero point 0"));
    }
    if !matches!(ctx.input(1)?.dtype, DType::I32 | DType::I64) {
        return Err(ctx.unsupported_dtypes());
    }
    let pads = paddings(ctx, input.shape.len())?;
    let out_shape = output_shape(ctx, &input.shape, &pads)?;
    ctx.set_output_shape(0, &out_shape)?;
    // REFLECT skips the edge element (offset 1), SYMMETRIC repeats it (offset 0).
    let offset = usize::from(!*symmetric);
    let st = strides(&input.shape);
    let mut axes = Vec::with_capacity(pads.len());
    for ((&d, &(before, after)), &s) in input.shape.iter().zip(&pads).zip(&st) {
        let limit = d.saturating_sub(offset);
        if before > limit || after > limit {
            return Err(ctx.invalid(format!(
                "paddings ({before}, {after}) exceed {limit} for a dimension of size {d} in {} mode",
                if *symmetric { "SYMMETRIC" } else { "REFLECT" }
            )));
        }
        let s = s as isize;
        let mut a = AxisMap::new();
        // Left: positions 0..before read (before − 1 + offset) down to offset.
        if before > 0 {
            a.push_copy(before, (before - 1 + offset) * s as usize, -s);
        }
        a.push_copy(d, 0, s);
        // Right: positions read (d − 1 − offset) downwards.
        if after > 0 {
            a.push_copy(after, (d - 1 - offset) * s as usize, -s);
        }
        axes.push(a);
    }
    let plan =
        GatherPlan::new_within(&axes, ctx.env.max_memory_bytes).map_err(|e| plan_err(ctx, e))?;
    kernel_or_fold(
        ctx,
        Box::new(GatherCopy::new(ctx, plan, esize, Fill::Bytes([0; 8]))),
    )
}
