//! Float DEPTHWISE_CONV_2D (NHWC input, filter `[1, KH, KW, IC·M]`, output channel
//! `oc = ic·M + m`).
//!
//! A direct kernel: each output pixel's channels are contiguous, and so are the input's and
//! the filter's for one tap, so the inner loops run over channels in vectors. The filter and
//! bias are copied once, at prepare time, into [`PackedDepthwise`] with the channel count
//! rounded up to whole vectors (zeros past the end), so channel tails load full vectors.
//!
//! Each output value is the sum over in-bounds taps in `(ky, kx)` order starting from zero,
//! plus the bias, then the clamp: the reference's order, whatever the blocking or the thread
//! split (work is split over output rows). Tiers, for depth multiplier 1:
//! - [`Isa::Avx2`] / [`Isa::Neon`]: fused multiply-adds on 8 / 4 channels at a time; pixels
//!   whose window lies inside the input go four at a time, sharing each filter load (any
//!   kernel size, stride and dilation: 3×3 and 5×5 at stride 1 and 2 are the common cases).
//! - [`Isa::Generic`] (and every tier for depth multipliers above 1): portable code with a
//!   separate multiply and add, channel blocks of 16 accumulated in registers.

use crate::activation::Clamp;
use crate::isa::Isa;
use crate::parallel;

/// Channels per register block of the portable code.
const CB: usize = 16;
/// Channel counts are padded to a multiple of this in [`PackedDepthwise`]: the widest vector.
const PAD_TO: usize = 8;
/// Minimum multiply-adds per thread part: more than the other float kernels'
/// ([`parallel::MIN_MACS_PER_PART`]) because parts are whole output rows, and at 2^15 a
/// 14×14 MobileNetV2 layer split into parts of one or two rows of uneven cost and ran
/// ×1.04–1.14 slower at two threads (the 7×7 ones gained). Unit tests use 1 so that even
/// small cases are split and thread-count independence is really exercised.
const MIN_MACS_PER_PART: usize = if cfg!(test) { 1 } else { 1 << 18 };

/// Shapes and options of one DEPTHWISE_CONV_2D. `depth_multiplier` is `M` from the shapes
/// (filter channels / input channels), not the option field. Padding is explicit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthwiseParams {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub depth_multiplier: usize,
    pub out_h: usize,
    pub out_w: usize,
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

impl DepthwiseParams {
    /// Output channels, `in_c · depth_multiplier`.
    pub fn out_c(&self) -> usize {
        self.in_c * self.depth_multiplier
    }

    /// Elements of the input `[batch, in_h, in_w, in_c]`.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.in_c
    }

    /// Elements of the output `[batch, out_h, out_w, out_c]`.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_h * self.out_w * self.out_c()
    }

    /// Elements of the filter `[1, kernel_h, kernel_w, out_c]`.
    pub fn filter_len(&self) -> usize {
        self.kernel_h * self.kernel_w * self.out_c()
    }
}

/// A DEPTHWISE_CONV_2D filter and bias prepared for [`depthwise_conv2d_f32`].
#[derive(Clone, Debug)]
pub struct PackedDepthwise {
    p: DepthwiseParams,
    isa: Isa,
    /// Channels rounded up to a multiple of [`PAD_TO`].
    oc_pad: usize,
    /// `[kernel_h·kernel_w][oc_pad]`, zeros past `out_c`.
    weights: Vec<f32>,
    /// `oc_pad` values (zeros when the op has no bias, which adds `+0.0` like the reference's
    /// missing-bias path).
    bias: Vec<f32>,
}

impl PackedDepthwise {
    /// Copies `filter` (`p.filter_len()` floats, `[1, KH, KW, OC]`) and `bias` (`None` or
    /// `OC` values) for tier `isa` (a tier the CPU lacks falls back to [`Isa::Generic`]).
    /// Short slices panic (caller bug).
    pub fn new(p: &DepthwiseParams, filter: &[f32], bias: Option<&[f32]>, isa: Isa) -> Self {
        let oc = p.out_c();
        let oc_pad = oc.div_ceil(PAD_TO) * PAD_TO;
        let taps = p.kernel_h * p.kernel_w;
        let mut weights = vec![0.0f32; taps * oc_pad];
        for (dst, src) in weights
            .chunks_exact_mut(oc_pad.max(1))
            .zip(filter[..taps * oc].chunks_exact(oc.max(1)))
        {
            dst[..oc].copy_from_slice(src);
        }
        let mut b = vec![0.0f32; oc_pad];
        if let Some(bias) = bias {
            b[..oc].copy_from_slice(&bias[..oc]);
        }
        PackedDepthwise {
            p: *p,
            isa: isa.or_generic().float_tier(),
            oc_pad,
            weights,
            bias: b,
        }
    }

    /// Bytes held (persistent memory of the op).
    pub fn byte_size(&self) -> usize {
        (self.weights.len() + self.bias.len()) * std::mem::size_of::<f32>()
    }

    /// The kernel tier in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }
}

/// DEPTHWISE_CONV_2D: `output = clamp(depthwise(input, filter) + bias)`.
///
/// Preconditions (checked; a violation panics): `filter` was prepared with these `p`,
/// `input.len() >= p.input_len()`, `output.len() >= p.output_len()`.
pub fn depthwise_conv2d_f32(
    p: &DepthwiseParams,
    input: &[f32],
    filter: &PackedDepthwise,
    output: &mut [f32],
    threads: usize,
) {
    assert_eq!(*p, filter.p, "filter prepared for other parameters");
    assert!(input.len() >= p.input_len(), "input too short");
    assert!(output.len() >= p.output_len(), "output too short");
    let oc = p.out_c();
    let row_len = p.out_w * oc;
    if row_len == 0 || p.batch * p.out_h == 0 {
        return;
    }
    let input = &input[..p.input_len()];
    let output = &mut output[..p.batch * p.out_h * row_len];
    let macs_per_row = (row_len * p.kernel_h * p.kernel_w).max(1);
    let grain = MIN_MACS_PER_PART.div_ceil(macs_per_row);
    parallel::for_each_part(output, row_len, grain, threads, |r0, part| {
        for (i, row) in part.chunks_exact_mut(row_len).enumerate() {
            out_row(p, input, filter, r0 + i, row);
        }
    });
}

/// One output row `r` (flat index over `[batch, out_h]`).
fn out_row(p: &DepthwiseParams, input: &[f32], f: &PackedDepthwise, r: usize, row: &mut [f32]) {
    out_row_from(p, input, 0, f, r, row);
}

/// [`out_row`] from part of the input: `input` starts at input row `origin` (flat over
/// `[batch, in_h]`) and holds at least the rows output row `r` reads.
pub(crate) fn out_row_from(
    p: &DepthwiseParams,
    input: &[f32],
    origin: usize,
    f: &PackedDepthwise,
    r: usize,
    row: &mut [f32],
) {
    let (b, oy) = (r / p.out_h, r % p.out_h);
    let iy0 = (oy * p.stride_h) as isize - p.pad_top as isize;
    let (ky0, ky1) = tap_range(iy0, p.dilation_h, p.kernel_h, p.in_h);
    // Start of the first valid tap row of the input (any in-bounds value when none is valid).
    let line = if ky1 > ky0 {
        // In bounds: iy0 + ky0·dilation_h is a valid row, so the cast is exact.
        (b * p.in_h + (iy0 + (ky0 * p.dilation_h) as isize) as usize - origin) * p.in_w * p.in_c
    } else {
        0
    };
    let g = RowGeom {
        line,
        ny: ky1 - ky0,
        x_row: p.dilation_h * p.in_w * p.in_c,
        w0: ky0 * p.kernel_w * f.oc_pad,
    };
    if p.depth_multiplier == 1 {
        match f.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => return crate::x86::depthwise::row(p, input, f, &g, row),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => return crate::neon::depthwise::row(p, input, f, &g, row),
            _ => {}
        }
    }
    row_portable(p, input, f, &g, row);
}

/// Where one output row's valid tap rows start in the input and the filter.
pub(crate) struct RowGeom {
    /// Input offset of the first valid tap row (column 0, channel 0).
    pub line: usize,
    /// Number of valid tap rows.
    pub ny: usize,
    /// Input floats between tap rows.
    pub x_row: usize,
    /// Filter offset of the first valid tap row.
    pub w0: usize,
}

impl PackedDepthwise {
    pub(crate) fn oc_pad(&self) -> usize {
        self.oc_pad
    }

    pub(crate) fn weights(&self) -> &[f32] {
        &self.weights
    }

    pub(crate) fn bias(&self) -> &[f32] {
        &self.bias
    }
}

/// Output columns `[lo, hi)` whose whole window lies inside the input horizontally.
pub(crate) fn interior_columns(p: &DepthwiseParams) -> (usize, usize) {
    let span = (p.kernel_w - 1) * p.dilation_w;
    let lo = p.pad_left.div_ceil(p.stride_w.max(1)).min(p.out_w);
    // ox·stride − pad + span <= in_w − 1
    let hi = match (p.in_w + p.pad_left).checked_sub(span + 1) {
        Some(v) => (v / p.stride_w.max(1) + 1).min(p.out_w),
        None => 0,
    };
    (lo, hi.max(lo))
}

/// Range `[lo, hi)` of kernel taps `t` with `0 <= origin + t·dilation < size`: always one
/// contiguous run. A zero dilation (never valid in a model, but not worth a panic) puts every
/// tap on `origin`.
pub(crate) fn tap_range(
    origin: isize,
    dilation: usize,
    taps: usize,
    size: usize,
) -> (usize, usize) {
    let size = size as isize;
    if dilation == 0 {
        let all = if origin >= 0 && origin < size {
            taps
        } else {
            0
        };
        return (0, all);
    }
    let d = dilation as isize;
    let lo = if origin >= 0 {
        0
    } else {
        (-origin + d - 1) / d
    };
    let hi = if size <= origin {
        0
    } else {
        (size - origin + d - 1) / d
    };
    let lo = (lo as usize).min(taps);
    let hi = (hi as usize).min(taps).max(lo);
    (lo, hi)
}

/// The in-bounds taps of one window: an `ny × nx` grid (valid taps form a rectangle) with
/// the offsets of its first tap and the steps between taps, in the input and the filter.
struct Window {
    ny: usize,
    nx: usize,
    x0: usize,
    x_row: usize,
    x_col: usize,
    w0: usize,
    w_row: usize,
    w_col: usize,
}

/// The portable row: any depth multiplier.
fn row_portable(
    p: &DepthwiseParams,
    input: &[f32],
    f: &PackedDepthwise,
    g: &RowGeom,
    row: &mut [f32],
) {
    let oc = p.out_c();
    for (ox, px) in row.chunks_exact_mut(oc).enumerate() {
        let ix0 = (ox * p.stride_w) as isize - p.pad_left as isize;
        let (kx0, kx1) = tap_range(ix0, p.dilation_w, p.kernel_w, p.in_w);
        let nx = kx1 - kx0;
        let x0 = if g.ny > 0 && nx > 0 {
            // In bounds, so the cast is exact.
            g.line + (ix0 + (kx0 * p.dilation_w) as isize) as usize * p.in_c
        } else {
            0
        };
        let win = Window {
            ny: g.ny,
            nx,
            x0,
            x_row: g.x_row,
            x_col: p.dilation_w * p.in_c,
            w0: g.w0 + kx0 * f.oc_pad,
            w_row: p.kernel_w * f.oc_pad,
            w_col: f.oc_pad,
        };
        if p.depth_multiplier == 1 {
            pixel_m1(input, &f.weights, &f.bias, p.clamp, &win, px);
        } else {
            pixel_general(
                input,
                &f.weights,
                &f.bias,
                p.clamp,
                p.depth_multiplier,
                &win,
                px,
            );
        }
    }
}

/// Depth multiplier 1: channel blocks held in registers across all taps.
#[inline(always)]
fn pixel_m1(
    input: &[f32],
    filter: &[f32],
    bias: &[f32],
    clamp: Clamp,
    win: &Window,
    px: &mut [f32],
) {
    let c = px.len();
    let mut c0 = 0;
    while c0 + CB <= c {
        let mut acc = [0.0f32; CB];
        for ty in 0..win.ny {
            for tx in 0..win.nx {
                let xi = win.x0 + ty * win.x_row + tx * win.x_col + c0;
                let wi = win.w0 + ty * win.w_row + tx * win.w_col + c0;
                let (x, w) = (&input[xi..xi + CB], &filter[wi..wi + CB]);
                for ((a, &xv), &wv) in acc.iter_mut().zip(x).zip(w) {
                    *a += xv * wv;
                }
            }
        }
        finish(&acc, &bias[c0..c0 + CB], clamp, &mut px[c0..c0 + CB]);
        c0 += CB;
    }
    if c0 < c {
        let t = c - c0;
        let mut acc = [0.0f32; CB];
        for ty in 0..win.ny {
            for tx in 0..win.nx {
                let xi = win.x0 + ty * win.x_row + tx * win.x_col + c0;
                let wi = win.w0 + ty * win.w_row + tx * win.w_col + c0;
                let (x, w) = (&input[xi..xi + t], &filter[wi..wi + t]);
                for ((a, &xv), &wv) in acc[..t].iter_mut().zip(x).zip(w) {
                    *a += xv * wv;
                }
            }
        }
        finish(&acc[..t], &bias[c0..c], clamp, &mut px[c0..]);
    }
}

/// Depth multiplier above 1: like [`pixel_m1`], with the input value of each output channel
/// (`x[oc / m]`) gathered through a per-block index table.
#[inline(always)]
fn pixel_general(
    input: &[f32],
    filter: &[f32],
    bias: &[f32],
    clamp: Clamp,
    m: usize,
    win: &Window,
    px: &mut [f32],
) {
    let c = px.len();
    let ic = c / m;
    let mut c0 = 0;
    while c0 < c {
        let t = CB.min(c - c0);
        let src: [usize; CB] = std::array::from_fn(|j| (c0 + j.min(t - 1)) / m);
        let mut acc = [0.0f32; CB];
        for ty in 0..win.ny {
            for tx in 0..win.nx {
                let xi = win.x0 + ty * win.x_row + tx * win.x_col;
                let wi = win.w0 + ty * win.w_row + tx * win.w_col + c0;
                let (x, w) = (&input[xi..xi + ic], &filter[wi..wi + t]);
                for ((a, &s), &wv) in acc[..t].iter_mut().zip(&src).zip(w) {
                    *a += x[s] * wv;
                }
            }
        }
        finish(&acc[..t], &bias[c0..c0 + t], clamp, &mut px[c0..c0 + t]);
        c0 += t;
    }
}

/// `out = clamp(acc + bias)`.
#[inline(always)]
fn finish(acc: &[f32], bias: &[f32], clamp: Clamp, out: &mut [f32]) {
    for ((o, &a), &bv) in out.iter_mut().zip(acc).zip(bias) {
        *o = clamp.apply(a + bv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::{assert_close, assert_same_bits, Rng};

    /// Direct loops over (pixel, ic, m) in the reference's order.
    fn naive(p: &DepthwiseParams, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let oc_n = p.out_c();
        let mut out = vec![0.0; p.output_len()];
        for b in 0..p.batch {
            for oy in 0..p.out_h {
                for ox in 0..p.out_w {
                    for ic in 0..p.in_c {
                        for m in 0..p.depth_multiplier {
                            let oc = ic * p.depth_multiplier + m;
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
                                    let xv = x[((b * p.in_h + iy as usize) * p.in_w + ix as usize)
                                        * p.in_c
                                        + ic];
                                    s += xv * w[(ky * p.kernel_w + kx) * oc_n + oc];
                                }
                            }
                            let v = s + bias.map_or(0.0, |bb| bb[oc]);
                            out[((b * p.out_h + oy) * p.out_w + ox) * oc_n + oc] =
                                v.max(p.clamp.min).min(p.clamp.max);
                        }
                    }
                }
            }
        }
        out
    }

    /// Wider rows than the random cases, so that the four-pixel interior path of the vector
    /// tiers runs many times next to border pixels and channel tails.
    #[test]
    fn wide_rows_3x3_and_5x5() {
        let mut rng = Rng(77);
        for (case, &(k, stride, c)) in [(3, 1, 8), (3, 2, 21), (5, 1, 16), (5, 2, 13), (3, 1, 40)]
            .iter()
            .enumerate()
        {
            let (in_h, in_w, pad) = (9, 23 + case, (k - 1) / 2);
            let p = DepthwiseParams {
                batch: 1,
                in_h,
                in_w,
                in_c: c,
                depth_multiplier: 1,
                out_h: (in_h + 2 * pad - k) / stride + 1,
                out_w: (in_w + 2 * pad - k) / stride + 1,
                kernel_h: k,
                kernel_w: k,
                stride_h: stride,
                stride_w: stride,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: pad,
                pad_left: pad,
                clamp: Clamp::RELU6,
            };
            let x = rng.vec(p.input_len());
            let w = rng.vec(p.filter_len());
            let bias = rng.vec(c);
            let want = naive(&p, &x, &w, Some(&bias));
            for isa in Isa::available() {
                let packed = PackedDepthwise::new(&p, &w, Some(&bias), isa);
                let mut one = vec![f32::NAN; p.output_len()];
                depthwise_conv2d_f32(&p, &x, &packed, &mut one, 1);
                assert_close(&one, &want, &format!("{isa} {p:?}"));
                let mut two = vec![f32::NAN; p.output_len()];
                depthwise_conv2d_f32(&p, &x, &packed, &mut two, 2);
                assert_same_bits(&one, &two, "threads");
            }
        }
    }

    #[test]
    fn interior_columns_are_exact() {
        for (in_w, k, s, d, pad) in [
            (10usize, 3, 1, 1, 1),
            (9, 3, 2, 1, 1),
            (7, 5, 1, 2, 4),
            (2, 3, 1, 1, 0),
        ] {
            let eff = (k - 1) * d + 1;
            let out_w = (in_w + 2 * pad).saturating_sub(eff) / s + 1;
            let p = DepthwiseParams {
                batch: 1,
                in_h: 1,
                in_w,
                in_c: 1,
                depth_multiplier: 1,
                out_h: 1,
                out_w,
                kernel_h: 1,
                kernel_w: k,
                stride_h: 1,
                stride_w: s,
                dilation_h: 1,
                dilation_w: d,
                pad_top: 0,
                pad_left: pad,
                clamp: Clamp::NONE,
            };
            let (lo, hi) = interior_columns(&p);
            for ox in 0..out_w {
                let ix0 = (ox * s) as isize - pad as isize;
                let last = ix0 + ((k - 1) * d) as isize;
                let inside = ix0 >= 0 && last < in_w as isize;
                assert_eq!(
                    inside,
                    ox >= lo && ox < hi,
                    "{in_w} {k} {s} {d} {pad} ox={ox}"
                );
            }
        }
    }

    #[test]
    fn random_depthwise_matches_naive() {
        let mut rng = Rng(0xdead_beef_1234);
        let chans = [1, 3, 6, 15, 16, 21, 40];
        for case in 0..200 {
            let kernel_h = 1 + rng.below(3);
            let kernel_w = 1 + rng.below(4);
            let (stride_h, stride_w) = (1 + rng.below(3), 1 + rng.below(3));
            let (dilation_h, dilation_w) = (1 + rng.below(2), 1 + rng.below(2));
            let (in_h, in_w) = (1 + rng.below(10), 1 + rng.below(10));
            let (pad_top, pad_left) = (rng.below(3), rng.below(3));
            let (pad_bottom, pad_right) = (rng.below(3), rng.below(3));
            let eff_h = (kernel_h - 1) * dilation_h + 1;
            let eff_w = (kernel_w - 1) * dilation_w + 1;
            let p = DepthwiseParams {
                batch: 1 + rng.below(2),
                in_h,
                in_w,
                in_c: chans[rng.below(chans.len())],
                depth_multiplier: [1, 1, 2, 3][case % 4],
                out_h: (in_h + pad_top + pad_bottom).saturating_sub(eff_h) / stride_h + 1,
                out_w: (in_w + pad_left + pad_right).saturating_sub(eff_w) / stride_w + 1,
                kernel_h,
                kernel_w,
                stride_h,
                stride_w,
                dilation_h,
                dilation_w,
                pad_top,
                pad_left,
                clamp: [Clamp::NONE, Clamp::RELU6, Clamp::RELU_N1_TO_1][case % 3],
            };
            let x = rng.vec(p.input_len());
            let w = rng.vec(p.filter_len());
            let bias = rng.vec(p.out_c());
            let bias = if case % 5 == 0 { None } else { Some(&bias[..]) };
            let want = naive(&p, &x, &w, bias);
            for isa in Isa::available() {
                let packed = PackedDepthwise::new(&p, &w, bias, isa);
                let mut first = vec![f32::NAN; p.output_len()];
                depthwise_conv2d_f32(&p, &x, &packed, &mut first, 1);
                assert_close(&first, &want, &format!("{isa} depthwise {p:?}"));
                for threads in [2, 3] {
                    let mut out = vec![f32::NAN; p.output_len()];
                    depthwise_conv2d_f32(&p, &x, &packed, &mut out, threads);
                    assert_same_bits(&first, &out, &format!("{isa} depthwise threads"));
                }
            }
        }
    }
}
