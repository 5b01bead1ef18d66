//! Indexing operators: GATHER, GATHER_ND, EMBEDDING_LOOKUP (indices read at run time and
//! checked there: an out-of-range index is an error, never a wild read), DEPTH_TO_SPACE and
//! SPACE_TO_DEPTH (fixed rearrangements, planned at preparation).

use ferrolite_kernels::layout::{
    gather, gather_nd, strides, AxisMap, GatherGeometry, GatherPlan, IndexElem, LayoutError,
};

use super::layout::{
    elem_size, kernel_or_fold, numel, plan_err, run_err, same_dtype, Fill, GatherCopy, ALL,
};
use super::registry::{s, OpSupport};
use super::{cast, cast_mut, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::options::OpOptions;
use crate::schema::BuiltinOperator as B;

pub(super) const SUPPORT: &[OpSupport] = &[
    s(
        B::GATHER,
        ALL,
        "axis, batch_dims; int16/int32/int64 indices, checked at run time",
    ),
    s(
        B::GATHER_ND,
        ALL,
        "int16/int32/int64 indices, checked at run time",
    ),
    s(B::DEPTH_TO_SPACE, ALL, ""),
    s(B::SPACE_TO_DEPTH, ALL, ""),
    s(
        B::EMBEDDING_LOOKUP,
        &[
            "float32", "int8", "uint8", "int16", "hybrid", "int32", "int64", "bool",
        ],
        "int32 ids; int8/uint8 tables with float output dequantized (per-row scales)",
    ),
];

/// Prepares `code` if this family implements it.
pub(super) fn prepare(ctx: &PrepareCtx<'_>, code: B) -> Option<Result<Prepared>> {
    Some(match code {
        B::GATHER => prepare_gather(ctx),
        B::GATHER_ND => prepare_gather_nd(ctx),
        B::DEPTH_TO_SPACE => prepare_depth_to_space(ctx),
        B::SPACE_TO_DEPTH => prepare_space_to_depth(ctx),
        B::EMBEDDING_LOOKUP => prepare_embedding_lookup(ctx),
        _ => return None,
    })
}

/// The element type of an index tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexType {
    I16,
    I32,
    I64,
}

fn index_type(ctx: &PrepareCtx<'_>, k: usize) -> Result<IndexType> {
    match ctx.input(k)?.dtype {
        DType::I16 => Ok(IndexType::I16),
        DType::I32 => Ok(IndexType::I32),
        DType::I64 => Ok(IndexType::I64),
        other => Err(ctx.unsupported(format!("indices of dtype {other}"))),
    }
}

/// Runs `f` with input 0 and the output viewed as elements of `esize` bytes and input 1 as
/// indices of type `it`.
macro_rules! dispatch {
    ($e:expr, $esize:expr, $it:expr, $f:ident($($arg:expr),*)) => {{
        let src = $e.inputs.bytes(0)?;
        let idx = $e.inputs.bytes(1)?;
        let out = &mut *$e.output;
        match ($esize, $it) {
            (1, IndexType::I16) => $f($($arg,)* src, cast::<i16>(idx)?, out),
            (1, IndexType::I32) => $f($($arg,)* src, cast::<i32>(idx)?, out),
            (1, IndexType::I64) => $f($($arg,)* src, cast::<i64>(idx)?, out),
            (2, IndexType::I16) => $f($($arg,)* cast::<u16>(src)?, cast::<i16>(idx)?, cast_mut(out)?),
            (2, IndexType::I32) => $f($($arg,)* cast::<u16>(src)?, cast::<i32>(idx)?, cast_mut(out)?),
            (2, IndexType::I64) => $f($($arg,)* cast::<u16>(src)?, cast::<i64>(idx)?, cast_mut(out)?),
            (4, IndexType::I16) => $f($($arg,)* cast::<u32>(src)?, cast::<i16>(idx)?, cast_mut(out)?),
            (4, IndexType::I32) => $f($($arg,)* cast::<u32>(src)?, cast::<i32>(idx)?, cast_mut(out)?),
            (4, IndexType::I64) => $f($($arg,)* cast::<u32>(src)?, cast::<i64>(idx)?, cast_mut(out)?),
            (_, IndexType::I16) => $f($($arg,)* cast::<u64>(src)?, cast::<i16>(idx)?, cast_mut(out)?),
            (_, IndexType::I32) => $f($($arg,)* cast::<u64>(src)?, cast::<i32>(idx)?, cast_mut(out)?),
            (_, IndexType::I64) => $f($($arg,)* cast::<u64>(src)?, cast::<i64>(idx)?, cast_mut(out)?),
        }
    }};
}

struct Gather {
    g: GatherGeometry,
    esize: usize,
    it: IndexType,
    loc: String,
}

fn run_gather<T: Copy, I: IndexElem>(
    g: &GatherGeometry,
    src: &[T],
    idx: &[I],
    out: &mut [T],
) -> Result<(), LayoutError> {
    gather(g, src, idx, out)
}

impl Kernel for Gather {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        if self.g.count == 0 || self.g.inner == 0 || self.g.outer == 0 || self.g.batch == 0 {
            return Ok(());
        }
        dispatch!(e, self.esize, self.it, run_gather(&self.g))
            .map_err(|err| run_err(&self.loc, err))
    }
}

pub(super) fn prepare_gather(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let (axis, batch_dims) = match &ctx.op.options {
        OpOptions::Gather { axis, batch_dims } => (*axis, *batch_dims),
        OpOptions::None => (0, 0),
        _ => return Err(ctx.invalid("options do not belong to GATHER")),
    };
    let input = ctx.input(0)?;
    let positions = ctx.input(1)?;
    same_dtype(ctx, ctx.output(0)?, input, "output")?;
    let esize = elem_size(ctx, input)?;
    let it = index_type(ctx, 1)?;
    let rank = input.shape.len();
    let axis = super::layout::axis_index(ctx, i64::from(axis), rank, "axis")?;
    let prank = positions.shape.len() as i64;
    let bd = if batch_dims < 0 {
        i64::from(batch_dims) + prank
    } else {
        i64::from(batch_dims)
    };
    if bd < 0 || bd as usize > axis || bd > prank {
        return Err(ctx.invalid(format!(
            "batch_dims {batch_dims} must lie in [0, axis {axis}] and within the indices' rank {prank}"
        )));
    }
    let bd = bd as usize;
    if input.shape[..bd] != positions.shape[..bd] {
        return Err(ctx.invalid(format!(
            "batch dimensions of {:?} and indices {:?} differ",
            input.shape, positions.shape
        )));
    }
    let mut out_shape = input.shape[..axis].to_vec();
    out_shape.extend_from_slice(&positions.shape[bd..]);
    out_shape.extend_from_slice(&input.shape[axis + 1..]);
    ctx.set_output_shape(0, &out_shape)?;
    let g = GatherGeometry {
        batch: numel(ctx, &input.shape[..bd])?,
        outer: numel(ctx, &input.shape[bd..axis])?,
        axis: input.shape[axis],
        inner: numel(ctx, &input.shape[axis + 1..])?,
        count: numel(ctx, &positions.shape[bd..])?,
    };
    let kernel = Gather {
        g,
        esize,
        it,
        loc: ctx.loc().to_string(),
    };
    kernel_or_fold(ctx, Box::new(kernel))
}

struct GatherNd {
    dims: Vec<usize>,
    nd: usize,
    count: usize,
    esize: usize,
    it: IndexType,
    loc: String,
}

fn run_gather_nd<T: Copy, I: IndexElem>(
    dims: &[usize],
    nd: usize,
    count: usize,
    src: &[T],
    idx: &[I],
    out: &mut [T],
) -> Result<(), LayoutError> {
    gather_nd(dims, src, idx, nd, count, out)
}

impl Kernel for GatherNd {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        if e.output.is_empty() {
            return Ok(());
        }
        dispatch!(
            e,
            self.esize,
            self.it,
            run_gather_nd(&self.dims, self.nd, self.count)
        )
        .map_err(|err| run_err(&self.loc, err))
    }
}

pub(super) fn prepare_gather_nd(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let params = ctx.input(0)?;
    let indices = ctx.input(1)?;
    same_dtype(ctx, ctx.output(0)?, params, "output")?;
    let esize = elem_size(ctx, params)?;
    let it = index_type(ctx, 1)?;
    let (Some(&nd), false) = (indices.shape.last(), params.shape.is_empty()) else {
        return Err(ctx.invalid("params and indices must have rank at least 1"));
    };
    if nd > params.shape.len() {
        return Err(ctx.invalid(format!(
            "index depth {nd} exceeds the params rank {}",
            params.shape.len()
        )));
    }
    if params.numel == 0 && indices.numel != 0 {
        return Err(ctx.invalid("GATHER_ND from empty params"));
    }
    let lead = &indices.shape[..indices.shape.len() - 1];
    let mut out_shape = lead.to_vec();
    out_shape.extend_from_slice(&params.shape[nd..]);
    ctx.set_output_shape(0, &out_shape)?;
    let kernel = GatherNd {
        dims: params.shape.clone(),
        nd,
        count: numel(ctx, lead)?,
        esize,
        it,
        loc: ctx.loc().to_string(),
    };
    kernel_or_fold(ctx, Box::new(kernel))
}

/// DEPTH_TO_SPACE and SPACE_TO_DEPTH: block size and NHWC dimensions.
fn block_geometry(ctx: &PrepareCtx<'_>) -> Result<(usize, [usize; 4], usize)> {
    ctx.expect_arity(1, 1, 1)?;
    let OpOptions::BlockSize { block_size } = &ctx.op.options else {
        return Err(ctx.invalid("missing block size options"));
    };
    let input = ctx.input(0)?;
    same_dtype(ctx, ctx.output(0)?, input, "output")?;
    let esize = elem_size(ctx, input)?;
    let b = usize::try_from(*block_size)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| ctx.invalid(format!("block_size {block_size} must be positive")))?;
    let [n, h, w, c] = input.shape[..] else {
        return Err(ctx.invalid(format!("input must be 4-D, has shape {:?}", input.shape)));
    };
    Ok((b, [n, h, w, c], esize))
}

fn finish_plan(ctx: &PrepareCtx<'_>, axes: &[AxisMap], esize: usize) -> Result<Prepared> {
    let plan =
        GatherPlan::new_within(axes, ctx.env.max_memory_bytes).map_err(|e| plan_err(ctx, e))?;
    kernel_or_fold(
        ctx,
        Box::new(GatherCopy::new(ctx, plan, esize, Fill::Bytes([0; 8]))),
    )
}

/// `out[n, h·b + i, w·b + j, c] = in[n, h, w, (i·b + j)·C' + c]`, planned as a 6-D copy
/// over the output viewed as `[N, H, b, W, b, C']`.
pub(super) fn prepare_depth_to_space(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let (b, [n, h, w, c], esize) = block_geometry(ctx)?;
    let bb = b
        .checked_mul(b)
        .ok_or_else(|| ctx.invalid("block size overflows"))?;
    if c % bb != 0 {
        return Err(ctx.invalid(format!("channels {c} are not a multiple of {bb}")));
    }
    let oc = c / bb;
    let out_shape = [
        n,
        h.checked_mul(b)
            .ok_or_else(|| ctx.invalid("output too large"))?,
        w.checked_mul(b)
            .ok_or_else(|| ctx.invalid("output too large"))?,
        oc,
    ];
    ctx.set_output_shape(0, &out_shape)?;
    let st = strides(&[n, h, w, c]);
    let axes = [
        AxisMap::copy(n, 0, st[0] as isize),
        AxisMap::copy(h, 0, st[1] as isize),
        AxisMap::copy(b, 0, (b * oc) as isize),
        AxisMap::copy(w, 0, st[2] as isize),
        AxisMap::copy(b, 0, oc as isize),
        AxisMap::copy(oc, 0, 1),
    ];
    finish_plan(ctx, &axes, esize)
}

/// `out[n, h, w, (i·b + j)·C + c] = in[n, h·b + i, w·b + j, c]`, planned over the output
/// viewed as `[N, H/b, W/b, b, b, C]`.
pub(super) fn prepare_space_to_depth(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let (b, [n, h, w, c], esize) = block_geometry(ctx)?;
    if h % b != 0 || w % b != 0 {
        return Err(ctx.invalid(format!(
            "height {h} and width {w} are not multiples of the block size {b}"
        )));
    }
    let oc = c
        .checked_mul(b)
        .and_then(|x| x.checked_mul(b))
        .ok_or_else(|| ctx.invalid("output too large"))?;
    ctx.set_output_shape(0, &[n, h / b, w / b, oc])?;
    let st = strides(&[n, h, w, c]);
    let axes = [
        AxisMap::copy(n, 0, st[0] as isize),
        AxisMap::copy(h / b, 0, (b * st[1]) as isize),
        AxisMap::copy(w / b, 0, (b * st[2]) as isize),
        AxisMap::copy(b, 0, st[1] as isize),
        AxisMap::copy(b, 0, st[2] as isize),
        AxisMap::copy(c, 0, 1),
    ];
    finish_plan(ctx, &axes, esize)
}

/// EMBEDDING_LOOKUP dequantizing int8/uint8 rows to float (the reference's hybrid path):
/// `out = q · scale` with `q` read as a signed byte (the reference views uint8 tables through
/// an `int8_t` pointer too) and one scale per table or per row.
struct LookupHybrid {
    rows: usize,
    row_len: usize,
    scales: Vec<f32>,
    loc: String,
}

impl Kernel for LookupHybrid {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let ids: &[i32] = e.inputs.get(0)?;
        let table = e.inputs.bytes(1)?;
        let out: &mut [f32] = cast_mut(e.output)?;
        let n = self.row_len;
        if n == 0 {
            return Ok(());
        }
        for (o, &id) in out.chunks_exact_mut(n).zip(ids) {
            let r = usize::try_from(id)
                .ok()
                .filter(|&r| r < self.rows)
                .ok_or_else(|| {
                    run_err(
                        &self.loc,
                        LayoutError::IndexOutOfRange {
                            index: id.into(),
                            limit: self.rows,
                        },
                    )
                })?;
            let scale = if self.scales.len() == 1 {
                self.scales[0]
            } else {
                self.scales[r]
            };
            let src = table
                .get(r * n..(r + 1) * n)
                .ok_or_else(|| Error::Internal(format!("{}: table too short", self.loc)))?;
            for (d, &q) in o.iter_mut().zip(src) {
                *d = f32::from(q as i8) * scale;
            }
        }
        Ok(())
    }
}

struct LookupRows {
    g: GatherGeometry,
    esize: usize,
    loc: String,
}

fn run_rows<T: Copy>(
    g: &GatherGeometry,
    src: &[T],
    ids: &[i32],
    out: &mut [T],
) -> Result<(), LayoutError> {
    gather(g, src, ids, out)
}

impl Kernel for LookupRows {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        if self.g.count == 0 || self.g.inner == 0 {
            return Ok(());
        }
        let ids: &[i32] = e.inputs.get(0)?;
        let src = e.inputs.bytes(1)?;
        let out = &mut *e.output;
        let g = &self.g;
        let r = match self.esize {
            1 => run_rows(g, src, ids, out),
            2 => run_rows(g, cast::<u16>(src)?, ids, cast_mut(out)?),
            4 => run_rows(g, cast::<u32>(src)?, ids, cast_mut(out)?),
            _ => run_rows(g, cast::<u64>(src)?, ids, cast_mut(out)?),
        };
        r.map_err(|err| run_err(&self.loc, err))
    }
}

pub(super) fn prepare_embedding_lookup(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let ids = ctx.input(0)?;
    let table = ctx.input(1)?;
    let output = ctx.output(0)?;
    if ids.shape.len() != 1 || ids.dtype != DType::I32 {
        return Err(ctx.invalid(format!(
            "ids must be an int32 vector, are {}{:?}",
            ids.dtype, ids.shape
        )));
    }
    if table.shape.len() < 2 {
        return Err(ctx.invalid(format!(
            "table must have rank 2 or more, has shape {:?}",
            table.shape
        )));
    }
    let rows = table.shape[0];
    let row_len = numel(ctx, &table.shape[1..])?;
    let mut out_shape = table.shape.clone();
    out_shape[0] = ids.shape[0];
    ctx.set_output_shape(0, &out_shape)?;
    let loc = ctx.loc().to_string();
    let per_axis = table
        .quantization
        .as_ref()
        .is_some_and(|q| q.scale.len() > 1);
    if table.dtype != output.dtype && output.dtype == DType::F32 {
        if !matches!(table.dtype, DType::I8 | DType::U8) {
            return Err(ctx.unsupported_dtypes());
        }
        let q = table
            .quantization
            .as_ref()
            .ok_or_else(|| ctx.invalid("quantized table has no quantization parameters"))?;
        if q.scale.is_empty() {
            return Err(ctx.invalid("quantized table has no scale"));
        }
        // The reference only implements symmetric tables here.
        if q.zero_point.first().copied().unwrap_or(0) != 0 {
            return Err(
                ctx.unsupported("EMBEDDING_LOOKUP of an asymmetric (non-zero zero point) table")
            );
        }
        if per_axis && (q.axis != 0 || q.scale.len() != rows) {
            return Err(ctx.invalid("per-row scales must run along dimension 0, one per row"));
        }
        return kernel_or_fold(
            ctx,
            Box::new(LookupHybrid {
                rows,
                row_len,
                scales: q.scale.clone(),
                loc,
            }),
        );
    }
    same_dtype(ctx, output, table, "output")?;
    if per_axis {
        return Err(ctx.invalid("per-axis quantization needs a float output"));
    }
    let esize = elem_size(ctx, table)?;
    let g = GatherGeometry {
        batch: 1,
        outer: 1,
        axis: rows,
        inner: row_len,
        count: ids.shape[0],
    };
    kernel_or_fold(ctx, Box::new(LookupRows { g, esize, loc }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aligned::AlignedBuf;
    use crate::ops::{Inputs, Loc};

    /// Runs `kernel` on two constant inputs.
    fn run(kernel: &dyn Kernel, a: &[u8], b: &[u8], out: &mut [u8]) -> Result<()> {
        let bufs = [
            AlignedBuf::copy_of(a).unwrap(),
            AlignedBuf::copy_of(b).unwrap(),
        ];
        let locs = [Loc::Persistent(0), Loc::Persistent(1)];
        kernel.eval(Eval {
            inputs: Inputs {
                locs: &locs,
                pieces: &[],
                model: &[],
                persistent: &bufs,
            },
            output: out,
            more_outputs: &mut [],
            scratch: &mut [],
            threads: 1,
        })
    }

    #[test]
    fn out_of_range_indices_are_errors_not_panics() {
        let k = Gather {
            g: GatherGeometry {
                batch: 1,
                outer: 1,
                axis: 3,
                inner: 2,
                count: 2,
            },
            esize: 4,
            it: IndexType::I32,
            loc: "op 0".into(),
        };
        let table: Vec<u8> = (0..6i32).flat_map(|v| v.to_le_bytes()).collect();
        let mut out = vec![0u8; 16];
        let idx = |v: [i32; 2]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        run(&k, &table, &idx([2, 0]), &mut out).unwrap();
        let got: Vec<i32> = out
            .chunks(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, [4, 5, 0, 1]);
        for bad in [[3, 0], [0, -1], [i32::MAX, 0]] {
            let e = run(&k, &table, &idx(bad), &mut out).unwrap_err();
            assert!(matches!(e, Error::Input(_)), "{e}");
        }
        let lookup = LookupHybrid {
            rows: 2,
            row_len: 2,
            scales: vec![0.5],
            loc: "op 0".into(),
        };
        let mut out = vec![0u8; 8];
        run(&lookup, &2i32.to_le_bytes(), &[1, 2, 3, 4], &mut out).unwrap_err();
        run(&lookup, &1i32.to_le_bytes(), &[1, 2, 0xff, 4], &mut out).unwrap();
        // 0xff is read as int8 −1, as the reference does for uint8 tables too.
        assert_eq!(f32::from_le_bytes(out[..4].try_into().unwrap()), -0.5);
        assert_eq!(f32::from_le_bytes(out[4..].try_into().unwrap()), 2.0);
    }
}
