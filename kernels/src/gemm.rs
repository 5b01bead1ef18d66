//! Float matrix multiply `C[M×N] = A[M×K]·B[K×N] + bias`, then a clamp.
//!
//! B is a constant (weights), so it is packed once, at prepare time, into [`PackedB`]: column
//! panels of [`NR`] columns, each stored `[K][NR]` (the last panel zero-padded). A is read in
//! place through a row stride. The inner loop is an `MR×NR` register tile written with
//! fixed-size arrays so that LLVM keeps the accumulators in vector registers.
//!
//! Loop nest for a block of at most `MB` (72) rows of A: K in slices of `KC`, then panels, then
//! `MR`-row tiles. One `KC×NR` slice of a panel (16 KiB) stays in L1 while every row tile of
//! the block uses it, and the `MB×KC` slice of A stays in L2 across panels. Partial sums are
//! parked in C between K slices; storing and reloading an f32 is exact, so each element is
//! still the plain sequential sum `((0 + a0·b0) + a1·b1) + ...` in K order, plus the bias, then
//! the clamp: the same order as TFLite's reference kernels. Edge tiles (fewer rows, or a
//! zero-padded panel) use the same per-element arithmetic, and work is split over rows only,
//! so results do not depend on the thread count or on where part boundaries fall.
//!
//! Instruction set tiers: the same portable code is compiled twice, once for the baseline
//! target and once with AVX2 enabled (chosen at run time). Neither uses FMA, so both give
//! identical bits. A future tier that fuses multiply-adds must use them in *every* tile,
//! edge tiles included, to keep results independent of the thread count.

use crate::activation::Clamp;
use crate::parallel;

/// Columns per packed panel of B.
pub const NR: usize = 16;
/// Depth of one K slice (see module docs).
const KC: usize = 256;
/// Rows of A processed as one cache block. Also the im2col block size in convolution.
pub(crate) const MB: usize = 72;
/// Rows per tile of the baseline build: x86-64 without AVX2 has only 16 xmm registers, so a
/// 3×16 tile (12 accumulators) avoids spills; other targets (aarch64: 32 registers) take 4.
const PORTABLE_MR: usize = if cfg!(target_arch = "x86_64") { 3 } else { 4 };
/// Minimum multiply-adds per thread part: below this, threading costs more than it saves.
/// Unit tests use 1 so that even small cases are split and thread-count independence is
/// really exercised.
const MIN_MACS_PER_PART: usize = if cfg!(test) { 1 } else { 1 << 16 };

/// B packed into column panels: `data[p][k][j]` holds `B[k][p·NR + j]`, zero past column `n`.
#[derive(Clone, Debug)]
pub struct PackedB {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedB {
    /// Packs a row-major `B[k][n]`. Precondition: `b.len() >= k·n`.
    pub fn from_row_major(b: &[f32], k: usize, n: usize) -> Self {
        debug_assert!(b.len() >= k * n);
        Self::pack(k, n, |kk, j| b[kk * n + j])
    }

    /// Packs B from its transpose, a row-major `Bt[n][k]`: the layout of FULLY_CONNECTED
    /// weights `[UNITS, K]` and of CONV_2D filters `[OC, KH·KW·IC]`.
    /// Precondition: `bt.len() >= n·k`.
    pub fn from_transposed(bt: &[f32], n: usize, k: usize) -> Self {
        debug_assert!(bt.len() >= n * k);
        Self::pack(k, n, |kk, j| bt[j * k + kk])
    }

    fn pack(k: usize, n: usize, get: impl Fn(usize, usize) -> f32) -> Self {
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0f32; panels * k * NR];
        for (p, panel) in data.chunks_exact_mut((k * NR).max(1)).enumerate() {
            let cols = NR.min(n - p * NR);
            for (kk, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (jj, v) in row[..cols].iter_mut().enumerate() {
                    *v = get(kk, p * NR + jj);
                }
            }
        }
        PackedB { k, n, data }
    }

    /// Depth (rows of B).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Width (columns of B, i.e. output channels / units).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bytes held by the packed copy (persistent memory of the op).
    pub fn byte_size(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }

    fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }
}

/// `C = clamp(A·B + bias)` for `m` rows, in parallel over row blocks when `threads > 1`.
///
/// - `a`: row `i` of A is `a[i·lda .. i·lda + K]`; requires `lda >= K` and
///   `a.len() >= (m-1)·lda + K` when `m > 0`.
/// - `bias`: `None`, or at least `N` values.
/// - `c`: row-major `[m][N]`, `c.len() >= m·N`.
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
    let (k, n) = (b.k, b.n);
    debug_assert!(lda >= k);
    debug_assert!(m == 0 || a.len() >= (m - 1) * lda + k);
    debug_assert!(bias.is_none_or(|b| b.len() >= n));
    debug_assert!(c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    let c = &mut c[..m * n];
    let grain = row_grain(n, k);
    parallel::for_each_part(c, n, grain, threads, |r0, part| {
        let rows = part.len() / n;
        let mut i = 0;
        while i < rows {
            let mb = MB.min(rows - i);
            gemm_block(
                &a[(r0 + i) * lda..],
                lda,
                mb,
                b,
                bias,
                clamp,
                &mut part[i * n..(i + mb) * n],
            );
            i += mb;
        }
    });
}

/// FULLY_CONNECTED: `output[r][u] = clamp(Σ_k input[r][k]·W[u][k] + bias[u])`, with
/// `weights = PackedB::from_transposed(W, UNITS, K)`.
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

/// Row granularity of thread parts: whole register tiles, and enough work per part.
pub(crate) fn row_grain(n: usize, k: usize) -> usize {
    let mr = tile_rows();
    let per_row = (n * k).max(1);
    MIN_MACS_PER_PART.div_ceil(per_row).div_ceil(mr) * mr
}

/// Rows per register tile of the tier in use.
fn tile_rows() -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return 6;
    }
    PORTABLE_MR
}

/// One cache block: `rows <= MB` rows of A into `c[..rows·N]` (contiguous, row stride N).
pub(crate) fn gemm_block(
    a: &[f32],
    lda: usize,
    rows: usize,
    b: &PackedB,
    bias: Option<&[f32]>,
    clamp: Clamp,
    c: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), which is the only requirement
        // of this target-feature function; its body is safe code.
        unsafe { block_avx2(a, lda, rows, b, bias, clamp, c) };
        return;
    }
    block_impl::<PORTABLE_MR>(a, lda, rows, b, bias, clamp, c);
}

/// The portable block compiled with AVX2 enabled: 6×16 tiles use 12 of the 16 ymm registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn block_avx2(
    a: &[f32],
    lda: usize,
    rows: usize,
    b: &PackedB,
    bias: Option<&[f32]>,
    clamp: Clamp,
    c: &mut [f32],
) {
    block_impl::<6>(a, lda, rows, b, bias, clamp, c);
}

#[inline(always)]
fn block_impl<const MR: usize>(
    a: &[f32],
    lda: usize,
    rows: usize,
    b: &PackedB,
    bias: Option<&[f32]>,
    clamp: Clamp,
    c: &mut [f32],
) {
    let (k, n) = (b.k, b.n);
    if k == 0 {
        // Empty sum: every output is clamp(0 + bias).
        for row in c[..rows * n].chunks_exact_mut(n) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = clamp.apply(0.0 + bias.map_or(0.0, |b| b[j]));
            }
        }
        return;
    }
    let mut k0 = 0;
    while k0 < k {
        let kc = KC.min(k - k0);
        let ks = KSlice {
            k0,
            kc,
            first: k0 == 0,
            last: k0 + kc == k,
        };
        for p in 0..b.panels() {
            let j0 = p * NR;
            let nc = NR.min(n - j0);
            let mut pbias = [0.0f32; NR];
            if let Some(bias) = bias {
                pbias[..nc].copy_from_slice(&bias[j0..j0 + nc]);
            }
            let start = p * k * NR + k0 * NR;
            let bp = &b.data[start..start + kc * NR];
            let out = Out {
                ldc: n,
                nc,
                bias: &pbias,
                clamp,
            };
            let mut i = 0;
            while i + MR <= rows {
                tile::<MR>(&a[i * lda..], lda, bp, ks, &out, &mut c[i * n + j0..]);
                i += MR;
            }
            if i == rows {
                continue;
            }
            let a = &a[i * lda..];
            let c = &mut c[i * n + j0..];
            match rows - i {
                1 => tile::<1>(a, lda, bp, ks, &out, c),
                2 => tile::<2>(a, lda, bp, ks, &out, c),
                3 => tile::<3>(a, lda, bp, ks, &out, c),
                4 => tile::<4>(a, lda, bp, ks, &out, c),
                5 => tile::<5>(a, lda, bp, ks, &out, c),
                // rows - i < MR <= 6 by the loop above.
                _ => unreachable!(),
            }
        }
        k0 += kc;
    }
}

/// Which slice of K a tile call covers.
#[derive(Clone, Copy)]
struct KSlice {
    k0: usize,
    kc: usize,
    /// Start from zero rather than from the partial sums parked in C.
    first: bool,
    /// Add the bias, clamp, and store final values.
    last: bool,
}

/// Where and how a tile is written.
struct Out<'a> {
    ldc: usize,
    /// Valid columns in this panel (the rest is zero padding).
    nc: usize,
    bias: &'a [f32; NR],
    clamp: Clamp,
}

/// One `R×NR` tile: rows `0..R` of `a` (stride `lda`) times the panel slice `bp`
/// (`kc×NR`), accumulated into `c` (row stride `out.ldc`, `out.nc` columns).
#[inline(always)]
fn tile<const R: usize>(a: &[f32], lda: usize, bp: &[f32], ks: KSlice, out: &Out, c: &mut [f32]) {
    let KSlice {
        k0,
        kc,
        first,
        last,
    } = ks;
    let (ldc, nc) = (out.ldc, out.nc);
    // Every access to `acc` uses constant indices (partial rows go through a separate
    // buffer), so LLVM can keep the whole tile in registers across the K loop.
    let mut acc = [[0.0f32; NR]; R];
    if !first {
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let mut row = [0.0f32; NR];
            row[..nc].copy_from_slice(&c[r * ldc..r * ldc + nc]);
            *acc_r = row;
        }
    }
    let arows: [&[f32]; R] = std::array::from_fn(|r| &a[r * lda + k0..r * lda + k0 + kc]);
    for (kk, bv) in bp.chunks_exact(NR).enumerate().take(kc) {
        for (acc_r, a_r) in acc.iter_mut().zip(arows.iter()) {
            let av = a_r[kk];
            for (acc_v, &b_v) in acc_r.iter_mut().zip(bv) {
                *acc_v += av * b_v;
            }
        }
    }
    if last {
        for acc_r in acc.iter_mut() {
            for (acc_v, &b_v) in acc_r.iter_mut().zip(out.bias) {
                *acc_v = out.clamp.apply(*acc_v + b_v);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        let row: [f32; NR] = *acc_r;
        c[r * ldc..r * ldc + nc].copy_from_slice(&row[..nc]);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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

    #[test]
    fn matches_naive_on_odd_shapes() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let dims = [1, 2, 3, 5, 6, 7, 13, 16, 17, 31, 33];
        for case in 0..60 {
            let m = [1, 3, 5, 6, 7, 12, 13, 71, 72, 73, 150][case % 11];
            let n = dims[rng.below(dims.len())] + if case % 4 == 0 { 40 } else { 0 };
            let k = [1, 3, 15, 21, 255, 256, 257, 600][rng.below(8)];
            let lda = k + rng.below(3);
            let a = rng.vec((m - 1) * lda + k);
            let wt = rng.vec(n * k);
            let bias = rng.vec(n);
            let bias = if case % 3 == 0 { None } else { Some(&bias[..]) };
            let clamp = [Clamp::NONE, Clamp::RELU, Clamp::RELU_N1_TO_1][case % 3];
            let packed = PackedB::from_transposed(&wt, n, k);
            assert_eq!(packed.byte_size(), n.div_ceil(NR) * NR * k * 4);
            let want = naive(&a, lda, m, &wt, n, k, bias, clamp);
            let mut c1 = vec![f32::NAN; m * n];
            gemm_f32(&a, lda, m, &packed, bias, clamp, &mut c1, 1);
            assert_close(&c1, &want, &format!("gemm m={m} n={n} k={k}"));
            for threads in [2, 3] {
                let mut ct = vec![f32::NAN; m * n];
                gemm_f32(&a, lda, m, &packed, bias, clamp, &mut ct, threads);
                assert_same_bits(&c1, &ct, "gemm threads");
            }
        }
    }

    /// The run-time dispatched block and the baseline build must agree bit for bit.
    #[test]
    fn instruction_set_tiers_agree() {
        let mut rng = Rng(3);
        for (rows, k, n) in [(MB, 300, 40), (13, 7, 16), (5, 513, 3)] {
            let a = rng.vec(rows * k);
            let w = rng.vec(n * k);
            let bias = rng.vec(n);
            let packed = PackedB::from_transposed(&w, n, k);
            let mut c1 = vec![0.0; rows * n];
            let mut c2 = vec![0.0; rows * n];
            gemm_block(&a, k, rows, &packed, Some(&bias), Clamp::NONE, &mut c1);
            block_impl::<PORTABLE_MR>(&a, k, rows, &packed, Some(&bias), Clamp::NONE, &mut c2);
            assert_same_bits(&c1, &c2, "tiers");
        }
    }

    #[test]
    fn row_major_packing_equals_transposed_packing() {
        let mut rng = Rng(7);
        let (k, n) = (19, 37);
        let b = rng.vec(k * n);
        let mut bt = vec![0.0; n * k];
        for kk in 0..k {
            for j in 0..n {
                bt[j * k + kk] = b[kk * n + j];
            }
        }
        let p1 = PackedB::from_row_major(&b, k, n);
        let p2 = PackedB::from_transposed(&bt, n, k);
        assert_same_bits(&p1.data, &p2.data, "packing");
        assert_eq!((p1.k(), p1.n()), (k, n));
    }

    #[test]
    fn fully_connected_and_empty_k() {
        let mut rng = Rng(11);
        let (rows, units, k) = (4, 21, 50);
        let x = rng.vec(rows * k);
        let w = rng.vec(units * k);
        let bias = rng.vec(units);
        let packed = PackedB::from_transposed(&w, units, k);
        let mut out = vec![0.0; rows * units];
        fully_connected_f32(&x, rows, &packed, Some(&bias), Clamp::RELU6, &mut out, 2);
        let want = naive(&x, k, rows, &w, units, k, Some(&bias), Clamp::RELU6);
        assert_close(&out, &want, "fc");

        let empty = PackedB::from_transposed(&[], 3, 0);
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
