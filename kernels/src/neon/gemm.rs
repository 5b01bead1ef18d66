//! The NEON GEMM microkernel: an `R×W` tile, `W` = 16 columns (four q registers per row,
//! `R <= 6`) or 8 (two, `R <= 12`), so a full tile keeps 24 accumulators, the B vectors and a
//! broadcast A value in the 32 vector registers. Per K step: four loads of B, one
//! load-and-duplicate per row, one `fmla` per accumulator. Edge tiles run the same
//! instructions per element.

use std::arch::aarch64::*;

use crate::gemm::{TileArgs, NR};

/// The tile for panel width `w` (8 or 16) and `rows` rows (1..=12 for width 8, 1..=6 for 16).
pub(crate) fn tile_fn(rows: usize, w: usize) -> unsafe fn(&TileArgs) {
    match (rows, w == NR) {
        (1, false) => tile::<1, 2>,
        (2, false) => tile::<2, 2>,
        (3, false) => tile::<3, 2>,
        (4, false) => tile::<4, 2>,
        (5, false) => tile::<5, 2>,
        (6, false) => tile::<6, 2>,
        (7, false) => tile::<7, 2>,
        (8, false) => tile::<8, 2>,
        (9, false) => tile::<9, 2>,
        (10, false) => tile::<10, 2>,
        (11, false) => tile::<11, 2>,
        (_, false) => tile::<12, 2>,
        (1, true) => tile::<1, 4>,
        (2, true) => tile::<2, 4>,
        (3, true) => tile::<3, 4>,
        (4, true) => tile::<4, 4>,
        (5, true) => tile::<5, 4>,
        _ => tile::<6, 4>,
    }
}

/// Loads the first `nc` floats at `p` into `V` vectors (zeros past `nc`).
///
/// # Safety
/// Only called from NEON functions (it is inlined there); `p` readable for `nc <= 4·V`
/// floats.
#[inline(always)]
unsafe fn load_row<const V: usize>(p: *const f32, nc: usize) -> [float32x4_t; V] {
    let mut out = [vdupq_n_f32(0.0); V];
    if nc == 4 * V {
        for (v, o) in out.iter_mut().enumerate() {
            *o = vld1q_f32(p.add(4 * v));
        }
    } else {
        let mut tmp = [0.0f32; 16];
        std::ptr::copy_nonoverlapping(p, tmp.as_mut_ptr(), nc);
        for (v, o) in out.iter_mut().enumerate() {
            *o = vld1q_f32(tmp.as_ptr().add(4 * v));
        }
    }
    out
}

/// Stores the first `nc` floats of `V` vectors at `p`.
///
/// # Safety
/// Only called from NEON functions; `p` writable for `nc <= 4·V` floats.
#[inline(always)]
unsafe fn store_row<const V: usize>(p: *mut f32, nc: usize, row: [float32x4_t; V]) {
    if nc == 4 * V {
        for (v, x) in row.iter().enumerate() {
            vst1q_f32(p.add(4 * v), *x);
        }
    } else {
        let mut tmp = [0.0f32; 16];
        for (v, x) in row.iter().enumerate() {
            vst1q_f32(tmp.as_mut_ptr().add(4 * v), *x);
        }
        std::ptr::copy_nonoverlapping(tmp.as_ptr(), p, nc);
    }
}

/// `std::min(std::max(x, lo), hi)` exactly as the reference computes it (a NaN `x` passes,
/// `-0.0` stays `-0.0`), with compares and selects: `fmax`/`fmin` would differ on both.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) unsafe fn clamp(x: float32x4_t, lo: float32x4_t, hi: float32x4_t) -> float32x4_t {
    let y = vbslq_f32(vcltq_f32(x, lo), lo, x);
    vbslq_f32(vcltq_f32(hi, y), hi, y)
}

/// # Safety
/// `t` must satisfy the contract of [`TileArgs`] for `R` rows and width `4·V`.
#[target_feature(enable = "neon")]
unsafe fn tile<const R: usize, const V: usize>(t: &TileArgs) {
    for tile in 0..t.tiles {
        for q in 0..t.panels {
            one::<R, V>(&t.panel(q), tile);
        }
    }
}

/// Tile number `tile` of a [`tile`] call.
///
/// # Safety
/// As for [`tile`], and `tile < t.tiles`.
#[inline(always)]
unsafe fn one<const R: usize, const V: usize>(t: &TileArgs, tile: usize) {
    let mut acc = [[vdupq_n_f32(0.0); V]; R];
    if !t.first {
        for (r, acc_r) in acc.iter_mut().enumerate() {
            *acc_r = load_row::<V>(t.c_row::<R>(tile, r), t.nc);
        }
    }
    let mut b = t.b;
    for tap in 0..t.taps {
        let rows = t.rows::<R>(tile, tap);
        for k in 0..t.kc {
            let mut bv = [vdupq_n_f32(0.0); V];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = vld1q_f32(b.add(4 * v));
            }
            for (acc_r, p) in acc.iter_mut().zip(&rows) {
                let a = vld1q_dup_f32(p.add(k));
                for (acc_v, b_v) in acc_r.iter_mut().zip(&bv) {
                    *acc_v = vfmaq_f32(*acc_v, a, *b_v);
                }
            }
            b = b.add(4 * V);
        }
    }
    if t.last {
        let bias = load_row::<V>(t.bias, 4 * V);
        let lo = vdupq_n_f32(t.clamp.min);
        let hi = vdupq_n_f32(t.clamp.max);
        for acc_r in acc.iter_mut() {
            for (acc_v, b_v) in acc_r.iter_mut().zip(&bias) {
                *acc_v = clamp(vaddq_f32(*acc_v, *b_v), lo, hi);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        store_row::<V>(t.c_row::<R>(tile, r), t.nc, *acc_r);
    }
}
