//! Float MEAN (and SUM) over any set of axes of a tensor of rank at most [`MAX_RANK`].
//!
//! Shapes are first collapsed: size-1 axes are dropped and neighbouring axes that are both
//! reduced or both kept are merged, so e.g. `[N, H, W, C]` over `{H, W}` becomes
//! `[N, H·W, C]` (kept, reduced, kept). The input is then read once in memory order, each
//! element added to its output slot. That is the reference's order of summation, and it
//! makes the innermost loop either a contiguous vector add (innermost axis kept) or one
//! running sum (innermost axis reduced). Single-threaded: these ops are a negligible share
//! of a network's time.

pub use crate::broadcast::MAX_RANK;

/// MEAN: `output[kept index] = Σ input / (number of reduced elements)`.
///
/// `shape` is the input shape and `reduce[i]` says whether axis `i` is reduced; the output
/// holds the kept axes in order (keep_dims only changes the output *shape*, which is the
/// caller's business). An empty reduction (a reduced axis of size 0) gives `0/0 = NaN`, like
/// the reference.
///
/// Preconditions (`debug_assert`ed): `shape.len() == reduce.len() <= MAX_RANK`,
/// `input.len()` = product of `shape`, `output.len()` = product of the kept axes.
pub fn mean_f32(input: &[f32], shape: &[usize], reduce: &[bool], output: &mut [f32]) {
    sum_f32(input, shape, reduce, output);
    let count: usize = shape
        .iter()
        .zip(reduce)
        .filter(|(_, &r)| r)
        .map(|(&d, _)| d)
        .product();
    let count = count as f32;
    for o in output.iter_mut() {
        *o /= count;
    }
}

/// SUM over the `reduce` axes; same conventions and preconditions as [`mean_f32`].
pub fn sum_f32(input: &[f32], shape: &[usize], reduce: &[bool], output: &mut [f32]) {
    debug_assert!(shape.len() == reduce.len() && shape.len() <= MAX_RANK);
    debug_assert_eq!(input.len(), shape.iter().product::<usize>());
    debug_assert_eq!(
        output.len(),
        shape
            .iter()
            .zip(reduce)
            .filter(|(_, &r)| !r)
            .map(|(&d, _)| d)
            .product::<usize>()
    );
    output.fill(0.0);
    if input.is_empty() {
        return;
    }
    // Collapse (see module docs).
    let mut dims = [0usize; MAX_RANK];
    let mut red = [false; MAX_RANK];
    let mut rank = 0;
    for (&d, &r) in shape.iter().zip(reduce) {
        if d == 1 {
            continue;
        }
        if rank > 0 && red[rank - 1] == r {
            dims[rank - 1] *= d;
        } else {
            dims[rank] = d;
            red[rank] = r;
            rank += 1;
        }
    }
    if rank == 0 {
        // A single element.
        output[0] += input[0];
        return;
    }
    // Output strides: kept axes are row-major over the kept axes; reduced axes stride 0.
    let mut ostride = [0usize; MAX_RANK];
    let mut s = 1;
    for i in (0..rank).rev() {
        if !red[i] {
            ostride[i] = s;
            s *= dims[i];
        }
    }
    let inner = dims[rank - 1];
    let inner_reduced = red[rank - 1];
    let outer = &dims[..rank - 1];
    let mut idx = [0usize; MAX_RANK];
    for chunk in input.chunks_exact(inner) {
        let obase: usize = idx[..rank - 1]
            .iter()
            .zip(&ostride)
            .map(|(i, s)| i * s)
            .sum();
        if inner_reduced {
            let mut acc = output[obase];
            for &v in chunk {
                acc += v;
            }
            output[obase] = acc;
        } else {
            for (o, &v) in output[obase..obase + inner].iter_mut().zip(chunk) {
                *o += v;
            }
        }
        // Advance the odometer over the outer axes.
        for a in (0..outer.len()).rev() {
            idx[a] += 1;
            if idx[a] < outer[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::{assert_close, Rng};

    /// For every output index, visit all input elements and add the matching ones (f64).
    fn naive(x: &[f32], shape: &[usize], reduce: &[bool]) -> Vec<f32> {
        let kept: Vec<usize> = (0..shape.len()).filter(|&i| !reduce[i]).collect();
        let out_len: usize = kept.iter().map(|&i| shape[i]).product();
        let count: usize = (0..shape.len())
            .filter(|&i| reduce[i])
            .map(|i| shape[i])
            .product();
        let mut sums = vec![0.0f64; out_len];
        for (flat, &v) in x.iter().enumerate() {
            // Unravel `flat` into coordinates, then ravel the kept ones.
            let mut rem = flat;
            let mut coords = vec![0; shape.len()];
            for a in (0..shape.len()).rev() {
                coords[a] = rem % shape[a];
                rem /= shape[a];
            }
            let mut o = 0;
            for &a in &kept {
                o = o * shape[a] + coords[a];
            }
            sums[o] += v as f64;
        }
        sums.iter().map(|s| (s / count as f64) as f32).collect()
    }

    #[test]
    fn random_axes_match_naive() {
        let mut rng = Rng(31337);
        for _ in 0..300 {
            let rank = rng.below(MAX_RANK + 1);
            let shape: Vec<usize> = (0..rank).map(|_| [1, 2, 3, 5, 7][rng.below(5)]).collect();
            let reduce: Vec<bool> = (0..rank).map(|_| rng.below(2) == 1).collect();
            let x = rng.vec(shape.iter().product());
            let out_len: usize = shape
                .iter()
                .zip(&reduce)
                .filter(|(_, &r)| !r)
                .map(|(&d, _)| d)
                .product();
            let mut out = vec![f32::NAN; out_len];
            mean_f32(&x, &shape, &reduce, &mut out);
            assert_close(
                &out,
                &naive(&x, &shape, &reduce),
                &format!("{shape:?} {reduce:?}"),
            );
        }
    }

    #[test]
    fn global_average_pool_and_empty() {
        // [1, 2, 2, 3] over H, W: mean of each channel.
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut out = [0.0; 3];
        mean_f32(&x, &[1, 2, 2, 3], &[false, true, true, false], &mut out);
        assert_eq!(out, [4.5, 5.5, 6.5]);
        let mut out = [0.0; 2];
        mean_f32(&[], &[2, 0], &[false, true], &mut out);
        assert!(out.iter().all(|v| v.is_nan()));
    }
}
