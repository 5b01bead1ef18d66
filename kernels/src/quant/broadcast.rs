//! Numpy-style broadcasting for the quantized binary ops (ADD, MUL), up to rank 6.
//!
//! [`BroadcastPlan::new`] works out the output shape and per-input element strides
//! (0 along broadcast dimensions) once, at prepare time; [`BroadcastPlan::for_each`]
//! then walks the output in row-major order without allocating.

use super::error::QuantError;

/// Highest rank TFLite's broadcasting binary kernels accept.
pub const MAX_BROADCAST_RANK: usize = 6;

/// Precomputed index mapping of a broadcasting binary op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastPlan {
    rank: usize,
    /// Output dims, right-aligned in 6 slots (leading slots are 1).
    out_dims: [usize; MAX_BROADCAST_RANK],
    stride1: [usize; MAX_BROADCAST_RANK],
    stride2: [usize; MAX_BROADCAST_RANK],
    len1: usize,
    len2: usize,
    out_len: usize,
    /// The walk of [`BroadcastPlan::for_each_run`]: the output dims with neighbours merged
    /// where each input either broadcasts along both or is contiguous across both (a tensor
    /// plus a scalar becomes one run), right-aligned like `out_dims`, and the inputs'
    /// strides along them.
    run_dims: [usize; MAX_BROADCAST_RANK],
    run_stride1: [usize; MAX_BROADCAST_RANK],
    run_stride2: [usize; MAX_BROADCAST_RANK],
}

/// Merges the dims of `out_dims` as described at [`BroadcastPlan::run_dims`].
#[allow(clippy::type_complexity)]
fn merged(
    out_dims: &[usize; MAX_BROADCAST_RANK],
    stride1: &[usize; MAX_BROADCAST_RANK],
    stride2: &[usize; MAX_BROADCAST_RANK],
) -> (
    [usize; MAX_BROADCAST_RANK],
    [usize; MAX_BROADCAST_RANK],
    [usize; MAX_BROADCAST_RANK],
) {
    let mut dims = [1; MAX_BROADCAST_RANK];
    let mut s1 = [0; MAX_BROADCAST_RANK];
    let mut s2 = [0; MAX_BROADCAST_RANK];
    // Filled from the right; `j` is the slot of the innermost group still open.
    let mut j = MAX_BROADCAST_RANK;
    for i in (0..MAX_BROADCAST_RANK).rev() {
        let d = out_dims[i];
        if d == 1 {
            continue;
        }
        let joins = |outer: usize, inner: usize, inner_dim: usize| {
            (outer == 0 && inner == 0)
                || (outer != 0 && inner != 0 && Some(outer) == inner.checked_mul(inner_dim))
        };
        if j < MAX_BROADCAST_RANK
            && joins(stride1[i], s1[j], dims[j])
            && joins(stride2[i], s2[j], dims[j])
        {
            dims[j] *= d;
        } else {
            j -= 1;
            dims[j] = d;
            s1[j] = stride1[i];
            s2[j] = stride2[i];
        }
    }
    (dims, s1, s2)
}

fn right_aligned(shape: &[usize]) -> [usize; MAX_BROADCAST_RANK] {
    let mut d = [1; MAX_BROADCAST_RANK];
    d[MAX_BROADCAST_RANK - shape.len()..].copy_from_slice(shape);
    d
}

fn checked_len(dims: &[usize]) -> Result<usize, QuantError> {
    dims.iter()
        .try_fold(1_usize, |a, &d| a.checked_mul(d))
        .ok_or(QuantError::BadGeometry("broadcast size overflow"))
}

impl BroadcastPlan {
    /// Plans `out = op(in1, in2)` for the given shapes. Each dimension pair must be equal or
    /// contain a 1 (a 0 against a 1 gives 0, as in TFLite).
    pub fn new(shape1: &[usize], shape2: &[usize]) -> Result<Self, QuantError> {
        if shape1.len() > MAX_BROADCAST_RANK || shape2.len() > MAX_BROADCAST_RANK {
            return Err(QuantError::BadGeometry("broadcast rank above 6"));
        }
        let rank = shape1.len().max(shape2.len());
        let (d1, d2) = (right_aligned(shape1), right_aligned(shape2));
        let mut out_dims = [1; MAX_BROADCAST_RANK];
        for i in 0..MAX_BROADCAST_RANK {
            out_dims[i] = match (d1[i], d2[i]) {
                (a, b) if a == b => a,
                (1, b) => b,
                (a, 1) => a,
                _ => return Err(QuantError::BadGeometry("shapes are not broadcastable")),
            };
        }
        let mut stride1 = [0; MAX_BROADCAST_RANK];
        let mut stride2 = [0; MAX_BROADCAST_RANK];
        let (mut s1, mut s2) = (1_usize, 1_usize);
        for i in (0..MAX_BROADCAST_RANK).rev() {
            stride1[i] = if d1[i] == 1 { 0 } else { s1 };
            stride2[i] = if d2[i] == 1 { 0 } else { s2 };
            s1 = s1.saturating_mul(d1[i]);
            s2 = s2.saturating_mul(d2[i]);
        }
        let out_len = checked_len(&out_dims)?;
        let (run_dims, run_stride1, run_stride2) = merged(&out_dims, &stride1, &stride2);
        Ok(Self {
            rank,
            out_dims,
            stride1,
            stride2,
            len1: checked_len(shape1)?,
            len2: checked_len(shape2)?,
            out_len,
            run_dims,
            run_stride1,
            run_stride2,
        })
    }

    /// The output shape (rank = the larger input rank).
    pub fn output_shape(&self) -> Vec<usize> {
        self.out_dims[MAX_BROADCAST_RANK - self.rank..].to_vec()
    }

    /// Elements of input 1, input 2 and the output.
    pub fn lens(&self) -> (usize, usize, usize) {
        (self.len1, self.len2, self.out_len)
    }

    /// Calls `f(i1, i2, o)` for every output index `o` in order, with the input indices
    /// that broadcast to it.
    #[inline]
    pub fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        self.for_each_run(|i1, s1, i2, s2, o, n| {
            for k in 0..n {
                f(i1 + k * s1, i2 + k * s2, o + k);
            }
        });
    }

    /// `Some(c)` when one input is a single row of `c ≤ 256` values (the output's innermost
    /// dimension) that every outer position repeats, and the other input has the output's
    /// shape.
    pub fn repeated_row(&self) -> Option<usize> {
        let c = self.out_dims[MAX_BROADCAST_RANK - 1];
        let row = |len: usize, stride: &[usize; MAX_BROADCAST_RANK]| {
            len == c && stride[MAX_BROADCAST_RANK - 1] == 1
        };
        let ok = (1..=256).contains(&c)
            && ((row(self.len1, &self.stride1) && self.len2 == self.out_len)
                || (row(self.len2, &self.stride2) && self.len1 == self.out_len));
        ok.then_some(c)
    }

    /// Calls `f(i1, step1, i2, step2, o, n)` for each run of output elements in order:
    /// elements `o .. o + n` take input 1 at `i1 + k·step1` and input 2 at `i2 + k·step2`
    /// (each step 0 or 1). A run is the innermost output dimension, or several merged
    /// dimensions where both inputs allow it (see `run_dims`).
    #[inline]
    pub fn for_each_run(&self, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
        if self.out_len == 0 {
            return;
        }
        let (dims, st1, st2) = (&self.run_dims, &self.run_stride1, &self.run_stride2);
        let inner = dims[MAX_BROADCAST_RANK - 1];
        let (is1, is2) = (st1[MAX_BROADCAST_RANK - 1], st2[MAX_BROADCAST_RANK - 1]);
        let mut idx = [0_usize; MAX_BROADCAST_RANK - 1];
        let (mut base1, mut base2) = (0_usize, 0_usize);
        let mut o = 0;
        loop {
            f(base1, is1, base2, is2, o, inner);
            o += inner;
            let mut d = MAX_BROADCAST_RANK - 1;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                base1 += st1[d];
                base2 += st2[d];
                if idx[d] < dims[d] {
                    break;
                }
                base1 -= st1[d] * idx[d];
                base2 -= st2[d] * idx[d];
                idx[d] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index of output position `pos` (row-major over `out`) in an input of shape `s`.
    fn naive_index(out: &[usize], s: &[usize], o: usize) -> usize {
        let mut coords = vec![0; out.len()];
        let mut rem = o;
        for i in (0..out.len()).rev() {
            coords[i] = rem % out[i];
            rem /= out[i];
        }
        let off = out.len() - s.len();
        let mut idx = 0;
        for (i, &d) in s.iter().enumerate() {
            let c = if d == 1 { 0 } else { coords[off + i] };
            idx = idx * d + c;
        }
        idx
    }

    #[test]
    fn matches_naive_indexing() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 3, 4], &[4]),
            (&[2, 1, 4], &[3, 1]),
            (&[1], &[5, 2]),
            (&[2, 3], &[2, 3]),
            (&[1, 2, 1, 3, 1, 2], &[2, 1, 2, 1, 2, 1]),
            (&[], &[3, 2]),
            (&[4, 1, 1], &[1, 1, 1]),
            (&[1, 6, 5, 3], &[]),
            (&[5, 1, 3, 4], &[1, 1, 3, 4]),
            (&[2, 3, 4, 5], &[2, 1, 1, 5]),
            (&[3, 1, 4, 1, 2], &[3, 2, 4, 5, 2]),
            (&[2, 3, 1], &[1, 1, 1]),
        ];
        for (s1, s2) in cases {
            let p = BroadcastPlan::new(s1, s2).unwrap();
            let out = p.output_shape();
            let mut seen = Vec::new();
            p.for_each(|i1, i2, o| seen.push((i1, i2, o)));
            assert_eq!(seen.len(), p.lens().2);
            for &(i1, i2, o) in &seen {
                assert_eq!(i1, naive_index(&out, s1, o), "{s1:?} {s2:?} o={o}");
                assert_eq!(i2, naive_index(&out, s2, o), "{s1:?} {s2:?} o={o}");
            }
            // The runs expand to the same triples, in the same order.
            let mut runs = Vec::new();
            p.for_each_run(|i1, st1, i2, st2, o, n| {
                assert!(st1 <= 1 && st2 <= 1);
                runs.extend((0..n).map(|k| (i1 + k * st1, i2 + k * st2, o + k)));
            });
            assert_eq!(runs, seen, "{s1:?} {s2:?}");
        }
    }

    /// Neighbouring dimensions merge into long runs where both inputs allow it.
    #[test]
    fn runs_span_merged_dimensions() {
        let runs = |s1: &[usize], s2: &[usize]| {
            let mut r = Vec::new();
            BroadcastPlan::new(s1, s2)
                .unwrap()
                .for_each_run(|_, st1, _, st2, _, n| r.push((st1, st2, n)));
            r
        };
        assert_eq!(runs(&[1, 64, 64, 3], &[]), [(1, 0, 12288)]);
        assert_eq!(runs(&[1], &[2, 3, 4]), [(0, 1, 24)]);
        assert_eq!(runs(&[2, 3, 4], &[2, 3, 4]), [(1, 1, 24)]);
        assert_eq!(runs(&[2, 3, 4], &[4]), [(1, 1, 4); 6]);
        assert_eq!(runs(&[5, 3, 4], &[5, 1, 1]), [(1, 0, 12); 5]);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(BroadcastPlan::new(&[2, 3], &[3, 2]).is_err());
        assert!(BroadcastPlan::new(&[1; 7], &[1]).is_err());
        let p = BroadcastPlan::new(&[0, 3], &[1, 3]).unwrap();
        assert_eq!(p.output_shape(), vec![0, 3]);
        let mut n = 0;
        p.for_each(|_, _, _| n += 1);
        assert_eq!(n, 0);
    }
}
