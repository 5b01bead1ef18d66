//! Quantized SOFTMAX (int8, uint8 or int16 input and output).

use ferrolite_kernels::quant::softmax::{self, SoftmaxQuant};
use ferrolite_kernels::quant::softmax16::{self, Softmax16};
use ferrolite_kernels::quant::QuantElem;

use super::{cast_mut, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;

pub(super) fn prepare(ctx: &PrepareCtx<'_>, depth: usize, beta: f32) -> Result<Prepared> {
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    let qi = ctx.per_tensor(input, "input")?;
    let qo = ctx.per_tensor(output, "output")?;
    match (input.dtype, output.dtype) {
        (DType::I8, DType::I8) => {
            SoftmaxQuant::check_int8_output(qo).map_err(|e| ctx.quant_err(e))?
        }
        (DType::U8, DType::U8) => {
            // The reference requires the fixed uint8 output encoding: scale 1/256, zero point 0.
            let want = 1.0f32 / 256.0;
            if qo.zero_point != 0 || (qo.scale - want).abs() > 0.001 * want {
                return Err(
                    ctx.invalid("uint8 softmax output must have scale 1/256 and zero point 0")
                );
            }
        }
        (DType::I16, DType::I16) => {
            let q = Softmax16::new(beta, qi, qo).map_err(|e| ctx.quant_err(e))?;
            return Ok(Prepared::Kernel(Box::new(QSoftmax16 { q, depth })));
        }
        _ => return Err(ctx.unsupported_dtypes()),
    }
    let q = SoftmaxQuant::new(beta, qi.scale).map_err(|e| ctx.quant_err(e))?;
    Ok(Prepared::Kernel(Box::new(QSoftmax {
        q,
        depth,
        signed: input.dtype == DType::I8,
    })))
}

struct QSoftmax {
    q: SoftmaxQuant,
    depth: usize,
    signed: bool,
}

impl QSoftmax {
    fn run<T: QuantElem + bytemuck::Pod>(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<T>(0)?;
        softmax::softmax::<T, T>(&self.q, self.depth, x, cast_mut::<T>(e.output)?)
            .map_err(kernel_err)
    }
}

impl Kernel for QSoftmax {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        if self.signed {
            self.run::<i8>(e)
        } else {
            self.run::<u8>(e)
        }
    }
}

/// int16 SOFTMAX (interpolated exp and reciprocal tables).
struct QSoftmax16 {
    q: Softmax16,
    depth: usize,
}

impl Kernel for QSoftmax16 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<i16>(0)?;
        softmax16::softmax_i16(&self.q, self.depth, x, cast_mut::<i16>(e.output)?)
            .map_err(kernel_err)
    }

    fn persistent_bytes(&self) -> usize {
        self.q.byte_size()
    }
}
