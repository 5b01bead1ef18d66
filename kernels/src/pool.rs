//! Float AVERAGE_POOL_2D and MAX_POOL_2D (NHWC).
//!
//! Only in-bounds taps take part: the average divides by the number of valid taps (not the
//! window area) and the maximum ignores padding, as in the reference. Each output pixel's
//! channels are contiguous and serve directly as the accumulators, so the inner loop runs over
//! channels and vectorizes. Per element the taps are combined in `(fy, fx)` order, like the
//! reference. Work is split over output rows.

use crate::activation::Clamp;
use crate::parallel;

/// Minimum input reads per thread part. Unit tests use 1 so that small cases are split too.
const MIN_READS_PER_PART: usize = if cfg!(test) { 1 } else { 1 << 15 };

/// Shapes and options of one pooling op; padding is explicit (top/left).
///
/// A window with no in-bounds tap cannot arise from TFLite's SAME/VALID padding; if the
/// parameters create one anyway, the average there is `0/0 = NaN` and the maximum is
/// `clamp(f32::MIN)` (no panic either way).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolParams {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub channels: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub filter_h: usize,
    pub filter_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub clamp: Clamp,
}

impl PoolParams {
    /// Elements of the input `[batch, in_h, in_w, channels]`.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.channels
    }

    /// Elements of the output `[batch, out_h, out_w, channels]`.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_h * self.out_w * self.channels
    }
}

/// AVERAGE_POOL_2D. Preconditions (`debug_assert`ed): `input.len() == p.input_len()`,
/// `output.len() == p.output_len()`.
pub fn avg_pool_f32(p: &PoolParams, input: &[f32], output: &mut [f32], threads: usize) {
    pool::<Average>(p, input, output, threads);
}

/// MAX_POOL_2D. Preconditions as for [`avg_pool_f32`].
pub fn max_pool_f32(p: &PoolParams, input: &[f32], output: &mut [f32], threads: usize) {
    pool::<Maximum>(p, input, output, threads);
}

/// How one pooling op folds its window; monomorphized into the driver's loops.
trait Fold {
    const INIT: f32;
    fn step(acc: f32, v: f32) -> f32;
    fn finish(acc: f32, taps: f32) -> f32;
}

struct Average;

impl Fold for Average {
    const INIT: f32 = 0.0;
    #[inline(always)]
    fn step(acc: f32, v: f32) -> f32 {
        acc + v
    }
    #[inline(always)]
    fn finish(acc: f32, taps: f32) -> f32 {
        acc / taps
    }
}

struct Maximum;

impl Fold for Maximum {
    const INIT: f32 = f32::MIN;
    /// The reference's `std::max(acc, v)`: a NaN input is skipped, not propagated.
    #[inline(always)]
    fn step(acc: f32, v: f32) -> f32 {
        if acc < v {
            v
        } else {
            acc
        }
    }
    #[inline(always)]
    fn finish(acc: f32, _taps: f32) -> f32 {
        acc
    }
}

/// Shared driver: folds the in-bounds taps of every window in `(fy, fx)` order into the
/// output pixel's channels, then finishes and clamps them.
fn pool<F: Fold>(p: &PoolParams, input: &[f32], output: &mut [f32], threads: usize) {
    debug_assert_eq!(input.len(), p.input_len());
    debug_assert_eq!(output.len(), p.output_len());
    let c = p.channels;
    let row_len = p.out_w * c;
    if row_len == 0 || p.batch * p.out_h == 0 {
        return;
    }
    let output = &mut output[..p.batch * p.out_h * row_len];
    // A work estimate: it saturates, because the filter size comes from the model file and
    // may be far larger than the input (the windows are clipped to it below).
    let reads = row_len
        .saturating_mul(p.filter_h)
        .saturating_mul(p.filter_w);
    let grain = MIN_READS_PER_PART.div_ceil(reads.max(1));
    parallel::for_each_part(output, row_len, grain, threads, |r0, part| {
        for (i, row) in part.chunks_exact_mut(row_len).enumerate() {
            let r = r0 + i;
            let (b, oy) = (r / p.out_h, r % p.out_h);
            let (ys, ye) = window(oy, p.stride_h, p.pad_top, p.filter_h, p.in_h);
            for (ox, px) in row.chunks_exact_mut(c).enumerate() {
                let (xs, xe) = window(ox, p.stride_w, p.pad_left, p.filter_w, p.in_w);
                px.fill(F::INIT);
                for iy in ys..ye {
                    for ix in xs..xe {
                        let at = ((b * p.in_h + iy) * p.in_w + ix) * c;
                        for (o, &v) in px.iter_mut().zip(&input[at..at + c]) {
                            *o = F::step(*o, v);
                        }
                    }
                }
                let taps = ((ye - ys) * (xe - xs)) as f32;
                for o in px.iter_mut() {
                    *o = p.clamp.apply(F::finish(*o, taps));
                }
            }
        }
    });
}

/// In-bounds input range `[start, end)` of the window of output index `o` along one axis.
fn window(o: usize, stride: usize, pad: usize, filter: usize, size: usize) -> (usize, usize) {
    let origin = (o * stride) as isize - pad as isize;
    let start = origin.max(0);
    let end = (origin + filter as isize).min(size as isize).max(start);
    (start as usize, end as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::{assert_close, assert_same_bits, Rng};

    /// Direct loops: (pixel, channel, fy, fx), skipping out-of-bounds taps.
    fn naive(p: &PoolParams, x: &[f32], max: bool) -> Vec<f32> {
        let mut out = vec![0.0; p.output_len()];
        for b in 0..p.batch {
            for oy in 0..p.out_h {
                for ox in 0..p.out_w {
                    for ch in 0..p.channels {
                        let (mut sum, mut count, mut best) = (0.0f32, 0, f32::MIN);
                        for fy in 0..p.filter_h {
                            for fx in 0..p.filter_w {
                                let iy = (oy * p.stride_h + fy) as isize - p.pad_top as isize;
                                let ix = (ox * p.stride_w + fx) as isize - p.pad_left as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= p.in_h as isize
                                    || ix >= p.in_w as isize
                                {
                                    continue;
                                }
                                let v = x[((b * p.in_h + iy as usize) * p.in_w + ix as usize)
                                    * p.channels
                                    + ch];
                                sum += v;
                                count += 1;
                                best = best.max(v);
                            }
                        }
                        let v = if max { best } else { sum / count as f32 };
                        out[((b * p.out_h + oy) * p.out_w + ox) * p.channels + ch] =
                            v.max(p.clamp.min).min(p.clamp.max);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn random_pools_match_naive() {
        let mut rng = Rng(0x0bad_cafe);
        let chans = [1, 3, 6, 15, 21];
        for case in 0..150 {
            let (filter_h, filter_w) = (1 + rng.below(3), 1 + rng.below(4));
            let (stride_h, stride_w) = (1 + rng.below(3), 1 + rng.below(3));
            let (in_h, in_w) = (1 + rng.below(10), 1 + rng.below(10));
            // Padding strictly smaller than the filter keeps every window non-empty.
            let (pad_top, pad_left) = (rng.below(filter_h), rng.below(filter_w));
            let (pad_bottom, pad_right) = (rng.below(filter_h), rng.below(filter_w));
            let p = PoolParams {
                batch: 1 + rng.below(2),
                in_h,
                in_w,
                channels: chans[rng.below(chans.len())],
                out_h: (in_h + pad_top + pad_bottom).saturating_sub(filter_h) / stride_h + 1,
                out_w: (in_w + pad_left + pad_right).saturating_sub(filter_w) / stride_w + 1,
                filter_h,
                filter_w,
                stride_h,
                stride_w,
                pad_top,
                pad_left,
                clamp: [Clamp::NONE, Clamp::RELU, Clamp::RELU_N1_TO_1][case % 3],
            };
            let x: Vec<f32> = rng.vec(p.input_len()).iter().map(|v| v * 3.0).collect();
            for max in [false, true] {
                let want = naive(&p, &x, max);
                let run = |threads| {
                    let mut out = vec![f32::NAN; p.output_len()];
                    if max {
                        max_pool_f32(&p, &x, &mut out, threads);
                    } else {
                        avg_pool_f32(&p, &x, &mut out, threads);
                    }
                    out
                };
                let one = run(1);
                assert_close(&one, &want, &format!("pool max={max} {p:?}"));
                assert_same_bits(&one, &run(2), "pool threads");
                assert_same_bits(&one, &run(3), "pool threads");
            }
        }
    }
}
