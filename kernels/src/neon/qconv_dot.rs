//! The int8 convolution microkernel of the [`Isa::NeonDot`](crate::isa::Isa::NeonDot) tier:
//! `sdot` multiplies four int8 pairs and adds them to an int32 lane, so one instruction does
//! 16 multiply-adds (against 4 for `smlal` on int16).
//!
//! The operands stay int8: the input as it is (no widening copy when the channels are a
//! multiple of 4), the weights as stored. The zero point then moves out of the sum:
//! `Σ w·(x − zp) + bias = Σ w·x + (bias − zp·Σ w)`, the second term folded into the bias at
//! preparation, and a padding tap reads a row of `zp` values (its `w·(zp − zp)` is 0, as in
//! the reference). The products are exact, and the int32 sums wrap like the scalar
//! kernel's, so every sum equals the reference's modulo 2^32 and the results are
//! bit-identical.
//!
//! Layout: weights `[block][tap][icq/4][16 channels][4 input channels]` (`icq` = input
//! channels rounded up to 4, the extra weights 0); a weight vector is 4 channels × 4 inputs,
//! and the pixel's 4 inputs are duplicated across the lanes. A tile is 6 pixels × 16
//! channels: 24 accumulators, 4 weight vectors and the input in the 32 vector registers.
//!
//! `sdot` is written as inline assembly: its intrinsic (`vdotq_s32`) is not stable in Rust
//! yet. The functions that use it enable the `dotprod` target feature and are reached only
//! when the CPU reports it.

use std::arch::aarch64::*;
use std::arch::asm;
use std::ops::Range;

use super::qconv::{store_pixel, OutRange, Requant4};
use crate::quant::conv_window::{inside_firsts, pointwise_rows, ConvJob, Windows};

/// Output pixels per tile.
pub(crate) const MR: usize = 6;
/// Output channels per packed block.
pub(crate) const NR: usize = 16;

/// `acc + Σ_{j<4} a[4i+j]·b[4i+j]` in each int32 lane `i`.
///
/// # Safety
/// The CPU must have `dotprod` (callers enable the feature and are reached only when the
/// tier was confirmed at preparation).
#[inline(always)]
pub(crate) unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction, available by the caller's contract.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// Computes output pixels `pix0 .. pix0 + npix` × the channel blocks `blocks` into `out`.
///
/// # Safety
/// The CPU must have `dotprod`. The job's slices consistent with its geometry: `weights`
/// holds every block's `taps·icp` values × 16 (8 for a narrow last block), the
/// per-channel arrays whole blocks of 16 (the bias with the zero point's share folded in),
/// `xw` the input `[N·H·W][px_stride]`, `pad` `icp` zero-point values; the pixels lie inside
/// the output; `out` is the whole output, and nothing else accesses the written pixels ×
/// channels during the call.
#[target_feature(enable = "dotprod")]
pub(crate) unsafe fn conv_part(
    job: &ConvJob<'_, i8>,
    pad: &[i8],
    pix0: usize,
    npix: usize,
    blocks: Range<usize>,
    out: *mut i8,
) {
    let pad = pad.as_ptr();
    let g = job.g;
    let taps = g.filter_h * g.filter_w;
    let groups = job.icp / 4;
    let block_len = taps * job.icp * NR;
    let last = g.out_c.div_ceil(NR) - 1;
    for nb in blocks {
        // SAFETY: block `nb` lies inside `weights` (a narrow last block is half as long);
        // the rest is the caller's contract.
        unsafe {
            let w_block = job.weights.as_ptr().add(nb * block_len);
            if job.narrow_last && nb == last {
                block::<2>(job, pad, nb * NR, w_block, groups, pix0, npix, out);
            } else {
                block::<4>(job, pad, nb * NR, w_block, groups, pix0, npix, out);
            }
        }
    }
}

/// All tiles of one channel block of `4·V` channels (`V` = 4, or 2 for a narrow last block).
///
/// # Safety
/// As for [`conv_part`]; `w_block` points at this block's `taps·groups` groups of `4·V`
/// channels × 4 inputs.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn block<const V: usize>(
    job: &ConvJob<'_, i8>,
    pad: *const i8,
    c0: usize,
    w_block: *const i8,
    groups: usize,
    pix0: usize,
    npix: usize,
    out: *mut i8,
) {
    let g = job.g;
    let oc = g.out_c;
    let nc = (oc - c0).min(4 * V);
    let rq: [Requant4; V] = std::array::from_fn(|v| {
        // SAFETY: the per-channel arrays hold whole 16-blocks.
        unsafe { Requant4::load(&job.rq, c0 + 4 * v) }
    });
    let range = OutRange::new(job.rq.out_offset, job.rq.act_min, job.rq.act_max);
    // SAFETY: register-only intrinsic.
    let zero = unsafe { vdupq_n_s32(0) };
    let pointwise = job.pointwise();
    let inside = job.windows_inside();
    let mut p = 0;
    while p < npix {
        let rows = (npix - p).min(MR);
        let mut acc = [[zero; V]; MR];
        if pointwise {
            // SAFETY: the pixels lie inside the output (caller); one tap of `groups`.
            acc =
                unsafe { tap::<MR, V>(acc, pointwise_rows(job, pix0 + p, rows), w_block, groups) };
        } else if inside {
            // SAFETY: as above; every window lies inside the input.
            let first = unsafe { inside_firsts::<_, MR>(job, pix0 + p, rows) };
            let mut w = w_block;
            for ky in 0..g.filter_h {
                for kx in 0..g.filter_w {
                    let toff = job.tap_offset(ky, kx);
                    // SAFETY: each tap lies inside its pixel's window; `w` and the rows as
                    // below.
                    unsafe {
                        let ptrs = first.map(|f| f.add(toff));
                        acc = tap::<MR, V>(acc, ptrs, w, groups);
                        w = w.add(groups * 16 * V);
                    }
                }
            }
        } else {
            // SAFETY: as above.
            let win = unsafe { Windows::<_, MR>::new(job, pix0 + p, rows) };
            let mut w = w_block;
            for ky in 0..g.filter_h {
                for kx in 0..g.filter_w {
                    // SAFETY: `w` walks the block's `taps·groups` groups; each pointer row
                    // holds `icp = 4·groups` values (the padding row too).
                    unsafe {
                        let ptrs = win.tap(job, pad, ky, kx);
                        acc = tap::<MR, V>(acc, ptrs, w, groups);
                        w = w.add(groups * 16 * V);
                    }
                }
            }
        }
        for (r, a) in acc.iter().enumerate().take(rows) {
            // SAFETY: row `p + r` of the part lies inside the output; `nc` channels from
            // `c0` are this block's.
            unsafe {
                let dst = out.add((pix0 + p + r) * oc + c0);
                store_pixel(*a, &rq, std::array::from_fn(|v| 4 * v), &range, dst, nc);
            }
        }
        p += rows;
    }
}

/// Adds one tap's products to an `R`-pixel tile of `V` vectors of 4 channels: `groups`
/// groups of 4 input channels. Constant loop bounds keep the accumulators in registers.
///
/// # Safety
/// `w` readable for `groups·16·V` values, each row of `ptrs` for `4·groups`.
#[inline(always)]
unsafe fn tap<const R: usize, const V: usize>(
    mut acc: [[int32x4_t; V]; R],
    ptrs: [*const i8; R],
    w: *const i8,
    groups: usize,
) -> [[int32x4_t; V]; R] {
    // SAFETY: reads inside the caller's bounds; register arithmetic otherwise.
    unsafe {
        let mut w = w;
        for k in 0..groups {
            let b: [int8x16_t; V] = std::array::from_fn(|v| vld1q_s8(w.add(16 * v)));
            w = w.add(16 * V);
            for (acc_r, p) in acc.iter_mut().zip(&ptrs) {
                // The 4 inputs in every 32-bit lane.
                let four = (p.add(4 * k) as *const i32).read_unaligned();
                let x = vreinterpretq_s8_s32(vdupq_n_s32(four));
                for (a, bv) in acc_r.iter_mut().zip(&b) {
                    *a = sdot(*a, *bv, x);
                }
            }
        }
    }
    acc
}
