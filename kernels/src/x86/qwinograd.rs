//! Exact integer Winograd F(2×2, 3×3) for int8 3×3 stride-1 convolutions (AVX2).
//!
//! With `G' = 2G` every transform has integer coefficients: `V = Bᵀ d B` (±1), `U = G' g G'ᵀ`
//! and `Y' = Aᵀ (Σ_ic U ⊙ V) A` (±1) equals `4·Y`, four times the exact convolution sum.
//! All of it is computed in int16 (V, U, both checked at preparation to fit) and wrapping
//! int32; wrapping arithmetic is a ring, so `Y'` comes out as `4·Y mod 2^32`, which is
//! `4·Y` itself because preparation checks `|4·Y| < 2^31` for every possible input. The
//! arithmetic shift by 2 then gives the reference sum bit for bit, and 2.25 times fewer
//! multiplies than the direct form.
//!
//! Tiles of 2×2 output pixels are processed in chunks of [`TC`]: transform the chunk's
//! inputs, one GEMM per transformed position ξ (the `qconv` microkernel), transform back and
//! requantize.

use std::arch::x86_64::*;

use super::qconv::{tap, NR};
use super::qrequant::{finish, Requant8};
use crate::quant::channel_consts::Requant;
use crate::quant::geometry::ConvGeometry;

/// Tiles per chunk (a multiple of the microkernel's 4 rows).
pub(crate) const TC: usize = 64;

/// Everything a Winograd convolution reads.
pub(crate) struct WinoJob<'a> {
    pub g: &'a ConvGeometry,
    /// Input channels rounded up to 16 (pixel stride of `xw` and of the V rows).
    pub cw: usize,
    /// Output channels rounded up to 16.
    pub ocp: usize,
    /// `[ξ][block][cw/2][16][2]` transformed weights.
    pub weights: &'a [i16],
    /// Per-channel constants padded to `ocp`, output offset and clamp.
    pub rq: Requant<'a>,
    /// Widened input `[N·H·W][cw]` followed by one zero row.
    pub xw: &'a [i16],
    /// Tiles per chunk, `1..=TC` (see [`chunk_tiles`]).
    pub chunk: usize,
}

/// Tiles per chunk for `tiles` tiles on `threads` threads: as few chunks of at most [`TC`]
/// tiles as can be shared evenly between the threads, all of one size (but the last). With
/// chunks of `TC` a 28×28 image (196 tiles) made chunks of 64, 64, 64 and 4, two for one
/// thread and the small one for the other: 1.5 times faster on two threads instead of two.
/// Tiles are independent and exact, so the chunking never changes a result.
pub(crate) fn chunk_tiles(tiles: usize, threads: usize) -> usize {
    let chunks = tiles.div_ceil(TC).max(1);
    let chunks = if threads > 1 {
        chunks.div_ceil(threads) * threads
    } else {
        chunks
    };
    tiles.div_ceil(chunks).clamp(1, TC)
}

/// Runs the tile chunks `first, first + step, …` with `scratch` (at least
/// `16·TC·cw + 16·TC·ocp·2` long: V as int16, then M as int32) and writes their output pixels through `out`.
///
/// # Safety
/// AVX2 must be available; the job consistent with its geometry (3×3, stride 1, dilation
/// 1); `out` points at the whole output tensor and no other caller writes the same tiles.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn run_chunks(
    job: &WinoJob<'_>,
    first: usize,
    step: usize,
    scratch: &mut [i16],
    out: *mut i8,
) {
    let g = job.g;
    let (th, tw) = (g.out_h.div_ceil(2), g.out_w.div_ceil(2));
    let tiles = g.batches * th * tw;
    let tc = job.chunk;
    assert!((1..=TC).contains(&tc), "chunk of {tc} tiles");
    let chunks = tiles.div_ceil(tc);
    let cw = job.cw;
    let ocp = job.ocp;
    assert!(scratch.len() >= 16 * TC * cw + 16 * TC * ocp * 2);
    let v = scratch.as_mut_ptr();
    // SAFETY: M follows V inside `scratch` (length checked by the caller).
    let m = unsafe { v.add(16 * TC * cw) as *mut i32 };
    let xw = job.xw.as_ptr();
    // SAFETY: `xw` ends with a zero row of `cw` values.
    let zero_row = unsafe { xw.add(job.xw.len() - cw) };
    let mut ci = first;
    while ci < chunks {
        let t0 = ci * tc;
        let n = (tiles - t0).min(tc);
        // 1. Input transform of the chunk's tiles, and of zero tiles up to the next multiple
        // of 4 (the GEMM below reads rows four at a time).
        for t in 0..n.next_multiple_of(4).min(TC) {
            let (b, ty, tx) = if t < n {
                let tt = t0 + t;
                (tt / (th * tw), (tt % (th * tw)) / tw, tt % tw)
            } else {
                (usize::MAX, 0, 0)
            };
            let mut rows = [zero_row; 16];
            if b != usize::MAX {
                for i in 0..4 {
                    for j in 0..4 {
                        let iy = (2 * ty + i) as isize - g.pad_top as isize;
                        let ix = (2 * tx + j) as isize - g.pad_left as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < g.in_h && (ix as usize) < g.in_w {
                            let px = (b * g.in_h + iy as usize) * g.in_w + ix as usize;
                            // SAFETY: inside the input, so inside `xw`.
                            rows[i * 4 + j] = unsafe { xw.add(px * cw) };
                        }
                    }
                }
            }
            for c in (0..cw).step_by(16) {
                // SAFETY: each row holds `cw` values; V rows `(ξ, t)` hold `cw` values.
                unsafe {
                    let d: [__m256i; 16] = std::array::from_fn(|k| {
                        _mm256_loadu_si256(rows[k].add(c) as *const __m256i)
                    });
                    let vt = input_transform(&d);
                    for (xi, val) in vt.iter().enumerate() {
                        let dst = v.add((xi * TC + t) * cw + c);
                        _mm256_storeu_si256(dst as *mut __m256i, *val);
                    }
                }
            }
        }
        // 2. One GEMM per ξ: M[ξ][t][oc] = Σ_ic V[ξ][t][ic]·U[ξ][ic][oc].
        let kpt = cw / 2;
        let blocks = ocp / NR;
        for xi in 0..16 {
            for nb in 0..blocks {
                // SAFETY: weight block (ξ, nb) exists; V rows and M rows are inside the
                // chunk's scratch.
                unsafe {
                    let w = job.weights.as_ptr().add((xi * blocks + nb) * cw * NR);
                    // Rows past `n` (up to the next multiple of 4, inside the chunk) hold
                    // stale values; their products are never read.
                    for t in (0..n).step_by(4) {
                        let ptrs: [*const i16; 4] =
                            std::array::from_fn(|r| v.add((xi * TC + t + r) * cw) as *const i16);
                        let acc = tap::<4, 2>([[_mm256_setzero_si256(); 2]; 4], ptrs, w, kpt);
                        for (r, a) in acc.iter().enumerate() {
                            let dst = m.add((xi * TC + t + r) * ocp + nb * NR);
                            _mm256_storeu_si256(dst as *mut __m256i, a[0]);
                            _mm256_storeu_si256(dst.add(8) as *mut __m256i, a[1]);
                        }
                    }
                }
            }
        }
        // 3. Output transform, requantization, store.
        let out_offset = _mm256_set1_epi32(job.rq.out_offset);
        let lo = _mm256_set1_epi32(job.rq.act_min);
        let hi = _mm256_set1_epi32(job.rq.act_max);
        for c in (0..g.out_c).step_by(8) {
            let nc = (g.out_c - c).min(8);
            // SAFETY: per-channel arrays are padded to `ocp ≥ c + 8`.
            let (rq, bias) = unsafe { Requant8::at(&job.rq, c) };
            for t in 0..n {
                let tt = t0 + t;
                let (b, ty, tx) = (tt / (th * tw), (tt % (th * tw)) / tw, tt % tw);
                // SAFETY: M rows of this chunk; output pixels checked against the output
                // size before each store.
                unsafe {
                    let mv: [__m256i; 16] = std::array::from_fn(|xi| {
                        _mm256_loadu_si256(m.add((xi * TC + t) * ocp + c) as *const __m256i)
                    });
                    let y = output_transform(&mv);
                    for (k, yv) in y.iter().enumerate() {
                        let (oy, ox) = (2 * ty + k / 2, 2 * tx + k % 2);
                        if oy >= g.out_h || ox >= g.out_w {
                            continue;
                        }
                        let s = _mm256_add_epi32(_mm256_srai_epi32::<2>(*yv), bias);
                        let r = finish(s, &rq, out_offset, lo, hi);
                        let w16 = _mm_packs_epi32(
                            _mm256_castsi256_si128(r),
                            _mm256_extracti128_si256::<1>(r),
                        );
                        let bytes = _mm_packs_epi16(w16, w16);
                        let dst = out.add(((b * g.out_h + oy) * g.out_w + ox) * g.out_c + c);
                        let mut tmp = [0_i8; 16];
                        _mm_storeu_si128(tmp.as_mut_ptr() as *mut __m128i, bytes);
                        std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, nc);
                    }
                }
            }
        }
        ci += step;
    }
}

/// `Bᵀ d B` on 16 channels, `d` row-major 4×4.
#[inline(always)]
unsafe fn input_transform(d: &[__m256i; 16]) -> [__m256i; 16] {
    // SAFETY: register-only AVX2 intrinsics.
    unsafe {
        let bt = |a: __m256i, b: __m256i, c: __m256i, e: __m256i| {
            [
                _mm256_sub_epi16(a, c),
                _mm256_add_epi16(b, c),
                _mm256_sub_epi16(c, b),
                _mm256_sub_epi16(b, e),
            ]
        };
        // Rows: for each column j, combine rows 0..3.
        let mut r = [_mm256_setzero_si256(); 16];
        for j in 0..4 {
            let col = bt(d[j], d[4 + j], d[8 + j], d[12 + j]);
            for i in 0..4 {
                r[i * 4 + j] = col[i];
            }
        }
        let mut out = [_mm256_setzero_si256(); 16];
        for i in 0..4 {
            let row = bt(r[i * 4], r[i * 4 + 1], r[i * 4 + 2], r[i * 4 + 3]);
            out[i * 4..i * 4 + 4].copy_from_slice(&row);
        }
        out
    }
}

/// `Aᵀ M A` on 8 channels: the 2×2 outputs, row-major.
#[inline(always)]
unsafe fn output_transform(m: &[__m256i; 16]) -> [__m256i; 4] {
    // SAFETY: register-only AVX2 intrinsics.
    unsafe {
        let at = |a: __m256i, b: __m256i, c: __m256i, e: __m256i| {
            [
                _mm256_add_epi32(_mm256_add_epi32(a, b), c),
                _mm256_sub_epi32(_mm256_sub_epi32(b, c), e),
            ]
        };
        let mut r = [_mm256_setzero_si256(); 8];
        for j in 0..4 {
            let col = at(m[j], m[4 + j], m[8 + j], m[12 + j]);
            r[j] = col[0];
            r[4 + j] = col[1];
        }
        let a = at(r[0], r[1], r[2], r[3]);
        let b = at(r[4], r[5], r[6], r[7]);
        [a[0], a[1], b[0], b[1]]
    }
}
