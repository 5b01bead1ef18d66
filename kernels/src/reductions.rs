//! Generic reductions (SUM, PROD, MAX, MIN over any axes), ARG_MAX/ARG_MIN, CUMSUM and TOP_K.
//!
//! Everything here visits the input in memory order and folds each element into its output
//! slot, which is the order of TFLite's reference kernels; float results therefore match the
//! reference up to the sign of a zero. Single-threaded: these ops are a negligible share of a
//! network's time, and one thread keeps results independent of the thread count.

pub use crate::broadcast::MAX_RANK;

/// Folds every input element into the output slot of its kept coordinates.
///
/// `shape` is the input shape and `reduce[i]` says whether axis `i` is reduced; the output
/// holds the kept axes in row-major order. Each output starts at `init` (what an empty
/// reduction gives); the first element reaching an output goes through `first`, later ones
/// through `next(acc, x)`. Generic reductions pass `first = |x| next(init, x)`; the quantized
/// product needs a different first step.
///
/// Returns `false` (writing nothing) when the lengths disagree with `shape`, or the rank
/// exceeds [`MAX_RANK`]: callers validate shapes first, so that is an internal error.
pub fn reduce<T: Copy, A: Copy>(
    input: &[T],
    shape: &[usize],
    reduce: &[bool],
    output: &mut [A],
    init: A,
    first: impl Fn(T) -> A,
    next: impl Fn(A, T) -> A,
) -> bool {
    let rank = shape.len();
    if rank != reduce.len() || rank > MAX_RANK {
        return false;
    }
    let in_len = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let out_len = shape
        .iter()
        .zip(reduce)
        .filter(|(_, &r)| !r)
        .try_fold(1usize, |n, (&d, _)| n.checked_mul(d));
    if in_len != Some(input.len()) || out_len != Some(output.len()) {
        return false;
    }
    output.fill(init);
    if input.is_empty() {
        return true;
    }
    // Output stride of each axis (0 for reduced axes).
    let mut ostride = [0usize; MAX_RANK];
    let mut s = 1;
    for i in (0..rank).rev() {
        if !reduce[i] {
            ostride[i] = s;
            s *= shape[i];
        }
    }
    let mut idx = [0usize; MAX_RANK];
    let mut o = 0usize;
    // How many reduced axes currently sit at a non-zero coordinate: the element is the
    // first of its output exactly when none do.
    let mut nonzero_reduced = 0usize;
    for &x in input {
        let slot = &mut output[o];
        *slot = if nonzero_reduced == 0 {
            first(x)
        } else {
            next(*slot, x)
        };
        // Advance the odometer, keeping `o` and `nonzero_reduced` in step.
        for a in (0..rank).rev() {
            idx[a] += 1;
            o += ostride[a];
            if reduce[a] && idx[a] == 1 {
                nonzero_reduced += 1;
            }
            if idx[a] < shape[a] {
                break;
            }
            o -= ostride[a] * shape[a];
            if reduce[a] {
                nonzero_reduced -= 1;
            }
            idx[a] = 0;
        }
    }
    true
}

/// Splits `shape` around `axis` into (outer, axis size, inner) element counts.
pub fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis.min(shape.len())].iter().product();
    let n = shape.get(axis).copied().unwrap_or(1);
    let inner = shape.get(axis + 1..).map_or(1, |s| s.iter().product());
    (outer, n, inner)
}

/// ARG_MAX (`better(a, b)` = `a > b`) or ARG_MIN (`a < b`) along the middle axis of an
/// `[outer, n, inner]` view: for each `(outer, inner)` the index of the first element no
/// later element beats, so ties go to the lowest index. `n == 0` writes index 0.
///
/// Returns `false` (writing nothing) when `input.len() != outer·n·inner` or
/// `output.len() != outer·inner`.
pub fn arg_best<T: Copy, I: Copy>(
    input: &[T],
    (outer, n, inner): (usize, usize, usize),
    output: &mut [I],
    better: impl Fn(T, T) -> bool,
    to_index: impl Fn(usize) -> I,
) -> bool {
    if outer.checked_mul(n).and_then(|v| v.checked_mul(inner)) != Some(input.len())
        || outer.checked_mul(inner) != Some(output.len())
    {
        return false;
    }
    for o in 0..outer {
        for i in 0..inner {
            let mut best = 0;
            if n > 0 {
                let base = o * n * inner + i;
                let mut v = input[base];
                for k in 1..n {
                    let x = input[base + k * inner];
                    if better(x, v) {
                        v = x;
                        best = k;
                    }
                }
            }
            output[o * inner + i] = to_index(best);
        }
    }
    true
}

/// CUMSUM along the middle axis of an `[outer, n, inner]` view, accumulating in `T` with
/// `add`. `exclusive` shifts by one (the first output is zero); `reverse` runs from the end.
///
/// Returns `false` (writing nothing) when either length differs from `outer·n·inner`.
pub fn cumsum<T: Copy + Default>(
    input: &[T],
    (outer, n, inner): (usize, usize, usize),
    exclusive: bool,
    reverse: bool,
    output: &mut [T],
    add: impl Fn(T, T) -> T,
) -> bool {
    let len = outer.checked_mul(n).and_then(|v| v.checked_mul(inner));
    if len != Some(input.len()) || input.len() != output.len() {
        return false;
    }
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let mut acc = T::default();
            for step in 0..n {
                let k = if reverse { n - 1 - step } else { step };
                let at = base + k * inner;
                if exclusive {
                    output[at] = acc;
                    acc = add(acc, input[at]);
                } else {
                    acc = add(acc, input[at]);
                    output[at] = acc;
                }
            }
        }
    }
    true
}

/// TOP_K over the last axis of `(rows, n)`: `rows` rows of `n` elements: for each row, the `k` largest
/// values in decreasing order with their indices; equal values are ordered by increasing
/// index (the reference's order). `greater(a, b)` is the strict order on values.
///
/// `scratch` holds `n` indices (only `k` are used). Returns `false` (writing nothing) when `k > n` or a length
/// disagrees: `input` = rows·n, `values` and `indices` = rows·k, `scratch` ≥ n.
pub fn top_k<T: Copy>(
    input: &[T],
    (rows, n): (usize, usize),
    k: usize,
    values: &mut [T],
    indices: &mut [i32],
    scratch: &mut [u32],
    greater: impl Fn(T, T) -> bool,
) -> bool {
    if k > n
        || rows.checked_mul(n) != Some(input.len())
        || rows.checked_mul(k) != Some(values.len())
        || values.len() != indices.len()
        || scratch.len() < n
        || u32::try_from(n).is_err()
    {
        return false;
    }
    if k == 0 {
        return true;
    }
    let heap = &mut scratch[..k];
    for r in 0..rows {
        let row = &input[r * n..(r + 1) * n];
        // `better(i, j)`: element i comes before element j in the output. A strict total
        // order: larger values first, the lower index among equals.
        let better = |i: u32, j: u32| {
            let (a, b) = (row[i as usize], row[j as usize]);
            greater(a, b) || (!greater(b, a) && i < j)
        };
        // A heap of the best k seen so far with the worst of them at the root: O(n·log k)
        // comparisons and no allocation. (Selecting the k best one pass at a time is O(n·k),
        // which a file can make take minutes with a large k.)
        for (j, h) in heap.iter_mut().enumerate() {
            *h = j as u32;
        }
        for i in (0..k / 2).rev() {
            sift_down(heap, k, i, &better);
        }
        for c in k..n {
            if better(c as u32, heap[0]) {
                heap[0] = c as u32;
                sift_down(heap, k, 0, &better);
            }
        }
        // Heap sort: the worst remaining goes to the end, so the slice ends best-first.
        for end in (1..k).rev() {
            heap.swap(0, end);
            sift_down(heap, end, 0, &better);
        }
        for (j, &src) in heap.iter().enumerate() {
            values[r * k + j] = row[src as usize];
            indices[r * k + j] = src as i32;
        }
    }
    true
}

/// Restores the heap order of `heap[..len]` below position `i`: every parent is worse than
/// (not `better` than) its children.
fn sift_down(heap: &mut [u32], len: usize, mut i: usize, better: &impl Fn(u32, u32) -> bool) {
    loop {
        let l = 2 * i + 1;
        if l >= len {
            return;
        }
        let mut worse = l;
        if l + 1 < len && better(heap[l], heap[l + 1]) {
            worse = l + 1;
        }
        if better(heap[i], heap[worse]) {
            heap.swap(i, worse);
            i = worse;
        } else {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::Rng;

    /// Unravels a flat index of `shape` into coordinates.
    fn coords(mut flat: usize, shape: &[usize]) -> Vec<usize> {
        let mut c = vec![0; shape.len()];
        for a in (0..shape.len()).rev() {
            c[a] = flat % shape[a];
            flat /= shape[a];
        }
        c
    }

    /// For every output, collects its inputs in memory order, then folds them.
    fn naive_max(x: &[i32], shape: &[usize], red: &[bool]) -> Vec<i32> {
        let kept: Vec<usize> = (0..shape.len()).filter(|&i| !red[i]).collect();
        let n: usize = kept.iter().map(|&i| shape[i]).product();
        let mut groups = vec![Vec::new(); n];
        for (f, &v) in x.iter().enumerate() {
            let c = coords(f, shape);
            let o = kept.iter().fold(0, |o, &a| o * shape[a] + c[a]);
            groups[o].push(v);
        }
        groups
            .iter()
            .map(|g| g.iter().copied().max().unwrap_or(i32::MIN))
            .collect()
    }

    #[test]
    fn reduce_matches_naive_max_and_first_flags() {
        let mut rng = Rng(7);
        for _ in 0..300 {
            let rank = rng.below(MAX_RANK + 1);
            let shape: Vec<usize> = (0..rank).map(|_| rng.below(4)).collect();
            let red: Vec<bool> = (0..rank).map(|_| rng.below(2) == 1).collect();
            let len: usize = shape.iter().product();
            let x: Vec<i32> = (0..len).map(|_| rng.below(1000) as i32 - 500).collect();
            let want = naive_max(&x, &shape, &red);
            let mut got = vec![0; want.len()];
            assert!(reduce(
                &x,
                &shape,
                &red,
                &mut got,
                i32::MIN,
                |v| v,
                |a, v| a.max(v)
            ));
            assert_eq!(got, want, "shape {shape:?} reduce {red:?}");
            // Counting with `first` = 1 must give each output's element count, proving
            // that `first` runs exactly once per non-empty output.
            let mut count = vec![0usize; want.len()];
            assert!(reduce(&x, &shape, &red, &mut count, 0, |_| 1, |a, _| a + 1));
            let per: usize = (0..rank).filter(|&i| red[i]).map(|i| shape[i]).product();
            if len > 0 {
                assert!(count.iter().all(|&c| c == per));
            }
        }
    }

    #[test]
    fn reduce_rejects_bad_lengths() {
        let mut out = [0i32; 2];
        assert!(!reduce(
            &[1, 2, 3],
            &[2, 2],
            &[false, true],
            &mut out,
            0,
            |v| v,
            |a, v| a + v
        ));
    }

    #[test]
    fn arg_max_ties_pick_first() {
        let x = [1, 5, 5, 2, 0, 0];
        let mut out = [0i32; 2];
        assert!(arg_best(
            &x,
            (2, 3, 1),
            &mut out,
            |a, b| a > b,
            |i| i as i32
        ));
        assert_eq!(out, [1, 0]);
        assert!(arg_best(
            &x,
            (2, 3, 1),
            &mut out,
            |a, b| a < b,
            |i| i as i32
        ));
        assert_eq!(out, [0, 1]);
    }

    #[test]
    fn cumsum_variants() {
        let x = [1, 2, 3, 10, 20, 30];
        let mut out = [0i32; 6];
        assert!(cumsum(&x, (2, 3, 1), false, false, &mut out, |a, b| a + b));
        assert_eq!(out, [1, 3, 6, 10, 30, 60]);
        assert!(cumsum(&x, (2, 3, 1), true, false, &mut out, |a, b| a + b));
        assert_eq!(out, [0, 1, 3, 0, 10, 30]);
        assert!(cumsum(&x, (2, 3, 1), false, true, &mut out, |a, b| a + b));
        assert_eq!(out, [6, 5, 3, 60, 50, 30]);
        assert!(cumsum(&x, (2, 3, 1), true, true, &mut out, |a, b| a + b));
        assert_eq!(out, [5, 3, 0, 50, 30, 0]);
        // Along the first axis of [3, 2].
        assert!(cumsum(&x, (1, 3, 2), false, false, &mut out, |a, b| a + b));
        assert_eq!(out, [1, 2, 4, 12, 24, 42]);
    }

    #[test]
    fn top_k_matches_stable_sort() {
        let mut rng = Rng(99);
        for i in 0..200 {
            let n = 1 + rng.below(if i % 2 == 0 { 9 } else { 300 });
            let rows = 1 + rng.below(3);
            let k = rng.below(n + 1);
            let x: Vec<i32> = (0..rows * n).map(|_| rng.below(4) as i32).collect();
            let mut vals = vec![0; rows * k];
            let mut idx = vec![0; rows * k];
            let mut scratch = vec![0u32; n];
            assert!(top_k(
                &x,
                (rows, n),
                k,
                &mut vals,
                &mut idx,
                &mut scratch,
                |a, b| a > b
            ));
            for r in 0..rows {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| x[r * n + b].cmp(&x[r * n + a]));
                for j in 0..k {
                    assert_eq!(idx[r * k + j] as usize, order[j]);
                    assert_eq!(vals[r * k + j], x[r * n + order[j]]);
                }
            }
        }
    }

    /// Found by fuzzing: choosing the k best one pass at a time made TOP_K O(n·k); a file
    /// with k in the thousands ran for minutes. The comparisons must grow as n·log k.
    #[test]
    fn top_k_comparisons_grow_as_n_log_k() {
        let (n, k) = (100_000usize, 5_000usize);
        let mut rng = Rng(5);
        let x: Vec<i32> = (0..n).map(|_| rng.below(1000) as i32).collect();
        let (mut vals, mut idx, mut scratch) = (vec![0; k], vec![0; k], vec![0u32; n]);
        let calls = std::cell::Cell::new(0usize);
        assert!(top_k(
            &x,
            (1, n),
            k,
            &mut vals,
            &mut idx,
            &mut scratch,
            |a, b| {
                calls.set(calls.get() + 1);
                a > b
            }
        ));
        let log_k = usize::BITS - k.leading_zeros();
        let bound = 4 * (n + k) * (log_k as usize + 1);
        assert!(
            calls.get() <= bound,
            "{} comparisons, bound {bound}",
            calls.get()
        );
        let mut sorted: Vec<usize> = (0..n).collect();
        sorted.sort_by(|&a, &b| x[b].cmp(&x[a]));
        assert!(idx.iter().zip(&sorted).all(|(&i, &s)| i as usize == s));
    }
}
