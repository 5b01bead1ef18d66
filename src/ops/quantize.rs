//! QUANTIZE and DEQUANTIZE.
//!
//! A DEQUANTIZE of a constant (fp16, int8 or packed int4 weights) is folded at preparation: its
//! float output is computed once into persistent memory and the node never runs.

use ferrolite_kernels::quant::quantize::{self as quant, Requant};
use ferrolite_kernels::quant::QuantParams;

use super::{cast, cast_mut, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
use crate::aligned::AlignedBuf;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::Quantization;

/// Dequantizes one value the way the reference does: the product in double, then rounded once
/// to float. The zero point comes from the file unchecked: the difference saturates instead of
/// overflowing (exact for every zero point that fits in 62 bits).
fn dequantize_one(q: i32, scale: f32, zero_point: i64) -> f32 {
    (scale as f64 * (q as i64).saturating_sub(zero_point) as f64) as f32
}

pub(super) fn prepare_dequantize(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 1, 1)?;
    let input = ctx.input(0)?;
    let output = ctx.output(0)?;
    if output.dtype != DType::F32 {
        return Err(ctx.unsupported_dtypes());
    }
    ctx.set_output_shape(0, &input.shape)?;
    let quant = match input.dtype {
        DType::F16 => None,
        DType::I8 | DType::U8 | DType::I16 | DType::I4 => Some(
            input
                .quantization
                .clone()
                .ok_or_else(|| ctx.invalid("quantized input has no quantization parameters"))?,
        ),
        _ => return Err(ctx.unsupported_dtypes()),
    };
    if input.dtype == DType::I4 && ctx.const_bytes(0).is_none() {
        return Err(ctx.unsupported("int4 DEQUANTIZE of a non-constant tensor"));
    }
    if let Some(q) = &quant {
        if !q.is_per_tensor() && ctx.const_bytes(0).is_none() {
            return Err(ctx.unsupported("per-axis DEQUANTIZE of a non-constant tensor"));
        }
    }
    if let Some(bytes) = ctx.const_bytes(0) {
        let mut out = AlignedBuf::zeroed(input.numel * 4)?;
        let dst: &mut [f32] = cast_mut(out.as_mut_slice())?;
        fold(bytes, input.dtype, quant.as_ref(), &input.shape, dst)
            .ok_or_else(|| ctx.invalid("constant buffer too small"))?;
        return Ok(Prepared::Fold(out));
    }
    let (scale, zero_point) = quant.and_then(|q| q.single()).unwrap_or((1.0, 0));
    Ok(Prepared::Kernel(Box::new(Dequantize {
        dtype: input.dtype,
        scale,
        zero_point,
    })))
}

/// Dequantizes constant `bytes` into `dst`; `None` if `bytes` is too short.
fn fold(
    bytes: &[u8],
    dtype: DType,
    quant: Option<&Quantization>,
    shape: &[usize],
    dst: &mut [f32],
) -> Option<()> {
    let n = dst.len();
    // Per-axis parameters: element i belongs to slice (i / inner) % dim of the quantized axis.
    let (inner, dim) = match quant {
        Some(q) if !q.is_per_tensor() => (
            shape.get(q.axis + 1..)?.iter().product::<usize>(),
            shape.get(q.axis).copied()?,
        ),
        _ => (1, 1),
    };
    let param = |i: usize| match quant {
        Some(q) => {
            let c = if q.is_per_tensor() {
                0
            } else {
                (i / inner.max(1)) % dim.max(1)
            };
            (q.scale[c], q.zero_point[c])
        }
        None => (1.0, 0),
    };
    match dtype {
        DType::F16 => {
            let src = bytes.get(..n * 2)?;
            // fp16 weights are converted once, at load; the slice conversion checks for F16C
            // once and converts eight at a time, where per-element `to_f32` checks every time.
            match bytemuck::try_cast_slice::<u8, half::f16>(src) {
                Ok(h) if cfg!(target_endian = "little") => {
                    use half::slice::HalfFloatSliceExt;
                    h.convert_to_f32_slice(dst.get_mut(..n)?);
                }
                _ => {
                    for (d, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
                        *d = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
                    }
                }
            }
        }
        DType::I8 => {
            for (i, (d, &b)) in dst.iter_mut().zip(bytes.get(..n)?).enumerate() {
                let (s, z) = param(i);
                *d = dequantize_one(b as i8 as i32, s, z);
            }
        }
        DType::U8 => {
            for (i, (d, &b)) in dst.iter_mut().zip(bytes.get(..n)?).enumerate() {
                let (s, z) = param(i);
                *d = dequantize_one(b as i32, s, z);
            }
        }
        DType::I4 => {
            // Two values per byte, low nibble first, each sign-extended (TFLite's
            // `UnpackDenseInt4IntoInt8`); an odd count leaves the last high nibble unused.
            let src = bytes.get(..n.div_ceil(2))?;
            for (i, d) in dst.iter_mut().enumerate() {
                let byte = src[i / 2] as i8;
                let q = if i % 2 == 0 {
                    (byte << 4) >> 4
                } else {
                    byte >> 4
                };
                let (s, z) = param(i);
                *d = dequantize_one(i32::from(q), s, z);
            }
        }
        DType::I16 => {
            for (i, (d, c)) in dst
                .iter_mut()
                .zip(bytes.get(..n * 2)?.chunks_exact(2))
                .enumerate()
            {
                let (s, z) = param(i);
                *d = dequantize_one(i16::from_le_bytes([c[0], c[1]]) as i32, s, z);
            }
        }
        _ => return None,
    }
    Some(())
}

struct Dequantize {
    dtype: DType,
    scale: f32,
    zero_point: i64,
}

impl Kernel for Dequantize {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let out: &mut [f32] = cast_mut(e.output)?;
        let (s, z) = (self.scale, self.zero_point);
        match self.dtype {
            DType::I8 => {
                let src: &[i8] = e.inputs.get(0)?;
                out.iter_mut()
                    .zip(src)
                    .for_each(|(d, &q)| *d = dequantize_one(q as i32, s, z));
            }
            DType::U8 => {
                let src: &[u8] = e.inputs.get(0)?;
                out.iter_mut()
                    .zip(src)
                    .for_each(|(d, &q)| *d = dequantize_one(q as i32, s, z));
            }
            DType::I16 => {
                let src: &[i16] = e.inputs.get(0)?;
                out.iter_mut()
                    .zip(src)
                    .for_each(|(d, &q)| *d = dequantize_one(q as i32, s, z));
            }
            _ => {
                let src: &[half::f16] = cast(e.inputs.bytes(0)?)?;
                out.iter_mut().zip(src).for_each(|(d, &q)| *d = q.to_f32());
            }
        }
        Ok(())
    }
}

/// QUANTIZE: float to int8/uint8/int16 with the output's parameters, or a requantization
/// between int8 and uint8, from int16 to int8, or to new parameters of the same type.
pub(super) fn prepare_quantize(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 1, 1)?;
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    ctx.set_output_shape(0, &input.shape)?;
    let qo = ctx.per_tensor(output, "output")?;
    let kind = match (input.dtype, output.dtype) {
        (DType::F32, DType::I8 | DType::U8 | DType::I16) => QuantizeKind::FromFloat(qo),
        // The reference requantizes int16 to int8 or int16, but not int8 to int16.
        (DType::I8 | DType::U8, DType::I8 | DType::U8) | (DType::I16, DType::I8 | DType::I16) => {
            let qi = ctx.per_tensor(input, "input")?;
            if output.dtype == DType::I16 && (qi.zero_point != 0 || qo.zero_point != 0) {
                return Err(ctx.unsupported("int16 to int16 QUANTIZE with non-zero zero points"));
            }
            QuantizeKind::Requant(Requant::new(qi, qo).map_err(|e| ctx.quant_err(e))?)
        }
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Prepared::Kernel(Box::new(Quantize {
        kind,
        from: input.dtype,
        to: output.dtype,
        isa: ctx.isa,
    })))
}

enum QuantizeKind {
    FromFloat(QuantParams),
    Requant(Requant),
}

struct Quantize {
    kind: QuantizeKind,
    from: DType,
    to: DType,
    isa: ferrolite_kernels::isa::Isa,
}

impl Kernel for Quantize {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let r = match (&self.kind, self.from, self.to) {
            (QuantizeKind::FromFloat(q), _, DType::I8) => {
                quant::quantize_f32_in::<i8>(self.isa, *q, e.inputs.get(0)?, cast_mut(e.output)?)
            }
            (QuantizeKind::FromFloat(q), _, DType::U8) => {
                quant::quantize_f32_in::<u8>(self.isa, *q, e.inputs.get(0)?, e.output)
            }
            (QuantizeKind::FromFloat(q), _, _) => {
                quant::quantize_f32_in::<i16>(self.isa, *q, e.inputs.get(0)?, cast_mut(e.output)?)
            }
            (QuantizeKind::Requant(q), DType::I16, DType::I16) => {
                quant::requantize::<i16, i16>(q, e.inputs.get(0)?, cast_mut(e.output)?)
            }
            (QuantizeKind::Requant(q), DType::I16, _) => {
                quant::requantize::<i16, i8>(q, e.inputs.get(0)?, cast_mut(e.output)?)
            }
            (QuantizeKind::Requant(q), DType::I8, DType::I8) => {
                quant::requantize::<i8, i8>(q, e.inputs.get(0)?, cast_mut(e.output)?)
            }
            (QuantizeKind::Requant(q), DType::I8, _) => {
                quant::requantize::<i8, u8>(q, e.inputs.get(0)?, e.output)
            }
            (QuantizeKind::Requant(q), _, DType::I8) => {
                quant::requantize::<u8, i8>(q, e.inputs.get(0)?, cast_mut(e.output)?)
            }
            (QuantizeKind::Requant(q), _, _) => {
                quant::requantize::<u8, u8>(q, e.inputs.get(0)?, e.output)
            }
        };
        r.map_err(kernel_err)
    }
}
