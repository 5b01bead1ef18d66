//! Lowering one node to compute dispatches: shapes and options become shader parameters,
//! and weights are converted to f32 in the layout each shader reads.
//!
//! The same code answers `supports` (in a dry run that converts no weights) and builds the
//! program, so the delegate never claims a node it then fails to compile.

use crate::delegate::Node;
use crate::dtype::DType;
use crate::graph::Tensor;
use crate::options::{Activation, OpOptions, Padding};
use crate::schema::BuiltinOperator as B;

/// The compute shaders; each is `common.wgsl` followed by its own file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Gemm,
    Conv,
    Depthwise,
    Pool,
    Mean,
    Softmax,
    Binary,
    Unary,
    Concat,
    Pad,
    Resize,
}

impl Shader {
    pub(crate) fn source(self) -> &'static str {
        match self {
            Shader::Gemm => include_str!("gemm.wgsl"),
            Shader::Conv => include_str!("conv.wgsl"),
            Shader::Depthwise => include_str!("depthwise.wgsl"),
            Shader::Pool => include_str!("pool.wgsl"),
            Shader::Mean => include_str!("mean.wgsl"),
            Shader::Softmax => include_str!("softmax.wgsl"),
            Shader::Binary => include_str!("binary.wgsl"),
            Shader::Unary => include_str!("unary.wgsl"),
            Shader::Concat => include_str!("concat.wgsl"),
            Shader::Pad => include_str!("pad.wgsl"),
            Shader::Resize => include_str!("resize.wgsl"),
        }
    }
}

/// One compute dispatch: a shader, its parameter words, and how many invocations.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch {
    pub shader: Shader,
    pub params: Vec<u32>,
    pub invocations: u32,
}

/// Parameter words in the order of the shader's `Params` struct.
#[derive(Default)]
struct Words(Vec<u32>);

impl Words {
    fn u(mut self, v: usize) -> Self {
        self.0.push(v as u32);
        self
    }
    fn f(mut self, v: f32) -> Self {
        self.0.push(v.to_bits());
        self
    }
}

/// The constant buffer being filled, or only measured in a dry run.
pub(crate) struct Weights {
    pub data: Vec<f32>,
    pub dry: bool,
    len: usize,
}

impl Weights {
    pub(crate) fn new(dry: bool) -> Weights {
        Weights {
            data: Vec::new(),
            dry,
            len: 0,
        }
    }

    /// Appends `n` values made by `f` and returns their offset.
    fn push(&mut self, n: usize, f: impl FnOnce(&mut Vec<f32>)) -> usize {
        let at = self.len;
        if !self.dry {
            let before = self.data.len();
            f(&mut self.data);
            self.data.resize(before + n, 0.0);
        }
        self.len += n;
        at
    }
}

/// What lowering a node sees besides the node: the arena offset (in f32 elements) of the
/// value of each tensor, and the constant buffer.
pub(crate) struct Ctx<'a> {
    pub offset: &'a dyn Fn(usize) -> usize,
    pub weights: &'a mut Weights,
}

type R<T> = std::result::Result<T, String>;

/// Largest value an f32 clamp bound takes for "no bound" (shaders avoid infinities).
const BIG: f32 = f32::MAX;
/// Most elements one dispatch may cover (u32 offsets and counts in the shaders).
const MAX_ELEMENTS: usize = 1 << 30;

/// Whether `t` can be an activation on the GPU: f32, or int8/uint8 with one scale, held as
/// its dequantized value.
pub(crate) fn value_ok(t: &Tensor) -> R<()> {
    if t.numel == 0 || t.numel > MAX_ELEMENTS {
        return Err(format!("tensor '{}' has {} elements", t.name, t.numel));
    }
    match t.dtype {
        DType::F32 => Ok(()),
        DType::I8 | DType::U8 => match t.quantization.as_ref().and_then(|q| q.single()) {
            Some((s, _)) if s > 0.0 && s.is_finite() => Ok(()),
            _ => Err(format!(
                "{} tensor '{}' without one positive scale",
                t.dtype, t.name
            )),
        },
        other => Err(format!("{other} activations")),
    }
}

/// The integer range of a quantized tensor, as dequantized values.
fn quant_range(t: &Tensor) -> Option<(f32, f32)> {
    let (s, z) = t.quantization.as_ref()?.single()?;
    let (lo, hi) = match t.dtype {
        DType::I8 => (-128.0, 127.0),
        DType::U8 => (0.0, 255.0),
        _ => return None,
    };
    Some(((lo - z as f32) * s, (hi - z as f32) * s))
}

/// Clamp bounds of a fused activation on output `out` (narrowed to a quantized output's
/// range, which the CPU kernels saturate to).
fn bounds(a: Activation, out: &Tensor) -> R<(f32, f32)> {
    let (mut lo, mut hi) = match a {
        Activation::None => (-BIG, BIG),
        Activation::Relu => (0.0, BIG),
        Activation::Relu6 => (0.0, 6.0),
        Activation::ReluN1To1 => (-1.0, 1.0),
        other => return Err(format!("fused activation {other:?}")),
    };
    if let Some((qlo, qhi)) = quant_range(out) {
        lo = lo.max(qlo);
        hi = hi.min(qhi);
    }
    Ok((lo, hi))
}

/// A constant input decoded to f32 (dequantized with its own, possibly per-axis, scales).
fn constant<'a>(node: &Node<'a>, k: usize) -> R<(Vec<f32>, &'a Tensor)> {
    let t = node.input(k).ok_or(format!("input {k} is missing"))?;
    let bytes = node
        .constant(k)
        .ok_or(format!("input {k} ('{}') is not a constant", t.name))?;
    Ok((decode(t, bytes)?, t))
}

fn decode(t: &Tensor, bytes: &[u8]) -> R<Vec<f32>> {
    let n = t.numel;
    let size = t.dtype.size().unwrap_or(0);
    if size == 0 || bytes.len() < n.saturating_mul(size) {
        return Err(format!(
            "constant '{}' is short or of dtype {}",
            t.name, t.dtype
        ));
    }
    let raw: Vec<f64> = match t.dtype {
        DType::F32 => bytes[..n * 4]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        DType::F16 => bytes[..n * 2]
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::I8 => bytes[..n].iter().map(|&b| b as i8 as f64).collect(),
        DType::U8 => bytes[..n].iter().map(|&b| b as f64).collect(),
        DType::I32 => bytes[..n * 4]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        other => return Err(format!("constant of dtype {other}")),
    };
    if t.dtype == DType::F32 || t.dtype == DType::F16 {
        return Ok(raw.into_iter().map(|v| v as f32).collect());
    }
    let q = t.quantization.as_ref().ok_or(format!(
        "integer constant '{}' without quantization",
        t.name
    ))?;
    if q.scale.is_empty() || q.scale.len() != q.zero_point.len() {
        return Err(format!("constant '{}' has malformed quantization", t.name));
    }
    // Per-axis: the channel of element i is (i / inner) % dim.
    let (dim, inner) = if q.scale.len() == 1 {
        (1, 1)
    } else {
        let dim = *t.shape.get(q.axis).ok_or("quantized axis out of range")?;
        if dim != q.scale.len() {
            return Err(format!(
                "constant '{}': scales do not match its axis",
                t.name
            ));
        }
        (dim, t.shape[q.axis + 1..].iter().product::<usize>().max(1))
    };
    Ok(raw
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let c = (i / inner) % dim;
            ((v - q.zero_point[c] as f64) * q.scale[c] as f64) as f32
        })
        .collect())
}

/// Input positions a node reads from the arena (constants there are uploaded once).
pub(crate) fn arena_inputs(node: &Node<'_>) -> Vec<usize> {
    match node.builtin() {
        Some(B::ADD | B::MUL | B::SUB | B::DIV | B::MAXIMUM | B::MINIMUM | B::PRELU) => {
            vec![0, 1]
        }
        Some(B::CONCATENATION) => (0..node.op.inputs.len()).collect(),
        _ => vec![0],
    }
}

/// TFLite's padding rule for one spatial axis: (output size, padding before).
fn axis(
    padding: Padding,
    input: usize,
    filter: usize,
    stride: usize,
    dilation: usize,
) -> (usize, usize) {
    let effective = filter.saturating_sub(1) * dilation + 1;
    let out = match padding {
        Padding::Same => input.div_ceil(stride),
        Padding::Valid => (input + stride).saturating_sub(effective) / stride,
    };
    let needed = out.saturating_sub(1) * stride + effective;
    (out, needed.saturating_sub(input) / 2)
}

fn positive(v: i32, what: &str) -> R<usize> {
    if (1..=1 << 16).contains(&v) {
        Ok(v as usize)
    } else {
        Err(format!("{what} {v}"))
    }
}

fn dims4(t: &Tensor) -> R<[usize; 4]> {
    match t.shape[..] {
        [a, b, c, d] => Ok([a, b, c, d]),
        _ => Err(format!("'{}' is not 4-D ({:?})", t.name, t.shape)),
    }
}

/// Shape padded in front with 1s to rank 4.
fn pad4(shape: &[usize]) -> R<[usize; 4]> {
    if shape.len() > 4 {
        return Err(format!("rank {} above 4", shape.len()));
    }
    let mut d = [1; 4];
    d[4 - shape.len()..].copy_from_slice(shape);
    Ok(d)
}

/// Lowers `node` to dispatches (none for a view). Quantized outputs keep their float value
/// (no rounding to the output grid), as in TFLite's GPU delegate: rounding every tensor
/// would not bring the result closer to the integer kernels' (measured: it moves the int8
/// seed model's softmax further away).
pub(crate) fn lower(node: &Node<'_>, c: &mut Ctx<'_>) -> R<Vec<Dispatch>> {
    let code = node.builtin().ok_or("custom operators run on the CPU")?;
    let out = node.output(0).ok_or("no output")?;
    for k in arena_inputs(node) {
        if let Some(t) = node.input(k) {
            value_ok(t)?;
        }
    }
    for t in node.op.outputs.iter().filter_map(|&t| node.tensors.get(t)) {
        value_ok(t)?;
    }
    if node.is_view {
        return Ok(Vec::new());
    }
    let inp = |k: usize| {
        node.input_index(k)
            .map(|t| (c.offset)(t))
            .ok_or(format!("input {k} is missing"))
    };
    let o = (c.offset)(node.op.outputs[0]);
    match code {
        B::CONV_2D => conv(node, c),
        B::DEPTHWISE_CONV_2D => depthwise(node, c),
        B::FULLY_CONNECTED => fully_connected(node, c),
        B::AVERAGE_POOL_2D | B::MAX_POOL_2D => {
            let OpOptions::Pool2D(opt) = &node.op.options else {
                return Err("missing pool options".into());
            };
            let [n, ih, iw, ch] = dims4(node.input(0).ok_or("no input")?)?;
            let [_, oh, ow, _] = dims4(out)?;
            let (fh, fw) = (
                positive(opt.filter_h, "filter")?,
                positive(opt.filter_w, "filter")?,
            );
            let (sh, sw) = (
                positive(opt.stride_h, "stride")?,
                positive(opt.stride_w, "stride")?,
            );
            let (ay, pt) = axis(opt.padding, ih, fh, sh, 1);
            let (ax, pl) = axis(opt.padding, iw, fw, sw, 1);
            if (ay, ax) != (oh, ow) {
                return Err("output shape does not follow the padding rule".into());
            }
            let (lo, hi) = bounds(opt.activation, out)?;
            let total = n * oh * ow * ch;
            let p = Words::default()
                .u(inp(0)?)
                .u(o)
                .u(ih)
                .u(iw)
                .u(ch)
                .u(oh)
                .u(ow)
                .u(fh)
                .u(fw)
                .u(sh)
                .u(sw)
                .u(pt)
                .u(pl)
                .u((code == B::MAX_POOL_2D) as usize)
                .u(total)
                .f(lo)
                .f(hi);
            Ok(vec![dispatch(Shader::Pool, p, total)])
        }
        B::MEAN => {
            let x = node.input(0).ok_or("no input")?;
            let (axes, _) = constant_ints(node, 1)?;
            let d = pad4(&x.shape)?;
            let shift = 4 - x.shape.len();
            let mut mask = 0u32;
            for a in axes {
                let a = if a < 0 { a + x.shape.len() as i64 } else { a };
                if a < 0 || a as usize >= x.shape.len() {
                    return Err(format!("axis {a} out of range"));
                }
                mask |= 1 << (a as usize + shift);
            }
            let count: usize = (0..4)
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| d[i])
                .product();
            let total = x.numel / count.max(1);
            if count == 0 || total != out.numel {
                return Err("unexpected MEAN shapes".into());
            }
            let p = Words::default()
                .u(inp(0)?)
                .u(o)
                .u(d[0])
                .u(d[1])
                .u(d[2])
                .u(d[3])
                .u(mask as usize)
                .u(count)
                .u(total);
            Ok(vec![dispatch(Shader::Mean, p, total)])
        }
        B::SOFTMAX => {
            let OpOptions::Softmax { beta } = node.op.options else {
                return Err("missing softmax options".into());
            };
            let x = node.input(0).ok_or("no input")?;
            let depth = *x.shape.last().ok_or("scalar input")?;
            let rows = x.numel / depth.max(1);
            let p = Words::default().u(inp(0)?).u(o).u(rows).u(depth).f(beta);
            Ok(vec![dispatch(Shader::Softmax, p, rows)])
        }
        B::ADD | B::MUL | B::SUB | B::DIV | B::MAXIMUM | B::MINIMUM | B::PRELU => {
            let act = match &node.op.options {
                OpOptions::Add { activation, .. }
                | OpOptions::Mul { activation }
                | OpOptions::Div { activation } => *activation,
                _ => Activation::None,
            };
            let (lo, hi) = bounds(act, out)?;
            let op = match code {
                B::ADD => 0,
                B::MUL => 1,
                B::SUB => 2,
                B::DIV => 3,
                B::PRELU => 4,
                B::MAXIMUM => 5,
                _ => 6,
            };
            let od = pad4(&out.shape)?;
            let strides = |k: usize| -> R<[usize; 4]> {
                let t = node.input(k).ok_or("missing operand")?;
                if t.shape.len() > out.shape.len() {
                    return Err("operand of higher rank than the output".into());
                }
                let d = pad4(&t.shape)?;
                let mut s = [0; 4];
                let mut step = 1;
                for i in (0..4).rev() {
                    if d[i] == od[i] {
                        s[i] = if d[i] == 1 { 0 } else { step };
                    } else if d[i] != 1 {
                        return Err(format!(
                            "shapes {:?} and {:?} do not broadcast",
                            t.shape, out.shape
                        ));
                    }
                    step *= d[i];
                }
                Ok(s)
            };
            let (sa, sb) = (strides(0)?, strides(1)?);
            let total = out.numel;
            let mut p = Words::default()
                .u(inp(0)?)
                .u(inp(1)?)
                .u(o)
                .u(op)
                .u(total)
                .u(od[1])
                .u(od[2])
                .u(od[3]);
            for s in sa.iter().chain(&sb) {
                p = p.u(*s);
            }
            Ok(vec![dispatch(Shader::Binary, p.f(lo).f(hi), total)])
        }
        B::LOGISTIC
        | B::HARD_SWISH
        | B::TANH
        | B::RELU
        | B::RELU6
        | B::RELU_N1_TO_1
        | B::DEQUANTIZE => {
            let (op, a, b) = match code {
                B::LOGISTIC => (1, 0.0, 0.0),
                B::HARD_SWISH => (2, 0.0, 0.0),
                B::TANH => (3, 0.0, 0.0),
                B::RELU => (0, 0.0, BIG),
                B::RELU6 => (0, 0.0, 6.0),
                B::RELU_N1_TO_1 => (0, -1.0, 1.0),
                _ => (0, -BIG, BIG),
            };
            let (a, b) = match quant_range(out) {
                Some((qlo, qhi)) if op == 0 => (a.max(qlo), b.min(qhi)),
                _ => (a, b),
            };
            if op != 0 && out.dtype != DType::F32 {
                return Err(format!("{} output on the GPU", out.dtype));
            }
            let p = Words::default()
                .u(inp(0)?)
                .u(o)
                .u(op)
                .u(out.numel)
                .f(a)
                .f(b)
                .f(0.0)
                .f(0.0);
            Ok(vec![dispatch(Shader::Unary, p, out.numel)])
        }
        B::QUANTIZE => {
            let (s, z) = out
                .quantization
                .as_ref()
                .and_then(|q| q.single())
                .ok_or("per-axis output")?;
            let (qlo, qhi) = if out.dtype == DType::I8 {
                (-128.0, 127.0)
            } else {
                (0.0, 255.0)
            };
            let p = Words::default()
                .u(inp(0)?)
                .u(o)
                .u(4)
                .u(out.numel)
                .f(s)
                .f(z as f32)
                .f(qlo)
                .f(qhi);
            Ok(vec![dispatch(Shader::Unary, p, out.numel)])
        }
        B::CONCATENATION => {
            let OpOptions::Concatenation { axis, activation } = node.op.options else {
                return Err("missing concatenation options".into());
            };
            let rank = out.shape.len() as i32;
            let a = if axis < 0 { axis + rank } else { axis };
            if a < 0 || a >= rank {
                return Err(format!("axis {axis}"));
            }
            let a = a as usize;
            let (lo, hi) = bounds(activation, out)?;
            let outer: usize = out.shape[..a].iter().product();
            let inner: usize = out.shape[a + 1..].iter().product();
            let out_row = out.shape[a] * inner;
            let mut offset = 0;
            let mut list = Vec::new();
            for k in 0..node.op.inputs.len() {
                let t = node.input(k).ok_or("missing input")?;
                if t.shape.len() != out.shape.len() {
                    return Err("inputs of different ranks".into());
                }
                let in_row = t.shape[a] * inner;
                let total = outer * in_row;
                if total != t.numel {
                    return Err("unexpected concatenation shapes".into());
                }
                if total > 0 {
                    let p = Words::default()
                        .u(inp(k)?)
                        .u(o)
                        .u(in_row)
                        .u(out_row)
                        .u(offset)
                        .u(total)
                        .f(lo)
                        .f(hi);
                    list.push(dispatch(Shader::Concat, p, total));
                }
                offset += in_row;
            }
            Ok(list)
        }
        B::PAD | B::PADV2 => {
            let x = node.input(0).ok_or("no input")?;
            let (pads, _) = constant_ints(node, 1)?;
            if pads.len() != 2 * x.shape.len() || pads.iter().any(|&v| v < 0) {
                return Err("unexpected paddings".into());
            }
            let value = match node.input(2) {
                Some(_) => *constant(node, 2)?.0.first().ok_or("empty pad value")?,
                None => 0.0,
            };
            let id = pad4(&x.shape)?;
            let od = pad4(&out.shape)?;
            let shift = 4 - x.shape.len();
            let mut before = [0usize; 4];
            for i in 0..x.shape.len() {
                before[i + shift] = pads[2 * i] as usize;
                if x.shape[i] + pads[2 * i] as usize + pads[2 * i + 1] as usize != out.shape[i] {
                    return Err("unexpected padded shape".into());
                }
            }
            let p = Words::default()
                .u(inp(0)?)
                .u(o)
                .u(out.numel)
                .u(od[1])
                .u(od[2])
                .u(od[3])
                .u(id[0])
                .u(id[1])
                .u(id[2])
                .u(id[3])
                .u(before[0])
                .u(before[1])
                .u(before[2])
                .u(before[3])
                .f(value);
            Ok(vec![dispatch(Shader::Pad, p, out.numel)])
        }
        B::RESIZE_BILINEAR => {
            let OpOptions::Resize {
                align_corners,
                half_pixel_centers,
            } = node.op.options
            else {
                return Err("missing resize options".into());
            };
            if align_corners && half_pixel_centers {
                return Err("align_corners with half_pixel_centers".into());
            }
            let [n, ih, iw, ch] = dims4(node.input(0).ok_or("no input")?)?;
            let [_, oh, ow, _] = dims4(out)?;
            let scale = |i: usize, o: usize| {
                if align_corners && o > 1 {
                    (i as f32 - 1.0) / (o as f32 - 1.0)
                } else {
                    i as f32 / o as f32
                }
            };
            let total = n * oh * ow * ch;
            let p = Words::default()
                .u(inp(0)?)
                .u(o)
                .u(ih)
                .u(iw)
                .u(ch)
                .u(oh)
                .u(ow)
                .u(half_pixel_centers as usize)
                .u(total)
                .f(scale(ih, oh))
                .f(scale(iw, ow));
            Ok(vec![dispatch(Shader::Resize, p, total)])
        }
        other => Err(format!(
            "{} has no GPU kernel",
            crate::options::builtin_name(other.0)
        )),
    }
}

fn dispatch(shader: Shader, p: Words, invocations: usize) -> Dispatch {
    Dispatch {
        shader,
        params: p.0,
        invocations: invocations as u32,
    }
}

/// A constant integer input (axes, paddings).
fn constant_ints(node: &Node<'_>, k: usize) -> R<(Vec<i64>, ())> {
    let t = node.input(k).ok_or(format!("input {k} is missing"))?;
    let bytes = node
        .constant(k)
        .ok_or(format!("input {k} is not a constant"))?;
    let n = t.numel;
    let v: Vec<i64> = match t.dtype {
        DType::I32 if bytes.len() >= n * 4 => bytes[..n * 4]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect(),
        DType::I64 if bytes.len() >= n * 8 => bytes[..n * 8]
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        _ => return Err(format!("input {k} is not an int32/int64 constant")),
    };
    Ok((v, ()))
}

/// Refuses f32 activations with integer weights: dynamic-range (hybrid) kernels quantize
/// activations at run time, which the GPU does not reproduce.
fn no_hybrid(node: &Node<'_>, w: &Tensor) -> R<()> {
    let x = node.input(0).ok_or("no input")?;
    if x.dtype == DType::F32 && w.dtype != DType::F32 && w.dtype != DType::F16 {
        return Err("dynamic-range (hybrid) weights stay on the CPU".into());
    }
    Ok(())
}

/// Weights and bias of a GEMM-shaped layer: B as [K][Np] from rows given by `at(k, n)`.
fn push_gemm_weights(
    c: &mut Ctx<'_>,
    k: usize,
    n: usize,
    w: &[f32],
    at: impl Fn(usize, usize) -> usize,
) -> usize {
    let np = n.div_ceil(4) * 4;
    c.weights.push(k * np, |data| {
        let base = data.len();
        data.resize(base + k * np, 0.0);
        for kk in 0..k {
            for nn in 0..n {
                data[base + kk * np + nn] = w[at(kk, nn)];
            }
        }
    })
}

fn push_bias(c: &mut Ctx<'_>, node: &Node<'_>, k: usize, n: usize) -> R<Option<usize>> {
    if node.input(k).is_none() {
        return Ok(None);
    }
    let np = n.div_ceil(4) * 4;
    let bias = if c.weights.dry {
        node.constant(k).ok_or("the bias is not a constant")?;
        Vec::new()
    } else {
        constant(node, k)?.0
    };
    if !c.weights.dry && bias.len() != n {
        return Err("bias of the wrong size".into());
    }
    Ok(Some(
        c.weights.push(np, |data| data.extend_from_slice(&bias)),
    ))
}

fn conv(node: &Node<'_>, c: &mut Ctx<'_>) -> R<Vec<Dispatch>> {
    let OpOptions::Conv2D(opt) = &node.op.options else {
        return Err("missing convolution options".into());
    };
    let x = node.input(0).ok_or("no input")?;
    let wt = node.input(1).ok_or("no weights")?;
    let out = node.output(0).ok_or("no output")?;
    no_hybrid(node, wt)?;
    let [n, ih, iw, ic] = dims4(x)?;
    let [oc, kh, kw, wic] = dims4(wt)?;
    let [_, oh, ow, _] = dims4(out)?;
    if wic != ic {
        return Err("grouped convolution".into());
    }
    let (sh, sw) = (
        positive(opt.stride_h, "stride")?,
        positive(opt.stride_w, "stride")?,
    );
    let (dh, dw) = (
        positive(opt.dilation_h, "dilation")?,
        positive(opt.dilation_w, "dilation")?,
    );
    let (ay, pt) = axis(opt.padding, ih, kh, sh, dh);
    let (ax, pl) = axis(opt.padding, iw, kw, sw, dw);
    if (ay, ax) != (oh, ow) {
        return Err("output shape does not follow the padding rule".into());
    }
    let (lo, hi) = bounds(opt.activation, out)?;
    let w = if c.weights.dry {
        node.constant(1).ok_or("the weights are not a constant")?;
        Vec::new()
    } else {
        constant(node, 1)?.0
    };
    // [OC][KH][KW][IC] -> [KH][KW][IC][OCp]: row kk = (ky·KW + kx)·IC + ci.
    let taps = kh * kw * ic;
    let w_off = push_gemm_weights(c, taps, oc, &w, |kk, o| o * taps + kk);
    let bias = push_bias(c, node, 2, oc)?;
    let ocp = oc.div_ceil(4) * 4;
    let (i, o) = (
        (c.offset)(node.input_index(0).ok_or("no input")?),
        (c.offset)(node.op.outputs[0]),
    );
    if kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && (oh, ow) == (ih, iw) {
        // A 1x1 convolution is a GEMM over the pixels.
        let m = n * ih * iw;
        let total = m.div_ceil(4) * (ocp / 4);
        let p = Words::default()
            .u(i)
            .u(w_off)
            .u(bias.unwrap_or(0))
            .u(o)
            .u(m)
            .u(ic)
            .u(oc)
            .u(ocp)
            .u(bias.is_some() as usize)
            .u(total)
            .f(lo)
            .f(hi);
        return Ok(vec![dispatch(Shader::Gemm, p, total)]);
    }
    let total = n * oh * ow.div_ceil(4) * (ocp / 4);
    let p = Words::default()
        .u(i)
        .u(w_off)
        .u(bias.unwrap_or(0))
        .u(o)
        .u(ih)
        .u(iw)
        .u(ic)
        .u(oh)
        .u(ow)
        .u(oc)
        .u(ocp)
        .u(kh)
        .u(kw)
        .u(sh)
        .u(sw)
        .u(dh)
        .u(dw)
        .u(pt)
        .u(pl)
        .u(bias.is_some() as usize)
        .u(total)
        .f(lo)
        .f(hi);
    Ok(vec![dispatch(Shader::Conv, p, total)])
}

fn depthwise(node: &Node<'_>, c: &mut Ctx<'_>) -> R<Vec<Dispatch>> {
    let OpOptions::DepthwiseConv2D(opt) = &node.op.options else {
        return Err("missing depthwise options".into());
    };
    let x = node.input(0).ok_or("no input")?;
    let wt = node.input(1).ok_or("no weights")?;
    let out = node.output(0).ok_or("no output")?;
    no_hybrid(node, wt)?;
    let [n, ih, iw, ic] = dims4(x)?;
    let [one, kh, kw, oc] = dims4(wt)?;
    let [_, oh, ow, _] = dims4(out)?;
    if one != 1 || ic == 0 || oc % ic != 0 {
        return Err("unexpected depthwise weights".into());
    }
    let (sh, sw) = (
        positive(opt.stride_h, "stride")?,
        positive(opt.stride_w, "stride")?,
    );
    let (dh, dw) = (
        positive(opt.dilation_h, "dilation")?,
        positive(opt.dilation_w, "dilation")?,
    );
    let (ay, pt) = axis(opt.padding, ih, kh, sh, dh);
    let (ax, pl) = axis(opt.padding, iw, kw, sw, dw);
    if (ay, ax) != (oh, ow) {
        return Err("output shape does not follow the padding rule".into());
    }
    let (lo, hi) = bounds(opt.activation, out)?;
    let w = if c.weights.dry {
        node.constant(1).ok_or("the weights are not a constant")?;
        Vec::new()
    } else {
        constant(node, 1)?.0
    };
    let w_off = c
        .weights
        .push(kh * kw * oc, |data| data.extend_from_slice(&w));
    let bias = push_bias(c, node, 2, oc)?;
    let total = n * oh * ow * oc;
    let p = Words::default()
        .u((c.offset)(node.input_index(0).ok_or("no input")?))
        .u(w_off)
        .u(bias.unwrap_or(0))
        .u((c.offset)(node.op.outputs[0]))
        .u(ih)
        .u(iw)
        .u(ic)
        .u(oh)
        .u(ow)
        .u(oc)
        .u(oc / ic)
        .u(kh)
        .u(kw)
        .u(sh)
        .u(sw)
        .u(dh)
        .u(dw)
        .u(pt)
        .u(pl)
        .u(bias.is_some() as usize)
        .u(total)
        .f(lo)
        .f(hi);
    Ok(vec![dispatch(Shader::Depthwise, p, total)])
}

fn fully_connected(node: &Node<'_>, c: &mut Ctx<'_>) -> R<Vec<Dispatch>> {
    let OpOptions::FullyConnected(opt) = &node.op.options else {
        return Err("missing fully-connected options".into());
    };
    if opt.shuffled_weights {
        return Err("shuffled weights".into());
    }
    let x = node.input(0).ok_or("no input")?;
    let wt = node.input(1).ok_or("no weights")?;
    let out = node.output(0).ok_or("no output")?;
    no_hybrid(node, wt)?;
    let (n, k) = match wt.shape[..] {
        [n, k] if k > 0 => (n, k),
        _ => return Err("weights are not 2-D".into()),
    };
    let m = x.numel / k;
    if m * k != x.numel || out.numel != m * n {
        return Err("unexpected fully-connected shapes".into());
    }
    let (lo, hi) = bounds(opt.activation, out)?;
    let w = if c.weights.dry {
        node.constant(1).ok_or("the weights are not a constant")?;
        Vec::new()
    } else {
        constant(node, 1)?.0
    };
    // [N][K] -> [K][Np].
    let w_off = push_gemm_weights(c, k, n, &w, |kk, nn| nn * k + kk);
    let bias = push_bias(c, node, 2, n)?;
    let np = n.div_ceil(4) * 4;
    let total = m.div_ceil(4) * (np / 4);
    let p = Words::default()
        .u((c.offset)(node.input_index(0).ok_or("no input")?))
        .u(w_off)
        .u(bias.unwrap_or(0))
        .u((c.offset)(node.op.outputs[0]))
        .u(m)
        .u(k)
        .u(n)
        .u(np)
        .u(bias.is_some() as usize)
        .u(total)
        .f(lo)
        .f(hi);
    Ok(vec![dispatch(Shader::Gemm, p, total)])
}

/// Values of a constant tensor read from the arena (ADD's constant operand, PRELU's alpha).
pub(crate) fn arena_constant(t: &Tensor, bytes: &[u8]) -> R<Vec<f32>> {
    decode(t, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Quantization;

    fn tensor(dtype: DType, shape: &[usize], q: Option<Quantization>) -> Tensor {
        Tensor {
            name: "t".into(),
            dtype,
            shape: shape.to_vec(),
            shape_signature: None,
            quantization: q,
            data: None,
            is_variable: false,
            numel: shape.iter().product(),
            bytes: None,
            sparsity: None,
        }
    }

    #[test]
    fn per_axis_int8_dequantizes_each_slice_with_its_scale() {
        // [2, 3] along axis 0: row 0 scale 0.5 zero point 0, row 1 scale 2 zero point 1.
        let q = Quantization {
            scale: vec![0.5, 2.0],
            zero_point: vec![0, 1],
            axis: 0,
        };
        let t = tensor(DType::I8, &[2, 3], Some(q));
        let bytes = [2i8, -4, 0, 1, 3, -1].map(|v| v as u8);
        assert_eq!(
            decode(&t, &bytes).unwrap(),
            vec![1.0, -2.0, 0.0, 0.0, 4.0, -4.0]
        );
        // Along the last axis the channel changes with every element.
        let q = Quantization {
            scale: vec![1.0, 10.0, 100.0],
            zero_point: vec![0, 0, 0],
            axis: 1,
        };
        let t = tensor(DType::I8, &[2, 3], Some(q));
        assert_eq!(
            decode(&t, &[1u8; 6]).unwrap(),
            vec![1.0, 10.0, 100.0, 1.0, 10.0, 100.0]
        );
        // Short data is an error, not a panic.
        assert!(decode(&t, &[0u8; 5]).is_err());
    }

    #[test]
    fn padding_follows_tflite() {
        // 7 wide, 3 taps, stride 2: SAME gives 4 outputs and 1 pixel of padding before.
        assert_eq!(axis(Padding::Same, 7, 3, 2, 1), (4, 1));
        assert_eq!(axis(Padding::Valid, 7, 3, 2, 1), (3, 0));
        // Even total padding of 2 (k=3, s=1) splits 1 and 1; dilation 2 widens to 5 taps.
        assert_eq!(axis(Padding::Same, 5, 3, 1, 2), (5, 2));
        // A zero-sized filter is refused elsewhere; here it must not underflow.
        assert_eq!(axis(Padding::Valid, 4, 0, 1, 1).0, 4);
    }

    #[test]
    fn quantized_outputs_narrow_the_activation_bounds() {
        let q = Quantization {
            scale: vec![0.1],
            zero_point: vec![-28],
            axis: 0,
        };
        let out = tensor(DType::I8, &[4], Some(q));
        // int8 with zero point -28 covers (-128+28)·0.1 = -10 .. (127+28)·0.1 = 15.5.
        let (lo, hi) = bounds(Activation::Relu6, &out).unwrap();
        assert_eq!((lo, hi), (0.0, 6.0));
        let (lo, hi) = bounds(Activation::None, &out).unwrap();
        assert!(
            (lo + 10.0).abs() < 1e-5 && (hi - 15.5).abs() < 1e-5,
            "{lo} {hi}"
        );
        assert!(bounds(Activation::Tanh, &out).is_err());
    }
}
