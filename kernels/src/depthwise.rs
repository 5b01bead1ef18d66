//! Float DEPTHWISE_CONV_2D (NHWC input, filter `[1, KH, KW, IC·M]`, output channel
//! `oc = ic·M + m`).
//!
//! A direct kernel: each output pixel's channels are contiguous, and so are the input's and
//! the filter's for one tap, so the inner loop runs over channels and vectorizes. Output
//! channels go in register blocks of `CB` (16), every tap of the window accumulated before the
//! block is stored; with a depth multiplier above 1 the input value of each output channel is
//! gathered through a small index table. Each output value is the sum over in-bounds taps in
//! `(ky, kx)` order starting from zero, plus the bias, then the clamp: the reference's order,
//! independent of blocking and threads. Work is split over output rows. Like the GEMM, the
//! code is also compiled with AVX2 enabled and picked at run time (no FMA: same bits).

use crate::activation::Clamp;
use crate::parallel;

/// Channels per register block for depth multiplier 1.
const CB: usize = 16;
/// Minimum multiply-adds per thread part.
/// Unit tests use 1 so that even small cases are split and thread-count independence is
/// really exercised.
const MIN_MACS_PER_PART: usize = if cfg!(test) { 1 } else { 1 << 15 };

/// Shapes and options of one DEPTHWISE_CONV_2D. `depth_multiplier` is `M` from the shapes
/// (filter channels / input channels), not the option field. Padding is explicit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthwiseParams {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub depth_multiplier: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub clamp: Clamp,
}

impl DepthwiseParams {
    /// Output channels, `in_c · depth_multiplier`.
    pub fn out_c(&self) -> usize {
        self.in_c * self.depth_multiplier
    }

    /// Elements of the input `[batch, in_h, in_w, in_c]`.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.in_c
    }

    /// Elements of the output `[batch, out_h, out_w, out_c]`.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_h * self.out_w * self.out_c()
    }

    /// Elements of the filter `[1, kernel_h, kernel_w, out_c]`.
    pub fn filter_len(&self) -> usize {
        self.kernel_h * self.kernel_w * self.out_c()
    }
}

/// DEPTHWISE_CONV_2D: `output = clamp(depthwise(input, filter) + bias)`.
///
/// Preconditions (`debug_assert`ed): `input.len() == p.input_len()`,
/// `filter.len() == p.filter_len()`, `output.len() == p.output_len()`, `bias` is `None` or
/// holds `p.out_c()` values.
pub fn depthwise_conv2d_f32(
    p: &DepthwiseParams,
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
    threads: usize,
) {
    let oc = p.out_c();
    debug_assert_eq!(input.len(), p.input_len());
    debug_assert_eq!(filter.len(), p.filter_len());
    debug_assert_eq!(output.len(), p.output_len());
    debug_assert!(bias.is_none_or(|b| b.len() >= oc));
    let row_len = p.out_w * oc;
    if row_len == 0 || p.batch * p.out_h == 0 {
        return;
    }
    let output = &mut output[..p.batch * p.out_h * row_len];
    let macs_per_row = (row_len * p.kernel_h * p.kernel_w).max(1);
    let grain = MIN_MACS_PER_PART.div_ceil(macs_per_row);
    parallel::for_each_part(output, row_len, grain, threads, |r0, part| {
        rows(p, input, filter, bias, r0, part)
    });
}

/// Output rows `r0..` (flat index over `[batch, out_h]`) into `part`, using the AVX2 build
/// when the CPU has it. Both builds run the same code without FMA: identical results.
fn rows(
    p: &DepthwiseParams,
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    r0: usize,
    part: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of this
        // target-feature function; its body is safe code.
        unsafe { rows_avx2(p, input, filter, bias, r0, part) };
        return;
    }
    rows_impl(p, input, filter, bias, r0, part);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2(
    p: &DepthwiseParams,
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    r0: usize,
    part: &mut [f32],
) {
    rows_impl(p, input, filter, bias, r0, part);
}

/// The in-bounds taps of one window: an `ny × nx` grid (valid taps form a rectangle) with
/// the offsets of its first tap and the steps between taps, in the input and the filter.
struct Window {
    ny: usize,
    nx: usize,
    x0: usize,
    x_row: usize,
    x_col: usize,
    w0: usize,
    w_row: usize,
    w_col: usize,
}

#[inline(always)]
fn rows_impl(
    p: &DepthwiseParams,
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    r0: usize,
    part: &mut [f32],
) {
    let oc = p.out_c();
    for (i, row) in part.chunks_exact_mut(p.out_w * oc).enumerate() {
        let r = r0 + i;
        let (b, oy) = (r / p.out_h, r % p.out_h);
        let iy0 = (oy * p.stride_h) as isize - p.pad_top as isize;
        let (ky0, ky1) = tap_range(iy0, p.dilation_h, p.kernel_h, p.in_h);
        for (ox, px) in row.chunks_exact_mut(oc).enumerate() {
            let ix0 = (ox * p.stride_w) as isize - p.pad_left as isize;
            let (kx0, kx1) = tap_range(ix0, p.dilation_w, p.kernel_w, p.in_w);
            let (ny, nx) = (ky1 - ky0, kx1 - kx0);
            let x0 = if ny > 0 && nx > 0 {
                // Both coordinates are in bounds here, so the casts are exact.
                let iy = (iy0 + (ky0 * p.dilation_h) as isize) as usize;
                let ix = (ix0 + (kx0 * p.dilation_w) as isize) as usize;
                ((b * p.in_h + iy) * p.in_w + ix) * p.in_c
            } else {
                0
            };
            let win = Window {
                ny,
                nx,
                x0,
                x_row: p.dilation_h * p.in_w * p.in_c,
                x_col: p.dilation_w * p.in_c,
                w0: (ky0 * p.kernel_w + kx0) * oc,
                w_row: p.kernel_w * oc,
                w_col: oc,
            };
            if p.depth_multiplier == 1 {
                pixel_m1(input, filter, bias, p.clamp, &win, px);
            } else {
                pixel_general(input, filter, bias, p.clamp, p.depth_multiplier, &win, px);
            }
        }
    }
}

/// Range `[lo, hi)` of kernel taps `t` with `0 <= origin + t·dilation < size`: always one
/// contiguous run. A zero dilation (never valid in a model, but not worth a panic) puts every
/// tap on `origin`.
fn tap_range(origin: isize, dilation: usize, taps: usize, size: usize) -> (usize, usize) {
    let size = size as isize;
    if dilation == 0 {
        let all = if origin >= 0 && origin < size {
            taps
        } else {
            0
        };
        return (0, all);
    }
    let d = dilation as isize;
    let lo = if origin >= 0 {
        0
    } else {
        (-origin + d - 1) / d
    };
    let hi = if size <= origin {
        0
    } else {
        (size - origin + d - 1) / d
    };
    let lo = (lo as usize).min(taps);
    let hi = (hi as usize).min(taps).max(lo);
    (lo, hi)
}

/// Depth multiplier 1: channel blocks held in registers across all taps.
#[inline(always)]
fn pixel_m1(
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    clamp: Clamp,
    win: &Window,
    px: &mut [f32],
) {
    let c = px.len();
    let mut c0 = 0;
    while c0 + CB <= c {
        let mut acc = [0.0f32; CB];
        for ty in 0..win.ny {
            for tx in 0..win.nx {
                let xi = win.x0 + ty * win.x_row + tx * win.x_col + c0;
                let wi = win.w0 + ty * win.w_row + tx * win.w_col + c0;
                let (x, w) = (&input[xi..xi + CB], &filter[wi..wi + CB]);
                for ((a, &xv), &wv) in acc.iter_mut().zip(x).zip(w) {
                    *a += xv * wv;
                }
            }
        }
        finish(
            &acc,
            bias.map(|b| &b[c0..c0 + CB]),
            clamp,
            &mut px[c0..c0 + CB],
        );
        c0 += CB;
    }
    if c0 < c {
        let t = c - c0;
        let mut acc = [0.0f32; CB];
        for ty in 0..win.ny {
            for tx in 0..win.nx {
                let xi = win.x0 + ty * win.x_row + tx * win.x_col + c0;
                let wi = win.w0 + ty * win.w_row + tx * win.w_col + c0;
                let (x, w) = (&input[xi..xi + t], &filter[wi..wi + t]);
                for ((a, &xv), &wv) in acc[..t].iter_mut().zip(x).zip(w) {
                    *a += xv * wv;
                }
            }
        }
        finish(&acc[..t], bias.map(|b| &b[c0..c]), clamp, &mut px[c0..]);
    }
}

/// Depth multiplier above 1: like [`pixel_m1`], with the input value of each output channel
/// (`x[oc / m]`) gathered through a per-block index table.
#[inline(always)]
fn pixel_general(
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    clamp: Clamp,
    m: usize,
    win: &Window,
    px: &mut [f32],
) {
    let c = px.len();
    let ic = c / m;
    let mut c0 = 0;
    while c0 < c {
        let t = CB.min(c - c0);
        let src: [usize; CB] = std::array::from_fn(|j| (c0 + j.min(t - 1)) / m);
        let mut acc = [0.0f32; CB];
        for ty in 0..win.ny {
            for tx in 0..win.nx {
                let xi = win.x0 + ty * win.x_row + tx * win.x_col;
                let wi = win.w0 + ty * win.w_row + tx * win.w_col + c0;
                let (x, w) = (&input[xi..xi + ic], &filter[wi..wi + t]);
                for ((a, &s), &wv) in acc[..t].iter_mut().zip(&src).zip(w) {
                    *a += x[s] * wv;
                }
            }
        }
        finish(
            &acc[..t],
            bias.map(|b| &b[c0..c0 + t]),
            clamp,
            &mut px[c0..c0 + t],
        );
        c0 += t;
    }
}

/// `out = clamp(acc + bias)`.
#[inline(always)]
fn finish(acc: &[f32], bias: Option<&[f32]>, clamp: Clamp, out: &mut [f32]) {
    match bias {
        Some(bias) => {
            for ((o, &a), &bv) in out.iter_mut().zip(acc).zip(bias) {
                *o = clamp.apply(a + bv);
            }
        }
        None => {
            for (o, &a) in out.iter_mut().zip(acc) {
                *o = clamp.apply(a + 0.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::{assert_close, assert_same_bits, Rng};

    /// Direct loops over (pixel, ic, m) in the reference's order.
    fn naive(p: &DepthwiseParams, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let oc_n = p.out_c();
        let mut out = vec![0.0; p.output_len()];
        for b in 0..p.batch {
            for oy in 0..p.out_h {
                for ox in 0..p.out_w {
                    for ic in 0..p.in_c {
                        for m in 0..p.depth_multiplier {
                            let oc = ic * p.depth_multiplier + m;
                            let mut s = 0.0f32;
                            for ky in 0..p.kernel_h {
                                for kx in 0..p.kernel_w {
                                    let iy = (oy * p.stride_h + ky * p.dilation_h) as isize
                                        - p.pad_top as isize;
                                    let ix = (ox * p.stride_w + kx * p.dilation_w) as isize
                                        - p.pad_left as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= p.in_h as isize
                                        || ix >= p.in_w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((b * p.in_h + iy as usize) * p.in_w + ix as usize)
                                        * p.in_c
                                        + ic];
                                    s += xv * w[(ky * p.kernel_w + kx) * oc_n + oc];
                                }
                            }
                            let v = s + bias.map_or(0.0, |bb| bb[oc]);
                            out[((b * p.out_h + oy) * p.out_w + ox) * oc_n + oc] =
                                v.max(p.clamp.min).min(p.clamp.max);
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn random_depthwise_matches_naive() {
        let mut rng = Rng(0xdead_beef_1234);
        let chans = [1, 3, 6, 15, 16, 21, 40];
        for case in 0..200 {
            let kernel_h = 1 + rng.below(3);
            let kernel_w = 1 + rng.below(4);
            let (stride_h, stride_w) = (1 + rng.below(3), 1 + rng.below(3));
            let (dilation_h, dilation_w) = (1 + rng.below(2), 1 + rng.below(2));
            let (in_h, in_w) = (1 + rng.below(10), 1 + rng.below(10));
            let (pad_top, pad_left) = (rng.below(3), rng.below(3));
            let (pad_bottom, pad_right) = (rng.below(3), rng.below(3));
            let eff_h = (kernel_h - 1) * dilation_h + 1;
            let eff_w = (kernel_w - 1) * dilation_w + 1;
            let p = DepthwiseParams {
                batch: 1 + rng.below(2),
                in_h,
                in_w,
                in_c: chans[rng.below(chans.len())],
                depth_multiplier: [1, 1, 2, 3][case % 4],
                out_h: (in_h + pad_top + pad_bottom).saturating_sub(eff_h) / stride_h + 1,
                out_w: (in_w + pad_left + pad_right).saturating_sub(eff_w) / stride_w + 1,
                kernel_h,
                kernel_w,
                stride_h,
                stride_w,
                dilation_h,
                dilation_w,
                pad_top,
                pad_left,
                clamp: [Clamp::NONE, Clamp::RELU6, Clamp::RELU_N1_TO_1][case % 3],
            };
            let x = rng.vec(p.input_len());
            let w = rng.vec(p.filter_len());
            let bias = rng.vec(p.out_c());
            let bias = if case % 5 == 0 { None } else { Some(&bias[..]) };
            let want = naive(&p, &x, &w, bias);
            let mut first = vec![f32::NAN; p.output_len()];
            depthwise_conv2d_f32(&p, &x, &w, bias, &mut first, 1);
            assert_close(&first, &want, &format!("depthwise {p:?}"));
            for threads in [2, 3] {
                let mut out = vec![f32::NAN; p.output_len()];
                depthwise_conv2d_f32(&p, &x, &w, bias, &mut out, threads);
                assert_same_bits(&first, &out, "depthwise threads");
            }
        }
    }
}
