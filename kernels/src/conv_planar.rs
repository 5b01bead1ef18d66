//! Float CONV_2D with few output channels (at most 6) at stride 1, output pixels in the vector
//! lanes.
//!
//! The GEMM's register tile for such a layer is one vector of channels wide, so every
//! multiply-add needs its own broadcast of an input value: the loads, not the multiply-adds,
//! set its pace (about 1.3 multiply-adds a cycle on AMD Zen 3 against 2), and 6 channels fill
//! only 6 of 8 lanes. Turned around, a vector holds 16 neighbouring output pixels of one
//! channel: the input is copied, a band of rows at a time, into a zero-padded *planar* form
//! (each row `[C][W]`), where the values the 16 pixels read at one filter tap and input channel are 16 consecutive
//! floats, so a tap costs two loads, one broadcast weight per output channel and two
//! multiply-adds per channel, 12 multiply-adds to 8 loads with 6 channels.
//!
//! A row whose width is not a multiple of 16 ends with a tile that overlaps the one before
//! it; both compute the shared pixels identically. Each output sums its products in the same
//! order (input channel, then filter row, then column) whatever the thread split.

use crate::activation::Residual;
use crate::conv::ConvParams;
use crate::isa::Isa;
use crate::parallel;

/// Output pixels of one tile (two vectors).
const TILE_PX: usize = 16;
/// Most output channels this method takes (one tile of 12 accumulators). With 7 or 8 the
/// GEMM's one-vector tile fills its lanes, and two tiles of 4 channels here were slower than
/// it (AMD Zen 3, 32×32×15 → 8 channels in the CIFAR ResNet: ×1.15).
const MAX_OUT_C: usize = 6;
/// Input channels below which it is used, as for the GEMM's filter-row mode: with more, one
/// GEMM tap already feeds many multiply-adds per broadcast.
const MAX_IN_C: usize = 64;

/// Whether convolution `p` runs by this method in tier `isa`.
pub(crate) fn suits(p: &ConvParams, isa: Isa) -> bool {
    cfg!(target_arch = "x86_64")
        && isa == Isa::Avx2
        && p.stride_h == 1
        && p.stride_w == 1
        && p.dilation_h == 1
        && p.dilation_w == 1
        && (1..=MAX_OUT_C).contains(&p.out_c)
        && (1..MAX_IN_C).contains(&p.in_c)
        && p.kernel_h >= 1
        && p.kernel_w >= 1
        && p.out_w >= TILE_PX
        && !p.is_pointwise()
}

/// A filter packed for the planar tiles: `[in_c][kh][kw][8]`, the output channels in the
/// first lanes and zeros after them.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    w: Vec<f32>,
}

impl Filter {
    /// Packs `filter` (`[out_c][kh][kw][in_c]`) for `p`, which [`suits`].
    pub(crate) fn new(p: &ConvParams, filter: &[f32]) -> Filter {
        let taps = p.kernel_h * p.kernel_w;
        let mut w = vec![0.0; p.in_c * taps * 8];
        for oc in 0..p.out_c {
            for t in 0..taps {
                for c in 0..p.in_c {
                    w[(c * taps + t) * 8 + oc] = filter[(oc * taps + t) * p.in_c + c];
                }
            }
        }
        Filter { w }
    }

    pub(crate) fn byte_size(&self) -> usize {
        self.w.len() * std::mem::size_of::<f32>()
    }
}

/// Floats a band of planar rows aims for: 256 KiB, half an L2 cache. Each thread part copies
/// its input a band at a time, just before the rows that read it; a whole-image copy of a
/// large input ran at memory speed (a quarter of a 128×128×32 → 3 layer's time). Unit tests
/// use a small band, so that their images span several.
const BAND_FLOATS: usize = if cfg!(test) { 1 << 9 } else { 1 << 16 };

/// Output rows per band (at least one), and the band's floats: those rows' windows, `kh - 1`
/// more input rows than output rows, each `in_c × wp`.
fn band(p: &ConvParams) -> (usize, usize) {
    let (_, wp) = p.padded_hw();
    let row = p.in_c * wp;
    let rows = (BAND_FLOATS / row.max(1))
        .saturating_sub(p.kernel_h - 1)
        .clamp(1, p.out_h.max(1));
    (rows, (rows + p.kernel_h - 1) * row)
}

/// Output rows per thread part at least (enough multiply-adds to be worth a part).
fn grain(p: &ConvParams) -> usize {
    let row_macs = p.out_w * p.out_c * p.kernel_h * p.kernel_w * p.in_c;
    parallel::MIN_MACS_PER_PART.div_ceil(row_macs.max(1))
}

/// Scratch floats of [`run`] with `threads` threads: one band per worker.
pub(crate) fn scratch_floats(p: &ConvParams, threads: usize) -> usize {
    band(p).1 * parallel::max_parts(p.batch * p.out_h, grain(p), threads)
}

/// The convolution `p` (which [`suits`]) by this method. Preconditions as for
/// [`crate::conv::conv2d_f32`]; `scratch` holds at least one band (more allow more threads,
/// up to [`scratch_floats`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    p: &ConvParams,
    input: &[f32],
    f: &Filter,
    bias: Option<&[f32]>,
    output: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
    residual: Option<&Residual>,
) {
    let (_, wp) = p.padded_hw();
    // Every tile's reads stay inside its band: the last tile of a row starts at
    // `out_w - 16` and reads up to `kernel_w - 1` columns further.
    assert!(p.out_w >= TILE_PX && wp + 1 >= p.out_w + p.kernel_w);
    let (band_rows, band_len) = band(p);
    assert!(scratch.len() >= band_len, "scratch shorter than one band");
    let mut slots = [0.0f32; 8];
    if let Some(b) = bias {
        slots[..p.out_c].copy_from_slice(&b[..p.out_c]);
    }
    let row_len = p.out_w * p.out_c;
    let in_row = p.in_c * wp;
    parallel::for_each_part_with_scratch(
        &mut output[..p.output_len()],
        row_len,
        grain(p),
        threads,
        scratch,
        band_len,
        |r0, rows, band| {
            let mut rows = rows;
            let mut r = r0;
            while !rows.is_empty() {
                // A band ends with the part or with the image.
                let (b, y) = (r / p.out_h, r % p.out_h);
                let n = band_rows.min(rows.len() / row_len).min(p.out_h - y);
                let band = &mut band[..(n + p.kernel_h - 1) * in_row];
                fill_band(p, input, b, y, wp, band);
                let (now, later) = std::mem::take(&mut rows).split_at_mut(n * row_len);
                for (j, out_row) in now.chunks_exact_mut(row_len).enumerate() {
                    let row = Row {
                        p,
                        wp,
                        src: &band[j * in_row..],
                        w: &f.w,
                        bias: &slots,
                    };
                    // Up to 4 channels: 8 accumulators, still enough to cover the latency
                    // of a multiply-add, and no work on empty lanes.
                    if p.out_c <= 4 {
                        row.run::<4>(out_row);
                    } else {
                        row.run::<6>(out_row);
                    }
                    if let Some(res) = residual {
                        res.apply(out_row, (r + j) * row_len);
                    }
                }
                rows = later;
                r += n;
            }
        },
    );
}

/// One output row.
// Elsewhere than x86-64 the method is never chosen and its tile never reads these.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Row<'a> {
    p: &'a ConvParams,
    wp: usize,
    /// The planar band from the row's first input row on.
    src: &'a [f32],
    w: &'a [f32],
    bias: &'a [f32; 8],
}

impl Row<'_> {
    fn run<const OCT: usize>(&self, out: &mut [f32]) {
        let p = self.p;
        let mut vals = [[0.0f32; TILE_PX]; OCT];
        let mut x0 = 0;
        loop {
            let x = x0.min(p.out_w - TILE_PX);
            self.tile::<OCT>(x, &mut vals);
            for (i, px) in out[x * p.out_c..(x + TILE_PX) * p.out_c]
                .chunks_exact_mut(p.out_c)
                .enumerate()
            {
                for (v, vals) in px.iter_mut().zip(&vals) {
                    *v = vals[i];
                }
            }
            if x0 + TILE_PX >= p.out_w {
                break;
            }
            x0 += TILE_PX;
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn tile<const OCT: usize>(&self, x: usize, vals: &mut [[f32; TILE_PX]; OCT]) {
        let p = self.p;
        let (plane, row) = (self.wp, p.in_c * self.wp);
        // The furthest read (input channel in_c-1, filter row kh-1, column x+kw-1+15) and the
        // weights read, checked here so the tile's raw reads are in bounds.
        let last = (p.in_c - 1) * plane + (p.kernel_h - 1) * row + x + p.kernel_w - 1 + 15;
        assert!(last < self.src.len() && self.w.len() >= p.in_c * p.kernel_h * p.kernel_w * 8);
        let t = crate::x86::conv_planar::Tile {
            src: self.src[x..].as_ptr(),
            plane,
            row,
            in_c: p.in_c,
            kernel_h: p.kernel_h,
            kernel_w: p.kernel_w,
            w: self.w.as_ptr(),
            bias: self.bias.as_ptr(),
        };
        // SAFETY: filters of this method are made only in the AVX2 tier, chosen only on CPUs
        // with AVX2 and FMA; every read lies within `src` and `w` (asserted above).
        unsafe { crate::x86::conv_planar::tile::<OCT>(&t, p.clamp, vals) }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn tile<const OCT: usize>(&self, _: usize, _: &mut [[f32; TILE_PX]; OCT]) {
        unreachable!("planar filters are made only in the AVX2 tier")
    }
}

/// Fills `band` with rows `y0 ..` of image `b` of the padded input in planar form: each row
/// `[C][wp]`, `pad_left` zeros before the values of each channel and zeros after them; rows
/// in the top or bottom padding all zeros. (Rows outermost: an input row fills one contiguous
/// block, and a tile's reads at one filter row are too; a channel-outermost copy of a large
/// image ran slower.)
fn fill_band(p: &ConvParams, input: &[f32], b: usize, y0: usize, wp: usize, band: &mut [f32]) {
    let c = p.in_c;
    let (top, left) = (p.pad_top, p.pad_left);
    for (k, blk) in band.chunks_exact_mut(c * wp).enumerate() {
        // One fill of the row block: filling only the padding took a call per channel.
        blk.fill(0.0);
        let Some(iy) = (y0 + k).checked_sub(top).filter(|&iy| iy < p.in_h) else {
            continue;
        };
        let src = &input[(b * p.in_h + iy) * p.in_w * c..][..p.in_w * c];
        let plane = wp;
        // The last value written, checked so the unchecked writes below stay inside.
        assert!((c - 1) * plane + left + p.in_w <= blk.len());
        let d = blk[left..].as_mut_ptr();
        let scalar = |x: usize| {
            for (ch, &v) in src[x * c..(x + 1) * c].iter().enumerate() {
                // SAFETY: `ch < c` and `x < in_w`: inside `blk` (asserted above).
                unsafe { *d.add(ch * plane + x) = v };
            }
        };
        // SAFETY: the method runs only in the AVX2 tier; it reads `src` and writes the
        // values `scalar` would (in bounds, as asserted).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            crate::x86::conv_planar::transpose_row(src.as_ptr(), p.in_w, c, d, plane, scalar)
        };
        #[cfg(not(target_arch = "x86_64"))]
        (0..p.in_w).for_each(scalar);
    }
}
