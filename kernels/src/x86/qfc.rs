//! AVX2 int16 dot products for int8 FULLY_CONNECTED (see
//! [`crate::quant::fc_packed`]): the input was widened to int16 with its zero point
//! subtracted, the weights are int8 (widened as they are loaded) or int16 with theirs, both
//! padded with zeros to a multiple of 16; `vpmaddwd` sums pairs of products
//! into int32 lanes (no overflow for operands of at most 383 in magnitude), and the int32
//! sums wrap exactly as the scalar kernel's do.

use std::arch::x86_64::*;

use super::qdepthwise::Src;

/// Horizontal wrapping sum of 8 int32 lanes.
#[inline(always)]
unsafe fn hsum(v: __m256i) -> i32 {
    // SAFETY: register-only AVX2 intrinsics (caller has AVX2).
    unsafe {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }
}

/// `acc[u] = Σ_k x[k]·w[u·dp + k]` for every unit `u < acc.len()`, four units per pass so
/// each input vector is loaded once for four weight rows.
///
/// # Safety
/// AVX2 must be available; `dp` a multiple of 16, `x.len() >= dp`,
/// `w.len() >= acc.len()·dp`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dots<T: Src>(x: &[i16], w: &[T], dp: usize, acc: &mut [i32]) {
    let units = acc.len();
    let xp = x.as_ptr();
    let mut u = 0;
    // SAFETY: every load reads 16 values at offset k < dp of `x` or of a weight row
    // `u' < units`, inside the slices by the caller's contract.
    unsafe {
        while u + 4 <= units {
            let w0 = w.as_ptr().add(u * dp);
            let mut a = [_mm256_setzero_si256(); 4];
            for k in (0..dp).step_by(16) {
                let xv = _mm256_loadu_si256(xp.add(k) as *const __m256i);
                for (r, a) in a.iter_mut().enumerate() {
                    let wv = T::load16(w0.add(r * dp + k));
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(xv, wv));
                }
            }
            for r in 0..4 {
                acc[u + r] = hsum(a[r]);
            }
            u += 4;
        }
        while u < units {
            let w0 = w.as_ptr().add(u * dp);
            let mut a = _mm256_setzero_si256();
            for k in (0..dp).step_by(16) {
                let xv = _mm256_loadu_si256(xp.add(k) as *const __m256i);
                let wv = T::load16(w0.add(k));
                a = _mm256_add_epi32(a, _mm256_madd_epi16(xv, wv));
            }
            acc[u] = hsum(a);
            u += 1;
        }
    }
}
