//! Float binary elementwise ops with numpy broadcasting (ADD, MUL, SUB, DIV; others plug in
//! through [`binary_f32`] with their own closure).
//!
//! All shape work happens once, in [`BroadcastPlan::new`] at prepare time: shapes are
//! right-aligned to a common rank, axes of size 1 in the output are dropped, and neighbouring
//! axes that broadcast the same way for both operands are merged. What remains is a short list
//! of axes whose innermost one is contiguous for each operand (stride 1) or broadcast
//! (stride 0), so `run` is an odometer over the outer axes around one of three tight inner
//! loops, and it allocates nothing. Same-shape and one-element operands skip even that.

use crate::activation::Clamp;

/// Highest tensor rank the broadcasting (and reduction) kernels accept.
pub const MAX_RANK: usize = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Both operands have the output's shape: one flat loop.
    SameShape,
    /// `a` is a single element.
    ScalarA,
    /// `b` is a single element.
    ScalarB,
    /// Collapsed strided iteration.
    General,
}

/// Precomputed iteration plan for `out = op(a, b)` with broadcasting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastPlan {
    kind: Kind,
    a_len: usize,
    b_len: usize,
    out_len: usize,
    out_shape: [usize; MAX_RANK],
    out_rank: usize,
    /// Collapsed axes (only meaningful for `Kind::General`).
    rank: usize,
    dims: [usize; MAX_RANK],
    a_strides: [usize; MAX_RANK],
    b_strides: [usize; MAX_RANK],
}

impl BroadcastPlan {
    /// Plans `op(a, b)` for operand shapes `a` and `b`. Returns `None` if a rank exceeds
    /// [`MAX_RANK`] or the shapes are not broadcast-compatible (numpy rules: aligned from the
    /// right, each pair of sizes equal or one of them 1).
    pub fn new(a: &[usize], b: &[usize]) -> Option<Self> {
        if a.len() > MAX_RANK || b.len() > MAX_RANK {
            return None;
        }
        let rank = a.len().max(b.len());
        // Right-aligned, padded with leading 1s.
        let pad = |s: &[usize]| {
            let mut p = [1usize; MAX_RANK];
            p[rank - s.len()..rank].copy_from_slice(s);
            p
        };
        let (pa, pb) = (pad(a), pad(b));
        let mut out_shape = [1usize; MAX_RANK];
        for i in 0..rank {
            out_shape[i] = match (pa[i], pb[i]) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return None,
            };
        }
        let a_len: usize = a.iter().product();
        let b_len: usize = b.iter().product();
        let out_len: usize = out_shape[..rank].iter().product();
        let mut plan = BroadcastPlan {
            kind: Kind::General,
            a_len,
            b_len,
            out_len,
            out_shape,
            out_rank: rank,
            rank: 0,
            dims: [1; MAX_RANK],
            a_strides: [0; MAX_RANK],
            b_strides: [0; MAX_RANK],
        };
        if out_len == 0 || (a_len == out_len && b_len == out_len) {
            plan.kind = Kind::SameShape;
            return Some(plan);
        }
        if a_len == 1 {
            plan.kind = Kind::ScalarA;
            return Some(plan);
        }
        if b_len == 1 {
            plan.kind = Kind::ScalarB;
            return Some(plan);
        }
        // Collapse: per output axis, whether each operand is broadcast along it.
        let mut dims = [1usize; MAX_RANK];
        let mut a_bc = [false; MAX_RANK];
        let mut b_bc = [false; MAX_RANK];
        let mut n = 0;
        for i in 0..rank {
            let d = out_shape[i];
            if d == 1 {
                continue;
            }
            let (ab, bb) = (pa[i] == 1, pb[i] == 1);
            if n > 0 && a_bc[n - 1] == ab && b_bc[n - 1] == bb {
                dims[n - 1] *= d;
            } else {
                dims[n] = d;
                a_bc[n] = ab;
                b_bc[n] = bb;
                n += 1;
            }
        }
        let (mut sa, mut sb) = (1usize, 1usize);
        for i in (0..n).rev() {
            plan.a_strides[i] = if a_bc[i] { 0 } else { sa };
            plan.b_strides[i] = if b_bc[i] { 0 } else { sb };
            if !a_bc[i] {
                sa *= dims[i];
            }
            if !b_bc[i] {
                sb *= dims[i];
            }
        }
        plan.rank = n;
        plan.dims = dims;
        Some(plan)
    }

    /// The broadcast output shape (rank = the larger operand rank).
    pub fn output_shape(&self) -> &[usize] {
        &self.out_shape[..self.out_rank]
    }

    /// Elements of the output.
    pub fn output_len(&self) -> usize {
        self.out_len
    }
}

/// Below this many output elements an elementwise op runs on one thread: splitting costs
/// more than it saves.
const MIN_PER_PART: usize = if cfg!(test) { 1 } else { 1 << 15 };

/// [`binary_f32`] split over `threads` threads when both operands have the output's shape
/// (the common residual ADD) and the output is large; one thread otherwise. One IEEE
/// operation per element, so the split never changes a result.
pub fn binary_f32_threads<F>(
    plan: &BroadcastPlan,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    clamp: Clamp,
    op: F,
    threads: usize,
) where
    F: Fn(f32, f32) -> f32 + Copy + Sync,
{
    if plan.kind != Kind::SameShape || threads <= 1 || out.len() < 2 * MIN_PER_PART {
        return binary_f32(plan, a, b, out, clamp, op);
    }
    let n = out.len();
    let (a, b) = (&a[..n], &b[..n]);
    let f = move |x, y| clamp.apply(op(x, y));
    crate::parallel::for_each_part(out, 1, MIN_PER_PART, threads, |i0, part| {
        let end = i0 + part.len();
        vv(&a[i0..end], &b[i0..end], part, f);
    });
}

/// ADD: `out = clamp(a + b)`. Preconditions: see [`binary_f32`].
pub fn add_f32(plan: &BroadcastPlan, a: &[f32], b: &[f32], out: &mut [f32], clamp: Clamp) {
    binary_f32(plan, a, b, out, clamp, |x, y| x + y);
}

/// MUL: `out = clamp(a · b)`. Preconditions: see [`binary_f32`].
pub fn mul_f32(plan: &BroadcastPlan, a: &[f32], b: &[f32], out: &mut [f32], clamp: Clamp) {
    binary_f32(plan, a, b, out, clamp, |x, y| x * y);
}

/// SUB: `out = clamp(a − b)`. Preconditions: see [`binary_f32`].
pub fn sub_f32(plan: &BroadcastPlan, a: &[f32], b: &[f32], out: &mut [f32], clamp: Clamp) {
    binary_f32(plan, a, b, out, clamp, |x, y| x - y);
}

/// DIV: `out = clamp(a / b)` (IEEE division: `x/0` is ±inf or NaN, no panic).
/// Preconditions: see [`binary_f32`].
pub fn div_f32(plan: &BroadcastPlan, a: &[f32], b: &[f32], out: &mut [f32], clamp: Clamp) {
    binary_f32(plan, a, b, out, clamp, |x, y| x / y);
}

/// `out[i] = clamp(op(a[ia], b[ib]))` over the broadcast iteration of `plan`.
/// For ops without a fused activation pass [`Clamp::IDENTITY`].
///
/// Preconditions (`debug_assert`ed): `a`, `b` and `out` have exactly the element counts of
/// the shapes the plan was built from (`out.len() == plan.output_len()`).
#[inline]
pub fn binary_f32<F>(
    plan: &BroadcastPlan,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    clamp: Clamp,
    op: F,
) where
    F: Fn(f32, f32) -> f32 + Copy,
{
    debug_assert_eq!(a.len(), plan.a_len);
    debug_assert_eq!(b.len(), plan.b_len);
    debug_assert_eq!(out.len(), plan.out_len);
    let f = move |x, y| clamp.apply(op(x, y));
    match plan.kind {
        Kind::SameShape => vv(&a[..out.len()], &b[..out.len()], out, f),
        Kind::ScalarA => sv(a[0], &b[..out.len()], out, f),
        Kind::ScalarB => vs(&a[..out.len()], b[0], out, f),
        Kind::General => general(plan, a, b, out, f),
    }
}

fn general<F: Fn(f32, f32) -> f32 + Copy>(
    plan: &BroadcastPlan,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    f: F,
) {
    let r = plan.rank;
    // Not reachable: a rank-0 plan is always same-shape or scalar.
    if r == 0 {
        return;
    }
    let inner = plan.dims[r - 1];
    let (sa, sb) = (plan.a_strides[r - 1], plan.b_strides[r - 1]);
    let outer = &plan.dims[..r - 1];
    let mut idx = [0usize; MAX_RANK];
    for o in out.chunks_exact_mut(inner) {
        let mut ia = 0;
        let mut ib = 0;
        for (k, &i) in idx[..r - 1].iter().enumerate() {
            ia += i * plan.a_strides[k];
            ib += i * plan.b_strides[k];
        }
        match (sa, sb) {
            (0, 0) => o.fill(f(a[ia], b[ib])),
            (0, _) => sv(a[ia], &b[ib..ib + inner], o, f),
            (_, 0) => vs(&a[ia..ia + inner], b[ib], o, f),
            _ => vv(&a[ia..ia + inner], &b[ib..ib + inner], o, f),
        }
        for k in (0..outer.len()).rev() {
            idx[k] += 1;
            if idx[k] < outer[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

#[inline(always)]
fn vv<F: Fn(f32, f32) -> f32>(a: &[f32], b: &[f32], out: &mut [f32], f: F) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = f(x, y);
    }
}

#[inline(always)]
fn sv<F: Fn(f32, f32) -> f32>(x: f32, b: &[f32], out: &mut [f32], f: F) {
    for (o, &y) in out.iter_mut().zip(b) {
        *o = f(x, y);
    }
}

#[inline(always)]
fn vs<F: Fn(f32, f32) -> f32>(a: &[f32], y: f32, out: &mut [f32], f: F) {
    for (o, &x) in out.iter_mut().zip(a) {
        *o = f(x, y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::{assert_same_bits, Rng};

    /// Numpy broadcasting by definition: for every output coordinate, read each operand at
    /// the same coordinate clamped to 0 along its size-1 axes.
    fn naive(
        a: &[f32],
        sa: &[usize],
        b: &[f32],
        sb: &[usize],
        op: fn(f32, f32) -> f32,
        clamp: Clamp,
    ) -> Vec<f32> {
        let rank = sa.len().max(sb.len());
        let pad = |s: &[usize]| {
            let mut v = vec![1; rank - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (pa, pb) = (pad(sa), pad(sb));
        let out: Vec<usize> = (0..rank).map(|i| pa[i].max(pb[i])).collect();
        let n: usize = out.iter().product();
        let mut res = Vec::with_capacity(n);
        for flat in 0..n {
            let mut rem = flat;
            let mut coords = vec![0; rank];
            for i in (0..rank).rev() {
                coords[i] = rem % out[i];
                rem /= out[i];
            }
            let at = |shape: &[usize]| {
                let mut o = 0;
                for i in 0..rank {
                    o = o * shape[i] + if shape[i] == 1 { 0 } else { coords[i] };
                }
                o
            };
            let v = op(a[at(&pa)], b[at(&pb)]);
            res.push(v.max(clamp.min).min(clamp.max));
        }
        res
    }

    #[test]
    fn random_broadcasts_match_naive_exactly() {
        let mut rng = Rng(2024);
        type Scalar = fn(f32, f32) -> f32;
        type Kernel = fn(&BroadcastPlan, &[f32], &[f32], &mut [f32], Clamp);
        let ops: [(Scalar, Kernel); 4] = [
            (|x, y| x + y, add_f32),
            (|x, y| x * y, mul_f32),
            (|x, y| x - y, sub_f32),
            (|x, y| x / y, div_f32),
        ];
        for case in 0..400 {
            let rank = 1 + rng.below(MAX_RANK);
            let full: Vec<usize> = (0..rank).map(|_| [1, 2, 3, 4, 5][rng.below(5)]).collect();
            // Each operand: a suffix of the full shape with some axes set to 1.
            let operand = |rng: &mut Rng| -> Vec<usize> {
                let r = rank - rng.below(rank + 1).min(rank);
                full[rank - r..]
                    .iter()
                    .map(|&d| if rng.below(3) == 0 { 1 } else { d })
                    .collect()
            };
            let (sa, sb) = (operand(&mut rng), operand(&mut rng));
            let (sa, sb) = if case % 2 == 0 { (sa, sb) } else { (sb, sa) };
            let plan = BroadcastPlan::new(&sa, &sb).expect("compatible by construction");
            let a = rng.vec(sa.iter().product());
            let b = rng.vec(sb.iter().product());
            let (op, kernel) = ops[case % 4];
            let clamp = [Clamp::NONE, Clamp::RELU, Clamp::RELU_N1_TO_1][case % 3];
            let want = naive(&a, &sa, &b, &sb, op, clamp);
            assert_eq!(plan.output_len(), want.len());
            let mut out = vec![f32::NAN; plan.output_len()];
            kernel(&plan, &a, &b, &mut out, clamp);
            // One IEEE operation per element: results must be identical.
            assert_same_bits(&out, &want, &format!("{sa:?} op {sb:?}"));
        }
    }

    #[test]
    fn threaded_same_shape_matches_one_thread() {
        let mut rng = Rng(5);
        let shape = [3, 7, 5];
        let plan = BroadcastPlan::new(&shape, &shape).unwrap();
        let (a, b) = (rng.vec(105), rng.vec(105));
        let mut one = vec![0.0; 105];
        add_f32(&plan, &a, &b, &mut one, Clamp::RELU);
        for threads in [2, 3, 8] {
            let mut par = vec![f32::NAN; 105];
            binary_f32_threads(&plan, &a, &b, &mut par, Clamp::RELU, |x, y| x + y, threads);
            assert_same_bits(&one, &par, "threaded add");
        }
        // Broadcasting plans take the one-thread path and still agree.
        let plan = BroadcastPlan::new(&[3, 7, 5], &[5]).unwrap();
        let mut one = vec![0.0; 105];
        mul_f32(&plan, &a, &b[..5], &mut one, Clamp::NONE);
        let mut par = vec![0.0; 105];
        binary_f32_threads(&plan, &a, &b[..5], &mut par, Clamp::NONE, |x, y| x * y, 2);
        assert_same_bits(&one, &par, "broadcast mul");
    }

    #[test]
    fn plans_and_rejections() {
        let p = BroadcastPlan::new(&[2, 1, 3], &[4, 1]).unwrap();
        assert_eq!(p.output_shape(), &[2, 4, 3]);
        assert!(BroadcastPlan::new(&[2, 3], &[3, 2]).is_none());
        assert!(BroadcastPlan::new(&[1; 7], &[1]).is_none());
        assert_eq!(BroadcastPlan::new(&[], &[]).unwrap().output_len(), 1);
        assert_eq!(
            BroadcastPlan::new(&[0, 3], &[1, 3]).unwrap().output_len(),
            0
        );
        // [N,H,W,C] + [C] collapses to two axes; [N,H,W,C] * [N,1,1,C] to three.
        assert_eq!(BroadcastPlan::new(&[2, 4, 4, 8], &[8]).unwrap().rank, 2);
        assert_eq!(
            BroadcastPlan::new(&[2, 4, 4, 8], &[2, 1, 1, 8])
                .unwrap()
                .rank,
            3
        );
        let mut out = [0.0; 2];
        mul_f32(
            &BroadcastPlan::new(&[1], &[2]).unwrap(),
            &[3.0],
            &[2.0, -1.0],
            &mut out,
            Clamp::RELU,
        );
        assert_eq!(out, [6.0, 0.0]);
        binary_f32(
            &BroadcastPlan::new(&[2], &[2]).unwrap(),
            &[f32::INFINITY, 1.0],
            &[0.0, 2.0],
            &mut out,
            Clamp::IDENTITY,
            f32::max,
        );
        assert_eq!(out, [f32::INFINITY, 2.0]);
    }
}
