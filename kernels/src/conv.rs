//! Float CONV_2D (NHWC input, filter `[OC, KH, KW, IC]`).
//!
//! The filter is packed once into a [`PackedB`] with `K = KH·KW·IC` and `N = OC`, so a
//! convolution is a GEMM whose A rows are the receptive fields of output pixels:
//! - A 1×1, stride-1, unpadded convolution *is* a GEMM on the input as it lies in memory
//!   (one pixel = one row of `IC` floats), so it runs without any copy.
//! - Everything else gathers receptive fields (im2col) for one block of output pixels at a
//!   time into a piece of caller-provided scratch, then multiplies that block. The block is
//!   the GEMM's cache block, so scratch stays small: `parts × block × K` floats, see
//!   [`scratch_len`].
//!
//! Out-of-bounds taps are written as zeros, which adds `x·0` terms to the sums. The reference
//! skips them instead; the two agree except for the sign of an exactly-zero sum and for
//! non-finite weights, which are outside the float tolerance contract anyway.

use crate::activation::Clamp;
use crate::gemm::{self, PackedB, MB};
use crate::parallel;

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

    /// Depth of the equivalent GEMM: one receptive field.
    fn k(&self) -> usize {
        self.kernel_h * self.kernel_w * self.in_c
    }

    /// Output pixels, i.e. GEMM rows.
    fn pixels(&self) -> usize {
        self.batch * self.out_h * self.out_w
    }

    /// True when the input can be used directly as the GEMM's A matrix.
    fn is_pointwise(&self) -> bool {
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
    packed: PackedB,
}

impl PackedConv {
    /// Packs a filter `[out_c, kernel_h, kernel_w, in_c]`.
    /// Precondition: `filter.len() >= out_c·kernel_h·kernel_w·in_c`.
    pub fn new(
        filter: &[f32],
        out_c: usize,
        kernel_h: usize,
        kernel_w: usize,
        in_c: usize,
    ) -> Self {
        PackedConv {
            packed: PackedB::from_transposed(filter, out_c, kernel_h * kernel_w * in_c),
        }
    }

    /// Bytes held by the packed filter (persistent memory of the op).
    pub fn byte_size(&self) -> usize {
        self.packed.byte_size()
    }
}

/// Floats of scratch [`conv2d_f32`] needs for these parameters and thread count (0 for a
/// pointwise convolution). Size one buffer with this at prepare time.
pub fn scratch_len(p: &ConvParams, threads: usize) -> usize {
    if p.is_pointwise() {
        return 0;
    }
    let (m, k) = (p.pixels(), p.k());
    let parts = parallel::max_parts(m, gemm::row_grain(p.out_c, k), threads);
    parts * MB.min(m) * k
}

/// CONV_2D: `output = clamp(conv(input, filter) + bias)`.
///
/// Preconditions (checked by the interpreter; `debug_assert`ed here): `input.len() ==
/// p.input_len()`, `output.len() == p.output_len()`, `filter` was packed with the same
/// `out_c, kernel_h, kernel_w, in_c`, `bias` is `None` or holds `out_c` values, and
/// `scratch.len() >= scratch_len(p, threads)`.
pub fn conv2d_f32(
    p: &ConvParams,
    input: &[f32],
    filter: &PackedConv,
    bias: Option<&[f32]>,
    output: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
) {
    let (m, k, n) = (p.pixels(), p.k(), p.out_c);
    debug_assert_eq!(input.len(), p.input_len());
    debug_assert_eq!(output.len(), p.output_len());
    debug_assert_eq!((filter.packed.k(), filter.packed.n()), (k, n));
    debug_assert!(bias.is_none_or(|b| b.len() >= n));
    debug_assert!(scratch.len() >= scratch_len(p, threads));
    if m == 0 || n == 0 {
        return;
    }
    if p.is_pointwise() {
        gemm::gemm_f32(
            input,
            p.in_c,
            m,
            &filter.packed,
            bias,
            p.clamp,
            output,
            threads,
        );
        return;
    }
    let output = &mut output[..m * n];
    let per_part = MB.min(m) * k;
    let grain = gemm::row_grain(n, k);
    parallel::for_each_part_with_scratch(
        output,
        n,
        grain,
        threads,
        scratch,
        per_part,
        |q0, part, sc| {
            let rows = part.len() / n;
            let mut i = 0;
            while i < rows {
                // Normally MB rows; a short scratch shrinks the block (and a scratch shorter than
                // one receptive field makes the slicing below fail loudly instead of looping).
                let mb = MB.min(rows - i).min((sc.len() / k.max(1)).max(1));
                let a = &mut sc[..mb * k];
                im2col(p, input, q0 + i, a);
                gemm::gemm_block(
                    a,
                    k,
                    mb,
                    &filter.packed,
                    bias,
                    p.clamp,
                    &mut part[i * n..(i + mb) * n],
                );
                i += mb;
            }
        },
    );
}

/// Writes the receptive fields of output pixels `q0, q0+1, ...` (flat index over
/// `[batch, out_h, out_w]`) as consecutive rows of `K = KH·KW·IC` floats, in filter order
/// `(ky, kx, ic)`, zeros for taps outside the input. `dst.len()` must be a multiple of K.
fn im2col(p: &ConvParams, input: &[f32], q0: usize, dst: &mut [f32]) {
    let ic = p.in_c;
    let kw_len = p.kernel_w * ic;
    if kw_len == 0 {
        return;
    }
    let k = p.kernel_h * kw_len;
    let (in_h, in_w) = (p.in_h as isize, p.in_w as isize);
    for (t, row) in dst.chunks_exact_mut(k).enumerate() {
        let q = q0 + t;
        let ox = q % p.out_w;
        let oy = (q / p.out_w) % p.out_h;
        let b = q / (p.out_w * p.out_h);
        let iy0 = (oy * p.stride_h) as isize - p.pad_top as isize;
        let ix0 = (ox * p.stride_w) as isize - p.pad_left as isize;
        for (ky, seg) in row.chunks_exact_mut(kw_len).enumerate() {
            let iy = iy0 + (ky * p.dilation_h) as isize;
            if iy < 0 || iy >= in_h {
                seg.fill(0.0);
                continue;
            }
            let line_start = (b * p.in_h + iy as usize) * p.in_w * ic;
            let line = &input[line_start..line_start + p.in_w * ic];
            if p.dilation_w == 1 {
                // Valid taps are one contiguous run of the input row: copy it in one go.
                let lo = (-ix0).clamp(0, p.kernel_w as isize) as usize;
                let hi = (in_w - ix0).clamp(lo as isize, p.kernel_w as isize) as usize;
                seg[..lo * ic].fill(0.0);
                if hi > lo {
                    let src = (ix0 + lo as isize) as usize * ic;
                    seg[lo * ic..hi * ic].copy_from_slice(&line[src..src + (hi - lo) * ic]);
                }
                seg[hi * ic..].fill(0.0);
            } else {
                for (kx, tap) in seg.chunks_exact_mut(ic).enumerate() {
                    let ix = ix0 + (kx * p.dilation_w) as isize;
                    if ix < 0 || ix >= in_w {
                        tap.fill(0.0);
                    } else {
                        let s = ix as usize * ic;
                        tap.copy_from_slice(&line[s..s + ic]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        let chans = [1, 3, 6, 15, 21];
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

    fn check(p: &ConvParams, rng: &mut Rng, what: &str) {
        let x = rng.vec(p.input_len());
        let w = rng.vec(p.out_c * p.kernel_h * p.kernel_w * p.in_c);
        let bias = rng.vec(p.out_c);
        let bias = if p.out_c % 2 == 0 {
            None
        } else {
            Some(&bias[..])
        };
        let packed = PackedConv::new(&w, p.out_c, p.kernel_h, p.kernel_w, p.in_c);
        let want = naive(p, &x, &w, bias);
        let mut first: Option<Vec<f32>> = None;
        for threads in [1, 2, 3] {
            let mut scratch = vec![f32::NAN; scratch_len(p, threads)];
            let mut out = vec![f32::NAN; p.output_len()];
            conv2d_f32(p, &x, &packed, bias, &mut out, &mut scratch, threads);
            assert_close(&out, &want, &format!("{what} {p:?}"));
            match &first {
                None => first = Some(out),
                Some(f) => assert_same_bits(f, &out, "conv threads"),
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

    #[test]
    fn pointwise_and_large_blocks() {
        let mut rng = Rng(42);
        // Pointwise (direct GEMM) with several cache blocks and thread parts.
        let mut p = ConvParams {
            batch: 2,
            in_h: 9,
            in_w: 11,
            in_c: 21,
            out_h: 9,
            out_w: 11,
            out_c: 35,
            kernel_h: 1,
            kernel_w: 1,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            clamp: Clamp::RELU,
        };
        assert_eq!(scratch_len(&p, 4), 0);
        check(&p, &mut rng, "pointwise");
        // 3×3 SAME with K > KC (two K slices) and M spanning several blocks.
        p.in_c = 40;
        p.kernel_h = 3;
        p.kernel_w = 3;
        p.pad_top = 1;
        p.pad_left = 1;
        assert!(scratch_len(&p, 1) > 0);
        check(&p, &mut rng, "3x3 same");
        // 1×1 stride 2 (a ResNet shortcut): goes through im2col.
        p.kernel_h = 1;
        p.kernel_w = 1;
        p.pad_top = 0;
        p.pad_left = 0;
        p.stride_h = 2;
        p.stride_w = 2;
        p.out_h = 5;
        p.out_w = 6;
        check(&p, &mut rng, "1x1 stride 2");
    }
}
