//! NEON int16 dot products for int8 FULLY_CONNECTED (see [`crate::quant::fc_packed`]; the
//! operands are the AVX2 kernel's): `smlal`/`smlal2` multiply-add 8 products into two
//! vectors of int32 lanes per weight row. Operands of at most 383 in magnitude make each
//! product exact, and the int32 sums wrap exactly as the scalar kernel's do.

use std::arch::aarch64::*;

use super::qconv_dot::sdot;

/// Weight element types the dot products read (int8 as stored, or int16).
pub(crate) trait Src: Copy {
    /// The 8 values at `p`, as int16.
    ///
    /// # Safety
    /// `p` readable for 8 elements.
    unsafe fn load8(p: *const Self) -> int16x8_t;
}

impl Src for i16 {
    #[inline(always)]
    unsafe fn load8(p: *const i16) -> int16x8_t {
        // SAFETY: 8 readable values (caller).
        unsafe { vld1q_s16(p) }
    }
}

impl Src for i8 {
    #[inline(always)]
    unsafe fn load8(p: *const i8) -> int16x8_t {
        // SAFETY: 8 readable bytes (caller).
        unsafe { vmovl_s8(vld1_s8(p)) }
    }
}

/// `acc[u] = Σ_k x[k]·w[u·dp + k]` for every unit `u < acc.len()`, four units per pass so
/// each input vector is loaded once for four weight rows.
///
/// # Safety
/// `dp` a multiple of 8, `x.len() >= dp`, `w.len() >= acc.len()·dp`.
pub(crate) unsafe fn dots<T: Src>(x: &[i16], w: &[T], dp: usize, acc: &mut [i32]) {
    let units = acc.len();
    let xp = x.as_ptr();
    let mut u = 0;
    // SAFETY: every load reads 8 values at offset k < dp of `x` or of a weight row
    // `u' < units`, inside the slices by the caller's contract.
    unsafe {
        while u + 4 <= units {
            let w0 = w.as_ptr().add(u * dp);
            let mut a = [[vdupq_n_s32(0); 2]; 4];
            for k in (0..dp).step_by(8) {
                let xv = vld1q_s16(xp.add(k));
                for (r, a) in a.iter_mut().enumerate() {
                    let wv = T::load8(w0.add(r * dp + k));
                    a[0] = vmlal_s16(a[0], vget_low_s16(xv), vget_low_s16(wv));
                    a[1] = vmlal_high_s16(a[1], xv, wv);
                }
            }
            for (r, a) in a.iter().enumerate() {
                acc[u + r] = vaddvq_s32(vaddq_s32(a[0], a[1]));
            }
            u += 4;
        }
        while u < units {
            let w0 = w.as_ptr().add(u * dp);
            let mut a = [vdupq_n_s32(0); 2];
            for k in (0..dp).step_by(8) {
                let xv = vld1q_s16(xp.add(k));
                let wv = T::load8(w0.add(k));
                a[0] = vmlal_s16(a[0], vget_low_s16(xv), vget_low_s16(wv));
                a[1] = vmlal_high_s16(a[1], xv, wv);
            }
            acc[u] = vaddvq_s32(vaddq_s32(a[0], a[1]));
            u += 1;
        }
    }
}

/// `acc[u] = Σ_k x[k]·w[u·dp + k]` on int8 operands with `sdot` (the
/// [`Isa::NeonDot`](crate::isa::Isa::NeonDot) tier), four units per pass: each lane sums
/// four products, the lanes are added at the end; the int32 sums wrap like the scalar
/// kernel's.
///
/// # Safety
/// The CPU must have `dotprod`; `dp` a multiple of 16, `x.len() >= dp`,
/// `w.len() >= acc.len()·dp`.
#[target_feature(enable = "dotprod")]
pub(crate) unsafe fn dots_i8(x: &[i8], w: &[i8], dp: usize, acc: &mut [i32]) {
    let units = acc.len();
    let xp = x.as_ptr();
    let mut u = 0;
    // SAFETY: every load reads 16 values at offset k < dp of `x` or of a weight row
    // `u' < units`, inside the slices by the caller's contract.
    unsafe {
        while u + 4 <= units {
            let w0 = w.as_ptr().add(u * dp);
            let mut a = [vdupq_n_s32(0); 4];
            for k in (0..dp).step_by(16) {
                let xv = vld1q_s8(xp.add(k));
                for (r, a) in a.iter_mut().enumerate() {
                    *a = sdot(*a, vld1q_s8(w0.add(r * dp + k)), xv);
                }
            }
            for (r, a) in a.iter().enumerate() {
                acc[u + r] = vaddvq_s32(*a);
            }
            u += 4;
        }
        while u < units {
            let w0 = w.as_ptr().add(u * dp);
            let mut a = vdupq_n_s32(0);
            for k in (0..dp).step_by(16) {
                a = sdot(a, vld1q_s8(w0.add(k)), vld1q_s8(xp.add(k)));
            }
            acc[u] = vaddvq_s32(a);
            u += 1;
        }
    }
}
