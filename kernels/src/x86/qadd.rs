//! AVX2 int8 ADD of two same-shape tensors, bit-identical to
//! [`AddQuant::apply`](crate::quant::add::AddQuant::apply): the three double-rounding
//! multiplies run as [`Requant8`] with a zero left shift, 16 elements per step.

use std::arch::x86_64::*;

use super::qconv::store_i8;
use super::qrequant::{pack16_i8, Requant8};
use crate::quant::add::AddQuant;
use crate::quant::params::QuantElem;

/// `out[i] = q.apply(a[i], b[i])` for every `i < out.len()`.
///
/// # Safety
/// AVX2 must be available; `a`, `b` at least as long as `out`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn add_i8(q: &AddQuant, a: &[i8], b: &[i8], out: &mut [i8]) {
    let n = out.len();
    let (a, b) = (&a[..n], &b[..n]);
    // The scalar code multiplies by `1.wrapping_shl(left_shift)`, i.e. shifts by it mod 32.
    let left = _mm_cvtsi32_si128((q.left_shift as u32 & 31) as i32);
    let lt1 = |m: i32, s: i32| Requant8::splat(m, 0, s.saturating_neg().clamp(0, 31));
    let (rq1, rq2, rqo) = (
        lt1(q.input1_multiplier, q.input1_shift),
        lt1(q.input2_multiplier, q.input2_shift),
        lt1(q.output_multiplier, q.output_shift),
    );
    let off1 = _mm256_set1_epi32(q.input1_offset);
    let off2 = _mm256_set1_epi32(q.input2_offset);
    let out_off = _mm256_set1_epi32(q.output_offset);
    let lo = _mm256_set1_epi32(q.act_min);
    let hi = _mm256_set1_epi32(q.act_max);
    let eight = |x: __m128i, y: __m128i| -> __m256i {
        // SAFETY: register-only AVX2 intrinsics (this function has AVX2).
        unsafe {
            let x = _mm256_sll_epi32(_mm256_add_epi32(_mm256_cvtepi8_epi32(x), off1), left);
            let y = _mm256_sll_epi32(_mm256_add_epi32(_mm256_cvtepi8_epi32(y), off2), left);
            let s = _mm256_add_epi32(rq1.apply(x), rq2.apply(y));
            let v = _mm256_add_epi32(rqo.apply(s), out_off);
            _mm256_min_epi32(_mm256_max_epi32(v, lo), hi)
        }
    };
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: 16 bytes at `i` lie inside `a`, `b` and `out`.
        unsafe {
            let x = _mm_loadu_si128(a.as_ptr().add(i) as *const __m128i);
            let y = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
            let v0 = eight(x, y);
            let v1 = eight(_mm_srli_si128::<8>(x), _mm_srli_si128::<8>(y));
            store_i8(out.as_mut_ptr().add(i), pack16_i8(v0, v1), 16);
        }
        i += 16;
    }
    for j in i..n {
        out[j] = i8::from_i32(q.apply(i32::from(a[j]), i32::from(b[j])));
    }
}
