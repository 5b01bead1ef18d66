//! CONV_2D and DEPTHWISE_CONV_2D.

use std::borrow::Cow;
use std::sync::Arc;

use ferrolite_kernels::activation::{Clamp, Residual};
use ferrolite_kernels::conv::{self, ConvParams, PackedConv, ScratchLen};
use ferrolite_kernels::depthwise::{self, DepthwiseParams, PackedDepthwise};
use ferrolite_kernels::depthwise_block::{self, Pointwise};

use super::geometry::{self, positive};
use super::{cast_mut, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::options::{Activation, OpOptions, Padding};

/// Shapes and geometry common to both convolutions, checked against the tensors.
pub(super) struct Geometry {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

pub(super) struct Window {
    pub padding: Padding,
    pub stride_h: i32,
    pub stride_w: i32,
    pub dilation_h: i32,
    pub dilation_w: i32,
}

/// Reads input `[N,H,W,C]` and filter `[_, KH, KW, _]`, computes the output geometry and
/// checks it against the output tensor, whose channel count is `out_c`.
pub(super) fn geometry(ctx: &PrepareCtx<'_>, w: &Window, out_c: usize) -> Result<Geometry> {
    let input = ctx.input(0)?;
    let filter = ctx.input(1)?;
    if input.shape.len() != 4 {
        return Err(ctx.invalid(format!("input must be 4-D, has shape {:?}", input.shape)));
    }
    if filter.shape.len() != 4 {
        return Err(ctx.invalid(format!("filter must be 4-D, has shape {:?}", filter.shape)));
    }
    let (stride_h, stride_w) = (positive(w.stride_h), positive(w.stride_w));
    let (dilation_h, dilation_w) = (positive(w.dilation_h), positive(w.dilation_w));
    let (Some(stride_h), Some(stride_w), Some(dilation_h), Some(dilation_w)) =
        (stride_h, stride_w, dilation_h, dilation_w)
    else {
        return Err(ctx.invalid(format!(
            "strides ({}, {}) and dilations ({}, {}) must be at least 1",
            w.stride_h, w.stride_w, w.dilation_h, w.dilation_w
        )));
    };
    let (batch, in_h, in_w, in_c) = (
        input.shape[0],
        input.shape[1],
        input.shape[2],
        input.shape[3],
    );
    let (kernel_h, kernel_w) = (filter.shape[1], filter.shape[2]);
    if kernel_h == 0 || kernel_w == 0 {
        return Err(ctx.invalid("filter has a zero-sized window"));
    }
    let bad = || ctx.invalid("window geometry overflows");
    let y = geometry::axis(w.padding, in_h, kernel_h, stride_h, dilation_h).ok_or_else(bad)?;
    let x = geometry::axis(w.padding, in_w, kernel_w, stride_w, dilation_w).ok_or_else(bad)?;
    ctx.set_output_shape(0, &[batch, y.out, x.out, out_c])?;
    Ok(Geometry {
        batch,
        in_h,
        in_w,
        in_c,
        out_h: y.out,
        out_w: x.out,
        out_c,
        kernel_h,
        kernel_w,
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        pad_top: y.pad_before,
        pad_left: x.pad_before,
    })
}

pub(super) fn clamp(a: Activation) -> Clamp {
    let (min, max) = a.float_range();
    Clamp { min, max }
}

/// A constant float bias of `n` values, if the node has one.
fn float_bias(ctx: &PrepareCtx<'_>, k: usize, n: usize) -> Result<Option<Vec<f32>>> {
    let Some(t) = ctx.input_opt(k) else {
        return Ok(None);
    };
    if t.dtype != DType::F32 {
        return Err(ctx.unsupported_dtypes());
    }
    if t.numel != n {
        return Err(ctx.invalid(format!(
            "bias has {} values for {n} output channels",
            t.numel
        )));
    }
    ctx.const_vec::<f32>(k)?
        .map(Some)
        .ok_or_else(|| ctx.unsupported("a non-constant bias"))
}

fn const_filter<'m>(ctx: &PrepareCtx<'m>) -> Result<Cow<'m, [f32]>> {
    const_f32(ctx, 1)?.ok_or_else(|| ctx.unsupported("a non-constant filter"))
}

/// Constant float input `k`, read in place when the bytes are aligned for `f32` (files
/// align buffers to 4 bytes, so in practice always) and copied otherwise. Weights are only
/// read once, to be packed: not copying them first saves a pass over them and the page
/// faults of a throwaway buffer, a good part of the load time.
pub(super) fn const_f32<'m>(ctx: &PrepareCtx<'m>, k: usize) -> Result<Option<Cow<'m, [f32]>>> {
    let Some(bytes) = ctx.const_bytes(k) else {
        return Ok(None);
    };
    let n = ctx.input(k)?.numel;
    let view = n
        .checked_mul(4)
        .and_then(|len| bytes.get(..len))
        .and_then(|b| bytemuck::try_cast_slice::<u8, f32>(b).ok());
    match view {
        Some(v) => Ok(Some(Cow::Borrowed(v))),
        None => Ok(ctx.const_vec::<f32>(k)?.map(Cow::Owned)),
    }
}

pub(super) fn prepare_conv(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 3, 1)?;
    let OpOptions::Conv2D(o) = &ctx.op.options else {
        return Err(ctx.invalid("missing Conv2DOptions"));
    };
    let (input, filter, output) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    let window = Window {
        padding: o.padding,
        stride_h: o.stride_h,
        stride_w: o.stride_w,
        dilation_h: o.dilation_h,
        dilation_w: o.dilation_w,
    };
    let out_c = filter.shape.first().copied().unwrap_or(0);
    let g = geometry(ctx, &window, out_c)?;
    if filter.shape[3] != g.in_c {
        if filter.shape[3] != 0 && g.in_c % filter.shape[3] == 0 {
            return Err(ctx.unsupported("grouped convolution"));
        }
        return Err(ctx.invalid(format!(
            "filter depth {} does not match input depth {}",
            filter.shape[3], g.in_c
        )));
    }
    match (input.dtype, filter.dtype, output.dtype) {
        (DType::F32, DType::F32, DType::F32) => {
            let weights = const_filter(ctx)?;
            let bias = float_bias(ctx, 2, out_c)?;
            let p = ConvParams {
                batch: g.batch,
                in_h: g.in_h,
                in_w: g.in_w,
                in_c: g.in_c,
                out_h: g.out_h,
                out_w: g.out_w,
                out_c: g.out_c,
                kernel_h: g.kernel_h,
                kernel_w: g.kernel_w,
                stride_h: g.stride_h,
                stride_w: g.stride_w,
                dilation_h: g.dilation_h,
                dilation_w: g.dilation_w,
                pad_top: g.pad_top,
                pad_left: g.pad_left,
                clamp: clamp(o.activation),
            };
            let packed = PackedConv::new(&p, &weights, ctx.isa);
            let scratch = packed.scratch_len(ctx.threads);
            Ok(Prepared::Kernel(Box::new(ConvF32 {
                p,
                packed: Arc::new(packed),
                bias: bias.map(Arc::from),
                scratch,
                residual: None,
                source: None,
                threads: ctx.threads,
            })))
        }
        _ => super::quant_conv::prepare_conv(ctx, &g, o),
    }
}

struct ConvF32 {
    p: ConvParams,
    /// Shared with a depthwise node that takes this one over (see [`PointwiseStage`]).
    packed: Arc<PackedConv>,
    bias: Option<Arc<[f32]>>,
    /// Scratch: floats (a padded input) then offsets (tap tables).
    scratch: ScratchLen,
    /// A fused residual ADD: the input holding the other operand, and the ADD's clamp.
    residual: Option<(usize, Clamp)>,
    /// A fused depthwise convolution (and what it fused) computing input 0 of this pointwise
    /// one, and the scratch floats the block needs.
    source: Option<(DepthwiseStage, usize)>,
    threads: usize,
}

/// A float pointwise convolution handed to the depthwise convolution that reads its output
/// (see [`depthwise_block`]).
#[derive(Clone)]
pub(crate) struct PointwiseStage {
    p: ConvParams,
    packed: Arc<PackedConv>,
    bias: Option<Arc<[f32]>>,
}

impl PointwiseStage {
    fn layer(&self) -> Pointwise<'_> {
        Pointwise {
            p: &self.p,
            filter: &self.packed,
            bias: self.bias.as_deref(),
        }
    }
}

/// A float depthwise convolution, with the pointwise one it may have fused, handed to the
/// pointwise convolution that reads its output (see [`depthwise_block`]).
pub(crate) struct DepthwiseStage {
    p: DepthwiseParams,
    packed: Arc<PackedDepthwise>,
    expand: Option<PointwiseStage>,
}

impl ConvF32 {
    /// Bytes of the float part of the scratch, rounded up so the offsets after it are aligned.
    fn float_bytes(&self) -> usize {
        let align = std::mem::align_of::<usize>();
        (self.scratch.floats * std::mem::size_of::<f32>()).div_ceil(align) * align
    }

    fn layer(&self) -> Pointwise<'_> {
        Pointwise {
            p: &self.p,
            filter: &self.packed,
            bias: self.bias.as_deref(),
        }
    }
}

impl Kernel for ConvF32 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let input = e.inputs.get::<f32>(0)?;
        let out = cast_mut::<f32>(e.output)?;
        let residual = match self.residual {
            Some((k, clamp)) => Some(Residual {
                data: e.inputs.get::<f32>(k)?,
                clamp,
            }),
            None => None,
        };
        if residual.as_ref().is_some_and(|r| r.data.len() < out.len()) {
            return Err(Error::Internal("residual shorter than the output".into()));
        }
        if let Some((dw, floats)) = &self.source {
            let scratch = e
                .scratch
                .get_mut(..floats * std::mem::size_of::<f32>())
                .ok_or_else(|| Error::Internal("scratch smaller than planned".into()))?;
            let expand = dw.expand.as_ref().map(PointwiseStage::layer);
            depthwise_block::depthwise_block_f32(
                expand.as_ref(),
                &dw.p,
                &dw.packed,
                Some(&self.layer()),
                residual.as_ref(),
                input,
                out,
                cast_mut::<f32>(scratch)?,
                e.threads,
            );
            return Ok(());
        }
        let fb = self.float_bytes();
        let ob = self.scratch.offsets * std::mem::size_of::<usize>();
        let scratch = e
            .scratch
            .get_mut(..fb + ob)
            .ok_or_else(|| Error::Internal("scratch smaller than planned".into()))?;
        let (fs, os) = scratch.split_at_mut(fb);
        let floats = cast_mut::<f32>(fs)?;
        let offsets = cast_mut::<usize>(os)?;
        conv::conv2d_f32(
            &self.p,
            input,
            &self.packed,
            self.bias.as_deref(),
            out,
            floats,
            offsets,
            e.threads,
            residual.as_ref(),
        );
        Ok(())
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0 || self.residual.is_some_and(|(r, ..)| r == k)
    }

    fn persistent_bytes(&self) -> usize {
        let own = self.packed.byte_size() + self.bias.as_ref().map_or(0, |b| b.len() * 4);
        own + self.source.as_ref().map_or(0, |(dw, _)| dw.byte_size())
    }

    fn fuse_residual_add(&mut self, k: usize, clamp: Clamp) -> bool {
        if self.residual.is_some() {
            return false;
        }
        self.residual = Some((k, clamp));
        true
    }

    fn pointwise_stage(&self) -> Option<PointwiseStage> {
        let plain = self.residual.is_none() && self.source.is_none();
        (plain && self.p.is_pointwise()).then(|| PointwiseStage {
            p: self.p,
            packed: Arc::clone(&self.packed),
            bias: self.bias.clone(),
        })
    }

    fn fuse_depthwise_input(&mut self, stage: DepthwiseStage) -> bool {
        if self.source.is_some()
            || !depthwise_block::can_project(&stage.p, &self.layer())
            || !depthwise_block::worth_projecting(&stage.p)
        {
            return false;
        }
        let expand = stage.expand.as_ref().map(|e| &e.p);
        let floats = depthwise_block::scratch_floats(expand, &stage.p, Some(&self.p), self.threads);
        self.source = Some((stage, floats));
        true
    }

    fn scratch_bytes(&self) -> usize {
        match &self.source {
            Some((_, floats)) => floats * std::mem::size_of::<f32>(),
            None => self.float_bytes() + self.scratch.offsets * std::mem::size_of::<usize>(),
        }
    }
}

impl PointwiseStage {
    fn byte_size(&self) -> usize {
        self.packed.byte_size() + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }
}

impl DepthwiseStage {
    fn byte_size(&self) -> usize {
        self.packed.byte_size() + self.expand.as_ref().map_or(0, PointwiseStage::byte_size)
    }
}

pub(super) fn prepare_depthwise(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 3, 1)?;
    let OpOptions::DepthwiseConv2D(o) = &ctx.op.options else {
        return Err(ctx.invalid("missing DepthwiseConv2DOptions"));
    };
    let (input, filter, output) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    let window = Window {
        padding: o.padding,
        stride_h: o.stride_h,
        stride_w: o.stride_w,
        dilation_h: o.dilation_h,
        dilation_w: o.dilation_w,
    };
    let out_c = filter.shape.get(3).copied().unwrap_or(0);
    let g = geometry(ctx, &window, out_c)?;
    if filter.shape[0] != 1 {
        return Err(ctx.invalid(format!(
            "depthwise filter shape {:?} must start with 1",
            filter.shape
        )));
    }
    // The multiplier comes from the shapes: old converters left the option at 0 or 1.
    if g.in_c == 0 || out_c % g.in_c != 0 {
        return Err(ctx.invalid(format!(
            "output depth {out_c} is not a multiple of input depth {}",
            g.in_c
        )));
    }
    let depth_multiplier = out_c / g.in_c;
    match (input.dtype, filter.dtype, output.dtype) {
        (DType::F32, DType::F32, DType::F32) => {
            let weights = const_filter(ctx)?;
            let bias = float_bias(ctx, 2, out_c)?;
            let p = DepthwiseParams {
                batch: g.batch,
                in_h: g.in_h,
                in_w: g.in_w,
                in_c: g.in_c,
                depth_multiplier,
                out_h: g.out_h,
                out_w: g.out_w,
                kernel_h: g.kernel_h,
                kernel_w: g.kernel_w,
                stride_h: g.stride_h,
                stride_w: g.stride_w,
                dilation_h: g.dilation_h,
                dilation_w: g.dilation_w,
                pad_top: g.pad_top,
                pad_left: g.pad_left,
                clamp: clamp(o.activation),
            };
            let packed = PackedDepthwise::new(&p, &weights, bias.as_deref(), ctx.isa);
            Ok(Prepared::Kernel(Box::new(DepthwiseF32 {
                p,
                packed: Arc::new(packed),
                expand: None,
                threads: ctx.threads,
            })))
        }
        _ => super::quant_conv::prepare_depthwise(ctx, &g, depth_multiplier, o),
    }
}

struct DepthwiseF32 {
    p: DepthwiseParams,
    /// Shared with a pointwise node that takes this one over (see [`DepthwiseStage`]).
    packed: Arc<PackedDepthwise>,
    /// A fused pointwise convolution computing input 0, and the scratch floats it needs.
    expand: Option<(PointwiseStage, usize)>,
    threads: usize,
}

impl Kernel for DepthwiseF32 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let input = e.inputs.get::<f32>(0)?;
        let out = cast_mut::<f32>(e.output)?;
        let Some((pw, floats)) = &self.expand else {
            depthwise::depthwise_conv2d_f32(&self.p, input, &self.packed, out, e.threads);
            return Ok(());
        };
        let scratch = e
            .scratch
            .get_mut(..floats * std::mem::size_of::<f32>())
            .ok_or_else(|| Error::Internal("scratch smaller than planned".into()))?;
        depthwise_block::depthwise_block_f32(
            Some(&pw.layer()),
            &self.p,
            &self.packed,
            None,
            None,
            input,
            out,
            cast_mut::<f32>(scratch)?,
            e.threads,
        );
        Ok(())
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }

    fn persistent_bytes(&self) -> usize {
        self.packed.byte_size() + self.expand.as_ref().map_or(0, |(pw, _)| pw.byte_size())
    }

    fn scratch_bytes(&self) -> usize {
        self.expand
            .as_ref()
            .map_or(0, |(_, floats)| floats * std::mem::size_of::<f32>())
    }

    fn fuse_pointwise_input(&mut self, stage: PointwiseStage) -> bool {
        if self.expand.is_some()
            || !depthwise_block::can_expand(&stage.layer(), &self.p)
            || !depthwise_block::worth_expanding(&stage.p, &self.p, self.threads)
        {
            return false;
        }
        let floats = depthwise_block::scratch_floats(Some(&stage.p), &self.p, None, self.threads);
        self.expand = Some((stage, floats));
        true
    }

    fn depthwise_stage(&self) -> Option<DepthwiseStage> {
        Some(DepthwiseStage {
            p: self.p,
            packed: Arc::clone(&self.packed),
            expand: self.expand.as_ref().map(|(pw, _)| pw.clone()),
        })
    }
}
