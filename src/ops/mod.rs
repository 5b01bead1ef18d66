//! Operator preparation and evaluation.
//!
//! Each operator family has one file. Its `prepare` function runs once per node when an
//! interpreter is built: it checks dtypes, shapes and options against what the reference
//! accepts, computes everything that does not depend on input values (padding, requantization
//! multipliers, packed weights), and returns a [`Kernel`] whose `eval` only computes.
//! Anything the kernel cannot do is refused here, with the node index, never during `invoke`.

use std::ops::Range;

use bytemuck::Pod;

use crate::aligned::AlignedBuf;
use crate::error::{Error, Invalid, Location, Result};
use crate::graph::{OpCode, Operator, Tensor};
use crate::model::Model;
use crate::schema::BuiltinOperator as B;
use ferrolite_kernels::quant::{FusedActivation, QuantError, QuantParams};

mod activations;
mod binary;
pub(crate) mod control;
mod conv;
mod detection;
mod elementwise;
mod fully_connected;
mod geometry;
mod indexing;
mod layers;
pub(crate) use layers::densify_tensor;
mod layout;
mod lstm;
mod pool;
mod quant_binary;
mod quant_conv;
mod quant_fc;
mod quant_pool;
mod quant_reduce;
mod quant_softmax;
mod quantize;
mod reduce;
mod reductions;
pub mod registry;
mod reshape;
mod resize;
mod softmax;

/// Where a tensor's bytes live at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Loc {
    /// An absent optional input, or a tensor nothing reads.
    None,
    /// A range of the activation arena.
    Arena(Range<usize>),
    /// Constant data read in place from the model bytes.
    Model(Range<usize>),
    /// A buffer owned by the interpreter: folded constants, aligned copies.
    Persistent(usize),
}

/// Read access to the inputs of one node while its output is being written.
pub(crate) struct Inputs<'a> {
    pub locs: &'a [Loc],
    /// The arena outside the node's outputs: (arena offset, bytes) pieces in offset order.
    pub pieces: &'a [(usize, &'a [u8])],
    pub model: &'a [u8],
    pub persistent: &'a [AlignedBuf],
}

/// Most outputs one node may have; nodes with more are refused at preparation.
pub(crate) const MAX_OUTPUTS: usize = 64;

impl<'a> Inputs<'a> {
    fn bytes_of(&self, loc: &Loc) -> Option<&'a [u8]> {
        match loc {
            Loc::None => None,
            Loc::Arena(r) => {
                // The planner never lets an input overlap an output of the same node, so the
                // range lies inside one piece.
                let i = self.pieces.partition_point(|(base, _)| *base <= r.start);
                let (base, bytes) = self.pieces.get(i.checked_sub(1)?)?;
                bytes.get(r.start - base..r.end.checked_sub(*base)?)
            }
            Loc::Model(r) => self.model.get(r.clone()),
            Loc::Persistent(i) => self.persistent.get(*i).map(|b| b.as_slice()),
        }
    }

    /// Input `k` as raw bytes.
    pub fn bytes(&self, k: usize) -> Result<&'a [u8]> {
        self.locs
            .get(k)
            .and_then(|l| self.bytes_of(l))
            .ok_or_else(|| Error::Internal(format!("input {k} has no readable memory")))
    }

    /// Input `k` viewed as elements of `T`.
    pub fn get<T: Pod>(&self, k: usize) -> Result<&'a [T]> {
        cast(self.bytes(k)?)
    }
}

pub(crate) fn cast<T: Pod>(bytes: &[u8]) -> Result<&[T]> {
    bytemuck::try_cast_slice(bytes)
        .map_err(|e| Error::Internal(format!("tensor memory cannot be viewed as the type: {e}")))
}

pub(crate) fn cast_mut<T: Pod>(bytes: &mut [u8]) -> Result<&mut [T]> {
    bytemuck::try_cast_slice_mut(bytes)
        .map_err(|e| Error::Internal(format!("tensor memory cannot be viewed as the type: {e}")))
}

/// Everything one node's evaluation gets.
pub(crate) struct Eval<'a> {
    pub inputs: Inputs<'a>,
    /// Output 0.
    pub output: &'a mut [u8],
    /// Outputs 1.. of nodes with several outputs, then the inputs the kernel updates in place
    /// ([`Kernel::updates_inputs`]).
    #[allow(dead_code)]
    pub more_outputs: &'a mut [&'a mut [u8]],
    pub scratch: &'a mut [u8],
    pub threads: usize,
}

/// A prepared node.
pub(crate) trait Kernel: Send + Sync {
    fn eval(&self, e: Eval<'_>) -> Result<()>;
    /// Bytes this kernel holds for the life of the interpreter (packed weights, tables).
    fn persistent_bytes(&self) -> usize {
        0
    }
    /// Bytes of shared scratch memory this kernel needs during `eval`.
    fn scratch_bytes(&self) -> usize {
        0
    }
    /// Whether `eval` reads input `k`. Kernels that copied or packed a constant input at
    /// preparation say no, so that the interpreter can drop its folded source.
    fn reads_input(&self, _k: usize) -> bool {
        true
    }
    /// Inputs that `eval` updates in place: variable tensors holding recurrent state, which
    /// TFLite kernels overwrite and which persist between invokes. Each is handed to `eval`
    /// writable, after the node's own outputs in `more_outputs`, in the order listed here,
    /// and is not readable through `inputs`.
    fn updates_inputs(&self) -> &[usize] {
        &[]
    }
    /// Takes over a float ADD of this node's output 0 and another tensor of the same shape
    /// (see [`crate::fusion`]): the ADD's `clamp(output + other)` is applied to each part of
    /// the output as it is finished, `other` being read as input `k` (appended after the
    /// node's own). Returns false, changing nothing, when this kernel cannot.
    fn fuse_residual_add(
        &mut self,
        _k: usize,
        _clamp: ferrolite_kernels::activation::Clamp,
    ) -> bool {
        false
    }
    /// Takes over a float MUL of this node's output 0 by this node's input 0 (same shape):
    /// a LOGISTIC followed by that MUL is SiLU ("swish"), `clamp(x · sigmoid(x))`, computed
    /// in one pass. Returns false, changing nothing, when this kernel cannot.
    fn fuse_times_input(&mut self, _clamp: ferrolite_kernels::activation::Clamp) -> bool {
        false
    }
    /// For an 8-bit MUL of two same-shape tensors: its parameters, which every element
    /// follows (`MulQuant::apply`). `None` for everything else.
    fn mul8(&self) -> Option<ferrolite_kernels::quant::mul::MulQuant> {
        None
    }
    /// Takes over an 8-bit MUL (`q`) of this node's output 0 by its input 0, the output
    /// being the MUL's first operand when `table_first`: an 8-bit lookup table then
    /// tabulates the product too (an int8 SiLU, `x · sigmoid(x)`, becomes one lookup).
    /// Returns false, changing nothing, when this kernel cannot.
    fn fuse_mul8_of_input(
        &mut self,
        _q: &ferrolite_kernels::quant::mul::MulQuant,
        _table_first: bool,
    ) -> bool {
        false
    }
    /// This node as the first layer of a pointwise → depthwise pair (see [`crate::fusion`]):
    /// a float 1×1 convolution run as a GEMM, with nothing fused into it. `None` otherwise.
    fn pointwise_stage(&self) -> Option<conv::PointwiseStage> {
        None
    }
    /// Takes over the pointwise convolution `stage` that produces this node's input 0, whose
    /// input then becomes input 0 here. Returns false, changing nothing, when this kernel
    /// cannot.
    fn fuse_pointwise_input(&mut self, _stage: conv::PointwiseStage) -> bool {
        false
    }
    /// This node as the middle layer of a depthwise → pointwise pair (see [`crate::fusion`]):
    /// a float depthwise convolution, with the pointwise one it may have taken over.
    fn depthwise_stage(&self) -> Option<conv::DepthwiseStage> {
        None
    }
    /// Takes over the depthwise convolution `stage` that produces this node's input 0, whose
    /// input then becomes input 0 here. Returns false, changing nothing, when this kernel
    /// cannot.
    fn fuse_depthwise_input(&mut self, _stage: conv::DepthwiseStage) -> bool {
        false
    }
}

/// What preparing a node produced.
pub(crate) enum Prepared {
    /// Run this kernel at each invoke.
    Kernel(Box<dyn Kernel>),
    /// The output is the same bytes as input 0 (RESHAPE and friends): nothing runs.
    View,
    /// The output is a constant computed now (DEQUANTIZE of a constant): nothing runs.
    Fold(AlignedBuf),
}

/// What a node's preparation can see.
pub(crate) struct PrepareCtx<'m> {
    pub model: &'m Model,
    pub subgraph: usize,
    pub index: usize,
    pub op: &'m Operator,
    /// Constant values computed by earlier folds, by tensor index.
    pub folded: &'m [Option<AlignedBuf>],
    pub threads: usize,
    /// The CPU kernel tier chosen for this interpreter.
    pub isa: ferrolite_kernels::isa::Isa,
    /// Tensor metadata with the shapes computed by earlier nodes.
    pub tensors: &'m [Tensor],
    /// Output shapes this node computed that differ from the recorded ones.
    pub out_shapes: std::cell::RefCell<Vec<Option<Vec<usize>>>>,
    /// The element limit for computed shapes.
    pub max_elements: usize,
    /// Everything preparation was configured with, for nodes that prepare other subgraphs.
    pub env: crate::subgraph::PrepareEnv,
}

impl<'m> PrepareCtx<'m> {
    fn tensors(&self) -> &'m [Tensor] {
        self.tensors
    }

    pub fn loc(&self) -> Location {
        self.model.op_location(self.subgraph, self.index)
    }

    pub fn invalid(&self, msg: impl Into<String>) -> Error {
        Error::invalid(self.loc(), Invalid::Other(msg.into()))
    }

    pub fn unsupported(&self, msg: impl Into<String>) -> Error {
        Error::unsupported(self.loc(), msg)
    }

    /// Fails unless the node has between `min` and `max` inputs and exactly `outputs` outputs.
    pub fn expect_arity(&self, min: usize, max: usize, outputs: usize) -> Result<()> {
        let n = self.op.inputs.len();
        if n < min || n > max {
            return Err(self.invalid(format!("expected {min}..={max} inputs, found {n}")));
        }
        if self.op.outputs.len() != outputs {
            return Err(self.invalid(format!(
                "expected {outputs} outputs, found {}",
                self.op.outputs.len()
            )));
        }
        Ok(())
    }

    pub fn input_index(&self, k: usize) -> Result<usize> {
        self.op.inputs.get(k).copied().flatten().ok_or_else(|| {
            Error::invalid(
                self.loc(),
                Invalid::Other(format!("required input {k} is missing")),
            )
        })
    }

    pub fn input(&self, k: usize) -> Result<&'m Tensor> {
        Ok(&self.tensors()[self.input_index(k)?])
    }

    pub fn input_opt(&self, k: usize) -> Option<&'m Tensor> {
        self.op
            .inputs
            .get(k)
            .copied()
            .flatten()
            .map(|t| &self.tensors()[t])
    }

    pub fn output(&self, k: usize) -> Result<&'m Tensor> {
        let t = *self
            .op
            .outputs
            .get(k)
            .ok_or_else(|| self.invalid(format!("output {k} is missing")))?;
        Ok(&self.tensors()[t])
    }

    /// Constant bytes of input `k` (from the file or folded earlier), if it is constant.
    pub fn const_bytes(&self, k: usize) -> Option<&'m [u8]> {
        let t = self.op.inputs.get(k).copied().flatten()?;
        if let Some(Some(buf)) = self.folded.get(t) {
            return Some(buf.as_slice());
        }
        self.model.tensor_data(self.subgraph, t)
    }

    /// Constant input `k` decoded as `T`, copied so that file alignment does not matter.
    pub fn const_vec<T: Pod>(&self, k: usize) -> Result<Option<Vec<T>>> {
        let Some(bytes) = self.const_bytes(k) else {
            return Ok(None);
        };
        let n = self.input(k)?.numel;
        let size = std::mem::size_of::<T>();
        let need = n
            .checked_mul(size)
            .ok_or_else(|| self.invalid("constant too large"))?;
        let bytes = bytes
            .get(..need)
            .ok_or_else(|| self.invalid("constant buffer too small"))?;
        Ok(Some(
            bytes
                .chunks_exact(size)
                .map(bytemuck::pod_read_unaligned)
                .collect(),
        ))
    }

    /// An "unsupported dtype combination" error naming the op and all tensor dtypes.
    pub fn unsupported_dtypes(&self) -> Error {
        let ins: Vec<String> = (0..self.op.inputs.len())
            .map(|k| {
                self.input_opt(k)
                    .map(|t| t.dtype.to_string())
                    .unwrap_or("-".into())
            })
            .collect();
        let outs: Vec<String> = (0..self.op.outputs.len())
            .filter_map(|k| self.output(k).ok())
            .map(|t| t.dtype.to_string())
            .collect();
        self.unsupported(format!(
            "no kernel for inputs ({}) -> outputs ({})",
            ins.join(", "),
            outs.join(", ")
        ))
    }

    /// The shape of output `k`: the one this node computed, else the recorded one.
    pub fn output_shape(&self, k: usize) -> Result<Vec<usize>> {
        if let Some(Some(s)) = self.out_shapes.borrow().get(k) {
            return Ok(s.clone());
        }
        Ok(self.output(k)?.shape.clone())
    }

    /// Records the shape this op computes for output `k`. As in TFLite, the computed shape
    /// wins over the one stored in the file (which converters leave at batch 1 for dynamic
    /// models); it must still fit the element limit.
    pub fn set_output_shape(&self, k: usize, shape: &[usize]) -> Result<()> {
        let t = self.output(k)?;
        if t.shape == shape {
            return Ok(());
        }
        // A variable keeps its shape: it can be written by several nodes and read before it
        // is written, and each of them was prepared for the shape it has now.
        if t.is_variable {
            return Err(self.invalid(format!(
                "output {k} is a variable of shape {:?}, but the op computes {shape:?}",
                t.shape
            )));
        }
        let numel = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= self.max_elements)
            .ok_or_else(|| self.invalid(format!("output {k} shape {shape:?} is too large")))?;
        if t.dtype.bytes_for(numel).is_none() {
            return Err(self.unsupported(format!("output {k} of dtype {}", t.dtype)));
        }
        let mut out = self.out_shapes.borrow_mut();
        if out.len() <= k {
            out.resize(k + 1, None);
        }
        out[k] = Some(shape.to_vec());
        Ok(())
    }
}

impl PrepareCtx<'_> {
    /// The per-tensor (scale, zero point) of `t`, required for quantized operands.
    pub fn per_tensor(&self, t: &Tensor, what: &str) -> Result<QuantParams> {
        let q = t.quantization.as_ref().ok_or_else(|| {
            self.invalid(format!(
                "{what} ({}) has no quantization parameters",
                t.dtype
            ))
        })?;
        let (scale, zero_point) = q
            .single()
            .ok_or_else(|| self.unsupported(format!("per-axis quantization of the {what}")))?;
        Ok(QuantParams::new(scale, zero_point))
    }

    /// Maps a kernel's prepare-time refusal to an error naming this node.
    pub fn quant_err(&self, e: QuantError) -> Error {
        self.invalid(e.to_string())
    }
}

/// A quantized kernel's run-time refusal (a length mismatch the preparation should have
/// caught) as an error.
pub(crate) fn kernel_err(e: QuantError) -> Error {
    Error::Internal(format!("kernel refused its arguments: {e}"))
}

pub(crate) fn fused(a: crate::options::Activation) -> FusedActivation {
    use crate::options::Activation as A;
    match a {
        A::None => FusedActivation::None,
        A::Relu => FusedActivation::Relu,
        A::ReluN1To1 => FusedActivation::ReluN1To1,
        A::Relu6 => FusedActivation::Relu6,
        A::Tanh => FusedActivation::Tanh,
        A::SignBit => FusedActivation::SignBit,
    }
}

/// Prepares one node.
pub(crate) fn prepare(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    if ctx.op.outputs.len() > MAX_OUTPUTS {
        return Err(ctx.unsupported(format!("more than {MAX_OUTPUTS} outputs")));
    }
    if let crate::options::OpOptions::Malformed(msg) = &ctx.op.options {
        return Err(ctx.invalid(format!("bad options: {msg}")));
    }
    let code = match &ctx.model.operator_codes()[ctx.op.opcode_index].code {
        OpCode::Builtin(c) => B(*c),
        OpCode::Custom(name) => {
            // A user registration wins over the custom operators ferrolite ships.
            return crate::custom::prepare(ctx, name)
                .or_else(|| detection::prepare_custom(ctx, name))
                .unwrap_or_else(|| {
                    Err(ctx.unsupported(format!("custom operator '{name}' is not registered")))
                });
        }
    };
    match code {
        B::CONV_2D => conv::prepare_conv(ctx),
        B::DEPTHWISE_CONV_2D => conv::prepare_depthwise(ctx),
        B::FULLY_CONNECTED => fully_connected::prepare(ctx),
        B::ADD => binary::prepare(ctx, binary::Op::Add),
        B::MUL => binary::prepare(ctx, binary::Op::Mul),
        B::AVERAGE_POOL_2D => pool::prepare(ctx, pool::Kind::Average),
        B::MAX_POOL_2D => pool::prepare(ctx, pool::Kind::Max),
        B::MEAN => reduce::prepare_mean(ctx),
        B::RESHAPE => reshape::prepare_reshape(ctx),
        B::SQUEEZE => reshape::prepare_squeeze(ctx),
        B::EXPAND_DIMS => reshape::prepare_expand_dims(ctx),
        B::SOFTMAX => softmax::prepare(ctx),
        B::DEQUANTIZE => quantize::prepare_dequantize(ctx),
        B::QUANTIZE => quantize::prepare_quantize(ctx),
        B::WHILE => control::prepare_while(ctx),
        B::IF => control::prepare_if(ctx),
        B::CALL_ONCE => control::prepare_call_once(ctx),
        B::VAR_HANDLE => control::prepare_var_handle(ctx),
        B::READ_VARIABLE => control::prepare_read_variable(ctx),
        B::ASSIGN_VARIABLE => control::prepare_assign_variable(ctx),
        _ => FAMILY_PREPARE
            .iter()
            .find_map(|prepare| prepare(ctx, code))
            .unwrap_or_else(|| Err(ctx.unsupported("operator is not implemented"))),
    }
}

type FamilyPrepare = fn(&PrepareCtx<'_>, B) -> Option<Result<Prepared>>;

/// Operator families that dispatch on the builtin code themselves.
const FAMILY_PREPARE: &[FamilyPrepare] = &[
    activations::prepare,
    elementwise::prepare,
    layout::prepare,
    indexing::prepare,
    resize::prepare,
    reductions::prepare,
    layers::prepare,
    lstm::prepare,
];

/// Every family's support declaration, for the support matrix.
pub(crate) const FAMILIES: &[&[registry::OpSupport]] = &[
    registry::CORE,
    control::SUPPORT,
    activations::SUPPORT,
    elementwise::SUPPORT,
    layout::SUPPORT,
    indexing::SUPPORT,
    resize::SUPPORT,
    reductions::SUPPORT,
    layers::SUPPORT,
    lstm::SUPPORT,
];
