//! RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR on NHWC tensors, as TFLite's reference kernels
//! compute them.
//!
//! * float32 bilinear: source coordinates and weights in `f32`, the four products summed in
//!   the reference's order.
//! * uint8 bilinear: the same float template plus 0.5 before the truncating conversion (the
//!   reference instantiates its float kernel for `uint8_t`).
//! * int8 and int16 bilinear: the reference's integer kernel, coordinates in 1/1024 steps,
//!   the four products in `i64`, then a division by 2^20 rounding half away from zero.
//! * nearest neighbor: a copy of the chosen pixel, for any element type.
//!
//! Every coordinate depends only on the shapes and options, so all of them are computed at
//! preparation ([`BilinearF32::new`], [`BilinearInt::new`], [`nearest_indices`]); evaluation
//! only reads tables. Work is split over output rows; every output element is computed the
//! same way whatever the thread count.

use crate::parallel;

/// Minimum output elements per thread part.
const MIN_PER_PART: usize = if cfg!(test) { 1 } else { 1 << 14 };

/// Shapes of one resize: input `[batch, in_h, in_w, channels]`, output
/// `[batch, out_h, out_w, channels]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResizeShape {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub channels: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl ResizeShape {
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.channels
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.out_h * self.out_w * self.channels
    }

    /// Shapes the kernels accept: at least one input pixel per axis when there is any output,
    /// and sizes whose integer arithmetic (`1024 · size`) fits `i32`, as in the reference.
    pub fn is_valid(&self) -> bool {
        let fits = |n: usize| n < (1 << 20);
        let has_output = self.output_len() > 0;
        fits(self.in_h)
            && fits(self.in_w)
            && fits(self.out_h)
            && fits(self.out_w)
            && (!has_output || (self.in_h > 0 && self.in_w > 0))
            && self
                .batch
                .checked_mul(self.in_h.max(self.out_h))
                .and_then(|n| n.checked_mul(self.in_w.max(self.out_w)))
                .and_then(|n| n.checked_mul(self.channels))
                .is_some()
    }
}

/// Source rows or columns of one output row or column, and the weight of the second.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap<W> {
    lo: usize,
    hi: usize,
    /// For float kernels `input − lo` (the weight of `hi`); for the integer kernel the same in
    /// 1/1024 units (it can be negative with half-pixel centers near the top/left edge).
    frac: W,
}

/// `ComputeInterpolationValues` of the float kernel: `(y + 0.5)·scale − 0.5` or `y·scale`,
/// its floor (at least 0) and ceiling (at most `size − 1`).
fn float_taps(out: usize, input: usize, align_corners: bool, half_pixel: bool) -> Vec<Tap<f32>> {
    let mut scale = input as f32 / out as f32;
    if align_corners && out > 1 {
        scale = (input as f32 - 1.0) / (out as f32 - 1.0);
    }
    (0..out)
        .map(|y| {
            let v = y as f32;
            let scaled = if half_pixel {
                (v + 0.5) * scale - 0.5
            } else {
                v * scale
            };
            // Both taps stay inside the input even where rounding of a huge `scale` would
            // step past the last pixel.
            let lo = (scaled.floor() as i32).clamp(0, (input as i32 - 1).max(0));
            let hi = (scaled.ceil() as i32).min(input as i32 - 1);
            Tap {
                lo: lo as usize,
                hi: hi.max(0) as usize,
                frac: scaled - lo as f32,
            }
        })
        .collect()
}

/// Bilinear resize in `f32` arithmetic (float32 and uint8 tensors).
#[derive(Debug, Clone, PartialEq)]
pub struct BilinearF32 {
    shape: ResizeShape,
    ys: Vec<Tap<f32>>,
    xs: Vec<Tap<f32>>,
}

impl BilinearF32 {
    /// Precondition: `shape.is_valid()`.
    pub fn new(shape: ResizeShape, align_corners: bool, half_pixel_centers: bool) -> Self {
        BilinearF32 {
            shape,
            ys: float_taps(shape.out_h, shape.in_h, align_corners, half_pixel_centers),
            xs: float_taps(shape.out_w, shape.in_w, align_corners, half_pixel_centers),
        }
    }

    /// float32: `a·(1−dy)·(1−dx) + b·dy·(1−dx) + c·(1−dy)·dx + d·dy·dx`.
    pub fn run_f32(&self, input: &[f32], output: &mut [f32], threads: usize) {
        self.run(input, output, threads, |v| v);
    }

    /// uint8: the float sum plus 0.5, truncated (the sum is never negative).
    pub fn run_u8(&self, input: &[u8], output: &mut [u8], threads: usize) {
        self.run(input, output, threads, |v| (v + 0.5) as u8);
    }

    fn run<T: Copy + Send + Sync + Into<f32>>(
        &self,
        input: &[T],
        output: &mut [T],
        threads: usize,
        finish: impl Fn(f32) -> T + Sync,
    ) {
        let s = self.shape;
        if input.len() != s.input_len() || output.len() != s.output_len() || output.is_empty() {
            return;
        }
        let c = s.channels;
        let row = s.out_w * c;
        let grain = (MIN_PER_PART / row.max(1)).max(1);
        parallel::for_each_part(output, row, grain, threads, |first, part| {
            for (r, out_row) in part.chunks_exact_mut(row).enumerate() {
                let (b, y) = ((first + r) / s.out_h, (first + r) % s.out_h);
                let ty = self.ys[y];
                let base = b * s.in_h;
                let row0 = (base + ty.lo) * s.in_w;
                let row1 = (base + ty.hi) * s.in_w;
                let (wy1, wy0) = (ty.frac, 1.0 - ty.frac);
                for (x, out_px) in out_row.chunks_exact_mut(c).enumerate() {
                    let tx = self.xs[x];
                    let (wx1, wx0) = (tx.frac, 1.0 - tx.frac);
                    let p00 = &input[(row0 + tx.lo) * c..][..c];
                    let p10 = &input[(row1 + tx.lo) * c..][..c];
                    let p01 = &input[(row0 + tx.hi) * c..][..c];
                    let p11 = &input[(row1 + tx.hi) * c..][..c];
                    for ch in 0..c {
                        let v = p00[ch].into() * wy0 * wx0
                            + p10[ch].into() * wy1 * wx0
                            + p01[ch].into() * wy0 * wx1
                            + p11[ch].into() * wy1 * wx1;
                        out_px[ch] = finish(v);
                    }
                }
            }
        });
    }
}

/// `ComputeInterpolationValuesInteger`: coordinates in 1/1024 steps, C-style truncating
/// divisions.
fn int_taps(out: usize, input: usize, align_corners: bool, half_pixel: bool) -> Vec<Tap<i32>> {
    let (out_i, in_i) = (out as i32, input as i32);
    let mut scale = ((1 << 10) * in_i + out_i / 2) / out_i.max(1);
    if align_corners && out > 1 {
        scale = ((1 << 10) * (in_i - 1) + (out_i - 1) / 2) / (out_i - 1);
    }
    (0..out_i)
        .map(|y| {
            let scaled = if half_pixel {
                y * scale + scale / 2 - (1 << 9)
            } else {
                y * scale
            };
            // The reference clamps only the upper tap. With a large enough upscale
            // (out·(out−1) ≥ 2048·in) its rounded-up scale puts the lower tap past the last
            // pixel and it reads out of bounds; here both taps stop at the last pixel, which
            // gives that pixel's value, as for every other position beyond it.
            let lo = (scaled / (1 << 10)).clamp(0, (in_i - 1).max(0));
            let hi = ((scaled + (1 << 10) - 1) / (1 << 10)).min(in_i - 1).max(0);
            Tap {
                lo: lo as usize,
                hi: hi as usize,
                frac: scaled - (1 << 10) * lo,
            }
        })
        .collect()
}

/// Elements of the integer bilinear kernel.
pub trait BilinearElem: Copy + Send + Sync + Default {
    /// Whether the type is 8-bit, whose weighted sums fit in `i32` where `BilinearInt::new`
    /// finds the weights small enough.
    const BYTE: bool;
    fn to_i64(self) -> i64;
    /// C++ `static_cast` from a value already in range (wraps otherwise).
    fn from_i64(v: i64) -> Self;
}

impl BilinearElem for i8 {
    const BYTE: bool = true;
    fn to_i64(self) -> i64 {
        self.into()
    }
    fn from_i64(v: i64) -> Self {
        v as i8
    }
}

impl BilinearElem for i16 {
    const BYTE: bool = false;
    fn to_i64(self) -> i64 {
        self.into()
    }
    fn from_i64(v: i64) -> Self {
        v as i16
    }
}

/// Bilinear resize in integer arithmetic (int8 and int16 tensors).
#[derive(Debug, Clone, PartialEq)]
pub struct BilinearInt {
    shape: ResizeShape,
    ys: Vec<Tap<i32>>,
    xs: Vec<Tap<i32>>,
    /// Whether every 8-bit weighted sum, rounding term included, fits in `i32`: then int8
    /// runs in 32-bit arithmetic, which vectorizes, with the same exact integers.
    i32_sums: bool,
}

impl BilinearInt {
    /// Precondition: `shape.is_valid()` (so `1024 · size` fits `i32`).
    pub fn new(shape: ResizeShape, align_corners: bool, half_pixel_centers: bool) -> Self {
        let ys = int_taps(shape.out_h, shape.in_h, align_corners, half_pixel_centers);
        let xs = int_taps(shape.out_w, shape.in_w, align_corners, half_pixel_centers);
        // |Σ v·wy·wx| ≤ 128 · Σ|wy| · Σ|wx| over the two taps of each axis.
        let spread = |taps: &[Tap<i32>]| {
            taps.iter()
                .map(|t| {
                    let f = i64::from(t.frac);
                    f.abs() + ((1 << 10) - f).abs()
                })
                .max()
                .unwrap_or(0)
        };
        let bound = 128 * spread(&ys) * spread(&xs) + (1 << 19);
        BilinearInt {
            shape,
            ys,
            xs,
            i32_sums: bound <= i64::from(i32::MAX),
        }
    }

    /// `(Σ v·wy·wx ± 2^19) / 2^20` with the sign of the sum, truncating.
    pub fn run<T: BilinearElem>(&self, input: &[T], output: &mut [T], threads: usize) {
        let s = self.shape;
        if input.len() != s.input_len() || output.len() != s.output_len() || output.is_empty() {
            return;
        }
        let c = s.channels;
        let row = s.out_w * c;
        let grain = (MIN_PER_PART / row.max(1)).max(1);
        const ONE: i64 = 1 << 10;
        parallel::for_each_part(output, row, grain, threads, |first, part| {
            for (r, out_row) in part.chunks_exact_mut(row).enumerate() {
                let (b, y) = ((first + r) / s.out_h, (first + r) % s.out_h);
                let ty = self.ys[y];
                let base = b * s.in_h;
                let row0 = (base + ty.lo) * s.in_w;
                let row1 = (base + ty.hi) * s.in_w;
                let (wy1, wy0) = (i64::from(ty.frac), ONE - i64::from(ty.frac));
                for (x, out_px) in out_row.chunks_exact_mut(c).enumerate() {
                    let tx = self.xs[x];
                    let (wx1, wx0) = (i64::from(tx.frac), ONE - i64::from(tx.frac));
                    let p00 = &input[(row0 + tx.lo) * c..][..c];
                    let p10 = &input[(row1 + tx.lo) * c..][..c];
                    let p01 = &input[(row0 + tx.hi) * c..][..c];
                    let p11 = &input[(row1 + tx.hi) * c..][..c];
                    if T::BYTE && self.i32_sums {
                        // The same products and sum, exact in 32 bits (checked at `new`).
                        let w = [wy0 * wx0, wy1 * wx0, wy0 * wx1, wy1 * wx1].map(|v| v as i32);
                        let px = p00.iter().zip(p10).zip(p01.iter().zip(p11));
                        for (o, ((&a, &b), (&c, &d))) in out_px.iter_mut().zip(px) {
                            let v = |t: T| t.to_i64() as i32;
                            let sum = v(a) * w[0] + v(b) * w[1] + v(c) * w[2] + v(d) * w[3];
                            let round = if sum > 0 { 1 << 19 } else { -(1 << 19) };
                            *o = T::from_i64(i64::from((sum + round) / (1 << 20)));
                        }
                        continue;
                    }
                    for ch in 0..c {
                        let sum = p00[ch].to_i64() * wy0 * wx0
                            + p10[ch].to_i64() * wy1 * wx0
                            + p01[ch].to_i64() * wy0 * wx1
                            + p11[ch].to_i64() * wy1 * wx1;
                        let round = if sum > 0 { 1 << 19 } else { -(1 << 19) };
                        out_px[ch] = T::from_i64((sum + round) / (1 << 20));
                    }
                }
            }
        });
    }
}

/// `GetNearestNeighbor` for every output position of one axis: in `f32`,
/// `(i + offset)·scale` rounded (align_corners) or floored, at most `input − 1`, and at least
/// 0 with half-pixel centers.
pub fn nearest_indices(
    out: usize,
    input: usize,
    align_corners: bool,
    half_pixel: bool,
) -> Vec<usize> {
    let scale = if align_corners && out > 1 {
        (input as f32 - 1.0) / (out as f32 - 1.0)
    } else {
        input as f32 / out as f32
    };
    let offset = if half_pixel { 0.5f32 } else { 0.0 };
    (0..out)
        .map(|i| {
            let v = (i as f32 + offset) * scale;
            let mut n = if align_corners {
                v.round() as i32
            } else {
                v.floor() as i32
            };
            n = n.min(input as i32 - 1);
            if half_pixel {
                n = n.max(0);
            }
            // Without half-pixel centers the value is never negative; clamp anyway so that an
            // index is always valid.
            n.max(0) as usize
        })
        .collect()
}

/// Nearest-neighbor resize: each output pixel copies input pixel `(ys[y], xs[x])`.
/// Preconditions: `ys.len() == out_h`, `xs.len() == out_w`, entries below `in_h`/`in_w`.
pub fn nearest<T: Copy + Send + Sync>(
    shape: &ResizeShape,
    ys: &[usize],
    xs: &[usize],
    input: &[T],
    output: &mut [T],
    threads: usize,
) {
    let s = *shape;
    if input.len() != s.input_len()
        || output.len() != s.output_len()
        || output.is_empty()
        || ys.len() != s.out_h
        || xs.len() != s.out_w
        || ys.iter().any(|&y| y >= s.in_h)
        || xs.iter().any(|&x| x >= s.in_w)
    {
        return;
    }
    let c = s.channels;
    let row = s.out_w * c;
    let grain = (MIN_PER_PART / row.max(1)).max(1);
    parallel::for_each_part(output, row, grain, threads, |first, part| {
        for (r, out_row) in part.chunks_exact_mut(row).enumerate() {
            let (b, y) = ((first + r) / s.out_h, (first + r) % s.out_h);
            let src_row = ((b * s.in_h + ys[y]) * s.in_w) * c;
            for (x, px) in out_row.chunks_exact_mut(c).enumerate() {
                let at = src_row + xs[x] * c;
                px.copy_from_slice(&input[at..at + c]);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(in_h: usize, in_w: usize, out_h: usize, out_w: usize, c: usize) -> ResizeShape {
        ResizeShape {
            batch: 2,
            in_h,
            in_w,
            channels: c,
            out_h,
            out_w,
        }
    }

    /// Straight transcription of the reference formulas, one element at a time, in f64 for
    /// the float case (then compared with a tolerance) and exactly for the integer case.
    fn naive_float(s: &ResizeShape, input: &[f32], align: bool, half: bool) -> Vec<f64> {
        let sc = |i: usize, o: usize| {
            if align && o > 1 {
                (i as f64 - 1.0) / (o as f64 - 1.0)
            } else {
                i as f64 / o as f64
            }
        };
        let (hs, ws) = (sc(s.in_h, s.out_h), sc(s.in_w, s.out_w));
        let coord = |v: usize, scale: f64, size: usize| {
            let x = if half {
                (v as f64 + 0.5) * scale - 0.5
            } else {
                v as f64 * scale
            };
            let lo = (x.floor() as i64).max(0) as usize;
            let hi = (x.ceil() as i64).min(size as i64 - 1) as usize;
            (x - lo as f64, lo, hi)
        };
        let mut out = Vec::new();
        for b in 0..s.batch {
            for y in 0..s.out_h {
                let (dy, y0, y1) = coord(y, hs, s.in_h);
                for x in 0..s.out_w {
                    let (dx, x0, x1) = coord(x, ws, s.in_w);
                    for c in 0..s.channels {
                        let at = |yy: usize, xx: usize| {
                            input[((b * s.in_h + yy) * s.in_w + xx) * s.channels + c] as f64
                        };
                        out.push(
                            at(y0, x0) * (1.0 - dy) * (1.0 - dx)
                                + at(y1, x0) * dy * (1.0 - dx)
                                + at(y0, x1) * (1.0 - dy) * dx
                                + at(y1, x1) * dy * dx,
                        );
                    }
                }
            }
        }
        out
    }

    #[test]
    fn float_bilinear_matches_naive_for_every_option() {
        for (in_h, in_w, out_h, out_w) in [(3, 5, 7, 4), (4, 4, 2, 9), (1, 3, 3, 1), (5, 2, 5, 2)] {
            let s = shape(in_h, in_w, out_h, out_w, 3);
            let input: Vec<f32> = (0..s.input_len())
                .map(|i| ((i * 37) % 23) as f32 - 11.0)
                .collect();
            for (align, half) in [(false, false), (true, false), (false, true)] {
                let want = naive_float(&s, &input, align, half);
                for threads in [1, 3] {
                    let mut out = vec![0f32; s.output_len()];
                    BilinearF32::new(s, align, half).run_f32(&input, &mut out, threads);
                    for (o, w) in out.iter().zip(&want) {
                        assert!((*o as f64 - w).abs() < 1e-4, "{o} vs {w} ({align}, {half})");
                    }
                }
            }
        }
    }

    #[test]
    fn integer_bilinear_matches_hand_values() {
        // 1x2 -> 1x4 without options: scale_10 = (1024·2 + 2)/4 = 512, x = 0, 512, 1024, 1536;
        // taps (0,0,0), (0,1,512), (1,1,0), (1,1,512) (hi clamps to 1).
        let s = ResizeShape {
            batch: 1,
            in_h: 1,
            in_w: 2,
            channels: 1,
            out_h: 1,
            out_w: 4,
        };
        let mut out = [0i8; 4];
        BilinearInt::new(s, false, false).run(&[-3i8, 4], &mut out, 1);
        // Midpoint of −3 and 4 is 0.5: rounds away from zero to 1.
        assert_eq!(out, [-3, 1, 4, 4]);
        let mut out = [0i8; 4];
        BilinearInt::new(s, false, false).run(&[-4i8, 3], &mut out, 1);
        assert_eq!(out, [-4, -1, 3, 3]);
        // Half-pixel: x·512 + 256 − 512 = −256, 256, 768, 1280 → lo 0,0,0,1, frac −256 at
        // the left edge (weights 1280 and −256 on the same pixel).
        let mut out = [0i16; 4];
        BilinearInt::new(s, false, true).run(&[100i16, 200], &mut out, 1);
        // 100·(1024+256)/1024 − 100·256/1024 = 100; 100 + 100·256/1024 = 125; 175; 200.
        assert_eq!(out, [100, 125, 175, 200]);
    }

    #[test]
    fn integer_bilinear_close_to_float_and_thread_independent() {
        let s = shape(3, 4, 5, 7, 2);
        let input: Vec<i8> = (0..s.input_len())
            .map(|i| ((i * 53) % 255) as i32 as i8)
            .collect();
        let as_f: Vec<f32> = input.iter().map(|&v| v as f32).collect();
        for (align, half) in [(false, false), (true, false), (false, true)] {
            let want = naive_float(&s, &as_f, align, half);
            let mut one = vec![0i8; s.output_len()];
            BilinearInt::new(s, align, half).run(&input, &mut one, 1);
            let mut three = vec![0i8; s.output_len()];
            BilinearInt::new(s, align, half).run(&input, &mut three, 3);
            assert_eq!(one, three);
            for (o, w) in one.iter().zip(&want) {
                // The 1/1024 coordinate grid differs slightly from the float one.
                assert!((*o as f64 - w).abs() <= 2.0, "{o} vs {w}");
            }
        }
    }

    /// int8 sums in 32 bits give the 64-bit formula's values: every option, up- and
    /// downscales, the int8 extremes, one and three threads; a huge upscale keeps 64 bits.
    #[test]
    fn int8_sums_in_32_bits_equal_64_bit_sums() {
        for (in_h, in_w, out_h, out_w) in [(3, 4, 5, 7), (8, 8, 16, 16), (9, 7, 4, 3), (2, 2, 9, 2)]
        {
            let s = shape(in_h, in_w, out_h, out_w, 3);
            let input: Vec<i8> = (0..s.input_len())
                .map(|i| [-128, 127, -1, 0, 1][i % 5] ^ ((i * 37) as i8 & 0x70))
                .collect();
            for (align, half) in [(false, false), (true, false), (false, true)] {
                let fast = BilinearInt::new(s, align, half);
                assert!(fast.i32_sums, "{s:?}");
                let mut wide = fast.clone();
                wide.i32_sums = false;
                let mut want = vec![0i8; s.output_len()];
                wide.run(&input, &mut want, 1);
                for threads in [1, 3] {
                    let mut got = vec![0i8; s.output_len()];
                    fast.run(&input, &mut got, threads);
                    assert_eq!(got, want, "{s:?} {align} {half} {threads}");
                }
            }
        }
        let huge = BilinearInt::new(shape(2, 2, 4096, 4096, 1), false, false);
        assert!(!huge.i32_sums);
    }

    #[test]
    fn uint8_bilinear_rounds_half_up() {
        let s = ResizeShape {
            batch: 1,
            in_h: 1,
            in_w: 2,
            channels: 1,
            out_h: 1,
            out_w: 4,
        };
        let mut out = [0u8; 4];
        BilinearF32::new(s, false, false).run_u8(&[3, 4], &mut out, 1);
        assert_eq!(out, [3, 4, 4, 4]); // 3.5 + 0.5 truncates to 4
    }

    #[test]
    fn nearest_indices_by_option() {
        // 3 → 5 plain: floor(i·0.6) = 0,0,1,1,2.
        assert_eq!(nearest_indices(5, 3, false, false), [0, 0, 1, 1, 2]);
        // align_corners: round(i·0.5) = 0,1(0.5 rounds up),1,2(1.5),2.
        assert_eq!(nearest_indices(5, 3, true, false), [0, 1, 1, 2, 2]);
        // half-pixel: floor((i+0.5)·0.6) = 0,0,1,2,2.
        assert_eq!(nearest_indices(5, 3, false, true), [0, 0, 1, 2, 2]);
        // Downscale 4 → 2: 0, 2.
        assert_eq!(nearest_indices(2, 4, false, false), [0, 2]);
        let s = ResizeShape {
            batch: 1,
            in_h: 2,
            in_w: 2,
            channels: 2,
            out_h: 3,
            out_w: 1,
        };
        let input: Vec<u16> = (0..8).collect();
        let mut out = vec![0u16; 6];
        nearest(&s, &[0, 1, 1], &[1], &input, &mut out, 2);
        assert_eq!(out, [2, 3, 6, 7, 6, 7]);
    }

    /// Found by fuzzing: a large upscale (here 1→55 and 2→300 pixels) rounded the integer
    /// scale up so far that the lower tap of the last outputs fell past the input; the kernel
    /// panicked on the slice (the reference reads out of bounds there). Every tap now stays
    /// inside the input and positions past the last pixel take its value.
    #[test]
    fn large_integer_upscales_stay_inside_the_input() {
        for (inp, out) in [(1usize, 55usize), (2, 300), (3, 997), (4, 7)] {
            for (ac, hp) in [(false, false), (true, false), (false, true)] {
                for t in int_taps(out, inp, ac, hp) {
                    assert!(t.lo < inp && t.hi < inp, "{inp}->{out} {ac} {hp}: {t:?}");
                }
            }
            let s = ResizeShape {
                batch: 1,
                in_h: 1,
                in_w: inp,
                channels: 1,
                out_h: 1,
                out_w: out,
            };
            let input: Vec<i8> = (0..inp).map(|i| 10 * i as i8 - 7).collect();
            let mut output = vec![0i8; out];
            BilinearInt::new(s, false, false).run(&input, &mut output, 1);
            // Upsampling interpolates between neighbours: every value lies within the input's
            // range, and the last output is the last pixel.
            let (lo, hi) = (input[0].min(input[inp - 1]), input[0].max(input[inp - 1]));
            assert!(output.iter().all(|&v| lo <= v && v <= hi), "{output:?}");
            assert_eq!(output[out - 1], input[inp - 1]);
        }
    }
}
