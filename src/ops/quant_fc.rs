//! Quantized (int8, uint8) and hybrid (float activations, int8 weights) FULLY_CONNECTED.

use ferrolite_kernels::quant::conv16::{self, Bias16, Fc16Quant};
use ferrolite_kernels::quant::fc_packed::PackedFcI8;
use ferrolite_kernels::quant::fully_connected::{self as qfc, FcQuant, FcShape};
use ferrolite_kernels::quant::hybrid::{self, HybridFcParams};

use super::fully_connected::Shape;
use super::{cast_mut, fused, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;
use crate::options::FullyConnected;

pub(super) fn prepare(ctx: &PrepareCtx<'_>, s: &Shape, o: &FullyConnected) -> Result<Prepared> {
    let (input, weights, output) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    let shape = FcShape {
        batches: s.rows,
        depth: s.depth,
        units: s.units,
    };
    let act = fused(o.activation);
    let wq = weights
        .quantization
        .as_ref()
        .ok_or_else(|| ctx.invalid("quantized weights have no quantization parameters"))?;
    if !wq.is_per_tensor() && wq.axis != 0 {
        return Err(ctx.unsupported(format!("weights quantized along dimension {}", wq.axis)));
    }
    let bias_t = ctx.input_opt(2);
    let int_bias = || -> Result<Option<Vec<i32>>> {
        match bias_t {
            None => Ok(None),
            Some(b) if b.dtype == DType::I32 && b.numel == s.units => ctx
                .const_vec::<i32>(2)?
                .map(Some)
                .ok_or_else(|| ctx.unsupported("a non-constant bias")),
            Some(b) => Err(ctx.invalid(format!(
                "bias of {} {} values for {} units",
                b.numel, b.dtype, s.units
            ))),
        }
    };
    let const_w = || ctx.unsupported("non-constant weights");
    match (input.dtype, weights.dtype, output.dtype) {
        (DType::I8, DType::I8, DType::I8) => {
            let q = FcQuant::new_i8(
                ctx.per_tensor(input, "input")?,
                &wq.scale,
                &wq.zero_point,
                ctx.per_tensor(output, "output")?,
                act,
                s.units,
            )
            .map_err(|e| ctx.quant_err(e))?;
            let w = ctx.const_vec::<i8>(1)?.ok_or_else(const_w)?;
            let bias = int_bias()?;
            let packed = PackedFcI8::new(q, shape, &w, bias.as_deref(), ctx.isa)
                .map_err(|e| ctx.quant_err(e))?;
            Ok(Prepared::Kernel(Box::new(QFcI8 { packed })))
        }
        (DType::I16, DType::I8, DType::I16) => {
            let q = Fc16Quant::new(
                ctx.per_tensor(input, "input")?,
                &wq.scale,
                &wq.zero_point,
                ctx.per_tensor(output, "output")?,
                act,
                s.units,
            )
            .map_err(|e| ctx.quant_err(e))?;
            Ok(Prepared::Kernel(Box::new(QFc16 {
                shape,
                q,
                w: ctx.const_vec::<i8>(1)?.ok_or_else(const_w)?,
                bias: super::quant_conv::bias16(ctx, s.units, Some(o.quantized_bias_type))?,
            })))
        }
        (DType::U8, DType::U8, DType::U8) => {
            let bias_scale = bias_t
                .and_then(|b| b.quantization.as_ref())
                .and_then(|q| q.single())
                .map(|(s, _)| s);
            let q = FcQuant::new_u8(
                ctx.per_tensor(input, "input")?,
                ctx.per_tensor(weights, "weights")?,
                bias_scale,
                ctx.per_tensor(output, "output")?,
                act,
            )
            .map_err(|e| ctx.quant_err(e))?;
            let w = ctx.const_vec::<u8>(1)?.ok_or_else(const_w)?;
            Ok(Prepared::Kernel(Box::new(QFc {
                shape,
                q,
                w,
                bias: int_bias()?,
            })))
        }
        (DType::F32, DType::I8, DType::F32) => {
            let p = HybridFcParams::new(&wq.scale, s.units, o.asymmetric_quantize_inputs, act)
                .map_err(|e| ctx.quant_err(e))?;
            let w = ctx.const_vec::<i8>(1)?.ok_or_else(const_w)?;
            let sums = hybrid::hybrid_fc_row_sums(&w, shape);
            let bias = match bias_t {
                None => None,
                Some(b) if b.dtype == DType::F32 && b.numel == s.units => Some(
                    ctx.const_vec::<f32>(2)?
                        .ok_or_else(|| ctx.unsupported("a non-constant bias"))?,
                ),
                Some(_) => return Err(ctx.invalid("hybrid bias must be float32, one per unit")),
            };
            let scratch = hybrid::hybrid_fc_scratch_len(shape);
            Ok(Prepared::Kernel(Box::new(HybridFc {
                isa: ctx.isa,
                shape,
                p,
                w,
                sums,
                bias,
                scratch,
            })))
        }
        _ => Err(ctx.unsupported_dtypes()),
    }
}

/// int16x8 FULLY_CONNECTED (scalar).
struct QFc16 {
    shape: FcShape,
    q: Fc16Quant,
    w: Vec<i8>,
    bias: Bias16,
}

impl Kernel for QFc16 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        conv16::fully_connected_i16(
            self.shape,
            &self.q,
            e.inputs.get::<i16>(0)?,
            &self.w,
            &self.bias,
            cast_mut::<i16>(e.output)?,
        )
        .map_err(kernel_err)
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }

    fn persistent_bytes(&self) -> usize {
        self.w.len() + self.bias.byte_size()
    }
}

/// int8 FULLY_CONNECTED, weights packed for the interpreter's kernel tier.
struct QFcI8 {
    packed: PackedFcI8,
}

impl Kernel for QFcI8 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<i8>(0)?;
        let out = cast_mut::<i8>(e.output)?;
        let n = self.packed.scratch_len();
        let scratch = cast_mut::<i32>(&mut e.scratch[..n * 4])?;
        self.packed
            .run(x, out, scratch, e.threads)
            .map_err(kernel_err)
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }

    fn persistent_bytes(&self) -> usize {
        self.packed.byte_size()
    }

    fn scratch_bytes(&self) -> usize {
        self.packed.scratch_len() * 4
    }
}

struct QFc {
    shape: FcShape,
    q: FcQuant,
    w: Vec<u8>,
    bias: Option<Vec<i32>>,
}

impl Kernel for QFc {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        qfc::fully_connected_u8(
            &self.q,
            self.shape,
            e.inputs.get::<u8>(0)?,
            &self.w,
            self.bias.as_deref(),
            e.output,
        )
        .map_err(kernel_err)
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }

    fn persistent_bytes(&self) -> usize {
        self.w.len() + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }
}

struct HybridFc {
    isa: ferrolite_kernels::isa::Isa,
    shape: FcShape,
    p: HybridFcParams,
    w: Vec<i8>,
    sums: Vec<i32>,
    bias: Option<Vec<f32>>,
    scratch: usize,
}

impl Kernel for HybridFc {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<f32>(0)?;
        let out = cast_mut::<f32>(e.output)?;
        let scratch = cast_mut::<i8>(&mut e.scratch[..self.scratch])?;
        hybrid::hybrid_fully_connected_in(
            self.isa,
            &self.p,
            self.shape,
            x,
            &self.w,
            &self.sums,
            self.bias.as_deref(),
            scratch,
            out,
        )
        .map_err(kernel_err)
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }

    fn persistent_bytes(&self) -> usize {
        self.w.len() + self.sums.len() * 4 + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }

    fn scratch_bytes(&self) -> usize {
        self.scratch
    }
}
