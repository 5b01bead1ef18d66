//! Float CONV_2D (NHWC input, filter `[OC, KH, KW, IC]`).
//!
//! The filter is packed once into a [`PackedB`] with `K = KH·KW·IC` and `N = OC`, so a
//! convolution is a GEMM whose A rows are the receptive fields of output pixels:
//! - A 1×1, stride-1, unpadded convolution *is* a GEMM on the input as it lies in memory
//!   (one pixel = one row of `IC` floats).
//! - Everything else is an *indirect* GEMM: for each block of output pixels a small table
//!   gives, per filter tap, the offset of the input pixel the tap reads (or a marker for
//!   padding, which reads a run of zeros). The microkernels multiply straight from the input
//!   through that table, so no receptive field is ever copied (no im2col); only the table,
//!   `taps` offsets per pixel, lives in scratch (see [`PackedConv::scratch_len`]). With few
//!   input channels a tap is a whole filter row of a zero-padded copy of the input instead of
//!   one pixel (see `Mode::Rows`).
//! - In the SIMD tiers, 3×3 stride-1 convolutions run by Winograd's F(2×2, 3×3) instead
//!   (`crate::winograd`): 2.25 times fewer multiply-adds.
//!
//! Padding taps contribute `0·w` terms to the sums. The reference skips them instead; the
//! two agree except for the sign of an exactly-zero sum and for non-finite weights, which are
//! outside the float tolerance contract anyway.

use crate::activation::{Clamp, Residual};
use crate::conv_planar;
use crate::gemm::{self, BlockA, Grid, PackedB, SharedOut, TableBound, MB, PAD};
use crate::isa::Isa;
use crate::parallel;
use crate::winograd;

/// Shapes and options of one CONV_2D. Padding is explicit: the caller turns SAME/VALID into
/// `pad_top`/`pad_left` (the remaining padding at the bottom/right is implied by the shapes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvParams {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub clamp: Clamp,
}

impl ConvParams {
    /// Elements of the input tensor `[batch, in_h, in_w, in_c]`.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.in_c
    }

    /// Elements of the output tensor `[batch, out_h, out_w, out_c]`.
    pub fn output_len(&self) -> usize {
        self.pixels() * self.out_c
    }

    /// Multiply-adds of one evaluation.
    pub fn macs(&self) -> usize {
        self.pixels() * self.out_c * self.k()
    }

    /// Depth of the equivalent GEMM: one receptive field.
    pub(crate) fn k(&self) -> usize {
        self.taps() * self.in_c
    }

    fn taps(&self) -> usize {
        self.kernel_h * self.kernel_w
    }

    /// Output pixels, i.e. GEMM rows.
    fn pixels(&self) -> usize {
        self.batch * self.out_h * self.out_w
    }

    /// True when the input can be used directly as the GEMM's A matrix (1×1, stride 1, no
    /// padding).
    pub fn is_pointwise(&self) -> bool {
        self.kernel_h == 1
            && self.kernel_w == 1
            && self.stride_h == 1
            && self.stride_w == 1
            && self.pad_top == 0
            && self.pad_left == 0
            && self.out_h == self.in_h
            && self.out_w == self.in_w
    }
}

/// A CONV_2D filter packed for [`conv2d_f32`].
#[derive(Clone, Debug)]
pub struct PackedConv {
    p: ConvParams,
    weights: Weights,
    /// One tap's worth of zeros, read by padding taps.
    zeros: Vec<f32>,
    /// The tap table of every output pixel, when small enough to keep (see [`TapTable`]).
    table: Option<TapTable>,
}

/// A direct convolution's tap offsets for all its output pixels (`[pixel][tap]`, as
/// [`Geo::fill`] writes them for a block). They depend only on the shapes, so a layer keeps
/// them from packing on and no invoke rebuilds or rescans them: with few channels, that
/// work was a sixth of a small network's time.
#[derive(Clone, Debug)]
struct TapTable {
    offs: Vec<usize>,
    bound: TableBound,
}

/// Largest tap table kept, in entries (1 MiB). Larger layers (a big image under a wide
/// filter) build each block's table as they go; their many multiply-adds per pixel hide it.
/// Unit tests use a small limit, so that their shapes run both ways.
const MAX_TABLE_ENTRIES: usize = if cfg!(test) { 1 << 8 } else { 1 << 17 };

impl TapTable {
    fn new(p: &ConvParams) -> Option<TapTable> {
        let (taps, _) = p.taps_and_len();
        let len = p.pixels().checked_mul(taps)?;
        if len > MAX_TABLE_ENTRIES || len == 0 {
            return None;
        }
        if p.mode() == Mode::Pointwise {
            return None;
        }
        let geo = Geo::of(p);
        let mut deltas = vec![0; taps];
        geo.deltas(&mut deltas);
        let mut offs = vec![0; len];
        geo.fill(&deltas, 0, &mut offs);
        let bound = TableBound::of(&offs);
        Some(TapTable { offs, bound })
    }
}

#[derive(Clone, Debug)]
enum Weights {
    /// `[K][OC]` in GEMM panels.
    Direct(PackedB),
    /// Transformed for Winograd's F(2×2, 3×3) (see [`crate::winograd`]).
    Winograd(winograd::Filter),
    /// For output pixels in the vector lanes (see `crate::conv_planar`).
    Planar(conv_planar::Filter),
}

impl PackedConv {
    /// Packs a filter `[out_c, kernel_h, kernel_w, in_c]` for the convolution `p` in kernel
    /// tier `isa` (a tier the CPU lacks falls back to [`Isa::Generic`]). The method is chosen
    /// here, once: Winograd's for 3×3 stride-1 layers in the SIMD tiers, else a GEMM.
    /// Precondition: `filter.len() >= out_c·kernel_h·kernel_w·in_c`.
    pub fn new(p: &ConvParams, filter: &[f32], isa: Isa) -> Self {
        let isa = isa.or_generic().float_tier();
        let weights = if winograd::suits(p, isa) {
            Weights::Winograd(winograd::Filter::new(filter, p.out_c, p.in_c, isa))
        } else if conv_planar::suits(p, isa) {
            Weights::Planar(conv_planar::Filter::new(p, filter))
        } else {
            Weights::Direct(PackedB::from_transposed_runs(
                filter,
                p.out_c,
                p.k(),
                p.taps_and_len().1,
                isa,
            ))
        };
        let table = match weights {
            Weights::Direct(_) => TapTable::new(p),
            Weights::Winograd(_) | Weights::Planar(_) => None,
        };
        PackedConv {
            p: *p,
            weights,
            zeros: vec![0.0; p.in_c],
            table,
        }
    }

    /// Bytes held by the packed filter (persistent memory of the op).
    pub fn byte_size(&self) -> usize {
        let w = match &self.weights {
            Weights::Direct(b) => b.byte_size(),
            Weights::Winograd(f) => f.byte_size(),
            Weights::Planar(f) => f.byte_size(),
        };
        w + self.zeros.len() * std::mem::size_of::<f32>()
            + self
                .table
                .as_ref()
                .map_or(0, |t| t.offs.len() * std::mem::size_of::<usize>())
    }

    /// The convolution this filter was packed for.
    pub fn params(&self) -> &ConvParams {
        &self.p
    }

    /// The GEMM operand, when the convolution runs as a GEMM (not by Winograd's method).
    pub(crate) fn gemm(&self) -> Option<&PackedB> {
        match &self.weights {
            Weights::Direct(b) => Some(b),
            Weights::Winograd(_) | Weights::Planar(_) => None,
        }
    }

    /// Whether this convolution runs by Winograd's method.
    pub fn is_winograd(&self) -> bool {
        matches!(self.weights, Weights::Winograd(_))
    }

    /// Scratch [`conv2d_f32`] needs with `threads` threads. Size the buffers with this at
    /// prepare time.
    pub fn scratch_len(&self, threads: usize) -> ScratchLen {
        match &self.weights {
            Weights::Winograd(_) => ScratchLen {
                floats: winograd::scratch_floats(&self.p, threads),
                offsets: 0,
            },
            Weights::Planar(_) => ScratchLen {
                floats: conv_planar::scratch_floats(&self.p, threads),
                offsets: 0,
            },
            Weights::Direct(_) => {
                let mut s = direct_scratch_len(&self.p, threads);
                if self.table.is_some() {
                    s.offsets = 0;
                }
                s
            }
        }
    }
}

/// How a convolution reads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// 1×1, stride 1, no padding: the input is A.
    Pointwise,
    /// Few input channels: one tap per filter *row*, `KW·IC` contiguous floats of a zero-padded
    /// copy of the input (or of the input itself when no window reaches outside it). Longer
    /// runs than one pixel's channels keep the microkernel's inner loop long and its pointer
    /// setup rare, which is what small channel counts (3, 6, 15, ...) need.
    Rows { padded: bool },
    /// One tap per filter position (`IC` floats), padding taps reading a zero run.
    Taps,
}

/// Below this many input channels (and without horizontal dilation) a convolution reads
/// whole filter rows ([`Mode::Rows`]). Above it one tap already feeds 64 or more multiply-add
/// steps, and copying a padded input would cost more than it saves.
const ROWS_MAX_IC: usize = 64;

impl ConvParams {
    fn mode(&self) -> Mode {
        if self.is_pointwise() {
            Mode::Pointwise
        } else if self.dilation_w == 1 && self.in_c < ROWS_MAX_IC {
            let (hp, wp) = self.padded_hw();
            Mode::Rows {
                padded: self.pad_top > 0 || self.pad_left > 0 || hp > self.in_h || wp > self.in_w,
            }
        } else {
            Mode::Taps
        }
    }

    /// Height and width of an input padded so that every window lies inside it.
    pub(crate) fn padded_hw(&self) -> (usize, usize) {
        let reach = |out: usize, stride: usize, k: usize, d: usize| {
            out.saturating_sub(1) * stride + (k - 1) * d + 1
        };
        let hp = (self.in_h + self.pad_top).max(reach(
            self.out_h,
            self.stride_h,
            self.kernel_h,
            self.dilation_h,
        ));
        let wp = (self.in_w + self.pad_left).max(reach(
            self.out_w,
            self.stride_w,
            self.kernel_w,
            self.dilation_w,
        ));
        (hp, wp)
    }

    /// Taps per pixel and floats per tap in the indirect modes.
    fn taps_and_len(&self) -> (usize, usize) {
        match self.mode() {
            Mode::Rows { .. } => (self.kernel_h, self.kernel_w * self.in_c),
            _ => (self.taps(), self.in_c),
        }
    }
}

/// Scratch a convolution needs: `floats` for a padded copy of the input, `offsets` for the
/// tap tables of the thread parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScratchLen {
    pub floats: usize,
    pub offsets: usize,
}

/// Scratch of the direct (GEMM) method.
fn direct_scratch_len(p: &ConvParams, threads: usize) -> ScratchLen {
    let mode = p.mode();
    if mode == Mode::Pointwise || p.pixels() == 0 {
        return ScratchLen::default();
    }
    let (taps, _) = p.taps_and_len();
    let floats = if mode == (Mode::Rows { padded: true }) {
        let (hp, wp) = p.padded_hw();
        p.batch * hp * wp * p.in_c
    } else {
        0
    };
    ScratchLen {
        floats,
        offsets: threads.max(1) * (MB.min(p.pixels()) + 1) * taps,
    }
}

/// CONV_2D: `output = clamp(conv(input, filter) + bias)`.
///
/// Preconditions (checked; a violation panics): `filter` was packed for `p`,
/// `input.len() >= p.input_len()`, `output.len() >= p.output_len()`, `bias` is `None` or
/// holds `out_c` values, `floats.len() >= filter.scratch_len(_).floats`. Scratch shorter
/// than `filter.scratch_len(threads)` only reduces the number of threads used (down to one;
/// less than that panics).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_f32(
    p: &ConvParams,
    input: &[f32],
    filter: &PackedConv,
    bias: Option<&[f32]>,
    output: &mut [f32],
    floats: &mut [f32],
    offsets: &mut [usize],
    threads: usize,
    residual: Option<&Residual>,
) {
    let (m, k, n) = (p.pixels(), p.k(), p.out_c);
    assert!(input.len() >= p.input_len(), "input too short");
    assert!(output.len() >= p.output_len(), "output too short");
    assert!(
        residual.is_none_or(|r| r.data.len() >= p.output_len()),
        "residual too short"
    );
    assert_eq!(*p, filter.p, "filter packed for another convolution");
    if m == 0 || n == 0 {
        return;
    }
    let packed = match &filter.weights {
        Weights::Direct(b) => b,
        Weights::Winograd(f) => {
            return winograd::run(p, input, f, bias, output, floats, threads, residual);
        }
        Weights::Planar(f) => {
            return conv_planar::run(p, input, f, bias, output, floats, threads, residual);
        }
    };
    let mode = p.mode();
    if mode == Mode::Pointwise {
        gemm::gemm_f32_with(
            input, p.in_c, m, packed, bias, p.clamp, output, threads, residual,
        );
        return;
    }
    let data = if mode == (Mode::Rows { padded: true }) {
        let (hp, wp) = p.padded_hw();
        let padded = &mut floats[..p.batch * hp * wp * p.in_c];
        pad_input(p, input, hp, wp, padded, threads);
        &*padded
    } else {
        input
    };
    let geo = Geo::of(p);
    let (taps, tap_len) = p.taps_and_len();
    let grid = Grid::new(m, packed, k, threads);
    let out = SharedOut::new(&mut output[..m * n]);
    if let Some(t) = &filter.table {
        // The kept table: each block reads its slice of it. (Kept apart from the loop below,
        // which fills a table per block: one loop choosing per block ran 1.7% more
        // instructions on the CIFAR ResNet.)
        parallel::for_each_index(grid.parts(), threads, |i| {
            let (rows, panels) = grid.part(i);
            let rows_per_block = gemm::block_rows(&panels, k);
            let mut r0 = rows.start;
            while r0 < rows.end {
                let mb = rows_per_block.min(rows.end - r0);
                let blk = BlockA {
                    data,
                    zeros: &filter.zeros,
                    offs: &t.offs[r0 * taps..(r0 + mb) * taps],
                    rows: mb,
                    taps,
                    tap_len,
                    bound: Some(t.bound),
                };
                // SAFETY: the grid's parts are disjoint rectangles of the output, so this part
                // is the only writer of rows `r0..r0+mb` × `panels`; the table was built for
                // this geometry, and bounds are checked inside against its bound.
                unsafe { out.block(&blk, packed, panels.clone(), bias, p.clamp, r0) };
                if let Some(res) = residual {
                    // SAFETY: the rectangle this part just wrote, as above.
                    unsafe { out.add_residual(res, r0..r0 + mb, panels.clone(), n) };
                }
                r0 += mb;
            }
        });
        return;
    }
    let per_part = (MB.min(m) + 1) * taps;
    assert!(
        offsets.len() >= per_part,
        "offset scratch shorter than one table"
    );
    parallel::for_each_index_with_scratch(grid.parts(), threads, offsets, per_part, |i, piece| {
        let (rows, panels) = grid.part(i);
        let (deltas, table) = piece.split_at_mut(taps);
        geo.deltas(deltas);
        let mut r0 = rows.start;
        while r0 < rows.end {
            let mb = MB.min(rows.end - r0);
            let offs = &mut table[..mb * taps];
            geo.fill(deltas, r0, offs);
            let blk = BlockA {
                data,
                zeros: &filter.zeros,
                offs,
                rows: mb,
                taps,
                tap_len,
                bound: None,
            };
            // SAFETY: the grid's parts are disjoint rectangles of the output, so this part is
            // the only writer of rows `r0..r0+mb` × `panels`; bounds are checked inside.
            unsafe { out.block(&blk, packed, panels.clone(), bias, p.clamp, r0) };
            if let Some(res) = residual {
                // SAFETY: the rectangle this part just wrote, as above.
                unsafe { out.add_residual(res, r0..r0 + mb, panels.clone(), n) };
            }
            r0 += mb;
        }
    });
}

/// Copies the input into `dst`, a `[batch, hp, wp, C]` image with `pad_top` rows and
/// `pad_left` columns of zeros before it and zeros after it.
/// Rows are split over `threads` when the copy is large (a serial copy before every parallel
/// convolution would cap its speed-up).
fn pad_input(p: &ConvParams, input: &[f32], hp: usize, wp: usize, dst: &mut [f32], threads: usize) {
    let c = p.in_c;
    let row_len = wp * c;
    if row_len == 0 {
        return;
    }
    let threads = if dst.len() < MIN_PARALLEL_PAD {
        1
    } else {
        threads
    };
    parallel::for_each_part(dst, row_len, 1, threads, |r0, rows| {
        pad_rows(p, input, hp, wp, r0, rows)
    });
}

/// Below this many floats the padded copy is made on one thread.
const MIN_PARALLEL_PAD: usize = 1 << 16;

/// Rows `r0 ..` (of all images) of [`pad_input`]'s padded image into `dst`.
fn pad_rows(p: &ConvParams, input: &[f32], hp: usize, wp: usize, r0: usize, dst: &mut [f32]) {
    let c = p.in_c;
    let line = p.in_w * c;
    for (i, row) in dst.chunks_exact_mut(wp * c).enumerate() {
        let i = r0 + i;
        let (b, y) = (i / hp, i % hp);
        match y.checked_sub(p.pad_top).filter(|&iy| iy < p.in_h) {
            Some(iy) => {
                let src = (b * p.in_h + iy) * line;
                let (left, rest) = row.split_at_mut(p.pad_left * c);
                left.fill(0.0);
                rest[..line].copy_from_slice(&input[src..src + line]);
                rest[line..].fill(0.0);
            }
            None => row.fill(0.0),
        }
    }
}

/// Where the taps of an output pixel are in the data the microkernels read: a `[batch, h, w,
/// C]` image (the input, or its padded copy shifted by the padding), taps `kh × kw` of `step_y`
/// and `step_x` floats apart, and whether taps can fall outside (then they read zeros).
#[derive(Clone, Copy)]
struct Geo<'p> {
    p: &'p ConvParams,
    h: usize,
    w: usize,
    /// Offset of the window's first tap from the padding corner, in rows and columns.
    pad_top: usize,
    pad_left: usize,
    kh: usize,
    kw: usize,
    dh: usize,
    dw: usize,
}

impl<'p> Geo<'p> {
    /// The geometry of `p`'s indirect mode (not [`Mode::Pointwise`]): filter rows of the
    /// padded copy, of the input itself, or single taps of the input.
    fn of(p: &'p ConvParams) -> Self {
        match p.mode() {
            Mode::Rows { padded: true } => {
                let (hp, wp) = p.padded_hw();
                Geo::rows(p, hp, wp)
            }
            Mode::Rows { padded: false } => Geo::rows(p, p.in_h, p.in_w),
            _ => Geo::taps(p),
        }
    }

    /// One tap per filter row in an image that holds every window.
    fn rows(p: &'p ConvParams, h: usize, w: usize) -> Self {
        Geo {
            p,
            h,
            w,
            pad_top: 0,
            pad_left: 0,
            kh: p.kernel_h,
            kw: 1,
            dh: p.dilation_h,
            dw: 1,
        }
    }

    /// One tap per filter position in the input itself.
    fn taps(p: &'p ConvParams) -> Self {
        Geo {
            p,
            h: p.in_h,
            w: p.in_w,
            pad_top: p.pad_top,
            pad_left: p.pad_left,
            kh: p.kernel_h,
            kw: p.kernel_w,
            dh: p.dilation_h,
            dw: p.dilation_w,
        }
    }

    /// Offset of each tap `(ky, kx)` relative to the tap `(0, 0)` of a window that lies
    /// inside the image.
    fn deltas(&self, deltas: &mut [usize]) {
        let c = self.p.in_c;
        for (t, d) in deltas.iter_mut().enumerate() {
            let (ky, kx) = (t / self.kw, t % self.kw);
            *d = (ky * self.dh * self.w + kx * self.dw) * c;
        }
    }

    /// Writes, for the output pixels `q0, q0+1, ...` (flat index over `[batch, out_h,
    /// out_w]`, one per `taps` entries of `offs`) and each tap `t = ky·kw + kx`, the offset
    /// of the data the tap reads into `offs[r·taps + t]`, or [`PAD`] when it is outside the
    /// image. This runs once per block and thread part, so it avoids divisions: pixel
    /// coordinates advance like an odometer, and a pixel whose whole window is inside gets
    /// its offsets as one vectorizable addition to `deltas`.
    fn fill(&self, deltas: &[usize], q0: usize, offs: &mut [usize]) {
        let p = self.p;
        let (h, w) = (self.h as isize, self.w as isize);
        let span_h = ((self.kh - 1) * self.dh) as isize;
        let span_w = ((self.kw - 1) * self.dw) as isize;
        let (mut ox, mut oy) = (q0 % p.out_w, (q0 / p.out_w) % p.out_h);
        let mut b = q0 / (p.out_w * p.out_h);
        for row in offs.chunks_exact_mut(deltas.len()) {
            let iy0 = (oy * p.stride_h) as isize - self.pad_top as isize;
            let ix0 = (ox * p.stride_w) as isize - self.pad_left as isize;
            if iy0 >= 0 && ix0 >= 0 && iy0 + span_h < h && ix0 + span_w < w {
                // The whole window is inside: both casts are exact.
                let first = ((b * self.h + iy0 as usize) * self.w + ix0 as usize) * p.in_c;
                for (o, d) in row.iter_mut().zip(deltas) {
                    *o = first + d;
                }
            } else {
                for (t, o) in row.iter_mut().enumerate() {
                    let iy = iy0 + ((t / self.kw) * self.dh) as isize;
                    let ix = ix0 + ((t % self.kw) * self.dw) as isize;
                    *o = if iy >= 0 && iy < h && ix >= 0 && ix < w {
                        // Both coordinates are in bounds here, so the value is a valid index.
                        (((b * self.h) as isize + iy) * w + ix) as usize * p.in_c
                    } else {
                        PAD
                    };
                }
            }
            ox += 1;
            if ox == p.out_w {
                ox = 0;
                oy += 1;
                if oy == p.out_h {
                    oy = 0;
                    b += 1;
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gemm::tests::{assert_close, assert_same_bits, Rng};

    /// Direct loops in the reference's order: skip out-of-bounds taps, add bias, clamp.
    fn naive(p: &ConvParams, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let mut out = vec![0.0; p.output_len()];
        for b in 0..p.batch {
            for oy in 0..p.out_h {
                for ox in 0..p.out_w {
                    for oc in 0..p.out_c {
                        let mut s = 0.0f32;
                        for ky in 0..p.kernel_h {
                            for kx in 0..p.kernel_w {
                                let iy = (oy * p.stride_h + ky * p.dilation_h) as isize
                                    - p.pad_top as isize;
                                let ix = (ox * p.stride_w + kx * p.dilation_w) as isize
                                    - p.pad_left as isize;
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
                                    let wv =
                                        w[((oc * p.kernel_h + ky) * p.kernel_w + kx) * p.in_c + c];
                                    s += xv * wv;
                                }
                            }
                        }
                        let v = s + bias.map_or(0.0, |bb| bb[oc]);
                        out[((b * p.out_h + oy) * p.out_w + ox) * p.out_c + oc] =
                            v.max(p.clamp.min).min(p.clamp.max);
                    }
                }
            }
        }
        out
    }

    fn random_params(rng: &mut Rng, case: usize) -> ConvParams {
        let chans = [1, 3, 6, 15, 21, 1, 3, 6, 15, 21, 64];
        let kernel_h = 1 + rng.below(3);
        let kernel_w = 1 + rng.below(4);
        let stride_h = 1 + rng.below(3);
        let stride_w = 1 + rng.below(3);
        let dilation_h = 1 + rng.below(2);
        let dilation_w = 1 + rng.below(2);
        let in_h = 1 + rng.below(12);
        let in_w = 1 + rng.below(12);
        let pad_top = rng.below(3);
        let pad_left = rng.below(3);
        let pad_bottom = rng.below(3);
        let pad_right = rng.below(3);
        let eff_h = (kernel_h - 1) * dilation_h + 1;
        let eff_w = (kernel_w - 1) * dilation_w + 1;
        let out_h = (in_h + pad_top + pad_bottom).saturating_sub(eff_h) / stride_h + 1;
        let out_w = (in_w + pad_left + pad_right).saturating_sub(eff_w) / stride_w + 1;
        ConvParams {
            batch: 1 + rng.below(2),
            in_h,
            in_w,
            in_c: chans[rng.below(chans.len())],
            out_h,
            out_w,
            out_c: chans[rng.below(chans.len())] + if case % 5 == 0 { 17 } else { 0 },
            kernel_h,
            kernel_w,
            stride_h,
            stride_w,
            dilation_h,
            dilation_w,
            pad_top,
            pad_left,
            clamp: [Clamp::NONE, Clamp::RELU, Clamp::RELU6][case % 3],
        }
    }

    /// Checks every available tier against the naive loops, and each tier's results at 1, 2
    /// and 3 threads (and with a short scratch) for identical bits.
    fn check(p: &ConvParams, rng: &mut Rng, what: &str) {
        let x = rng.vec(p.input_len());
        let w = rng.vec(p.out_c * p.kernel_h * p.kernel_w * p.in_c);
        let bias = rng.vec(p.out_c);
        let bias = if p.out_c % 2 == 0 {
            None
        } else {
            Some(&bias[..])
        };
        let want = naive(p, &x, &w, bias);
        for isa in Isa::available() {
            let packed = PackedConv::new(p, &w, isa);
            let mut first: Option<Vec<f32>> = None;
            for (threads, scratch_threads) in [(1, 1), (2, 2), (3, 3), (3, 1)] {
                let len = packed.scratch_len(scratch_threads);
                let mut floats = vec![f32::NAN; len.floats];
                let mut offsets = vec![usize::MAX; len.offsets.max(1)];
                let mut out = vec![f32::NAN; p.output_len()];
                conv2d_f32(
                    p,
                    &x,
                    &packed,
                    bias,
                    &mut out,
                    &mut floats,
                    &mut offsets,
                    threads,
                    None,
                );
                assert_close(&out, &want, &format!("{isa} {what} {p:?}"));
                // A fused residual ADD gives exactly the ADD of the two stored tensors, on
                // every path and split (NaN and infinities included in the residual).
                let mut res = rng.vec(p.output_len());
                if let Some(r) = res.first_mut() {
                    *r = f32::INFINITY;
                }
                if let Some(r) = res.last_mut() {
                    *r = f32::NAN;
                }
                let clamp = [Clamp::NONE, Clamp::RELU6][threads % 2];
                let mut fused = vec![f32::NAN; p.output_len()];
                conv2d_f32(
                    p,
                    &x,
                    &packed,
                    bias,
                    &mut fused,
                    &mut floats,
                    &mut offsets,
                    threads,
                    Some(&Residual { data: &res, clamp }),
                );
                let added: Vec<f32> = out
                    .iter()
                    .zip(&res)
                    .map(|(o, r)| clamp.apply(o + r))
                    .collect();
                assert_same_bits(&added, &fused, &format!("{isa} {what} residual"));
                match &first {
                    None => first = Some(out),
                    Some(f) => assert_same_bits(f, &out, &format!("{isa} conv threads")),
                }
            }
        }
    }

    #[test]
    fn random_convolutions_match_naive() {
        let mut rng = Rng(0x5eed_c0de);
        for case in 0..150 {
            let p = random_params(&mut rng, case);
            check(&p, &mut rng, "random");
        }
    }

    /// A 1×1, stride-1, unpadded convolution of a `[batch, h, w, in_c]` input.
    pub(crate) fn pointwise(
        [batch, h, w, in_c]: [usize; 4],
        out_c: usize,
        clamp: Clamp,
    ) -> ConvParams {
        ConvParams {
            batch,
            in_h: h,
            in_w: w,
            in_c,
            out_h: h,
            out_w: w,
            out_c,
            kernel_h: 1,
            kernel_w: 1,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            clamp,
        }
    }

    /// Stride-1 layers with at most 6 output channels: the planar method in the AVX2 tier
    /// (row widths a multiple of 16 and not, both tile widths, padding, two images).
    #[test]
    fn few_output_channels_planar() {
        let mut rng = Rng(0x91a);
        let cases = [
            // [batch, h, w, in_c], out_c, [kh, kw], [pad_top, pad_left, pad_bottom, pad_right]
            ([1, 32, 32, 15], 6, [3, 3], [1, 1, 1, 1]),
            ([2, 9, 19, 3], 1, [3, 3], [0, 0, 0, 0]),
            ([1, 6, 35, 8], 4, [5, 5], [2, 2, 2, 2]),
            ([1, 7, 16, 2], 5, [1, 3], [0, 1, 0, 1]),
            ([1, 4, 21, 63], 3, [2, 2], [1, 0, 0, 1]),
        ];
        for (i, ([batch, h, w, in_c], out_c, [kh, kw], [pt, pl, pb, pr])) in
            cases.into_iter().enumerate()
        {
            let p = ConvParams {
                out_h: h + pt + pb + 1 - kh,
                out_w: w + pl + pr + 1 - kw,
                kernel_h: kh,
                kernel_w: kw,
                pad_top: pt,
                pad_left: pl,
                ..pointwise(
                    [batch, h, w, in_c],
                    out_c,
                    [Clamp::NONE, Clamp::RELU6][i % 2],
                )
            };
            assert!(conv_planar::suits(&p, Isa::Avx2) == cfg!(target_arch = "x86_64"));
            if Isa::Avx2.is_available() {
                let packed = PackedConv::new(&p, &rng.vec(p.k() * out_c), Isa::Avx2);
                assert!(matches!(packed.weights, Weights::Planar(_)), "{p:?}");
            }
            check(&p, &mut rng, "planar");
        }
    }

    #[test]
    fn pointwise_and_large_blocks() {
        let mut rng = Rng(42);
        // Pointwise (direct GEMM) with several cache blocks and thread parts.
        let mut p = pointwise([2, 9, 11, 21], 35, Clamp::RELU);
        assert_eq!(direct_scratch_len(&p, 4), ScratchLen::default());
        check(&p, &mut rng, "pointwise");
        // 3×3 SAME with K > KC (two K slices) and M spanning several blocks.
        p.in_c = 40;
        p.kernel_h = 3;
        p.kernel_w = 3;
        p.pad_top = 1;
        p.pad_left = 1;
        assert_eq!(p.mode(), Mode::Rows { padded: true });
        assert!(direct_scratch_len(&p, 1).floats > 0);
        check(&p, &mut rng, "3x3 same, filter rows");
        // A stem (7×7 stride 2, 3 channels) whose padded copy is large enough to be made by
        // several threads.
        let stem = ConvParams {
            batch: 1,
            in_h: 150,
            in_w: 150,
            in_c: 3,
            out_h: 75,
            out_w: 75,
            out_c: 8,
            kernel_h: 7,
            kernel_w: 7,
            stride_h: 2,
            stride_w: 2,
            pad_top: 3,
            pad_left: 3,
            ..p
        };
        let (hp, wp) = stem.padded_hw();
        assert!(hp * wp * stem.in_c >= MIN_PARALLEL_PAD);
        check(&stem, &mut rng, "stem, threaded padding");
        // The same with many channels: one tap per filter position, K = 630.
        p.in_c = 70;
        assert_eq!(p.mode(), Mode::Taps);
        let len = direct_scratch_len(&p, 1);
        assert!(len.offsets > 0 && len.floats == 0);
        check(&p, &mut rng, "3x3 same, taps");
        // 1×1 stride 2 (a ResNet shortcut): indirect, one tap per pixel, nothing copied.
        p.kernel_h = 1;
        p.kernel_w = 1;
        p.pad_top = 0;
        p.pad_left = 0;
        p.stride_h = 2;
        p.stride_w = 2;
        p.out_h = 5;
        p.out_w = 6;
        assert_eq!(p.mode(), Mode::Taps);
        check(&p, &mut rng, "1x1 stride 2");
        p.in_c = 7;
        assert_eq!(p.mode(), Mode::Rows { padded: false });
        check(&p, &mut rng, "1x1 stride 2, few channels");
    }
}
