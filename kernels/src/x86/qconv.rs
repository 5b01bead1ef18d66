//! The AVX2 int8 convolution microkernel (see [`crate::quant::conv_packed`] for the data
//! layouts).
//!
//! Operands are int16: the input was widened with its zero point already subtracted, the
//! weights at preparation. `vpmaddwd` multiplies pairs of int16 and sums each pair into an
//! int32 lane; with |w| ≤ 128 and |x| ≤ 32767 a pair sum cannot overflow, and the int32
//! accumulation wraps exactly like the scalar kernels', so the sums are bit-identical.
//!
//! A tile is 4 output pixels × 16 output channels (8 accumulators). Per pair of input
//! channels: two weight loads, one broadcast per pixel, eight `vpmaddwd` + `vpaddd`.
//! Every tap of every pixel reads through a pointer: an input pixel, or for a padding tap a
//! row of zeros (which after the zero-point shift is exactly what padding contributes).

use std::arch::x86_64::*;
use std::ops::Range;

use super::qrequant::{finish, pack16_i8, Requant8};
use super::store_first;
use crate::quant::channel_consts::Requant;
pub(crate) use crate::quant::conv_window::ConvJob;
use crate::quant::conv_window::{inside_firsts, pointwise_rows, Windows};
use crate::quant::hybrid_packed::HybridOut;

/// Output pixels per tile.
pub(crate) const MR: usize = 6;
/// Output channels per tile (two 8-lane vectors).
pub(crate) const NR: usize = 16;

/// Computes the output pixels `pix0 .. pix0 + out.len()/out_c` into `out`.
///
/// # Safety
/// AVX2 must be available. The job's slices must be consistent with its geometry: `weights`
/// holds `blocks·taps·icp·16`, the per-channel arrays `blocks·16`, `xw` holds
/// `N·H·W·px_stride + icp` values (the last `icp` zeros), where `px_stride` is `icp`, or
/// less only when every window lies inside the input (rows mode); `out.len()` is a
/// multiple of `out_c` and the pixels lie inside the output. `out` is the whole output;
/// only pixels `pix0 .. pix0 + npix` × the channels of `blocks` are written, and nothing
/// else may access them during the call.
#[target_feature(enable = "avx2,fma")]
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
        // SAFETY: register-only AVX2 intrinsics (AVX2 is the caller's contract).
        out_offset: _mm256_set1_epi32(job.rq.out_offset),
        lo: _mm256_set1_epi32(job.rq.act_min),
        hi: _mm256_set1_epi32(job.rq.act_max),
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
#[target_feature(enable = "avx2,fma")]
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

/// Where a finished tile goes: requantized to int8, or through the hybrid float epilogue.
trait TileOut {
    /// Per-block constants, loaded once per channel block.
    type Block;

    /// The constants of the 16 lanes from channel `c0`.
    ///
    /// # Safety
    /// AVX2 must be available; the per-lane arrays hold whole blocks of 16.
    unsafe fn block(&self, c0: usize) -> Self::Block;

    /// Finishes a tile of `W` vectors of 8 channels from `c0` per pixel and stores the
    /// first `rows` pixels (from output pixel `pix`), `nc` channels each.
    ///
    /// # Safety
    /// AVX2 must be available; the pixels and channels lie inside the output and belong to
    /// the caller's part.
    #[allow(clippy::too_many_arguments)]
    unsafe fn store<const W: usize>(
        &self,
        b: &Self::Block,
        acc: &[[__m256i; W]; MR],
        rows: usize,
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
    out_offset: __m256i,
    lo: __m256i,
    hi: __m256i,
}

impl TileOut for Int8Out<'_> {
    type Block = ([Requant8; 2], [__m256i; 2]);

    #[inline(always)]
    unsafe fn block(&self, c0: usize) -> Self::Block {
        // SAFETY: the per-channel arrays hold whole 16-blocks, so lanes c0..c0+16 exist.
        unsafe { Requant8::block16(&self.rq, c0) }
    }

    #[inline(always)]
    unsafe fn store<const W: usize>(
        &self,
        (rq, bias): &Self::Block,
        acc: &[[__m256i; W]; MR],
        rows: usize,
        pix: usize,
        c0: usize,
        nc: usize,
    ) {
        // Every row is finished (constant indices keep `acc` in registers); only the
        // part's rows are stored.
        for (r, a) in acc.iter().enumerate() {
            // SAFETY: register work, then stores inside row `pix + r` of `out`.
            unsafe {
                let v0 = finish(
                    _mm256_add_epi32(a[0], bias[0]),
                    &rq[0],
                    self.out_offset,
                    self.lo,
                    self.hi,
                );
                let v1 = if W == 2 {
                    finish(
                        _mm256_add_epi32(a[W - 1], bias[1]),
                        &rq[1],
                        self.out_offset,
                        self.lo,
                        self.hi,
                    )
                } else {
                    v0
                };
                let bytes = pack16_i8(v0, v1);
                if r < rows {
                    let dst = self.out.add((pix + r) * self.out_c + c0);
                    store_i8(dst, bytes, nc);
                }
            }
        }
    }
}

/// The hybrid epilogue's constants of 16 lanes.
struct HybridBlock {
    scale: [__m256; 2],
    bias: [__m256; 2],
}

impl TileOut for HybridOut<'_> {
    type Block = HybridBlock;

    #[inline(always)]
    unsafe fn block(&self, c0: usize) -> HybridBlock {
        // SAFETY: the per-lane arrays hold whole 16-blocks (caller).
        unsafe {
            let s = self.filter_scales.as_ptr().add(c0);
            let bias = match self.bias {
                Some(b) => [
                    _mm256_loadu_ps(b.as_ptr().add(c0)),
                    _mm256_loadu_ps(b.as_ptr().add(c0 + 8)),
                ],
                None => [_mm256_setzero_ps(); 2],
            };
            HybridBlock {
                scale: [_mm256_loadu_ps(s), _mm256_loadu_ps(s.add(8))],
                bias,
            }
        }
    }

    #[inline(always)]
    unsafe fn store<const W: usize>(
        &self,
        b: &HybridBlock,
        acc: &[[__m256i; W]; MR],
        rows: usize,
        pix: usize,
        c0: usize,
        nc: usize,
    ) {
        // SAFETY: register work, then stores inside rows `pix .. pix + rows` of the output.
        unsafe {
            let input_scale = _mm256_set1_ps(self.input_scale);
            let tensor_scale = _mm256_set1_ps(self.tensor_scale);
            let (lo, hi) = (_mm256_set1_ps(self.lo), _mm256_set1_ps(self.hi));
            for (r, a) in acc.iter().enumerate().take(rows) {
                let mut v = [_mm256_setzero_ps(); 2];
                for (h, (v, &a)) in v.iter_mut().zip(a.iter()).enumerate() {
                    // Each product and sum rounded to f32 on its own, in the reference's
                    // order (see `hybrid::hybrid_conv2d`).
                    let x = _mm256_cvtepi32_ps(a);
                    let y = if self.per_channel {
                        let y = _mm256_mul_ps(_mm256_mul_ps(x, b.scale[h]), input_scale);
                        let y = if self.bias.is_some() {
                            _mm256_add_ps(y, b.bias[h])
                        } else {
                            y
                        };
                        clamp(y, lo, hi)
                    } else {
                        let y = _mm256_add_ps(_mm256_setzero_ps(), _mm256_mul_ps(x, tensor_scale));
                        if self.bias.is_some() {
                            clamp(_mm256_add_ps(y, b.bias[h]), lo, hi)
                        } else {
                            y
                        }
                    };
                    *v = y;
                }
                let dst = self.out.add((pix + r) * self.out_c + c0);
                store_first(dst, v[0], nc.min(8));
                if nc > 8 {
                    store_first(dst.add(8), v[1], nc - 8);
                }
            }
        }
    }
}

/// `min(max(x, lo), hi)` with C++ `std::max`/`std::min` semantics: NaN passes through.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn clamp(x: __m256, lo: __m256, hi: __m256) -> __m256 {
    // `maxps a, b` is `a > b ? a : b` and `minps a, b` is `a < b ? a : b`: with the bound
    // first, a NaN `x` is returned, as `x < lo ? lo : x` then `hi < a ? hi : a` do.
    // SAFETY: register-only AVX intrinsics.
    unsafe { _mm256_min_ps(hi, _mm256_max_ps(lo, x)) }
}

/// Computes the part's tiles, channel block by channel block.
///
/// # Safety
/// As for [`conv_part`], with `out`'s contract.
#[inline(always)]
unsafe fn part<O: TileOut>(
    job: &ConvJob<'_>,
    pix0: usize,
    npix: usize,
    blocks: Range<usize>,
    out: &O,
) {
    let g = job.g;
    let oc = g.out_c;
    let taps = g.filter_h * g.filter_w;
    let kpt = job.icp / 2;
    let block_len = taps * job.icp * NR;
    let last = oc.div_ceil(NR) - 1;
    let xw = job.xw.as_ptr();
    // SAFETY: `xw` holds a trailing zero row of `icp` values (caller's contract).
    let zero_row = unsafe { xw.add(job.xw.len() - job.icp) };
    for nb in blocks {
        let c0 = nb * NR;
        let nc = (oc - c0).min(NR);
        // SAFETY: block `nb` lies inside `weights` (a narrow last block is half as long).
        let w_block = unsafe { job.weights.as_ptr().add(nb * block_len) };
        // SAFETY: forwarded contract; the block's channels and weights exist.
        unsafe {
            let k = out.block(c0);
            if job.narrow_last && nb == last {
                block::<1, O>(job, out, &k, zero_row, c0, nc, w_block, kpt, pix0, npix);
            } else {
                block::<2, O>(job, out, &k, zero_row, c0, nc, w_block, kpt, pix0, npix);
            }
        }
    }
}

/// All tiles of one channel block `W·8` channels wide (`nc` of them real).
///
/// # Safety
/// As for [`conv_part`]; `w_block` points at this block's `taps·kpt·W·16` weights.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn block<const W: usize, O: TileOut>(
    job: &ConvJob<'_>,
    out: &O,
    k: &O::Block,
    zero_row: *const i16,
    c0: usize,
    nc: usize,
    w_block: *const i16,
    kpt: usize,
    pix0: usize,
    npix: usize,
) {
    let g = job.g;
    let pointwise = job.pointwise();
    let inside = job.windows_inside();
    let mut p = 0;
    while p < npix {
        let rows = (npix - p).min(MR);
        let mut acc = [[_mm256_setzero_si256(); W]; MR];
        if pointwise {
            // SAFETY: the part's pixels lie inside the output (caller); one tap of `kpt`
            // pairs, as for the taps below.
            acc = unsafe { tap::<MR, W>(acc, pointwise_rows(job, pix0 + p, rows), w_block, kpt) };
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
                        acc = tap::<MR, W>(acc, ptrs, w, kpt);
                        w = w.add(kpt * 2 * 8 * W);
                    }
                }
            }
        } else {
            // SAFETY: as above.
            let win = unsafe { Windows::<_, MR>::new(job, pix0 + p, rows) };
            let mut w = w_block;
            for ky in 0..g.filter_h {
                for kx in 0..g.filter_w {
                    // SAFETY: `w` walks the block's `taps·kpt` pairs of W·8-channel vectors;
                    // each pointer row holds `icp = 2·kpt` values.
                    unsafe {
                        let ptrs = win.tap(job, zero_row, ky, kx);
                        acc = tap::<MR, W>(acc, ptrs, w, kpt);
                        w = w.add(kpt * 2 * 8 * W);
                    }
                }
            }
        }
        // SAFETY: the part's rows `p .. p + rows` and the block's channels (caller).
        unsafe { out.store::<W>(k, &acc, rows, pix0 + p, c0, nc) };
        p += rows;
    }
}

/// Adds one tap's products to an `R`-pixel tile of `W` (1 or 2) vectors of 8 channels:
/// `kpt` pairs of input channels, each one weight vector per `W` at `w` and one int16 pair
/// per pixel row. The loops over rows and vectors have constant bounds and are unrolled, so
/// the accumulators stay in registers.
///
/// # Safety
/// AVX2 must be available; `w` readable for `kpt·W·16` values, each row of `ptrs` for
/// `2·kpt`.
#[inline(always)]
pub(crate) unsafe fn tap<const R: usize, const W: usize>(
    mut acc: [[__m256i; W]; R],
    ptrs: [*const i16; R],
    w: *const i16,
    kpt: usize,
) -> [[__m256i; W]; R] {
    // SAFETY: reads inside the caller's bounds; register arithmetic otherwise.
    unsafe {
        let mut w = w;
        for k in 0..kpt {
            let b: [__m256i; W] =
                std::array::from_fn(|v| _mm256_loadu_si256(w.add(16 * v) as *const __m256i));
            w = w.add(16 * W);
            for (acc_r, p) in acc.iter_mut().zip(&ptrs) {
                let x = _mm256_set1_epi32((p.add(2 * k) as *const i32).read_unaligned());
                for (a, bv) in acc_r.iter_mut().zip(&b) {
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(x, *bv));
                }
            }
        }
    }
    acc
}

/// Stores the first `n` (≤ 16) bytes of `v` at `p`.
///
/// # Safety
/// AVX2 must be available; `p` writable for `n` bytes.
#[inline(always)]
pub(crate) unsafe fn store_i8(p: *mut i8, v: __m128i, n: usize) {
    // SAFETY: writes exactly `n` bytes at `p` (caller's contract).
    unsafe {
        if n >= 16 {
            _mm_storeu_si128(p as *mut __m128i, v);
            return;
        }
        // Pieces of 8, 4, 2 and 1 bytes from registers: a copy through memory became a
        // `memcpy` call, which made the kernels spill every vector register around it.
        let (mut p, mut v) = (p, v);
        if n & 8 != 0 {
            _mm_storel_epi64(p as *mut __m128i, v);
            v = _mm_srli_si128::<8>(v);
            p = p.add(8);
        }
        let mut rest = _mm_cvtsi128_si32(v) as u32;
        if n & 4 != 0 {
            (p as *mut u32).write_unaligned(rest);
            rest = _mm_cvtsi128_si32(_mm_srli_si128::<4>(v)) as u32;
            p = p.add(4);
        }
        if n & 2 != 0 {
            (p as *mut u16).write_unaligned(rest as u16);
            rest >>= 16;
            p = p.add(2);
        }
        if n & 1 != 0 {
            *p = rest as u8 as i8;
        }
    }
}

/// Widens int8 pixels to int16 with `offset` added: `src` is `[pixels][c]`, `dst`
/// `[pixels][cp]` (`cp ≥ c`; the extra channels become 0).
///
/// # Safety
/// AVX2 must be available; `dst.len() == src.len() / c · cp`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn widen(src: &[i8], c: usize, dst: &mut [i16], cp: usize, offset: i32) {
    let off = offset as i16;
    if c == cp {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = i16::from(s).wrapping_add(off);
        }
        return;
    }
    // Per pixel, 16 channels at a time: a 16-byte load (through a zero-padded copy where it
    // would run past the input's end), sign extension, the offset, and the lanes past `c`
    // cleared; the scalar loop this replaces cost as much as a small layer's convolution.
    let offv = _mm256_set1_epi16(off);
    let idx = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let pixels = dst.len() / cp;
    let mut lanes = [0_i16; 16];
    for p in 0..pixels {
        let s = &src[p * c..p * c + c];
        let d = &mut dst[p * cp..p * cp + cp];
        for j in (0..cp).step_by(16) {
            let n = c.saturating_sub(j).min(16);
            let bytes = if p * c + j + 16 <= src.len() {
                // SAFETY: the 16 bytes at `p·c + j` lie inside `src` (checked).
                unsafe { _mm_loadu_si128(src.as_ptr().add(p * c + j) as *const __m128i) }
            } else {
                let mut tmp = [0_i8; 16];
                if n > 0 {
                    tmp[..n].copy_from_slice(&s[j..j + n]);
                }
                // SAFETY: `tmp` holds 16 bytes.
                unsafe { _mm_loadu_si128(tmp.as_ptr() as *const __m128i) }
            };
            let x = _mm256_add_epi16(_mm256_cvtepi8_epi16(bytes), offv);
            // Lane i survives when i < n: channels past `c` become 0.
            let keep = _mm256_cmpgt_epi16(_mm256_set1_epi16(n as i16), idx);
            let x = _mm256_and_si256(x, keep);
            if j + 16 <= cp {
                // SAFETY: lanes `j .. j + 16` lie inside this pixel's `d`.
                unsafe { _mm256_storeu_si256(d.as_mut_ptr().add(j) as *mut __m256i, x) };
            } else {
                // SAFETY: `lanes` holds 16 values.
                unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, x) };
                d[j..].copy_from_slice(&lanes[..cp - j]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Isa;

    #[test]
    fn widen_pads_every_channel_count() {
        if !Isa::Avx2.is_available() {
            return;
        }
        for c in 1..40_usize {
            for cp in [
                c,
                c + 1,
                c.next_multiple_of(2),
                c.next_multiple_of(16),
                c + 17,
            ] {
                for pixels in [1, 2, 5] {
                    let src: Vec<i8> = (0..pixels * c)
                        .map(|i| (i * 37 % 256) as u8 as i8)
                        .collect();
                    let mut dst = vec![7_i16; pixels * cp];
                    // SAFETY: AVX2 detected above; `dst` is `pixels·cp` long.
                    unsafe { widen(&src, c, &mut dst, cp, 128) };
                    for p in 0..pixels {
                        for k in 0..cp {
                            let want = if k < c {
                                i16::from(src[p * c + k]) + 128
                            } else {
                                0
                            };
                            assert_eq!(dst[p * cp + k], want, "c={c} cp={cp} pixel {p} lane {k}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn partial_stores_write_exactly_n_bytes() {
        if !Isa::Avx2.is_available() {
            return;
        }
        let src: [i8; 16] = std::array::from_fn(|i| i as i8 * 7 - 50);
        for n in 0..=16 {
            let mut dst = [99_i8; 20];
            // SAFETY: AVX2 detected above; `dst` has room for 16 bytes at offset 1.
            unsafe {
                let v = _mm_loadu_si128(src.as_ptr() as *const __m128i);
                store_i8(dst.as_mut_ptr().add(1), v, n);
            }
            assert_eq!(dst[0], 99);
            assert_eq!(&dst[1..1 + n], &src[..n], "n={n}");
            assert!(dst[1 + n..].iter().all(|&b| b == 99), "n={n}");
        }
    }
}
