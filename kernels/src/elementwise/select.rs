//! SELECT and SELECT_V2: `out = cond ? x : y`, elementwise.
//!
//! SELECT_V2 broadcasts all three operands against each other ([`Broadcast3`]). SELECT
//! (version 1) instead allows a scalar condition, or a rank-1 condition that picks whole
//! slices along the first axis of `x` and `y` ([`select_slices`]). Values are copied as
//! they are, whatever their type or quantization; a condition byte is true when non-zero.

use crate::quant::broadcast::MAX_BROADCAST_RANK as MAX_RANK;

/// Precomputed iteration of a three-operand broadcast (numpy rules, rank up to 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast3 {
    rank: usize,
    /// Output dims, right-aligned in `MAX_RANK` slots.
    dims: [usize; MAX_RANK],
    /// Per operand, its element stride along each slot (0 where it is broadcast).
    strides: [[usize; MAX_RANK]; 3],
    lens: [usize; 3],
    out_len: usize,
}

impl Broadcast3 {
    /// Plans the broadcast of three shapes; `None` if a rank exceeds 6, the shapes do not
    /// broadcast, or a size overflows.
    pub fn new(shapes: [&[usize]; 3]) -> Option<Self> {
        let rank = shapes.iter().map(|s| s.len()).max()?;
        if rank > MAX_RANK {
            return None;
        }
        let mut padded = [[1usize; MAX_RANK]; 3];
        for (p, s) in padded.iter_mut().zip(shapes) {
            p[MAX_RANK - s.len()..].copy_from_slice(s);
        }
        let mut dims = [1usize; MAX_RANK];
        for (i, d) in dims.iter_mut().enumerate() {
            let mut out = 1;
            for p in &padded {
                match (out, p[i]) {
                    (_, 1) => {}
                    (1, n) => out = n,
                    (a, n) if a == n => {}
                    _ => return None,
                }
            }
            *d = out;
        }
        let mut strides = [[0usize; MAX_RANK]; 3];
        let mut lens = [0usize; 3];
        for k in 0..3 {
            let mut s = 1usize;
            for i in (0..MAX_RANK).rev() {
                strides[k][i] = if padded[k][i] == 1 { 0 } else { s };
                s = s.checked_mul(padded[k][i])?;
            }
            lens[k] = s;
        }
        let out_len = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
        Some(Self {
            rank,
            dims,
            strides,
            lens,
            out_len,
        })
    }

    /// The broadcast output shape (rank = the largest operand rank).
    pub fn output_shape(&self) -> &[usize] {
        &self.dims[MAX_RANK - self.rank..]
    }

    /// Elements of each operand and of the output.
    pub fn lens(&self) -> ([usize; 3], usize) {
        (self.lens, self.out_len)
    }

    /// Calls `f(i0, i1, i2, o)` for every output index in order.
    pub fn for_each(&self, mut f: impl FnMut(usize, usize, usize, usize)) {
        if self.out_len == 0 {
            return;
        }
        let mut idx = [0usize; MAX_RANK];
        let mut base = [0usize; 3];
        let last = MAX_RANK - 1;
        let inner = self.dims[last];
        let inner_strides = [
            self.strides[0][last],
            self.strides[1][last],
            self.strides[2][last],
        ];
        let mut o = 0;
        loop {
            for k in 0..inner {
                f(
                    base[0] + k * inner_strides[0],
                    base[1] + k * inner_strides[1],
                    base[2] + k * inner_strides[2],
                    o,
                );
                o += 1;
            }
            // Odometer over the outer slots.
            let mut d = last;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                for (b, s) in base.iter_mut().zip(&self.strides) {
                    *b += s[d];
                }
                if idx[d] < self.dims[d] {
                    break;
                }
                for (b, s) in base.iter_mut().zip(&self.strides) {
                    *b -= s[d] * idx[d];
                }
                idx[d] = 0;
            }
        }
    }
}

/// SELECT_V2 with broadcasting. Returns `false` (writing nothing) if a slice is shorter
/// than the plan requires.
pub fn select<T: Copy>(plan: &Broadcast3, cond: &[u8], x: &[T], y: &[T], out: &mut [T]) -> bool {
    let ([lc, lx, ly], lo) = plan.lens();
    if cond.len() < lc || x.len() < lx || y.len() < ly || out.len() < lo {
        return false;
    }
    if lc == lo && lx == lo && ly == lo {
        for (((o, &c), &a), &b) in out[..lo].iter_mut().zip(cond).zip(x).zip(y) {
            *o = if c != 0 { a } else { b };
        }
    } else {
        plan.for_each(|ic, ix, iy, o| out[o] = if cond[ic] != 0 { x[ix] } else { y[iy] });
    }
    true
}

/// SELECT (version 1) with a low-rank condition: `x` and `y` (same shape as `out`) are cut
/// into `cond.len()` equal slices along their first axis, and slice `i` comes from `x`
/// when `cond[i]` is true. A single condition value selects the whole tensor. Returns
/// `false` if `out.len()` is not a multiple of `cond.len()` or a slice is too short.
pub fn select_slices<T: Copy>(cond: &[u8], x: &[T], y: &[T], out: &mut [T]) -> bool {
    let n = out.len();
    if cond.is_empty() || n % cond.len() != 0 || x.len() < n || y.len() < n {
        return n == 0;
    }
    let inner = n / cond.len();
    if inner == 0 {
        return true;
    }
    for (i, (o, &c)) in out.chunks_exact_mut(inner).zip(cond).enumerate() {
        let src = if c != 0 { x } else { y };
        o.copy_from_slice(&src[i * inner..(i + 1) * inner]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index of output position `o` in an operand of shape `s`, by coordinates.
    fn naive_index(out: &[usize], s: &[usize], o: usize) -> usize {
        let mut coords = vec![0; out.len()];
        let mut rem = o;
        for i in (0..out.len()).rev() {
            coords[i] = rem % out[i];
            rem /= out[i];
        }
        let off = out.len() - s.len();
        s.iter().enumerate().fold(0, |idx, (i, &d)| {
            idx * d + if d == 1 { 0 } else { coords[off + i] }
        })
    }

    #[test]
    fn three_way_broadcast_matches_naive() {
        let cases: [[&[usize]; 3]; 5] = [
            [&[1, 4, 1], &[2, 4, 3], &[3]],
            [&[], &[2, 3], &[2, 3]],
            [&[2, 1, 1, 1, 1, 2], &[1, 3, 1, 2, 1, 1], &[2, 1]],
            [&[5], &[5], &[5]],
            [&[0, 3], &[1, 3], &[3]],
        ];
        for shapes in cases {
            let plan = Broadcast3::new(shapes).unwrap();
            let out = plan.output_shape().to_vec();
            let mut n = 0;
            plan.for_each(|a, b, c, o| {
                assert_eq!(o, n);
                assert_eq!(a, naive_index(&out, shapes[0], o));
                assert_eq!(b, naive_index(&out, shapes[1], o));
                assert_eq!(c, naive_index(&out, shapes[2], o));
                n += 1;
            });
            assert_eq!(n, plan.lens().1);
        }
        assert!(Broadcast3::new([&[2], &[3], &[1]]).is_none());
        assert!(Broadcast3::new([&[1; 7], &[1], &[1]]).is_none());
    }

    #[test]
    fn select_values() {
        let plan = Broadcast3::new([&[2, 1], &[2, 2], &[1]]).unwrap();
        let mut out = [0i32; 4];
        assert!(select(&plan, &[1, 0], &[1, 2, 3, 4], &[9], &mut out));
        assert_eq!(out, [1, 2, 9, 9]);
        assert!(!select(&plan, &[1], &[1, 2, 3, 4], &[9], &mut out));
        let mut out = [0u8; 6];
        assert!(select_slices(
            &[0, 2, 1],
            &[1, 2, 3, 4, 5, 6],
            &[7, 8, 9, 10, 11, 12],
            &mut out
        ));
        assert_eq!(out, [7, 8, 3, 4, 5, 6]);
        assert!(select_slices(&[0], &[1, 2], &[3, 4], &mut out[..2]));
        assert_eq!(&out[..2], &[3, 4]);
        assert!(!select_slices(&[0, 1, 1, 0], &[0; 6], &[0; 6], &mut out));
    }
}
