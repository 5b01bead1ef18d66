//! int8 CONV_2D with weights packed once at preparation for the CPU tier, bit-exact with
//! [`conv2d_i8`] (and so with TFLite's reference kernel) in every tier.
//!
//! [`Isa::Generic`] keeps the filter as it is and runs the scalar [`conv2d_i8`]: the
//! reference path. [`Isa::Avx2`] and [`Isa::Neon`] run an int16 GEMM microkernel
//! (`x86::qconv` with `vpmaddwd`, `neon::qconv` with `smlal`) on the same layout:
//! - at preparation the filter `[OC, KH, KW, IC]` becomes int16 blocks of 16 output channels,
//!   `[block][tap][IC'/2][16 channels][2 input channels]` (`IC'` = IC rounded up to even,
//!   padded with zeros), the layout `vpmaddwd` consumes; bias, multipliers and shifts are
//!   padded to whole blocks;
//! - at each run the input is widened to int16 with its zero point subtracted
//!   (`x + input_offset`, exact in int16) into scratch, followed by one row of zeros that
//!   padding taps read. Since `Σ w·(x − zp)` is the reference sum itself (padding taps add
//!   `w·0`), no zero-point correction is needed afterwards;
//! - layers with few input channels run in rows mode (`Rows`): one tap per filter row,
//!   read from a padded widened copy of the input;
//! - output pixels are split over threads in whole tiles, or, in small images with many
//!   channels, the channel blocks are; each output element is computed by the same
//!   instructions whatever the split, so the bytes do not depend on the thread count.
//!
//! [`Isa::NeonDot`] runs the layers that are not in rows mode with `sdot` on int8 operands
//! (`neon::qconv_dot`, layout `DotWeights`), the zero point folded into the bias; rows-mode
//! layers run the `smlal` kernel. 3×3 stride-1 layers with enough channels run exact integer
//! Winograd in the AVX2 tier (`WinoWeights`).

// The SIMD layouts run on x86-64 and aarch64 (Winograd on x86-64 only); elsewhere they
// compile but stay unused.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_imports))]

use super::channel_consts::ChannelConsts;
use super::conv::{conv2d_i8, filter_row_sums, ConvQuant};
use super::conv_window::ConvJob;
use super::error::{check_len, QuantError};
use super::fixedpoint::multipliers_fit;
use super::geometry::ConvGeometry;
use crate::isa::Isa;
use crate::parallel;

/// Output channels per packed block.
const NR: usize = 16;
/// Below this many multiply-adds a layer runs on one thread. As for the float kernels'
/// `parallel::MIN_MACS_PER_PART`, splitting small layers pays once every layer of an invoke splits
/// (the other worker stays awake between them): the CIFAR int8 ResNet at two threads ran
/// ×0.86 with 2^18 and a further ×0.93 with 2^16, against 2^21, which kept nearly all its
/// layers on one thread.
const MIN_PARALLEL_MACS: usize = 1 << 16;

/// An int8 CONV_2D (groups = 1) ready to run: geometry, quantization, packed weights.
#[derive(Debug, Clone)]
pub struct PackedConvI8 {
    g: ConvGeometry,
    q: ConvQuant,
    bias: Option<Vec<i32>>,
    imp: Impl,
    /// Most threads `run` will use (sizes the Winograd scratch).
    threads: usize,
}

#[derive(Debug, Clone)]
enum Impl {
    /// The scalar kernel's inputs: the filter as stored and its row sums.
    Generic { filter: Vec<i8>, row_sums: Vec<i32> },
    /// int16 blocks for the AVX2 microkernel.
    Simd(SimdWeights),
    /// Transformed weights for exact integer Winograd (3×3 stride-1 layers).
    Winograd(WinoWeights),
    /// int8 blocks for the `sdot` microkernel ([`Isa::NeonDot`]).
    Dot(DotWeights),
}

/// Weights and per-channel constants in the SIMD layout (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct SimdWeights {
    /// Values one tap reads, rounded up to even: input channels, or in rows mode a filter
    /// row's `KW·IC`.
    icp: usize,
    /// Set in rows mode (see [`rows_suits`]).
    rows: Option<Rows>,
    /// Whether the last block is 8 channels wide.
    narrow_last: bool,
    weights: Vec<i16>,
    consts: ChannelConsts,
}

impl PackedConvI8 {
    /// Packs `filter` (`[out_c, filter_h, filter_w, in_c]`) for tier `isa` (a tier the CPU
    /// lacks, or one without an int8 kernel, runs the generic kernel).
    pub fn new(
        g: &ConvGeometry,
        q: ConvQuant,
        filter: &[i8],
        bias: Option<&[i32]>,
        isa: Isa,
        threads: usize,
    ) -> Result<Self, QuantError> {
        g.validate()?;
        let row_len = g.filter_h * g.filter_w * g.in_c;
        check_len("filter", g.out_c * row_len, filter.len())?;
        if let Some(b) = bias {
            check_len("bias", g.out_c, b.len())?;
        }
        check_len(
            "multipliers",
            g.out_c,
            q.multipliers.len().min(q.shifts.len()),
        )?;
        let imp = if simd_suits(isa, &q)
            && isa.or_generic() == Isa::Avx2
            && winograd_suits(g, &q, filter)
        {
            Impl::Winograd(WinoWeights::new(g, &q, filter, bias))
        } else if let Some(zp) = dot_suits(isa, g, &q) {
            Impl::Dot(DotWeights::new(g, &q, filter, bias, zp))
        } else if simd_suits(isa, &q) {
            let mut s = SimdWeights::pack(g, filter);
            s.consts = ChannelConsts::in_order(&q, g.out_c, g.out_c.div_ceil(NR) * NR, bias);
            Impl::Simd(s)
        } else {
            Impl::Generic {
                filter: filter[..g.out_c * row_len].to_vec(),
                row_sums: filter_row_sums(filter, g.out_c, row_len),
            }
        };
        Ok(PackedConvI8 {
            g: *g,
            q,
            bias: bias.map(<[i32]>::to_vec),
            imp,
            threads: threads.max(1),
        })
    }

    /// Whether the SIMD kernel runs this layer.
    pub fn is_simd(&self) -> bool {
        matches!(self.imp, Impl::Simd(_) | Impl::Winograd(_) | Impl::Dot(_))
    }

    /// Bytes held for the life of the layer (packed weights, per-channel tables).
    pub fn byte_size(&self) -> usize {
        let imp = match &self.imp {
            Impl::Generic { filter, row_sums } => filter.len() + row_sums.len() * 4,
            Impl::Winograd(w) => w.weights.len() * 2 + w.consts.byte_size(),
            Impl::Simd(s) => s.byte_size(),
            Impl::Dot(d) => d.weights.len() + d.pad.len() + d.consts.byte_size(),
        };
        imp + self.bias.as_ref().map_or(0, |b| b.len() * 4)
            + (self.q.multipliers.len() + self.q.shifts.len()) * 4
    }

    /// `i16` elements of scratch [`run`](Self::run) needs.
    pub fn scratch_len(&self) -> usize {
        match &self.imp {
            Impl::Generic { .. } => 0,
            // The input as int8 with its channels padded to `icq` (int16 elements hold two),
            // unless they already are.
            Impl::Dot(d) if d.icq == self.g.in_c => 0,
            Impl::Dot(d) => (self.g.batches * self.g.in_h * self.g.in_w * d.icq).div_ceil(2),
            Impl::Simd(s) => s.scratch_len(&self.g),
            Impl::Winograd(w) => {
                (self.g.batches * self.g.in_h * self.g.in_w + 1) * w.cw
                    + self.wino_parts() * wino_chunk_scratch(w.cw, w.ocp)
            }
        }
    }

    /// Runs the convolution: `input` `[N, H, W, IC]`, `output` `[N, OH, OW, OC]`, `scratch`
    /// at least [`scratch_len`](Self::scratch_len) long; up to `threads` threads.
    pub fn run(
        &self,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [i16],
        threads: usize,
    ) -> Result<(), QuantError> {
        let g = &self.g;
        match &self.imp {
            Impl::Generic { filter, row_sums } => conv2d_i8(
                g,
                1,
                &self.q,
                input,
                filter,
                row_sums,
                self.bias.as_deref(),
                output,
            ),
            Impl::Winograd(w) => {
                check_len("input", g.input_len(), input.len())?;
                check_len("output", g.output_len(), output.len())?;
                check_len("scratch", self.scratch_len(), scratch.len())?;
                let n = g.output_len();
                self.run_winograd(
                    w,
                    &input[..g.input_len()],
                    &mut output[..n],
                    scratch,
                    threads,
                );
                Ok(())
            }
            Impl::Dot(d) => {
                check_len("input", g.input_len(), input.len())?;
                check_len("output", g.output_len(), output.len())?;
                check_len("scratch", self.scratch_len(), scratch.len())?;
                let n = g.output_len();
                self.run_dot(
                    d,
                    &input[..g.input_len()],
                    &mut output[..n],
                    scratch,
                    threads,
                );
                Ok(())
            }
            Impl::Simd(s) => {
                check_len("input", g.input_len(), input.len())?;
                check_len("output", g.output_len(), output.len())?;
                check_len("scratch", self.scratch_len(), scratch.len())?;
                self.run_simd(
                    s,
                    &input[..g.input_len()],
                    &mut output[..g.output_len()],
                    scratch,
                    threads,
                );
                Ok(())
            }
        }
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn run_simd(
        &self,
        s: &SimdWeights,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [i16],
        threads: usize,
    ) {
        #[cfg(target_arch = "aarch64")]
        use crate::neon::qconv;
        #[cfg(target_arch = "x86_64")]
        use crate::x86::qconv;
        if output.is_empty() {
            return;
        }
        let rq = s.consts.view(&self.q);
        let out = OutPtr(output.as_mut_ptr());
        let scratch = &mut scratch[..self.scratch_len()];
        let part = |job: &ConvJob<'_>, pix0, n, mine| {
            let out = &out;
            // SAFETY: the tier was confirmed at preparation; the job's arrays were built for
            // this geometry; parts write disjoint pixels × channel blocks of the output.
            unsafe { qconv::conv_part(job, pix0, n, mine, out.0) }
        };
        // SAFETY: the SIMD weights exist only when the tier was confirmed at preparation,
        // for this geometry.
        unsafe {
            s.run(
                &self.g,
                input,
                self.q.input_offset,
                scratch,
                threads,
                rq,
                part,
            )
        };
    }

    #[cfg(target_arch = "aarch64")]
    fn run_dot(
        &self,
        d: &DotWeights,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [i16],
        threads: usize,
    ) {
        use crate::neon::qconv_dot;
        let g = &self.g;
        if output.is_empty() {
            return;
        }
        let xw: &[i8] = if d.icq == g.in_c {
            input
        } else {
            let len = g.batches * g.in_h * g.in_w * d.icq;
            let bytes = i16s_as_i8s(&mut scratch[..len.div_ceil(2)]);
            let bytes = &mut bytes[..len];
            for (dst, src) in bytes
                .chunks_exact_mut(d.icq)
                .zip(input.chunks_exact(g.in_c))
            {
                dst[..g.in_c].copy_from_slice(src);
                // Meets zero weights; any value would do.
                dst[g.in_c..].fill(0);
            }
            bytes
        };
        let job = ConvJob {
            g,
            icp: d.icq,
            px_stride: d.icq,
            weights: &d.weights,
            narrow_last: d.narrow_last,
            rq: d.consts.view(&self.q),
            xw,
        };
        let pad = &d.pad[..];
        let macs = g.output_len() * g.filter_h * g.filter_w * g.in_c;
        let threads = if macs < MIN_PARALLEL_MACS { 1 } else { threads };
        let pixels = g.batches * g.out_h * g.out_w;
        let blocks = g.out_c.div_ceil(qconv_dot::NR);
        let out = OutPtr(output.as_mut_ptr());
        split_parts(pixels, blocks, qconv_dot::MR, threads, |pix0, n, mine| {
            let out = &out;
            // SAFETY: `dotprod` was confirmed at preparation; the job's arrays were built
            // for this geometry; parts write disjoint pixels × channel blocks of the output.
            unsafe { qconv_dot::conv_part(&job, pad, pix0, n, mine, out.0) }
        });
    }

    #[cfg(not(target_arch = "aarch64"))]
    fn run_dot(&self, _: &DotWeights, _: &[i8], _: &mut [i8], _: &mut [i16], _: usize) {
        unreachable!("sdot weights are only built on aarch64")
    }

    /// Workers (scratch pieces) of the Winograd path.
    fn wino_parts(&self) -> usize {
        self.threads.min(self.wino_chunks()).max(1)
    }

    /// Chunks of [`WINO_TC`] tiles.
    fn wino_chunks(&self) -> usize {
        let tiles = self.g.batches * self.g.out_h.div_ceil(2) * self.g.out_w.div_ceil(2);
        tiles.div_ceil(WINO_TC)
    }

    #[cfg(target_arch = "x86_64")]
    fn run_winograd(
        &self,
        w: &WinoWeights,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [i16],
        threads: usize,
    ) {
        use crate::x86::qwinograd;
        let g = &self.g;
        if output.is_empty() {
            return;
        }
        let xw_len = (g.batches * g.in_h * g.in_w + 1) * w.cw;
        let (xw, rest) = scratch[..self.scratch_len()].split_at_mut(xw_len);
        let (body, zero) = xw.split_at_mut(xw_len - w.cw);
        zero.fill(0);
        // SAFETY: Winograd weights exist only when AVX2 was confirmed at preparation;
        // `body` holds `pixels·cw` values for `pixels·in_c` inputs.
        unsafe { widen_parallel(input, g.in_c, body, w.cw, self.q.input_offset, threads) };
        let tiles = g.batches * g.out_h.div_ceil(2) * g.out_w.div_ceil(2);
        let job = qwinograd::WinoJob {
            g,
            cw: w.cw,
            ocp: w.ocp,
            weights: &w.weights,
            rq: w.consts.view(&self.q),
            xw,
            chunk: qwinograd::chunk_tiles(tiles, threads),
        };
        // One part per chunk of tiles (all chunks in one part without threads); the scratch
        // holds one piece per worker (`wino_parts`).
        let parts = if threads > 1 {
            tiles.div_ceil(job.chunk)
        } else {
            1
        };
        let per = wino_chunk_scratch(w.cw, w.ocp);
        let out = OutPtr(output.as_mut_ptr());
        parallel::for_each_index_with_scratch(parts, threads, rest, per, |pi, piece| {
            let out = &out;
            // SAFETY: AVX2 confirmed at preparation; part `pi` runs chunks `pi, pi + parts,
            // …`, so parts write disjoint output pixels; `out` spans the whole output.
            unsafe { qwinograd::run_chunks(&job, pi, parts, piece, out.0) }
        });
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn run_winograd(&self, _: &WinoWeights, _: &[i8], _: &mut [i8], _: &mut [i16], _: usize) {
        unreachable!("Winograd int8 weights are only built on x86-64")
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn run_simd(&self, _: &SimdWeights, _: &[i8], _: &mut [i8], _: &mut [i16], _: usize) {
        unreachable!("SIMD int8 weights are only built on x86-64 and aarch64")
    }
}

/// Whether the SIMD kernel can run a layer in tier `isa`: AVX2 or NEON present, the shifted
/// input `x + input_offset` representable in int16 for every int8 `x`, and multipliers the
/// vector requantization takes.
fn simd_suits(isa: Isa, q: &ConvQuant) -> bool {
    let offset_fits = (-32_639..=32_639).contains(&q.input_offset);
    int16_tier(isa) && offset_fits && multipliers_fit(&q.multipliers)
}

/// Whether tier `isa` (if the CPU has it) has the int16 convolution kernel.
pub(crate) fn int16_tier(isa: Isa) -> bool {
    match isa.or_generic() {
        Isa::Avx2 => cfg!(target_arch = "x86_64"),
        Isa::Neon | Isa::NeonDot => cfg!(target_arch = "aarch64"),
        Isa::Generic => false,
    }
}

/// Whether the `sdot` kernel runs a layer, and the input zero point it then pads with:
/// tier [`Isa::NeonDot`], multipliers the vector requantization takes, a zero point that
/// is an int8 value (padding taps read it), and not a rows-mode layer (few input channels:
/// the int16 kernel's padded rows suit those better than groups of 4 mostly padding).
fn dot_suits(isa: Isa, g: &ConvGeometry, q: &ConvQuant) -> Option<i8> {
    let tier = cfg!(target_arch = "aarch64") && isa.or_generic() == Isa::NeonDot;
    if !tier || !multipliers_fit(&q.multipliers) || rows_suits(g) {
        return None;
    }
    q.input_offset
        .checked_neg()
        .and_then(|zp| i8::try_from(zp).ok())
}

/// Weights and per-channel constants of the `sdot` kernel (see `neon::qconv_dot`).
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
#[derive(Debug, Clone)]
struct DotWeights {
    /// Input channels rounded up to a multiple of 4.
    icq: usize,
    /// Whether the last block is 8 channels wide.
    narrow_last: bool,
    /// `[block][tap][icq/4][16][4]` (a narrow last block `[tap][icq/4][8][4]`).
    weights: Vec<i8>,
    /// Its bias is `bias − zp·Σ w` per channel.
    consts: ChannelConsts,
    /// `icq` copies of the input zero point: what a padding tap reads.
    pad: Vec<i8>,
}

impl DotWeights {
    fn new(g: &ConvGeometry, q: &ConvQuant, filter: &[i8], bias: Option<&[i32]>, zp: i8) -> Self {
        let icq = g.in_c.next_multiple_of(4);
        let taps = g.filter_h * g.filter_w;
        let blocks = g.out_c.div_ceil(NR);
        let padded = blocks * NR;
        let narrow_last = (1..=8).contains(&(g.out_c % NR));
        let block_len = taps * icq * NR;
        let len = if narrow_last {
            (blocks - 1) * block_len + block_len / 2
        } else {
            blocks * block_len
        };
        let mut weights = vec![0_i8; len];
        let mut consts = ChannelConsts::in_order(q, g.out_c, padded, bias);
        for (c, rows) in filter[..g.out_c * taps * g.in_c]
            .chunks_exact((taps * g.in_c).max(1))
            .enumerate()
        {
            let (nb, lane) = (c / NR, c % NR);
            let width = if narrow_last && nb + 1 == blocks {
                8
            } else {
                NR
            };
            for (t, src) in rows.chunks_exact(g.in_c.max(1)).enumerate() {
                let base = nb * block_len + t * icq * width + lane * 4;
                for (i, &w) in src.iter().enumerate() {
                    weights[base + (i / 4) * 4 * width + i % 4] = w;
                }
            }
            // bias + input_offset·Σw, wrapping like the reference's int32 sums (the same
            // value modulo 2^32).
            let w_sum = rows
                .iter()
                .fold(0_i32, |acc, &w| acc.wrapping_add(i32::from(w)));
            consts.bias[c] = consts.bias[c].wrapping_add(q.input_offset.wrapping_mul(w_sum));
        }
        DotWeights {
            icq,
            narrow_last,
            weights,
            consts,
            pad: vec![zp; icq],
        }
    }
}

/// The bytes of an int16 scratch slice, for the int8 input copy of the `sdot` kernel.
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
fn i16s_as_i8s(s: &mut [i16]) -> &mut [i8] {
    let len = s.len() * 2;
    // SAFETY: i8 has no invalid bit patterns and a weaker alignment than i16; the new slice
    // covers exactly the same bytes, borrowed mutably for the same lifetime.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut i8, len) }
}

/// The output tensor's base pointer, shared by parts that write disjoint pixels or channel
/// blocks.
struct OutPtr(*mut i8);
// SAFETY: only used by `run_simd` and `run_winograd`, whose parts write disjoint outputs.
unsafe impl Sync for OutPtr {}

/// Runs `part(pix0, npix, blocks)` over the parts of a convolution of `pixels` output pixels
/// and `blocks` channel blocks on up to `threads` threads: small images with many channels
/// (the deep layers) split the channel blocks, so that each part streams only its own share
/// of the weights; the others split the pixels, in whole tiles of `mr`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn split_parts(
    pixels: usize,
    blocks: usize,
    mr: usize,
    threads: usize,
    part: impl Fn(usize, usize, std::ops::Range<usize>) + Sync,
) {
    if threads > 1 && pixels <= BLOCK_SPLIT_MAX_PIXELS && blocks >= threads {
        let parts = parallel::target_parts(threads).min(blocks);
        parallel::for_each_index(parts, threads, |i| {
            part(0, pixels, i * blocks / parts..(i + 1) * blocks / parts);
        });
    } else {
        let s = parallel::split(pixels, mr, threads);
        parallel::for_each_index(s.parts, threads, |i| {
            let pix0 = i * s.rows_per_part;
            part(pix0, s.rows_per_part.min(pixels - pix0), 0..blocks);
        });
    }
}

/// Images of at most this many output pixels split their channel blocks over threads.
const BLOCK_SPLIT_MAX_PIXELS: usize = 256;

/// Tiles per Winograd chunk (the kernel's own constant where it exists).
#[cfg(target_arch = "x86_64")]
const WINO_TC: usize = crate::x86::qwinograd::TC;
#[cfg(not(target_arch = "x86_64"))]
const WINO_TC: usize = 64;

/// i16 scratch of one Winograd part: transformed inputs (int16) and products (int32).
fn wino_chunk_scratch(cw: usize, ocp: usize) -> usize {
    16 * WINO_TC * cw + 16 * WINO_TC * ocp * 2
}

/// Whether exact integer Winograd runs a layer: 3×3, stride 1, no dilation, enough input
/// channels and tiles to pay for the transforms, and bounds that make the int16/int32 arithmetic
/// exact: transformed inputs `|V| ≤ 4·max|x'|` fit int16, and `4·|Σ w·x'|`, bounded by
/// `4·9·in_c·max|w|·max|x'|`, stays below 2^31 (so wrapping int32 sums recover it).
fn winograd_suits(g: &ConvGeometry, q: &ConvQuant, filter: &[i8]) -> bool {
    let shape = g.filter_h == 3
        && g.filter_w == 3
        && g.stride_h == 1
        && g.stride_w == 1
        && g.dilation_h == 1
        && g.dilation_w == 1
        && g.in_c >= 16
        // Small images: too few tiles per pass over the (16/9 larger) transformed weights.
        && g.batches * g.out_h.div_ceil(2) * g.out_w.div_ceil(2) >= 2 * WINO_TC;
    if !shape {
        return false;
    }
    let max_x = 128 + i64::from(q.input_offset).abs();
    let max_w = filter
        .iter()
        .map(|&w| i64::from(w).abs())
        .max()
        .unwrap_or(0);
    4 * max_x <= i64::from(i16::MAX) && 4 * 9 * (g.in_c as i64) * max_w * max_x < 1 << 31
}

/// Winograd-transformed weights: `U = G' g G'ᵀ` per (output, input channel), as int16 in
/// `[ξ][block][cw/2][16][2]`, and per-channel constants padded to `ocp`.
#[derive(Debug, Clone)]
struct WinoWeights {
    cw: usize,
    ocp: usize,
    weights: Vec<i16>,
    consts: ChannelConsts,
}

impl WinoWeights {
    fn new(g: &ConvGeometry, q: &ConvQuant, filter: &[i8], bias: Option<&[i32]>) -> Self {
        let cw = g.in_c.next_multiple_of(16);
        let ocp = g.out_c.next_multiple_of(NR);
        let blocks = ocp / NR;
        let mut weights = vec![0_i16; 16 * blocks * cw * NR];
        // G' = 2G rows applied to a 3-vector.
        let gt = |v: [i32; 3]| [2 * v[0], v[0] + v[1] + v[2], v[0] - v[1] + v[2], 2 * v[2]];
        for oc in 0..g.out_c {
            let (nb, lane) = (oc / NR, oc % NR);
            for ic in 0..g.in_c {
                let w = |ky: usize, kx: usize| {
                    i32::from(filter[((oc * 3 + ky) * 3 + kx) * g.in_c + ic])
                };
                // t = G' g (4×3), then U = t G'ᵀ (4×4).
                let cols: [[i32; 4]; 3] =
                    std::array::from_fn(|kx| gt([w(0, kx), w(1, kx), w(2, kx)]));
                let rows: [[i32; 4]; 4] =
                    std::array::from_fn(|i| gt([cols[0][i], cols[1][i], cols[2][i]]));
                for (i, u) in rows.iter().enumerate() {
                    for (j, &uv) in u.iter().enumerate() {
                        let xi = i * 4 + j;
                        let dst = ((xi * blocks + nb) * cw + (ic & !1)) * NR + lane * 2 + (ic & 1);
                        weights[dst] = uv as i16;
                    }
                }
            }
        }
        WinoWeights {
            cw,
            ocp,
            weights,
            consts: ChannelConsts::in_order(q, g.out_c, ocp, bias),
        }
    }
}

impl SimdWeights {
    /// Packs `filter` for the int16 kernel, in rows mode where [`rows_suits`]; the
    /// per-channel constants are left empty.
    pub(crate) fn pack(g: &ConvGeometry, filter: &[i8]) -> Self {
        if rows_suits(g) {
            // The filter `[OC, KH, KW, IC]` is already `[OC, KH, 1, KW·IC]` in memory.
            let rows = Rows::new(g);
            let mut s = Self::pack_plain(&rows.g, filter);
            s.rows = Some(rows);
            s
        } else {
            Self::pack_plain(g, filter)
        }
    }

    /// Bytes of the packed weights and per-channel constants.
    pub(crate) fn byte_size(&self) -> usize {
        self.weights.len() * 2 + self.consts.byte_size()
    }

    /// `i16` elements of scratch [`run`](Self::run) needs for geometry `g`.
    pub(crate) fn scratch_len(&self, g: &ConvGeometry) -> usize {
        match &self.rows {
            // The padded image, then a tail of zeros: the last tap's read runs up to
            // `icp` values past its pixel, and the kernel's zero row.
            Some(r) => r.g.batches * r.g.in_h * r.g.in_w * g.in_c + self.icp,
            None => (g.batches * g.in_h * g.in_w + 1) * self.icp,
        }
    }

    /// Widens `input` (`x + input_offset`) into `scratch` and runs `part(job, pix0, npix,
    /// blocks)` over the parts of the convolution on up to `threads` threads.
    ///
    /// # Safety
    /// The tier these weights were packed for is available (AVX2 on x86-64); `g` is the
    /// geometry they were packed for; `input` is `g.input_len()` long and `scratch`
    /// [`scratch_len`](Self::scratch_len); `rq`'s arrays hold whole 16-channel blocks (or
    /// `part` does not read them).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn run(
        &self,
        g: &ConvGeometry,
        input: &[i8],
        input_offset: i32,
        xw: &mut [i16],
        threads: usize,
        rq: super::channel_consts::Requant<'_>,
        part: impl Fn(&ConvJob<'_>, usize, usize, std::ops::Range<usize>) + Sync,
    ) {
        #[cfg(target_arch = "aarch64")]
        use crate::neon::qconv;
        #[cfg(target_arch = "x86_64")]
        use crate::x86::qconv;
        let (vg, px_stride) = match &self.rows {
            Some(r) => {
                r.fill(g, input, xw, input_offset);
                (&r.g, g.in_c)
            }
            None => {
                let (body, zero) = xw.split_at_mut(xw.len() - self.icp);
                zero.fill(0);
                if g.in_c > 0 {
                    // SAFETY: the tier is available (caller); `body` is `pixels·icp` long
                    // for `pixels·in_c` inputs.
                    unsafe { widen_parallel(input, g.in_c, body, self.icp, input_offset, threads) };
                }
                (g, self.icp)
            }
        };
        let job = ConvJob {
            g: vg,
            icp: self.icp,
            px_stride,
            weights: &self.weights,
            narrow_last: self.narrow_last,
            rq,
            xw,
        };
        let macs = g.output_len() * g.filter_h * g.filter_w * g.in_c;
        let threads = if macs < MIN_PARALLEL_MACS { 1 } else { threads };
        let pixels = g.batches * g.out_h * g.out_w;
        let blocks = g.out_c.div_ceil(qconv::NR);
        split_parts(pixels, blocks, qconv::MR, threads, |pix0, n, mine| {
            part(&job, pix0, n, mine)
        });
    }

    fn pack_plain(g: &ConvGeometry, filter: &[i8]) -> Self {
        let icp = g.in_c.next_multiple_of(2);
        let taps = g.filter_h * g.filter_w;
        let blocks = g.out_c.div_ceil(NR);
        // A last block of at most 8 channels is packed 8 wide (the kernel then runs one
        // vector per row instead of two, half of them padding).
        let narrow_last = (1..=8).contains(&(g.out_c % NR));
        let block_len = taps * icp * NR;
        let len = if narrow_last {
            (blocks - 1) * block_len + block_len / 2
        } else {
            blocks * block_len
        };
        let mut weights = vec![0_i16; len];
        crate::buffer::advise_huge_pages(weights.as_ptr().cast(), len * 2);
        // Destination of (channel c, tap t, input channel i): block, tap, pair, lane, half.
        // Each tap's input channels go pair by pair, a pair's two values side by side: slices
        // per tap and per pair rather than an index computed (and checked) per value, which
        // made this copy the largest part of an int8 ResNet's load.
        for (c, rows) in filter[..g.out_c * taps * g.in_c]
            .chunks_exact((taps * g.in_c).max(1))
            .enumerate()
        {
            let (nb, lane) = (c / NR, c % NR);
            let width = if narrow_last && nb + 1 == blocks {
                8
            } else {
                NR
            };
            for (t, src) in rows.chunks_exact(g.in_c.max(1)).enumerate() {
                let base = nb * block_len + t * icp * width + lane * 2;
                let dst = &mut weights[base..];
                for (pair, s) in src.chunks(2).enumerate() {
                    let d = &mut dst[pair * 2 * width..][..s.len()];
                    for (d, &s) in d.iter_mut().zip(s) {
                        *d = i16::from(s);
                    }
                }
            }
        }
        SimdWeights {
            icp,
            rows: None,
            narrow_last,
            weights,
            consts: ChannelConsts::zeros(0),
        }
    }
}

/// Whether a layer runs in rows mode: few input channels (a tap of `IC` values would be
/// mostly pointer set-up and channel padding), a filter wider than one pixel, and no
/// horizontal dilation (so a filter row reads `KW·IC` contiguous values).
fn rows_suits(g: &ConvGeometry) -> bool {
    (1..ROWS_MAX_IC).contains(&g.in_c) && g.filter_w > 1 && g.dilation_w == 1
}

/// Below this many input channels a layer may run in rows mode. Above it one tap already
/// feeds 32 or more `vpmaddwd` steps per pixel, and the padded copy would cost more than the
/// pointer set-up it saves. (Measured on CIFAR ResNet layers of 6 to 55 channels: all gain,
/// 10% of that network's instructions.)
const ROWS_MAX_IC: usize = 64;

/// Rows mode: the input is widened into a copy padded so that every window lies inside it,
/// and each filter *row* is one tap of `KW·IC` contiguous values. The kernel then runs the
/// equivalent convolution `g` on that image: filter `KH × 1` over `KW·IC` channels whose
/// pixels lie `IC` values apart, no padding, no horizontal dilation. A tap's read rounded
/// up to an even count runs one value into the next pixel, which meets a zero weight.
#[derive(Debug, Clone)]
struct Rows {
    g: ConvGeometry,
}

impl Rows {
    fn new(g: &ConvGeometry) -> Rows {
        let reach = |out: usize, stride: usize, k: usize, d: usize| {
            out.saturating_sub(1) * stride + (k - 1) * d + 1
        };
        let hp = (g.in_h + g.pad_top).max(reach(g.out_h, g.stride_h, g.filter_h, g.dilation_h));
        let wp = (g.in_w + g.pad_left).max(reach(g.out_w, g.stride_w, g.filter_w, 1));
        Rows {
            g: ConvGeometry {
                in_h: hp,
                in_w: wp,
                in_c: g.filter_w * g.in_c,
                filter_w: 1,
                dilation_w: 1,
                pad_top: 0,
                pad_left: 0,
                ..*g
            },
        }
    }

    /// Writes the padded image (`x + input_offset`, zeros around) and the zero tail into
    /// `xw` (`scratch_len` values).
    fn fill(&self, g: &ConvGeometry, input: &[i8], xw: &mut [i16], input_offset: i32) {
        let (hp, wp, c) = (self.g.in_h, self.g.in_w, g.in_c);
        xw.fill(0);
        let off = input_offset as i16;
        for b in 0..g.batches {
            for y in 0..g.in_h {
                let src = &input[(b * g.in_h + y) * g.in_w * c..][..g.in_w * c];
                let at = ((b * hp + y + g.pad_top) * wp + g.pad_left) * c;
                for (d, &x) in xw[at..at + g.in_w * c].iter_mut().zip(src) {
                    *d = i16::from(x).wrapping_add(off);
                }
            }
        }
    }
}

/// The input widened to int16 with its zero point subtracted, the pixels split over
/// `threads` (a serial copy of every layer's input would cap the speed-up of the parallel
/// kernels): [`qconv::widen`](crate::x86::qconv::widen) on x86-64, [`widen_portable`] on
/// aarch64.
///
/// # Safety
/// On x86-64 AVX2 must be available; `dst.len() == src.len() / c · cp`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe fn widen_parallel(
    src: &[i8],
    c: usize,
    dst: &mut [i16],
    cp: usize,
    off: i32,
    threads: usize,
) {
    let threads = if dst.len() < MIN_PARALLEL_WIDEN {
        1
    } else {
        threads
    };
    parallel::for_each_part(dst, cp, 1, threads, |pix0, part| {
        let src = &src[pix0 * c..][..part.len() / cp * c];
        // SAFETY: AVX2 (caller); `part` holds whole pixels, `src` the same pixels.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            crate::x86::qconv::widen(src, c, part, cp, off)
        };
        #[cfg(target_arch = "aarch64")]
        widen_portable(src, c, part, cp, off);
    });
}

/// Widens int8 pixels to int16 with `offset` added: `src` is `[pixels][c]`, `dst`
/// `[pixels][cp]` (`cp ≥ c`; the extra channels become 0). The loop is plain enough for
/// LLVM to vectorize for NEON. (x86-64 has its AVX2 version.)
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
pub(crate) fn widen_portable(src: &[i8], c: usize, dst: &mut [i16], cp: usize, offset: i32) {
    let off = offset as i16;
    for (d, s) in dst.chunks_exact_mut(cp).zip(src.chunks_exact(c.max(1))) {
        for (d, &x) in d.iter_mut().zip(s) {
            *d = i16::from(x).wrapping_add(off);
        }
        d[c..].fill(0);
    }
}

/// Below this many widened values the copy stays on one thread.
const MIN_PARALLEL_WIDEN: usize = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::conv::tests::{random_geometry, Lcg};
    use crate::quant::{FusedActivation, QuantParams};

    fn check(r: &mut Lcg, g: &ConvGeometry, case: usize) {
        let (in_c, out_c) = (g.in_c, g.out_c);
        let scales: Vec<f32> = (0..out_c).map(|_| 0.002 + 0.02 * r.unit()).collect();
        let input_p = QuantParams::new(0.02 + 0.05 * r.unit(), r.range(-128, 127));
        let output_p = QuantParams::new(0.05 + 0.3 * r.unit(), r.range(-128, 127));
        let act = [
            FusedActivation::None,
            FusedActivation::Relu,
            FusedActivation::Relu6,
        ][case % 3];
        let q = ConvQuant::new_i8(input_p, &scales, output_p, act, out_c).unwrap();
        let input = r.vec_i8(g.input_len(), -128, 127);
        let filter = r.vec_i8(out_c * g.filter_h * g.filter_w * in_c, -128, 127);
        let bias: Vec<i32> = (0..out_c).map(|_| r.range(-50000, 50000) as i32).collect();
        let bias = (case % 4 != 0).then_some(&bias[..]);
        let sums = filter_row_sums(&filter, out_c, g.filter_h * g.filter_w * in_c);
        let mut want = vec![0_i8; g.output_len()];
        conv2d_i8(g, 1, &q, &input, &filter, &sums, bias, &mut want).unwrap();
        for isa in Isa::available() {
            let p = PackedConvI8::new(g, q.clone(), &filter, bias, isa, 3).unwrap();
            assert_eq!(p.is_simd(), isa != Isa::Generic);
            for threads in [1, 2, 3] {
                let mut scratch = vec![0_i16; p.scratch_len()];
                let mut out = vec![0_i8; g.output_len()];
                p.run(&input, &mut out, &mut scratch, threads).unwrap();
                assert_eq!(out, want, "case {case} {isa} threads {threads} {g:?}");
            }
        }
    }

    /// The layer `g` with all-one weights packed for `isa`, input and output zero point `zp`
    /// (to see which implementation a tier picks).
    fn ones(g: &ConvGeometry, zp: i64, isa: Isa) -> PackedConvI8 {
        let p = QuantParams::new(0.05, zp);
        let q = ConvQuant::new_i8(p, &[0.01], p, FusedActivation::None, g.out_c).unwrap();
        let filter = vec![1_i8; g.out_c * g.filter_h * g.filter_w * g.in_c];
        PackedConvI8::new(g, q, &filter, None, isa, 1).unwrap()
    }

    #[test]
    fn every_tier_matches_scalar_kernel() {
        let mut r = Lcg(5);
        for case in 0..80 {
            let in_c = r.range(1, 21) as usize;
            let out_c = r.range(1, 40) as usize;
            let g = random_geometry(&mut r, in_c, out_c);
            check(&mut r, &g, case);
        }
    }

    /// A square `k×k` filter at stride `s` with `pad` on every side (no dilation) over `n`
    /// images of `h×w×ic`, giving `oc` channels.
    fn square(
        n: usize,
        (h, w, ic): (usize, usize, usize),
        oc: usize,
        k: usize,
        s: usize,
        pad: usize,
    ) -> ConvGeometry {
        let out = |x: usize| (x + 2 * pad - k) / s + 1;
        ConvGeometry {
            batches: n,
            in_h: h,
            in_w: w,
            in_c: ic,
            out_h: out(h),
            out_w: out(w),
            out_c: oc,
            filter_h: k,
            filter_w: k,
            stride_h: s,
            stride_w: s,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: pad,
            pad_left: pad,
        }
    }

    #[test]
    fn pointwise_layers_match_scalar_kernel() {
        let mut r = Lcg(31);
        // 1×1 stride-1 unpadded layers take the kernel's pointwise path: odd pixel counts
        // (partial tiles), two images, narrow and wide channel blocks; a 1×1 stride-2 layer
        // and a padded 1×1 layer do not.
        for (case, (n, h, w, ic, oc, s, pad)) in [
            (1, 7, 5, 16, 24, 1, 0),
            (2, 3, 3, 9, 40, 1, 0),
            (1, 1, 13, 32, 8, 1, 0),
            (1, 8, 8, 15, 20, 2, 0),
            (1, 4, 5, 6, 17, 1, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let g = square(n, (h, w, ic), oc, 1, s, pad);
            check(&mut r, &g, case);
        }
    }

    #[test]
    fn few_input_channels_run_in_rows_mode() {
        let mut r = Lcg(23);
        // A ResNet stem (7×7 stride 2, SAME) and a MobileNet one (3×3 stride 2), two images,
        // 3 input channels; and a dilated-rows case.
        for (case, (k, s, pad, ic, dh)) in [(7, 2, 3, 3, 1), (3, 2, 1, 3, 1), (3, 1, 2, 5, 2)]
            .into_iter()
            .enumerate()
        {
            let (h, w, oc) = (23, 21, 24);
            let out = |n: usize, d: usize| (n + 2 * pad - (k - 1) * d - 1) / s + 1;
            let g = ConvGeometry {
                batches: 2,
                in_h: h,
                in_w: w,
                in_c: ic,
                out_h: out(h, dh),
                out_w: out(w, 1),
                out_c: oc,
                filter_h: k,
                filter_w: k,
                stride_h: s,
                stride_w: s,
                dilation_h: dh,
                dilation_w: 1,
                pad_top: pad,
                pad_left: pad,
            };
            for isa in Isa::available().into_iter().filter(|&i| i != Isa::Generic) {
                let packed = ones(&g, 3, isa);
                assert!(matches!(&packed.imp, Impl::Simd(s) if s.rows.is_some()));
            }
            check(&mut r, &g, case);
        }
    }

    #[test]
    fn dot_tier_runs_int8_layers_with_sdot() {
        // Where the CPU has the dot product tier (qemu's default CPU does): input channels
        // that are and are not a multiple of 4 (the int8 copy), padded and pointwise layers,
        // narrow and wide channel blocks, a zero point of -128 (an offset of 128).
        let mut r = Lcg(41);
        for (case, (h, w, ic, oc, k, s, pad)) in [
            (9, 11, 64, 24, 3, 1, 1),
            (8, 7, 70, 40, 3, 2, 1),
            (6, 6, 33, 8, 1, 1, 0),
            (5, 9, 96, 17, 5, 1, 2),
        ]
        .into_iter()
        .enumerate()
        {
            let g = square(2, (h, w, ic), oc, k, s, pad);
            if Isa::NeonDot.is_available() {
                let packed = ones(&g, -128, Isa::NeonDot);
                assert!(matches!(packed.imp, Impl::Dot(_)));
            }
            check(&mut r, &g, case);
        }
    }

    #[test]
    fn minimum_multiplier_runs_the_scalar_kernel() {
        // i32::MIN (reachable only from a negative scale) saturates in the doubling high
        // multiply, which the vector requantization does not do: such layers stay scalar.
        let mut r = Lcg(17);
        let g = random_geometry(&mut r, 4, 5);
        let p = QuantParams::new(0.05, 3);
        let mut q = ConvQuant::new_i8(p, &[0.01; 5], p, FusedActivation::None, 5).unwrap();
        q.multipliers[2] = i32::MIN;
        let input = r.vec_i8(g.input_len(), -128, 127);
        let filter = r.vec_i8(5 * g.filter_h * g.filter_w * 4, -128, 127);
        let sums = filter_row_sums(&filter, 5, g.filter_h * g.filter_w * 4);
        let mut want = vec![0_i8; g.output_len()];
        conv2d_i8(&g, 1, &q, &input, &filter, &sums, None, &mut want).unwrap();
        for isa in Isa::available() {
            let packed = PackedConvI8::new(&g, q.clone(), &filter, None, isa, 1).unwrap();
            assert!(!packed.is_simd());
            let mut scratch = vec![0_i16; packed.scratch_len()];
            let mut out = vec![0_i8; g.output_len()];
            packed.run(&input, &mut out, &mut scratch, 1).unwrap();
            assert_eq!(out, want, "{isa}");
        }
    }

    #[test]
    fn large_layers_split_over_threads_match() {
        let mut r = Lcg(11);
        // Big enough to pass the parallel threshold; 3×3 padded and 1×1.
        for (case, (k, s, pad)) in [(3, 1, 1), (1, 1, 0), (3, 2, 1), (7, 2, 3)]
            .into_iter()
            .enumerate()
        {
            let (h, w, ic, oc) = (17, 19, 35, 70);
            let g = square(1, (h, w, ic), oc, k, s, pad);
            check(&mut r, &g, case);
        }
    }

    fn geometry_3x3(
        batches: usize,
        h: usize,
        w: usize,
        ic: usize,
        oc: usize,
        pad: usize,
    ) -> ConvGeometry {
        square(batches, (h, w, ic), oc, 3, 1, pad)
    }

    #[test]
    fn winograd_layers_match_scalar_kernel() {
        let mut r = Lcg(17);
        for case in 0..24 {
            let g = geometry_3x3(
                r.range(1, 2) as usize,
                r.range(4, 40) as usize,
                r.range(4, 40) as usize,
                r.range(16, 40) as usize,
                r.range(1, 40) as usize,
                r.range(0, 1) as usize,
            );
            check(&mut r, &g, case);
        }
        // Many tiles (several chunks per thread).
        let g = geometry_3x3(2, 40, 37, 24, 20, 1);
        check(&mut r, &g, 1);
        // 196 tiles: chunks of 49 tiles on two threads, 33 on three (the last shorter, and
        // not a multiple of the GEMM's four rows).
        let g = geometry_3x3(1, 28, 28, 16, 24, 1);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            [1, 2, 3].map(|t| crate::x86::qwinograd::chunk_tiles(196, t)),
            [49, 49, 33]
        );
        check(&mut r, &g, 2);
    }

    #[test]
    fn winograd_extremes_are_exact() {
        // x' = −255 everywhere and weights at −128: the largest sums the bound admits.
        let g = geometry_3x3(1, 24, 23, 64, 17, 1);
        let q = ConvQuant::new_i8(
            QuantParams::new(0.5, 127),
            &[0.5],
            QuantParams::new(0.001, -3),
            FusedActivation::None,
            17,
        )
        .unwrap();
        let input = vec![-128_i8; g.input_len()];
        let mut filter = vec![-128_i8; 17 * 9 * 64];
        filter[5] = 127;
        let sums = filter_row_sums(&filter, 17, 9 * 64);
        let mut want = vec![0_i8; g.output_len()];
        conv2d_i8(&g, 1, &q, &input, &filter, &sums, None, &mut want).unwrap();
        for isa in Isa::available() {
            let p = PackedConvI8::new(&g, q.clone(), &filter, None, isa, 2).unwrap();
            assert_eq!(matches!(p.imp, Impl::Winograd(_)), isa == Isa::Avx2);
            let mut scratch = vec![0_i16; p.scratch_len()];
            let mut out = vec![0_i8; g.output_len()];
            p.run(&input, &mut out, &mut scratch, 2).unwrap();
            assert_eq!(out, want, "{isa}");
        }
    }

    #[test]
    fn extreme_values_wrap_like_the_scalar_kernel() {
        // All −128 inputs and weights with input zero point 127 over many taps.
        let g = ConvGeometry {
            batches: 1,
            in_h: 3,
            in_w: 3,
            in_c: 300,
            out_h: 1,
            out_w: 1,
            out_c: 3,
            filter_h: 3,
            filter_w: 3,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
        };
        let q = ConvQuant::new_i8(
            QuantParams::new(0.5, 127),
            &[0.5],
            QuantParams::new(0.001, -3),
            FusedActivation::None,
            3,
        )
        .unwrap();
        let input = vec![-128_i8; g.input_len()];
        let filter = vec![-128_i8; 3 * 9 * 300];
        let sums = filter_row_sums(&filter, 3, 9 * 300);
        let mut want = vec![0_i8; 3];
        conv2d_i8(
            &g,
            1,
            &q,
            &input,
            &filter,
            &sums,
            Some(&[i32::MAX, 0, i32::MIN]),
            &mut want,
        )
        .unwrap();
        for isa in Isa::available() {
            let p = PackedConvI8::new(
                &g,
                q.clone(),
                &filter,
                Some(&[i32::MAX, 0, i32::MIN]),
                isa,
                1,
            )
            .unwrap();
            let mut scratch = vec![0_i16; p.scratch_len()];
            let mut out = vec![0_i8; 3];
            p.run(&input, &mut out, &mut scratch, 1).unwrap();
            assert_eq!(out, want, "{isa}");
        }
    }
}
