//! AVX2 transforms of Winograd's F(2×2, 3×3) (see `crate::winograd`): 8 channels per vector,
//! masked loads for a channel tail, no calls in the loops.

use std::arch::x86_64::*;

use super::{first_lanes, store_first};
use crate::activation::Clamp;

/// `V = Bᵀ·d·B` of one tile: `d[k]` is patch pixel `k` (row-major 4×4; `ic` floats each, or
/// zeros); position `k` of V goes to `v + k·pos_stride` (`ic` rounded up to 8 floats each:
/// whole vectors are stored, the padding lanes hold junk the GEMMs never read).
///
/// # Safety
/// AVX2 available; every `d[k]` readable for `ic` floats; `v + k·pos_stride` writable for
/// `ic` rounded up to a multiple of 8 floats, for `k < 16`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn input_tile(d: &[*const f32; 16], ic: usize, v: *mut f32, pos_stride: usize) {
    let mut c0 = 0;
    while c0 < ic {
        let n = ic - c0;
        let mask = first_lanes(n);
        let mut x = [_mm256_setzero_ps(); 16];
        for (xk, dk) in x.iter_mut().zip(d) {
            *xk = load(dk.add(c0), n, mask);
        }
        // Rows: Bᵀ·d.
        let mut t = [_mm256_setzero_ps(); 16];
        for j in 0..4 {
            let (d0, d1, d2, d3) = (x[j], x[4 + j], x[8 + j], x[12 + j]);
            t[j] = _mm256_sub_ps(d0, d2);
            t[4 + j] = _mm256_add_ps(d1, d2);
            t[8 + j] = _mm256_sub_ps(d2, d1);
            t[12 + j] = _mm256_sub_ps(d1, d3);
        }
        // Columns: ·B.
        for i in 0..4 {
            let (a0, a1, a2, a3) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
            let out = [
                _mm256_sub_ps(a0, a2),
                _mm256_add_ps(a1, a2),
                _mm256_sub_ps(a2, a1),
                _mm256_sub_ps(a1, a3),
            ];
            for (j, o) in out.into_iter().enumerate() {
                _mm256_storeu_ps(v.add((4 * i + j) * pos_stride + c0), o);
            }
        }
        c0 += 8;
    }
}

/// `Y = Aᵀ·M·A` of one tile plus the bias, clamped: position `k` of M is at
/// `m + k·pos_stride` (`oc` floats); output pixel `2i + j` of the tile goes to `y[2i + j]`
/// when not null (pixels past the output's edge are null).
///
/// # Safety
/// AVX2 available; M readable as described; `bias` readable for `oc` floats; each non-null
/// `y[k]` writable for `oc` floats.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn output_tile(
    m: *const f32,
    pos_stride: usize,
    oc: usize,
    bias: *const f32,
    clamp: Clamp,
    y: &[*mut f32; 4],
) {
    let lo = _mm256_set1_ps(clamp.min);
    let hi = _mm256_set1_ps(clamp.max);
    let mut c0 = 0;
    while c0 < oc {
        let n = oc - c0;
        let mask = first_lanes(n);
        // Rows: Aᵀ·M, for each of the 4 columns.
        let mut s = [_mm256_setzero_ps(); 8];
        for j in 0..4 {
            let at = |i: usize| m.add((4 * i + j) * pos_stride + c0);
            let m0 = load(at(0), n, mask);
            let m1 = load(at(1), n, mask);
            let m2 = load(at(2), n, mask);
            let m3 = load(at(3), n, mask);
            s[j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
            s[4 + j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
        }
        let b = load(bias.add(c0), n, mask);
        for i in 0..2 {
            let r = &s[4 * i..4 * i + 4];
            let y0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r[0], r[1]), r[2]), b);
            let y1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(r[1], r[2]), r[3]), b);
            for (j, yv) in [y0, y1].into_iter().enumerate() {
                let dst = y[2 * i + j];
                if dst.is_null() {
                    continue;
                }
                // The reference's clamp (see `x86::gemm`).
                let v = _mm256_min_ps(hi, _mm256_max_ps(lo, yv));
                if n >= 8 {
                    _mm256_storeu_ps(dst.add(c0), v);
                } else {
                    store_first(dst.add(c0), v, n);
                }
            }
        }
        c0 += 8;
    }
}

/// 8 floats at `p`, or only the first `n < 8` (masked load, the rest zero).
///
/// # Safety
/// Only called from AVX2 functions; `p` readable for `min(n, 8)` floats.
#[inline(always)]
unsafe fn load(p: *const f32, n: usize, mask: __m256i) -> __m256 {
    if n >= 8 {
        _mm256_loadu_ps(p)
    } else {
        _mm256_maskload_ps(p, mask)
    }
}
