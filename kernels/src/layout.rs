//! Data movement: kernels that only rearrange elements (transpose, slicing, padding, tiling,
//! broadcasting, concatenation, splitting, gathering).
//!
//! They never look at element values, so each works for any element type; the interpreter
//! instantiates them for 1-, 2-, 4- and 8-byte elements and covers every dtype that way.
//!
//! Most of these ops are one [`GatherPlan`]: every output axis says, per position, which input
//! offset it reads (or that it writes a fill value). The plan is built once at preparation,
//! validated against the input length there and at each run, and the run only copies. Plans
//! merge axes that are contiguous in both tensors, so a slice of whole rows becomes a few long
//! `copy_from_slice` calls.

use core::fmt;

/// Most axes a plan accepts (TFLite's largest data-movement rank is 8).
pub const MAX_RANK: usize = 16;

/// Why a data-movement kernel cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// A buffer does not have the length the plan was built for.
    BufferSize {
        /// Which buffer.
        what: &'static str,
        /// Elements needed.
        needed: usize,
        /// Elements given.
        got: usize,
    },
    /// An index read from a tensor lies outside the indexed range.
    IndexOutOfRange {
        /// The index value.
        index: i64,
        /// The size of the indexed range (valid indices are `0..limit`).
        limit: usize,
    },
    /// A plan's geometry is inconsistent (negative offsets, overflow, too many axes).
    BadGeometry(&'static str),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::BufferSize { what, needed, got } => {
                write!(f, "{what} holds {got} elements, {needed} needed")
            }
            LayoutError::IndexOutOfRange { index, limit } => {
                write!(f, "index {index} is outside [0, {limit})")
            }
            LayoutError::BadGeometry(what) => write!(f, "bad geometry: {what}"),
        }
    }
}

impl std::error::Error for LayoutError {}

/// A stretch of consecutive output positions along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Output positions covered.
    pub len: usize,
    /// `Some((start, step))`: position `k` of the run reads input offset `start + k·step`
    /// (offsets in elements, already multiplied by the input axis stride). `None`: the run
    /// holds the fill value.
    pub src: Option<(usize, isize)>,
}

/// Where the positions of one output axis read from: a sequence of runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AxisMap {
    runs: Vec<Run>,
}

impl AxisMap {
    /// An empty axis (length 0) to which runs are appended.
    pub fn new() -> Self {
        Self::default()
    }

    /// `len` positions reading `start, start + step, …`.
    pub fn copy(len: usize, start: usize, step: isize) -> Self {
        let mut m = Self::new();
        m.push_copy(len, start, step);
        m
    }

    /// Appends `len` positions reading `start, start + step, …` (nothing when `len` is 0).
    pub fn push_copy(&mut self, len: usize, start: usize, step: isize) -> &mut Self {
        if len > 0 {
            self.runs.push(Run {
                len,
                src: Some((start, step)),
            });
        }
        self
    }

    /// Appends `len` positions holding the fill value (nothing when `len` is 0).
    pub fn push_fill(&mut self, len: usize) -> &mut Self {
        if len > 0 {
            self.runs.push(Run { len, src: None });
        }
        self
    }

    /// The number of output positions.
    pub fn len(&self) -> usize {
        self.runs.iter().map(|r| r.len).sum()
    }

    /// Whether the axis has no positions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The runs, in output order.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// The one copy run of a single-run axis.
    fn single_copy(&self) -> Option<(usize, usize, isize)> {
        match self.runs.as_slice() {
            [Run {
                len,
                src: Some((s, t)),
            }] => Some((*len, *s, *t)),
            _ => None,
        }
    }

    /// Largest input offset read, checking that no offset is negative or overflows.
    fn max_offset(&self) -> Result<Option<usize>, LayoutError> {
        let mut max = None;
        for r in &self.runs {
            if let Some((s, t)) = r.src {
                let last = last_offset(s, t, r.len)?;
                max = Some(max.unwrap_or(0).max(s).max(last));
            }
        }
        Ok(max)
    }

    /// The offset each position reads, `None` for fill positions.
    fn table(&self) -> Vec<Option<usize>> {
        let mut out = Vec::with_capacity(self.len());
        for r in &self.runs {
            for k in 0..r.len {
                out.push(
                    r.src.map(|(s, t)| {
                        (s as isize).wrapping_add(t.wrapping_mul(k as isize)) as usize
                    }),
                );
            }
        }
        out
    }
}

/// The offset of the last position of a run, or an error if any position is negative or
/// overflows.
fn last_offset(start: usize, step: isize, len: usize) -> Result<usize, LayoutError> {
    let bad = LayoutError::BadGeometry("run offset overflows or is negative");
    let start_i = isize::try_from(start).map_err(|_| bad.clone())?;
    let span = isize::try_from(len.saturating_sub(1))
        .ok()
        .and_then(|n| n.checked_mul(step))
        .ok_or(bad.clone())?;
    let last = start_i.checked_add(span).ok_or(bad.clone())?;
    usize::try_from(last).map_err(|_| bad)
}

/// A prepared gather copy: `output[i] = input[offset(i)]` or the fill value, for a row-major
/// output whose axes are described by [`AxisMap`]s.
#[derive(Debug, Clone)]
pub struct GatherPlan {
    /// Offset added to every read.
    base: usize,
    /// Outer axes, each as the offset (or fill) of every position.
    outer: Vec<Vec<Option<usize>>>,
    /// The innermost axis.
    inner: Vec<Run>,
    inner_len: usize,
    out_len: usize,
    /// Input elements needed: one past the largest offset read (0 when nothing is read).
    src_needed: usize,
}

impl GatherPlan {
    /// Builds a plan from the output axes, outermost first.
    pub fn new(axes: &[AxisMap]) -> Result<Self, LayoutError> {
        Self::new_within(axes, usize::MAX)
    }

    /// Like [`new`](Self::new), but refuses a plan whose per-position tables would take more
    /// than `max_table_bytes` (checked before they are allocated: a hostile shape can ask for
    /// an outer axis of hundreds of millions of positions).
    pub fn new_within(axes: &[AxisMap], max_table_bytes: usize) -> Result<Self, LayoutError> {
        if axes.len() > MAX_RANK {
            return Err(LayoutError::BadGeometry("too many axes"));
        }
        let out_len = axes
            .iter()
            .try_fold(1usize, |n, a| n.checked_mul(a.len()))
            .ok_or(LayoutError::BadGeometry("output size overflows"))?;
        for a in axes {
            a.max_offset()?;
        }
        if out_len == 0 {
            // Nothing is copied. The other axes may still be long (a [huge, 0] output has no
            // elements to bound them), and their tables hold one entry per position.
            return Ok(GatherPlan {
                base: 0,
                outer: Vec::new(),
                inner: Vec::new(),
                inner_len: 0,
                out_len: 0,
                src_needed: 0,
            });
        }
        // Fold single-position copy axes into the base offset: they select one input slice.
        let mut base = 0usize;
        let mut kept: Vec<AxisMap> = Vec::with_capacity(axes.len());
        for a in axes {
            match a.single_copy() {
                Some((1, s, _)) => {
                    base = base
                        .checked_add(s)
                        .ok_or(LayoutError::BadGeometry("offset overflows"))?
                }
                _ => kept.push(a.clone()),
            }
        }
        // Merge neighbours that are contiguous in both tensors: an outer axis whose step is
        // the inner axis' whole extent.
        let mut merged: Vec<AxisMap> = Vec::with_capacity(kept.len());
        for a in kept {
            if let (Some(prev), Some((n, s, t))) = (merged.last_mut(), a.single_copy()) {
                if let Some((m, ps, pt)) = prev.single_copy() {
                    if (n as isize).checked_mul(t) == Some(pt) {
                        if let Some(len) = m.checked_mul(n) {
                            if let Some(start) = ps.checked_add(s) {
                                *prev = AxisMap::copy(len, start, t);
                                continue;
                            }
                        }
                    }
                }
            }
            merged.push(a);
        }
        let inner_axis = merged.pop().unwrap_or_else(|| AxisMap::copy(1, 0, 0));
        let table_bytes = merged
            .iter()
            .try_fold(0usize, |n, a| n.checked_add(a.len()))
            .and_then(|n| n.checked_mul(std::mem::size_of::<Option<usize>>()))
            .ok_or(LayoutError::BadGeometry("index tables overflow"))?;
        if table_bytes > max_table_bytes {
            return Err(LayoutError::BadGeometry(
                "index tables would exceed the memory limit",
            ));
        }
        let mut src_needed = base;
        let mut any_read = inner_axis.max_offset()?.is_some();
        src_needed = src_needed
            .checked_add(inner_axis.max_offset()?.unwrap_or(0))
            .ok_or(LayoutError::BadGeometry("offset overflows"))?;
        for a in &merged {
            match a.max_offset()? {
                Some(m) => {
                    src_needed = src_needed
                        .checked_add(m)
                        .ok_or(LayoutError::BadGeometry("offset overflows"))?
                }
                // An outer axis that only fills: nothing is read at all.
                None if !a.is_empty() => any_read = false,
                None => {}
            }
        }
        let src_needed = if any_read && out_len > 0 {
            src_needed
                .checked_add(1)
                .ok_or(LayoutError::BadGeometry("offset overflows"))?
        } else {
            0
        };
        Ok(GatherPlan {
            base,
            outer: merged.iter().map(AxisMap::table).collect(),
            inner_len: inner_axis.len(),
            inner: inner_axis.runs,
            out_len,
            src_needed,
        })
    }

    /// Output elements.
    pub fn output_len(&self) -> usize {
        self.out_len
    }

    /// Bytes held by the plan's per-position tables.
    pub fn table_bytes(&self) -> usize {
        self.outer
            .iter()
            .map(|t| t.len() * std::mem::size_of::<Option<usize>>())
            .sum::<usize>()
            + self.inner.len() * std::mem::size_of::<Run>()
    }

    /// Input elements the plan reads from (one past the largest offset).
    pub fn input_needed(&self) -> usize {
        self.src_needed
    }

    /// Runs the plan. `src` must hold at least [`input_needed`](Self::input_needed) elements
    /// and `dst` exactly [`output_len`](Self::output_len).
    pub fn run<T: Copy>(&self, src: &[T], fill: T, dst: &mut [T]) -> Result<(), LayoutError> {
        self.run_shifted(src, fill, dst, 0)
    }

    /// Runs the plan with every read moved `shift` elements further into `src` (a slice whose
    /// start is only known at run time); `src` must hold `input_needed() + shift` elements.
    pub fn run_shifted<T: Copy>(
        &self,
        src: &[T],
        fill: T,
        dst: &mut [T],
        shift: usize,
    ) -> Result<(), LayoutError> {
        let src = if self.src_needed == 0 {
            src
        } else {
            let end = self
                .src_needed
                .checked_add(shift)
                .ok_or(LayoutError::BadGeometry("shift overflows"))?;
            src.get(shift..end).ok_or(LayoutError::BufferSize {
                what: "input",
                needed: end,
                got: src.len(),
            })?
        };
        if dst.len() != self.out_len {
            return Err(LayoutError::BufferSize {
                what: "output",
                needed: self.out_len,
                got: dst.len(),
            });
        }
        if src.len() < self.src_needed {
            return Err(LayoutError::BufferSize {
                what: "input",
                needed: self.src_needed,
                got: src.len(),
            });
        }
        if self.out_len == 0 {
            return Ok(());
        }
        let mut index = [0usize; MAX_RANK];
        let outer = &self.outer;
        for row in dst.chunks_exact_mut(self.inner_len) {
            let mut offset = Some(self.base);
            for (d, table) in outer.iter().enumerate() {
                offset = match (offset, table[index[d]]) {
                    (Some(o), Some(t)) => Some(o + t),
                    _ => None,
                };
            }
            match offset {
                Some(o) => self.row(src, fill, o, row),
                None => row.fill(fill),
            }
            // Advance the outer odometer, last axis fastest.
            for d in (0..outer.len()).rev() {
                index[d] += 1;
                if index[d] < outer[d].len() {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok(())
    }

    /// Writes one innermost row whose reads start at `base`.
    fn row<T: Copy>(&self, src: &[T], fill: T, base: usize, row: &mut [T]) {
        let mut at = 0;
        for r in &self.inner {
            let d = &mut row[at..at + r.len];
            at += r.len;
            match r.src {
                None => d.fill(fill),
                Some((s, 1)) => d.copy_from_slice(&src[base + s..base + s + r.len]),
                Some((s, 0)) => d.fill(src[base + s]),
                Some((s, t)) => {
                    let mut p = (base + s) as isize;
                    for x in d.iter_mut() {
                        *x = src[p as usize];
                        p += t;
                    }
                }
            }
        }
    }
}

/// Row-major strides (in elements) of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

/// Copies `rows` blocks of `len` elements: block `r` goes from
/// `src[src_off + r·src_stride ..]` to `dst[dst_off + r·dst_stride ..]`. This is one input of a
/// concatenation (or one output of a split) along an axis with `rows` outer positions.
#[allow(clippy::too_many_arguments)]
pub fn copy_blocks<T: Copy>(
    src: &[T],
    src_off: usize,
    src_stride: usize,
    dst: &mut [T],
    dst_off: usize,
    dst_stride: usize,
    rows: usize,
    len: usize,
) -> Result<(), LayoutError> {
    if rows == 0 || len == 0 {
        return Ok(());
    }
    let end = |off: usize, stride: usize| {
        (rows - 1)
            .checked_mul(stride)
            .and_then(|x| x.checked_add(off))
            .and_then(|x| x.checked_add(len))
    };
    let need_src = end(src_off, src_stride).ok_or(LayoutError::BadGeometry("overflow"))?;
    let need_dst = end(dst_off, dst_stride).ok_or(LayoutError::BadGeometry("overflow"))?;
    if src.len() < need_src {
        return Err(LayoutError::BufferSize {
            what: "input",
            needed: need_src,
            got: src.len(),
        });
    }
    if dst.len() < need_dst {
        return Err(LayoutError::BufferSize {
            what: "output",
            needed: need_dst,
            got: dst.len(),
        });
    }
    for r in 0..rows {
        let s = src_off + r * src_stride;
        let d = dst_off + r * dst_stride;
        dst[d..d + len].copy_from_slice(&src[s..s + len]);
    }
    Ok(())
}

/// uint8 requantization of TFLite's reference `ConcatenationWithScaling`, for an input whose
/// scale or zero point differs from the output's: `clamp(round(q·scale + bias) + zp_out)` with
/// `scale = s_in · (1/s_out)` and `bias = −zp_in · scale`, all in `f32`, rounding half away
/// from zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RescaleU8 {
    pub scale: f32,
    pub bias: f32,
    pub output_zero_point: i32,
}

impl RescaleU8 {
    /// From the input's and the output's (scale, zero point), computed as the reference does.
    pub fn new(
        input_scale: f32,
        input_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
    ) -> Self {
        let inverse = 1.0f32 / output_scale;
        let scale = input_scale * inverse;
        let bias = -(input_zero_point as f32) * scale;
        RescaleU8 {
            scale,
            bias,
            output_zero_point,
        }
    }

    /// Rescales one value.
    #[inline]
    pub fn apply(&self, q: u8) -> u8 {
        let r = (q as f32 * self.scale + self.bias).round();
        // The product is bounded by 255·scale; `as` saturates where C++ would be undefined.
        let v = (r as i32).wrapping_add(self.output_zero_point);
        v.clamp(0, 255) as u8
    }

    /// Rescales `src` into `dst` (same lengths).
    pub fn run(&self, src: &[u8], dst: &mut [u8]) -> Result<(), LayoutError> {
        if src.len() != dst.len() {
            return Err(LayoutError::BufferSize {
                what: "output",
                needed: src.len(),
                got: dst.len(),
            });
        }
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = self.apply(s);
        }
        Ok(())
    }
}

/// Integer types that index tensors (GATHER positions, GATHER_ND indices, lookup ids).
pub trait IndexElem: Copy {
    fn to_i64(self) -> i64;
}

impl IndexElem for i16 {
    fn to_i64(self) -> i64 {
        self.into()
    }
}

impl IndexElem for i32 {
    fn to_i64(self) -> i64 {
        self.into()
    }
}

impl IndexElem for i64 {
    fn to_i64(self) -> i64 {
        self
    }
}

/// Geometry of a GATHER: the input is `[batch, outer, axis, inner]`, the indices
/// `[batch, count]`, the output `[batch, outer, count, inner]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatherGeometry {
    pub batch: usize,
    pub outer: usize,
    pub axis: usize,
    pub inner: usize,
    pub count: usize,
}

/// GATHER. An index outside `[0, axis)` is an error (TFLite's gather fails the same way);
/// the output may then be partly written.
pub fn gather<T: Copy, I: IndexElem>(
    g: &GatherGeometry,
    src: &[T],
    indices: &[I],
    dst: &mut [T],
) -> Result<(), LayoutError> {
    let size = |dims: &[usize]| dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let overflow = LayoutError::BadGeometry("size overflows");
    let n_src = size(&[g.batch, g.outer, g.axis, g.inner]).ok_or(overflow.clone())?;
    let n_dst = size(&[g.batch, g.outer, g.count, g.inner]).ok_or(overflow.clone())?;
    let n_idx = size(&[g.batch, g.count]).ok_or(overflow)?;
    check_len("input", n_src, src.len())?;
    check_len("output", n_dst, dst.len())?;
    check_len("indices", n_idx, indices.len())?;
    if n_dst == 0 {
        return Ok(());
    }
    let mut out = dst.chunks_exact_mut(g.inner.max(1));
    for b in 0..g.batch {
        let idx = &indices[b * g.count..(b + 1) * g.count];
        for o in 0..g.outer {
            let base = (b * g.outer + o) * g.axis;
            for &i in idx {
                let v = i.to_i64();
                let i = usize::try_from(v).ok().filter(|&i| i < g.axis).ok_or(
                    LayoutError::IndexOutOfRange {
                        index: v,
                        limit: g.axis,
                    },
                )?;
                let s = (base + i) * g.inner;
                if let Some(d) = out.next() {
                    d.copy_from_slice(&src[s..s + g.inner]);
                }
            }
        }
    }
    Ok(())
}

/// GATHER_ND over `params` of shape `dims`: each of the `count` index tuples (`nd` values)
/// selects the slice `params[i0, …, i(nd−1), …]`. Every index must lie within its dimension,
/// else the call fails (as TFLite's does; the output may then be partly written).
pub fn gather_nd<T: Copy, I: IndexElem>(
    dims: &[usize],
    src: &[T],
    indices: &[I],
    nd: usize,
    count: usize,
    dst: &mut [T],
) -> Result<(), LayoutError> {
    if nd > dims.len() {
        return Err(LayoutError::BadGeometry(
            "index depth exceeds the params rank",
        ));
    }
    let overflow = LayoutError::BadGeometry("size overflows");
    let total = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or(overflow.clone())?;
    let slice: usize = dims[nd..].iter().product();
    check_len("input", total, src.len())?;
    check_len(
        "indices",
        count.checked_mul(nd).ok_or(overflow.clone())?,
        indices.len(),
    )?;
    check_len(
        "output",
        count.checked_mul(slice).ok_or(overflow)?,
        dst.len(),
    )?;
    let st = strides(dims);
    for k in 0..count {
        let tuple = &indices[k * nd..(k + 1) * nd];
        let mut from = 0usize;
        for (j, i) in tuple.iter().enumerate() {
            let v = i.to_i64();
            let i = usize::try_from(v).ok().filter(|&i| i < dims[j]).ok_or(
                LayoutError::IndexOutOfRange {
                    index: v,
                    limit: dims[j],
                },
            )?;
            from += i * st[j];
        }
        dst[k * slice..(k + 1) * slice].copy_from_slice(&src[from..from + slice]);
    }
    Ok(())
}

fn check_len(what: &'static str, needed: usize, got: usize) -> Result<(), LayoutError> {
    if needed == got {
        Ok(())
    } else {
        Err(LayoutError::BufferSize { what, needed, got })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive row-major index → multi-index.
    fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
        let mut idx = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            idx[d] = i % shape[d];
            i /= shape[d];
        }
        idx
    }

    fn ravel(idx: &[usize], shape: &[usize]) -> usize {
        idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
    }

    #[test]
    fn transpose_matches_naive() {
        let shape = [2, 3, 4, 5];
        let src: Vec<u32> = (0..120).collect();
        let st = strides(&shape);
        for perm in [
            [0, 1, 2, 3],
            [3, 2, 1, 0],
            [0, 3, 1, 2],
            [1, 0, 3, 2],
            [2, 0, 1, 3],
        ] {
            let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
            let axes: Vec<AxisMap> = perm
                .iter()
                .map(|&p| AxisMap::copy(shape[p], 0, st[p] as isize))
                .collect();
            let plan = GatherPlan::new(&axes).unwrap();
            let mut dst = vec![0u32; 120];
            plan.run(&src, 0, &mut dst).unwrap();
            for (i, &v) in dst.iter().enumerate() {
                let o = unravel(i, &out_shape);
                let mut idx = [0; 4];
                for (d, &p) in perm.iter().enumerate() {
                    idx[p] = o[d];
                }
                assert_eq!(v as usize, ravel(&idx, &shape), "perm {perm:?} at {i}");
            }
        }
    }

    #[test]
    fn pad_reverse_and_broadcast_match_naive() {
        // Input [3, 4]; output rows: pad 1 | rows reversed | pad 2; columns: broadcast of
        // column 2 for 2 positions, then the 4 columns, then fill.
        let src: Vec<i16> = (0..12).collect();
        let mut rows = AxisMap::new();
        rows.push_fill(1).push_copy(3, 8, -4).push_fill(2);
        let mut cols = AxisMap::new();
        cols.push_copy(2, 2, 0).push_copy(4, 0, 1).push_fill(1);
        let plan = GatherPlan::new(&[rows, cols]).unwrap();
        assert_eq!(plan.input_needed(), 12);
        let mut dst = vec![0i16; 6 * 7];
        plan.run(&src, -1, &mut dst).unwrap();
        for r in 0..6 {
            for c in 0..7 {
                let want = match (r, c) {
                    (0, _) | (4.., _) | (_, 6) => -1,
                    (r, c) => {
                        let row = 2 - (r - 1);
                        let col = if c < 2 { 2 } else { c - 2 };
                        (row * 4 + col) as i16
                    }
                };
                assert_eq!(dst[r * 7 + c], want, "({r}, {c})");
            }
        }
    }

    #[test]
    fn merges_contiguous_axes_and_checks_lengths() {
        // A slice of whole rows of a [4, 3, 2] tensor: rows 1..3.
        let axes = [
            AxisMap::copy(2, 6, 6),
            AxisMap::copy(3, 0, 2),
            AxisMap::copy(2, 0, 1),
        ];
        let plan = GatherPlan::new(&axes).unwrap();
        assert!(plan.outer.is_empty(), "all three axes merge into one run");
        let src: Vec<u8> = (0..24).collect();
        let mut dst = vec![0u8; 12];
        plan.run(&src, 0, &mut dst).unwrap();
        assert_eq!(dst, (6..18).collect::<Vec<u8>>());
        assert!(plan.run(&src[..17], 0, &mut dst).is_err());
        assert!(plan.run(&src, 0, &mut dst[..11]).is_err());
        // Shifted by one row of the [4, 3, 2] input: rows 2..4.
        plan.run_shifted(&src, 0, &mut dst, 6).unwrap();
        assert_eq!(dst, (12..24).collect::<Vec<u8>>());
        assert!(plan.run_shifted(&src, 0, &mut dst, 7).is_err());
        // Negative offsets are refused when the plan is built.
        assert!(GatherPlan::new(&[AxisMap::copy(3, 1, -1)]).is_err());
    }

    #[test]
    fn copy_blocks_concatenates() {
        let a: Vec<u8> = (0..6).collect(); // [2, 3]
        let b: Vec<u8> = (10..14).collect(); // [2, 2]
        let mut out = vec![0u8; 10]; // [2, 5]
        copy_blocks(&a, 0, 3, &mut out, 0, 5, 2, 3).unwrap();
        copy_blocks(&b, 0, 2, &mut out, 3, 5, 2, 2).unwrap();
        assert_eq!(out, [0, 1, 2, 10, 11, 3, 4, 5, 12, 13]);
        assert!(copy_blocks(&b, 0, 2, &mut out, 4, 5, 2, 2).is_err());
    }

    #[test]
    fn rescale_u8_matches_formula() {
        let r = RescaleU8::new(0.5, 10, 0.25, 3);
        for q in 0..=255u8 {
            let want = (((q as f32 - 10.0) * 2.0).round() + 3.0).clamp(0.0, 255.0);
            assert_eq!(r.apply(q) as f32, want, "q = {q}");
        }
    }

    #[test]
    fn gather_with_batch_and_bounds() {
        // src [2 batch, 1 outer, 3 axis, 2 inner]
        let src: Vec<i32> = (0..12).collect();
        let g = GatherGeometry {
            batch: 2,
            outer: 1,
            axis: 3,
            inner: 2,
            count: 2,
        };
        let mut dst = vec![0; 8];
        gather(&g, &src, &[2i64, 0, 1, 1], &mut dst).unwrap();
        assert_eq!(dst, [4, 5, 0, 1, 8, 9, 8, 9]);
        assert_eq!(
            gather(&g, &src, &[3i32, 0, 0, 0], &mut dst),
            Err(LayoutError::IndexOutOfRange { index: 3, limit: 3 })
        );
        assert!(gather(&g, &src, &[-1i16, 0, 0, 0], &mut dst).is_err());
    }

    #[test]
    fn gather_nd_flat_offsets() {
        let dims = [3, 4];
        let src: Vec<u8> = (0..12).collect();
        let mut dst = vec![0u8; 2];
        gather_nd(&dims, &src, &[2i32, 1, 0, 3], 2, 2, &mut dst).unwrap();
        assert_eq!(dst, [9, 3]);
        let mut rows = vec![0u8; 8];
        gather_nd(&dims, &src, &[1i32, 2], 1, 2, &mut rows).unwrap();
        assert_eq!(rows, [4, 5, 6, 7, 8, 9, 10, 11]);
        assert!(gather_nd(&dims, &src, &[3i32], 1, 1, &mut rows[..4]).is_err());
        assert!(gather_nd(&dims, &src, &[0i32, -1], 2, 1, &mut dst[..1]).is_err());
        // In range as a flat offset (0·4 + 5) but not per dimension: refused, as on REF.
        assert_eq!(
            gather_nd(&dims, &src, &[0i32, 5], 2, 1, &mut dst[..1]),
            Err(LayoutError::IndexOutOfRange { index: 5, limit: 4 })
        );
    }
}
