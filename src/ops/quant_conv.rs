//! Quantized (int8, uint8) and hybrid (float activations, int8 weights) CONV_2D and
//! DEPTHWISE_CONV_2D.

use ferrolite_kernels::quant::conv::{self as qconv, ConvQuant};
use ferrolite_kernels::quant::conv16::{self, Bias16, Conv16Quant};
use ferrolite_kernels::quant::conv_packed::PackedConvI8;
use ferrolite_kernels::quant::depthwise;
use ferrolite_kernels::quant::depthwise_packed::PackedDepthwiseI8;
use ferrolite_kernels::quant::hybrid::HybridConvParams;
use ferrolite_kernels::quant::hybrid_depthwise::{self, HybridDepthwiseParams};
use ferrolite_kernels::quant::hybrid_packed::PackedHybridConv;
use ferrolite_kernels::quant::ConvGeometry;

use super::conv::Geometry;
use super::{cast_mut, fused, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::Tensor;
use crate::options::{Conv2D, DepthwiseConv2D};

fn kernel_geometry(g: &Geometry) -> ConvGeometry {
    ConvGeometry {
        batches: g.batch,
        in_h: g.in_h,
        in_w: g.in_w,
        in_c: g.in_c,
        out_h: g.out_h,
        out_w: g.out_w,
        out_c: g.out_c,
        filter_h: g.kernel_h,
        filter_w: g.kernel_w,
        stride_h: g.stride_h,
        stride_w: g.stride_w,
        dilation_h: g.dilation_h,
        dilation_w: g.dilation_w,
        pad_top: g.pad_top,
        pad_left: g.pad_left,
    }
}

/// Filter scales (per channel along `axis`, or one) and zero points of a constant filter.
fn filter_quant<'t>(
    ctx: &PrepareCtx<'_>,
    filter: &'t Tensor,
    axis: usize,
) -> Result<(&'t [f32], &'t [i64])> {
    let q = filter
        .quantization
        .as_ref()
        .ok_or_else(|| ctx.invalid("quantized filter has no quantization parameters"))?;
    if !q.is_per_tensor() && q.axis != axis {
        return Err(ctx.unsupported(format!(
            "filter quantized along dimension {} (expected {axis})",
            q.axis
        )));
    }
    Ok((&q.scale, &q.zero_point))
}

/// A constant int32 bias of `n` values, or none; and its scale, when it has one.
fn int_bias(ctx: &PrepareCtx<'_>, n: usize) -> Result<(Option<Vec<i32>>, Option<f32>)> {
    let Some(t) = ctx.input_opt(2) else {
        return Ok((None, None));
    };
    if t.dtype != DType::I32 {
        return Err(ctx.unsupported_dtypes());
    }
    if t.numel != n {
        return Err(ctx.invalid(format!(
            "bias has {} values for {n} output channels",
            t.numel
        )));
    }
    let bias = ctx
        .const_vec::<i32>(2)?
        .ok_or_else(|| ctx.unsupported("a non-constant bias"))?;
    let scale = t
        .quantization
        .as_ref()
        .and_then(|q| q.single())
        .map(|(s, _)| s);
    Ok((Some(bias), scale))
}

/// The constant bias of an int16x8 layer and the accumulator it implies. CONV_2D and
/// FULLY_CONNECTED pass their `quantized_bias_type` option (`Some`): INT32 selects the
/// reference's 32-bit accumulator (and an int32 bias), unset or INT64 the 64-bit one (and an
/// int64 bias). DEPTHWISE_CONV_2D (`None`) always accumulates in 64 bits. An int32 bias
/// without the INT32 option is refused: the reference would read it as int64.
pub(super) fn bias16(ctx: &PrepareCtx<'_>, n: usize, bias_type: Option<i8>) -> Result<Bias16> {
    const INT32: i8 = 2;
    const INT64: i8 = 4;
    let acc32 = match bias_type {
        None | Some(0 | INT64) => false,
        Some(INT32) => true,
        Some(t) => {
            return Err(ctx.invalid(format!(
                "quantized_bias_type {t} (only INT32 or INT64 are allowed)"
            )))
        }
    };
    let Some(t) = ctx.input_opt(2) else {
        // A zero int32 bias adds nothing but keeps the 32-bit accumulator.
        return Ok(if acc32 {
            Bias16::I32(vec![0; n])
        } else {
            Bias16::None
        });
    };
    if t.numel != n {
        return Err(ctx.invalid(format!(
            "bias has {} values for {n} output channels",
            t.numel
        )));
    }
    let missing = || ctx.unsupported("a non-constant bias");
    match (t.dtype, acc32) {
        (DType::I64, false) => Ok(Bias16::I64(ctx.const_vec::<i64>(2)?.ok_or_else(missing)?)),
        (DType::I32, true) => Ok(Bias16::I32(ctx.const_vec::<i32>(2)?.ok_or_else(missing)?)),
        (d, _) => Err(ctx.unsupported(format!(
            "{d} bias on an int16 layer whose quantized_bias_type asks for {}",
            if acc32 { "int32" } else { "int64" }
        ))),
    }
}

fn conv16_quant(
    ctx: &PrepareCtx<'_>,
    filter: &Tensor,
    axis: usize,
    act: ferrolite_kernels::quant::FusedActivation,
    out_c: usize,
) -> Result<Conv16Quant> {
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    let (scales, zps) = filter_quant(ctx, filter, axis)?;
    qconv::check_filter_zero_points(zps).map_err(|e| ctx.quant_err(e))?;
    Conv16Quant::new(
        ctx.per_tensor(input, "input")?,
        scales,
        ctx.per_tensor(output, "output")?,
        act,
        out_c,
    )
    .map_err(|e| ctx.quant_err(e))
}

/// int16x8 CONV_2D or DEPTHWISE_CONV_2D (scalar).
struct QConv16 {
    g: ConvGeometry,
    q: Conv16Quant,
    weights: Vec<i8>,
    bias: Bias16,
    depthwise: bool,
}

impl Kernel for QConv16 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<i16>(0)?;
        let out = cast_mut::<i16>(e.output)?;
        let run = if self.depthwise {
            conv16::depthwise_i16
        } else {
            conv16::conv2d_i16
        };
        run(
            &self.g,
            &self.q,
            x,
            &self.weights,
            &self.bias,
            out,
            e.threads,
        )
        .map_err(kernel_err)
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }

    fn persistent_bytes(&self) -> usize {
        self.weights.len() + self.bias.byte_size()
    }
}

fn float_bias(ctx: &PrepareCtx<'_>, n: usize) -> Result<Option<Vec<f32>>> {
    let Some(t) = ctx.input_opt(2) else {
        return Ok(None);
    };
    if t.dtype != DType::F32 || t.numel != n {
        return Err(ctx.invalid(format!("hybrid bias must be {n} float32 values")));
    }
    ctx.const_vec::<f32>(2)?
        .map(Some)
        .ok_or_else(|| ctx.unsupported("a non-constant bias"))
}

fn const_weights<T: bytemuck::Pod>(ctx: &PrepareCtx<'_>) -> Result<Vec<T>> {
    ctx.const_vec::<T>(1)?
        .ok_or_else(|| ctx.unsupported("a non-constant filter"))
}

pub(super) fn prepare_conv(ctx: &PrepareCtx<'_>, g: &Geometry, o: &Conv2D) -> Result<Prepared> {
    let (input, filter, output) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    let kg = kernel_geometry(g);
    kg.validate().map_err(|e| ctx.quant_err(e))?;
    let act = fused(o.activation);
    match (input.dtype, filter.dtype, output.dtype) {
        (DType::I8, DType::I8, DType::I8) => {
            let (scales, zps) = filter_quant(ctx, filter, 0)?;
            qconv::check_filter_zero_points(zps).map_err(|e| ctx.quant_err(e))?;
            let q = ConvQuant::new_i8(
                ctx.per_tensor(input, "input")?,
                scales,
                ctx.per_tensor(output, "output")?,
                act,
                g.out_c,
            )
            .map_err(|e| ctx.quant_err(e))?;
            let weights = const_weights::<i8>(ctx)?;
            let (bias, _) = int_bias(ctx, g.out_c)?;
            let packed = PackedConvI8::new(&kg, q, &weights, bias.as_deref(), ctx.isa, ctx.threads)
                .map_err(|e| ctx.quant_err(e))?;
            Ok(Prepared::Kernel(Box::new(QConvI8 { packed })))
        }
        (DType::U8, DType::U8, DType::U8) => {
            let (bias, bias_scale) = int_bias(ctx, g.out_c)?;
            let q = ConvQuant::new_u8(
                ctx.per_tensor(input, "input")?,
                ctx.per_tensor(filter, "filter")?,
                bias_scale,
                ctx.per_tensor(output, "output")?,
                act,
                g.out_c,
            )
            .map_err(|e| ctx.quant_err(e))?;
            Ok(Prepared::Kernel(Box::new(QConv {
                g: kg,
                q,
                weights: const_weights(ctx)?,
                bias,
            })))
        }
        (DType::I16, DType::I8, DType::I16) => {
            let q = conv16_quant(ctx, filter, 0, act, g.out_c)?;
            Ok(Prepared::Kernel(Box::new(QConv16 {
                g: kg,
                q,
                weights: const_weights(ctx)?,
                bias: bias16(ctx, g.out_c, Some(o.quantized_bias_type))?,
                depthwise: false,
            })))
        }
        (DType::F32, DType::I8, DType::F32) => {
            let (scales, zps) = filter_quant(ctx, filter, 0)?;
            qconv::check_filter_zero_points(zps).map_err(|e| ctx.quant_err(e))?;
            let p = HybridConvParams::new(scales, g.out_c, 1, act).map_err(|e| ctx.quant_err(e))?;
            let weights = const_weights::<i8>(ctx)?;
            let bias = float_bias(ctx, g.out_c)?;
            let packed = PackedHybridConv::new(p, &kg, &weights, bias.as_deref(), ctx.isa)
                .map_err(|e| ctx.quant_err(e))?;
            Ok(Prepared::Kernel(Box::new(HybridConv { packed })))
        }
        _ => Err(ctx.unsupported_dtypes()),
    }
}

/// int8 CONV_2D, weights packed for the interpreter's kernel tier.
struct QConvI8 {
    packed: PackedConvI8,
}

impl Kernel for QConvI8 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<i8>(0)?;
        let out = cast_mut::<i8>(e.output)?;
        let n = self.packed.scratch_len();
        let scratch = cast_mut::<i16>(&mut e.scratch[..n * 2])?;
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
        self.packed.scratch_len() * 2
    }
}

/// Legacy uint8 CONV_2D (scalar).
struct QConv {
    g: ConvGeometry,
    q: ConvQuant,
    weights: Vec<u8>,
    bias: Option<Vec<i32>>,
}

impl Kernel for QConv {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<u8>(0)?;
        qconv::conv2d_u8(
            &self.g,
            1,
            &self.q,
            x,
            &self.weights,
            self.bias.as_deref(),
            e.output,
        )
        .map_err(kernel_err)
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }

    fn persistent_bytes(&self) -> usize {
        self.weights.len() + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }
}

/// Hybrid CONV_2D, weights packed for the interpreter's kernel tier.
struct HybridConv {
    packed: PackedHybridConv,
}

impl HybridConv {
    /// Scratch layout: the widened int16 input first (even offset), then the quantized
    /// int8 image.
    fn scratch_split(&self) -> (usize, usize) {
        let (q, w) = self.packed.scratch_len();
        (w * 2, q)
    }
}

impl Kernel for HybridConv {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<f32>(0)?;
        let out = cast_mut::<f32>(e.output)?;
        let (nw, nq) = self.scratch_split();
        let (w, rest) = e.scratch.split_at_mut(nw);
        let w = cast_mut::<i16>(w)?;
        let q = cast_mut::<i8>(&mut rest[..nq])?;
        self.packed.run(x, out, q, w, e.threads).map_err(kernel_err)
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }

    fn persistent_bytes(&self) -> usize {
        self.packed.byte_size()
    }

    fn scratch_bytes(&self) -> usize {
        let (nw, nq) = self.scratch_split();
        nw + nq
    }
}

pub(super) fn prepare_depthwise(
    ctx: &PrepareCtx<'_>,
    g: &Geometry,
    _depth_multiplier: usize,
    o: &DepthwiseConv2D,
) -> Result<Prepared> {
    let (input, filter, output) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    let kg = kernel_geometry(g);
    kg.validate().map_err(|e| ctx.quant_err(e))?;
    let act = fused(o.activation);
    let (q, weights) = match (input.dtype, filter.dtype, output.dtype) {
        (DType::I8, DType::I8, DType::I8) => {
            let (scales, zps) = filter_quant(ctx, filter, 3)?;
            qconv::check_filter_zero_points(zps).map_err(|e| ctx.quant_err(e))?;
            let q = ConvQuant::new_i8(
                ctx.per_tensor(input, "input")?,
                scales,
                ctx.per_tensor(output, "output")?,
                act,
                g.out_c,
            )
            .map_err(|e| ctx.quant_err(e))?;
            let (bias, _) = int_bias(ctx, g.out_c)?;
            let packed =
                PackedDepthwiseI8::new(&kg, q, &const_weights(ctx)?, bias.as_deref(), ctx.isa)
                    .map_err(|e| ctx.quant_err(e))?;
            return Ok(Prepared::Kernel(Box::new(QDepthwiseI8 { packed })));
        }
        (DType::U8, DType::U8, DType::U8) => {
            let (_, bias_scale) = int_bias(ctx, g.out_c)?;
            let q = ConvQuant::new_u8(
                ctx.per_tensor(input, "input")?,
                ctx.per_tensor(filter, "filter")?,
                bias_scale,
                ctx.per_tensor(output, "output")?,
                act,
                g.out_c,
            )
            .map_err(|e| ctx.quant_err(e))?;
            (q, const_weights(ctx)?)
        }
        (DType::I16, DType::I8, DType::I16) => {
            let q = conv16_quant(ctx, filter, 3, act, g.out_c)?;
            return Ok(Prepared::Kernel(Box::new(QConv16 {
                g: kg,
                q,
                weights: const_weights(ctx)?,
                bias: bias16(ctx, g.out_c, None)?,
                depthwise: true,
            })));
        }
        (DType::F32, DType::I8, DType::F32) => {
            return prepare_hybrid_depthwise(ctx, kg, o);
        }
        _ => return Err(ctx.unsupported_dtypes()),
    };
    let (bias, _) = int_bias(ctx, g.out_c)?;
    Ok(Prepared::Kernel(Box::new(QDepthwise {
        g: kg,
        q,
        weights,
        bias,
    })))
}

/// int8 DEPTHWISE_CONV_2D, weights packed for the interpreter's kernel tier.
struct QDepthwiseI8 {
    packed: PackedDepthwiseI8,
}

impl Kernel for QDepthwiseI8 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<i8>(0)?;
        let out = cast_mut::<i8>(e.output)?;
        let n = self.packed.scratch_len();
        let scratch = cast_mut::<i16>(&mut e.scratch[..n * 2])?;
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
        self.packed.scratch_len() * 2
    }
}

/// Legacy uint8 DEPTHWISE_CONV_2D (scalar).
struct QDepthwise {
    g: ConvGeometry,
    q: ConvQuant,
    weights: Vec<u8>,
    bias: Option<Vec<i32>>,
}

impl Kernel for QDepthwise {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        depthwise::depthwise_conv2d(
            &self.g,
            &self.q,
            e.inputs.get::<u8>(0)?,
            &self.weights,
            self.bias.as_deref(),
            e.output,
        )
        .map_err(kernel_err)
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }

    fn persistent_bytes(&self) -> usize {
        self.weights.len() + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }
}

/// Hybrid DEPTHWISE_CONV_2D. TFLite's kernel reads one filter scale per output channel,
/// so a single scale for several channels (which its Prepare lets through) has no defined
/// result there and is refused; filter zero points are ignored, as in TFLite. The
/// multiplier comes from the shapes (the reference interpreter gives the same result
/// when the `depth_multiplier` option is 0 or wrong).
fn prepare_hybrid_depthwise(
    ctx: &PrepareCtx<'_>,
    kg: ConvGeometry,
    o: &DepthwiseConv2D,
) -> Result<Prepared> {
    let filter = ctx.input(1)?;
    let (scales, _) = filter_quant(ctx, filter, 3)?;
    if scales.len() != kg.out_c {
        // One scale for several channels: TFLite reads past its scale array.
        return Err(ctx.unsupported(format!(
            "hybrid DEPTHWISE_CONV_2D with {} filter scale(s) for {} output channels",
            scales.len(),
            kg.out_c
        )));
    }
    let p = HybridDepthwiseParams::new(scales, kg.out_c, fused(o.activation))
        .map_err(|e| ctx.quant_err(e))?;
    let scratch = hybrid_depthwise::hybrid_depthwise_scratch_len(&kg);
    Ok(Prepared::Kernel(Box::new(HybridDepthwise {
        isa: ctx.isa,
        g: kg,
        p,
        weights: const_weights(ctx)?,
        bias: float_bias(ctx, kg.out_c)?,
        scratch,
    })))
}

struct HybridDepthwise {
    isa: ferrolite_kernels::isa::Isa,
    g: ConvGeometry,
    p: HybridDepthwiseParams,
    weights: Vec<i8>,
    bias: Option<Vec<f32>>,
    /// Scratch bytes (one int8-quantized batch image).
    scratch: usize,
}

impl Kernel for HybridDepthwise {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<f32>(0)?;
        let out = cast_mut::<f32>(e.output)?;
        let scratch = cast_mut::<i8>(&mut e.scratch[..self.scratch])?;
        hybrid_depthwise::hybrid_depthwise_conv2d_in(
            self.isa,
            &self.p,
            &self.g,
            x,
            &self.weights,
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
        self.weights.len() + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }

    fn scratch_bytes(&self) -> usize {
        self.scratch
    }
}
