//! The AVX2 int8 depthwise convolution kernel (multiplier 1; see
//! [`crate::quant::depthwise_packed`] for the layouts).
//!
//! Vectorised over channels, 16 per step. The input is read either as int16 widened with its
//! zero point subtracted, or, when the channels fill whole steps, straight as int8 (each
//! 16-byte load sign-extended to int16), with the zero point's share of every sum folded
//! into the bias and padding taps reading a row of zero-point values. Taps are taken in
//! pairs: interleaving the 16 values of tap `t` and of tap `t+1` (`vpunpck{l,h}wd`) gives
//! int16 pairs that `vpmaddwd` multiplies by the interleaved weights and sums into int32, so
//! one instruction does two taps of 8 channels. The interleave works within 128-bit lanes,
//! so the two accumulators hold channels `[0–3, 8–11]` and `[4–7, 12–15]`; the per-channel
//! constants are stored in that order, and packing the two back to int16 restores channel
//! order.

use std::arch::x86_64::*;

use super::qconv::store_i8;
use super::qrequant::{finish, Requant8};
pub(crate) use crate::quant::dw_window::DwJob;
use crate::quant::dw_window::{CB, CHUNK, MAX_TAPS};

/// An input element type the kernel reads 16 channels of at a time, as int16.
pub(crate) trait Src: Copy {
    /// The 16 values at `p`, as int16.
    ///
    /// # Safety
    /// AVX2 must be available; `p` readable for 16 elements.
    unsafe fn load16(p: *const Self) -> __m256i;
}

impl Src for i16 {
    #[inline(always)]
    unsafe fn load16(p: *const i16) -> __m256i {
        // SAFETY: 16 readable values (caller).
        unsafe { _mm256_loadu_si256(p as *const __m256i) }
    }
}

impl Src for i8 {
    #[inline(always)]
    unsafe fn load16(p: *const i8) -> __m256i {
        // SAFETY: 16 readable bytes (caller); AVX2 is the caller's contract.
        unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(p as *const __m128i)) }
    }
}

/// Computes output rows `row0 .. row0 + out.len()/(out_w·out_c)` (rows of all images
/// counted together) into `out`.
///
/// # Safety
/// AVX2 must be available; the job's slices consistent with its geometry (`weights`
/// `blocks·pairs·32`, per-channel arrays `blocks·16`, `x` `N·H·W·cp` values, `pad` `cp`
/// values, with `in_c == out_c`); `out` whole output rows inside the output.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn depthwise_part<T: Src>(job: &DwJob<'_, T>, row0: usize, out: &mut [i8]) {
    let g = job.g;
    let c = g.out_c;
    let row_len = g.out_w * c;
    let rows = out.len() / row_len;
    let taps = g.filter_h * g.filter_w;
    let blocks = c.div_ceil(CB);
    let xw = job.x.as_ptr();
    let zero_row = job.pad.as_ptr();
    let out_offset = _mm256_set1_epi32(job.rq.out_offset);
    let lo = _mm256_set1_epi32(job.rq.act_min);
    let hi = _mm256_set1_epi32(job.rq.act_max);
    // Tap pointers of up to CHUNK output pixels of a row; odd tap counts end with a zero
    // row (weight 0). The per-channel constants are then loaded once per chunk and block.
    let mut ptrs = [[zero_row; MAX_TAPS]; CHUNK];
    debug_assert!(taps <= 2 * job.pairs && 2 * job.pairs <= MAX_TAPS);
    // Offsets of the taps from the window's top-left pixel, for windows inside the input.
    let mut toff = [0_usize; MAX_TAPS];
    for ky in 0..g.filter_h {
        for kx in 0..g.filter_w {
            toff[ky * g.filter_w + kx] = (ky * g.dilation_h * g.in_w + kx * g.dilation_w) * job.cp;
        }
    }
    let reach_h = (g.filter_h - 1) * g.dilation_h;
    let reach_w = (g.filter_w - 1) * g.dilation_w;
    // The same walk as `dw_window::for_each_chunk` (which the NEON kernel uses), written out
    // here: through the shared function the AVX2 kernel ran 5–10% slower (MobileNetV2 int8
    // depthwise layers, alternating A/B), with no call left in the generated code.
    for r in 0..rows {
        let row = row0 + r;
        let (b, oy) = (row / g.out_h, row % g.out_h);
        let iy0 = (oy * g.stride_h) as isize - g.pad_top as isize;
        let rows_inside = iy0 >= 0 && iy0 as usize + reach_h < g.in_h;
        for ox0 in (0..g.out_w).step_by(CHUNK) {
            let n = (g.out_w - ox0).min(CHUNK);
            for (j, px) in ptrs.iter_mut().enumerate().take(n) {
                let ox = ox0 + j;
                let ix0 = (ox * g.stride_w) as isize - g.pad_left as isize;
                if rows_inside && ix0 >= 0 && ix0 as usize + reach_w < g.in_w {
                    // The whole window is inside: fixed offsets from its first pixel.
                    let first = (b * g.in_h + iy0 as usize) * g.in_w + ix0 as usize;
                    // SAFETY: every tap of the window is a pixel inside the input.
                    let base = unsafe { xw.add(first * job.cp) };
                    for (p, &o) in px.iter_mut().zip(&toff[..taps]) {
                        // SAFETY: as above.
                        *p = unsafe { base.add(o) };
                    }
                    continue;
                }
                for ky in 0..g.filter_h {
                    for kx in 0..g.filter_w {
                        let iy = iy0 + (ky * g.dilation_h) as isize;
                        let ix = ix0 + (kx * g.dilation_w) as isize;
                        px[ky * g.filter_w + kx] = if iy >= 0
                            && ix >= 0
                            && (iy as usize) < g.in_h
                            && (ix as usize) < g.in_w
                        {
                            let pixel = (b * g.in_h + iy as usize) * g.in_w + ix as usize;
                            // SAFETY: the pixel is inside the input, so its row is in `x`.
                            unsafe { xw.add(pixel * job.cp) }
                        } else {
                            zero_row
                        };
                    }
                }
            }
            // SAFETY: the first output pixel of the chunk lies inside `out`.
            let out_px = unsafe { out.as_mut_ptr().add(r * row_len + ox0 * c) };
            for nb in 0..blocks {
                let c0 = nb * CB;
                // SAFETY: weight block `nb` and the block's constants exist; each pointer
                // row holds `cp ≥ c0 + 16` values; stores stay inside the chunk's pixels.
                unsafe {
                    let ([rq0, rq1], [b0, b1]) = Requant8::block16(&job.rq, c0);
                    let w_block = job.weights.as_ptr().add(nb * job.pairs * 2 * CB);
                    for (j, px) in ptrs.iter().enumerate().take(n) {
                        // 3×3 filters (five tap pairs) take a fully unrolled loop.
                        let (acc0, acc1) = if job.pairs == 5 {
                            sum_pairs::<T, 5>(&px[..10], c0, w_block, b0, b1)
                        } else {
                            sum_pairs::<T, 0>(&px[..2 * job.pairs], c0, w_block, b0, b1)
                        };
                        let v0 = finish(acc0, &rq0, out_offset, lo, hi);
                        let v1 = finish(acc1, &rq1, out_offset, lo, hi);
                        // Lanes [0–3, 8–11] and [4–7, 12–15] pack to channels 0–7 | 8–15.
                        let w16 = _mm256_packs_epi32(v0, v1);
                        let bytes = _mm_packs_epi16(
                            _mm256_castsi256_si128(w16),
                            _mm256_extracti128_si256::<1>(w16),
                        );
                        store_i8(out_px.add(j * c + c0), bytes, (c - c0).min(CB));
                    }
                }
            }
        }
    }
}

/// The sums of one output pixel's 16 channels from `c0`: the tap pairs of `px` (two
/// pointers per pair) times the block's interleaved weights at `w`, added to `acc0`/`acc1`.
/// `P` > 0 fixes the number of pairs at compile time (the loop unrolls); 0 takes
/// `px.len() / 2`.
///
/// # Safety
/// AVX2 must be available; each pointer of `px` readable for `c0 + 16` elements, `w` for
/// `px.len() / 2 · 32` values.
#[inline(always)]
unsafe fn sum_pairs<T: Src, const P: usize>(
    px: &[*const T],
    c0: usize,
    w: *const i16,
    mut acc0: __m256i,
    mut acc1: __m256i,
) -> (__m256i, __m256i) {
    let pairs = if P > 0 { P } else { px.len() / 2 };
    debug_assert!(px.len() >= 2 * pairs);
    // SAFETY: the caller's bounds; register arithmetic otherwise.
    unsafe {
        let mut w = w;
        for pair in px[..2 * pairs].chunks_exact(2) {
            let x0 = T::load16(pair[0].add(c0));
            let x1 = T::load16(pair[1].add(c0));
            let w0 = _mm256_loadu_si256(w as *const __m256i);
            let w1 = _mm256_loadu_si256(w.add(16) as *const __m256i);
            w = w.add(2 * CB);
            let lo_pairs = _mm256_unpacklo_epi16(x0, x1);
            let hi_pairs = _mm256_unpackhi_epi16(x0, x1);
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(lo_pairs, w0));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(hi_pairs, w1));
        }
    }
    (acc0, acc1)
}
