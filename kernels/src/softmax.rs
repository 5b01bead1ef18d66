//! Float SOFTMAX over the last axis: `out[c] = exp((x[c] − max)·beta) / Σ exp((x − max)·beta)`.
//!
//! Follows the reference step by step: the row maximum, then the exponentials stored in the
//! output while summed in channel order, then one division each. The sum stays sequential so
//! it matches the reference's order; rows are split over threads.

use crate::parallel;

/// Minimum elements per thread part. Unit tests use 1 so that small cases are split too.
const MIN_ELEMS_PER_PART: usize = if cfg!(test) { 1 } else { 1 << 14 };

/// Softmax of each `depth`-long row of `input` into `output`.
///
/// Preconditions (`debug_assert`ed): `depth > 0`, `input.len()` is a multiple of `depth`,
/// `output.len() == input.len()`.
pub fn softmax_f32(input: &[f32], output: &mut [f32], depth: usize, beta: f32, threads: usize) {
    debug_assert!(depth > 0 && input.len() % depth == 0);
    debug_assert_eq!(output.len(), input.len());
    if depth == 0 {
        return;
    }
    let len = input.len().min(output.len()) / depth * depth;
    let output = &mut output[..len];
    let grain = MIN_ELEMS_PER_PART.div_ceil(depth);
    parallel::for_each_part(output, depth, grain, threads, |r0, part| {
        let rows = &input[r0 * depth..r0 * depth + part.len()];
        for (x, out) in rows.chunks_exact(depth).zip(part.chunks_exact_mut(depth)) {
            softmax_row(x, out, beta);
        }
    });
}

fn softmax_row(x: &[f32], out: &mut [f32], beta: f32) {
    // `std::max` order: a NaN element does not replace the running maximum.
    let max = x.iter().fold(f32::MIN, |m, &v| if m < v { v } else { m });
    let mut sum = 0.0f32;
    for (o, &v) in out.iter_mut().zip(x) {
        let e = ((v - max) * beta).exp();
        *o = e;
        sum += e;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::{assert_close, assert_same_bits, Rng};

    /// Textbook softmax in f64, written independently of the kernel's structure.
    fn naive(x: &[f32], depth: usize, beta: f32) -> Vec<f32> {
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks(depth) {
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let exps: Vec<f64> = row
                .iter()
                .map(|&v| ((v as f64 - max) * beta as f64).exp())
                .collect();
            let sum: f64 = exps.iter().sum();
            out.extend(exps.iter().map(|e| (e / sum) as f32));
        }
        out
    }

    #[test]
    fn random_rows_match_naive_and_sum_to_one() {
        let mut rng = Rng(99);
        for (rows, depth, beta) in [
            (1, 1, 1.0),
            (3, 10, 1.0),
            (7, 21, 0.5),
            (2, 1000, 2.0),
            (33, 15, 1.0),
        ] {
            let x: Vec<f32> = rng.vec(rows * depth).iter().map(|v| v * 20.0).collect();
            let want = naive(&x, depth, beta);
            let mut one = vec![f32::NAN; x.len()];
            softmax_f32(&x, &mut one, depth, beta, 1);
            assert_close(&one, &want, "softmax");
            for row in one.chunks(depth) {
                let s: f32 = row.iter().sum();
                assert!((s - 1.0).abs() < 1e-4);
            }
            let mut two = vec![f32::NAN; x.len()];
            softmax_f32(&x, &mut two, depth, beta, 2);
            assert_same_bits(&one, &two, "softmax threads");
        }
        // Large logits must not overflow: the maximum is subtracted first.
        let mut out = [0.0; 2];
        softmax_f32(&[1000.0, 1000.0], &mut out, 2, 1.0, 1);
        assert_eq!(out, [0.5, 0.5]);
    }
}
