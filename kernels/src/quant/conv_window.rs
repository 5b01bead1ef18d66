//! The int16 convolution job shared by the SIMD int8 kernels (AVX2 `x86::qconv`, NEON
//! `neon::qconv`), and where each filter tap of a tile of output pixels reads its input:
//! pure address arithmetic, the same for every tier.

use super::channel_consts::Requant;
use super::geometry::ConvGeometry;

/// Everything one convolution part reads. `T` is the element of the input copy and of the
/// weights: int16 for the `vpmaddwd`/`smlal` kernels, int8 for the `sdot` one.
pub(crate) struct ConvJob<'a, T = i16> {
    pub g: &'a ConvGeometry,
    /// Values one tap reads (input channels, or a filter row's in rows mode), rounded up to
    /// the kernel's group (2 values, or 4 for `sdot`).
    pub icp: usize,
    /// Values from one input pixel to the next in `xw` (`icp`, or the input channels in
    /// rows mode).
    pub px_stride: usize,
    /// Packed weights, `[block][tap][icp/G][16][G]` for groups of `G` input channels (2,
    /// or 4 for `sdot`); with `narrow_last` the last block is `[tap][icp/G][8][G]` (at most
    /// 8 channels left).
    pub weights: &'a [T],
    pub narrow_last: bool,
    /// Per-channel constants padded to whole blocks, output offset and clamp.
    pub rq: Requant<'a>,
    /// The input `[N·H·W][px_stride]`: widened with the zero point subtracted and followed
    /// by one row of `icp` zeros (int16), or as int8 (`sdot`, padding read elsewhere).
    pub xw: &'a [T],
}

impl<T> ConvJob<'_, T> {
    /// Whether every window lies inside the input (no padding reached: rows mode, whose input
    /// copy is padded, and VALID layers). Each tap of a pixel then reads at a fixed offset
    /// from its window's first pixel ([`inside_firsts`]): no per-tap bounds checks, and
    /// code small enough that the kernels keep their accumulators in registers across taps
    /// (with the general walk of [`Windows`] in the same loop, the AVX2 kernel stored and
    /// reloaded them at every tap; a walk type choosing between the two per tap cost 5%).
    pub(crate) fn windows_inside(&self) -> bool {
        let g = self.g;
        // Windows move monotonically with the output position: the first and the last
        // bound them all.
        g.out_h == 0
            || g.out_w == 0
            || (g.window_inside(0, 0) && g.window_inside(g.out_h - 1, g.out_w - 1))
    }

    /// Where filter tap `(ky, kx)` lies from a window's first pixel, in values of `xw`.
    #[inline(always)]
    pub(crate) fn tap_offset(&self, ky: usize, kx: usize) -> usize {
        let g = self.g;
        (ky * g.dilation_h * g.in_w + kx * g.dilation_w) * self.px_stride
    }

    /// Whether output pixel `q` reads input pixel `q` alone (1×1, stride 1, no padding).
    pub(crate) fn pointwise(&self) -> bool {
        let g = self.g;
        g.filter_h == 1
            && g.filter_w == 1
            && g.stride_h == 1
            && g.stride_w == 1
            && g.pad_top == 0
            && g.pad_left == 0
            && (g.out_h, g.out_w) == (g.in_h, g.in_w)
    }
}

/// The input windows of `R` consecutive output pixels (a register tile). Pixels past the
/// part's `rows` repeat the last one; their results are computed and not stored.
pub(crate) struct Windows<T, const R: usize> {
    img: [usize; R],
    y0: [isize; R],
    x0: [isize; R],
    /// The window's first pixel, for pixels whose whole window lies inside the input.
    first: [*const T; R],
    inside: [bool; R],
}

impl<T, const R: usize> Windows<T, R> {
    /// The windows of output pixels `pix .. pix + rows` (`1 <= rows <= R`).
    ///
    /// # Safety
    /// The pixels lie inside the output and `job.xw` holds the widened input.
    #[inline(always)]
    pub(crate) unsafe fn new(job: &ConvJob<'_, T>, pix: usize, rows: usize) -> Self {
        let g = job.g;
        let xw = job.xw.as_ptr();
        let plane = g.out_h * g.out_w;
        let reach_h = (g.filter_h - 1) * g.dilation_h;
        let reach_w = (g.filter_w - 1) * g.dilation_w;
        let mut me = Windows {
            img: [0; R],
            y0: [0; R],
            x0: [0; R],
            first: [xw; R],
            inside: [false; R],
        };
        // One division per tile; the next pixels step through the output in order.
        let (mut b, rem) = (pix / plane, pix % plane);
        let (mut oy, mut ox) = (rem / g.out_w, rem % g.out_w);
        for r in 0..R {
            me.img[r] = b * g.in_h;
            me.y0[r] = (oy * g.stride_h) as isize - g.pad_top as isize;
            me.x0[r] = (ox * g.stride_w) as isize - g.pad_left as isize;
            if r + 1 < rows {
                ox += 1;
                if ox == g.out_w {
                    ox = 0;
                    oy += 1;
                    if oy == g.out_h {
                        oy = 0;
                        b += 1;
                    }
                }
            }
        }
        // Pixels whose whole window lies inside the input read each tap at a fixed offset
        // from the window's first pixel; the others check every tap.
        for r in 0..R {
            me.inside[r] = me.y0[r] >= 0
                && me.x0[r] >= 0
                && me.y0[r] as usize + reach_h < g.in_h
                && me.x0[r] as usize + reach_w < g.in_w;
            if me.inside[r] {
                let pixel = (me.img[r] + me.y0[r] as usize) * g.in_w + me.x0[r] as usize;
                // SAFETY: the window's first pixel is inside the input.
                me.first[r] = unsafe { xw.add(pixel * job.px_stride) };
            }
        }
        me
    }

    /// Where each pixel reads filter tap `(ky, kx)`: its input pixel, or `zero_row` for a
    /// tap in the padding.
    ///
    /// # Safety
    /// As for [`Windows::new`], with the same job; `ky < filter_h`, `kx < filter_w`.
    #[inline(always)]
    pub(crate) unsafe fn tap(
        &self,
        job: &ConvJob<'_, T>,
        zero_row: *const T,
        ky: usize,
        kx: usize,
    ) -> [*const T; R] {
        let g = job.g;
        let xw = job.xw.as_ptr();
        let mut ptrs = [zero_row; R];
        let toff = (ky * g.dilation_h * g.in_w + kx * g.dilation_w) * job.px_stride;
        for (r, ptr) in ptrs.iter_mut().enumerate() {
            if self.inside[r] {
                // SAFETY: this tap's pixel is inside the input (the whole window is).
                *ptr = unsafe { self.first[r].add(toff) };
                continue;
            }
            let iy = self.y0[r] + (ky * g.dilation_h) as isize;
            let ix = self.x0[r] + (kx * g.dilation_w) as isize;
            if iy >= 0 && ix >= 0 && (iy as usize) < g.in_h && (ix as usize) < g.in_w {
                let pixel = (self.img[r] + iy as usize) * g.in_w + ix as usize;
                // SAFETY: the pixel is inside the input, so its row is in `xw`.
                *ptr = unsafe { xw.add(pixel * job.px_stride) };
            }
        }
        ptrs
    }
}

/// The first input pixel of the windows of output pixels `pix .. pix + rows`, for a job
/// whose windows all lie inside the input ([`ConvJob::windows_inside`]); pixels past `rows`
/// repeat the last one. Tap `(ky, kx)` of pixel `r` reads at
/// `first[r] + job.tap_offset(ky, kx)`.
///
/// # Safety
/// The pixels lie inside the output, `job.windows_inside()` holds and `job.xw` holds the
/// input.
#[inline(always)]
pub(crate) unsafe fn inside_firsts<T, const R: usize>(
    job: &ConvJob<'_, T>,
    pix: usize,
    rows: usize,
) -> [*const T; R] {
    let g = job.g;
    let xw = job.xw.as_ptr();
    let plane = g.out_h * g.out_w;
    // One division per tile; the next pixels step through the output in order.
    let (mut b, rem) = (pix / plane, pix % plane);
    let (mut oy, mut ox) = (rem / g.out_w, rem % g.out_w);
    let mut first = [xw; R];
    for (r, f) in first.iter_mut().enumerate() {
        let pixel = (b * g.in_h + oy * g.stride_h) * g.in_w + ox * g.stride_w;
        // SAFETY: the window of an output pixel lies inside the input (caller).
        *f = unsafe { xw.add(pixel * job.px_stride) };
        if r + 1 < rows {
            ox += 1;
            if ox == g.out_w {
                ox = 0;
                oy += 1;
                if oy == g.out_h {
                    oy = 0;
                    b += 1;
                }
            }
        }
    }
    first
}

/// The input rows of output pixels `pix .. pix + rows` of a pointwise job
/// ([`ConvJob::pointwise`]); pixels past `rows` repeat the last one.
///
/// # Safety
/// The pixels lie inside the output (and so, pointwise, inside the input).
#[inline(always)]
pub(crate) unsafe fn pointwise_rows<T, const R: usize>(
    job: &ConvJob<'_, T>,
    pix: usize,
    rows: usize,
) -> [*const T; R] {
    let xw = job.xw.as_ptr();
    // SAFETY: pixel `pix + min(r, rows - 1)` is inside the input (caller).
    std::array::from_fn(|r| unsafe { xw.add((pix + r.min(rows - 1)) * job.px_stride) })
}
