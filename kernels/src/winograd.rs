//! 3×3 stride-1 convolution by Winograd's minimal filtering, F(2×2, 3×3).
//!
//! Each 2×2 block of output pixels (a *tile*) is computed from the 4×4 input patch under it:
//! the patch is transformed to `V = Bᵀ·d·B`, multiplied elementwise (per input/output channel
//! pair, so: 16 independent GEMMs over the channels) by the transformed filter
//! `U = G·g·Gᵀ`, and the 4×4 products are transformed back to `Y = Aᵀ·M·A`. That is 16
//! multiply-adds per tile and channel pair instead of 36: 2.25 times fewer, for a few
//! additions per tile and channel in the transforms.
//!
//! The transforms of F(2×2, 3×3) use only additions and subtractions (and halves in `G`,
//! applied once to the weights, in double precision), so they add little rounding error: about
//! as much as summing the nine taps in another order. It is still a different computation from
//! the reference's, which is why only the SIMD tiers use it and [`Isa::Generic`] keeps the
//! direct convolution.
//!
//! Work goes in blocks of tiles sized so that one block's transformed inputs and products stay
//! in L2. The 16 GEMMs run on the GEMM engine's microkernels, and threads split the tiles, so
//! results do not depend on the thread count.

use crate::activation::{Clamp, Residual};
use crate::conv::ConvParams;
use crate::gemm::{BlockA, PackedB, SharedOut, TableBound, MB};
use crate::isa::Isa;
use crate::parallel;

/// Transformed-domain positions: a 4×4 patch.
const POS: usize = 16;
/// Floats of transformed inputs and products one block may hold (256 KiB, half an L2).
const BLOCK_FLOATS: usize = 1 << 16;
/// Channel counts above which the transformed weights (16 matrices of `IC × OC`) no longer
/// fit the cache next to a useful block of tiles; such layers stay direct.
const MAX_CHANNELS: usize = 256;
/// Channel counts below which the transforms (a few additions per tile and channel) cost more
/// than the multiply-adds they save; such layers stay direct. Measured on AMD Zen 3: 20→26
/// channels gains a quarter, 15→6 loses a fifth.
const MIN_CHANNELS: usize = 16;

/// Output tiles (2×2 pixels each) below which a layer stays direct. Each tile is one row of
/// the 16 transformed GEMMs, and with fewer rows than this their register tiles run mostly
/// empty while the transforms still cost the same per tile. Measured on AMD Zen 3 (per-node
/// A/B, CIFAR ResNet): the 4×4 layers (4 tiles) 22→55 and 28→22 channels ×0.81 and ×0.72
/// direct, 55→22 ×1.03; 7×7 layers (16 tiles) keep Winograd.
const MIN_TILES: usize = 16;

/// Whether a convolution can, and should, run by Winograd's method in tier `isa`.
pub(crate) fn suits(p: &ConvParams, isa: Isa) -> bool {
    isa != Isa::Generic
        && p.kernel_h == 3
        && p.kernel_w == 3
        && p.stride_h == 1
        && p.stride_w == 1
        && p.dilation_h == 1
        && p.dilation_w == 1
        && (MIN_CHANNELS..=MAX_CHANNELS).contains(&p.in_c)
        && (MIN_CHANNELS..=MAX_CHANNELS).contains(&p.out_c)
        && p.out_h.div_ceil(2) * p.out_w.div_ceil(2) >= MIN_TILES
}

/// The filter transformed to `U = G·g·Gᵀ` and packed: one GEMM operand (`IC × OC`) per
/// position of the 4×4 transformed patch.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    u: Vec<PackedB>,
    /// Zeros for patch pixels outside the input (`IC` rounded up to whole vectors) and in
    /// place of a missing bias (`OC`).
    zeros: Vec<f32>,
}

impl Filter {
    /// Transforms a filter `[out_c, 3, 3, in_c]`. Precondition: `filter.len() >= out_c·9·in_c`.
    pub(crate) fn new(filter: &[f32], out_c: usize, in_c: usize, isa: Isa) -> Filter {
        assert!(filter.len() >= out_c * 9 * in_c, "filter too short");
        // One GEMM operand B[ic][oc] per position, written in its packed layout as each
        // value is computed: building plain matrices first and packing them after would write
        // (and fault in) the whole transformed filter twice.
        let mut u: Vec<PackedB> = (0..POS).map(|_| PackedB::empty(in_c, out_c, isa)).collect();
        // A panel's 16 output channels at a time, for one input channel: each value of the
        // transform is then one operation on 16 lanes (which vectorizes), and each position's
        // 16 results are one contiguous store into its packed panel. Per lane it is the same
        // double-precision arithmetic, in the same order, as one value at a time.
        const L: usize = crate::gemm::NR;
        for j0 in (0..out_c).step_by(L) {
            let cols = L.min(out_c - j0);
            for ic in 0..in_c {
                let mut g = [[[0.0f64; L]; 3]; 3];
                for (ky, g_y) in g.iter_mut().enumerate() {
                    for (kx, g_yx) in g_y.iter_mut().enumerate() {
                        for (lane, v) in g_yx[..cols].iter_mut().enumerate() {
                            *v = filter[(((j0 + lane) * 3 + ky) * 3 + kx) * in_c + ic] as f64;
                        }
                    }
                }
                // G·g (4×3), then ·Gᵀ (4×4); G = [[1,0,0],[½,½,½],[½,−½,½],[0,0,1]].
                let mut gg = [[[0.0f64; L]; 3]; 4];
                for kx in 0..3 {
                    for lane in 0..L {
                        let (a, b, c) = (g[0][kx][lane], g[1][kx][lane], g[2][kx][lane]);
                        gg[0][kx][lane] = a;
                        gg[1][kx][lane] = 0.5 * (a + b + c);
                        gg[2][kx][lane] = 0.5 * (a - b + c);
                        gg[3][kx][lane] = c;
                    }
                }
                // Every position's operand has the same shape, so the same slot.
                let at = u[0].at(ic, j0);
                for (i, row) in gg.iter().enumerate() {
                    let mut t = [[0.0f32; L]; 4];
                    for lane in 0..L {
                        let (a, b, c) = (row[0][lane], row[1][lane], row[2][lane]);
                        t[0][lane] = a as f32;
                        t[1][lane] = (0.5 * (a + b + c)) as f32;
                        t[2][lane] = (0.5 * (a - b + c)) as f32;
                        t[3][lane] = c as f32;
                    }
                    for (j, tj) in t.iter().enumerate() {
                        u[4 * i + j].data_mut()[at..at + cols].copy_from_slice(&tj[..cols]);
                    }
                }
            }
        }
        Filter {
            u,
            zeros: vec![0.0; padded(in_c).max(out_c)],
        }
    }

    pub(crate) fn byte_size(&self) -> usize {
        self.u.iter().map(PackedB::byte_size).sum::<usize>() + self.zeros.len() * 4
    }
}

/// `c` rounded up to whole vectors of 8 floats.
fn padded(c: usize) -> usize {
    c.div_ceil(8) * 8
}

/// Tiles per block: as many as fit [`BLOCK_FLOATS`], between one and twelve register tiles
/// of rows for the GEMMs.
fn block_tiles(p: &ConvParams) -> usize {
    let per_tile = POS * (padded(p.in_c) + p.out_c);
    (BLOCK_FLOATS / per_tile.max(1)).clamp(6, MB) / 6 * 6
}

/// Output tiles (2×2 blocks) of the whole batch.
fn tiles(p: &ConvParams) -> (usize, usize, usize) {
    let (th, tw) = (p.out_h.div_ceil(2), p.out_w.div_ceil(2));
    (th, tw, p.batch * th * tw)
}

/// Floats of scratch one thread part needs: transformed inputs (rows padded to whole vectors)
/// and products of one block.
fn part_floats(p: &ConvParams) -> usize {
    POS * block_tiles(p) * (padded(p.in_c) + p.out_c)
}

/// Scratch floats [`run`] needs for `threads` threads.
pub(crate) fn scratch_floats(p: &ConvParams, threads: usize) -> usize {
    threads.max(1) * part_floats(p)
}

/// The convolution `p` (which [`suits`]) by Winograd's method. Preconditions as for
/// [`crate::conv::conv2d_f32`]; `scratch` holds at least one part's floats (more allow more
/// threads, up to [`scratch_floats`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    p: &ConvParams,
    input: &[f32],
    filter: &Filter,
    bias: Option<&[f32]>,
    output: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
    residual: Option<&Residual>,
) {
    let (ic, oc) = (p.in_c, p.out_c);
    let icp = padded(ic);
    assert!(input.len() >= p.input_len() && output.len() >= p.output_len());
    assert!(bias.is_none_or(|b| b.len() >= oc), "bias too short");
    assert!(filter.u.len() == POS && filter.u.iter().all(|u| u.k() == ic && u.n() == oc));
    assert!(filter.zeros.len() >= icp.max(oc));
    let (_, _, total) = tiles(p);
    let per_part = part_floats(p);
    assert!(scratch.len() >= per_part, "scratch shorter than one block");
    let macs = total * POS * ic * oc;
    // Every block streams all 16 transformed filters, whatever its number of tiles, so with
    // threads a part is one block, and the blocks are made a little smaller if need be for
    // their number to be a multiple of the threads: each thread then streams the filters as
    // often as the others, and no part ends in a short block. (Parts of a fixed share of
    // the tiles each ended in a short block: a 28×28×128 layer ran 20 blocks on two threads
    // against 17 on one.)
    let (tb, parts) = if threads > 1 && macs >= 2 * parallel::MIN_MACS_PER_PART {
        let blocks = total.div_ceil(block_tiles(p)).div_ceil(threads) * threads;
        let tb = total.div_ceil(blocks).max(1);
        (tb, total.div_ceil(tb))
    } else {
        (block_tiles(p), 1)
    };
    let bias = bias.unwrap_or(&filter.zeros);
    let out = SharedOut::new(&mut output[..p.output_len()]);
    let isa = filter.u[0].isa();
    parallel::for_each_index_with_scratch(parts, threads, scratch, per_part, |i, piece| {
        let (v, m) = piece.split_at_mut(POS * tb * icp);
        // Part `i` is block `i`, or the whole image in blocks of `tb` without threads.
        let (mut t0, end) = if parts == 1 {
            (0, total)
        } else {
            (i * tb, ((i + 1) * tb).min(total))
        };
        while t0 < end {
            let nb = tb.min(end - t0);
            let mut at = TileIter::new(p, t0);
            for r in 0..nb {
                let d = at.patch(p, input, &filter.zeros);
                // SAFETY: `patch` returns pointers readable for `ic` floats each.
                unsafe { tile_in(isa, &d, ic, &mut v[r * icp..], tb * icp) };
                at.next(p);
            }
            // Row `r` of every position's A is at `r·icp` of that position's matrix: one
            // table for the 16 products (filling one per position cost a 16×16 layer of
            // 20 → 26 channels 1.6%).
            let mut offs = [0usize; MB];
            for (r, o) in offs[..nb].iter_mut().enumerate() {
                *o = r * icp;
            }
            for (pos, u) in filter.u.iter().enumerate() {
                let blk = BlockA {
                    data: &v[pos * tb * icp..],
                    zeros: &[],
                    offs: &offs[..nb],
                    rows: nb,
                    taps: 1,
                    tap_len: ic,
                    // Increasing offsets: the last is the largest.
                    bound: Some(TableBound {
                        max: offs[nb - 1],
                        pads: false,
                    }),
                };
                let prod = SharedOut::new(&mut m[pos * tb * oc..(pos * tb + nb) * oc]);
                // SAFETY: `prod` is this part's own scratch, written by this call only.
                unsafe { prod.block(&blk, u, 0..u.panels(), None, Clamp::IDENTITY, 0) };
            }
            let mut at = TileIter::new(p, t0);
            for r in 0..nb {
                let (b, oy, ox) = (at.b, at.oy, at.ox);
                // The tile's pixels (null past the output's edge), from one bounds check
                // over the rows they span.
                let (rows, cols) = ((p.out_h - oy).min(2), (p.out_w - ox).min(2));
                let first = ((b * p.out_h + oy) * p.out_w + ox) * oc;
                // SAFETY: only the tile's own pixels are written through it (below), and they
                // belong to tile t0+r alone; tiles are split between threads.
                let base = unsafe { out.ptr_mut(first, ((rows - 1) * p.out_w + cols) * oc) };
                let y: [*mut f32; 4] = std::array::from_fn(|k| {
                    let (dy, dx) = (k / 2, k % 2);
                    if dy < rows && dx < cols {
                        base.wrapping_add((dy * p.out_w + dx) * oc)
                    } else {
                        std::ptr::null_mut()
                    }
                });
                // SAFETY: each non-null `y[k]` is a pixel of this tile, inside the range
                // checked above and written by this tile alone.
                unsafe { tile_out(isa, &m[r * oc..], tb * oc, oc, bias, p.clamp, &y) };
                if let Some(res) = residual {
                    // The tile's pixels, one run of up to two per output row.
                    let wide = (p.out_w - ox).min(2);
                    for py in (oy..p.out_h).take(2) {
                        let at = ((b * p.out_h + py) * p.out_w + ox) * oc;
                        // SAFETY: as above, these pixels belong to this tile alone.
                        res.apply(unsafe { out.slice_mut(at, wide * oc) }, at);
                    }
                }
                at.next(p);
            }
            t0 += nb;
        }
    });
}

/// Walks tiles in order (flat over `[batch, th, tw]`) without dividing at each step: the
/// batch, output row and output column of the current tile's top-left pixel.
struct TileIter {
    b: usize,
    oy: usize,
    ox: usize,
}

impl TileIter {
    fn new(p: &ConvParams, t: usize) -> TileIter {
        let (th, tw, _) = tiles(p);
        let rest = t % (th * tw);
        TileIter {
            b: t / (th * tw),
            oy: 2 * (rest / tw),
            ox: 2 * (rest % tw),
        }
    }

    fn next(&mut self, p: &ConvParams) {
        self.ox += 2;
        if self.ox >= p.out_w {
            self.ox = 0;
            self.oy += 2;
            if self.oy >= p.out_h {
                self.oy = 0;
                self.b += 1;
            }
        }
    }

    /// The 16 pixels of the tile's input patch, row-major: the start of `IC` floats of the
    /// input each, or of the zero run for pixels in the padding. Every pointer is readable
    /// for `IC` floats: the input's bounds and the zero run's length are checked here, so
    /// that the transform reads the pointers without checks of its own.
    fn patch(&self, p: &ConvParams, input: &[f32], zeros: &[f32]) -> [*const f32; POS] {
        let ic = p.in_c;
        let iy0 = self.oy as isize - p.pad_top as isize;
        let ix0 = self.ox as isize - p.pad_left as isize;
        let (h, w) = (p.in_h as isize, p.in_w as isize);
        if iy0 >= 0 && ix0 >= 0 && iy0 + 4 <= h && ix0 + 4 <= w {
            // The whole patch is inside: both casts are exact, and one range check covers
            // the 16 pixels (a checked slice per pixel cost a 16×16 layer of 20 → 26
            // channels 3%).
            let first = ((self.b * p.in_h + iy0 as usize) * p.in_w + ix0 as usize) * ic;
            let rows = &input[first..first + (3 * p.in_w + 4) * ic];
            let row = p.in_w * ic;
            return std::array::from_fn(|k| rows[(k / 4) * row + (k % 4) * ic..].as_ptr());
        }
        assert!(zeros.len() >= ic, "zero run too short");
        // A tile on the border: which of the patch's four rows and four columns lie inside
        // the input is decided once each, and one bounds check on the image covers every
        // pixel inside (a checked slice per pixel, with its index arithmetic, was a third of
        // this function's time in the CIFAR ResNet, whose small images are mostly border).
        let image = p.in_h * p.in_w;
        let first = self.b * image * ic;
        let image = &input[first..first + image * ic];
        let rows: [Option<usize>; 4] = std::array::from_fn(|r| {
            let iy = iy0 + r as isize;
            // In bounds, so the cast is exact.
            (iy >= 0 && iy < h).then(|| iy as usize * p.in_w)
        });
        let cols: [Option<usize>; 4] = std::array::from_fn(|c| {
            let ix = ix0 + c as isize;
            (ix >= 0 && ix < w).then_some(ix as usize)
        });
        std::array::from_fn(|k| match (rows[k / 4], cols[k % 4]) {
            // A pixel of the image (`iy < in_h`, `ix < in_w`), so its `ic` floats lie in
            // `image`, which was sliced with a check.
            (Some(row), Some(col)) => image.as_ptr().wrapping_add((row + col) * ic),
            _ => zeros.as_ptr(),
        })
    }
}

/// `V = Bᵀ·d·B` of one tile into `v[k·pos_stride ..]` for each position `k`.
/// Bᵀ = [[1,0,−1,0],[0,1,1,0],[0,−1,1,0],[0,1,0,−1]].
///
/// # Safety
/// Every `d[k]` is readable for `ic` floats (as [`TileIter::patch`] returns them).
unsafe fn tile_in(isa: Isa, d: &[*const f32; POS], ic: usize, v: &mut [f32], pos_stride: usize) {
    let icp = padded(ic);
    assert!(v.len() >= 15 * pos_stride + icp);
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: `Avx2` only reaches here when the CPU has it (tiers are checked when the
        // filter is packed); `d` is readable (caller) and `v`'s length was checked above.
        return unsafe { crate::x86::winograd::input_tile(d, ic, v.as_mut_ptr(), pos_stride) };
    }
    let _ = isa;
    for c in 0..ic {
        // SAFETY: `c < ic`, and each `d[k]` is readable for `ic` floats (caller).
        let x = |k: usize| unsafe { *d[k].add(c) };
        let mut t = [0.0f32; POS];
        for j in 0..4 {
            t[j] = x(j) - x(8 + j);
            t[4 + j] = x(4 + j) + x(8 + j);
            t[8 + j] = x(8 + j) - x(4 + j);
            t[12 + j] = x(4 + j) - x(12 + j);
        }
        for i in 0..4 {
            let a = &t[4 * i..4 * i + 4];
            let out = [a[0] - a[2], a[1] + a[2], a[2] - a[1], a[1] - a[3]];
            for (j, o) in out.into_iter().enumerate() {
                v[(4 * i + j) * pos_stride + c] = o;
            }
        }
    }
}

/// `Y = Aᵀ·M·A` of one tile plus the bias (`oc` values), clamped, from `m[k·pos_stride ..]`
/// into the tile's pixels `y` (null for pixels past the output's edge).
/// Aᵀ = [[1,1,1,0],[0,1,−1,−1]].
///
/// # Safety
/// Each non-null `y[k]` is writable for `oc` floats, which nothing else accesses meanwhile.
unsafe fn tile_out(
    isa: Isa,
    m: &[f32],
    pos_stride: usize,
    oc: usize,
    bias: &[f32],
    clamp: Clamp,
    y: &[*mut f32; 4],
) {
    assert!(m.len() >= 15 * pos_stride + oc && bias.len() >= oc);
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: as in `tile_in`; M and the bias were checked just above, the pixels are
        // the caller's.
        return unsafe {
            crate::x86::winograd::output_tile(m.as_ptr(), pos_stride, oc, bias.as_ptr(), clamp, y)
        };
    }
    let _ = isa;
    for c in 0..oc {
        let x = |k: usize| m[k * pos_stride + c];
        for i in 0..2 {
            // Row i of Aᵀ·M, then the two columns of ·A.
            let s: [f32; 4] = std::array::from_fn(|j| {
                if i == 0 {
                    x(j) + x(4 + j) + x(8 + j)
                } else {
                    x(4 + j) - x(8 + j) - x(12 + j)
                }
            });
            let out = [s[0] + s[1] + s[2] + bias[c], s[1] - s[2] - s[3] + bias[c]];
            for (j, o) in out.into_iter().enumerate() {
                let dst = y[2 * i + j];
                if !dst.is_null() {
                    // SAFETY: `c < oc`, and a non-null pixel is writable for `oc` floats.
                    unsafe { *dst.add(c) = clamp.apply(o) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::{assert_same_bits, Rng};

    fn params(hw: (usize, usize), ic: usize, oc: usize, pad: (usize, usize)) -> ConvParams {
        let (in_h, in_w) = hw;
        ConvParams {
            batch: 2,
            in_h,
            in_w,
            in_c: ic,
            out_h: in_h + 2 * pad.0 - 2,
            out_w: in_w + 2 * pad.1 - 2,
            out_c: oc,
            kernel_h: 3,
            kernel_w: 3,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: pad.0,
            pad_left: pad.1,
            clamp: Clamp::RELU6,
        }
    }

    /// Direct convolution in double precision: the exact result to within f64 rounding.
    fn exact(p: &ConvParams, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; p.output_len()];
        for b in 0..p.batch {
            for oy in 0..p.out_h {
                for ox in 0..p.out_w {
                    for oc in 0..p.out_c {
                        let mut s = 0.0f64;
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let iy = (oy + ky) as isize - p.pad_top as isize;
                                let ix = (ox + kx) as isize - p.pad_left as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= p.in_h as isize
                                    || ix >= p.in_w as isize
                                {
                                    continue;
                                }
                                for c in 0..p.in_c {
                                    let xv = x[((b * p.in_h + iy as usize) * p.in_w + ix as usize)
                                        * p.in_c
                                        + c];
                                    s +=
                                        xv as f64 * w[((oc * 3 + ky) * 3 + kx) * p.in_c + c] as f64;
                                }
                            }
                        }
                        out[((b * p.out_h + oy) * p.out_w + ox) * p.out_c + oc] =
                            p.clamp.apply((s + bias[oc] as f64) as f32);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_exact_convolution_and_is_thread_independent() {
        let mut rng = Rng(0x3141_5926);
        // Odd sizes (partial tiles), VALID and SAME padding, channel tails, several blocks.
        for (hw, ic, oc, pad) in [
            ((7, 9), 16, 16, (1, 1)),
            ((8, 8), 17, 21, (1, 1)),
            ((10, 9), 16, 24, (0, 0)),
            ((13, 12), 19, 40, (1, 0)),
            ((20, 19), 33, 17, (1, 1)),
        ] {
            let p = params(hw, ic, oc, pad);
            assert!(
                p.out_h.div_ceil(2) * p.out_w.div_ceil(2) >= MIN_TILES,
                "{p:?}"
            );
            for isa in Isa::available().into_iter().filter(|&i| suits(&p, i)) {
                let x = rng.vec(p.input_len());
                let w = rng.vec(oc * 9 * ic);
                let bias = rng.vec(oc);
                let want = exact(&p, &x, &w, &bias);
                let f = Filter::new(&w, oc, ic, isa);
                let mut first: Option<Vec<f32>> = None;
                for threads in [1, 2, 3] {
                    let mut scratch = vec![f32::NAN; scratch_floats(&p, threads)];
                    let mut out = vec![f32::NAN; p.output_len()];
                    run(
                        &p,
                        &x,
                        &f,
                        Some(&bias),
                        &mut out,
                        &mut scratch,
                        threads,
                        None,
                    );
                    // The same bound as the direct kernels, against the exact result.
                    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                    for (i, (g, e)) in out.iter().zip(&want).enumerate() {
                        assert!(
                            (g - e).abs() <= 1e-5 * scale,
                            "{isa} {p:?} [{i}]: {g} vs {e}"
                        );
                    }
                    match &first {
                        None => first = Some(out),
                        Some(f) => assert_same_bits(f, &out, "winograd threads"),
                    }
                }
            }
        }
    }

    #[test]
    fn only_simd_tiers_and_3x3_stride_1() {
        let p = params((8, 8), 16, 16, (1, 1));
        assert!(!suits(&p, Isa::Generic));
        let mut q = p;
        q.stride_h = 2;
        assert!(Isa::available().into_iter().all(|i| !suits(&q, i)));
        q = p;
        q.in_c = 3;
        assert!(Isa::available().into_iter().all(|i| !suits(&q, i)));
        q = p;
        q.out_c = MAX_CHANNELS + 1;
        assert!(Isa::available().into_iter().all(|i| !suits(&q, i)));
        // 6×6 outputs are 9 tiles; 7×7 are 16.
        let small = params((6, 6), 16, 16, (1, 1));
        assert!(Isa::available().into_iter().all(|i| !suits(&small, i)));
        let seven = params((7, 7), 16, 16, (1, 1));
        assert!(
            Isa::available().into_iter().any(|i| i != Isa::Generic)
                == Isa::available().into_iter().any(|i| suits(&seven, i))
        );
    }
}
