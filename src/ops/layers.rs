//! Layer operators: TRANSPOSE_CONV, BATCH_MATMUL, LOG_SOFTMAX, L2_NORMALIZATION, RANGE and
//! DENSIFY.
//!
//! Constant operands (weights, biases) are copied at preparation so that their alignment in
//! the file does not matter; non-constant ones are read at each run. Ops whose inputs are all
//! constant (RANGE, DENSIFY) are folded.

use bytemuck::Pod;
use ferrolite_kernels::layers::batch_matmul::{
    self as bmm, HybridMatMul, MatMulQuant, MatMulShape,
};
use ferrolite_kernels::layers::densify::{densify_positions, Level, SparseFormat};
use ferrolite_kernels::layers::l2_norm;
use ferrolite_kernels::layers::log_softmax::{self as lsm, LogSoftmaxQuant};
use ferrolite_kernels::layers::range;
use ferrolite_kernels::layers::transpose_conv::{
    self as tconv, TransposeConvGeometry, TransposeConvQuant,
};

use super::registry::{s, OpSupport};
use super::{cast_mut, fused, kernel_err, Eval, Inputs, Kernel, PrepareCtx, Prepared};
use crate::aligned::AlignedBuf;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::DimMetadata;
use crate::options::{OpOptions, Padding};
use crate::schema::BuiltinOperator as B;

pub(super) const SUPPORT: &[OpSupport] = &[
    s(
        B::TRANSPOSE_CONV,
        &["float32", "int8", "int16", "hybrid"],
        "constant output_shape; int8 per-channel or per-tensor weights; int16 with int64 or int32 bias",
    ),
    s(
        B::BATCH_MATMUL,
        &["float32", "int8", "int16", "hybrid"],
        "adj_x, adj_y, batch broadcasting, rank 2 to 5; hybrid needs a constant rhs",
    ),
    s(
        B::LOG_SOFTMAX,
        &["float32", "int8"],
        "int8 output scale 16/256, zero point 127",
    ),
    s(
        B::L2_NORMALIZATION,
        &["float32", "int8"],
        "last axis; int8 output scale 1/128, zero point 0",
    ),
    s(
        B::RANGE,
        &["float32", "int32", "int64"],
        "operands constant at preparation (folded)",
    ),
    s(
        B::DENSIFY,
        &["float32", "int8"],
        "constant sparse input (folded); also float16; sparse weights read directly by an op (native sparse FULLY_CONNECTED) are densified the same way",
    ),
];

/// Prepares `code` if this family implements it.
pub(super) fn prepare(ctx: &PrepareCtx<'_>, code: B) -> Option<Result<Prepared>> {
    Some(match code {
        B::TRANSPOSE_CONV => prepare_transpose_conv(ctx),
        B::BATCH_MATMUL => prepare_batch_matmul(ctx),
        B::LOG_SOFTMAX => prepare_log_softmax(ctx),
        B::L2_NORMALIZATION => prepare_l2_norm(ctx),
        B::RANGE => prepare_range(ctx),
        B::DENSIFY => prepare_densify(ctx),
        _ => return None,
    })
}

// ---------------------------------------------------------------- operands

/// An operand that is a constant copied at preparation, or input `k` read at each run.
enum Operand<T> {
    Owned(Vec<T>),
    Input(usize),
}

impl<T: Pod> Operand<T> {
    fn new(ctx: &PrepareCtx<'_>, k: usize) -> Result<Self> {
        Ok(match ctx.const_vec::<T>(k)? {
            Some(v) => Operand::Owned(v),
            None => Operand::Input(k),
        })
    }

    fn get<'r, 's: 'r, 'e: 'r>(&'s self, inputs: &Inputs<'e>) -> Result<&'r [T]> {
        match self {
            Operand::Owned(v) => Ok(v),
            Operand::Input(k) => inputs.get::<T>(*k),
        }
    }

    fn is_input(&self, k: usize) -> bool {
        matches!(self, Operand::Input(i) if *i == k)
    }

    fn owned_bytes(&self) -> usize {
        match self {
            Operand::Owned(v) => std::mem::size_of_val(v.as_slice()),
            Operand::Input(_) => 0,
        }
    }
}

// ---------------------------------------------------------------- TRANSPOSE_CONV

/// Leading padding of one axis as TFLite computes it for TRANSPOSE_CONV: the padding of the
/// forward convolution from the *output* size (`ComputePaddingHeightWidth` with in = output),
/// in C integer arithmetic (division truncating toward zero).
fn transpose_pad(padding: Padding, out: usize, filter: usize, stride: usize) -> Option<usize> {
    let (h, k, s) = (out as i128, filter as i128, stride as i128);
    if s == 0 {
        return None;
    }
    let n = match padding {
        Padding::Same => (h + s - 1) / s,
        Padding::Valid => (h + s - k) / s,
    };
    let total = ((n - 1) * s + k - h).max(0);
    usize::try_from(total / 2).ok()
}

enum TcKind {
    F32 {
        weights: Operand<f32>,
        bias: Option<Operand<f32>>,
        clamp: (f32, f32),
    },
    I8 {
        q: TransposeConvQuant,
        weights: Operand<i8>,
        bias: Option<Operand<i32>>,
    },
    I16 {
        q: TransposeConvQuant,
        weights: Operand<i8>,
        bias: Option<Operand<i64>>,
    },
    /// int16 with an int32 bias (`quantized_bias_type` INT32).
    I16Acc32 {
        q: TransposeConvQuant,
        weights: Operand<i8>,
        bias: Option<Operand<i32>>,
    },
    /// Float activations, int8 weights (dynamic-range models).
    Hybrid {
        weights: Operand<i8>,
        scales: Vec<f32>,
        bias: Option<Operand<f32>>,
        clamp: (f32, f32),
    },
}

struct TransposeConv {
    g: TransposeConvGeometry,
    kind: TcKind,
}

fn prepare_transpose_conv(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(3, 4, 1)?;
    let OpOptions::TransposeConv(o) = &ctx.op.options else {
        return Err(ctx.invalid("TRANSPOSE_CONV needs TransposeConvOptions"));
    };
    let (shape_t, filter, input, output) =
        (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?, ctx.output(0)?);
    if shape_t.dtype != DType::I32 || shape_t.shape.len() != 1 || shape_t.numel != 4 {
        return Err(ctx.invalid("output_shape must be a 1-D int32 tensor of 4 values"));
    }
    let out_shape = ctx.const_vec::<i32>(0)?.ok_or_else(|| {
        ctx.unsupported("TRANSPOSE_CONV with a non-constant output_shape (dynamic output size)")
    })?;
    let out_shape: Vec<usize> = out_shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| ctx.invalid(format!("negative output_shape {out_shape:?}")))?;
    if input.shape.len() != 4 || filter.shape.len() != 4 {
        return Err(ctx.invalid(format!(
            "input {:?} and filter {:?} must be 4-D",
            input.shape, filter.shape
        )));
    }
    let (oc, fh, fw, ic) = (
        filter.shape[0],
        filter.shape[1],
        filter.shape[2],
        filter.shape[3],
    );
    if input.shape[3] != ic {
        return Err(ctx.invalid(format!(
            "input has {} channels, filter expects {ic}",
            input.shape[3]
        )));
    }
    if out_shape[0] != input.shape[0] || out_shape[3] != oc {
        return Err(ctx.invalid(format!(
            "output_shape {out_shape:?} does not match batch {} and {oc} filters",
            input.shape[0]
        )));
    }
    let (Some(sh), Some(sw)) = (
        super::geometry::positive(o.stride_h),
        super::geometry::positive(o.stride_w),
    ) else {
        return Err(ctx.invalid(format!(
            "strides ({}, {}) must be at least 1",
            o.stride_h, o.stride_w
        )));
    };
    let bad = || ctx.invalid("window geometry overflows");
    let g = TransposeConvGeometry {
        batches: input.shape[0],
        in_h: input.shape[1],
        in_w: input.shape[2],
        in_c: ic,
        out_h: out_shape[1],
        out_w: out_shape[2],
        out_c: oc,
        filter_h: fh,
        filter_w: fw,
        stride_h: sh,
        stride_w: sw,
        pad_top: transpose_pad(o.padding, out_shape[1], fh, sh).ok_or_else(bad)?,
        pad_left: transpose_pad(o.padding, out_shape[2], fw, sw).ok_or_else(bad)?,
    };
    g.validate().map_err(|e| ctx.quant_err(e))?;
    ctx.set_output_shape(0, &out_shape)?;
    let bias_t = ctx.input_opt(3);
    if let Some(b) = bias_t {
        if b.numel != oc {
            return Err(ctx.invalid(format!("bias has {} values for {oc} filters", b.numel)));
        }
    }
    let act = fused(o.activation);
    let kind = match (
        input.dtype,
        filter.dtype,
        output.dtype,
        bias_t.map(|b| b.dtype),
    ) {
        (DType::F32, DType::F32, DType::F32, None | Some(DType::F32)) => TcKind::F32 {
            weights: Operand::new(ctx, 1)?,
            bias: bias_t.map(|_| Operand::new(ctx, 3)).transpose()?,
            clamp: o.activation.float_range(),
        },
        (DType::I8, DType::I8, DType::I8, None | Some(DType::I32))
        | (DType::I16, DType::I8, DType::I16, None | Some(DType::I32 | DType::I64)) => {
            let fq = filter
                .quantization
                .as_ref()
                .ok_or_else(|| ctx.invalid("quantized filter has no quantization parameters"))?;
            if !fq.is_per_tensor() && fq.axis != 0 {
                return Err(ctx.unsupported(format!(
                    "filter quantized along dimension {} (expected 0)",
                    fq.axis
                )));
            }
            let (inq, outq) = (
                ctx.per_tensor(input, "input")?,
                ctx.per_tensor(output, "output")?,
            );
            let bias_zp = bias_t.and_then(|b| b.quantization.as_ref());
            if bias_zp.is_some_and(|q| q.zero_point.iter().any(|&z| z != 0)) {
                return Err(ctx.invalid("bias zero point must be 0"));
            }
            if input.dtype == DType::I8 {
                let q = TransposeConvQuant::new::<i8>(inq, &fq.scale, outq, act, oc)
                    .map_err(|e| ctx.quant_err(e))?;
                TcKind::I8 {
                    q,
                    weights: Operand::new(ctx, 1)?,
                    bias: bias_t.map(|_| Operand::new(ctx, 3)).transpose()?,
                }
            } else {
                if inq.zero_point != 0 || outq.zero_point != 0 {
                    return Err(ctx.invalid("int16 TRANSPOSE_CONV needs zero points 0"));
                }
                let q = TransposeConvQuant::new::<i16>(inq, &fq.scale, outq, act, oc)
                    .map_err(|e| ctx.quant_err(e))?;
                // The reference accumulates in int32 only when the option says so; without
                // it an int32 bias would be read as int64.
                const INT32: i8 = 2;
                const INT64: i8 = 4;
                let acc32 = match (o.quantized_bias_type, bias_t.map(|b| b.dtype)) {
                    (INT32, None | Some(DType::I32)) => true,
                    (0 | INT64, None | Some(DType::I64)) => false,
                    (t, b) => {
                        return Err(ctx.unsupported(format!(
                            "int16 TRANSPOSE_CONV with quantized_bias_type {t} and bias {b:?}"
                        )))
                    }
                };
                if acc32 {
                    TcKind::I16Acc32 {
                        q,
                        weights: Operand::new(ctx, 1)?,
                        bias: bias_t.map(|_| Operand::new(ctx, 3)).transpose()?,
                    }
                } else {
                    TcKind::I16 {
                        q,
                        weights: Operand::new(ctx, 1)?,
                        bias: bias_t.map(|_| Operand::new(ctx, 3)).transpose()?,
                    }
                }
            }
        }
        (DType::F32, DType::I8, DType::F32, None | Some(DType::F32)) => {
            let fq = filter
                .quantization
                .as_ref()
                .ok_or_else(|| ctx.invalid("int8 filter has no quantization parameters"))?;
            if fq.scale.len() != 1 && (fq.scale.len() != oc || fq.axis != 0) {
                return Err(ctx.unsupported(format!(
                    "hybrid filter with {} scales along dimension {} (expected 1, or {oc} along 0)",
                    fq.scale.len(),
                    fq.axis
                )));
            }
            if fq.zero_point.iter().any(|&z| z != 0) {
                return Err(ctx.invalid("hybrid filter zero points must be 0"));
            }
            TcKind::Hybrid {
                weights: Operand::new(ctx, 1)?,
                scales: fq.scale.clone(),
                bias: bias_t.map(|_| Operand::new(ctx, 3)).transpose()?,
                clamp: o.activation.float_range(),
            }
        }
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Prepared::Kernel(Box::new(TransposeConv { g, kind })))
}

impl Kernel for TransposeConv {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let g = &self.g;
        match &self.kind {
            TcKind::F32 {
                weights,
                bias,
                clamp,
            } => {
                let bias = bias.as_ref().map(|b| b.get(&e.inputs)).transpose()?;
                let packed = scratch::<f32>(e.scratch, g.filter_len())?;
                tconv::pack_filter(g, weights.get(&e.inputs)?, packed).map_err(kernel_err)?;
                tconv::transpose_conv_f32(
                    g,
                    e.inputs.get::<f32>(2)?,
                    packed,
                    bias,
                    *clamp,
                    cast_mut(e.output)?,
                    e.threads,
                )
            }
            TcKind::I8 { q, weights, bias } => {
                let bias = bias.as_ref().map(|b| b.get(&e.inputs)).transpose()?;
                let packed = scratch::<i8>(e.scratch, g.filter_len())?;
                tconv::pack_filter(g, weights.get(&e.inputs)?, packed).map_err(kernel_err)?;
                tconv::transpose_conv_i8(
                    g,
                    q,
                    e.inputs.get::<i8>(2)?,
                    packed,
                    bias,
                    cast_mut(e.output)?,
                    e.threads,
                )
            }
            TcKind::I16 { q, weights, bias } => {
                let bias = bias.as_ref().map(|b| b.get(&e.inputs)).transpose()?;
                tconv::transpose_conv_i16(
                    g,
                    q,
                    e.inputs.get::<i16>(2)?,
                    weights.get(&e.inputs)?,
                    bias,
                    cast_mut(e.output)?,
                    e.threads,
                )
            }
            TcKind::I16Acc32 { q, weights, bias } => {
                let bias = bias.as_ref().map(|b| b.get(&e.inputs)).transpose()?;
                tconv::transpose_conv_i16_acc32(
                    g,
                    q,
                    e.inputs.get::<i16>(2)?,
                    weights.get(&e.inputs)?,
                    bias,
                    cast_mut(e.output)?,
                    e.threads,
                )
            }
            TcKind::Hybrid {
                weights,
                scales,
                bias,
                clamp,
            } => {
                let bias = bias.as_ref().map(|b| b.get(&e.inputs)).transpose()?;
                let quantized: &mut [i8] = cast_mut(&mut e.scratch[..g.input_len()])?;
                tconv::transpose_conv_hybrid(
                    g,
                    e.inputs.get::<f32>(2)?,
                    weights.get(&e.inputs)?,
                    scales,
                    bias,
                    *clamp,
                    quantized,
                    cast_mut(e.output)?,
                    e.threads,
                )
            }
        }
        .map_err(kernel_err)
    }

    fn reads_input(&self, k: usize) -> bool {
        match &self.kind {
            TcKind::F32 { weights, bias, .. } => {
                k == 2 || weights.is_input(k) || bias.as_ref().is_some_and(|b| b.is_input(k))
            }
            TcKind::I8 { weights, bias, .. } => {
                k == 2 || weights.is_input(k) || bias.as_ref().is_some_and(|b| b.is_input(k))
            }
            TcKind::I16 { weights, bias, .. } => {
                k == 2 || weights.is_input(k) || bias.as_ref().is_some_and(|b| b.is_input(k))
            }
            TcKind::I16Acc32 { weights, bias, .. } => {
                k == 2 || weights.is_input(k) || bias.as_ref().is_some_and(|b| b.is_input(k))
            }
            TcKind::Hybrid { weights, bias, .. } => {
                k == 2 || weights.is_input(k) || bias.as_ref().is_some_and(|b| b.is_input(k))
            }
        }
    }

    fn scratch_bytes(&self) -> usize {
        match &self.kind {
            // The int8 copy of the input.
            TcKind::Hybrid { .. } => self.g.input_len(),
            // The filter rearranged for the kernel (`pack_filter`).
            TcKind::F32 { .. } => self.g.filter_len().saturating_mul(4),
            TcKind::I8 { .. } => self.g.filter_len(),
            _ => 0,
        }
    }

    fn persistent_bytes(&self) -> usize {
        match &self.kind {
            TcKind::F32 { weights, bias, .. } => {
                weights.owned_bytes() + bias.as_ref().map_or(0, |b| b.owned_bytes())
            }
            TcKind::I8 { weights, bias, .. } => {
                weights.owned_bytes() + bias.as_ref().map_or(0, |b| b.owned_bytes())
            }
            TcKind::I16 { weights, bias, .. } => {
                weights.owned_bytes() + bias.as_ref().map_or(0, |b| b.owned_bytes())
            }
            TcKind::I16Acc32 { weights, bias, .. } => {
                weights.owned_bytes() + bias.as_ref().map_or(0, |b| b.owned_bytes())
            }
            TcKind::Hybrid {
                weights,
                bias,
                scales,
                ..
            } => {
                weights.owned_bytes()
                    + bias.as_ref().map_or(0, |b| b.owned_bytes())
                    + scales.len() * 4
            }
        }
    }
}

// ---------------------------------------------------------------- BATCH_MATMUL

enum MatMulKind {
    F32(Operand<f32>, Operand<f32>),
    I8(MatMulQuant, Operand<i8>, Operand<i8>),
    I16(MatMulQuant, Operand<i16>, Operand<i16>),
    Hybrid(HybridMatMul, Operand<f32>, Vec<i8>),
}

struct BatchMatMul {
    shape: MatMulShape,
    kind: MatMulKind,
}

fn prepare_batch_matmul(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let (adj_x, adj_y) = match &ctx.op.options {
        OpOptions::BatchMatMul { adj_x, adj_y, .. } => (*adj_x, *adj_y),
        // Without options the reference's parameters stay zeroed.
        OpOptions::None => (false, false),
        _ => return Err(ctx.invalid("options do not belong to BATCH_MATMUL")),
    };
    let (lhs, rhs, out) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    let shape = MatMulShape::new(&lhs.shape, &rhs.shape, adj_x, adj_y).ok_or_else(|| {
        ctx.invalid(format!(
            "cannot multiply {:?} by {:?} (adj_x {adj_x}, adj_y {adj_y}): ranks must be 2 to 5, \
             batch dimensions equal or 1, inner dimensions equal",
            lhs.shape, rhs.shape
        ))
    })?;
    let rank = lhs.shape.len().max(rhs.shape.len());
    ctx.set_output_shape(0, &shape.output_shape(rank))?;
    let quant = || -> Result<MatMulQuant> {
        MatMulQuant::new(
            ctx.per_tensor(lhs, "lhs")?,
            ctx.per_tensor(rhs, "rhs")?,
            ctx.per_tensor(out, "output")?,
        )
        .map_err(|e| ctx.quant_err(e))
    };
    let kind = match (lhs.dtype, rhs.dtype, out.dtype) {
        (DType::F32, DType::F32, DType::F32) => {
            MatMulKind::F32(Operand::new(ctx, 0)?, Operand::new(ctx, 1)?)
        }
        (DType::I8, DType::I8, DType::I8) => {
            MatMulKind::I8(quant()?, Operand::new(ctx, 0)?, Operand::new(ctx, 1)?)
        }
        (DType::I16, DType::I16, DType::I16) => {
            let q = quant()?;
            if q.lhs_offset != 0 || q.rhs_offset != 0 || q.output_offset != 0 {
                return Err(ctx.invalid("int16 BATCH_MATMUL needs zero points 0"));
            }
            MatMulKind::I16(q, Operand::new(ctx, 0)?, Operand::new(ctx, 1)?)
        }
        (DType::F32, DType::I8, DType::F32) => {
            let rhs_data = ctx
                .const_vec::<i8>(1)?
                .ok_or_else(|| ctx.unsupported("hybrid BATCH_MATMUL with a non-constant rhs"))?;
            let q = rhs
                .quantization
                .as_ref()
                .ok_or_else(|| ctx.invalid("int8 rhs has no quantization parameters"))?;
            // Per-channel scales must run along the output columns.
            let col_axis = rhs.shape.len() - if adj_y { 2 } else { 1 };
            if !q.is_per_tensor() && (q.axis != col_axis || q.scale.len() != shape.n) {
                return Err(ctx.unsupported(format!(
                    "hybrid BATCH_MATMUL with rhs quantized along dimension {}",
                    q.axis
                )));
            }
            let asymmetric = matches!(
                ctx.op.options,
                OpOptions::BatchMatMul {
                    asymmetric_quantize_inputs: true,
                    ..
                }
            );
            let h = HybridMatMul::new(&shape, &rhs_data, asymmetric, q.scale.clone());
            MatMulKind::Hybrid(h, Operand::new(ctx, 0)?, rhs_data)
        }
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Prepared::Kernel(Box::new(BatchMatMul { shape, kind })))
}

/// The first `count` values of type `T` of the scratch memory.
fn scratch<T: Pod>(bytes: &mut [u8], count: usize) -> Result<&mut [T]> {
    let len = count.saturating_mul(std::mem::size_of::<T>());
    let bytes = bytes
        .get_mut(..len)
        .ok_or_else(|| crate::Error::Internal(format!("scratch holds fewer than {len} bytes")))?;
    cast_mut(bytes)
}

impl Kernel for BatchMatMul {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let s = &self.shape;
        match &self.kind {
            MatMulKind::F32(l, r) => bmm::batch_matmul_f32(
                s,
                l.get(&e.inputs)?,
                r.get(&e.inputs)?,
                cast_mut(e.output)?,
                scratch(e.scratch, bmm::batch_matmul_f32_scratch(s))?,
                e.threads,
            ),
            MatMulKind::I8(q, l, r) => bmm::batch_matmul_i8(
                s,
                q,
                l.get(&e.inputs)?,
                r.get(&e.inputs)?,
                cast_mut(e.output)?,
                scratch(e.scratch, bmm::batch_matmul_i8_scratch(s))?,
                e.threads,
            ),
            MatMulKind::I16(q, l, r) => bmm::batch_matmul_i16(
                s,
                q,
                l.get(&e.inputs)?,
                r.get(&e.inputs)?,
                cast_mut(e.output)?,
                e.threads,
            ),
            MatMulKind::Hybrid(h, l, r) => {
                let (row, q) = e.scratch.split_at_mut(s.k * 4);
                bmm::batch_matmul_hybrid(
                    s,
                    h,
                    l.get(&e.inputs)?,
                    r,
                    cast_mut(row)?,
                    cast_mut(&mut q[..s.k])?,
                    cast_mut(e.output)?,
                )
            }
        }
        .map_err(kernel_err)
    }

    fn reads_input(&self, k: usize) -> bool {
        match &self.kind {
            MatMulKind::F32(l, r) => l.is_input(k) || r.is_input(k),
            MatMulKind::I8(_, l, r) => l.is_input(k) || r.is_input(k),
            MatMulKind::I16(_, l, r) => l.is_input(k) || r.is_input(k),
            MatMulKind::Hybrid(_, l, _) => l.is_input(k),
        }
    }

    fn scratch_bytes(&self) -> usize {
        match &self.kind {
            // One lhs row as f32, then as int8.
            MatMulKind::Hybrid(..) => self.shape.k * 5,
            MatMulKind::F32(..) => bmm::batch_matmul_f32_scratch(&self.shape).saturating_mul(4),
            MatMulKind::I8(..) => bmm::batch_matmul_i8_scratch(&self.shape).saturating_mul(2),
            MatMulKind::I16(..) => 0,
        }
    }

    fn persistent_bytes(&self) -> usize {
        match &self.kind {
            MatMulKind::F32(l, r) => l.owned_bytes() + r.owned_bytes(),
            MatMulKind::I8(_, l, r) => l.owned_bytes() + r.owned_bytes(),
            MatMulKind::I16(_, l, r) => l.owned_bytes() + r.owned_bytes(),
            MatMulKind::Hybrid(h, l, r) => l.owned_bytes() + r.len() + h.row_sums.len() * 4,
        }
    }
}

// ---------------------------------------------------------------- LOG_SOFTMAX, L2_NORMALIZATION

/// A row-wise op over the last dimension.
enum RowOp {
    LogSoftmaxF32,
    LogSoftmaxI8(LogSoftmaxQuant),
    L2NormF32,
    L2NormI8 { input_zero_point: i32 },
}

struct Rows {
    op: RowOp,
    depth: usize,
}

/// Shared checks: one input, one output of the same dtype and shape, rank at least 1.
fn prepare_rows(ctx: &PrepareCtx<'_>, what: &str) -> Result<(DType, usize)> {
    ctx.expect_arity(1, 1, 1)?;
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    if input.dtype != output.dtype {
        return Err(ctx.unsupported_dtypes());
    }
    let depth = *input
        .shape
        .last()
        .ok_or_else(|| ctx.invalid(format!("{what} of a scalar")))?;
    ctx.set_output_shape(0, &input.shape)?;
    Ok((input.dtype, depth))
}

fn prepare_log_softmax(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let (dtype, depth) = prepare_rows(ctx, "LOG_SOFTMAX")?;
    let op = match dtype {
        DType::F32 => RowOp::LogSoftmaxF32,
        DType::I8 => {
            let inq = ctx.per_tensor(ctx.input(0)?, "input")?;
            let outq = ctx.per_tensor(ctx.output(0)?, "output")?;
            LogSoftmaxQuant::check_int8_output(outq).map_err(|e| ctx.quant_err(e))?;
            RowOp::LogSoftmaxI8(LogSoftmaxQuant::new(inq.scale).map_err(|e| ctx.quant_err(e))?)
        }
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Prepared::Kernel(Box::new(Rows { op, depth })))
}

fn prepare_l2_norm(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    match &ctx.op.options {
        OpOptions::None => {}
        OpOptions::L2Norm { activation } if *activation == crate::options::Activation::None => {}
        // TFLite's Prepare refuses fused activations here.
        OpOptions::L2Norm { activation } => {
            return Err(ctx.invalid(format!(
                "L2_NORMALIZATION with fused activation {activation:?}"
            )))
        }
        _ => return Err(ctx.invalid("options do not belong to L2_NORMALIZATION")),
    }
    let (dtype, depth) = prepare_rows(ctx, "L2_NORMALIZATION")?;
    let op = match dtype {
        DType::F32 => RowOp::L2NormF32,
        DType::I8 => {
            let inq = ctx.per_tensor(ctx.input(0)?, "input")?;
            let outq = ctx.per_tensor(ctx.output(0)?, "output")?;
            l2_norm::check_int8_output(outq).map_err(|e| ctx.quant_err(e))?;
            RowOp::L2NormI8 {
                input_zero_point: inq.zero_point_i32().map_err(|e| ctx.quant_err(e))?,
            }
        }
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Prepared::Kernel(Box::new(Rows { op, depth })))
}

impl Kernel for Rows {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let d = self.depth;
        match &self.op {
            RowOp::LogSoftmaxF32 => {
                lsm::log_softmax_f32(e.inputs.get(0)?, d, cast_mut(e.output)?);
                Ok(())
            }
            RowOp::LogSoftmaxI8(q) => {
                lsm::log_softmax_i8(q, e.inputs.get(0)?, d, cast_mut(e.output)?).map_err(kernel_err)
            }
            RowOp::L2NormF32 => {
                l2_norm::l2_norm_f32(e.inputs.get(0)?, d, cast_mut(e.output)?);
                Ok(())
            }
            RowOp::L2NormI8 { input_zero_point } => {
                l2_norm::l2_norm_i8(*input_zero_point, e.inputs.get(0)?, d, cast_mut(e.output)?)
                    .map_err(kernel_err)
            }
        }
    }
}

// ---------------------------------------------------------------- RANGE

/// The single value of scalar constant input `k`, if it is constant.
fn const_scalar<T: Pod>(ctx: &PrepareCtx<'_>, k: usize) -> Result<Option<T>> {
    Ok(ctx.const_vec::<T>(k)?.and_then(|v| v.first().copied()))
}

/// RANGE is folded: its output size depends on its operands' values, so they must be
/// constant at preparation (from the file, or folded shape arithmetic).
fn prepare_range(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(3, 3, 1)?;
    let dtype = ctx.input(0)?.dtype;
    for k in 0..3 {
        let t = ctx.input(k)?;
        if !t.shape.is_empty() {
            return Err(ctx.invalid(format!("RANGE operand {k} must be a scalar")));
        }
        if t.dtype != dtype {
            return Err(ctx.unsupported_dtypes());
        }
    }
    if ctx.output(0)?.dtype != dtype {
        return Err(ctx.unsupported_dtypes());
    }
    let non_const = || {
        ctx.unsupported("RANGE of non-constant operands (its output size depends on their values)")
    };
    let too_big = |e: range::RangeError| ctx.invalid(format!("RANGE: {e}"));
    let max = ctx.max_elements;
    macro_rules! int_range {
        ($t:ty) => {{
            let (Some(a), Some(b), Some(d)) = (
                const_scalar::<$t>(ctx, 0)?,
                const_scalar::<$t>(ctx, 1)?,
                const_scalar::<$t>(ctx, 2)?,
            ) else {
                return Err(non_const());
            };
            let n = range::len_int(a.into(), b.into(), d.into(), max).map_err(too_big)?;
            ctx.set_output_shape(0, &[n])?;
            let mut buf = AlignedBuf::zeroed(n * std::mem::size_of::<$t>())?;
            range::fill(a, d, <$t>::wrapping_add, cast_mut(buf.as_mut_slice())?);
            buf
        }};
    }
    let buf = match dtype {
        DType::I32 => int_range!(i32),
        DType::I64 => int_range!(i64),
        DType::F32 => {
            let (Some(a), Some(b), Some(d)) = (
                const_scalar::<f32>(ctx, 0)?,
                const_scalar::<f32>(ctx, 1)?,
                const_scalar::<f32>(ctx, 2)?,
            ) else {
                return Err(non_const());
            };
            let n = range::len_f32(a, b, d, max).map_err(too_big)?;
            ctx.set_output_shape(0, &[n])?;
            let mut buf = AlignedBuf::zeroed(n * 4)?;
            range::fill(a, d, |x, y| x + y, cast_mut(buf.as_mut_slice())?);
            buf
        }
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Prepared::Fold(buf))
}

// ---------------------------------------------------------------- DENSIFY

/// DENSIFY of a constant sparse tensor, folded: each stored value is copied to the position
/// the sparse layout gives it, every other element is zero.
fn prepare_densify(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 1, 1)?;
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    if input.dtype != output.dtype {
        return Err(ctx.unsupported_dtypes());
    }
    let values = ctx
        .const_bytes(0)
        .ok_or_else(|| ctx.unsupported("DENSIFY of a non-constant tensor"))?;
    ctx.set_output_shape(0, &input.shape)?;
    let out = densify_tensor(input, values).map_err(|e| ctx.unsupported(e))?;
    Ok(Prepared::Fold(out))
}

/// The dense form of a sparse constant `t` whose stored values are `values`. Also used for
/// sparse weights read directly by an op (TFLite's FULLY_CONNECTED reads block-sparse
/// weights natively): they are densified once at preparation.
pub(crate) fn densify_tensor(
    t: &crate::graph::Tensor,
    values: &[u8],
) -> std::result::Result<AlignedBuf, String> {
    if !matches!(t.dtype, DType::F32 | DType::F16 | DType::I8) {
        return Err(format!("sparse {} tensors are not supported", t.dtype));
    }
    let sp = t
        .sparsity
        .as_ref()
        .ok_or_else(|| "the tensor has no sparsity parameters".to_string())?;
    let size = t.dtype.size().ok_or("sparse tensor of unsized type")?;
    let levels: Vec<Level<'_>> = sp
        .dim_metadata
        .iter()
        .map(|m| match m {
            DimMetadata::Dense(n) => Level::Dense(*n),
            DimMetadata::SparseCsr { segments, indices } => Level::Sparse { segments, indices },
        })
        .collect();
    let format = SparseFormat {
        traversal_order: &sp.traversal_order,
        block_map: &sp.block_map,
        levels: &levels,
    };
    let bytes = t.numel.checked_mul(size).ok_or("sparse tensor too large")?;
    // Zero bytes are 0 in every supported type.
    let mut out = AlignedBuf::zeroed(bytes).map_err(|e| e.to_string())?;
    let dst = out.as_mut_slice();
    densify_positions(&t.shape, &format, values.len() / size, |k, flat| {
        dst[flat * size..(flat + 1) * size].copy_from_slice(&values[k * size..(k + 1) * size]);
    })
    .map_err(|e| format!("DENSIFY: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_conv_padding_follows_the_forward_conv_of_the_output() {
        // SAME, 8 outputs, 3 taps, stride 2: the forward conv has 4 outputs and 1 pixel of
        // total padding, which goes after: 0 before.
        assert_eq!(transpose_pad(Padding::Same, 8, 3, 2), Some(0));
        // 7 outputs: 4 forward outputs, total padding 2, 1 before.
        assert_eq!(transpose_pad(Padding::Same, 7, 3, 2), Some(1));
        assert_eq!(transpose_pad(Padding::Same, 5, 4, 1), Some(1));
        assert_eq!(transpose_pad(Padding::Valid, 9, 3, 2), Some(0));
        // A window larger than the output: C's truncating division gives a negative count,
        // and the padding clamps at 0.
        assert_eq!(transpose_pad(Padding::Valid, 2, 5, 1), Some(0));
        assert_eq!(transpose_pad(Padding::Same, 2, 5, 0), None);
    }
}
