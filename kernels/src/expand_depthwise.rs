//! A pointwise (1×1) convolution whose only reader is a depthwise convolution (the "expand"
//! and "depthwise" layers of a MobileNet block), run as one step.
//!
//! Unfused, the pointwise layer writes its whole output (in MobileNetV2 up to 112×112×96
//! floats, 4.8 MB) and the depthwise layer reads it back, both through memory. Here each
//! thread part of the depthwise output computes only the pointwise rows its windows need, a
//! band of a few rows at a time that fits in L2, and slides that band down the image: rows
//! that the next output row still needs are moved to the band's front rather than computed
//! again. The intermediate tensor never exists, which also takes it out of the arena.
//!
//! Every value is computed exactly as unfused: a pointwise row by the same GEMM (each output
//! element sums its `K` products in the same order whatever the block of rows it is computed
//! in), and each depthwise output row by the same row kernel reading those values. So results
//! are bit-identical to the two layers apart, for any thread count. Rows at the edge of a
//! thread part may be computed by both neighbouring parts (the same values, into each part's
//! own band).

use crate::conv::{ConvParams, PackedConv};
use crate::depthwise::{self, DepthwiseParams, PackedDepthwise};
use crate::gemm;
use crate::parallel;

/// Floats a band aims for: 256 KiB, half an L2 cache, leaving room for the rows of the
/// pointwise input and of the depthwise output passing through beside it.
const BAND_FLOATS: usize = 1 << 16;
/// Minimum multiply-adds (both layers) per thread part; see the GEMM's.
const MIN_MACS_PER_PART: usize = if cfg!(test) { 1 } else { 1 << 20 };
/// A thread part computes again the pointwise rows its first window shares with the previous
/// part's last: parts are made tall enough that these are at most 1 in this many of the rows
/// they compute. (Unit tests use 1, so that small images are split too.)
const HALO_SHARE: usize = if cfg!(test) { 1 } else { 16 };
/// Smallest pointwise output (floats) worth fusing: 1 MiB, twice an L2 cache. Smaller ones
/// stay in cache between the two layers anyway, and neither take much of the arena nor gain
/// any speed. Measured on MobileNetV2 at 224×224 (AMD Zen 3, per-node profiles of fused and
/// unfused runs alternating): the 112×112×96 pair ×0.97 at one thread and ×0.985 at two,
/// the 56×56×144 pairs ×1.01 and ×0.995; the arena shrinks from 6.0 to 3.2 MB.
const MIN_FUSED_FLOATS: usize = 1 << 18;

/// Whether `pw` (packed as `filter`) can feed `dw` in [`expand_depthwise_f32`]: a pointwise
/// GEMM (1×1, stride 1, no padding) whose output has the depthwise input's shape.
pub fn can_fuse(pw: &ConvParams, filter: &PackedConv, dw: &DepthwiseParams) -> bool {
    filter.params() == pw
        && filter.gemm().is_some()
        && pw.is_pointwise()
        && pw.batch == dw.batch
        && pw.out_h == dw.in_h
        && pw.out_w == dw.in_w
        && pw.out_c == dw.in_c
}

/// Whether fusing `pw` into `dw` pays with `threads` threads: when the pointwise output is
/// too large to stay in cache between the two layers, and the image is tall enough for
/// parts (see [`HALO_SHARE`]) to keep every thread busy.
pub fn worth_fusing(pw: &ConvParams, dw: &DepthwiseParams, threads: usize) -> bool {
    let rows = dw.batch * dw.out_h;
    pw.output_len() >= MIN_FUSED_FLOATS
        && (threads <= 1 || parallel::split(rows, grain(pw, dw), threads).parts >= threads)
}

/// Rows (of the pointwise output) a band holds: enough for [`BAND_FLOATS`], at least one
/// window's height, at most the whole input.
fn band_rows(dw: &DepthwiseParams) -> usize {
    let row = (dw.in_w * dw.in_c).max(1);
    let window = (dw.kernel_h.max(1) - 1) * dw.dilation_h + 1;
    (BAND_FLOATS / row)
        .max(window)
        .min((dw.batch * dw.in_h).max(1))
}

/// Output rows per thread part, at least: parts of about [`MIN_MACS_PER_PART`], and tall
/// enough for [`HALO_SHARE`].
fn grain(pw: &ConvParams, dw: &DepthwiseParams) -> usize {
    let dw_row = dw.out_w * dw.out_c() * dw.kernel_h * dw.kernel_w;
    // Pointwise rows per output row, on average.
    let pw_rows = dw.in_h.div_ceil(dw.out_h.max(1));
    let pw_row = pw_rows * pw.in_w * pw.in_c * pw.out_c;
    let by_work = MIN_MACS_PER_PART.div_ceil((dw_row + pw_row).max(1));
    // n output rows read (n − 1)·stride + window rows, `window − stride` of them shared with
    // the previous part.
    let window = (dw.kernel_h.max(1) - 1) * dw.dilation_h + 1;
    let stride = dw.stride_h.max(1);
    let halo = window.saturating_sub(stride);
    let by_halo = (HALO_SHARE * halo).saturating_sub(window) / stride + 1;
    by_work.max(by_halo)
}

/// Scratch floats [`expand_depthwise_f32`] needs for `threads` threads (one band per
/// worker; less scratch means fewer workers, down to one band).
pub fn scratch_floats(pw: &ConvParams, dw: &DepthwiseParams, threads: usize) -> usize {
    let rows = dw.batch * dw.out_h;
    let workers = parallel::max_parts(rows, grain(pw, dw), threads);
    workers * band_rows(dw) * dw.in_w * dw.in_c
}

/// The pointwise input rows (flat over `[batch, in_h]`) that depthwise output row `r` (flat
/// over `[batch, out_h]`) reads: an empty range when its window lies in the padding.
fn needed(dw: &DepthwiseParams, r: usize) -> (usize, usize) {
    let (b, oy) = (r / dw.out_h, r % dw.out_h);
    let iy0 = (oy * dw.stride_h) as isize - dw.pad_top as isize;
    let (ky0, ky1) = depthwise::tap_range(iy0, dw.dilation_h, dw.kernel_h, dw.in_h);
    if ky0 == ky1 {
        return (0, 0);
    }
    // In bounds: both taps are valid rows, so the casts are exact.
    let first = (iy0 + (ky0 * dw.dilation_h) as isize) as usize;
    let last = (iy0 + ((ky1 - 1) * dw.dilation_h) as isize) as usize;
    (b * dw.in_h + first, b * dw.in_h + last + 1)
}

/// `output = depthwise(dw, clamp(pointwise(input) + pw_bias))`, with the depthwise's own
/// filter, bias and clamp in `dw_filter`.
///
/// Preconditions (checked; a violation panics): [`can_fuse`]`(pw, pw_filter, dw)`,
/// `dw_filter` prepared for `dw`, `input.len() >= pw.input_len()`,
/// `output.len() >= dw.output_len()`, `pw_bias` `None` or `pw.out_c` values, and
/// `scratch` at least one band (see [`scratch_floats`]; more allows more threads).
#[allow(clippy::too_many_arguments)]
pub fn expand_depthwise_f32(
    pw: &ConvParams,
    pw_filter: &PackedConv,
    pw_bias: Option<&[f32]>,
    dw: &DepthwiseParams,
    dw_filter: &PackedDepthwise,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
) {
    assert!(can_fuse(pw, pw_filter, dw), "layers cannot be fused");
    let Some(b) = pw_filter.gemm() else {
        unreachable!("checked by can_fuse")
    };
    assert!(input.len() >= pw.input_len(), "input too short");
    assert!(output.len() >= dw.output_len(), "output too short");
    let row_len = dw.out_w * dw.out_c();
    let rows = dw.batch * dw.out_h;
    if row_len == 0 || rows == 0 {
        return;
    }
    let band = band_rows(dw);
    // One pointwise output row, and the input row it comes from.
    let (e_row, x_row) = (dw.in_w * dw.in_c, pw.in_w * pw.in_c);
    let per_band = band * e_row;
    assert!(scratch.len() >= per_band, "scratch shorter than one band");
    let output = &mut output[..rows * row_len];
    let input = &input[..pw.input_len()];
    parallel::for_each_part_with_scratch(
        output,
        row_len,
        grain(pw, dw),
        threads,
        scratch,
        per_band,
        |r0, part, piece| {
            let piece = &mut piece[..per_band];
            let n = part.len() / row_len;
            // The band holds pointwise rows `e0 .. e1`.
            let (mut e0, mut e1) = (0, 0);
            for (i, out) in part.chunks_exact_mut(row_len).enumerate() {
                let (lo, hi) = needed(dw, r0 + i);
                if lo < hi && !(e0 <= lo && hi <= e1) {
                    // Slide the band to start at `lo`, keeping the rows it already holds.
                    if (e0..e1).contains(&lo) {
                        piece.copy_within((lo - e0) * e_row..(e1 - e0) * e_row, 0);
                    } else {
                        e1 = lo;
                    }
                    e0 = lo;
                    // Fill up to the end of the last output row whose rows all fit: rows past
                    // it would only be moved to the front at the next slide. (With dilation,
                    // a window clipped by the bottom padding can end above the previous one.)
                    let mut fill = hi;
                    for r in r0 + i + 1..r0 + n {
                        match needed(dw, r) {
                            (a, z) if a == z => continue,
                            (_, z) if z <= e0 + band => fill = fill.max(z),
                            _ => break,
                        }
                    }
                    let m = (fill - e1) * dw.in_w;
                    gemm::gemm_f32_with(
                        &input[e1 * x_row..fill * x_row],
                        pw.in_c,
                        m,
                        b,
                        pw_bias,
                        pw.clamp,
                        &mut piece[(e1 - e0) * e_row..(fill - e0) * e_row],
                        1,
                        None,
                    );
                    e1 = fill;
                }
                depthwise::out_row_from(
                    dw,
                    &piece[..(e1 - e0) * e_row],
                    e0,
                    dw_filter,
                    r0 + i,
                    out,
                );
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Clamp;
    use crate::gemm::tests::{assert_same_bits, Rng};
    use crate::isa::Isa;

    fn scaled(rng: &mut Rng, len: usize, by: f32) -> Vec<f32> {
        rng.vec(len).into_iter().map(|v| v * by).collect()
    }

    /// Fused against the two layers apart, for every tier, several thread counts and band
    /// shapes whose band slides (the last case's band holds a fraction of its rows).
    #[test]
    fn fused_matches_layers_apart() {
        let mut rng = Rng(7);
        // (batch, h, w, in_c, mid_c, k, stride, dilation, pad, depth multiplier)
        let cases = [
            (1, 40, 9, 5, 24, 3, 1, 1, 1, 1),
            (1, 41, 12, 3, 40, 3, 2, 1, 1, 1),
            (2, 30, 7, 4, 17, 3, 2, 1, 0, 1),
            (1, 33, 8, 6, 16, 5, 1, 1, 2, 1),
            (2, 25, 6, 3, 12, 3, 1, 2, 2, 2),
            (1, 9, 5, 2, 9, 3, 2, 1, 4, 1),
            (1, 300, 40, 4, 24, 3, 2, 1, 1, 1),
        ];
        for (ci, &(batch, h, w, ic, mc, k, s, d, pad, dm)) in cases.iter().enumerate() {
            let pw = ConvParams {
                batch,
                in_h: h,
                in_w: w,
                in_c: ic,
                out_h: h,
                out_w: w,
                out_c: mc,
                kernel_h: 1,
                kernel_w: 1,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: 0,
                pad_left: 0,
                clamp: Clamp { min: 0.0, max: 6.0 },
            };
            let span = (k - 1) * d + 1;
            let out_h = (h + 2 * pad).saturating_sub(span) / s + 1;
            let out_w = (w + 2 * pad).saturating_sub(span) / s + 1;
            let dw = DepthwiseParams {
                batch,
                in_h: h,
                in_w: w,
                in_c: mc,
                depth_multiplier: dm,
                out_h,
                out_w,
                kernel_h: k,
                kernel_w: k,
                stride_h: s,
                stride_w: s,
                dilation_h: d,
                dilation_w: d,
                pad_top: pad,
                pad_left: pad,
                clamp: Clamp {
                    min: -1.5,
                    max: f32::INFINITY,
                },
            };
            let x = scaled(&mut rng, pw.input_len(), 2.0);
            let wp = rng.vec(mc * ic);
            let bp = scaled(&mut rng, mc, 0.5);
            let wd = rng.vec(dw.filter_len());
            let bd = scaled(&mut rng, dw.out_c(), 0.5);
            for isa in Isa::available() {
                let pf = PackedConv::new(&pw, &wp, isa);
                let df = PackedDepthwise::new(&dw, &wd, Some(&bd), isa);
                assert!(can_fuse(&pw, &pf, &dw));
                let mut mid = vec![0.0; pw.output_len()];
                let mut want = vec![0.0; dw.output_len()];
                crate::conv::conv2d_f32(
                    &pw,
                    &x,
                    &pf,
                    Some(&bp),
                    &mut mid,
                    &mut [],
                    &mut [],
                    1,
                    None,
                );
                depthwise::depthwise_conv2d_f32(&dw, &mid, &df, &mut want, 1);
                for threads in [1, 2, 3] {
                    let mut scratch = vec![f32::NAN; scratch_floats(&pw, &dw, threads)];
                    let mut got = vec![f32::NAN; dw.output_len()];
                    expand_depthwise_f32(
                        &pw,
                        &pf,
                        Some(&bp),
                        &dw,
                        &df,
                        &x,
                        &mut got,
                        &mut scratch,
                        threads,
                    );
                    assert_same_bits(
                        &want,
                        &got,
                        &format!("case {ci}, {isa:?}, {threads} threads"),
                    );
                }
            }
        }
    }
}
