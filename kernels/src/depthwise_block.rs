//! A depthwise convolution together with the pointwise (1×1) convolutions around it that only
//! it feeds or is fed by: the "expand", "depthwise" and "project" layers of a MobileNet block,
//! run as one step.
//!
//! Unfused, each layer writes its whole output and the next reads it back through memory
//! (in MobileNetV2 up to 112×112×96 floats, 4.8 MB). Here each thread part of the output works
//! down its rows:
//! - with an *expand* layer, it computes only the expanded rows its depthwise windows need,
//!   a band of a few rows at a time that fits in L2, and slides that band down the image:
//!   rows that the next output row still needs are moved to the band's front rather than
//!   computed again;
//! - with a *project* layer, depthwise output rows collect in a small chunk, and each full
//!   chunk goes through the project GEMM (and a fused residual ADD) straight into the output.
//!
//! The intermediate tensors never exist, which also takes them out of the arena.
//!
//! Every value is computed exactly as unfused: a pointwise row by the same GEMM (each output
//! element sums its `K` products in the same order whatever the block of rows it is computed
//! in), and each depthwise output row by the same row kernel reading those values. So results
//! are bit-identical to the layers apart, for any thread count. Expanded rows at the edge of
//! a thread part may be computed by both neighbouring parts (the same values, into each part's
//! own band).

use crate::activation::Residual;
use crate::conv::{ConvParams, PackedConv};
use crate::depthwise::{self, DepthwiseParams, PackedDepthwise};
use crate::gemm::{self, PackedB};
use crate::parallel;

/// Floats a band of expanded rows aims for: 256 KiB, half an L2 cache, leaving room for the
/// rows of the input and of the output passing through beside it.
const BAND_FLOATS: usize = 1 << 16;
/// Floats a chunk of depthwise rows waiting for the project GEMM aims for (128 KiB).
const CHUNK_FLOATS: usize = 1 << 15;
/// A thread part computes again the expanded rows its first window shares with the previous
/// part's last: parts are made tall enough that these are at most 1 in this many of the rows
/// they compute. (Unit tests use 1, so that small images are split too.)
const HALO_SHARE: usize = if cfg!(test) { 1 } else { 16 };
/// Smallest intermediate (floats) worth fusing: 1 MiB, twice an L2 cache. Smaller ones stay
/// in cache between the two layers anyway, and neither take much of the arena nor gain any
/// speed. Measured on MobileNetV2 at 224×224 (AMD Zen 3, per-node profiles of fused and
/// unfused runs alternating): with expand layers alone, the 112×112×96 pair ×0.97 at one
/// thread and ×0.985 at two, the 56×56×144 pairs ×1.01 and ×0.995; with project layers too,
/// nodes 1–8 (three blocks) ×0.92 and ×0.91; the arena shrinks from 6.0 to 2.4 MB.
const MIN_FUSED_FLOATS: usize = 1 << 18;

/// A float pointwise convolution of the block: parameters, packed filter and bias.
#[derive(Clone, Copy, Debug)]
pub struct Pointwise<'a> {
    pub p: &'a ConvParams,
    pub filter: &'a PackedConv,
    pub bias: Option<&'a [f32]>,
}

impl Pointwise<'_> {
    /// The GEMM operand, when `filter` was packed for `p`, a pointwise GEMM.
    fn gemm(&self) -> Option<&PackedB> {
        (self.filter.params() == self.p && self.p.is_pointwise())
            .then(|| self.filter.gemm())
            .flatten()
    }
}

/// Whether `pw` can expand the input of `dw`: a pointwise GEMM whose output has the depthwise
/// input's shape.
pub fn can_expand(pw: &Pointwise, dw: &DepthwiseParams) -> bool {
    let p = pw.p;
    pw.gemm().is_some()
        && p.batch == dw.batch
        && p.out_h == dw.in_h
        && p.out_w == dw.in_w
        && p.out_c == dw.in_c
}

/// Whether `pw` can project the output of `dw`: a pointwise GEMM whose input has the
/// depthwise output's shape.
pub fn can_project(dw: &DepthwiseParams, pw: &Pointwise) -> bool {
    let p = pw.p;
    pw.gemm().is_some()
        && p.batch == dw.batch
        && p.in_h == dw.out_h
        && p.in_w == dw.out_w
        && p.in_c == dw.out_c()
}

/// Whether expanding `dw`'s input with `pw` in the block pays with `threads` threads: when
/// the expanded tensor is too large to stay in cache between the two layers, and the image is
/// tall enough for parts (see `HALO_SHARE`) to keep every thread busy.
pub fn worth_expanding(pw: &ConvParams, dw: &DepthwiseParams, threads: usize) -> bool {
    let rows = dw.batch * dw.out_h;
    pw.output_len() >= MIN_FUSED_FLOATS
        && (threads <= 1
            || parallel::split(rows, grain(Some(pw), dw, None), threads).parts >= threads)
}

/// Whether projecting `dw`'s output in the block pays: when that output is too large to stay
/// in cache between the two layers.
pub fn worth_projecting(dw: &DepthwiseParams) -> bool {
    dw.output_len() >= MIN_FUSED_FLOATS
}

/// Rows of expanded input a band holds: enough for [`BAND_FLOATS`], at least one window's
/// height, at most the whole input.
fn band_rows(dw: &DepthwiseParams) -> usize {
    let row = (dw.in_w * dw.in_c).max(1);
    (BAND_FLOATS / row)
        .max(window(dw))
        .min((dw.batch * dw.in_h).max(1))
}

/// Depthwise output rows a chunk holds before the project GEMM: at least one.
fn chunk_rows(dw: &DepthwiseParams) -> usize {
    (CHUNK_FLOATS / (dw.out_w * dw.out_c()).max(1)).max(1)
}

/// Input rows one depthwise window spans.
fn window(dw: &DepthwiseParams) -> usize {
    (dw.kernel_h.max(1) - 1)
        .saturating_mul(dw.dilation_h)
        .saturating_add(1)
}

/// Output rows per thread part, at least: parts of about [`parallel::MIN_MACS_PER_PART`], and, with an
/// expand layer, tall enough for [`HALO_SHARE`].
fn grain(expand: Option<&ConvParams>, dw: &DepthwiseParams, project: Option<&ConvParams>) -> usize {
    // Multiply-adds per output row; saturating, as only their order of magnitude matters.
    let macs = |dims: &[usize]| dims.iter().fold(1usize, |a, &d| a.saturating_mul(d));
    let mut row = macs(&[dw.out_w, dw.out_c(), dw.kernel_h, dw.kernel_w]);
    if let Some(p) = project {
        row = row.saturating_add(macs(&[p.in_w, p.in_c, p.out_c]));
    }
    let Some(e) = expand else {
        return parallel::MIN_MACS_PER_PART.div_ceil(row.max(1));
    };
    // Expanded rows per output row, on average.
    let per_row = dw.in_h.div_ceil(dw.out_h.max(1));
    row = row.saturating_add(macs(&[per_row, e.in_w, e.in_c, e.out_c]));
    let by_work = parallel::MIN_MACS_PER_PART.div_ceil(row.max(1));
    // n output rows read (n − 1)·stride + window rows, `window − stride` of them shared with
    // the previous part.
    let stride = dw.stride_h.max(1);
    let halo = window(dw).saturating_sub(stride);
    let by_halo = HALO_SHARE.saturating_mul(halo).saturating_sub(window(dw)) / stride + 1;
    by_work.max(by_halo)
}

/// Floats of a worker's band: `band_rows` expanded rows with an expand layer, else none.
fn band_floats(expand: bool, dw: &DepthwiseParams) -> usize {
    if expand {
        band_rows(dw) * dw.in_w * dw.in_c
    } else {
        0
    }
}

/// Scratch floats per worker: a band with an expand layer, a chunk with a project layer.
fn worker_floats(expand: bool, dw: &DepthwiseParams, project: bool) -> usize {
    let band = band_floats(expand, dw);
    let chunk = if project {
        chunk_rows(dw) * dw.out_w * dw.out_c()
    } else {
        0
    };
    band + chunk
}

/// Scratch floats [`depthwise_block_f32`] needs for `threads` threads (one piece per
/// worker; less scratch means fewer workers, down to one).
pub fn scratch_floats(
    expand: Option<&ConvParams>,
    dw: &DepthwiseParams,
    project: Option<&ConvParams>,
    threads: usize,
) -> usize {
    let rows = dw.batch * dw.out_h;
    let workers = parallel::max_parts(rows, grain(expand, dw, project), threads);
    workers * worker_floats(expand.is_some(), dw, project.is_some())
}

/// The expanded rows (flat over `[batch, in_h]`) that depthwise output row `r` (flat over
/// `[batch, out_h]`) reads: an empty range when its window lies in the padding.
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

/// A band of expanded rows `e0 .. e1` (flat over `[batch, in_h]`) sliding down the image.
struct Band<'a> {
    rows: &'a mut [f32],
    e0: usize,
    e1: usize,
}

impl Band<'_> {
    /// Makes the band hold the rows depthwise output row `r` reads, computing new rows with
    /// `b` from `input`; `last` is the part's last output row (rows for later output rows
    /// are computed ahead only while the band has room for them).
    fn cover(
        &mut self,
        dw: &DepthwiseParams,
        pw: &Pointwise,
        b: &PackedB,
        input: &[f32],
        r: usize,
        last: usize,
    ) {
        let (lo, hi) = needed(dw, r);
        if lo == hi || (self.e0 <= lo && hi <= self.e1) {
            return;
        }
        let (e_row, x_row) = (dw.in_w * dw.in_c, pw.p.in_w * pw.p.in_c);
        // Slide the band to start at `lo`, keeping the rows it already holds.
        if (self.e0..self.e1).contains(&lo) {
            self.rows
                .copy_within((lo - self.e0) * e_row..(self.e1 - self.e0) * e_row, 0);
        } else {
            self.e1 = lo;
        }
        self.e0 = lo;
        // Fill up to the end of the last output row whose rows all fit: rows past it would
        // only be moved to the front at the next slide. (With dilation, a window clipped by
        // the bottom padding can end above the previous one.)
        let room = self.rows.len() / e_row.max(1);
        let mut fill = hi;
        for next in r + 1..=last {
            match needed(dw, next) {
                (a, z) if a == z => continue,
                (_, z) if z <= lo + room => fill = fill.max(z),
                _ => break,
            }
        }
        let (from, to) = (self.e1 - self.e0, fill - self.e0);
        gemm::gemm_f32_with(
            &input[self.e1 * x_row..fill * x_row],
            pw.p.in_c,
            (fill - self.e1) * dw.in_w,
            b,
            pw.bias,
            pw.p.clamp,
            &mut self.rows[from * e_row..to * e_row],
            1,
            None,
        );
        self.e1 = fill;
    }
}

/// `output = project(depthwise(expand(input)))`, each of `expand` and `project` optional (at
/// least one given), with a residual ADD fused into the project layer (`residual`, laid out
/// like the output) when given; the depthwise's filter, bias and clamp are in `dw_filter`.
///
/// Preconditions (checked; a violation panics): [`can_expand`] and [`can_project`] for the
/// layers given, `dw_filter` prepared for `dw`, `input` and `output` (and `residual`) at least
/// as long as the block's, and `scratch` at least one worker's piece (see
/// [`scratch_floats`]; more allows more threads).
#[allow(clippy::too_many_arguments)]
pub fn depthwise_block_f32(
    expand: Option<&Pointwise>,
    dw: &DepthwiseParams,
    dw_filter: &PackedDepthwise,
    project: Option<&Pointwise>,
    residual: Option<&Residual>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
) {
    assert!(expand.is_some() || project.is_some(), "nothing to fuse");
    let eb = expand.map(|e| {
        assert!(can_expand(e, dw), "expand layer does not fit");
        e.gemm().expect("checked by can_expand")
    });
    let pb = project.map(|p| {
        assert!(can_project(dw, p), "project layer does not fit");
        p.gemm().expect("checked by can_project")
    });
    let in_len = expand.map_or(dw.input_len(), |e| e.p.input_len());
    assert!(input.len() >= in_len, "input too short");
    let out_c = project.map_or(dw.out_c(), |p| p.p.out_c);
    let row_len = dw.out_w * out_c;
    let rows = dw.batch * dw.out_h;
    assert!(output.len() >= rows * row_len, "output too short");
    assert!(
        residual.is_none_or(|r| project.is_some() && r.data.len() >= rows * row_len),
        "residual without a project layer, or too short"
    );
    if row_len == 0 || rows == 0 {
        return;
    }
    let per_worker = worker_floats(expand.is_some(), dw, project.is_some());
    assert!(
        scratch.len() >= per_worker,
        "scratch shorter than one piece"
    );
    let band_len = band_floats(expand.is_some(), dw);
    let dw_row = dw.out_w * dw.out_c();
    let chunk = chunk_rows(dw);
    let grain = grain(expand.map(|e| e.p), dw, project.map(|p| p.p));
    let input = &input[..in_len];
    let output = &mut output[..rows * row_len];
    parallel::for_each_part_with_scratch(
        output,
        row_len,
        grain,
        threads,
        scratch,
        per_worker,
        |r0, part, piece| {
            let (band_rows, waiting) = piece[..per_worker].split_at_mut(band_len);
            let mut band = Band {
                rows: band_rows,
                e0: 0,
                e1: 0,
            };
            let n = part.len() / row_len;
            // Depthwise rows waiting in `waiting` for the project GEMM.
            let mut pending = 0;
            for i in 0..n {
                let r = r0 + i;
                let (src, origin) = match (expand, eb) {
                    (Some(e), Some(b)) => {
                        band.cover(dw, e, b, input, r, r0 + n - 1);
                        (
                            &band.rows[..(band.e1 - band.e0) * dw.in_w * dw.in_c],
                            band.e0,
                        )
                    }
                    _ => (input, 0),
                };
                let (Some(p), Some(b)) = (project, pb) else {
                    let out = &mut part[i * row_len..(i + 1) * row_len];
                    depthwise::out_row_from(dw, src, origin, dw_filter, r, out);
                    continue;
                };
                let slot = &mut waiting[pending * dw_row..(pending + 1) * dw_row];
                depthwise::out_row_from(dw, src, origin, dw_filter, r, slot);
                pending += 1;
                if pending == chunk || i + 1 == n {
                    let first = i + 1 - pending;
                    let at = (r0 + first) * row_len;
                    let res = residual.map(|res| Residual {
                        data: &res.data[at..],
                        clamp: res.clamp,
                    });
                    gemm::gemm_f32_with(
                        &waiting[..pending * dw_row],
                        p.p.in_c,
                        pending * dw.out_w,
                        b,
                        p.bias,
                        p.p.clamp,
                        &mut part[first * row_len..(i + 1) * row_len],
                        1,
                        res.as_ref(),
                    );
                    pending = 0;
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Clamp;
    use crate::conv::tests::pointwise;
    use crate::gemm::tests::{assert_same_bits, Rng};
    use crate::isa::Isa;

    fn scaled(rng: &mut Rng, len: usize, by: f32) -> Vec<f32> {
        rng.vec(len).into_iter().map(|v| v * by).collect()
    }

    /// Every combination of layers against the layers apart, for every tier, several thread
    /// counts and shapes whose band slides (the last case's band holds a fraction of its rows)
    /// and whose chunks fill several times per part.
    #[test]
    fn fused_matches_layers_apart() {
        let mut rng = Rng(7);
        // (batch, h, w, in_c, mid_c, k, stride, dilation, pad, depth multiplier, out_c)
        let cases = [
            (1, 40, 9, 5, 24, 3, 1, 1, 1, 1, 7),
            (1, 41, 12, 3, 40, 3, 2, 1, 1, 1, 16),
            (2, 30, 7, 4, 17, 3, 2, 1, 0, 1, 9),
            (1, 33, 8, 6, 16, 5, 1, 1, 2, 1, 24),
            (2, 25, 6, 3, 12, 3, 1, 2, 2, 2, 5),
            (1, 9, 5, 2, 9, 3, 2, 1, 4, 1, 3),
            (1, 300, 40, 4, 24, 3, 2, 1, 1, 1, 8),
        ];
        let relu6 = Clamp { min: 0.0, max: 6.0 };
        for (ci, &(batch, h, w, ic, mc, k, s, d, pad, dm, oc)) in cases.iter().enumerate() {
            let ex = pointwise([batch, h, w, ic], mc, relu6);
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
            let pr = pointwise([batch, out_h, out_w, dw.out_c()], oc, Clamp::IDENTITY);
            let x = scaled(&mut rng, ex.input_len(), 2.0);
            let (we, be) = (rng.vec(mc * ic), scaled(&mut rng, mc, 0.5));
            let (wd, bd) = (rng.vec(dw.filter_len()), scaled(&mut rng, dw.out_c(), 0.5));
            let (wp, bp) = (rng.vec(oc * dw.out_c()), scaled(&mut rng, oc, 0.5));
            // The residual spans the clamp and holds an infinity and a NaN.
            let mut res = scaled(&mut rng, pr.output_len(), 8.0);
            res[3] = f32::INFINITY;
            res[pr.output_len() - 2] = f32::NAN;
            let residual = Residual {
                data: &res,
                clamp: Clamp::RELU6,
            };
            for isa in Isa::available() {
                let ef = PackedConv::new(&ex, &we, isa);
                let df = PackedDepthwise::new(&dw, &wd, Some(&bd), isa);
                let pf = PackedConv::new(&pr, &wp, isa);
                let e = Pointwise {
                    p: &ex,
                    filter: &ef,
                    bias: Some(&be),
                };
                let p = Pointwise {
                    p: &pr,
                    filter: &pf,
                    bias: Some(&bp),
                };
                assert!(can_expand(&e, &dw) && can_project(&dw, &p));
                // The layers apart.
                let mut mid = vec![0.0; ex.output_len()];
                crate::conv::conv2d_f32(
                    &ex,
                    &x,
                    &ef,
                    Some(&be),
                    &mut mid,
                    &mut [],
                    &mut [],
                    1,
                    None,
                );
                let mut dwo = vec![0.0; dw.output_len()];
                depthwise::depthwise_conv2d_f32(&dw, &mid, &df, &mut dwo, 1);
                let mut out = vec![0.0; pr.output_len()];
                let r = Some(&residual);
                crate::conv::conv2d_f32(
                    &pr,
                    &dwo,
                    &pf,
                    Some(&bp),
                    &mut out,
                    &mut [],
                    &mut [],
                    1,
                    r,
                );
                let mut plain = vec![0.0; pr.output_len()];
                crate::conv::conv2d_f32(
                    &pr,
                    &dwo,
                    &pf,
                    Some(&bp),
                    &mut plain,
                    &mut [],
                    &mut [],
                    1,
                    None,
                );
                // Expand, project, whether the residual is added, input, expected output.
                type Combo<'a> = (
                    Option<&'a Pointwise<'a>>,
                    Option<&'a Pointwise<'a>>,
                    bool,
                    &'a [f32],
                    &'a [f32],
                );
                let combos: [Combo; 4] = [
                    (Some(&e), None, false, &x, &dwo),
                    (None, Some(&p), true, &mid, &out),
                    (Some(&e), Some(&p), true, &x, &out),
                    (Some(&e), Some(&p), false, &x, &plain),
                ];
                for (e, p, with_res, input, want) in combos {
                    let res = with_res.then_some(&residual);
                    let len = if p.is_some() {
                        pr.output_len()
                    } else {
                        dw.output_len()
                    };
                    for threads in [1, 2, 3] {
                        let floats = scratch_floats(e.map(|e| e.p), &dw, p.map(|p| p.p), threads);
                        let mut scratch = vec![f32::NAN; floats];
                        let mut got = vec![f32::NAN; len];
                        depthwise_block_f32(
                            e,
                            &dw,
                            &df,
                            p,
                            res,
                            input,
                            &mut got,
                            &mut scratch,
                            threads,
                        );
                        let what = format!(
                            "case {ci}, {isa:?}, expand {}, project {}, residual {with_res}, {threads} threads",
                            e.is_some(),
                            p.is_some()
                        );
                        assert_same_bits(want, &got, &what);
                    }
                }
            }
        }
    }
}
