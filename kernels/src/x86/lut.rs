//! AVX2 lookup in a 256-byte table, 32 bytes at a time: the table is held as 16 vectors of
//! 16 entries (one per high nibble, in both 128-bit halves); `vpshufb` looks every byte's
//! low nibble up in each, and a comparison of the high nibble picks the right one.

use std::arch::x86_64::*;

/// `output[i] = table[input[i]]` over the common length.
///
/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn apply(table: &[u8; 256], input: &[u8], output: &mut [u8]) {
    let n = input.len().min(output.len());
    let mut rows = [_mm256_setzero_si256(); 16];
    for (h, r) in rows.iter_mut().enumerate() {
        // SAFETY: 16 bytes at `16·h` lie inside the table.
        *r = unsafe {
            _mm256_broadcastsi128_si256(_mm_loadu_si128(
                table.as_ptr().add(16 * h) as *const __m128i
            ))
        };
    }
    let nibble = _mm256_set1_epi8(0x0F);
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: 32 bytes at `i` lie inside both slices.
        unsafe {
            let x = _mm256_loadu_si256(input.as_ptr().add(i) as *const __m256i);
            let lo = _mm256_and_si256(x, nibble);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(x), nibble);
            let mut out = _mm256_setzero_si256();
            for (h, r) in rows.iter().enumerate() {
                let pick = _mm256_cmpeq_epi8(hi, _mm256_set1_epi8(h as i8));
                out = _mm256_blendv_epi8(out, _mm256_shuffle_epi8(*r, lo), pick);
            }
            _mm256_storeu_si256(output.as_mut_ptr().add(i) as *mut __m256i, out);
        }
        i += 32;
    }
    for k in i..n {
        output[k] = table[usize::from(input[k])];
    }
}
