//! AVX2 int8 MUL, bit-identical to [`MulQuant::apply`]: 16 elements per step, each
//! `(x1 + o1)·(x2 + o2)` an exact 32-bit product (|p| ≤ 256²) requantized by [`Requant8`]
//! (the convolutions' `MultiplyByQuantizedMultiplier`), plus the output offset and clamp.

use std::arch::x86_64::*;

use super::qconv::store_i8;
use super::qrequant::{finish, pack16_i8, Requant8};
use crate::quant::channel_consts::shift_amounts;
use crate::quant::mul::MulQuant;

/// Whether the vector path takes `q`: a multiplier the vector requantization handles
/// (`QuantizeMultiplier` gives 0 or one in `[2^30, 2^31)`).
pub(crate) fn suits(q: &MulQuant) -> bool {
    q.output_multiplier != i32::MIN
}

/// `out[k] = q(a[k·step_a], b[k·step_b])` for `k < out.len()` (a step of 0 repeats the
/// first element).
///
/// # Safety
/// AVX2 must be available; [`suits`]`(q)`; `a` and `b` hold the elements read
/// (`out.len()` with step 1, at least one with step 0).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn mul_i8(
    q: &MulQuant,
    a: &[i8],
    step_a: usize,
    b: &[i8],
    step_b: usize,
    out: &mut [i8],
) {
    // One loop per pattern of steps, so that the loop body has no branch on them.
    // SAFETY: forwarded contract.
    unsafe {
        match (step_a, step_b) {
            (0, 0) => run::<false, false>(q, a, b, out),
            (0, _) => run::<false, true>(q, a, b, out),
            (_, 0) => run::<true, false>(q, a, b, out),
            _ => run::<true, true>(q, a, b, out),
        }
    }
}

/// 16 int8 values from `at` (`n` of them real) widened to two vectors of 8 int32 with
/// `off` added: from `p` when `STEP`, else `p[0]` in every lane.
///
/// # Safety
/// AVX2 must be available; with `STEP`, `p` holds `at + n` values.
#[inline(always)]
unsafe fn load<const STEP: bool>(p: &[i8], at: usize, n: usize, off: __m256i) -> [__m256i; 2] {
    // SAFETY: the 16 bytes read lie inside `p` (n ≥ 16) or in `tmp`.
    unsafe {
        let x = if !STEP {
            _mm_set1_epi8(p[0])
        } else if n >= 16 {
            _mm_loadu_si128(p.as_ptr().add(at) as *const __m128i)
        } else {
            let mut tmp = [0_i8; 16];
            tmp[..n].copy_from_slice(&p[at..at + n]);
            _mm_loadu_si128(tmp.as_ptr() as *const __m128i)
        };
        [
            _mm256_add_epi32(_mm256_cvtepi8_epi32(x), off),
            _mm256_add_epi32(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(x)), off),
        ]
    }
}

/// [`mul_i8`] for one pattern of steps (`SA`, `SB`: step 1).
///
/// # Safety
/// As for [`mul_i8`].
#[inline(always)]
unsafe fn run<const SA: bool, const SB: bool>(q: &MulQuant, a: &[i8], b: &[i8], out: &mut [i8]) {
    let n = out.len();
    let (left, right) = shift_amounts(q.output_shift);
    // SAFETY: register-only AVX2 intrinsics; `suits(q)`: the multiplier is not `i32::MIN`.
    unsafe {
        let rq = Requant8::splat(q.output_multiplier, left, right);
        let (oa, ob) = (
            _mm256_set1_epi32(q.input1_offset),
            _mm256_set1_epi32(q.input2_offset),
        );
        let out_offset = _mm256_set1_epi32(q.output_offset);
        let (lo, hi) = (_mm256_set1_epi32(q.act_min), _mm256_set1_epi32(q.act_max));
        let mut at = 0;
        while at < n {
            let m = n - at;
            let (x, y) = (load::<SA>(a, at, m, oa), load::<SB>(b, at, m, ob));
            let v0 = finish(_mm256_mullo_epi32(x[0], y[0]), &rq, out_offset, lo, hi);
            let v1 = finish(_mm256_mullo_epi32(x[1], y[1]), &rq, out_offset, lo, hi);
            // `min(16, n − at)` bytes stored at `at`.
            store_i8(out.as_mut_ptr().add(at), pack16_i8(v0, v1), m.min(16));
            at += 16;
        }
    }
}
