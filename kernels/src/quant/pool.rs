//! Quantized AVERAGE_POOL_2D and MAX_POOL_2D (int8, uint8), bit-exact with
//! `reference_integer_ops::AveragePool/MaxPool` and `reference_ops` for uint8.
//!
//! Input and output share scale and zero point, so no rescaling happens. The average sums
//! the raw values over the window's valid taps and divides by their count `n`, rounding
//! half away from zero through C's truncating division:
//! `acc > 0 ? (acc + n/2)/n : (acc − n/2)/n`. The result is clamped to the fused
//! activation range of the output.

use super::error::{check_len, QuantError};
use super::geometry::PoolGeometry;
use super::params::{activation_range_for, clamp_i32, FusedActivation, QuantElem, QuantParams};

/// Clamp range of a quantized pooling op: the activation range of the output.
pub fn pool_activation_range<T: QuantElem>(
    activation: FusedActivation,
    output: QuantParams,
) -> Result<(i32, i32), QuantError> {
    activation_range_for::<T>(activation, output)
}

fn check_pool(g: &PoolGeometry, input_len: usize, output_len: usize) -> Result<(), QuantError> {
    g.validate()?;
    check_len("input", g.input_len(), input_len)?;
    check_len("output", g.output_len(), output_len)
}

/// Rounded division of a window sum by its tap count, half away from zero.
#[inline]
fn rounded_average(acc: i64, n: i64) -> i64 {
    if acc > 0 {
        (acc + n / 2) / n
    } else {
        (acc - n / 2) / n
    }
}

/// AVERAGE_POOL_2D. Errors if some window has no valid tap (TFLite's kernel fails then).
pub fn average_pool<T: QuantElem>(
    g: &PoolGeometry,
    act_min: i32,
    act_max: i32,
    input: &[T],
    output: &mut [T],
) -> Result<(), QuantError> {
    check_pool(g, input.len(), output.len())?;
    let row_len = g.out_w * g.channels;
    if row_len == 0 {
        return Ok(());
    }
    for (row, out_row) in output[..g.output_len()].chunks_mut(row_len).enumerate() {
        let (b, oy) = (row / g.out_h, row % g.out_h);
        let (y0, y1) = PoolGeometry::window(oy, g.stride_h, g.pad_top, g.filter_h, g.in_h);
        for ox in 0..g.out_w {
            let (x0, x1) = PoolGeometry::window(ox, g.stride_w, g.pad_left, g.filter_w, g.in_w);
            let n = ((y1 - y0) * (x1 - x0)) as i64;
            if n == 0 {
                return Err(QuantError::EmptyPoolingWindow);
            }
            for c in 0..g.channels {
                let mut acc = 0_i64;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        acc += i64::from(
                            input[((b * g.in_h + iy) * g.in_w + ix) * g.channels + c].to_i32(),
                        );
                    }
                }
                let v =
                    rounded_average(acc, n).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
                out_row[ox * g.channels + c] = T::from_i32(clamp_i32(v, act_min, act_max));
            }
        }
    }
    Ok(())
}

/// MAX_POOL_2D, output rows split over up to `threads` threads when large. An empty window
/// yields the element type's minimum before clamping, as in TFLite.
pub fn max_pool<T: QuantElem + Send + Sync>(
    g: &PoolGeometry,
    act_min: i32,
    act_max: i32,
    input: &[T],
    output: &mut [T],
    threads: usize,
) -> Result<(), QuantError> {
    check_pool(g, input.len(), output.len())?;
    let row_len = g.out_w * g.channels;
    if row_len == 0 {
        return Ok(());
    }
    let out = &mut output[..g.output_len()];
    let threads = if out.len() < MIN_PARALLEL_POOL {
        1
    } else {
        threads
    };
    crate::parallel::for_each_part(out, row_len, 1, threads, |row0, part| {
        max_pool_rows(g, act_min, act_max, input, row0, part)
    });
    Ok(())
}

/// Below this many output values a pool runs on one thread.
const MIN_PARALLEL_POOL: usize = 1 << 15;

/// Output rows `row0 ..` (rows of all images counted together) of [`max_pool`] into `out`.
fn max_pool_rows<T: QuantElem>(
    g: &PoolGeometry,
    act_min: i32,
    act_max: i32,
    input: &[T],
    row0: usize,
    out: &mut [T],
) {
    let row_len = g.out_w * g.channels;
    for (r, out_row) in out.chunks_mut(row_len).enumerate() {
        let row = row0 + r;
        let (b, oy) = (row / g.out_h, row % g.out_h);
        let (y0, y1) = PoolGeometry::window(oy, g.stride_h, g.pad_top, g.filter_h, g.in_h);
        for ox in 0..g.out_w {
            let (x0, x1) = PoolGeometry::window(ox, g.stride_w, g.pad_left, g.filter_w, g.in_w);
            let out_px = &mut out_row[ox * g.channels..(ox + 1) * g.channels];
            out_px.fill(T::from_i32(T::MIN));
            for iy in y0..y1 {
                for ix in x0..x1 {
                    let px = &input[((b * g.in_h + iy) * g.in_w + ix) * g.channels..][..g.channels];
                    // Branch-free so the compiler vectorises it across channels.
                    for (o, &x) in out_px.iter_mut().zip(px) {
                        *o = T::from_i32(x.to_i32().max(o.to_i32()));
                    }
                }
            }
            for o in out_px.iter_mut() {
                *o = T::from_i32(clamp_i32(o.to_i32(), act_min, act_max));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::conv::tests::Lcg;

    fn geometry(r: &mut Lcg) -> PoolGeometry {
        let (in_h, in_w) = (r.range(1, 7) as usize, r.range(1, 7) as usize);
        let (filter_h, filter_w) = (r.range(1, 3) as usize, r.range(1, 3) as usize);
        let (stride_h, stride_w) = (r.range(1, 2) as usize, r.range(1, 2) as usize);
        let same = r.range(0, 1) == 1;
        let dims = |size: usize, k: usize, s: usize| {
            let out = if same {
                size.div_ceil(s)
            } else {
                (size + s).saturating_sub(k) / s
            };
            let total = ((out.max(1) - 1) * s + k).saturating_sub(size);
            (out, total / 2)
        };
        let (out_h, pad_top) = dims(in_h, filter_h, stride_h);
        let (out_w, pad_left) = dims(in_w, filter_w, stride_w);
        PoolGeometry {
            batches: r.range(1, 2) as usize,
            in_h,
            in_w,
            channels: r.range(1, 4) as usize,
            out_h,
            out_w,
            filter_h,
            filter_w,
            stride_h,
            stride_w,
            pad_top,
            pad_left,
        }
    }

    /// Window values of output (b, oy, ox, c), found by scanning signed coordinates.
    fn window_values(
        g: &PoolGeometry,
        input: &[i32],
        b: usize,
        oy: usize,
        ox: usize,
        c: usize,
    ) -> Vec<i32> {
        let mut v = Vec::new();
        for fy in 0..g.filter_h {
            for fx in 0..g.filter_w {
                let iy = (oy * g.stride_h + fy) as i64 - g.pad_top as i64;
                let ix = (ox * g.stride_w + fx) as i64 - g.pad_left as i64;
                if iy >= 0 && ix >= 0 && (iy as usize) < g.in_h && (ix as usize) < g.in_w {
                    v.push(
                        input[((b * g.in_h + iy as usize) * g.in_w + ix as usize) * g.channels + c],
                    );
                }
            }
        }
        v
    }

    #[test]
    fn large_max_pool_is_thread_independent() {
        let mut r = Lcg(31);
        let g = PoolGeometry {
            batches: 1,
            in_h: 112,
            in_w: 113,
            channels: 24,
            out_h: 56,
            out_w: 57,
            filter_h: 3,
            filter_w: 3,
            stride_h: 2,
            stride_w: 2,
            pad_top: 0,
            pad_left: 1,
        };
        // Large enough to be split over threads.
        assert!(g.output_len() >= MIN_PARALLEL_POOL);
        let input = r.vec_i8(g.in_h * g.in_w * g.channels, -128, 127);
        let mut want = vec![0_i8; g.output_len()];
        max_pool_rows(&g, -100, 120, &input, 0, &mut want);
        for threads in [1, 2, 3] {
            let mut out = vec![0_i8; g.output_len()];
            max_pool(&g, -100, 120, &input, &mut out, threads).unwrap();
            assert_eq!(out, want, "threads {threads}");
        }
    }

    #[test]
    fn average_and_max_match_naive() {
        let mut r = Lcg(77);
        for case in 0..60 {
            let g = geometry(&mut r);
            let (lo, hi) = if case % 2 == 0 {
                (-128, 127)
            } else {
                (-20, 90)
            };
            let input = r.vec_i8(g.input_len(), -128, 127);
            let wide: Vec<i32> = input.iter().map(|&v| v.into()).collect();
            let mut avg = vec![0_i8; g.output_len()];
            let mut max = vec![0_i8; g.output_len()];
            average_pool(&g, lo, hi, &input, &mut avg).unwrap();
            max_pool(&g, lo, hi, &input, &mut max, 1).unwrap();
            let mut k = 0;
            for b in 0..g.batches {
                for oy in 0..g.out_h {
                    for ox in 0..g.out_w {
                        for c in 0..g.channels {
                            let w = window_values(&g, &wide, b, oy, ox, c);
                            // Exact mean rounded half away from zero, by rational comparison.
                            let sum: i64 = w.iter().map(|&v| v as i64).sum();
                            let n = w.len() as i64;
                            let q = sum.abs() / n;
                            let rem = sum.abs() % n;
                            let q = if 2 * rem >= n { q + 1 } else { q };
                            let mean = if sum < 0 { -q } else { q };
                            assert_eq!(
                                avg[k] as i64,
                                mean.clamp(lo as i64, hi as i64),
                                "avg case {case}"
                            );
                            let m = *w.iter().max().unwrap();
                            assert_eq!(max[k] as i32, m.clamp(lo, hi), "max case {case}");
                            k += 1;
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rounding_ties_and_empty_window() {
        // Window sums −5 over 2 taps → −2.5 → −3; 5/2 → 3; −3/2 → −2.
        assert_eq!(rounded_average(-5, 2), -3);
        assert_eq!(rounded_average(5, 2), 3);
        assert_eq!(rounded_average(-3, 2), -2);
        assert_eq!(rounded_average(-4, 3), -1);
        assert_eq!(rounded_average(0, 3), 0);
        let g = PoolGeometry {
            batches: 1,
            in_h: 1,
            in_w: 1,
            channels: 1,
            out_h: 1,
            out_w: 2,
            filter_h: 1,
            filter_w: 1,
            stride_h: 1,
            stride_w: 3,
            pad_top: 0,
            pad_left: 0,
        };
        let mut out = [0_u8; 2];
        assert_eq!(
            average_pool(&g, 0, 255, &[7_u8], &mut out),
            Err(QuantError::EmptyPoolingWindow)
        );
        max_pool(&g, 0, 255, &[7_u8], &mut out, 1).unwrap();
        assert_eq!(out, [7, 0]);
    }
}
