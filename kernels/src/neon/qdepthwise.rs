//! The NEON int8 depthwise convolution kernel (multiplier 1), on the AVX2 tier's packed
//! layout (see [`crate::quant::depthwise_packed`]).
//!
//! Vectorised over channels, 16 per step, taps in pairs. The packed weights of a pair hold
//! each channel's two taps side by side, in four groups of 4 channels (0–3, 8–11, 4–7,
//! 12–15: the order of the AVX2 kernel's accumulators, in which the per-channel constants
//! are also stored). Zipping the two taps' inputs (`zip1`/`zip2`) puts each channel's pair
//! of inputs in the same order, so `smlal`/`smlal2` multiply every weight with its own
//! input into a separate int32 lane, and a pairwise add (`addp`) joins the two taps of
//! each channel at the end. The products are exact and the int32 sums wrap like the scalar
//! kernel's, so the results are bit-identical.

use std::arch::aarch64::*;

use super::qconv::{store_pixel, OutRange, Requant4};
use crate::quant::dw_window::{for_each_chunk, ChunkPtrs, DwJob, CB};

/// An input element type the kernel reads 8 channels of at a time, as int16.
pub(crate) use super::qfc::Src;

/// Computes output rows `row0 .. row0 + out.len()/(out_w·out_c)` (rows of all images
/// counted together) into `out`.
///
/// # Safety
/// The job's slices consistent with its geometry (`weights` `blocks·pairs·32`, per-channel
/// arrays `blocks·16`, `x` `N·H·W·cp` values, `pad` `cp` values, with `in_c == out_c`);
/// `out` whole output rows inside the output.
pub(crate) unsafe fn depthwise_part<T: Src>(job: &DwJob<'_, T>, row0: usize, out: &mut [i8]) {
    let g = job.g;
    let c = g.out_c;
    let blocks = c.div_ceil(CB);
    let range = OutRange::new(job.rq.out_offset, job.rq.act_min, job.rq.act_max);
    // Per chunk, the per-channel constants are loaded once per block.
    let chunk = |ptrs: &ChunkPtrs<T>, n: usize, out_px: *mut i8| {
        for nb in 0..blocks {
            let c0 = nb * CB;
            // SAFETY: the block's constants (in lane order, groups of 4) exist.
            let rq: [Requant4; 4] =
                std::array::from_fn(|grp| unsafe { Requant4::load(&job.rq, c0 + 4 * grp) });
            // SAFETY: weight block `nb` exists.
            let w_block = unsafe { job.weights.as_ptr().add(nb * job.pairs * 2 * CB) };
            for (j, px) in ptrs.iter().enumerate().take(n) {
                // SAFETY: each pointer row holds `cp ≥ c0 + 16` values; the weights of the
                // block's pairs exist.
                let acc = unsafe {
                    if job.pairs == 5 {
                        // 3×3 filters (five tap pairs) take a fully unrolled loop.
                        sum_pairs::<T, 5>(&px[..10], c0, w_block)
                    } else {
                        sum_pairs::<T, 0>(&px[..2 * job.pairs], c0, w_block)
                    }
                };
                // Group `grp` holds channels 0–3, 8–11, 4–7, 12–15 of the block; pairwise
                // sums join each channel's two taps.
                // SAFETY: register-only intrinsic.
                let sums = acc.map(|pair| unsafe { vpaddq_s32(pair[0], pair[1]) });
                // SAFETY: the chunk's pixel `j` lies inside `out`; `min(c − c0, 16)`
                // channels from `c0` are this block's.
                unsafe {
                    let dst = out_px.add(j * c + c0);
                    store_pixel(sums, &rq, [0, 8, 4, 12], &range, dst, (c - c0).min(CB));
                }
            }
        }
    };
    // SAFETY: forwarded contract.
    unsafe { for_each_chunk(job, row0, out, chunk) };
}

/// The sums of one output pixel's 16 channels from `c0` over the tap pairs of `px` (two
/// pointers per pair) and the block's weights at `w`: per group of 4 channels (see the
/// module docs) the even-tap and odd-tap int32 lanes, joined by the caller. `P` > 0 fixes
/// the number of pairs at compile time (the loop unrolls); 0 takes `px.len() / 2`.
///
/// # Safety
/// Each pointer of `px` readable for `c0 + 16` elements, `w` for `px.len() / 2 · 32`
/// values.
#[inline(always)]
unsafe fn sum_pairs<T: Src, const P: usize>(
    px: &[*const T],
    c0: usize,
    w: *const i16,
) -> [[int32x4_t; 2]; 4] {
    let pairs = if P > 0 { P } else { px.len() / 2 };
    debug_assert!(px.len() >= 2 * pairs);
    // SAFETY: the caller's bounds; register arithmetic otherwise.
    unsafe {
        let mut acc = [[vdupq_n_s32(0); 2]; 4];
        let mut w = w;
        for pair in px[..2 * pairs].chunks_exact(2) {
            let (a, b) = (pair[0].add(c0), pair[1].add(c0));
            let (a0, a1) = (T::load8(a), T::load8(a.add(8)));
            let (b0, b1) = (T::load8(b), T::load8(b.add(8)));
            // Channels 0–3, 8–11, 4–7, 12–15, each followed by the other tap's input.
            let xs = [
                vzip1q_s16(a0, b0),
                vzip1q_s16(a1, b1),
                vzip2q_s16(a0, b0),
                vzip2q_s16(a1, b1),
            ];
            for (grp, (acc, x)) in acc.iter_mut().zip(&xs).enumerate() {
                let wv = vld1q_s16(w.add(8 * grp));
                acc[0] = vmlal_s16(acc[0], vget_low_s16(wv), vget_low_s16(*x));
                acc[1] = vmlal_high_s16(acc[1], wv, *x);
            }
            w = w.add(2 * CB);
        }
        acc
    }
}
