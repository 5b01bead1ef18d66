//! RESHAPE, SQUEEZE and EXPAND_DIMS: the output is the input's bytes under a new shape, so the
//! planner aliases the two and nothing runs.

use super::{PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;
use crate::options::OpOptions;

/// Checks what every view needs: same dtype and element count on both sides.
pub(super) fn prepare_view(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 2, 1)?;
    let input = ctx.input(0)?;
    let output = ctx.output(0)?;
    if input.dtype != output.dtype {
        return Err(ctx.invalid(format!(
            "input dtype {} differs from output dtype {}",
            input.dtype, output.dtype
        )));
    }
    let out_shape = ctx.output_shape(0)?;
    if input.numel != out_shape.iter().product::<usize>() {
        return Err(ctx.invalid(format!(
            "input shape {:?} and output shape {out_shape:?} hold different element counts",
            input.shape
        )));
    }
    if input.bytes.is_none() {
        return Err(ctx.unsupported(format!("views of {} tensors", input.dtype)));
    }
    Ok(Prepared::View)
}

/// SQUEEZE: drops the listed size-1 dimensions (negative counts from the end), or every
/// size-1 dimension when none are listed.
pub(super) fn prepare_squeeze(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 1, 1)?;
    let shape = &ctx.input(0)?.shape;
    let dims = match &ctx.op.options {
        OpOptions::Squeeze { squeeze_dims } => squeeze_dims.clone(),
        _ => Vec::new(),
    };
    let rank = shape.len() as i64;
    let mut drop = vec![dims.is_empty(); shape.len()];
    for &d in &dims {
        let a = if d < 0 { d as i64 + rank } else { d as i64 };
        if a < 0 || a >= rank || shape[a as usize] != 1 {
            return Err(ctx.invalid(format!("cannot squeeze dimension {d} of shape {shape:?}")));
        }
        drop[a as usize] = true;
    }
    let out: Vec<usize> = shape
        .iter()
        .zip(&drop)
        .filter(|(&n, &d)| !(d && n == 1))
        .map(|(&n, _)| n)
        .collect();
    ctx.set_output_shape(0, &out)?;
    prepare_view(ctx)
}

/// EXPAND_DIMS: inserts a size-1 dimension at the constant `axis` (negative counts from the
/// end of the output).
pub(super) fn prepare_expand_dims(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let shape = ctx.input(0)?.shape.clone();
    let axis = match ctx.input(1)?.dtype {
        DType::I32 => ctx
            .const_vec::<i32>(1)?
            .map(|v| v.first().map(|&a| a as i64)),
        DType::I64 => ctx.const_vec::<i64>(1)?.map(|v| v.first().copied()),
        _ => return Err(ctx.unsupported_dtypes()),
    };
    let axis = axis
        .flatten()
        .ok_or_else(|| ctx.unsupported("a non-constant axis"))?;
    let rank = shape.len() as i64 + 1;
    let a = if axis < 0 { axis + rank } else { axis };
    if a < 0 || a >= rank {
        return Err(ctx.invalid(format!("axis {axis} out of range for output rank {rank}")));
    }
    let mut out = shape;
    out.insert(a as usize, 1);
    ctx.set_output_shape(0, &out)?;
    prepare_view(ctx)
}

/// RESHAPE: the target shape comes from a 1-D int32 second input when there is one, else from
/// the options (where `[0]` in old files means a scalar). One −1 is inferred.
pub(super) fn prepare_reshape(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 2, 1)?;
    let from_input = match ctx.input_opt(1) {
        Some(t) if t.shape.len() == 1 && t.dtype == DType::I32 => ctx.const_vec::<i32>(1)?,
        _ => None,
    };
    let target = from_input.or_else(|| match &ctx.op.options {
        OpOptions::Reshape { new_shape: Some(s) } if s.as_slice() != [0] => Some(s.clone()),
        OpOptions::Reshape { new_shape: Some(_) } => Some(Vec::new()),
        _ => None,
    });
    if let Some(target) = target {
        let shape = infer_shape(&target, ctx.input(0)?.numel)
            .ok_or_else(|| ctx.invalid(format!("cannot reshape to {target:?}")))?;
        ctx.set_output_shape(0, &shape)?;
    }
    prepare_view(ctx)
}

/// Resolves a target shape with at most one −1 for `numel` elements.
fn infer_shape(target: &[i32], numel: usize) -> Option<Vec<usize>> {
    let mut known: usize = 1;
    let mut unknown = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if unknown.is_none() => unknown = Some(i),
            d if d >= 0 => known = known.checked_mul(d as usize)?,
            _ => return None,
        }
    }
    let mut shape: Vec<usize> = target.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = unknown {
        if known == 0 || numel % known != 0 {
            return None;
        }
        shape[i] = numel / known;
    } else if known != numel {
        return None;
    }
    Some(shape)
}

#[cfg(test)]
mod tests {
    use super::infer_shape;

    #[test]
    fn infers_one_dimension() {
        assert_eq!(infer_shape(&[2, -1], 6), Some(vec![2, 3]));
        assert_eq!(infer_shape(&[-1], 6), Some(vec![6]));
        assert_eq!(infer_shape(&[4, -1], 6), None);
        assert_eq!(infer_shape(&[-1, -1], 6), None);
        assert_eq!(infer_shape(&[2, 3], 7), None);
        assert_eq!(infer_shape(&[], 1), Some(vec![]));
        assert_eq!(infer_shape(&[0, -1], 0), None);
    }
}
