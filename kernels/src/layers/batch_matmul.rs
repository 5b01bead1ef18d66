//! BATCH_MATMUL: `out[b] = op(lhs[b]) · op(rhs[b])` over up to three broadcast batch
//! dimensions, `op` being an optional transpose (`adj_x`, `adj_y`).
//!
//! The quantized forms follow `reference_ops::BatchMatMul<T, AccumT>`: int8 accumulates
//! `(x − zp_x)·(y − zp_y)` in wrapping i32 and requantizes with the double-rounding
//! `MultiplyByQuantizedMultiplier`; int16 accumulates in i64 and uses the 64-bit variant.
//! There is no bias and the clamp is the whole output type (TFLite applies no fused
//! activation here). Every output element is one independent dot product, so integer
//! results are exact and float results do not depend on the thread count.

use crate::parallel;
use crate::quant::fixedpoint::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_i64, quantize_multiplier,
};
use crate::quant::params::clamp_i32;
use crate::quant::{QuantElem, QuantError, QuantParams};

/// Shapes of one batched matrix product, batch dimensions padded to three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatMulShape {
    /// Output batch dimensions (each the larger of the two operands').
    pub batch: [usize; 3],
    /// Element stride of each batch dimension in `lhs` (0 where it broadcasts).
    pub lhs_batch_strides: [usize; 3],
    /// Same for `rhs`.
    pub rhs_batch_strides: [usize; 3],
    /// Rows of the product.
    pub m: usize,
    /// Accumulation depth.
    pub k: usize,
    /// Columns of the product.
    pub n: usize,
    /// `lhs` matrices are stored `[k, m]` (transposed) instead of `[m, k]`.
    pub adj_x: bool,
    /// `rhs` matrices are stored `[n, k]` instead of `[k, n]`.
    pub adj_y: bool,
}

impl MatMulShape {
    /// Builds the shape from operand shapes of rank 2 to 5. Batch dimensions must be equal
    /// or 1, and the accumulation depths must agree; `None` otherwise.
    pub fn new(lhs: &[usize], rhs: &[usize], adj_x: bool, adj_y: bool) -> Option<Self> {
        if !(2..=5).contains(&lhs.len()) || !(2..=5).contains(&rhs.len()) {
            return None;
        }
        let ext = |s: &[usize]| {
            let mut e = [1usize; 5];
            e[5 - s.len()..].copy_from_slice(s);
            e
        };
        let (l, r) = (ext(lhs), ext(rhs));
        let (m, lk) = if adj_x { (l[4], l[3]) } else { (l[3], l[4]) };
        let (rk, n) = if adj_y { (r[4], r[3]) } else { (r[3], r[4]) };
        if lk != rk {
            return None;
        }
        let l_mat = l[3].checked_mul(l[4])?;
        let r_mat = r[3].checked_mul(r[4])?;
        let mut batch = [1; 3];
        let mut ls = [0; 3];
        let mut rs = [0; 3];
        let (mut l_inner, mut r_inner) = (l_mat, r_mat);
        for i in (0..3).rev() {
            let (a, b) = (l[i], r[i]);
            batch[i] = match (a, b) {
                _ if a == b => a,
                (1, _) => b,
                (_, 1) => a,
                _ => return None,
            };
            ls[i] = if a == 1 { 0 } else { l_inner };
            rs[i] = if b == 1 { 0 } else { r_inner };
            l_inner = l_inner.checked_mul(a)?;
            r_inner = r_inner.checked_mul(b)?;
        }
        batch
            .iter()
            .try_fold(m.checked_mul(n)?, |acc, &d| acc.checked_mul(d))?;
        Some(Self {
            batch,
            lhs_batch_strides: ls,
            rhs_batch_strides: rs,
            m,
            k: lk,
            n,
            adj_x,
            adj_y,
        })
    }

    /// The output shape for operands of the given ranks: broadcast batch dimensions (as many
    /// as the longer operand has), then `[m, n]`.
    pub fn output_shape(&self, rank: usize) -> Vec<usize> {
        let mut s: Vec<usize> = self.batch[3 - (rank.clamp(2, 5) - 2)..].to_vec();
        s.push(self.m);
        s.push(self.n);
        s
    }

    pub fn output_len(&self) -> usize {
        self.batch.iter().product::<usize>() * self.m * self.n
    }

    fn lhs_len(&self) -> usize {
        self.extent(&self.lhs_batch_strides) + self.m * self.k
    }

    fn rhs_len(&self) -> usize {
        self.extent(&self.rhs_batch_strides) + self.k * self.n
    }

    /// Offset of the last matrix: the largest batch offset.
    fn extent(&self, strides: &[usize; 3]) -> usize {
        (0..3)
            .map(|i| self.batch[i].saturating_sub(1) * strides[i])
            .sum()
    }

    fn check(&self, lhs: usize, rhs: usize, out: usize) -> Result<(), QuantError> {
        let need = |what, needed, got| {
            if got < needed {
                Err(QuantError::BufferTooSmall { what, needed, got })
            } else {
                Ok(())
            }
        };
        if self.m * self.k > 0 {
            need("lhs", self.lhs_len(), lhs)?;
        }
        if self.k * self.n > 0 {
            need("rhs", self.rhs_len(), rhs)?;
        }
        need("output", self.output_len(), out)
    }

    /// Offsets of the `lhs` and `rhs` matrices of output matrix `b` (flat batch index).
    #[inline]
    fn matrices(&self, b: usize) -> (usize, usize) {
        let i2 = b % self.batch[2];
        let i1 = (b / self.batch[2]) % self.batch[1];
        let i0 = b / (self.batch[2] * self.batch[1]);
        let l = i0 * self.lhs_batch_strides[0]
            + i1 * self.lhs_batch_strides[1]
            + i2 * self.lhs_batch_strides[2];
        let r = i0 * self.rhs_batch_strides[0]
            + i1 * self.rhs_batch_strides[1]
            + i2 * self.rhs_batch_strides[2];
        (l, r)
    }

    /// Runs `f(row_out, at)` for every output row; `at` locates that row's operands.
    fn rows<T: Send>(&self, out: &mut [T], threads: usize, f: impl Fn(&mut [T], At) + Sync) {
        let (m, k, n) = (self.m, self.k, self.n);
        if n == 0 || out.is_empty() {
            return;
        }
        // Element strides of lhs[i, p] along p and of rhs[p, j] along p and j.
        let lhs_p = if self.adj_x { m } else { 1 };
        let (rhs_p, rhs_j) = if self.adj_y { (1, k) } else { (n, 1) };
        parallel::for_each_part(out, n, 1, threads, |first, part| {
            for (r, row) in part.chunks_exact_mut(n).enumerate() {
                let global = first + r;
                let (b, i) = (global / m.max(1), global % m.max(1));
                let (lb, rb) = self.matrices(b);
                let lhs_row = lb + if self.adj_x { i } else { i * k };
                f(
                    row,
                    At {
                        lhs_row,
                        lhs_p,
                        rhs: rb,
                        rhs_p,
                        rhs_j,
                    },
                );
            }
        });
    }
}

/// Where one output row's operands are: `lhs[i, p]` at `lhs_row + p·lhs_p`, `rhs[p, j]` at
/// `rhs + p·rhs_p + j·rhs_j`.
#[derive(Clone, Copy)]
struct At {
    lhs_row: usize,
    lhs_p: usize,
    rhs: usize,
    rhs_p: usize,
    rhs_j: usize,
}

/// Scratch floats [`batch_matmul_f32`] uses: with `adj_y`, one rhs matrix stored `[k, n]`.
pub fn batch_matmul_f32_scratch(s: &MatMulShape) -> usize {
    if s.adj_y {
        s.k.saturating_mul(s.n)
    } else {
        0
    }
}

/// Float batched matrix product. `scratch` holds [`batch_matmul_f32_scratch`] floats.
///
/// Each output row accumulates whole rows of `rhs` (`[k, n]`), `p` ascending: the same terms
/// in the same order as one dot product per element, with the columns in vectors. An `adj_y`
/// rhs (`[n, k]`) is first copied transposed into `scratch`, once per distinct matrix.
pub fn batch_matmul_f32(
    s: &MatMulShape,
    lhs: &[f32],
    rhs: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
) -> Result<(), QuantError> {
    s.check(lhs.len(), rhs.len(), out.len())?;
    let need = batch_matmul_f32_scratch(s);
    if scratch.len() < need {
        return Err(QuantError::BufferTooSmall {
            what: "scratch",
            needed: need,
            got: scratch.len(),
        });
    }
    let (m, k, n) = (s.m, s.k, s.n);
    let out = &mut out[..s.output_len()];
    if n == 0 || out.is_empty() {
        return Ok(());
    }
    let lhs_p = if s.adj_x { m } else { 1 };
    let mut held = usize::MAX;
    for (b, out_b) in out.chunks_exact_mut(m * n).enumerate() {
        let (lb, rb) = s.matrices(b);
        let b_mat: &[f32] = if s.adj_y {
            if rb != held && k > 0 {
                for (j, col) in rhs[rb..rb + n * k].chunks_exact(k).enumerate() {
                    for (p, &v) in col.iter().enumerate() {
                        scratch[p * n + j] = v;
                    }
                }
                held = rb;
            }
            &scratch[..k * n]
        } else {
            &rhs[rb..rb + k * n]
        };
        let grain = rows_per_part(n, k);
        parallel::for_each_part(out_b, n, grain, threads, |i0, part| {
            for (r, o) in part.chunks_exact_mut(n).enumerate() {
                let i = i0 + r;
                let lhs_row = lb + if s.adj_x { i } else { i * k };
                o.fill(0.0);
                for (p, b_row) in b_mat.chunks_exact(n).enumerate() {
                    let a = lhs[lhs_row + p * lhs_p];
                    for (o, &y) in o.iter_mut().zip(b_row) {
                        *o += a * y;
                    }
                }
            }
        });
    }
    Ok(())
}

/// Fewest output rows of `n` columns over a depth `k` worth a thread part.
fn rows_per_part(n: usize, k: usize) -> usize {
    const MIN_MACS_PER_PART: usize = 1 << 15;
    MIN_MACS_PER_PART.div_ceil(n.saturating_mul(k).max(1))
}

/// Prepare-time parameters of a quantized batched product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatMulQuant {
    pub lhs_offset: i32,
    pub rhs_offset: i32,
    pub output_offset: i32,
    pub multiplier: i32,
    pub shift: i32,
}

impl MatMulQuant {
    /// `GetQuantizedConvolutionMultipler`: the product of the operand scales in f32, divided
    /// by the output scale in f64, then `QuantizeMultiplier`.
    pub fn new(lhs: QuantParams, rhs: QuantParams, out: QuantParams) -> Result<Self, QuantError> {
        let product = f64::from(lhs.scale * rhs.scale);
        if product.is_nan() || product < 0.0 {
            return Err(QuantError::MultiplierOutOfRange {
                what: "lhs·rhs scale",
                value: product,
            });
        }
        let (multiplier, shift) = quantize_multiplier(product / f64::from(out.scale))?;
        Ok(Self {
            lhs_offset: lhs.zero_point_i32()?.wrapping_neg(),
            rhs_offset: rhs.zero_point_i32()?.wrapping_neg(),
            output_offset: out.zero_point_i32()?,
            multiplier,
            shift,
        })
    }
}

/// Scratch `i16` values [`batch_matmul_i8`] uses: one lhs and one rhs matrix, widened.
pub fn batch_matmul_i8_scratch(s: &MatMulShape) -> usize {
    s.m.saturating_add(s.n).saturating_mul(s.k)
}

/// int8 batched product: wrapping i32 accumulator, double-rounding requantization.
/// `scratch` holds [`batch_matmul_i8_scratch`] values.
///
/// The operands of each distinct matrix are first copied into `scratch` as int16 with their
/// zero points subtracted (a valid int8 zero point leaves them within ±255), lhs rows and
/// rhs columns each contiguous along the depth, so that every output is a dot product of two
/// contiguous runs, which vectorizes (products of at most 255² summed in wrapping i32, the
/// same sum in any order). Zero points outside the int8 range take the element-wise loop.
pub fn batch_matmul_i8(
    s: &MatMulShape,
    q: &MatMulQuant,
    lhs: &[i8],
    rhs: &[i8],
    out: &mut [i8],
    scratch: &mut [i16],
    threads: usize,
) -> Result<(), QuantError> {
    s.check(lhs.len(), rhs.len(), out.len())?;
    let need = batch_matmul_i8_scratch(s);
    if scratch.len() < need {
        return Err(QuantError::BufferTooSmall {
            what: "scratch",
            needed: need,
            got: scratch.len(),
        });
    }
    let out = &mut out[..s.output_len()];
    let finish = |acc: i32| {
        let v = multiply_by_quantized_multiplier(acc, q.multiplier, q.shift)
            .wrapping_add(q.output_offset);
        clamp_i32(v, i8::MIN.to_i32(), i8::MAX.to_i32()) as i8
    };
    let narrow = |off: i32| i16::try_from(off).ok().filter(|o| (-128..=128).contains(o));
    let (Some(l_off), Some(r_off)) = (narrow(q.lhs_offset), narrow(q.rhs_offset)) else {
        i8_elementwise(s, q, lhs, rhs, out, threads);
        return Ok(());
    };
    let (m, k, n) = (s.m, s.k, s.n);
    if k == 0 {
        out.fill(finish(0));
        return Ok(());
    }
    if n == 0 || out.is_empty() {
        return Ok(());
    }
    let (lt, rt) = scratch[..need].split_at_mut(m * k);
    let mut held = (usize::MAX, usize::MAX);
    for (b, out_b) in out.chunks_exact_mut(m * n).enumerate() {
        let (lb, rb) = s.matrices(b);
        if lb != held.0 {
            let l = &lhs[lb..lb + m * k];
            for (i, dst) in lt.chunks_exact_mut(k).enumerate() {
                for (p, d) in dst.iter_mut().enumerate() {
                    let v = if s.adj_x { l[p * m + i] } else { l[i * k + p] };
                    *d = i16::from(v) + l_off;
                }
            }
        }
        if rb != held.1 {
            let r = &rhs[rb..rb + k * n];
            for (j, dst) in rt.chunks_exact_mut(k).enumerate() {
                for (p, d) in dst.iter_mut().enumerate() {
                    let v = if s.adj_y { r[j * k + p] } else { r[p * n + j] };
                    *d = i16::from(v) + r_off;
                }
            }
        }
        held = (lb, rb);
        let (lt, rt) = (&*lt, &*rt);
        parallel::for_each_part(out_b, n, rows_per_part(n, k), threads, |i0, part| {
            for (row, a) in part.chunks_exact_mut(n).zip(lt[i0 * k..].chunks_exact(k)) {
                for (o, b) in row.iter_mut().zip(rt.chunks_exact(k)) {
                    *o = finish(dot_i16(a, b));
                }
            }
        });
    }
    Ok(())
}

/// [`batch_matmul_i8`] one element at a time, straight from the int8 operands (checked by
/// the caller).
fn i8_elementwise(
    s: &MatMulShape,
    q: &MatMulQuant,
    lhs: &[i8],
    rhs: &[i8],
    out: &mut [i8],
    threads: usize,
) {
    s.rows(out, threads, |row, at| {
        for (j, o) in row.iter_mut().enumerate() {
            let mut acc = 0i32;
            for p in 0..s.k {
                let a = i32::from(lhs[at.lhs_row + p * at.lhs_p]).wrapping_add(q.lhs_offset);
                let b =
                    i32::from(rhs[at.rhs + p * at.rhs_p + j * at.rhs_j]).wrapping_add(q.rhs_offset);
                acc = acc.wrapping_add(a.wrapping_mul(b));
            }
            let v = multiply_by_quantized_multiplier(acc, q.multiplier, q.shift)
                .wrapping_add(q.output_offset);
            *o = clamp_i32(v, i8::MIN.to_i32(), i8::MAX.to_i32()) as i8;
        }
    });
}

/// `Σ a[p]·b[p]` in wrapping i32 arithmetic, written so that it vectorizes (products of two
/// int16 widen to int32 exactly).
#[inline]
fn dot_i16(a: &[i16], b: &[i16]) -> i32 {
    a.iter().zip(b).fold(0i32, |s, (&x, &y)| {
        s.wrapping_add(i32::from(x) * i32::from(y))
    })
}

/// int16 batched product: i64 accumulator, 64-bit requantization.
pub fn batch_matmul_i16(
    s: &MatMulShape,
    q: &MatMulQuant,
    lhs: &[i16],
    rhs: &[i16],
    out: &mut [i16],
    threads: usize,
) -> Result<(), QuantError> {
    s.check(lhs.len(), rhs.len(), out.len())?;
    let out = &mut out[..s.output_len()];
    s.rows(out, threads, |row, at| {
        for (j, o) in row.iter_mut().enumerate() {
            let mut acc = 0i64;
            for p in 0..s.k {
                let a = i64::from(lhs[at.lhs_row + p * at.lhs_p]) + i64::from(q.lhs_offset);
                let b =
                    i64::from(rhs[at.rhs + p * at.rhs_p + j * at.rhs_j]) + i64::from(q.rhs_offset);
                acc = acc.wrapping_add(a * b);
            }
            let v = multiply_by_quantized_multiplier_i64(acc, q.multiplier, q.shift)
                .wrapping_add(q.output_offset);
            *o = clamp_i32(v, i16::MIN.to_i32(), i16::MAX.to_i32()) as i16;
        }
    });
    Ok(())
}

/// Prepare-time parameters of a hybrid product: float `lhs`, constant int8 `rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct HybridMatMul {
    /// Quantize each lhs row asymmetrically (with a zero point) rather than symmetrically.
    pub asymmetric: bool,
    /// One rhs scale, or one per output column.
    pub rhs_scales: Vec<f32>,
    /// For each rhs matrix and output column `j`, `Σ_p rhs[p, j]`.
    pub row_sums: Vec<i32>,
}

impl HybridMatMul {
    pub fn new(s: &MatMulShape, rhs: &[i8], asymmetric: bool, rhs_scales: Vec<f32>) -> Self {
        let mat = s.k * s.n;
        let matrices = rhs.len().checked_div(mat).unwrap_or(0);
        let mut row_sums = vec![0i32; matrices * s.n];
        for mi in 0..matrices {
            for j in 0..s.n {
                let mut sum = 0i32;
                for p in 0..s.k {
                    let at = if s.adj_y { j * s.k + p } else { p * s.n + j };
                    sum = sum.wrapping_add(i32::from(rhs[mi * mat + at]));
                }
                row_sums[mi * s.n + j] = sum;
            }
        }
        Self {
            asymmetric,
            rhs_scales,
            row_sums,
        }
    }
}

/// Hybrid batched product as the reference's `EvalHybrid`: each lhs row is quantized to
/// int8 (`AsymmetricQuantizeFloats` or `SymmetricQuantizeFloats`), dotted with the int8 rhs
/// column in i32, corrected by `zero_point · Σ rhs` in f32 (truncated back to i32, as the
/// reference's `int32 −= float` does), and scaled by `row scale · rhs scale` in f32.
pub fn batch_matmul_hybrid(
    s: &MatMulShape,
    h: &HybridMatMul,
    lhs: &[f32],
    rhs: &[i8],
    row: &mut [f32],
    q: &mut [i8],
    out: &mut [f32],
) -> Result<(), QuantError> {
    s.check(lhs.len(), rhs.len(), out.len())?;
    let (m, k, n) = (s.m, s.k, s.n);
    if h.rhs_scales.is_empty() || (h.rhs_scales.len() > 1 && h.rhs_scales.len() != n) {
        return Err(QuantError::ChannelCountMismatch {
            expected: n,
            got: h.rhs_scales.len(),
        });
    }
    if row.len() < k || q.len() < k {
        return Err(QuantError::BufferTooSmall {
            what: "scratch",
            needed: k,
            got: row.len().min(q.len()),
        });
    }
    let (row, q) = (&mut row[..k], &mut q[..k]);
    let out = &mut out[..s.output_len()];
    if n == 0 {
        return Ok(());
    }
    let lhs_p = if s.adj_x { m } else { 1 };
    for (r, o_row) in out.chunks_exact_mut(n).enumerate() {
        let (b, i) = (r / m.max(1), r % m.max(1));
        let (lb, rb) = s.matrices(b);
        let lhs_row = lb + if s.adj_x { i } else { i * k };
        for (p, x) in row.iter_mut().enumerate() {
            *x = lhs[lhs_row + p * lhs_p];
        }
        let (scale, zp) = if h.asymmetric {
            crate::quant::hybrid::quantize_asymmetric(row, q)
        } else {
            (crate::quant::hybrid::quantize_symmetric(row, q), 0)
        };
        let per_channel = h.rhs_scales.len() > 1;
        let row_scale = if per_channel {
            scale
        } else {
            scale * h.rhs_scales[0]
        };
        let mi = rb.checked_div(k * n).unwrap_or(0);
        let (rhs_p, rhs_j) = if s.adj_y { (1, k) } else { (n, 1) };
        for (j, o) in o_row.iter_mut().enumerate() {
            let mut total = 0i32;
            for (p, &qv) in q.iter().enumerate() {
                let w = rhs[rb + p * rhs_p + j * rhs_j];
                total = total.wrapping_add(i32::from(w) * i32::from(qv));
            }
            let row_sum = h.row_sums.get(mi * n + j).copied().unwrap_or(0);
            let corrected = total as f32 - row_sum as f32 * zp as f32;
            let total = crate::quant::fixedpoint::f32_to_i32_x86(corrected);
            let sc = if per_channel {
                row_scale * h.rhs_scales[j]
            } else {
                row_scale
            };
            *o = 0.0 + sc * total as f32;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive product over explicit multi-indices, for comparison.
    fn naive(
        ls: &[usize],
        rs: &[usize],
        adj_x: bool,
        adj_y: bool,
        lhs: &[f64],
        rhs: &[f64],
    ) -> (Vec<usize>, Vec<f64>) {
        let pad = |s: &[usize]| {
            let mut e = vec![1; 5 - s.len()];
            e.extend_from_slice(s);
            e
        };
        let (l, r) = (pad(ls), pad(rs));
        let (m, k) = if adj_x { (l[4], l[3]) } else { (l[3], l[4]) };
        let n = if adj_y { r[3] } else { r[4] };
        let batch: Vec<usize> = (0..3).map(|i| l[i].max(r[i])).collect();
        let mut out = Vec::new();
        for b0 in 0..batch[0] {
            for b1 in 0..batch[1] {
                for b2 in 0..batch[2] {
                    let lb = (((b0 % l[0]) * l[1] + b1 % l[1]) * l[2] + b2 % l[2]) * l[3] * l[4];
                    let rb = (((b0 % r[0]) * r[1] + b1 % r[1]) * r[2] + b2 % r[2]) * r[3] * r[4];
                    for i in 0..m {
                        for j in 0..n {
                            let mut acc = 0.0;
                            for p in 0..k {
                                let a = if adj_x {
                                    lhs[lb + p * m + i]
                                } else {
                                    lhs[lb + i * k + p]
                                };
                                let b = if adj_y {
                                    rhs[rb + j * k + p]
                                } else {
                                    rhs[rb + p * n + j]
                                };
                                acc += a * b;
                            }
                            out.push(acc);
                        }
                    }
                }
            }
        }
        let rank = ls.len().max(rs.len());
        let mut shape = batch[3 - (rank - 2)..].to_vec();
        shape.extend([m, n]);
        (shape, out)
    }

    fn vals(n: usize, seed: i64) -> Vec<i64> {
        (0..n as i64)
            .map(|i| (i * 37 + seed * 11) % 23 - 11)
            .collect()
    }

    #[test]
    fn float_and_int8_match_naive() {
        let cases: &[(&[usize], &[usize], bool, bool)] = &[
            (&[2, 3, 4], &[2, 4, 5], false, false),
            (&[2, 4, 3], &[2, 4, 5], true, false),
            (&[2, 3, 4], &[2, 5, 4], false, true),
            (&[2, 1, 3, 4], &[3, 4, 5], false, false),
            (&[2, 1, 2, 3, 4], &[1, 3, 1, 4, 2], false, false),
            (&[4, 3], &[2, 2, 5, 4], true, true),
        ];
        for &(ls, rs, ax, ay) in cases {
            let s = MatMulShape::new(ls, rs, ax, ay).unwrap();
            let ln: usize = ls.iter().product();
            let rn: usize = rs.iter().product();
            let (l, r) = (vals(ln, 1), vals(rn, 2));
            let lf: Vec<f64> = l.iter().map(|&v| v as f64).collect();
            let rf: Vec<f64> = r.iter().map(|&v| v as f64).collect();
            let (shape, want) = naive(ls, rs, ax, ay, &lf, &rf);
            assert_eq!(s.output_shape(ls.len().max(rs.len())), shape);
            let mut out = vec![0.0f32; s.output_len()];
            let l32: Vec<f32> = l.iter().map(|&v| v as f32).collect();
            let r32: Vec<f32> = r.iter().map(|&v| v as f32).collect();
            let mut scratch = vec![f32::NAN; batch_matmul_f32_scratch(&s)];
            batch_matmul_f32(&s, &l32, &r32, &mut out, &mut scratch, 2).unwrap();
            assert_eq!(out.iter().map(|&v| v as f64).collect::<Vec<_>>(), want);

            // int8 with zero points 0 and a multiplier of exactly 1/4.
            let q = MatMulQuant::new(
                QuantParams::new(0.5, 0),
                QuantParams::new(0.5, 0),
                QuantParams::new(1.0, 3),
            )
            .unwrap();
            let l8: Vec<i8> = l.iter().map(|&v| v as i8).collect();
            let r8: Vec<i8> = r.iter().map(|&v| v as i8).collect();
            let mut o8 = vec![0i8; s.output_len()];
            let mut scratch = vec![0i16; batch_matmul_i8_scratch(&s)];
            batch_matmul_i8(&s, &q, &l8, &r8, &mut o8, &mut scratch, 1).unwrap();
            for (&o, &w) in o8.iter().zip(&want) {
                let v = multiply_by_quantized_multiplier(w as i32, q.multiplier, q.shift) + 3;
                assert_eq!(i32::from(o), v.clamp(-128, 127));
            }
        }
    }

    /// Shapes for the exactness tests: transposes, broadcast batches, depth 0 and 1, a
    /// matrix of one row.
    const SHAPES: &[(&[usize], &[usize], bool, bool)] = &[
        (&[2, 7, 33], &[2, 33, 9], false, false),
        (&[2, 33, 7], &[2, 33, 9], true, false),
        (&[3, 7, 33], &[3, 9, 33], false, true),
        (&[2, 1, 5, 40], &[3, 40, 17], false, false),
        (&[2, 1, 2, 3, 4], &[1, 3, 1, 2, 4], false, true),
        (&[4, 3], &[2, 2, 5, 4], true, true),
        (&[1, 16, 0], &[1, 0, 5], false, false),
        (&[1, 1, 1], &[1, 1, 20], false, false),
        (&[2, 200, 24], &[2, 24, 200], false, false),
    ];

    fn rand_i8(n: usize, seed: u64) -> Vec<i8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as i8
            })
            .collect()
    }

    /// The widened int8 path gives the element-wise loop's bits, for zero points at both
    /// ends of the int8 range, at one and two threads.
    #[test]
    fn int8_widened_path_matches_elementwise() {
        for (case, &(ls, rs, ax, ay)) in SHAPES.iter().enumerate() {
            let s = MatMulShape::new(ls, rs, ax, ay).unwrap();
            let l = rand_i8(ls.iter().product(), case as u64 + 1);
            let r = rand_i8(rs.iter().product(), case as u64 + 50);
            for (zl, zr, zo) in [(0, 0, 0), (-128, 127, 5), (127, -128, -7), (3, -9, 0)] {
                let q = MatMulQuant::new(
                    QuantParams::new(0.02, zl),
                    QuantParams::new(0.03, zr),
                    QuantParams::new(0.5, zo),
                )
                .unwrap();
                let mut want = vec![0i8; s.output_len()];
                i8_elementwise(&s, &q, &l, &r, &mut want, 1);
                for threads in [1, 2] {
                    let mut got = vec![0i8; s.output_len()];
                    let mut scratch = vec![0i16; batch_matmul_i8_scratch(&s)];
                    batch_matmul_i8(&s, &q, &l, &r, &mut got, &mut scratch, threads).unwrap();
                    assert_eq!(got, want, "case {case} zp ({zl}, {zr}) threads {threads}");
                }
            }
        }
    }

    /// Float results equal a dot product per element in depth order (multiply, then add,
    /// from 0.0), bit for bit, at one and two threads.
    #[test]
    fn float_sums_each_element_in_depth_order() {
        for (case, &(ls, rs, ax, ay)) in SHAPES.iter().enumerate() {
            let s = MatMulShape::new(ls, rs, ax, ay).unwrap();
            let f = |v: Vec<i8>| -> Vec<f32> { v.iter().map(|&x| f32::from(x) * 0.0173).collect() };
            let l = f(rand_i8(ls.iter().product(), case as u64 + 7));
            let r = f(rand_i8(rs.iter().product(), case as u64 + 70));
            let mut want = vec![0.0f32; s.output_len()];
            s.rows(&mut want, 1, |row, at| {
                for (j, o) in row.iter_mut().enumerate() {
                    let mut acc = 0.0f32;
                    for p in 0..s.k {
                        acc +=
                            l[at.lhs_row + p * at.lhs_p] * r[at.rhs + p * at.rhs_p + j * at.rhs_j];
                    }
                    *o = acc;
                }
            });
            for threads in [1, 2] {
                let mut got = vec![f32::NAN; s.output_len()];
                let mut scratch = vec![f32::NAN; batch_matmul_f32_scratch(&s)];
                batch_matmul_f32(&s, &l, &r, &mut got, &mut scratch, threads).unwrap();
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "case {case} threads {threads}");
            }
        }
    }

    #[test]
    fn hybrid_matches_naive_when_quantization_is_exact() {
        // Each lhs row has max |x| = 63.5 = 127 · 0.5, so the symmetric row scale is 0.5 and
        // every value (a multiple of 0.5) quantizes exactly; the product is then exact.
        let (ls, rs) = ([2usize, 3, 4], [4usize, 5]);
        for adj_y in [false, true] {
            let rs_stored = if adj_y { [5, 4] } else { rs };
            let s = MatMulShape::new(&ls, &rs_stored, false, adj_y).unwrap();
            let lhs: Vec<f32> = (0..24)
                .map(|i| {
                    if i % 4 == 0 {
                        63.5
                    } else {
                        (i % 7) as f32 * 0.5 - 1.5
                    }
                })
                .collect();
            let w: Vec<i64> = vals(20, 3);
            let w8: Vec<i8> = w.iter().map(|&v| v as i8).collect();
            let h = HybridMatMul::new(&s, &w8, false, vec![0.25]);
            let (mut row, mut q, mut out) = (vec![0.0; 4], vec![0; 4], vec![0.0; 30]);
            batch_matmul_hybrid(&s, &h, &lhs, &w8, &mut row, &mut q, &mut out).unwrap();
            let lf: Vec<f64> = lhs.iter().map(|&v| f64::from(v)).collect();
            let wf: Vec<f64> = w.iter().map(|&v| v as f64 * 0.25).collect();
            let (_, want) = naive(&ls, &rs_stored, false, adj_y, &lf, &wf);
            for (&o, &e) in out.iter().zip(&want) {
                assert!((f64::from(o) - e).abs() < 1e-4, "{o} vs {e}");
            }
        }
    }

    #[test]
    fn bad_shapes_are_rejected() {
        assert!(MatMulShape::new(&[2, 3, 4], &[2, 5, 5], false, false).is_none());
        assert!(MatMulShape::new(&[2, 3, 4], &[3, 4, 5], false, false).is_none());
        assert!(MatMulShape::new(&[4], &[4, 5], false, false).is_none());
        let s = MatMulShape::new(&[2, 3, 4], &[2, 4, 5], false, false).unwrap();
        let mut out = vec![0.0; 30];
        assert!(batch_matmul_f32(&s, &[0.0; 23], &[0.0; 40], &mut out, &mut [], 1).is_err());
        // Scratch too short for an adj_y rhs, or for the widened int8 operands.
        let t = MatMulShape::new(&[2, 3, 4], &[2, 5, 4], false, true).unwrap();
        let mut scratch = vec![0.0; batch_matmul_f32_scratch(&t) - 1];
        let r = batch_matmul_f32(&t, &[0.0; 24], &[0.0; 40], &mut out, &mut scratch, 1);
        assert!(r.is_err());
        let q = MatMulQuant::new(
            QuantParams::new(1.0, 0),
            QuantParams::new(1.0, 0),
            QuantParams::new(1.0, 0),
        )
        .unwrap();
        let mut scratch = vec![0; batch_matmul_i8_scratch(&t) - 1];
        let r = batch_matmul_i8(&t, &q, &[0; 24], &[0; 40], &mut [0; 30], &mut scratch, 1);
        assert!(r.is_err());
    }
}
