//! SHAPE: the input's dimensions as an int32 or int64 vector. Shapes are known at
//! preparation, so the node is always folded into a constant.

use super::super::{PrepareCtx, Prepared};
use crate::aligned::AlignedBuf;
use crate::dtype::DType;
use crate::error::Result;
use crate::options::OpOptions;

pub(crate) fn prepare_shape(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 1, 1)?;
    let input = ctx.input(0)?;
    let output = ctx.output(0)?;
    // The option names the output type; the tensor's own dtype decides the bytes we write,
    // and the two must agree (old files may omit the options: int32).
    let wanted = match &ctx.op.options {
        OpOptions::Shape { out_type } => DType::from_schema(*out_type),
        _ => Some(DType::I32),
    };
    if wanted != Some(output.dtype) || !matches!(output.dtype, DType::I32 | DType::I64) {
        return Err(ctx.unsupported_dtypes());
    }
    let dims = &input.shape;
    ctx.set_output_shape(0, &[dims.len()])?;
    let mut bytes = Vec::with_capacity(dims.len() * 8);
    for &d in dims {
        if output.dtype == DType::I32 {
            let v = i32::try_from(d)
                .map_err(|_| ctx.invalid(format!("dimension {d} exceeds int32")))?;
            bytes.extend_from_slice(&v.to_le_bytes());
        } else {
            bytes.extend_from_slice(&(d as i64).to_le_bytes());
        }
    }
    Ok(Prepared::Fold(AlignedBuf::copy_of(&bytes)?))
}
