//! The AVX2 + FMA depthwise row (depth multiplier 1): 8 channels per vector. 3×3 filters
//! keep a channel group's filter in registers while it slides along the row (border columns
//! included); other widths take pixels whose window lies inside the input four at a time,
//! sharing each filter vector between four independent accumulators (which also hides the
//! latency of the fused multiply-add chain), and border pixels one at a time over their valid
//! taps. Channel tails use masked loads and stores. Every path sums a pixel the same way:
//! each valid tap row in `kx` order (a multiply, then fused multiply-adds), and the row sums
//! in `ky` order. Splitting the sum by rows keeps the dependency chains short (three FMAs for
//! a 3×3 filter rather than nine), and using one order everywhere means the grouping of
//! pixels never changes a result.

use std::arch::x86_64::*;

use super::{first_lanes, store_first};
use crate::depthwise::{interior_columns, tap_range, DepthwiseParams, PackedDepthwise, RowGeom};

/// Everything the vector loops need, as raw pointers checked by [`row`].
struct Args {
    /// Input at the first valid tap row (column 0, channel 0).
    x: *const f32,
    /// Filter at the first valid tap row.
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
    // Bounds of everything the unchecked loops touch: input tap rows `0..ny` from `line`,
    // columns `0..in_w`; filter rows `0..ny` from `w0`; the output row.
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
        // Interior columns are monotonic in ox: checking both ends covers them all.
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
        // `line` is in bounds when ny > 0 (checked above) and 0 otherwise.
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
    // SAFETY: `PackedDepthwise` holds only tiers the CPU runs, and this row is only called
    // for `Isa::Avx2`; all accesses stay within the bounds checked above.
    unsafe { row_avx2(&args) };
}

/// Filters 3 wide with at most 3 valid tap rows (every 3×3 depthwise) take [`row3`]; the
/// others go pixel by pixel (four at a time inside), all channel groups of a pixel before the
/// next, with copies for widths 5 and any.
#[target_feature(enable = "avx2,fma")]
unsafe fn row_avx2(a: &Args) {
    match (a.kw, a.ny) {
        (3, 1) => row3::<1>(a),
        (3, 2) => row3::<2>(a),
        (3, 3) => row3::<3>(a),
        (5, _) => row_kw::<5>(a),
        _ => row_kw::<0>(a),
    }
}

/// 3-wide filters with `NY` valid tap rows: for each group of 8 channels the `NY×3` filter
/// vectors stay in registers while the group slides along the row, so each tap of an interior
/// pixel is one multiply-add with its input load; out-of-order execution overlaps the pixels'
/// independent sums. Border pixels go through [`border3`].
#[inline(always)]
unsafe fn row3<const NY: usize>(a: &Args) {
    let full = a.c / 8 * 8;
    let tail = a.c - full;
    let mask = first_lanes(tail);
    let lo = _mm256_set1_ps(a.min);
    let hi = _mm256_set1_ps(a.max);
    let mut c0 = 0;
    while c0 < full {
        group3::<NY, true>(a, c0, mask, lo, hi);
        c0 += 8;
    }
    if tail > 0 {
        group3::<NY, false>(a, full, mask, lo, hi);
    }
}

#[inline(always)]
unsafe fn group3<const NY: usize, const FULL: bool>(
    a: &Args,
    c0: usize,
    mask: __m256i,
    lo: __m256,
    hi: __m256,
) {
    let mut w = [[_mm256_setzero_ps(); 3]; NY];
    for (ty, w_ty) in w.iter_mut().enumerate() {
        for (kx, w_t) in w_ty.iter_mut().enumerate() {
            *w_t = _mm256_loadu_ps(a.w.add(ty * a.w_row + kx * a.oc_pad + c0));
        }
    }
    let bias = _mm256_loadu_ps(a.bias.add(c0));
    let tap = a.dilation * a.c;
    for ox in 0..a.lo.min(a.out_w) {
        border3::<NY, FULL>(a, ox, c0, &w, bias, mask, lo, hi);
    }
    if a.lo < a.hi {
        let px = a.stride * a.c;
        let mut rows = rows_at::<NY>(a, c0, (a.lo * a.stride - a.pad_left) as isize);
        let mut out = a.out.add(a.lo * a.c + c0);
        for _ in a.lo..a.hi {
            let sum = pixel::<NY, FULL, 0, 3>(&rows, tap, &w, mask);
            store::<FULL>(out, a.c - c0, finish(sum, bias, lo, hi));
            for r in rows.iter_mut() {
                *r = r.wrapping_add(px);
            }
            out = out.wrapping_add(a.c);
        }
    }
    for ox in a.hi.max(a.lo)..a.out_w {
        border3::<NY, FULL>(a, ox, c0, &w, bias, mask, lo, hi);
    }
}

/// The `NY` row pointers of channel `c0` at input column `ix0` (possibly in the padding, so
/// made with wrapping arithmetic: only a window's valid taps are read).
#[inline(always)]
unsafe fn rows_at<const NY: usize>(a: &Args, c0: usize, ix0: isize) -> [*const f32; NY] {
    let mut rows = [a.x; NY];
    for (ty, r) in rows.iter_mut().enumerate() {
        *r =
            a.x.wrapping_add(ty * a.x_row + c0)
                .wrapping_offset(ix0 * a.c as isize);
    }
    rows
}

/// A border column `ox` of [`group3`]: the common cases (a 3×3 window missing its first or
/// its last column) keep the filter in registers like the interior; others go through
/// [`single`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn border3<const NY: usize, const FULL: bool>(
    a: &Args,
    ox: usize,
    c0: usize,
    w: &[[__m256; 3]; NY],
    bias: __m256,
    mask: __m256i,
    lo: __m256,
    hi: __m256,
) {
    let ix0 = (ox * a.stride) as isize - a.pad_left as isize;
    let taps = tap_range(ix0, a.dilation, a.kw, a.in_w);
    let tap = a.dilation * a.c;
    let out = a.out.add(ox * a.c + c0);
    let sum = match taps {
        (1, 3) => pixel::<NY, FULL, 1, 3>(&rows_at::<NY>(a, c0, ix0), tap, w, mask),
        (0, 2) => pixel::<NY, FULL, 0, 2>(&rows_at::<NY>(a, c0, ix0), tap, w, mask),
        _ => return single::<FULL>(a, ox, ix0, taps, c0, mask, lo, hi),
    };
    store::<FULL>(out, a.c - c0, finish(sum, bias, lo, hi));
}

/// The sum of one pixel's taps `K0..K1` of each of its `NY` rows (`rows[ty]` at the window's
/// first column, `tap` floats between columns), with the filter in registers: per row, a
/// multiply then fused multiply-adds in `kx` order, and the rows added in `ky` order (the
/// order [`single`] uses, so every path gives the same sums).
#[inline(always)]
unsafe fn pixel<const NY: usize, const FULL: bool, const K0: usize, const K1: usize>(
    rows: &[*const f32; NY],
    tap: usize,
    w: &[[__m256; 3]; NY],
    mask: __m256i,
) -> __m256 {
    let mut sum = _mm256_setzero_ps();
    for (ty, (r, w_ty)) in rows.iter().zip(w).enumerate() {
        let mut part = _mm256_mul_ps(load::<FULL>(r.wrapping_add(K0 * tap), mask), w_ty[K0]);
        for (kx, w_t) in w_ty.iter().enumerate().take(K1).skip(K0 + 1) {
            part = _mm256_fmadd_ps(load::<FULL>(r.wrapping_add(kx * tap), mask), *w_t, part);
        }
        sum = if ty == 0 {
            part
        } else {
            _mm256_add_ps(sum, part)
        };
    }
    sum
}

/// The row for filters `KW` wide (`KW == 0`: any width, read from `a.kw`).
#[inline(always)]
unsafe fn row_kw<const KW: usize>(a: &Args) {
    let full = a.c / 8 * 8;
    let tail = a.c - full;
    let mask = first_lanes(tail);
    let lo = _mm256_set1_ps(a.min);
    let hi = _mm256_set1_ps(a.max);
    let mut ox = 0;
    while ox < a.out_w {
        if ox >= a.lo && ox + 4 <= a.hi {
            let ix0 = ox * a.stride - a.pad_left;
            let mut c0 = 0;
            while c0 < full {
                quad::<true, KW>(a, ox, ix0, c0, mask, lo, hi);
                c0 += 8;
            }
            if tail > 0 {
                quad::<false, KW>(a, ox, ix0, full, mask, lo, hi);
            }
            ox += 4;
        } else {
            let ix0 = (ox * a.stride) as isize - a.pad_left as isize;
            let (kx0, kx1) = tap_range(ix0, a.dilation, a.kw, a.in_w);
            let mut c0 = 0;
            while c0 < full {
                single::<true>(a, ox, ix0, (kx0, kx1), c0, mask, lo, hi);
                c0 += 8;
            }
            if tail > 0 {
                single::<false>(a, ox, ix0, (kx0, kx1), full, mask, lo, hi);
            }
            ox += 1;
        }
    }
}

/// `clamp(acc + bias)` with the reference's clamp (max/min keep a NaN sum, see `x86::gemm`).
#[inline(always)]
unsafe fn finish(acc: __m256, bias: __m256, lo: __m256, hi: __m256) -> __m256 {
    _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_add_ps(acc, bias)))
}

#[inline(always)]
unsafe fn load<const FULL: bool>(p: *const f32, mask: __m256i) -> __m256 {
    if FULL {
        _mm256_loadu_ps(p)
    } else {
        _mm256_maskload_ps(p, mask)
    }
}

/// Stores a full vector, or the first `tail` lanes (the channel tail).
#[inline(always)]
unsafe fn store<const FULL: bool>(p: *mut f32, tail: usize, v: __m256) {
    if FULL {
        _mm256_storeu_ps(p, v)
    } else {
        store_first(p, v, tail)
    }
}

/// Channels `c0 .. c0+8` (masked when not `FULL`) of the four interior pixels `ox .. ox+4`,
/// whose windows start at input column `ix0`; `KW` as in [`row_kw`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn quad<const FULL: bool, const KW: usize>(
    a: &Args,
    ox: usize,
    ix0: usize,
    c0: usize,
    mask: __m256i,
    lo: __m256,
    hi: __m256,
) {
    let kw = if KW == 0 { a.kw } else { KW };
    let px = a.stride * a.c;
    let tap = a.dilation * a.c;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut xr = a.x.add(ix0 * a.c + c0);
    let mut wr = a.w.add(c0);
    for ty in 0..a.ny {
        let mut part = [_mm256_setzero_ps(); 4];
        for kx in 0..kw {
            let wv = _mm256_loadu_ps(wr.add(kx * a.oc_pad));
            let xp = xr.add(kx * tap);
            for (i, p) in part.iter_mut().enumerate() {
                let xv = load::<FULL>(xp.add(i * px), mask);
                *p = if kx == 0 {
                    _mm256_mul_ps(xv, wv)
                } else {
                    _mm256_fmadd_ps(xv, wv, *p)
                };
            }
        }
        for (s, p) in acc.iter_mut().zip(&part) {
            *s = if ty == 0 { *p } else { _mm256_add_ps(*s, *p) };
        }
        xr = xr.wrapping_add(a.x_row);
        wr = wr.add(a.w_row);
    }
    let bias = _mm256_loadu_ps(a.bias.add(c0));
    for (i, v) in acc.iter().enumerate() {
        store::<FULL>(
            a.out.add((ox + i) * a.c + c0),
            a.c - c0,
            finish(*v, bias, lo, hi),
        );
    }
}

/// Channels `c0 .. c0+8` of one pixel over its valid taps `kx0 .. kx1` (its window starts at
/// input column `ix0`, possibly in the padding).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn single<const FULL: bool>(
    a: &Args,
    ox: usize,
    ix0: isize,
    (kx0, kx1): (usize, usize),
    c0: usize,
    mask: __m256i,
    lo: __m256,
    hi: __m256,
) {
    let mut acc = _mm256_setzero_ps();
    if kx0 < kx1 {
        for ty in 0..a.ny {
            let xr = a.x.add(ty * a.x_row + c0);
            let wr = a.w.add(ty * a.w_row + c0);
            let mut part = _mm256_setzero_ps();
            for kx in kx0..kx1 {
                // kx is a valid tap of this pixel, so the column is in bounds.
                let ix = (ix0 + (kx * a.dilation) as isize) as usize;
                let wv = _mm256_loadu_ps(wr.add(kx * a.oc_pad));
                let xv = load::<FULL>(xr.add(ix * a.c), mask);
                part = if kx == kx0 {
                    _mm256_mul_ps(xv, wv)
                } else {
                    _mm256_fmadd_ps(xv, wv, part)
                };
            }
            acc = if ty == 0 {
                part
            } else {
                _mm256_add_ps(acc, part)
            };
        }
    }
    let bias = _mm256_loadu_ps(a.bias.add(c0));
    store::<FULL>(
        a.out.add(ox * a.c + c0),
        a.c - c0,
        finish(acc, bias, lo, hi),
    );
}
