//! Float matrix multiply `C[M×N] = A[M×K]·B[K×N] + bias`, then a clamp; also the engine of
//! CONV_2D.
//!
//! B is a constant (weights), so it is packed once, at prepare time, into [`PackedB`]: column
//! panels of [`NR`] (16) columns stored `[K][16]`, except that a last panel of at most 8
//! columns is stored 8 wide, so that small or odd channel counts (6, 21, ...) waste at most
//! half a vector instead of most of a 16-wide tile.
//!
//! A is read *indirectly*: each row of a cache block is a list of `taps` runs of `tap_len`
//! floats, found by offsets into one input slice (or a zero run, for padding). A plain GEMM
//! has one tap per row; a convolution has one tap per filter position, whose run is the input
//! pixel's channels. So convolutions multiply straight from their input, with no im2col copy.
//!
//! Loop nest for a block of `MB` (72) rows (more for a shallow A or a single panel, see
//! `block_rows`): K in slices of about `KC` floats (whole taps, or pieces of one long tap),
//! then panels, then register tiles of rows. One slice of a panel (at most 16 KiB) stays in
//! L1 while every row tile of the block uses it; the block's slice of A stays in L2 across
//! panels. Weights too large to stay in cache from one
//! invoke to the next come from memory; only a panel's first tile reads them there, so the
//! AVX2 tier prefetches the next panel's slice a share before each tile of the current one,
//! which overlaps that read with the multiply-adds (MobileNetV2's 7×7 layers, weights of
//! 0.6–1.6 MB: ×0.82–0.90 on Zen 3). The block's rows are shared out evenly
//! between the fewest tiles that hold them, and one microkernel call runs all tiles of a
//! height. Partial sums are parked in C between K slices (storing and reloading an f32 is
//! exact), bias and clamp are applied when the last slice finishes: the epilogue is fused,
//! nothing makes a second pass over C.
//!
//! A product of a single tap (pointwise layers, Winograd's products) instead takes the
//! *streamed* order when B is small enough, or its tap longer than a slice, or the block one
//! tile high (`run_block` says when): each tile takes the whole depth across all panels,
//! its rows of A staying in L1 while B passes by in one stream, in order, that the hardware
//! prefetcher follows; one microkernel call covers a height of tiles over all full panels,
//! or over a group of them whose part of B stays in L2 while the tiles pass (a large B).
//! The sums are the same, so are the bits.
//!
//! A product of one row (FULLY_CONNECTED on one input) has one tile row per panel, whose two
//! accumulators leave the multiply-add units waiting on each other; the AVX2 tier runs such
//! rows four panels side by side (`x86::gemm::gemv`, the same operations per element).
//!
//! A narrow last panel wastes no lanes in the 8×8 tile, but that tile needs one broadcast of
//! A per multiply-add and runs at the pace of the loads. The AVX2 tier therefore stores such
//! a panel in pairs of depths (`PackedB::paired`) when A's runs are shorter than a K slice,
//! and its paired tile (`x86::gemm::tile_pair`) feeds two multiply-adds per broadcast like a
//! 16-wide tile; each column then sums its even and its odd depths apart and adds the two at
//! the end.
//!
//! Tiers: [`Isa::Avx2`] runs 6×16, 8×8 or paired 6×8 tiles of fused multiply-adds (`x86::gemm`),
//! [`Isa::Neon`] 6×16 (or 12×8) tiles of `fmla` (`neon::gemm`), [`Isa::Generic`] portable
//! code with separate multiply and add (the reference's rounding). Within one tier every tile size, edge tiles
//! included, performs per element the same operations in K order (`acc = acc ⊕ a·b`, or the
//! paired tile's two sums, then `+ bias`, then the clamp; which tile a column gets depends on
//! B alone), and threads only split rows or panels, so results do not depend on the thread
//! count nor on where part boundaries fall.

use std::ops::Range;

use crate::activation::{Clamp, Residual};
use crate::isa::Isa;
use crate::parallel;

/// Columns of a full packed panel of B.
pub const NR: usize = 16;
/// Columns of the narrow last panel.
const NR_HALF: usize = NR / 2;
/// Target depth of one K slice (see module docs).
const KC: usize = 256;
/// Rows of A processed as one cache block.
pub(crate) const MB: usize = 72;
/// Rows per cache block when the block has one panel: B's panel is then used once per block
/// whatever its height, and the rows of A once, so only the cost of starting a block (tile
/// choice, bounds checks, the tiles' calls) depends on it.
pub(crate) const MB_ONE_PANEL: usize = 8 * MB;

/// Rows per cache block for a product of depth `k` over `panels` of B. With several panels
/// the block's rows of A are read again for each, so they should stay in cache: `MB` rows of
/// a full K slice, or as many more rows of a shallower A as the same floats hold (up to
/// `MB_ONE_PANEL`), which saves block starts. MobileNetV2's first layer (3×3 stride 2, 3 → 32
/// channels, K = 27) took 576-row blocks instead of 72 and ran ×0.92 (Zen 3, in-process A/B
/// per node, the two versions alternating invoke by invoke).
pub(crate) fn block_rows(panels: &Range<usize>, k: usize) -> usize {
    if panels.len() == 1 {
        MB_ONE_PANEL
    } else {
        MB * (KC / k.max(1)).clamp(1, MB_ONE_PANEL / MB)
    }
}
/// Shortest run of depths stored in pairs (see [`PackedB::paired`]); shorter ones would be
/// mostly odd tails.
const PAIR_MIN_RUN: usize = 4;
/// Where each of the 8 columns of a paired panel sits: `vector·4 + slot` (see
/// [`PackedB::paired`]), so that adding each lane pair of the two vectors
/// (`_mm256_hadd_ps`) gives the columns in order.
const PAIR_COLUMNS: [usize; 8] = [0, 1, 4, 5, 2, 3, 6, 7];
/// Rows of a paired tile: two accumulators per row, as the 16-wide tiles.
const PAIR_ROWS: usize = 6;

/// Multiply-adds one streamed weight costs in time: 4 bytes from memory at about 12 GB/s
/// take as long as 16 multiply-adds at 50 GMAC/s.
const STREAMED_WEIGHT_MACS: usize = 16;
/// Floats in half an L2 cache (256 KiB): weights above this are streamed from L3.
const L2_HALF_FLOATS: usize = 1 << 16;

/// Offset marking a padding tap: the row reads zeros there.
pub(crate) const PAD: usize = usize::MAX;

/// B packed into column panels (see the module docs), with the kernel tier that will use it.
#[derive(Clone, Debug)]
pub struct PackedB {
    k: usize,
    n: usize,
    isa: Isa,
    data: Vec<f32>,
    /// Nonzero when the narrow last panel is stored in pairs of depths for runs (taps) of
    /// this many depths (see [`PackedB::paired`]).
    pair_run: usize,
}

impl PackedB {
    /// Packs a row-major `B[k][n]` for tier `isa` (a tier the CPU lacks falls back to
    /// [`Isa::Generic`]). Precondition: `b.len() >= k·n`.
    pub fn from_row_major(b: &[f32], k: usize, n: usize, isa: Isa) -> Self {
        assert!(b.len() >= k * n, "B is shorter than k·n");
        Self::pack(k, n, isa, |kk, j| b[kk * n + j]).paired(k)
    }

    /// Packs B from its transpose, a row-major `Bt[n][k]`: the layout of FULLY_CONNECTED
    /// weights `[UNITS, K]` and of CONV_2D filters `[OC, KH·KW·IC]`.
    /// Precondition: `bt.len() >= n·k`.
    pub fn from_transposed(bt: &[f32], n: usize, k: usize, isa: Isa) -> Self {
        Self::from_transposed_runs(bt, n, k, k, isa)
    }

    /// [`PackedB::from_transposed`] for an A read in runs (taps) of `run` depths each (a
    /// convolution's filter rows or pixels; `run` divides `k`), which decides how a paired
    /// narrow panel is laid out.
    pub(crate) fn from_transposed_runs(
        bt: &[f32],
        n: usize,
        k: usize,
        run: usize,
        isa: Isa,
    ) -> Self {
        Self::plain_from_transposed(bt, n, k, isa).paired(run)
    }

    fn plain_from_transposed(bt: &[f32], n: usize, k: usize, isa: Isa) -> Self {
        assert!(bt.len() >= n * k, "Bt is shorter than n·k");
        let mut me = Self::empty(k, n, isa);
        for p in 0..me.panels() {
            let (j0, w) = me.panel(p);
            let cols = w.min(n - j0);
            let panel = &mut me.data[j0 * k..j0 * k + w * k];
            // Column `jj` of the panel is row `j0 + jj` of Bt: `cols` rows are read side by
            // side while the panel is written sequentially.
            let mut rows: [&[f32]; NR] = [&[]; NR];
            for (jj, row) in rows.iter_mut().enumerate().take(cols) {
                *row = &bt[(j0 + jj) * k..(j0 + jj + 1) * k];
            }
            // Blocks of KB depths: each row gives KB values with one bounds check, and the
            // panel gets KB whole rows (a plain per-element loop checked every read and
            // dominated model load).
            const KB: usize = 8;
            let mut tile = [[0.0f32; NR]; KB];
            let blocks = k / KB;
            for b in 0..blocks {
                let k0 = b * KB;
                for (jj, row) in rows[..cols].iter().enumerate() {
                    let src: &[f32; KB] = row[k0..k0 + KB].try_into().expect("KB values");
                    for (t, &v) in tile.iter_mut().zip(src) {
                        t[jj] = v;
                    }
                }
                for (t, dst) in tile
                    .iter()
                    .zip(panel[k0 * w..(k0 + KB) * w].chunks_exact_mut(w))
                {
                    dst[..cols].copy_from_slice(&t[..cols]);
                }
            }
            for (kk, dst) in panel.chunks_exact_mut(w).enumerate().skip(blocks * KB) {
                for (d, row) in dst.iter_mut().zip(&rows[..cols]) {
                    *d = row[kk];
                }
            }
        }
        me
    }

    /// Zeroed storage for B packed as `k × n`, to be filled through [`PackedB::at`] by a
    /// caller that computes B's values (Winograd's filter transform) rather than copying them.
    pub(crate) fn empty(k: usize, n: usize, isa: Isa) -> Self {
        let mut me = PackedB {
            k,
            n,
            isa: isa.or_generic().float_tier(),
            data: Vec::new(),
            pair_run: 0,
        };
        let width: usize = (0..me.panels()).map(|p| me.panel(p).1).sum();
        me.data = vec![0.0f32; width * k];
        crate::buffer::advise_huge_pages(me.data.as_ptr().cast(), me.data.len() * 4);
        me
    }

    /// Stores the narrow last panel (at most 8 columns) in pairs of depths, for the AVX2
    /// tier's paired tile (`x86::gemm::tile_pair`), when A is read in runs of `run` depths
    /// that fit one K slice: per run, `⌈run/2⌉` rows of 16 floats, row `q` holding depths
    /// `2q` and `2q+1` of the run (zero past its end) of columns 0, 1, 4, 5, then 2, 3, 6, 7,
    /// interleaved. Otherwise (other tiers, runs too short to gain or cut into pieces, no
    /// narrow panel) B stays as it is.
    fn paired(mut self, run: usize) -> Self {
        let narrow = self.n % NR;
        let pays = self.isa == Isa::Avx2
            && (1..=NR_HALF).contains(&narrow)
            && (PAIR_MIN_RUN..KC).contains(&run)
            && self.k > 0
            && self.k % run == 0;
        if !pays {
            return self;
        }
        let j0 = self.n - narrow;
        let plain = self.data.split_off(j0 * self.k);
        let half = run.div_ceil(2);
        let mut pairs = vec![0.0f32; self.k / run * half * NR];
        for (t, dst) in pairs.chunks_exact_mut(half * NR).enumerate() {
            for d in 0..run {
                let src = &plain[(t * run + d) * NR_HALF..][..narrow];
                let row = &mut dst[d / 2 * NR..][..NR];
                for (&col, &v) in PAIR_COLUMNS.iter().zip(src) {
                    let (vector, slot) = (col / 4, col % 4);
                    row[vector * NR_HALF + 2 * slot + d % 2] = v;
                }
            }
        }
        self.data.extend_from_slice(&pairs);
        self.pair_run = run;
        self
    }

    fn pack(k: usize, n: usize, isa: Isa, get: impl Fn(usize, usize) -> f32) -> Self {
        let mut me = Self::empty(k, n, isa);
        for p in 0..me.panels() {
            let (j0, w) = me.panel(p);
            let cols = w.min(n - j0);
            let panel = &mut me.data[j0 * k..j0 * k + w * k];
            for (kk, row) in panel.chunks_exact_mut(w).enumerate() {
                for (jj, v) in row[..cols].iter_mut().enumerate() {
                    *v = get(kk, j0 + jj);
                }
            }
        }
        me
    }

    /// Where `B[kk][j]` is stored (`kk < k`, `j < n`): panels hold their columns side by side,
    /// one row of the panel per depth.
    pub(crate) fn at(&self, kk: usize, j: usize) -> usize {
        debug_assert_eq!(self.pair_run, 0, "a paired panel has another layout");
        let (j0, w) = self.panel(j / NR);
        j0 * self.k + kk * w + (j - j0)
    }

    /// The packed values, for filling storage made by [`PackedB::empty`].
    pub(crate) fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Depth (rows of B).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Width (columns of B, i.e. output channels / units).
    pub fn n(&self) -> usize {
        self.n
    }

    /// The kernel tier this packing runs with.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Bytes held by the packed copy (persistent memory of the op).
    pub fn byte_size(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }

    pub(crate) fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// First column and stored width of panel `p`. Every panel before the last is full, so
    /// panel `p` starts at float `j0·k` of `data`.
    fn panel(&self, p: usize) -> (usize, usize) {
        let j0 = p * NR;
        let w = if self.n - j0 <= NR_HALF { NR_HALF } else { NR };
        (j0, w)
    }
}

/// Rows per register tile of a tier for panels `w` columns wide. Narrow panels take twice
/// the rows, so that they keep as many independent accumulators (enough to cover the latency
/// of a multiply-add) as wide ones.
pub(crate) fn tile_rows(isa: Isa, w: usize) -> usize {
    let wide = match isa {
        Isa::Avx2 | Isa::Neon | Isa::NeonDot => 6,
        // x86-64 without AVX has 16 xmm registers: a 3×16 tile (12 accumulators) avoids
        // spills; other targets (aarch64: 32 registers) take 4.
        Isa::Generic => {
            if cfg!(target_arch = "x86_64") {
                3
            } else {
                4
            }
        }
    };
    match (isa, w == NR) {
        (_, true) => wide,
        (Isa::Avx2, false) => NARROW_AVX2_ROWS,
        (_, false) => 2 * wide,
    }
}

const NARROW_AVX2_ROWS: usize = 8;

/// Most rows of any tile of a tier (a multiple of every tile height).
const MAX_TILE_ROWS: usize = 12;

/// `C = clamp(A·B + bias)` for `m` rows, in parallel when `threads > 1`.
///
/// - `a`: row `i` of A is `a[i·lda .. i·lda + K]`; requires `lda >= K` and
///   `a.len() >= (m-1)·lda + K` when `m > 0`.
/// - `bias`: `None`, or at least `N` values.
/// - `c`: row-major `[m][N]`, `c.len() >= m·N`.
///
/// Violated preconditions panic (they are caller bugs, never model-file conditions).
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB,
    bias: Option<&[f32]>,
    clamp: Clamp,
    c: &mut [f32],
    threads: usize,
) {
    gemm_f32_with(a, lda, m, b, bias, clamp, c, threads, None);
}

/// [`gemm_f32`] with a fused residual ADD applied to each block as it is finished.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_f32_with(
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB,
    bias: Option<&[f32]>,
    clamp: Clamp,
    c: &mut [f32],
    threads: usize,
    residual: Option<&Residual>,
) {
    let (k, n) = (b.k, b.n);
    assert!(lda >= k, "lda < K");
    assert!(
        residual.is_none_or(|r| r.data.len() >= m * n),
        "residual too short"
    );
    assert!(m == 0 || a.len() >= (m - 1) * lda + k, "A too short");
    assert!(bias.is_none_or(|b| b.len() >= n), "bias too short");
    assert!(c.len() >= m * n, "C too short");
    if m == 0 || n == 0 {
        return;
    }
    let grid = Grid::new(m, b, k, threads);
    let out = SharedOut::new(&mut c[..m * n]);
    parallel::for_each_index(grid.parts(), threads, |part| {
        let (rows, panels) = grid.part(part);
        let rest = if m == 1 {
            // SAFETY: this part's panels of row 0 are its own (the grid's rectangles are
            // disjoint), and `c` holds them (checked above).
            unsafe { gemv_prefix(a, b, panels.clone(), bias, clamp, &out) }
        } else {
            panels.clone()
        };
        let mut offs = [0usize; MB_ONE_PANEL];
        let rows_per_block = block_rows(&rest, k);
        let mut r0 = rows.start;
        while r0 < rows.end {
            let mb = rows_per_block.min(rows.end - r0);
            for (r, o) in offs[..mb].iter_mut().enumerate() {
                *o = (r0 + r) * lda;
            }
            let blk = BlockA {
                data: a,
                zeros: &[],
                offs: &offs[..mb],
                rows: mb,
                taps: 1,
                tap_len: k,
                // Increasing offsets: the last is the largest.
                bound: Some(TableBound {
                    max: offs[mb - 1],
                    pads: false,
                }),
            };
            // SAFETY: rows `r0..r0+mb` and the columns of `panels` lie inside `c` (checked
            // above: `c` holds m·N floats), and the grid's parts cover disjoint rectangles, so
            // no other part writes these elements.
            unsafe { out.block(&blk, b, rest.clone(), bias, clamp, r0) };
            if let Some(res) = residual {
                // SAFETY: the rectangle this part just wrote, as above.
                unsafe { out.add_residual(res, r0..r0 + mb, panels.clone(), n) };
            }
            r0 += mb;
        }
    });
}

/// Runs the leading whole groups of full panels of `panels` through the tier's
/// matrix-vector kernel, for a product of one row (`a[..K]`) written to row 0 of `out`, and
/// returns the panels left for the tiles. Only the AVX2 tier has one (see `x86::gemm::gemv`);
/// it performs the same operations per element as the tiles.
///
/// # Safety
/// No other thread may access row 0 × the columns of `panels` of `out` during the call;
/// `out` holds `B.n()` floats and `a` at least `K` (checked by the caller).
#[allow(unused_variables)]
unsafe fn gemv_prefix(
    a: &[f32],
    b: &PackedB,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    clamp: Clamp,
    out: &SharedOut,
) -> Range<usize> {
    #[cfg(target_arch = "x86_64")]
    if b.isa == Isa::Avx2 && b.k > 0 {
        use crate::x86::gemm::{gemv, GEMV_PANELS};
        const COLS: usize = NR * GEMV_PANELS;
        let k = b.k;
        // Panels before `n / NR` are full (16 columns stored 16 wide).
        let full = (b.n / NR).min(panels.end).saturating_sub(panels.start);
        let groups = full / GEMV_PANELS;
        let epilogue = bias.is_some() || clamp != Clamp::IDENTITY;
        let zeros = [0.0f32; COLS];
        let x = &a[..k];
        for g in 0..groups {
            let j0 = (panels.start + g * GEMV_PANELS) * NR;
            let bias = bias.map_or(&zeros[..], |v| &v[j0..j0 + COLS]);
            let w = &b.data[j0 * k..(j0 + COLS) * k];
            // SAFETY: the caller's exclusivity covers these columns of row 0; `ptr_mut`
            // checks the bounds.
            let c = unsafe { out.ptr_mut(j0, COLS) };
            // SAFETY: `b.isa` is an available tier (PackedB holds only those); `x` holds K
            // floats, `w` the K×16 floats of each of the four panels (`NR·K` apart), `bias`
            // 64 and `c` 64 writable floats.
            unsafe {
                gemv(
                    x.as_ptr(),
                    k,
                    w.as_ptr(),
                    NR * k,
                    epilogue.then_some((bias.as_ptr(), clamp)),
                    c,
                )
            };
        }
        return panels.start + groups * GEMV_PANELS..panels.end;
    }
    panels
}

/// FULLY_CONNECTED: `output[r][u] = clamp(Σ_k input[r][k]·W[u][k] + bias[u])`, with
/// `weights = PackedB::from_transposed(W, UNITS, K, isa)`.
///
/// Preconditions: `input.len() >= rows·K`, `output.len() >= rows·UNITS`, bias as in
/// [`gemm_f32`].
pub fn fully_connected_f32(
    input: &[f32],
    rows: usize,
    weights: &PackedB,
    bias: Option<&[f32]>,
    clamp: Clamp,
    output: &mut [f32],
    threads: usize,
) {
    gemm_f32(
        input, weights.k, rows, weights, bias, clamp, output, threads,
    );
}

/// How a GEMM of `m` rows is cut into thread parts: `row_parts × col_parts` rectangles of
/// rows and whole panels, as even as possible (tiles are balanced inside each part, so a
/// part's row count need not be a multiple of the tile height).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    m: usize,
    panels: usize,
    row_parts: usize,
    col_parts: usize,
}

impl Grid {
    /// Plans the parts for `threads` threads ([`parallel::target_parts`] of them when the
    /// work is large enough). Small images with many channels (the last layers of a CNN, and
    /// layers with more channels than pixels and weights beyond L2) split their panels, which
    /// gives each part its own share of the weights to stream; everything else splits rows.
    pub(crate) fn new(m: usize, b: &PackedB, k: usize, threads: usize) -> Grid {
        let panels = b.panels();
        // With few rows the weights, each read once from memory, cost more than the
        // multiply-adds: a fully connected layer on one input row is a matrix-vector product
        // bound by memory bandwidth, which a second core adds to. Count each weight as
        // `STREAMED_WEIGHT_MACS` rows' worth of work.
        let rows = m.max(STREAMED_WEIGHT_MACS);
        let work = rows.saturating_mul(b.n).saturating_mul(k.max(1));
        let want = parallel::target_parts(threads)
            .min(work / parallel::MIN_MACS_PER_PART)
            .max(1);
        let mut g = Grid {
            m,
            panels,
            row_parts: 1,
            col_parts: 1,
        };
        if want > 1 {
            // Row parts each stream all the weights (once per block of `MB` rows). Weights
            // past half an L2 come from L3 each time, and with more columns than rows they
            // outweigh the rows (K×N against M×K): then each panel part streams only its share.
            let big = b.n >= m && b.k.saturating_mul(b.n) >= L2_HALF_FLOATS;
            if (m <= 2 * MB || big) && panels >= threads {
                g.col_parts = want.min(panels);
            } else {
                g.row_parts = want.min(m.max(1));
            }
        }
        g
    }

    pub(crate) fn parts(&self) -> usize {
        self.row_parts * self.col_parts
    }

    /// Rows and panels of part `i`.
    pub(crate) fn part(&self, i: usize) -> (Range<usize>, Range<usize>) {
        let (ri, ci) = (i / self.col_parts, i % self.col_parts);
        let cut = |j: usize, parts: usize, len: usize| j * len / parts..(j + 1) * len / parts;
        (
            cut(ri, self.row_parts, self.m),
            cut(ci, self.col_parts, self.panels),
        )
    }
}

/// The rows of A for one cache block: row `r`, tap `t` is the run
/// `data[offs[r·taps + t] ..][..tap_len]`, or zeros when that offset is [`PAD`].
pub(crate) struct BlockA<'a> {
    pub data: &'a [f32],
    /// At least `tap_len` zeros when any offset is [`PAD`].
    pub zeros: &'a [f32],
    pub offs: &'a [usize],
    pub rows: usize,
    pub taps: usize,
    pub tap_len: usize,
    /// The largest offset in `offs` (pads aside) and whether any is [`PAD`], when the caller
    /// computed them once for a table it reuses; `None` makes [`SharedOut::block`] scan.
    pub bound: Option<TableBound>,
}

/// What [`BlockA`]'s bounds check needs to know about an offset table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TableBound {
    pub max: usize,
    pub pads: bool,
}

impl TableBound {
    /// Scans `offs`.
    pub(crate) fn of(offs: &[usize]) -> TableBound {
        let (mut max, mut pads) = (0usize, false);
        for &o in offs {
            let pad = o == PAD;
            pads |= pad;
            max = max.max(if pad { 0 } else { o });
        }
        TableBound { max, pads }
    }
}

impl BlockA<'_> {
    /// Checks every offset the tiles will read through, so that the unchecked loads in the
    /// microkernels stay in bounds whatever the caller computed. Costs one vectorized
    /// comparison per row and tap, against `tap_len·N` multiply-adds.
    fn validate(&self) {
        let used = &self.offs[..self.rows * self.taps];
        let TableBound { max, pads } = self.bound.unwrap_or_else(|| TableBound::of(used));
        assert!(
            max.checked_add(self.tap_len)
                .is_some_and(|end| end <= self.data.len()),
            "A offset out of bounds"
        );
        assert!(
            !pads || self.zeros.len() >= self.tap_len,
            "zero run too short"
        );
    }
}

/// The output matrix `[M][N]`, shared by the parts of a [`Grid`] (each writes its own
/// rectangle).
pub(crate) struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: `SharedOut` is only a pointer to floats; the parts that share it write disjoint
// elements (see `block`), which is what makes concurrent use sound.
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    pub(crate) fn new(c: &mut [f32]) -> SharedOut {
        SharedOut {
            ptr: c.as_mut_ptr(),
            len: c.len(),
        }
    }

    /// The elements `start .. start + len` for writing.
    ///
    /// # Safety
    /// No other thread may access those elements while the returned slice lives. (Bounds
    /// are checked here.)
    #[allow(clippy::mut_from_ref)] // exclusivity is the caller's promise, as documented
    pub(crate) unsafe fn slice_mut(&self, start: usize, len: usize) -> &mut [f32] {
        // SAFETY: in bounds (checked by `ptr_mut`); exclusive by the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr_mut(start, len), len) }
    }

    /// The start of the elements `start .. start + len`, for writing some of them through
    /// raw pointers (bounds checked here) where slices of each would cost more than the
    /// writes, or would span elements of other threads.
    ///
    /// # Safety
    /// Only elements that no other thread accesses meanwhile may be written through it.
    pub(crate) unsafe fn ptr_mut(&self, start: usize, len: usize) -> *mut f32 {
        assert!(
            start.checked_add(len).is_some_and(|end| end <= self.len),
            "output range out of bounds"
        );
        // SAFETY: in bounds (asserted).
        unsafe { self.ptr.add(start) }
    }

    /// Applies `res` to rows `rows` × the columns of `panels` (a rectangle a block has just
    /// finished), the row stride being `n` columns.
    ///
    /// # Safety
    /// As for [`SharedOut::block`]: no other thread may access that rectangle meanwhile.
    pub(crate) unsafe fn add_residual(
        &self,
        res: &Residual,
        rows: Range<usize>,
        panels: Range<usize>,
        n: usize,
    ) {
        let (c0, c1) = ((panels.start * NR).min(n), (panels.end * NR).min(n));
        if c0 == 0 && c1 == n {
            // Whole rows: one contiguous run (the common case for narrow layers, whose short
            // rows would otherwise cost a call and a vector tail each).
            let at = rows.start * n;
            // SAFETY: exclusive by the caller's promise; bounds checked by `slice_mut`.
            res.apply(unsafe { self.slice_mut(at, rows.len() * n) }, at);
            return;
        }
        for r in rows {
            let at = r * n + c0;
            // SAFETY: exclusive by the caller's promise; bounds checked by `slice_mut`.
            res.apply(unsafe { self.slice_mut(at, c1 - c0) }, at);
        }
    }

    /// Computes one block of rows `row0 .. row0 + a.rows` of `C = clamp(A·B + bias)`,
    /// restricted to the columns of `panels`. The row stride of C is `B.n()`.
    ///
    /// # Safety
    /// No other thread may access those rows × columns of the output during the call. (Bounds
    /// are checked here.)
    pub(crate) unsafe fn block(
        &self,
        a: &BlockA,
        b: &PackedB,
        panels: Range<usize>,
        bias: Option<&[f32]>,
        clamp: Clamp,
        row0: usize,
    ) {
        let ldc = b.n;
        if a.rows == 0 || panels.is_empty() {
            return;
        }
        assert!(
            (row0 + a.rows - 1) * ldc + b.n <= self.len,
            "output block out of bounds"
        );
        assert!(panels.end <= b.panels(), "panel out of range");
        assert_eq!(a.taps * a.tap_len, b.k, "A depth does not match B");
        assert!(bias.is_none_or(|v| v.len() >= b.n), "bias too short");
        a.validate();
        // SAFETY: the row range is in bounds (asserted above); exclusivity is the caller's
        // promise.
        let c = unsafe { self.ptr.add(row0 * ldc) };
        // SAFETY: A, B, bias and C bounds were all checked above.
        unsafe { run_block(a, b, panels, bias, clamp, c, ldc) };
    }
}

/// One K slice: taps `t0 .. t0+nt`, elements `c0 .. c0+kc` of each.
#[derive(Clone, Copy, Debug, PartialEq)]
struct KSlice {
    t0: usize,
    nt: usize,
    c0: usize,
    kc: usize,
}

/// The K slices of a `taps × tap_len` depth: several whole taps per slice when taps are
/// short, equal pieces of each tap when a tap alone exceeds `KC`.
#[derive(Clone, Copy)]
struct KSlices {
    taps: usize,
    tap_len: usize,
    /// Pieces per tap (long taps) or taps per slice (short taps).
    per: usize,
    long: bool,
}

impl KSlices {
    fn new(taps: usize, tap_len: usize) -> KSlices {
        if tap_len >= KC {
            KSlices {
                taps,
                tap_len,
                per: tap_len.div_ceil(KC),
                long: true,
            }
        } else {
            KSlices {
                taps,
                tap_len,
                per: (KC / tap_len.max(1)).max(1),
                long: false,
            }
        }
    }

    /// One slice of the whole depth of a single tap (the streamed order of [`run_block`]).
    fn whole(tap_len: usize) -> KSlices {
        KSlices {
            taps: 1,
            tap_len,
            per: 1,
            long: true,
        }
    }

    fn count(&self) -> usize {
        if self.long {
            self.taps * self.per
        } else {
            self.taps.div_ceil(self.per)
        }
    }

    fn get(&self, i: usize) -> KSlice {
        if self.long {
            let chunk = self.tap_len.div_ceil(self.per);
            let c0 = (i % self.per) * chunk;
            KSlice {
                t0: i / self.per,
                nt: 1,
                c0,
                kc: chunk.min(self.tap_len - c0),
            }
        } else {
            let t0 = i * self.per;
            KSlice {
                t0,
                nt: self.per.min(self.taps - t0),
                c0: 0,
                kc: self.tap_len,
            }
        }
    }
}

/// Everything one microkernel call needs: `tiles` consecutive `R × W` tiles (`R` rows of the
/// block each, from `offs`; `W` the panel width) over one K slice. One call covers a run of
/// tiles so that the call itself, and loading these arguments, is paid once per panel.
///
/// Row `r` (counting across the tiles), tap `t` reads `kc` floats at
/// `base + offs[r·offs_stride + t] + c0`, or at `zeros + c0` when that offset is [`PAD`]; B is
/// `nt·kc` rows of `W` floats at `b`; C row `r` is `c + r·ldc`, of which `nc <= W` columns are
/// written. `bias` points to `W` floats.
///
/// A call may cover `panels` full panels side by side (see [`TileArgs::panel`]): then each
/// tile runs over all of them, left to right, before the next tile starts.
#[derive(Clone, Copy)]
pub(crate) struct TileArgs {
    pub tiles: usize,
    pub base: *const f32,
    pub zeros: *const f32,
    pub offs: *const usize,
    pub offs_stride: usize,
    pub taps: usize,
    pub c0: usize,
    pub kc: usize,
    pub b: *const f32,
    pub c: *mut f32,
    pub ldc: usize,
    pub nc: usize,
    /// Start from zero rather than from the partial sums parked in C.
    pub first: bool,
    /// Add the bias and clamp (in the last K slice, when there is a bias or a clamp).
    pub last: bool,
    pub bias: *const f32,
    pub clamp: Clamp,
    /// B data the driver will multiply next (`pf_lines` cache lines from `pf`), which a tier
    /// may prefetch, a share before each tile, so that reading it from memory overlaps this
    /// call's multiply-adds. Only a hint: never dereferenced. (Only the x86-64 tier reads it.)
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub pf: *const f32,
    pub pf_lines: usize,
    /// Panels of this call (1, or several of the full width `NR` with no prefetch), each
    /// `b_step` floats of B after the one before, `NR` columns of C to its right, and
    /// `bias_step` floats (`NR`, or 0 for a bias of zeros) further in `bias`.
    pub panels: usize,
    pub b_step: usize,
    pub bias_step: usize,
}

impl TileArgs {
    /// The arguments of panel `q < panels` alone.
    #[inline(always)]
    pub(crate) fn panel(&self, q: usize) -> TileArgs {
        TileArgs {
            b: self.b.wrapping_add(q * self.b_step),
            c: self.c.wrapping_add(q * NR),
            bias: self.bias.wrapping_add(q * self.bias_step),
            panels: 1,
            ..*self
        }
    }

    /// The first float of the run of row `r` of tile `tile`, for tap `t`.
    ///
    /// # Safety
    /// `tile < tiles`, `t < taps` and `r` below the tile's rows; the offsets were validated.
    #[inline(always)]
    pub(crate) unsafe fn row<const R: usize>(&self, tile: usize, t: usize, r: usize) -> *const f32 {
        // SAFETY: the offset table covers `tiles·R` rows of `taps` entries (validated by the
        // driver).
        let o = unsafe { *self.offs.add((tile * R + r) * self.offs_stride + t) };
        // SAFETY: a validated offset plus `c0 + kc <= tap_len` stays inside `data`; the zero
        // run holds at least `tap_len` floats.
        unsafe {
            if o == PAD {
                self.zeros.add(self.c0)
            } else {
                self.base.add(o + self.c0)
            }
        }
    }

    /// The first floats of the runs of all `R` rows of tile `tile`, for tap `t`.
    ///
    /// # Safety
    /// As for [`TileArgs::row`], for every row of the tile.
    #[inline(always)]
    pub(crate) unsafe fn rows<const R: usize>(&self, tile: usize, t: usize) -> [*const f32; R] {
        let mut rows = [std::ptr::null::<f32>(); R];
        for (r, p) in rows.iter_mut().enumerate() {
            // SAFETY: `r < R`, the rest as the caller promises.
            *p = unsafe { self.row::<R>(tile, t, r) };
        }
        rows
    }

    /// Row `r` of tile `tile` of C.
    ///
    /// # Safety
    /// `tile < tiles` and `r` below the tile's rows.
    #[inline(always)]
    pub(crate) unsafe fn c_row<const R: usize>(&self, tile: usize, r: usize) -> *mut f32 {
        // SAFETY: inside the block's rows (caller).
        unsafe { self.c.add((tile * R + r) * self.ldc) }
    }
}

/// A microkernel: computes one tile as described by [`TileArgs`].
type TileFn = unsafe fn(&TileArgs);

/// The microkernel of tier `isa` for `rows` rows (1 ..= tile_rows) and panel width `w`.
fn tile_fn(isa: Isa, rows: usize, w: usize) -> TileFn {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => crate::x86::gemm::tile_fn(rows, w),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => crate::neon::gemm::tile_fn(rows, w),
        _ => generic_tile_fn(rows, w),
    }
}

/// The paired tile of tier `isa` for `rows` rows (1 ..= [`PAIR_ROWS`]). Only the AVX2 tier
/// pairs panels ([`PackedB::paired`]).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn pair_fn(isa: Isa, rows: usize) -> TileFn {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => crate::x86::gemm::pair_fn(rows),
        _ => unreachable!("only the AVX2 tier pairs panels"),
    }
}

/// # Safety
/// All of `a`, `b`, `bias` and the `a.rows × B.n()` region of `c` (row stride `ldc`) are in
/// bounds, `a` validated, `panels` within B, and nothing else accesses the written region.
unsafe fn run_block(
    a: &BlockA,
    b: &PackedB,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    clamp: Clamp,
    c: *mut f32,
    ldc: usize,
) {
    let (k, n) = (b.k, b.n);
    if k == 0 {
        // Empty sum: every output is clamp(0 + bias).
        for r in 0..a.rows {
            for p in panels.clone() {
                let (j0, w) = b.panel(p);
                for j in j0..j0 + w.min(n - j0) {
                    let v = clamp.apply(0.0 + bias.map_or(0.0, |b| b[j]));
                    // SAFETY: row r < rows and column j < N are in bounds (caller).
                    unsafe { *c.add(r * ldc + j) = v };
                }
            }
        }
        return;
    }
    let paired = b.pair_run != 0;
    // The streamed order, for products of a single tap (pointwise layers, Winograd's
    // products): each tile takes the whole depth (its rows of A, at most 24 KiB, stay in L1)
    // across all panels, so B is read from start to end in one stream, which the hardware
    // prefetcher follows, once per tile (a large B in groups of panels, `STREAM_GROUP_B`).
    // In K slices, B's panel stays in L1 for the block's tiles, but the block's rows of A
    // are read again for each panel, from L2 once they outgrow L1, in short runs the
    // prefetcher barely follows; a tap longer than a slice is also cut into separate
    // stretches of B. So streaming pays for a deep tap even with B in L3, and for a block of
    // one tile, which reads B once either way (but in one call rather than one per panel);
    // otherwise only with a B that L2 holds easily. Measured on Zen 3 (paired A/B, and per
    // node in MobileNetV2): K > KC: 14×14×576 → 96 ×0.91, 7×7×960 → 160 ×0.91 (B of 614 KB
    // read nine times from L3); one tile: Winograd 14×14×256 → 256 ×0.92; K <= KC: 14×14×64
    // → 384 ×0.96 (B 98 KB), Winograd 28×28×128 → 128 ×0.94, 56×56×24 → 144 ×0.96, but
    // 7×7×160 → 960 ×1.2 (B 614 KB) and 14×14×96 → 576 ×1.05 in the model (B 221 KB).
    let one_tile = a.rows <= tile_rows(b.isa, NR);
    let stream = !paired
        && a.taps == 1
        && a.tap_len <= STREAM_MAX_K
        && b.data.len()
            <= if a.tap_len > KC || one_tile {
                STREAM_MAX_B
            } else {
                STREAM_MAX_B_SHORT
            }
        && !sliced_only();
    let slices = if stream {
        KSlices::whole(a.tap_len)
    } else {
        KSlices::new(a.taps, a.tap_len)
    };
    let count_slices = slices.count();
    // Without a bias or a clamp the epilogue would only add zeros (which the reference does
    // not do either: it adds a bias only when there is one). Winograd's products have none
    // and a short K: skipping it made a 16×16 layer of 20 → 26 channels 2% faster.
    let epilogue = bias.is_some() || clamp != Clamp::IDENTITY;
    // Microkernels by panel width (narrow, wide) and tile height; a paired narrow panel
    // has its own.
    assert!(
        !paired || a.tap_len == b.pair_run,
        "paired B read in other runs"
    );
    let mr = [
        if paired {
            PAIR_ROWS
        } else {
            tile_rows(b.isa, NR_HALF)
        },
        tile_rows(b.isa, NR),
    ];
    let mut fns: [[TileFn; MAX_TILE_ROWS]; 2] = [[generic_tile::<1, NR>; MAX_TILE_ROWS]; 2];
    for (wi, w) in [NR_HALF, NR].into_iter().enumerate() {
        for (r, f) in fns[wi].iter_mut().enumerate().take(mr[wi]) {
            *f = if paired && w == NR_HALF {
                pair_fn(b.isa, r + 1)
            } else {
                tile_fn(b.isa, r + 1, w)
            };
        }
    }
    // Panels `full_end..` are not full width: only the last panel of B can be narrower.
    let full_end = if panels.end == b.panels() && n % NR != 0 {
        panels.end - 1
    } else {
        panels.end
    };
    let zeros = [0.0f32; NR];
    for si in 0..count_slices {
        let s = slices.get(si);
        let mut p = panels.start;
        while p < panels.end {
            let (j0, w) = b.panel(p);
            let nc = w.min(n - j0);
            // Panels in this call: in the streamed order, the full ones, in groups whose B
            // stays in L2 from the block's first tile to its last (see `STREAM_GROUP_B`).
            let np = if stream && p < full_end {
                let left = full_end - p;
                if one_tile {
                    left
                } else {
                    left.min((STREAM_GROUP_B / (b.k * NR)).max(1))
                }
            } else {
                1
            };
            let mut pbias = [0.0f32; NR];
            let (bias_at, bias_step) = match bias {
                Some(v) if nc == w => (v[j0..j0 + np * w].as_ptr(), w),
                Some(v) => {
                    pbias[..nc].copy_from_slice(&v[j0..j0 + nc]);
                    (pbias.as_ptr(), 0)
                }
                None => (zeros.as_ptr(), 0),
            };
            let first_b = slice_of(b, s, slices.tap_len, p);
            let bp = &b.data[first_b.start..first_b.end + (np - 1) * b.k * NR];
            let wi = usize::from(w == NR);
            // Rows are shared out evenly between the fewest tiles that hold them (49 rows:
            // four tiles of 6 and five of 5, rather than eight of 6 and a slow one of 1).
            let tiles = a.rows.div_ceil(mr[wi]);
            let (base, extra) = (a.rows / tiles, a.rows % tiles);
            // The next panel's slice of B, to prefetch while these tiles run: only the first
            // tile of a panel reads B from memory (the rest find it in L1), so without this
            // that tile stalls on memory while the memory stays idle during the others.
            // (Not in the streamed order, which reads B in order.)
            let worth = !stream && tiles >= PF_MIN_TILES && b.data.len() >= PF_MIN_FLOATS;
            let (pf, pf_total) = match worth.then(|| next(&slices, &panels, si, p)).flatten() {
                Some((si, p)) => {
                    let next = &b.data[slice_of(b, slices.get(si), slices.tap_len, p)];
                    (next.as_ptr(), next.len().div_ceil(16))
                }
                None => (bp.as_ptr(), 0),
            };
            let mut pf_done = 0;
            // `extra` tiles of `base + 1` rows, then the rest of `base` rows: two calls.
            let mut i = 0;
            for (rows, count) in [(base + 1, extra), (base, tiles - extra)] {
                if count == 0 || rows == 0 {
                    continue;
                }
                let args = TileArgs {
                    tiles: count,
                    base: a.data.as_ptr(),
                    zeros: a.zeros.as_ptr(),
                    // SAFETY: `i·taps + t0` is inside the validated table.
                    offs: unsafe { a.offs.as_ptr().add(i * a.taps + s.t0) },
                    offs_stride: a.taps,
                    taps: s.nt,
                    c0: s.c0,
                    kc: s.kc,
                    b: bp.as_ptr(),
                    // SAFETY: rows i.. and columns j0.. of the block are in bounds (caller).
                    c: unsafe { c.add(i * ldc + j0) },
                    ldc,
                    nc,
                    first: si == 0,
                    last: epilogue && si + 1 == count_slices,
                    bias: bias_at,
                    clamp,
                    pf: pf.wrapping_add(16 * pf_done),
                    pf_lines: if pf_total == 0 {
                        0
                    } else {
                        pf_total * (i + rows * count) / a.rows - pf_done
                    },
                    panels: np,
                    b_step: b.k * NR,
                    bias_step,
                };
                pf_done += args.pf_lines;
                let f = fns[wi][rows - 1];
                // SAFETY: `f` is the tile of `b.isa` for `rows` rows and width `w`; the tier
                // is available (`PackedB` holds only available tiers) and every pointer in
                // `args` covers what the tiles read or write (see `TileArgs`): `np` panels of
                // B in `bp`, `np·w` columns of C and of the bias.
                unsafe { f(&args) };
                i += rows * count;
            }
            p += np;
        }
    }
}

/// Whether a test asked this thread for K slices only (outside tests: never).
#[inline(always)]
fn sliced_only() -> bool {
    #[cfg(test)]
    return tests::sliced_only();
    #[cfg(not(test))]
    false
}

/// Deepest tap (floats) taken whole in the streamed order of [`run_block`]: six rows of A,
/// 24 KiB, fit L1 beside B's stream.
const STREAM_MAX_K: usize = 1024;
/// Largest B (floats) read in the streamed order, once per tile: 2 MiB, which stays in the
/// shared L3 cache rather than coming from memory each time.
const STREAM_MAX_B: usize = 1 << 19;
/// Largest B (floats) streamed when its tap fits one K slice: 128 KiB, a quarter of L2.
const STREAM_MAX_B_SHORT: usize = 1 << 15;
/// Most B (floats) one streamed call covers when the block has several tiles: 128 KiB, so
/// that the part of B the first tile brings in from L3 or memory is still in L2 for the
/// others. Over all of a larger B, every tile reads it from L3, and from memory where the
/// other cores sharing the L3 have evicted it, as they do between invokes of a whole model:
/// in MobileNetV2 (Zen 3, the two versions alternating invoke by invoke, per node) the 7×7
/// layers 960 → 320 and 320 → 1280 (B of 1.2 and 1.6 MB) ran ×0.93, 960 → 160 ×0.96.
/// (A block of one tile reads B once anyway and takes it in one call.)
const STREAM_GROUP_B: usize = 1 << 15;

/// Fewest tiles per panel for which the next panel's B is prefetched: with fewer, B is
/// reused too little for its memory reads to matter, and the hardware prefetcher follows
/// the panels on its own.
const PF_MIN_TILES: usize = 3;
/// Smallest B (floats) whose next panel is prefetched: 128 KiB. Smaller ones stay in cache
/// from one use to the next. (Unit tests prefetch every B, so that the prefetch ranges are
/// computed, and bounds-checked, in all their cases.)
const PF_MIN_FLOATS: usize = if cfg!(test) { 0 } else { 1 << 15 };

/// The elements of `b.data` that K slice `s` (of taps `tap_len` long) of panel `p`
/// multiplies.
#[inline(always)]
fn slice_of(b: &PackedB, s: KSlice, tap_len: usize, p: usize) -> Range<usize> {
    let (j0, w) = b.panel(p);
    if b.pair_run != 0 && w == NR_HALF {
        // Whole runs (`c0 == 0`: paired runs fit one slice) of `⌈run/2⌉` rows of 16.
        let per_run = tap_len.div_ceil(2) * NR;
        let start = j0 * b.k + s.t0 * per_run;
        return start..start + s.nt * per_run;
    }
    let start = j0 * b.k + (s.t0 * tap_len + s.c0) * w;
    start..start + s.nt * s.kc * w
}

/// The (slice, panel) the driver takes after slice `si` of panel `p`: the same slice of the
/// next panel, or the next slice of the first panel; `None` after the last.
fn next(slices: &KSlices, panels: &Range<usize>, si: usize, p: usize) -> Option<(usize, usize)> {
    if p + 1 < panels.end {
        Some((si, p + 1))
    } else if si + 1 < slices.count() {
        Some((si + 1, panels.start))
    } else {
        None
    }
}

fn generic_tile_fn(rows: usize, w: usize) -> TileFn {
    match (rows, w == NR) {
        (1, false) => generic_tile::<1, NR_HALF>,
        (2, false) => generic_tile::<2, NR_HALF>,
        (3, false) => generic_tile::<3, NR_HALF>,
        (4, false) => generic_tile::<4, NR_HALF>,
        (5, false) => generic_tile::<5, NR_HALF>,
        (6, false) => generic_tile::<6, NR_HALF>,
        (7, false) => generic_tile::<7, NR_HALF>,
        (_, false) => generic_tile::<8, NR_HALF>,
        (1, true) => generic_tile::<1, NR>,
        (2, true) => generic_tile::<2, NR>,
        (3, true) => generic_tile::<3, NR>,
        _ => generic_tile::<4, NR>,
    }
}

/// The portable tile: fixed-size arrays with constant indices, which LLVM keeps in vector
/// registers; multiply and add are separate operations, as in the reference.
///
/// # Safety
/// As described by [`TileArgs`].
unsafe fn generic_tile<const R: usize, const W: usize>(t: &TileArgs) {
    for tile in 0..t.tiles {
        for q in 0..t.panels {
            // SAFETY: `tile < tiles`, `q < panels` (TileArgs).
            unsafe { generic_one::<R, W>(&t.panel(q), tile) };
        }
    }
}

/// Tile number `tile` of a [`generic_tile`] call.
///
/// # Safety
/// As described by [`TileArgs`], and `tile < t.tiles`.
#[inline(always)]
unsafe fn generic_one<const R: usize, const W: usize>(t: &TileArgs, tile: usize) {
    let mut acc = [[0.0f32; W]; R];
    if !t.first {
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let mut row = [0.0f32; W];
            // SAFETY: row r of C holds at least `nc` writable floats (TileArgs).
            let src = unsafe { std::slice::from_raw_parts(t.c_row::<R>(tile, r), t.nc) };
            row[..t.nc].copy_from_slice(src);
            *acc_r = row;
        }
    }
    let mut b = t.b;
    for tap in 0..t.taps {
        // SAFETY: tap < taps, tile < tiles (TileArgs).
        let rows = unsafe { t.rows::<R>(tile, tap) };
        for kk in 0..t.kc {
            // SAFETY: B holds `taps·kc` rows of W floats; `[f32; W]` has f32's alignment.
            let bv: &[f32; W] = unsafe { &*(b.add(kk * W) as *const [f32; W]) };
            for (acc_r, p) in acc.iter_mut().zip(&rows) {
                // SAFETY: each run holds `kc` floats.
                let av = unsafe { *p.add(kk) };
                for (acc_v, &b_v) in acc_r.iter_mut().zip(bv) {
                    *acc_v += av * b_v;
                }
            }
        }
        // SAFETY: still inside B (or one past its end after the last tap).
        b = unsafe { b.add(t.kc * W) };
    }
    if t.last {
        // SAFETY: `bias` points to W floats.
        let bias: &[f32; W] = unsafe { &*(t.bias as *const [f32; W]) };
        for acc_r in acc.iter_mut() {
            for (acc_v, &b_v) in acc_r.iter_mut().zip(bias) {
                *acc_v = t.clamp.apply(*acc_v + b_v);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        let row: [f32; W] = *acc_r;
        // SAFETY: row r of C holds at least `nc` writable floats, exclusively ours.
        let dst = unsafe { std::slice::from_raw_parts_mut(t.c_row::<R>(tile, r), t.nc) };
        dst.copy_from_slice(&row[..t.nc]);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Makes [`run_block`] on this thread take the K-sliced order for every product.
        static SLICED_ONLY: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn sliced_only() -> bool {
        SLICED_ONLY.with(Cell::get)
    }

    /// Tiny deterministic generator for test data (xorshift64*).
    pub(crate) struct Rng(pub u64);

    impl Rng {
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        /// Uniform in [-1, 1).
        pub(crate) fn f32(&mut self) -> f32 {
            ((self.next_u64() >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }
        pub(crate) fn vec(&mut self, len: usize) -> Vec<f32> {
            (0..len).map(|_| self.f32()).collect()
        }
    }

    /// The conformance bound: `max|got − want| <= 1e-5 · max(1, max|want|)`.
    pub(crate) fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * scale,
                "{what}: element {i}: got {g}, want {w}"
            );
        }
    }

    pub(crate) fn assert_same_bits(x: &[f32], y: &[f32], what: &str) {
        assert_eq!(x.len(), y.len());
        for (i, (p, q)) in x.iter().zip(y).enumerate() {
            assert_eq!(p.to_bits(), q.to_bits(), "{what}: element {i}: {p} vs {q}");
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn naive(
        a: &[f32],
        lda: usize,
        m: usize,
        wt: &[f32],
        n: usize,
        k: usize,
        bias: Option<&[f32]>,
        clamp: Clamp,
    ) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for kk in 0..k {
                    s += a[i * lda + kk] as f64 * wt[j * k + kk] as f64;
                }
                let v = s as f32 + bias.map_or(0.0, |b| b[j]);
                c[i * n + j] = v.max(clamp.min).min(clamp.max);
            }
        }
        c
    }

    /// A shallow A is cut into blocks of more than `MB` rows (`block_rows`): several such
    /// blocks, the last one partial, at one and at several threads, give the naive product.
    #[test]
    fn shallow_products_in_tall_blocks() {
        let (m, k, n): (usize, usize, usize) = (1300, 27, 40);
        let tall = block_rows(&(0..n.div_ceil(NR)), k);
        assert!(tall > MB && m > 2 * tall && m % tall != 0);
        for isa in Isa::available() {
            let mut rng = Rng(5);
            let a = rng.vec(m * k);
            let wt = rng.vec(n * k);
            let bias = rng.vec(n);
            let packed = PackedB::from_transposed(&wt, n, k, isa);
            let want = naive(&a, k, m, &wt, n, k, Some(&bias), Clamp::RELU);
            for threads in [1, 3] {
                let mut c = vec![f32::NAN; m * n];
                gemm_f32(&a, k, m, &packed, Some(&bias), Clamp::RELU, &mut c, threads);
                assert_close(&c, &want, &format!("{isa} threads={threads}"));
            }
        }
    }

    #[test]
    fn matches_naive_on_odd_shapes_in_every_tier() {
        for isa in Isa::available() {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let dims = [1, 2, 3, 5, 6, 7, 8, 9, 13, 16, 17, 24, 31, 33];
            for case in 0..70 {
                let m = [1, 3, 5, 6, 7, 12, 13, 71, 72, 73, 150][case % 11];
                let n = dims[rng.below(dims.len())] + if case % 4 == 0 { 40 } else { 0 };
                let k = [1, 3, 15, 21, 255, 256, 257, 600][rng.below(8)];
                let lda = k + rng.below(3);
                let a = rng.vec((m - 1) * lda + k);
                let wt = rng.vec(n * k);
                let bias = rng.vec(n);
                let bias = if case % 3 == 0 { None } else { Some(&bias[..]) };
                let clamp = [Clamp::NONE, Clamp::RELU, Clamp::RELU_N1_TO_1][case % 3];
                let packed = PackedB::from_transposed(&wt, n, k, isa);
                assert_eq!(packed.isa(), isa.float_tier());
                let paired = isa == Isa::Avx2 && (PAIR_MIN_RUN..KC).contains(&k);
                let narrow = match n % NR {
                    0 => 0,
                    // A paired panel stores an odd depth's run with a zero pair.
                    1..=8 if paired => k.div_ceil(2) * NR,
                    1..=8 => 8 * k,
                    _ => NR * k,
                };
                assert_eq!(packed.byte_size(), ((n / NR) * NR * k + narrow) * 4);
                let want = naive(&a, lda, m, &wt, n, k, bias, clamp);
                let mut c1 = vec![f32::NAN; m * n];
                gemm_f32(&a, lda, m, &packed, bias, clamp, &mut c1, 1);
                assert_close(&c1, &want, &format!("{isa} gemm m={m} n={n} k={k}"));
                for threads in [2, 3, 5] {
                    let mut ct = vec![f32::NAN; m * n];
                    gemm_f32(&a, lda, m, &packed, bias, clamp, &mut ct, threads);
                    assert_same_bits(&c1, &ct, &format!("{isa} gemm threads={threads}"));
                }
            }
        }
    }

    /// The streamed order (a single tap, see `run_block`) gives the same bits as K
    /// slices: each output sums its products in the same order either way. Full and
    /// partial last panels, with and without a bias, and a part of the panels only (as a
    /// thread part has).
    #[test]
    fn streamed_order_matches_k_slices() {
        for isa in Isa::available() {
            let mut rng = Rng(11);
            let shapes = [
                (13, 600, 48),
                (7, 257, 40),
                (72, 1024, 21),
                (5, 300, 8),
                (50, 100, 64),
                (3, 200, 180),
                // B of 469 KiB in groups of three panels, the last group partial.
                (13, 600, 200),
            ];
            for (m, k, n) in shapes {
                let one_tile = m <= tile_rows(isa.float_tier(), NR);
                assert!(k > KC || one_tile || k * n <= STREAM_MAX_B_SHORT);
                let a = rng.vec(m * k);
                let packed = PackedB::from_transposed(&rng.vec(n * k), n, k, isa);
                let bias = rng.vec(n);
                for (bias, clamp) in [(None, Clamp::RELU), (Some(&bias[..]), Clamp::NONE)] {
                    let run = |sliced: bool, panels: Range<usize>| {
                        SLICED_ONLY.with(|f| f.set(sliced));
                        let mut c = vec![f32::NAN; m * n];
                        let offs: Vec<usize> = (0..m).map(|r| r * k).collect();
                        let blk = BlockA {
                            data: &a,
                            zeros: &[],
                            offs: &offs,
                            rows: m,
                            taps: 1,
                            tap_len: k,
                            bound: None,
                        };
                        // SAFETY: `c` is this call's own.
                        unsafe {
                            SharedOut::new(&mut c).block(&blk, &packed, panels, bias, clamp, 0)
                        };
                        SLICED_ONLY.with(|f| f.set(false));
                        c
                    };
                    let all = 0..packed.panels();
                    let what = format!("{isa} m={m} k={k} n={n}");
                    assert_same_bits(&run(false, all.clone()), &run(true, all), &what);
                    let some = 1.min(packed.panels() - 1)..packed.panels();
                    assert_same_bits(&run(false, some.clone()), &run(true, some), &what);
                }
            }
        }
    }

    /// Every tier's tiles of every height give the same bits for a row: a block computed
    /// with all rows at once equals the rows computed one per call.
    #[test]
    fn edge_tiles_match_full_tiles() {
        for isa in Isa::available() {
            let mut rng = Rng(3);
            for (rows, k, n) in [(MB, 300, 40), (13, 7, 16), (5, 513, 3), (11, 40, 24)] {
                let a = rng.vec(rows * k);
                let w = rng.vec(n * k);
                let bias = rng.vec(n);
                let packed = PackedB::from_transposed(&w, n, k, isa);
                let mut all = vec![0.0; rows * n];
                gemm_f32(&a, k, rows, &packed, Some(&bias), Clamp::NONE, &mut all, 1);
                for r in 0..rows {
                    let mut one = vec![0.0; n];
                    gemm_f32(
                        &a[r * k..],
                        k,
                        1,
                        &packed,
                        Some(&bias),
                        Clamp::NONE,
                        &mut one,
                        1,
                    );
                    assert_same_bits(&all[r * n..(r + 1) * n], &one, &format!("{isa} row {r}"));
                }
            }
        }
    }

    #[test]
    fn row_major_packing_equals_transposed_packing() {
        let mut rng = Rng(7);
        for (k, n) in [(19, 37), (5, 8), (3, 20)] {
            let b = rng.vec(k * n);
            let mut bt = vec![0.0; n * k];
            for kk in 0..k {
                for j in 0..n {
                    bt[j * k + kk] = b[kk * n + j];
                }
            }
            let p1 = PackedB::from_row_major(&b, k, n, Isa::Generic);
            let p2 = PackedB::from_transposed(&bt, n, k, Isa::Generic);
            assert_same_bits(&p1.data, &p2.data, "packing");
            assert_eq!((p1.k(), p1.n()), (k, n));
        }
    }

    #[test]
    fn k_slices_cover_the_depth_in_order() {
        for (taps, tap_len) in [
            (1, 1),
            (9, 3),
            (9, 64),
            (1, 600),
            (9, 512),
            (49, 3),
            (2, 256),
        ] {
            let s = KSlices::new(taps, tap_len);
            let mut next = (0, 0);
            for i in 0..s.count() {
                let sl = s.get(i);
                assert_eq!((sl.t0, sl.c0), next, "{taps}x{tap_len} slice {i}");
                assert!(sl.kc * sl.nt <= KC.max(tap_len) && sl.kc > 0 && sl.nt > 0);
                next = if sl.c0 + sl.kc == tap_len {
                    (sl.t0 + sl.nt, 0)
                } else {
                    (sl.t0, sl.c0 + sl.kc)
                };
            }
            assert_eq!(next, (taps, 0));
        }
    }

    #[test]
    fn grid_parts_tile_the_output() {
        for (m, n, threads) in [(49, 512, 2), (12544, 64, 2), (1, 1000, 3), (100, 20, 4)] {
            let packed = PackedB::from_transposed(&vec![0.0; n], n, 1, Isa::Generic);
            let g = Grid::new(m, &packed, 1, threads);
            let mut seen = vec![0u8; m * packed.panels()];
            for i in 0..g.parts() {
                let (rows, panels) = g.part(i);
                for r in rows {
                    for p in panels.clone() {
                        seen[r * packed.panels() + p] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "m={m} n={n}");
            assert!(g.parts() <= parallel::target_parts(threads));
        }
    }

    #[test]
    fn fully_connected_and_empty_k() {
        for isa in Isa::available() {
            let mut rng = Rng(11);
            let (rows, units, k) = (4, 21, 50);
            let x = rng.vec(rows * k);
            let w = rng.vec(units * k);
            let bias = rng.vec(units);
            let packed = PackedB::from_transposed(&w, units, k, isa);
            let mut out = vec![0.0; rows * units];
            fully_connected_f32(&x, rows, &packed, Some(&bias), Clamp::RELU6, &mut out, 2);
            let want = naive(&x, k, rows, &w, units, k, Some(&bias), Clamp::RELU6);
            assert_close(&out, &want, "fc");

            let empty = PackedB::from_transposed(&[], 3, 0, isa);
            let mut out = vec![9.0; 6];
            gemm_f32(
                &[],
                0,
                2,
                &empty,
                Some(&[1.0, -2.0, 7.0]),
                Clamp::RELU6,
                &mut out,
                1,
            );
            assert_eq!(out, [1.0, 0.0, 6.0, 1.0, 0.0, 6.0]);
        }
    }

    /// NaN and infinities go through the fused epilogue like through `Clamp::apply`.
    #[test]
    fn epilogue_clamps_like_the_reference() {
        for isa in Isa::available() {
            let k = 2;
            let a = [f32::NAN, 1.0, 1e30, 1e30, -0.0, 0.0];
            let w = [1.0, 0.0, 1e30, 0.0, 1.0, 1.0];
            let packed = PackedB::from_transposed(&w, 3, k, isa);
            let mut out = vec![0.0; 9];
            gemm_f32(&a, k, 3, &packed, None, Clamp::NONE, &mut out, 1);
            assert!(out[0].is_nan() && out[1].is_nan() && out[2].is_nan());
            assert_eq!(out[3..6], [1e30, f32::MAX, 2e30]);
            let mut out = vec![0.0; 9];
            gemm_f32(&a, k, 3, &packed, None, Clamp::RELU6, &mut out, 1);
            assert!(out[0].is_nan());
            assert_eq!(out[3..], [6.0, 6.0, 6.0, 0.0, 0.0, 0.0]);
        }
    }

    /// A product of one row (which the AVX2 tier runs through its matrix-vector kernel for
    /// groups of four full panels) gives the same bits as that row computed by the tiles, in
    /// a product of two rows: with and without bias, clamped or not, NaN and zeros of both
    /// signs in A, K over a slice, N with and without a remainder of panels, one and two
    /// threads.
    /// Panels stored in pairs of depths (the AVX2 tier's narrow panels): runs of odd and
    /// even length, one and several K slices (partial sums parked in C between them), padding
    /// taps, every tile height; the results are checked against double precision, and an
    /// infinite last depth of an odd run must not meet a `0·∞` in the zero half of its pair.
    #[test]
    fn paired_panels_match_naive() {
        for isa in Isa::available() {
            let mut rng = Rng(0x5eed);
            for (taps, run) in [(3, 45), (9, 15), (4, 100), (3, 255), (2, 4), (5, 7), (1, 6)] {
                for n in [1, 3, 6, 8, 21, 24] {
                    let (k, rows) = (taps * run, 13);
                    let data = rng.vec(rows * k);
                    let zeros = vec![0.0; run];
                    // Row r reads its own runs, in reverse order, with every fifth a padding tap.
                    let offs: Vec<usize> = (0..rows * taps)
                        .map(|i| match i % 5 {
                            4 => PAD,
                            _ => (i / taps) * k + (taps - 1 - i % taps) * run,
                        })
                        .collect();
                    let wt = rng.vec(n * k);
                    let bias = rng.vec(n);
                    let packed = PackedB::from_transposed_runs(&wt, n, k, run, isa);
                    let pays = isa == Isa::Avx2 && n % NR <= 8 && run >= PAIR_MIN_RUN;
                    assert_eq!(packed.pair_run != 0, pays, "{isa} run {run} n {n}");
                    let a = |r: usize, kk: usize| match offs[r * taps + kk / run] {
                        PAD => 0.0,
                        o => data[o + kk % run] as f64,
                    };
                    let mut want = vec![0.0; rows * n];
                    for r in 0..rows {
                        for j in 0..n {
                            let s: f64 = (0..k).map(|kk| a(r, kk) * wt[j * k + kk] as f64).sum();
                            want[r * n + j] = s as f32 + bias[j];
                        }
                    }
                    let blk = BlockA {
                        data: &data,
                        zeros: &zeros,
                        offs: &offs,
                        rows,
                        taps,
                        tap_len: run,
                        bound: None,
                    };
                    let mut c = vec![f32::NAN; rows * n];
                    let out = SharedOut::new(&mut c);
                    // SAFETY: `c` is this test's own, `rows × n` floats.
                    unsafe {
                        out.block(
                            &blk,
                            &packed,
                            0..packed.panels(),
                            Some(&bias),
                            Clamp::IDENTITY,
                            0,
                        )
                    };
                    assert_close(&c, &want, &format!("{isa} taps {taps} run {run} n {n}"));
                    if run % 2 == 1 {
                        // Row 0's first tap (offset `(taps-1)·run`) ends in an infinity.
                        let mut inf = data.clone();
                        inf[(taps - 1) * run + run - 1] = f32::INFINITY;
                        let blk = BlockA { data: &inf, ..blk };
                        let mut c = vec![0.0; rows * n];
                        let out = SharedOut::new(&mut c);
                        // SAFETY: as above.
                        unsafe {
                            out.block(&blk, &packed, 0..packed.panels(), None, Clamp::IDENTITY, 0)
                        };
                        for j in 0..n {
                            let w = wt[j * k + run - 1];
                            assert_eq!(c[j], f32::INFINITY * w.signum(), "{isa} n {n} column {j}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn one_row_products_match_the_tiles() {
        for isa in Isa::available() {
            let mut rng = Rng(17);
            for (k, n) in [
                (300, 64),
                (7, 200),
                (1280, 1000),
                (1, 130),
                (40, 72),
                (3, 63),
            ] {
                let mut a = rng.vec(k);
                a[0] = -0.0;
                if k > 2 {
                    a[2] = f32::NAN;
                }
                let w = rng.vec(n * k);
                let bias = rng.vec(n);
                let packed = PackedB::from_transposed(&w, n, k, isa);
                let two = [a.clone(), a.clone()].concat();
                for (bias, clamp) in [
                    (None, Clamp::IDENTITY),
                    (None, Clamp::RELU),
                    (Some(&bias[..]), Clamp::NONE),
                    (Some(&bias[..]), Clamp::RELU6),
                ] {
                    let mut tiles = vec![0.0; 2 * n];
                    gemm_f32(&two, k, 2, &packed, bias, clamp, &mut tiles, 1);
                    for threads in [1, 2] {
                        let mut one = vec![f32::NAN; n];
                        gemm_f32(&a, k, 1, &packed, bias, clamp, &mut one, threads);
                        let what = format!("{isa} k={k} n={n} {clamp:?} threads={threads}");
                        assert_same_bits(&tiles[..n], &one, &what);
                    }
                }
            }
        }
    }
}
