//! The NEON depthwise row (depth multiplier 1): 4 channels per vector; pixels whose window
//! lies inside the input go four at a time, sharing each filter vector; border pixels go one
//! at a time over their valid taps. Channel tails go through a small buffer. Every pixel sums
//! its taps in `(ky, kx)` order with one `fmla` each, in both paths.

use std::arch::aarch64::*;

use crate::depthwise::{interior_columns, tap_range, DepthwiseParams, PackedDepthwise, RowGeom};
use crate::neon::gemm::clamp;

/// Everything the vector loops need, as raw pointers checked by [`row`].
struct Args {
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    out: *mut f32,
    ny: usize,
    x_row: usize,
    w_row: usize,
    oc_pad: usize,
    c: usize,
    kw: usize,
    in_w: usize,
    out_w: usize,
    stride: usize,
    dilation: usize,
    pad_left: usize,
    lo: usize,
    hi: usize,
    min: f32,
    max: f32,
}

/// One output row of `p` (depth multiplier 1) into `out` (`out_w·C` floats).
pub(crate) fn row(
    p: &DepthwiseParams,
    input: &[f32],
    f: &PackedDepthwise,
    g: &RowGeom,
    out: &mut [f32],
) {
    let c = p.in_c;
    let (lo, hi) = interior_columns(p);
    assert_eq!(p.depth_multiplier, 1);
    assert!(out.len() >= p.out_w * c, "output row too short");
    if g.ny > 0 {
        assert!(
            g.line + (g.ny - 1) * g.x_row + p.in_w * c <= input.len(),
            "input rows out of bounds"
        );
    }
    assert!(g.w0 + g.ny * p.kernel_w * f.oc_pad() <= f.weights().len());
    assert!(f.bias().len() >= f.oc_pad() && f.oc_pad() >= c);
    if lo < hi {
        assert!(
            lo * p.stride_w >= p.pad_left,
            "interior starts in the padding"
        );
        assert!(
            (hi - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w < p.in_w + p.pad_left,
            "interior ends in the padding"
        );
    }
    let args = Args {
        x: input[g.line.min(input.len())..].as_ptr(),
        w: f.weights()[g.w0..].as_ptr(),
        bias: f.bias().as_ptr(),
        out: out.as_mut_ptr(),
        ny: g.ny,
        x_row: g.x_row,
        w_row: p.kernel_w * f.oc_pad(),
        oc_pad: f.oc_pad(),
        c,
        kw: p.kernel_w,
        in_w: p.in_w,
        out_w: p.out_w,
        stride: p.stride_w,
        dilation: p.dilation_w,
        pad_left: p.pad_left,
        lo,
        hi,
        min: p.clamp.min,
        max: p.clamp.max,
    };
    // SAFETY: NEON is available (the tier was checked when the filter was prepared); all
    // accesses stay within the bounds checked above.
    unsafe { row_neon(&args) };
}

/// Pixel by pixel (four at a time inside), all channel groups of a pixel before the next:
/// consecutive groups read consecutive memory.
#[target_feature(enable = "neon")]
unsafe fn row_neon(a: &Args) {
    let full = a.c / 4 * 4;
    let tail = a.c - full;
    let lo = vdupq_n_f32(a.min);
    let hi = vdupq_n_f32(a.max);
    let mut ox = 0;
    while ox < a.out_w {
        if ox >= a.lo && ox + 4 <= a.hi {
            let ix0 = ox * a.stride - a.pad_left;
            let mut c0 = 0;
            while c0 < full {
                quad::<true>(a, ox, ix0, c0, 4, lo, hi);
                c0 += 4;
            }
            if tail > 0 {
                quad::<false>(a, ox, ix0, full, tail, lo, hi);
            }
            ox += 4;
        } else {
            let ix0 = (ox * a.stride) as isize - a.pad_left as isize;
            let (kx0, kx1) = tap_range(ix0, a.dilation, a.kw, a.in_w);
            let mut c0 = 0;
            while c0 < full {
                single::<true>(a, ox, ix0, (kx0, kx1), c0, 4, lo, hi);
                c0 += 4;
            }
            if tail > 0 {
                single::<false>(a, ox, ix0, (kx0, kx1), full, tail, lo, hi);
            }
            ox += 1;
        }
    }
}

#[inline(always)]
unsafe fn load<const FULL: bool>(p: *const f32, n: usize) -> float32x4_t {
    if FULL {
        vld1q_f32(p)
    } else {
        let mut tmp = [0.0f32; 4];
        std::ptr::copy_nonoverlapping(p, tmp.as_mut_ptr(), n);
        vld1q_f32(tmp.as_ptr())
    }
}

#[inline(always)]
unsafe fn store<const FULL: bool>(p: *mut f32, n: usize, v: float32x4_t) {
    if FULL {
        vst1q_f32(p, v)
    } else {
        let mut tmp = [0.0f32; 4];
        vst1q_f32(tmp.as_mut_ptr(), v);
        std::ptr::copy_nonoverlapping(tmp.as_ptr(), p, n);
    }
}

/// Channels `c0 .. c0+n` of the four interior pixels `ox .. ox+4`, whose windows start at
/// input column `ix0`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn quad<const FULL: bool>(
    a: &Args,
    ox: usize,
    ix0: usize,
    c0: usize,
    n: usize,
    lo: float32x4_t,
    hi: float32x4_t,
) {
    let px = a.stride * a.c;
    let mut acc = [vdupq_n_f32(0.0); 4];
    for ty in 0..a.ny {
        let xr = a.x.add(ty * a.x_row + ix0 * a.c + c0);
        let wr = a.w.add(ty * a.w_row + c0);
        for kx in 0..a.kw {
            let wv = vld1q_f32(wr.add(kx * a.oc_pad));
            let xp = xr.add(kx * a.dilation * a.c);
            for (i, acc_i) in acc.iter_mut().enumerate() {
                *acc_i = vfmaq_f32(*acc_i, load::<FULL>(xp.add(i * px), n), wv);
            }
        }
    }
    let bias = vld1q_f32(a.bias.add(c0));
    for (i, v) in acc.iter().enumerate() {
        let y = clamp(vaddq_f32(*v, bias), lo, hi);
        store::<FULL>(a.out.add((ox + i) * a.c + c0), n, y);
    }
}

/// Channels `c0 .. c0+n` of one pixel over its valid taps `kx0 .. kx1`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn single<const FULL: bool>(
    a: &Args,
    ox: usize,
    ix0: isize,
    (kx0, kx1): (usize, usize),
    c0: usize,
    n: usize,
    lo: float32x4_t,
    hi: float32x4_t,
) {
    let mut acc = vdupq_n_f32(0.0);
    for ty in 0..a.ny {
        let xr = a.x.add(ty * a.x_row + c0);
        let wr = a.w.add(ty * a.w_row + c0);
        for kx in kx0..kx1 {
            // kx is a valid tap of this pixel, so the column is in bounds.
            let ix = (ix0 + (kx * a.dilation) as isize) as usize;
            let wv = vld1q_f32(wr.add(kx * a.oc_pad));
            acc = vfmaq_f32(acc, load::<FULL>(xr.add(ix * a.c), n), wv);
        }
    }
    let bias = vld1q_f32(a.bias.add(c0));
    let y = clamp(vaddq_f32(acc, bias), lo, hi);
    store::<FULL>(a.out.add(ox * a.c + c0), n, y);
}
