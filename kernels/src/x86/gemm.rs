//! The AVX2 + FMA GEMM microkernel: an `R×W` tile, `W` = 16 columns (two ymm registers per
//! row, `R <= 6`) or 8 (one register, `R <= 12`), so a full tile keeps 12 accumulators, the B
//! vectors and one broadcast A value in the 16 ymm registers. Per K step: one load of B per
//! vector, one broadcast per row, one fused multiply-add per accumulator. Edge tiles run the
//! same instructions per element, so results do not depend on how rows are grouped.
//! A narrow panel stored in pairs of depths has its own `R×8` tile, [`tile_pair`] (`R <= 6`).

use std::arch::x86_64::*;

use super::{first_lanes, store_first};
use crate::gemm::{TileArgs, NR};

/// The tile for panel width `w` (8 or 16) and `rows` rows (1..=12 for width 8, 1..=6 for 16).
pub(crate) fn tile_fn(rows: usize, w: usize) -> unsafe fn(&TileArgs) {
    match (rows, w == NR) {
        (1, false) => tile::<1, 1>,
        (2, false) => tile::<2, 1>,
        (3, false) => tile::<3, 1>,
        (4, false) => tile::<4, 1>,
        (5, false) => tile::<5, 1>,
        (6, false) => tile::<6, 1>,
        (7, false) => tile::<7, 1>,
        (8, false) => tile::<8, 1>,
        (9, false) => tile::<9, 1>,
        (10, false) => tile::<10, 1>,
        (11, false) => tile::<11, 1>,
        (_, false) => tile::<12, 1>,
        (1, true) => tile::<1, 2>,
        (2, true) => tile::<2, 2>,
        (3, true) => tile::<3, 2>,
        (4, true) => tile::<4, 2>,
        (5, true) => tile::<5, 2>,
        _ => tile::<6, 2>,
    }
}

/// Loads the first `nc` floats at `p` into `V` vectors (zeros past `nc`); a partial row
/// goes through masked loads, which read only the selected floats.
///
/// # Safety
/// Only called from AVX2 functions (it is inlined there, and so are its intrinsics); `p`
/// readable for `nc <= 8·V` floats.
#[inline(always)]
unsafe fn load_row<const V: usize>(p: *const f32, nc: usize) -> [__m256; V] {
    let mut out = [_mm256_setzero_ps(); V];
    if nc == 8 * V {
        for (v, o) in out.iter_mut().enumerate() {
            *o = _mm256_loadu_ps(p.add(8 * v));
        }
    } else {
        for (v, o) in out.iter_mut().enumerate() {
            let m = first_lanes(nc.saturating_sub(8 * v));
            *o = _mm256_maskload_ps(p.wrapping_add(8 * v), m);
        }
    }
    out
}

/// Stores the first `nc` floats of `V` vectors at `p` (see [`store_first`] for a partial
/// row).
///
/// # Safety
/// Only called from AVX2 functions; `p` writable for `nc <= 8·V` floats.
#[inline(always)]
unsafe fn store_row<const V: usize>(p: *mut f32, nc: usize, row: [__m256; V]) {
    if nc == 8 * V {
        for (v, x) in row.iter().enumerate() {
            _mm256_storeu_ps(p.add(8 * v), *x);
        }
    } else {
        for (v, x) in row.iter().enumerate() {
            let n = nc.saturating_sub(8 * v);
            if n > 0 {
                store_first(p.add(8 * v), *x, n);
            }
        }
    }
}

/// # Safety
/// AVX2 and FMA must be available; `t` must satisfy the contract of [`TileArgs`] for `R`
/// rows and width `8·V`.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const R: usize, const V: usize>(t: &TileArgs) {
    if t.panels > 1 {
        // The streamed order (see `TileArgs::panel`). Kept apart from the one-panel loop
        // below, whose code folding the two together changed. It has a single tap, so a
        // tile's rows of A are looked up once for all its panels rather than once per panel
        // (in-process A/B on Zen 3: 28×28×32 → 192 ×0.92, Winograd 28×28×128 ×0.96).
        debug_assert_eq!(t.taps, 1, "the streamed order has a single tap");
        for tile in 0..t.tiles {
            let rows = t.rows::<R>(tile, 0);
            for q in 0..t.panels {
                one_with::<R, V>(&t.panel(q), tile, |_| rows);
            }
        }
        return;
    }
    if t.pf_lines == 0 {
        for tile in 0..t.tiles {
            one::<R, V>(t, tile);
        }
        return;
    }
    // Each tile's share of the lines to prefetch (see `TileArgs::pf`), issued before its
    // multiply-adds so that they hide the memory latency. (A separate loop: the prefetch
    // state kept beside `one`'s would cost the tall narrow tiles register spills.)
    let share = t.pf_lines.div_ceil(t.tiles);
    let mut pf = t.pf;
    let mut left = t.pf_lines;
    for tile in 0..t.tiles {
        for _ in 0..share.min(left) {
            _mm_prefetch::<_MM_HINT_T0>(pf.cast());
            pf = pf.wrapping_add(16);
        }
        left = left.saturating_sub(share);
        one::<R, V>(t, tile);
    }
}

/// Tile number `tile` of a [`tile`] call.
///
/// # Safety
/// As for [`tile`], and `tile < t.tiles`.
#[inline(always)]
unsafe fn one<const R: usize, const V: usize>(t: &TileArgs, tile: usize) {
    one_with::<R, V>(t, tile, |tap| t.rows::<R>(tile, tap))
}

/// [`one`] with the rows of A of each tap given by `rows_of`.
///
/// # Safety
/// As for [`one`]; `rows_of(tap)` gives the rows [`TileArgs::row`] would.
#[inline(always)]
unsafe fn one_with<const R: usize, const V: usize>(
    t: &TileArgs,
    tile: usize,
    rows_of: impl Fn(usize) -> [*const f32; R],
) {
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    if !t.first {
        for (r, acc_r) in acc.iter_mut().enumerate() {
            *acc_r = load_row::<V>(t.c_row::<R>(tile, r), t.nc);
        }
    }
    let mut b = t.b;
    for tap in 0..t.taps {
        let rows = rows_of(tap);
        for k in 0..t.kc {
            let mut bv = [_mm256_setzero_ps(); V];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(b.add(8 * v));
            }
            for (acc_r, p) in acc.iter_mut().zip(&rows) {
                let a = _mm256_broadcast_ss(&*p.add(k));
                for (acc_v, b_v) in acc_r.iter_mut().zip(&bv) {
                    *acc_v = _mm256_fmadd_ps(a, *b_v, *acc_v);
                }
            }
            b = b.add(8 * V);
        }
    }
    if t.last {
        let bias = load_row::<V>(t.bias, 8 * V);
        let lo = _mm256_set1_ps(t.clamp.min);
        let hi = _mm256_set1_ps(t.clamp.max);
        for acc_r in acc.iter_mut() {
            for (acc_v, b_v) in acc_r.iter_mut().zip(&bias) {
                // max(lo, x) keeps a NaN x (it returns the second operand when unordered),
                // and so does min(hi, ·): the reference's std::min(std::max(x, lo), hi).
                let x = _mm256_add_ps(*acc_v, *b_v);
                *acc_v = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        store_row::<V>(t.c_row::<R>(tile, r), t.nc, *acc_r);
    }
}

/// The paired tile for `rows` rows (1..=6; see [`tile_pair`]).
pub(crate) fn pair_fn(rows: usize) -> unsafe fn(&TileArgs) {
    match rows {
        1 => tile_pair::<1>,
        2 => tile_pair::<2>,
        3 => tile_pair::<3>,
        4 => tile_pair::<4>,
        5 => tile_pair::<5>,
        _ => tile_pair::<6>,
    }
}

/// An `R×8` tile over a panel of B stored in *pairs of depths* (`crate::gemm`'s paired
/// narrow panel): each 16-float row of the panel holds depths `k` and `k+1` of the 8 columns,
/// interleaved (column order 0, 1, 4, 5 in the first vector, 2, 3, 6, 7 in the second), and
/// one 64-bit broadcast puts A's `a[k], a[k+1]` in every lane pair. So one broadcast and two
/// B vectors feed two multiply-adds per row, as in the 16-wide tile, where the 8-wide tile
/// needs a broadcast per multiply-add and runs at the loads' pace (Zen 3: 32×32×15 → 8 took
/// 1.5 times as long per multiply-add as 32×32×15 → 16). Each column sums its even depths
/// and its odd depths in two accumulators, each in K order, and adds the two at the end:
/// another rounding order than the plain tiles', the same for every row, tile height and
/// thread split. A run of odd length ends with a pair whose second depth is zero in B and is
/// made zero in A too (a blend), so that an infinite A value meets no `0·∞`.
///
/// # Safety
/// As for [`tile`] with `V = 1`, B being `taps·⌈kc/2⌉` paired rows of 16 floats and each
/// row's runs readable for `kc` floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_pair<const R: usize>(t: &TileArgs) {
    debug_assert_eq!(t.panels, 1, "paired panels are called one by one");
    let share = t.pf_lines.div_ceil(t.tiles.max(1));
    let mut pf = t.pf;
    let mut left = t.pf_lines;
    for tile in 0..t.tiles {
        for _ in 0..share.min(left) {
            _mm_prefetch::<_MM_HINT_T0>(pf.cast());
            pf = pf.wrapping_add(16);
        }
        left = left.saturating_sub(share);
        one_pair::<R>(t, tile);
    }
}

/// Tile number `tile` of a [`tile_pair`] call.
///
/// # Safety
/// As for [`tile_pair`], and `tile < t.tiles`.
#[inline(always)]
unsafe fn one_pair<const R: usize>(t: &TileArgs, tile: usize) {
    let zero = _mm256_setzero_ps();
    let mut acc = [[zero; 2]; R];
    if !t.first {
        // Partial sums parked in C restart the even-depth sums; the odd ones restart at 0.
        let lo = _mm256_setr_epi32(0, 0, 1, 1, 4, 4, 5, 5);
        let hi = _mm256_setr_epi32(2, 2, 3, 3, 6, 6, 7, 7);
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let [c] = load_row::<1>(t.c_row::<R>(tile, r), t.nc);
            acc_r[0] = _mm256_blend_ps::<0xAA>(_mm256_permutevar8x32_ps(c, lo), zero);
            acc_r[1] = _mm256_blend_ps::<0xAA>(_mm256_permutevar8x32_ps(c, hi), zero);
        }
    }
    let pairs = t.kc / 2;
    let mut b = t.b;
    for tap in 0..t.taps {
        let rows = t.rows::<R>(tile, tap);
        for q in 0..pairs {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for (acc_r, p) in acc.iter_mut().zip(&rows) {
                // The two floats as one f64, read unaligned (a run starts at any float):
                // one `vbroadcastsd` from memory.
                let pair = p.add(2 * q).cast::<f64>().read_unaligned();
                let a = _mm256_castpd_ps(_mm256_set1_pd(pair));
                acc_r[0] = _mm256_fmadd_ps(a, b0, acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(a, b1, acc_r[1]);
            }
            b = b.add(16);
        }
        if t.kc % 2 == 1 {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for (acc_r, p) in acc.iter_mut().zip(&rows) {
                let a = _mm256_blend_ps::<0xAA>(_mm256_broadcast_ss(&*p.add(t.kc - 1)), zero);
                acc_r[0] = _mm256_fmadd_ps(a, b0, acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(a, b1, acc_r[1]);
            }
            b = b.add(16);
        }
    }
    let (lo, hi) = (_mm256_set1_ps(t.clamp.min), _mm256_set1_ps(t.clamp.max));
    let bias = load_row::<1>(t.bias, 8)[0];
    for (r, acc_r) in acc.iter().enumerate() {
        // Even plus odd depths of each column, in column order 0..8.
        let mut x = _mm256_hadd_ps(acc_r[0], acc_r[1]);
        if t.last {
            // As in `one`: add, then max(lo, ·) and min(hi, ·), which keep a NaN.
            x = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_add_ps(x, bias)));
        }
        store_row::<1>(t.c_row::<R>(tile, r), t.nc, [x]);
    }
}

/// Panels of B one [`gemv`] pass multiplies side by side.
pub(crate) const GEMV_PANELS: usize = 4;

/// One row of A times [`GEMV_PANELS`] full 16-wide panels of B (`c[j] = clamp(Σ_k x[k]·B[k][j]
/// + bias[j])` for the 64 columns of the panels). A 1×16 tile keeps only two accumulators,
/// so each K step waits for the previous fused multiply-add (latency 4, throughput 2 per
/// cycle: a quarter of the machine); with four panels the eight accumulators are
/// independent. Each column still sums in K order, then adds its bias and clamps: the same
/// operations per element as [`tile`], so the results are identical.
///
/// # Safety
/// AVX2 and FMA must be available; `x` readable for `k` floats; panel `p` is `k` rows of 16
/// floats at `b.add(p·stride)`; `bias` readable for 64 floats when `epilogue`; `c` writable
/// for 64 floats.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gemv(
    x: *const f32,
    k: usize,
    b: *const f32,
    stride: usize,
    epilogue: Option<(*const f32, crate::activation::Clamp)>,
    c: *mut f32,
) {
    const V: usize = 2 * GEMV_PANELS;
    let mut acc = [_mm256_setzero_ps(); V];
    let mut p = [b; GEMV_PANELS];
    for (i, q) in p.iter_mut().enumerate() {
        *q = b.wrapping_add(i * stride);
    }
    for kk in 0..k {
        let a = _mm256_broadcast_ss(&*x.add(kk));
        for (i, q) in p.iter().enumerate() {
            let off = 16 * kk;
            acc[2 * i] = _mm256_fmadd_ps(a, _mm256_loadu_ps(q.add(off)), acc[2 * i]);
            acc[2 * i + 1] = _mm256_fmadd_ps(a, _mm256_loadu_ps(q.add(off + 8)), acc[2 * i + 1]);
        }
    }
    if let Some((bias, clamp)) = epilogue {
        let lo = _mm256_set1_ps(clamp.min);
        let hi = _mm256_set1_ps(clamp.max);
        for (v, a) in acc.iter_mut().enumerate() {
            // As in `one`: add, then max(lo, ·) and min(hi, ·), which keep a NaN.
            let s = _mm256_add_ps(*a, _mm256_loadu_ps(bias.add(8 * v)));
            *a = _mm256_min_ps(hi, _mm256_max_ps(lo, s));
        }
    }
    for (v, a) in acc.iter().enumerate() {
        _mm256_storeu_ps(c.add(8 * v), *a);
    }
}
