//! AVX2 pieces of the hybrid quantizers ([`crate::quant::hybrid`]), lane for lane the same
//! arithmetic as the scalar code: the same comparisons for the range, the same f32
//! product, `± 0.5` and truncating conversion for the rounding.

use std::arch::x86_64::*;

/// `(min, max)` of `values`, starting from `(min0, max0)`, by the scalar rule `v < min`,
/// `max < v` (a NaN value is skipped, a NaN start stays). Which of two equal zeros is kept
/// may differ from a scalar pass; the quantizers only read the range's magnitude then.
///
/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn min_max(values: &[f32], min0: f32, max0: f32) -> (f32, f32) {
    let mut vmin = _mm256_set1_ps(min0);
    let mut vmax = _mm256_set1_ps(max0);
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        // SAFETY: `c` holds 8 floats.
        let v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
        // `minps a, b` is `a < b ? a : b`: with the value first, a NaN value keeps the
        // running minimum, as `if v < min { min = v }` does.
        vmin = _mm256_min_ps(v, vmin);
        vmax = _mm256_max_ps(v, vmax);
    }
    let (mut lo, mut hi) = ([0.0_f32; 8], [0.0_f32; 8]);
    // SAFETY: each array holds 8 floats.
    unsafe {
        _mm256_storeu_ps(lo.as_mut_ptr(), vmin);
        _mm256_storeu_ps(hi.as_mut_ptr(), vmax);
    }
    let (mut min, mut max) = (min0, max0);
    for &v in lo.iter().chain(tail) {
        if v < min {
            min = v;
        }
    }
    for &v in hi.iter().chain(tail) {
        if max < v {
            max = v;
        }
    }
    (min, max)
}

/// The quantizers' vector loop over whole blocks of 8: `q = clamp(trunc(x·inv ± 0.5) + zp,
/// lo, hi)`, the sign of the half from `x·inv < 0`, the conversion x86's (NaN and
/// out-of-range products become `i32::MIN` before the offset and clamp).
///
/// # Safety
/// AVX2 must be available; `out` at least as long as `values`, whose length is a multiple
/// of 8.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn round_blocks(
    values: &[f32],
    inv: f32,
    zp: i32,
    lo: i32,
    hi: i32,
    out: &mut [i8],
) {
    let inv = _mm256_set1_ps(inv);
    let zp = _mm256_set1_epi32(zp);
    let (lo, hi) = (_mm256_set1_epi32(lo), _mm256_set1_epi32(hi));
    let (plus, minus) = (_mm256_set1_ps(0.5), _mm256_set1_ps(-0.5));
    let zero = _mm256_setzero_ps();
    for (c, o) in values.chunks_exact(8).zip(out.chunks_exact_mut(8)) {
        // SAFETY: `c` holds 8 floats and `o` 8 bytes.
        unsafe {
            let p = _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), inv);
            let half = _mm256_blendv_ps(plus, minus, _mm256_cmp_ps::<_CMP_LT_OQ>(p, zero));
            let q = _mm256_add_epi32(_mm256_cvttps_epi32(_mm256_add_ps(p, half)), zp);
            let q = _mm256_min_epi32(_mm256_max_epi32(q, lo), hi);
            // In i8 range: the saturating packs are exact.
            let w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q));
            let b = _mm_packs_epi16(w, w);
            _mm_storel_epi64(o.as_mut_ptr() as *mut __m128i, b);
        }
    }
}

/// `Σ a[i]·b[i]` over the common length, wrapping in `i32` like the scalar loop (each
/// `vpmaddwd` pair sum of int8 products is exact).
///
/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: 16 bytes at `i` lie inside both slices.
        unsafe {
            let x = _mm256_cvtepi8_epi16(_mm_loadu_si128(a.as_ptr().add(i) as *const __m128i));
            let y = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.as_ptr().add(i) as *const __m128i));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
        }
        i += 16;
    }
    let mut lanes = [0_i32; 8];
    // SAFETY: `lanes` holds 8 values.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc) };
    let mut sum = lanes.iter().fold(0_i32, |s, &v| s.wrapping_add(v));
    for k in i..n {
        sum = sum.wrapping_add(i32::from(a[k]) * i32::from(b[k]));
    }
    sum
}

/// `sums[u] = Σ_k x[k]·w[u·depth + k]` (wrapping) for every `u < sums.len()`: four weight
/// rows per pass share each load of `x` and one horizontal reduction, which is what a short
/// row (a transformer's 32 or 64 values) spends most of its time on when each dot product
/// is a call of [`dot_i8`].
///
/// # Safety
/// AVX2 must be available; `x.len() >= depth`, `w.len() >= sums.len()·depth`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dots_i8(x: &[i8], w: &[i8], depth: usize, sums: &mut [i32]) {
    let units = sums.len();
    let body = depth / 16 * 16;
    let mut u = 0;
    while u + 4 <= units {
        // (Written out: `array::from_fn` with a closure stayed an out-of-line call here.)
        let row = |r: usize| &w[(u + r) * depth..(u + r + 1) * depth];
        let rows: [&[i8]; 4] = [row(0), row(1), row(2), row(3)];
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut i = 0;
        while i < body {
            // SAFETY: 16 bytes at `i < body <= depth` lie inside `x` and each row.
            unsafe {
                let xv = _mm256_cvtepi8_epi16(_mm_loadu_si128(x.as_ptr().add(i) as *const __m128i));
                for (a, row) in acc.iter_mut().zip(&rows) {
                    let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(
                        row.as_ptr().add(i) as *const __m128i
                    ));
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(xv, wv));
                }
            }
            i += 16;
        }
        // Lanes of the four accumulators summed pairwise, then the two halves: one vector of
        // the four totals (wrapping adds, so the grouping does not matter).
        let s = _mm256_hadd_epi32(
            _mm256_hadd_epi32(acc[0], acc[1]),
            _mm256_hadd_epi32(acc[2], acc[3]),
        );
        let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
        let mut four = [0_i32; 4];
        // SAFETY: `four` holds 4 values.
        unsafe { _mm_storeu_si128(four.as_mut_ptr() as *mut __m128i, s) };
        for ((sum, t), row) in sums[u..u + 4].iter_mut().zip(four).zip(&rows) {
            *sum = (body..depth).fold(t, |s, k| {
                s.wrapping_add(i32::from(x[k]) * i32::from(row[k]))
            });
        }
        u += 4;
    }
    for (v, sum) in sums.iter_mut().enumerate().skip(u) {
        // SAFETY: AVX2 (caller).
        *sum = unsafe { dot_i8(&x[..depth], &w[v * depth..(v + 1) * depth]) };
    }
}
