//! AVX2 requantization, bit-identical to the scalar
//! [`multiply_by_quantized_multiplier`](crate::quant::fixedpoint::multiply_by_quantized_multiplier)
//! (TFLite's double rounding) on 8 lanes with per-lane multipliers and shifts.
//!
//! The doubling high multiply needs the full 64-bit product, which AVX2 only gives for the
//! even 32-bit lanes (`vpmuldq`); the odd lanes are shifted down, multiplied the same way and
//! blended back. Its rounding ("nudge" then truncating division by 2^31) equals
//! `floor((a·b + 2^30) / 2^31)` for both signs of the product, so a plain 64-bit shift of
//! `a·b + 2^30` gives the quotient's low 32 bits, which are the whole result except when
//! `a = b = i32::MIN` (the one case the scalar code saturates). That case needs a multiplier
//! of `i32::MIN`, which [`multipliers_fit`] rules out when a layer is prepared (real
//! multipliers lie in `[2^30, 2^31)`; only a negative scale could produce it), so the
//! vector code has no saturation step.

use std::arch::x86_64::*;

use crate::quant::channel_consts::Requant;

#[cfg(doc)]
use crate::quant::fixedpoint::multipliers_fit;

/// Per-lane requantization constants for 8 channels, derived once from `(multiplier,
/// shift)` pairs so the run-time code needs no clamping of shift amounts.
#[derive(Clone, Copy)]
pub(crate) struct Requant8 {
    pub mult: __m256i,
    /// The odd lanes' multipliers copied to the even lanes (`vpmuldq` reads those).
    pub mult_odd: __m256i,
    /// Left shift, `max(shift, 0) mod 32` (the scalar code's wrapping `x·2^left`).
    pub left: __m256i,
    /// Right shift of the rounding division, `clamp(−shift, 0, 31)`.
    pub right: __m256i,
    /// `2^right − 1`.
    pub mask: __m256i,
    /// `mask / 2`, the rounding threshold of a non-negative value.
    pub half: __m256i,
}

impl Requant8 {
    /// The constants and the bias of lanes `c .. c + 8` of `rq`.
    ///
    /// # Safety
    /// AVX2 must be available; each per-lane array of `rq` holds at least `c + 8` values; no
    /// multiplier is `i32::MIN` ([`multipliers_fit`]).
    #[inline(always)]
    pub(crate) unsafe fn at(rq: &Requant<'_>, c: usize) -> (Self, __m256i) {
        // SAFETY: the caller guarantees 8 lanes at `c` in each array.
        unsafe {
            (
                Self::load(
                    rq.mult.as_ptr().add(c),
                    rq.left.as_ptr().add(c),
                    rq.right.as_ptr().add(c),
                ),
                _mm256_loadu_si256(rq.bias.as_ptr().add(c) as *const __m256i),
            )
        }
    }

    /// The constants and the biases of the 16 lanes `c .. c + 16` of `rq`, as two halves.
    /// (The constants are loaded before the biases: loading them pair by pair made the
    /// depthwise kernel's register allocation worse, ×1.08 on a 112×112×32 layer.)
    ///
    /// # Safety
    /// As for [`at`](Self::at), with 16 lanes.
    #[inline(always)]
    pub(crate) unsafe fn block16(rq: &Requant<'_>, c: usize) -> ([Self; 2], [__m256i; 2]) {
        // SAFETY: the caller guarantees 16 lanes at `c` in each array.
        unsafe {
            let (m, l, r) = (
                rq.mult.as_ptr().add(c),
                rq.left.as_ptr().add(c),
                rq.right.as_ptr().add(c),
            );
            let b = rq.bias.as_ptr().add(c);
            (
                [
                    Self::load(m, l, r),
                    Self::load(m.add(8), l.add(8), r.add(8)),
                ],
                [
                    _mm256_loadu_si256(b as *const __m256i),
                    _mm256_loadu_si256(b.add(8) as *const __m256i),
                ],
            )
        }
    }

    /// Loads the constants of 8 channels from per-channel arrays (`mult`, `left`, `right`
    /// as produced by
    /// [`shift_amounts`](crate::quant::channel_consts::shift_amounts)).
    ///
    /// # Safety
    /// AVX2 must be available; each pointer readable for 8 `i32`; no multiplier is
    /// `i32::MIN` ([`multipliers_fit`]).
    #[inline(always)]
    unsafe fn load(mult: *const i32, left: *const i32, right: *const i32) -> Self {
        // SAFETY: the caller guarantees 8 readable lanes behind each pointer.
        unsafe {
            Self::new(
                _mm256_loadu_si256(mult as *const __m256i),
                _mm256_loadu_si256(left as *const __m256i),
                _mm256_loadu_si256(right as *const __m256i),
            )
        }
    }

    /// The same constants in all 8 lanes; `left` and `right` already reduced (left in
    /// 0..32, right in 0..=31).
    ///
    /// # Safety
    /// AVX2 must be available; `mult != i32::MIN`.
    #[inline(always)]
    pub(crate) unsafe fn splat(mult: i32, left: i32, right: i32) -> Self {
        // SAFETY: register-only AVX2 intrinsics.
        unsafe {
            Self::new(
                _mm256_set1_epi32(mult),
                _mm256_set1_epi32(left),
                _mm256_set1_epi32(right),
            )
        }
    }

    #[inline(always)]
    unsafe fn new(mult: __m256i, left: __m256i, right: __m256i) -> Self {
        // SAFETY: register-only AVX2 intrinsics.
        unsafe {
            let one = _mm256_set1_epi32(1);
            let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
            Requant8 {
                mult,
                mult_odd: _mm256_shuffle_epi32::<0b11_11_01_01>(mult),
                left,
                right,
                mask,
                half: _mm256_srai_epi32::<1>(mask),
            }
        }
    }

    /// The same for constants whose left shift is 0 in every lane (`splat(m, 0, right)`):
    /// the `MultiplyByQuantizedMultiplierSmallerThanOneExp` of the ADD kernels, one
    /// instruction shorter.
    ///
    /// # Safety
    /// AVX2 must be available (inlined into `#[target_feature]` callers).
    #[inline(always)]
    pub(crate) unsafe fn apply_lt1(&self, x: __m256i) -> __m256i {
        // SAFETY: register-only AVX2 intrinsics; availability is the caller's contract.
        unsafe {
            let high = srdhm(x, self.mult, self.mult_odd);
            rounding_divide(high, self.right, self.mask, self.half)
        }
    }

    /// `multiply_by_quantized_multiplier(x, mult, shift)` in every lane.
    ///
    /// # Safety
    /// AVX2 must be available (inlined into `#[target_feature]` callers).
    #[inline(always)]
    pub(crate) unsafe fn apply(&self, x: __m256i) -> __m256i {
        // SAFETY: register-only AVX2 intrinsics; availability is the caller's contract.
        unsafe {
            let a = _mm256_sllv_epi32(x, self.left);
            let high = srdhm(a, self.mult, self.mult_odd);
            rounding_divide(high, self.right, self.mask, self.half)
        }
    }
}

/// SaturatingRoundingDoublingHighMul on 8 lanes, for multipliers other than `i32::MIN`
/// (`b_odd` is `b` with its odd lanes moved down).
#[inline(always)]
unsafe fn srdhm(a: __m256i, b: __m256i, b_odd: __m256i) -> __m256i {
    // SAFETY: register-only AVX2 intrinsics.
    unsafe {
        let nudge = _mm256_set1_epi64x(1 << 30);
        let even = _mm256_add_epi64(_mm256_mul_epi32(a, b), nudge);
        // Bits 31..62 of the even products land in the low halves.
        let even = _mm256_srli_epi64::<31>(even);
        // Odd lanes copied down by a shuffle rather than a 64-bit shift: after a shift LLVM
        // knows the high halves are zero and rewrites `vpmuldq` as several `vpmuludq`.
        let odd = _mm256_mul_epi32(_mm256_shuffle_epi32::<0b11_11_01_01>(a), b_odd);
        let odd = _mm256_add_epi64(odd, nudge);
        // Bits 31..62 of the odd products land in the high halves.
        let odd = _mm256_slli_epi64::<1>(odd);
        _mm256_blend_epi32::<0b1010_1010>(even, odd)
    }
}

/// RoundingDivideByPOT on 8 lanes: `x >> e`, plus one when the remainder exceeds half
/// (ties away from zero). `mask = 2^e − 1`, `half = mask / 2`.
#[inline(always)]
unsafe fn rounding_divide(x: __m256i, e: __m256i, mask: __m256i, half: __m256i) -> __m256i {
    // SAFETY: register-only AVX2 intrinsics.
    unsafe {
        let remainder = _mm256_and_si256(x, mask);
        let negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), x);
        // threshold = mask/2 + (x < 0); `negative` is −1 where x < 0.
        let threshold = _mm256_sub_epi32(half, negative);
        let up = _mm256_cmpgt_epi32(remainder, threshold);
        _mm256_sub_epi32(_mm256_srav_epi32(x, e), up)
    }
}

/// Requantizes 8 accumulators: `clamp(mbqm(acc) + out_offset, lo, hi)`.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
pub(crate) unsafe fn finish(
    acc: __m256i,
    rq: &Requant8,
    out_offset: __m256i,
    lo: __m256i,
    hi: __m256i,
) -> __m256i {
    // SAFETY: register-only AVX2 intrinsics.
    unsafe {
        let v = _mm256_add_epi32(rq.apply(acc), out_offset);
        _mm256_min_epi32(_mm256_max_epi32(v, lo), hi)
    }
}

/// Packs 16 clamped `i32` (channels 0–7 in `a`, 8–15 in `b`, all within `i8` range) into 16
/// bytes in channel order.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
pub(crate) unsafe fn pack16_i8(a: __m256i, b: __m256i) -> __m128i {
    // SAFETY: register-only AVX2 intrinsics.
    unsafe {
        // Per 128-bit lane: [a0..3, b0..3 | a4..7, b4..7] as i16.
        let w = _mm256_packs_epi32(a, b);
        // Reorder the 64-bit quarters to a0..3, a4..7, b0..3, b4..7.
        let w = _mm256_permute4x64_epi64::<0b11_01_10_00>(w);
        _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256::<1>(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Isa;
    use crate::quant::channel_consts::shift_amounts;
    use crate::quant::conv::tests::Lcg;
    use crate::quant::fixedpoint::multipliers_fit;
    use crate::quant::fixedpoint::multiply_by_quantized_multiplier as mbqm;

    #[target_feature(enable = "avx2")]
    unsafe fn apply8(x: &[i32; 8], m: &[i32; 8], s: &[i32; 8]) -> [i32; 8] {
        let mut left = [0; 8];
        let mut right = [0; 8];
        for i in 0..8 {
            (left[i], right[i]) = shift_amounts(s[i]);
        }
        let mut out = [0_i32; 8];
        // SAFETY: AVX2 is enabled on this function; every array holds 8 lanes.
        unsafe {
            let rq = Requant8::load(m.as_ptr(), left.as_ptr(), right.as_ptr());
            let v = rq.apply(_mm256_loadu_si256(x.as_ptr() as *const __m256i));
            _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, v);
        }
        out
    }

    #[test]
    fn vector_mbqm_equals_scalar() {
        if !Isa::Avx2.is_available() {
            return;
        }
        let mut r = Lcg(99);
        let special = [
            i32::MIN,
            i32::MIN + 1,
            i32::MAX,
            i32::MAX - 1,
            0,
            1,
            -1,
            1 << 30,
            -(1 << 30),
            (1 << 30) + 1,
            12345,
            -12345,
        ];
        let pick = |r: &mut Lcg, special: &[i32]| -> i32 {
            match r.range(0, 3) {
                0 => special[r.range(0, special.len() as i64 - 1) as usize],
                1 => r.range(-70000, 70000) as i32,
                _ => (r.next() as u32 ^ ((r.next() as u32) << 16)) as i32,
            }
        };
        let mut checked = 0_u64;
        for shift in -40..=40 {
            for _ in 0..3000 {
                let mut x = [0; 8];
                let mut m = [0; 8];
                let mut s = [0; 8];
                for i in 0..8 {
                    x[i] = pick(&mut r, &special);
                    m[i] = match r.range(0, 2) {
                        0 => pick(&mut r, &special).max(i32::MIN + 1),
                        // Realistic multipliers lie in [2^30, 2^31).
                        _ => (1 << 30) + r.range(0, (1 << 30) - 1) as i32,
                    };
                    // Mostly the loop's shift, some lanes a random one.
                    s[i] = if r.range(0, 3) == 0 {
                        r.range(-40, 40) as i32
                    } else {
                        shift
                    };
                }
                // SAFETY: AVX2 was detected above.
                let got = unsafe { apply8(&x, &m, &s) };
                for i in 0..8 {
                    assert_eq!(
                        got[i],
                        mbqm(x[i], m[i], s[i]),
                        "x={} m={} s={}",
                        x[i],
                        m[i],
                        s[i]
                    );
                    checked += 1;
                }
            }
        }
        // Every special accumulator against every special multiplier (but `i32::MIN`, which
        // `multipliers_fit` refuses) and each shift.
        for &a in &special {
            for &b in special.iter().filter(|&&b| b != i32::MIN) {
                for s in -33..=33 {
                    // SAFETY: AVX2 was detected above.
                    let got = unsafe { apply8(&[a; 8], &[b; 8], &[s; 8]) };
                    assert_eq!(got[3], mbqm(a, b, s), "a={a} b={b} s={s}");
                }
            }
        }
        assert!(checked > 1_000_000);
    }

    #[test]
    fn only_the_minimum_multiplier_is_refused() {
        assert!(multipliers_fit(&[1 << 30, i32::MAX, 0, -5, i32::MIN + 1]));
        assert!(!multipliers_fit(&[1 << 30, i32::MIN]));
    }

    #[test]
    fn packing_keeps_channel_order() {
        if !Isa::Avx2.is_available() {
            return;
        }
        #[target_feature(enable = "avx2")]
        unsafe fn run() -> [i8; 16] {
            let v: Vec<i32> = (0..16).map(|i| i * 7 - 60).collect();
            let mut out = [0_i8; 16];
            // SAFETY: AVX2 is enabled; `v` holds 16 lanes and `out` 16 bytes.
            unsafe {
                let a = _mm256_loadu_si256(v.as_ptr() as *const __m256i);
                let b = _mm256_loadu_si256(v.as_ptr().add(8) as *const __m256i);
                _mm_storeu_si128(out.as_mut_ptr() as *mut __m128i, pack16_i8(a, b));
            }
            out
        }
        // SAFETY: AVX2 was detected above.
        let got = unsafe { run() };
        let want: Vec<i8> = (0..16).map(|i| (i * 7 - 60) as i8).collect();
        assert_eq!(&got[..], &want[..]);
    }
}
