//! The NEON int8 convolution microkernel, on the same packed int16 layout as the AVX2 one
//! (see [`crate::quant::conv_packed`]).
//!
//! A weight vector holds 4 output channels × a pair of input channels (`[c][2]`), and the
//! pixel's pair of inputs is duplicated across the lanes, so `smlal` (low half) and `smlal2`
//! (high half) multiply-add each weight with its own input into a separate int32 lane: per
//! channel two partial sums, the even and the odd input channels, which a pairwise add
//! (`addp`) joins at the end. Products of int16 values this small (|w| ≤ 128,
//! |x| ≤ 32767) are exact, and int32 addition wraps, so every output sum equals the scalar
//! kernel's modulo 2^32, which is all the requantization reads.
//!
//! A tile is 3 output pixels × 16 channels: 24 accumulators, 4 weight vectors and the
//! input pair in the 32 vector registers.
//!
//! Requantization is TFLite's double rounding, lane by lane: `sqrdmulh` is exactly
//! gemmlowp's saturating rounding doubling high multiply, and the rounding division by a
//! power of two is its formula (remainder against a threshold) in vector form.

use std::arch::aarch64::*;
use std::ops::Range;

use crate::quant::channel_consts::Requant;
use crate::quant::conv_window::{inside_firsts, pointwise_rows, ConvJob, Windows};
use crate::quant::hybrid_packed::HybridOut;

/// Output pixels per tile.
pub(crate) const MR: usize = 3;
/// Output channels per packed block.
pub(crate) const NR: usize = 16;

/// Computes output pixels `pix0 .. pix0 + npix` × the channel blocks `blocks` into `out`.
///
/// # Safety
/// The job's slices must be consistent with its geometry (as for the AVX2 kernel):
/// `weights` holds every block's `taps·icp` pairs of 16 (8 for a narrow last block) values,
/// the per-channel arrays whole blocks of 16, `xw` the widened input followed by `icp`
/// zeros; the pixels lie inside the output; `out` is the whole output, and nothing else
/// accesses the written pixels × channels during the call.
pub(crate) unsafe fn conv_part(
    job: &ConvJob<'_>,
    pix0: usize,
    npix: usize,
    blocks: Range<usize>,
    out: *mut i8,
) {
    let out = Int8Out {
        rq: job.rq,
        out,
        out_c: job.g.out_c,
        range: OutRange::new(job.rq.out_offset, job.rq.act_min, job.rq.act_max),
    };
    // SAFETY: forwarded contract.
    unsafe { part(job, pix0, npix, blocks, &out) }
}

/// As [`conv_part`], but the sums go through the hybrid float epilogue of `out` (`job.rq`
/// is not read).
///
/// # Safety
/// As for [`conv_part`]; `out` describes the whole float output of this geometry and
/// holds per-lane arrays padded to whole blocks of 16 channels.
pub(crate) unsafe fn conv_part_hybrid(
    job: &ConvJob<'_>,
    pix0: usize,
    npix: usize,
    blocks: Range<usize>,
    out: &HybridOut<'_>,
) {
    // SAFETY: forwarded contract.
    unsafe { part(job, pix0, npix, blocks, out) }
}

/// The part's tiles, channel block by channel block.
///
/// # Safety
/// As for [`conv_part`], with `out`'s contract.
#[inline(always)]
unsafe fn part<O: PixelOut>(
    job: &ConvJob<'_>,
    pix0: usize,
    npix: usize,
    blocks: Range<usize>,
    out: &O,
) {
    let g = job.g;
    let taps = g.filter_h * g.filter_w;
    let kpt = job.icp / 2;
    let block_len = taps * job.icp * NR;
    let last = g.out_c.div_ceil(NR) - 1;
    for nb in blocks {
        // SAFETY: block `nb` lies inside `weights` (a narrow last block is half as long);
        // the rest is the caller's contract.
        unsafe {
            let w_block = job.weights.as_ptr().add(nb * block_len);
            if job.narrow_last && nb == last {
                block::<2, O>(job, out, nb * NR, w_block, kpt, pix0, npix);
            } else {
                block::<4, O>(job, out, nb * NR, w_block, kpt, pix0, npix);
            }
        }
    }
}

/// Where one finished output pixel goes: requantized to int8, or through the hybrid float
/// epilogue.
trait PixelOut {
    /// Constants of a block's 16 lanes, loaded once per block.
    type Block;

    /// # Safety
    /// The per-lane arrays hold whole blocks of 16.
    unsafe fn block(&self, c0: usize) -> Self::Block;

    /// Finishes pixel `pix`'s sums of channels `c0 .. c0 + 4·V` and stores the first `nc`.
    ///
    /// # Safety
    /// The pixel and channels lie inside the output and belong to the caller's part.
    unsafe fn store<const V: usize>(
        &self,
        b: &Self::Block,
        sums: [int32x4_t; V],
        pix: usize,
        c0: usize,
        nc: usize,
    );
}

/// int8 output: TFLite's requantization, then the output offset and clamp.
struct Int8Out<'a> {
    rq: Requant<'a>,
    out: *mut i8,
    out_c: usize,
    range: OutRange,
}

impl PixelOut for Int8Out<'_> {
    type Block = [Requant4; 4];

    #[inline(always)]
    unsafe fn block(&self, c0: usize) -> [Requant4; 4] {
        // SAFETY: the per-channel arrays hold whole 16-blocks (caller).
        std::array::from_fn(|v| unsafe { Requant4::load(&self.rq, c0 + 4 * v) })
    }

    #[inline(always)]
    unsafe fn store<const V: usize>(
        &self,
        b: &[Requant4; 4],
        sums: [int32x4_t; V],
        pix: usize,
        c0: usize,
        nc: usize,
    ) {
        let rq: [Requant4; V] = std::array::from_fn(|v| b[v]);
        // SAFETY: pixel `pix`'s `nc` channels from `c0` lie inside the output (caller).
        unsafe {
            let dst = self.out.add(pix * self.out_c + c0);
            store_pixel(
                sums,
                &rq,
                std::array::from_fn(|v| 4 * v),
                &self.range,
                dst,
                nc,
            );
        }
    }
}

/// The hybrid epilogue's constants of 16 lanes.
struct HybridBlock {
    scale: [float32x4_t; 4],
    bias: [float32x4_t; 4],
}

impl PixelOut for HybridOut<'_> {
    type Block = HybridBlock;

    #[inline(always)]
    unsafe fn block(&self, c0: usize) -> HybridBlock {
        // SAFETY: the per-lane arrays hold whole 16-blocks (caller).
        unsafe {
            let s = self.filter_scales.as_ptr().add(c0);
            HybridBlock {
                scale: std::array::from_fn(|v| vld1q_f32(s.add(4 * v))),
                bias: match self.bias {
                    Some(b) => std::array::from_fn(|v| vld1q_f32(b.as_ptr().add(c0 + 4 * v))),
                    None => [vdupq_n_f32(0.0); 4],
                },
            }
        }
    }

    #[inline(always)]
    unsafe fn store<const V: usize>(
        &self,
        b: &HybridBlock,
        sums: [int32x4_t; V],
        pix: usize,
        c0: usize,
        nc: usize,
    ) {
        let mut vals = [0.0_f32; 16];
        // SAFETY: register work, stores inside `vals`, then `nc` floats at the pixel's
        // channels (caller).
        unsafe {
            let (lo, hi) = (vdupq_n_f32(self.lo), vdupq_n_f32(self.hi));
            for (v, s) in sums.iter().enumerate() {
                // Each product and sum rounded to f32 on its own, in the reference's
                // order (see `hybrid::hybrid_conv2d`).
                let x = vcvtq_f32_s32(*s);
                let y = if self.per_channel {
                    let y = vmulq_n_f32(vmulq_f32(x, b.scale[v]), self.input_scale);
                    let y = if self.bias.is_some() {
                        vaddq_f32(y, b.bias[v])
                    } else {
                        y
                    };
                    clamp(y, lo, hi)
                } else {
                    let y = vaddq_f32(vdupq_n_f32(0.0), vmulq_n_f32(x, self.tensor_scale));
                    if self.bias.is_some() {
                        clamp(vaddq_f32(y, b.bias[v]), lo, hi)
                    } else {
                        y
                    }
                };
                vst1q_f32(vals.as_mut_ptr().add(4 * v), y);
            }
            let dst = self.out.add(pix * self.out_c + c0);
            std::ptr::copy_nonoverlapping(vals.as_ptr(), dst, nc);
        }
    }
}

/// `x < lo ? lo : x`, then `hi < a ? hi : a` (C++ `std::max`/`std::min`: NaN passes
/// through), with comparisons and selects (`fmax`/`fmin` would turn NaN into the bound).
#[inline(always)]
fn clamp(x: float32x4_t, lo: float32x4_t, hi: float32x4_t) -> float32x4_t {
    // SAFETY: register-only NEON intrinsics.
    unsafe {
        let a = vbslq_f32(vcltq_f32(x, lo), lo, x);
        vbslq_f32(vcltq_f32(hi, a), hi, a)
    }
}

/// Requantization constants of 4 channels.
#[derive(Clone, Copy)]
pub(crate) struct Requant4 {
    bias: int32x4_t,
    mult: int32x4_t,
    left: int32x4_t,
    /// Minus the right shift: `vshlq` by a negative count is an arithmetic right shift.
    neg_right: int32x4_t,
    /// `2^right − 1`.
    mask: int32x4_t,
    /// `mask / 2`.
    half: int32x4_t,
}

impl Requant4 {
    /// The constants of lanes `c .. c + 4` of `rq` (`left`, `right` as produced by
    /// [`shift_amounts`](crate::quant::channel_consts::shift_amounts)).
    ///
    /// # Safety
    /// Each per-lane array of `rq` holds at least `c + 4` values.
    #[inline(always)]
    pub(crate) unsafe fn load(rq: &Requant<'_>, c: usize) -> Self {
        let Requant {
            bias,
            mult,
            left,
            right,
            ..
        } = rq;
        // SAFETY: 4 values at `c` in each array (caller).
        unsafe {
            let right = vld1q_s32(right.as_ptr().add(c));
            let one = vdupq_n_s32(1);
            let mask = vsubq_s32(vshlq_s32(one, right), one);
            Requant4 {
                bias: vld1q_s32(bias.as_ptr().add(c)),
                mult: vld1q_s32(mult.as_ptr().add(c)),
                left: vld1q_s32(left.as_ptr().add(c)),
                neg_right: vnegq_s32(right),
                mask,
                half: vshrq_n_s32::<1>(mask),
            }
        }
    }

    /// `clamp(MultiplyByQuantizedMultiplier(acc + bias) + out_offset)`.
    #[inline(always)]
    pub(crate) fn apply(
        &self,
        acc: int32x4_t,
        out_offset: int32x4_t,
        lo: int32x4_t,
        hi: int32x4_t,
    ) -> int32x4_t {
        // SAFETY: register-only NEON intrinsics (NEON is part of every aarch64 target).
        unsafe {
            // `x·2^left` wraps, as in the scalar code.
            let x = vshlq_s32(vaddq_s32(acc, self.bias), self.left);
            let x = vqrdmulhq_s32(x, self.mult);
            // Rounding division by 2^right, ties away from zero: floor, plus one where the
            // remainder exceeds `mask/2` (`mask/2 + 1` for a negative x).
            let floor = vshlq_s32(x, self.neg_right);
            let rem = vandq_s32(x, self.mask);
            let threshold = vsubq_s32(self.half, vshrq_n_s32::<31>(x));
            let up = vreinterpretq_s32_u32(vcgtq_s32(rem, threshold));
            let v = vaddq_s32(vsubq_s32(floor, up), out_offset);
            vminq_s32(vmaxq_s32(v, lo), hi)
        }
    }
}

/// The output offset and activation bounds, in every lane.
#[derive(Clone, Copy)]
pub(crate) struct OutRange {
    pub offset: int32x4_t,
    pub lo: int32x4_t,
    pub hi: int32x4_t,
}

impl OutRange {
    pub(crate) fn new(offset: i32, lo: i32, hi: i32) -> Self {
        // SAFETY: register-only intrinsics (NEON is part of every aarch64 target).
        unsafe {
            OutRange {
                offset: vdupq_n_s32(offset),
                lo: vdupq_n_s32(lo),
                hi: vdupq_n_s32(hi),
            }
        }
    }
}

/// Requantizes one output pixel's sums, `V` vectors of 4 channels (vector `v` holding
/// channels `at[v] .. at[v] + 4` of the block), and stores its first `nc` channels at `dst`.
///
/// # Safety
/// `dst` writable for `nc <= 16` bytes.
#[inline(always)]
pub(crate) unsafe fn store_pixel<const V: usize>(
    sums: [int32x4_t; V],
    rq: &[Requant4; V],
    at: [usize; V],
    out: &OutRange,
    dst: *mut i8,
    nc: usize,
) {
    let mut bytes = [0_i8; 16];
    for ((s, rq), at) in sums.iter().zip(rq).zip(at) {
        // SAFETY: register work, then 4 bytes stored inside `bytes` (`at <= 12`).
        unsafe {
            let q = rq.apply(*s, out.offset, out.lo, out.hi);
            // In i8 range after the clamp, so the narrowing moves are exact.
            let b = vmovn_s16(vcombine_s16(vmovn_s32(q), vdup_n_s16(0)));
            let four = vget_lane_u32::<0>(vreinterpret_u32_s8(b));
            bytes
                .as_mut_ptr()
                .add(at)
                .cast::<u32>()
                .write_unaligned(four);
        }
    }
    // SAFETY: `nc` writable bytes at `dst` (caller).
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, nc) };
}

/// All tiles of one channel block of `4·V` channels (`V` = 4, or 2 for a narrow last block).
///
/// # Safety
/// As for [`conv_part`]; `w_block` points at this block's `taps·kpt` pairs of `4·V`
/// channels.
#[inline(always)]
unsafe fn block<const V: usize, O: PixelOut>(
    job: &ConvJob<'_>,
    out: &O,
    c0: usize,
    w_block: *const i16,
    kpt: usize,
    pix0: usize,
    npix: usize,
) {
    let g = job.g;
    let oc = g.out_c;
    let nc = (oc - c0).min(4 * V);
    // SAFETY: the per-channel arrays hold whole 16-blocks (caller).
    let k = unsafe { out.block(c0) };
    // SAFETY: `xw` ends with a row of `icp` zeros (caller).
    let zero_row = unsafe { job.xw.as_ptr().add(job.xw.len() - job.icp) };
    let pointwise = job.pointwise();
    let inside = job.windows_inside();
    let mut p = 0;
    while p < npix {
        let rows = (npix - p).min(MR);
        // SAFETY: register-only intrinsic.
        let zero = unsafe { vdupq_n_s32(0) };
        let mut acc = [[[zero; 2]; V]; MR];
        if pointwise {
            // SAFETY: the pixels lie inside the output (caller); one tap of `kpt` pairs.
            acc = unsafe { tap::<MR, V>(acc, pointwise_rows(job, pix0 + p, rows), w_block, kpt) };
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
                        acc = tap::<MR, V>(acc, ptrs, w, kpt);
                        w = w.add(kpt * 8 * V);
                    }
                }
            }
        } else {
            // SAFETY: as above.
            let win = unsafe { Windows::<_, MR>::new(job, pix0 + p, rows) };
            let mut w = w_block;
            for ky in 0..g.filter_h {
                for kx in 0..g.filter_w {
                    // SAFETY: `w` walks the block's `taps·kpt` pairs of `4·V` channels; each
                    // pointer row holds `icp = 2·kpt` values.
                    unsafe {
                        let ptrs = win.tap(job, zero_row, ky, kx);
                        acc = tap::<MR, V>(acc, ptrs, w, kpt);
                        w = w.add(kpt * 8 * V);
                    }
                }
            }
        }
        for (r, a) in acc.iter().enumerate().take(rows) {
            // Lanes (c0 even, c0 odd, c1 even, c1 odd) and the same for c2, c3: pairwise
            // sums give channels c0..c3.
            // SAFETY: register-only intrinsic.
            let sums = a.map(|pair| unsafe { vpaddq_s32(pair[0], pair[1]) });
            // SAFETY: row `p + r` of the part lies inside the output; `nc` channels from
            // `c0` are this block's.
            unsafe { out.store::<V>(&k, sums, pix0 + p + r, c0, nc) };
        }
        p += rows;
    }
}

/// Adds one tap's products to an `R`-pixel tile of `V` weight vectors (4 channels each):
/// `kpt` pairs of input channels. Constant loop bounds keep the accumulators in registers.
///
/// # Safety
/// `w` readable for `kpt·8·V` values, each row of `ptrs` for `2·kpt`.
#[inline(always)]
unsafe fn tap<const R: usize, const V: usize>(
    mut acc: [[[int32x4_t; 2]; V]; R],
    ptrs: [*const i16; R],
    w: *const i16,
    kpt: usize,
) -> [[[int32x4_t; 2]; V]; R] {
    // SAFETY: reads inside the caller's bounds; register arithmetic otherwise.
    unsafe {
        let mut w = w;
        for k in 0..kpt {
            let b: [int16x8_t; V] = std::array::from_fn(|v| vld1q_s16(w.add(8 * v)));
            w = w.add(8 * V);
            for (acc_r, p) in acc.iter_mut().zip(&ptrs) {
                // The pair (x0, x1) in every 32-bit lane: x0, x1, x0, x1, ...
                let pair = (p.add(2 * k) as *const i32).read_unaligned();
                let x = vreinterpretq_s16_s32(vdupq_n_s32(pair));
                for (a, bv) in acc_r.iter_mut().zip(&b) {
                    a[0] = vmlal_s16(a[0], vget_low_s16(*bv), vget_low_s16(x));
                    a[1] = vmlal_high_s16(a[1], *bv, x);
                }
            }
        }
    }
    acc
}
