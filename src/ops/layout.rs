//! Data movement operators: CONCATENATION, PAD, PADV2, MIRROR_PAD, TRANSPOSE, STRIDED_SLICE,
//! SLICE, SPLIT, SPLIT_V, PACK, UNPACK, SHAPE, TILE, BROADCAST_TO.
//!
//! None of them computes on values (except uint8 CONCATENATION, which rescales inputs whose
//! quantization differs from the output's, as the reference does), so each is implemented
//! once over the element size and works for every fixed-size dtype. Their shape and index
//! inputs (paddings, begin/end/strides, perm, multiples, splits) must be constant: everything
//! is computed at preparation, and nodes whose data inputs are constant too are folded.
//!
//! The helpers here are shared with the indexing family.

use ferrolite_kernels::layout::{GatherPlan, LayoutError};

use super::registry::{s, OpSupport};
use super::{cast, cast_mut, Eval, Inputs, Kernel, Loc, PrepareCtx, Prepared};
use crate::aligned::AlignedBuf;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::schema::BuiltinOperator as B;

mod concat;
mod pad;
mod shape;
mod slice;
mod split;
mod transpose;

/// The dtypes every byte-moving op handles.
pub(super) const ALL: &[&str] = &[
    "float32", "int8", "uint8", "int16", "int32", "int64", "bool",
];

pub(super) const SUPPORT: &[OpSupport] = &[
    s(
        B::CONCATENATION,
        ALL,
        "any axis; uint8 inputs rescaled to the output's quantization",
    ),
    s(B::PAD, ALL, "constant paddings (int32/int64)"),
    s(
        B::PADV2,
        ALL,
        "constant paddings; constant or run-time pad value",
    ),
    s(
        B::MIRROR_PAD,
        ALL,
        "REFLECT and SYMMETRIC; constant paddings",
    ),
    s(B::TRANSPOSE, ALL, "rank up to 8; constant perm"),
    s(
        B::STRIDED_SLICE,
        ALL,
        "all masks, negative strides, offset; constant begin/end/strides",
    ),
    s(B::SLICE, ALL, "constant begin/size (int32/int64), size −1"),
    s(B::SPLIT, ALL, "constant axis"),
    s(B::SPLIT_V, ALL, "constant size_splits (one −1) and axis"),
    s(B::PACK, ALL, ""),
    s(B::UNPACK, ALL, ""),
    s(
        B::SHAPE,
        ALL,
        "folded at preparation; int32 or int64 output",
    ),
    s(B::TILE, ALL, "constant multiples (int32/int64)"),
    s(
        B::BROADCAST_TO,
        ALL,
        "rank up to 8; constant shape (int32/int64)",
    ),
];

/// Prepares `code` if this family implements it.
pub(super) fn prepare(ctx: &PrepareCtx<'_>, code: B) -> Option<Result<Prepared>> {
    Some(match code {
        B::CONCATENATION => concat::prepare_concat(ctx),
        B::PACK => concat::prepare_pack(ctx),
        B::PAD | B::PADV2 => pad::prepare_pad(ctx),
        B::MIRROR_PAD => pad::prepare_mirror_pad(ctx),
        B::TRANSPOSE => transpose::prepare_transpose(ctx),
        B::TILE => transpose::prepare_tile(ctx),
        B::BROADCAST_TO => transpose::prepare_broadcast_to(ctx),
        B::STRIDED_SLICE => slice::prepare_strided_slice(ctx),
        B::SLICE => slice::prepare_slice(ctx),
        B::SPLIT => split::prepare_split(ctx),
        B::SPLIT_V => split::prepare_split_v(ctx),
        B::UNPACK => split::prepare_unpack(ctx),
        B::SHAPE => shape::prepare_shape(ctx),
        _ => return None,
    })
}

/// Bytes per element of `t`, for the dtypes the byte-moving kernels handle.
pub(super) fn elem_size(ctx: &PrepareCtx<'_>, t: &Tensor) -> Result<usize> {
    match t.dtype.size() {
        Some(n @ (1 | 2 | 4 | 8)) if t.dtype != DType::String => Ok(n),
        _ => Err(ctx.unsupported(format!("tensors of dtype {}", t.dtype))),
    }
}

/// Fails unless `t` has the dtype of `want`.
pub(super) fn same_dtype(
    ctx: &PrepareCtx<'_>,
    t: &Tensor,
    want: &Tensor,
    what: &str,
) -> Result<()> {
    if t.dtype == want.dtype {
        Ok(())
    } else {
        Err(ctx.invalid(format!(
            "{what} has dtype {}, expected {}",
            t.dtype, want.dtype
        )))
    }
}

/// A tensor's (scale, zero point) as TFLite's per-tensor `params` hold them: (0, 0) when it
/// is not quantized, the first entry for per-axis quantization.
pub(super) fn params_of(t: &Tensor) -> (f32, i64) {
    t.quantization
        .as_ref()
        .and_then(|q| Some((*q.scale.first()?, *q.zero_point.first()?)))
        .unwrap_or((0.0, 0))
}

/// Fails unless `a` and `b` have the same scale and zero point, as the reference requires of
/// ops that move quantized values without rescaling them.
pub(super) fn same_params(ctx: &PrepareCtx<'_>, a: &Tensor, b: &Tensor, what: &str) -> Result<()> {
    if params_of(a) == params_of(b) {
        Ok(())
    } else {
        Err(ctx.invalid(format!(
            "{what}: quantization {:?} differs from {:?} (no rescaling in this op)",
            params_of(a),
            params_of(b)
        )))
    }
}

/// Constant integer input `k` (int32, int64, int16 or int8) widened to `i64`. A non-constant
/// input is refused: shapes must be known at preparation.
pub(super) fn const_ints(ctx: &PrepareCtx<'_>, k: usize, what: &str) -> Result<Vec<i64>> {
    let t = ctx.input(k)?;
    let values = match t.dtype {
        DType::I32 => ctx
            .const_vec::<i32>(k)?
            .map(|v| v.into_iter().map(i64::from).collect()),
        DType::I64 => ctx.const_vec::<i64>(k)?,
        DType::I16 => ctx
            .const_vec::<i16>(k)?
            .map(|v| v.into_iter().map(i64::from).collect()),
        DType::I8 => ctx
            .const_vec::<i8>(k)?
            .map(|v| v.into_iter().map(i64::from).collect()),
        other => return Err(ctx.unsupported(format!("{what} of dtype {other}"))),
    };
    values.ok_or_else(|| ctx.unsupported(format!("non-constant {what} is not supported")))
}

/// Normalizes a possibly negative axis for a tensor of rank `rank`.
pub(super) fn axis_index(
    ctx: &PrepareCtx<'_>,
    axis: i64,
    rank: usize,
    what: &str,
) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(ctx.invalid(format!("{what} {axis} is out of range for rank {rank}")))
    }
}

/// A non-negative value as `usize`.
pub(super) fn to_usize(ctx: &PrepareCtx<'_>, v: i64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| ctx.invalid(format!("{what} {v} is negative")))
}

/// Element count of a shape, failing on overflow.
pub(super) fn numel(ctx: &PrepareCtx<'_>, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| ctx.invalid(format!("shape {shape:?} is too large")))
}

/// A plan-building or prepare-time kernel error as a model error.
pub(super) fn plan_err(ctx: &PrepareCtx<'_>, e: LayoutError) -> Error {
    ctx.invalid(e.to_string())
}

/// A run-time kernel refusal: an index read from a tensor is out of range (named with the
/// node), or a length the preparation should have guaranteed.
pub(super) fn run_err(loc: &str, e: LayoutError) -> Error {
    match e {
        LayoutError::IndexOutOfRange { .. } => Error::Input(format!("{loc}: {e}")),
        _ => Error::Internal(format!("{loc}: kernel refused its arguments: {e}")),
    }
}

/// Where a fill value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fill {
    /// These little-endian bytes (the first `esize` are used).
    Bytes([u8; 8]),
    /// The first element of input `k`, read at each run.
    Input(usize),
}

/// The fill bytes at run time.
fn fill_bytes(fill: Fill, inputs: &Inputs<'_>, esize: usize) -> Result<[u8; 8]> {
    match fill {
        Fill::Bytes(b) => Ok(b),
        Fill::Input(k) => {
            let src = inputs.bytes(k)?;
            let mut b = [0u8; 8];
            let v = src
                .get(..esize)
                .ok_or_else(|| Error::Internal("pad value tensor is empty".into()))?;
            b[..esize].copy_from_slice(v);
            Ok(b)
        }
    }
}

/// A gather copy of input 0 into output 0 ([`GatherPlan`]), for elements of `esize` bytes.
pub(super) struct GatherCopy {
    pub plan: GatherPlan,
    pub esize: usize,
    pub fill: Fill,
    pub loc: String,
}

impl GatherCopy {
    pub(super) fn new(ctx: &PrepareCtx<'_>, plan: GatherPlan, esize: usize, fill: Fill) -> Self {
        GatherCopy {
            plan,
            esize,
            fill,
            loc: ctx.loc().to_string(),
        }
    }
}

impl Kernel for GatherCopy {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        if self.plan.output_len() == 0 {
            return Ok(());
        }
        let src = if self.plan.input_needed() == 0 {
            &[][..]
        } else {
            e.inputs.bytes(0)?
        };
        let f = fill_bytes(self.fill, &e.inputs, self.esize)?;
        let r = match self.esize {
            1 => self.plan.run::<u8>(src, f[0], e.output),
            2 => self.plan.run::<u16>(
                cast(src)?,
                u16::from_le_bytes([f[0], f[1]]),
                cast_mut(e.output)?,
            ),
            4 => self.plan.run::<u32>(
                cast(src)?,
                u32::from_le_bytes([f[0], f[1], f[2], f[3]]),
                cast_mut(e.output)?,
            ),
            _ => self
                .plan
                .run::<u64>(cast(src)?, u64::from_le_bytes(f), cast_mut(e.output)?),
        };
        r.map_err(|err| run_err(&self.loc, err))
    }

    fn persistent_bytes(&self) -> usize {
        self.plan.table_bytes()
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0 || self.fill == Fill::Input(k)
    }
}

/// Outputs at most this large are computed at preparation when every input the kernel reads
/// is constant (shape arithmetic like SHAPE → STRIDED_SLICE → PACK feeding a RESHAPE).
const FOLD_LIMIT: usize = 1 << 16;

/// `Prepared::Kernel(kernel)`, or the kernel's result as a constant when every input it reads
/// is constant and the node has one small output.
pub(super) fn kernel_or_fold(ctx: &PrepareCtx<'_>, kernel: Box<dyn Kernel>) -> Result<Prepared> {
    let out = ctx.output(0)?;
    let n = numel(ctx, &ctx.output_shape(0)?)?;
    let bytes = out.dtype.bytes_for(n).unwrap_or(usize::MAX);
    if ctx.op.outputs.len() != 1 || bytes > FOLD_LIMIT {
        return Ok(Prepared::Kernel(kernel));
    }
    let mut bufs = Vec::new();
    let mut locs = Vec::new();
    for k in 0..ctx.op.inputs.len() {
        if ctx.input_opt(k).is_none() || !kernel.reads_input(k) {
            locs.push(Loc::None);
            continue;
        }
        let Some(bytes) = ctx.const_bytes(k) else {
            return Ok(Prepared::Kernel(kernel));
        };
        bufs.push(AlignedBuf::copy_of(bytes)?);
        locs.push(Loc::Persistent(bufs.len() - 1));
    }
    let mut output = AlignedBuf::zeroed(bytes)?;
    let mut scratch = AlignedBuf::zeroed(kernel.scratch_bytes())?;
    kernel
        .eval(Eval {
            inputs: Inputs {
                locs: &locs,
                pieces: &[],
                model: &[],
                persistent: &bufs,
            },
            output: output.as_mut_slice(),
            more_outputs: &mut [],
            scratch: scratch.as_mut_slice(),
            threads: 1,
        })
        .map_err(|e| ctx.invalid(format!("evaluating constant operands: {e}")))?;
    Ok(Prepared::Fold(output))
}
