//! AVX2 int8 ADD of two same-shape tensors, bit-identical to
//! [`AddQuant::apply`](crate::quant::add::AddQuant::apply), 16 elements per step.
//!
//! Each input's rescale `MBQM<1((x + offset)·2^20, m, shift)` runs as [`InputRescale`]:
//! since `x + offset` has at most 9 significant bits, its product with the 31-bit multiplier
//! splits into two 32-bit products, and the rounding division's sign comes from the input,
//! which takes 11 instructions per 8 values where the general requantization takes 16. The
//! output's rescale of the 32-bit sum runs as [`Requant8`] (no left shift).

use std::arch::x86_64::*;

use super::qconv::store_i8;
use super::qrequant::{pack16_i8, Requant8};
use crate::quant::add::AddQuant;
use crate::quant::params::QuantElem;

/// Headroom shifts [`InputRescale`] takes: the 8-bit ADD's 20 (and what keeps its split
/// products in range, see [`InputRescale::new`]).
const LEFT_SHIFTS: std::ops::RangeInclusive<i32> = 15..=23;

/// The rescale of one input, `MBQM<1(k·2^L, m, shift)` for `k = x + offset`, `|k| ≤ 256`,
/// `m ≥ 0`, `L` in [`LEFT_SHIFTS`], exactly:
/// - the doubling high multiply is `floor((k·m·2^L + 2^30) / 2^31)`
///   `= floor((k·m + 2^(30−L)) / 2^(31−L))`; with `m = mh·2^16 + ml` (`mh < 2^15`,
///   `ml < 2^16`) and `31 − L ≤ 16` that is `(k·mh)·2^(L−15) + floor((k·ml + 2^(30−L)) /
///   2^(31−L))`, both products and the sum within `i32` (`|k·mh|·2^(L−15) ≤ 2^(L+8)`,
///   `|k·ml| < 2^24`);
/// - the rounding division by `2^e` (ties away from zero) of that `x` is
///   `(x + 2^(e−1) − [x < 0]) >> e` for `e ≥ 1` (and `x` for `e = 0`); `x < 0` only where
///   `k < 0`, and where `k < 0` but `x = 0` both forms give 0, so the sign is taken from `k`.
#[derive(Clone, Copy)]
struct InputRescale {
    offset: __m256i,
    mh: __m256i,
    ml: __m256i,
    /// `2^(30−L)`.
    round: __m256i,
    /// `L − 15`, `31 − L` and `e` as shift counts.
    up: __m128i,
    down: __m128i,
    e: __m128i,
    /// `2^(e−1)` (0 for `e = 0`).
    nudge: __m256i,
    /// All ones where `e ≥ 1` (the sign correction applies), else 0.
    signed: __m256i,
}

impl InputRescale {
    /// # Safety
    /// AVX2 must be available; `left_shift` in [`LEFT_SHIFTS`], `multiplier ≥ 0`,
    /// `|offset| ≤ 128`.
    #[inline(always)]
    unsafe fn new(offset: i32, multiplier: i32, shift: i32, left_shift: i32) -> Self {
        debug_assert!(LEFT_SHIFTS.contains(&left_shift) && multiplier >= 0);
        let e = shift.saturating_neg().clamp(0, 31);
        // SAFETY: register-only AVX2 intrinsics.
        unsafe {
            InputRescale {
                offset: _mm256_set1_epi32(offset),
                mh: _mm256_set1_epi32(multiplier >> 16),
                ml: _mm256_set1_epi32(multiplier & 0xffff),
                round: _mm256_set1_epi32(1 << (30 - left_shift)),
                up: _mm_cvtsi32_si128(left_shift - 15),
                down: _mm_cvtsi32_si128(31 - left_shift),
                e: _mm_cvtsi32_si128(e),
                nudge: _mm256_set1_epi32((1 << e) >> 1),
                signed: _mm256_set1_epi32(if e > 0 { -1 } else { 0 }),
            }
        }
    }

    /// The rescaled values of 8 int8 inputs (the low 8 bytes of `x`).
    ///
    /// # Safety
    /// AVX2 must be available (inlined into `#[target_feature]` callers).
    #[inline(always)]
    unsafe fn apply(&self, x: __m128i) -> __m256i {
        // SAFETY: register-only AVX2 intrinsics.
        unsafe {
            let k = _mm256_add_epi32(_mm256_cvtepi8_epi32(x), self.offset);
            let high = _mm256_sll_epi32(_mm256_mullo_epi32(k, self.mh), self.up);
            let low = _mm256_add_epi32(_mm256_mullo_epi32(k, self.ml), self.round);
            let x = _mm256_add_epi32(high, _mm256_sra_epi32(low, self.down));
            let minus = _mm256_and_si256(_mm256_srai_epi32::<31>(k), self.signed);
            let x = _mm256_add_epi32(_mm256_add_epi32(x, self.nudge), minus);
            _mm256_sra_epi32(x, self.e)
        }
    }
}

/// Whether [`add_i8`] runs `q`: the 8-bit ADD's headroom, non-negative input multipliers
/// (as every valid scale gives), input offsets of int8 zero points, an output multiplier
/// the vector requantization takes.
pub(crate) fn suits(q: &AddQuant) -> bool {
    LEFT_SHIFTS.contains(&q.left_shift)
        && q.input1_multiplier >= 0
        && q.input2_multiplier >= 0
        && q.input1_offset.unsigned_abs() <= 128
        && q.input2_offset.unsigned_abs() <= 128
        && crate::quant::fixedpoint::multipliers_fit(&[q.output_multiplier])
}

/// `out[i] = q.apply(a[i], b[i])` for every `i < out.len()`.
///
/// # Safety
/// AVX2 must be available; `a`, `b` at least as long as `out`; [`suits`]`(q)`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn add_i8(q: &AddQuant, a: &[i8], b: &[i8], out: &mut [i8]) {
    let n = out.len();
    let (a, b) = (&a[..n], &b[..n]);
    // SAFETY: AVX2 (this function); the ranges are the caller's `suits`.
    let (in1, in2) = unsafe {
        (
            InputRescale::new(
                q.input1_offset,
                q.input1_multiplier,
                q.input1_shift,
                q.left_shift,
            ),
            InputRescale::new(
                q.input2_offset,
                q.input2_multiplier,
                q.input2_shift,
                q.left_shift,
            ),
        )
    };
    // SAFETY: AVX2 (this function); `suits` checked the output multiplier.
    let rqo = unsafe {
        Requant8::splat(
            q.output_multiplier,
            0,
            q.output_shift.saturating_neg().clamp(0, 31),
        )
    };
    let out_off = _mm256_set1_epi32(q.output_offset);
    let lo = _mm256_set1_epi32(q.act_min);
    let hi = _mm256_set1_epi32(q.act_max);
    let eight = |x: __m128i, y: __m128i| -> __m256i {
        // SAFETY: register-only AVX2 intrinsics (this function has AVX2).
        unsafe {
            let s = _mm256_add_epi32(in1.apply(x), in2.apply(y));
            let v = _mm256_add_epi32(rqo.apply_lt1(s), out_off);
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
