//! The job of the SIMD int8 depthwise kernels (AVX2 `x86::qdepthwise`, NEON
//! `neon::qdepthwise`) and their walk over output pixels: for each run of up to [`CHUNK`]
//! output pixels of a row, the input pixel each filter tap reads. Pure address arithmetic,
//! the same for every tier.

use super::channel_consts::Requant;
use super::geometry::ConvGeometry;

/// Channels per step.
pub(crate) const CB: usize = 16;
/// Output pixels whose tap pointers are computed together.
pub(crate) const CHUNK: usize = 8;
/// Most filter taps (rounded up to even) the kernels take.
pub(crate) const MAX_TAPS: usize = 64;

/// Everything one depthwise part reads.
pub(crate) struct DwJob<'a, T> {
    pub g: &'a ConvGeometry,
    /// Channels rounded up to a multiple of 16 (the widened input's pixel stride).
    pub cp: usize,
    /// Tap pairs (`⌈KH·KW / 2⌉`).
    pub pairs: usize,
    /// `[block][pair][32]` int16 weights, interleaved as described above.
    pub weights: &'a [i16],
    /// Per-channel constants in lane order (`[block][16]`), output offset and clamp.
    pub rq: Requant<'a>,
    /// The input `[N·H·W][cp]`: widened to int16 with the zero point subtracted, or the
    /// int8 input itself when `cp` is its channel count.
    pub x: &'a [T],
    /// What a padding tap reads, `cp` values: zeros (int16), or the zero point (int8).
    pub pad: &'a [T],
}

/// Tap pointers of up to [`CHUNK`] output pixels: `[pixel][tap]`.
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
pub(crate) type ChunkPtrs<T> = [[*const T; MAX_TAPS]; CHUNK];

/// Walks output rows `row0 .. row0 + out.len()/(out_w·out_c)` (rows of all images counted
/// together) in chunks of up to [`CHUNK`] pixels, and calls `f(ptrs, n, out_px)` for each:
/// the tap pointers of the chunk's `n` pixels (odd tap counts end with the padding row,
/// which meets a zero weight) and the chunk's first output pixel.
///
/// # Safety
/// The job's slices consistent with its geometry (`x` `N·H·W·cp` values, `pad` `cp`
/// values); `out` whole output rows inside the output.
///
/// The AVX2 kernel writes the same walk out itself (see there why).
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
#[inline(always)]
pub(crate) unsafe fn for_each_chunk<T>(
    job: &DwJob<'_, T>,
    row0: usize,
    out: &mut [i8],
    mut f: impl FnMut(&ChunkPtrs<T>, usize, *mut i8),
) {
    let g = job.g;
    let c = g.out_c;
    let row_len = g.out_w * c;
    let rows = out.len() / row_len;
    let taps = g.filter_h * g.filter_w;
    let xw = job.x.as_ptr();
    let zero_row = job.pad.as_ptr();
    let mut ptrs: ChunkPtrs<T> = [[zero_row; MAX_TAPS]; CHUNK];
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
            f(&ptrs, n, out_px);
        }
    }
}
