//! x86-64 kernels of the [`Isa::Avx2`](crate::isa::Isa::Avx2) tier: AVX2 + FMA intrinsics in
//! `#[target_feature]` functions, reached only through tiers checked at run time.

pub(crate) mod conv_planar;
pub(crate) mod depthwise;
pub(crate) mod gemm;
pub(crate) mod hquant;
pub(crate) mod lut;
pub(crate) mod qadd;
pub(crate) mod qconv;
pub(crate) mod qdepthwise;
pub(crate) mod qfc;
pub(crate) mod qmul;
pub(crate) mod qrequant;
pub(crate) mod qwinograd;
pub(crate) mod winograd;

use std::arch::x86_64::*;

/// Lane masks for partial vectors: 8 set lanes then 8 clear ones; see [`first_lanes`].
const MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

/// A mask selecting the first `n` (0..=8) of 8 lanes, for `_mm256_mask{load,store}_ps`, which
/// touch only the selected lanes' memory.
///
/// # Safety
/// AVX must be available (only called from AVX2 functions, where it is inlined).
#[inline(always)]
pub(crate) unsafe fn first_lanes(n: usize) -> __m256i {
    let n = n.min(8);
    // SAFETY: 8 - n <= 8, so the 8 lanes read lie inside MASKS.
    unsafe { _mm256_loadu_si256(MASKS.as_ptr().add(8 - n) as *const __m256i) }
}

/// Stores the first `n` (0..=8) lanes of `v` at `p` with plain stores of 4, 2 and 1 floats.
/// (`_mm256_maskstore_ps` would do it in one instruction, but it is microcoded and slow on
/// AMD processors, and partial tiles are common with odd channel counts.)
///
/// # Safety
/// AVX must be available (only called from AVX2 functions, where it is inlined); `p` must be
/// writable for `n` floats.
#[inline(always)]
pub(crate) unsafe fn store_first(p: *mut f32, v: __m256, n: usize) {
    // SAFETY: every store below writes floats `p[i]` with `i < n` (caller's contract).
    unsafe {
        if n >= 8 {
            _mm256_storeu_ps(p, v);
            return;
        }
        let (mut p, mut n) = (p, n);
        let mut x = _mm256_castps256_ps128(v);
        if n >= 4 {
            _mm_storeu_ps(p, x);
            x = _mm256_extractf128_ps::<1>(v);
            p = p.add(4);
            n -= 4;
        }
        if n >= 2 {
            _mm_store_sd(p as *mut f64, _mm_castps_pd(x));
            x = _mm_movehl_ps(x, x);
            p = p.add(2);
            n -= 2;
        }
        if n >= 1 {
            _mm_store_ss(p, x);
        }
    }
}
