//! Hybrid CONV_2D (f32 activations, int8 weights) on the int16 convolution kernels of the
//! int8 path, with the same results as the scalar [`hybrid_conv2d`].
//!
//! Each batch image is quantized as [`hybrid_conv2d`] quantizes it (scale and zero point
//! per image), widened with its zero point subtracted, and convolved by the AVX2 or NEON
//! int16 kernel of [`conv_packed`](super::conv_packed): their int32 sums are exact, so they
//! equal the scalar kernel's. Only the epilogue differs from the int8 path: the sum is
//! converted to f32 and scaled, biased and clamped in the scalar kernel's order, each
//! product and sum rounded on its own (no fused multiply-add).

// The SIMD path runs on x86-64 and aarch64; elsewhere it compiles but stays unused.
#![cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code, unused_imports)
)]

use super::conv_packed::{int16_tier, SimdWeights};
use super::conv_window::ConvJob;
use super::error::{check_len, QuantError};
use super::geometry::ConvGeometry;
use super::hybrid::{
    hybrid_conv2d, quantize_asymmetric_in, quantize_symmetric_in, HybridConvParams,
};
use crate::isa::Isa;

/// Output channels per packed block of the int16 kernels.
const NR: usize = 16;

/// The float epilogue the SIMD kernels apply to a hybrid convolution's sums:
/// per channel `((f32)acc · filter_scale[c]) · input_scale + bias[c]`, then the clamp;
/// per tensor `(0 + (f32)acc · tensor_scale) + bias[c]`, clamped only with a bias.
pub(crate) struct HybridOut<'a> {
    /// The whole output of the image, `[pixels][out_c]`.
    pub out: *mut f32,
    pub out_c: usize,
    /// Per-lane filter scales, padded to whole blocks of 16.
    pub filter_scales: &'a [f32],
    /// Per-lane bias, padded to whole blocks of 16.
    pub bias: Option<&'a [f32]>,
    pub per_channel: bool,
    /// The image's quantization scale (per-channel form).
    pub input_scale: f32,
    /// `input_scale · filter_scale[0]` (per-tensor form).
    pub tensor_scale: f32,
    pub lo: f32,
    pub hi: f32,
}

// SAFETY: the parts that share a `HybridOut` write disjoint pixels × channel blocks of
// `out`; everything else is read-only.
unsafe impl Sync for HybridOut<'_> {}

/// A hybrid CONV_2D (groups = 1) ready to run.
#[derive(Debug, Clone)]
pub struct PackedHybridConv {
    g: ConvGeometry,
    p: HybridConvParams,
    bias: Option<Vec<f32>>,
    imp: Impl,
    /// The tier the SIMD path was packed for (its quantizer loops too).
    isa: Isa,
}

#[derive(Debug, Clone)]
enum Impl {
    /// The scalar kernel on the filter as stored.
    Generic(Vec<i8>),
    /// The int16 kernel's weights, with filter scales (and bias, if any) padded to blocks.
    Simd {
        w: Box<SimdWeights>,
        scales: Vec<f32>,
        bias: Option<Vec<f32>>,
    },
}

impl PackedHybridConv {
    /// Packs `filter` (`[out_c, filter_h, filter_w, in_c]`) for tier `isa` (a tier the CPU
    /// lacks, or one without the int16 kernel, runs the scalar kernel).
    pub fn new(
        p: HybridConvParams,
        g: &ConvGeometry,
        filter: &[i8],
        bias: Option<&[f32]>,
        isa: Isa,
    ) -> Result<Self, QuantError> {
        g.validate()?;
        let row_len = g.filter_h * g.filter_w * g.in_c;
        check_len("filter", g.out_c * row_len, filter.len())?;
        check_len("filter scales", g.out_c, p.filter_scales.len())?;
        if let Some(b) = bias {
            check_len("bias", g.out_c, b.len())?;
        }
        let imp = if int16_tier(isa) {
            let lanes = g.out_c.div_ceil(NR) * NR;
            let pad = |v: &[f32]| {
                let mut out = vec![0.0; lanes];
                out[..g.out_c].copy_from_slice(&v[..g.out_c]);
                out
            };
            Impl::Simd {
                w: Box::new(SimdWeights::pack(&image_geometry(g), filter)),
                scales: pad(&p.filter_scales),
                bias: bias.map(pad),
            }
        } else {
            Impl::Generic(filter[..g.out_c * row_len].to_vec())
        };
        Ok(PackedHybridConv {
            g: *g,
            p,
            bias: bias.map(|b| b[..g.out_c].to_vec()),
            imp,
            isa: isa.or_generic(),
        })
    }

    /// Bytes held for the life of the layer.
    pub fn byte_size(&self) -> usize {
        let imp = match &self.imp {
            Impl::Generic(f) => f.len(),
            Impl::Simd { w, scales, bias } => {
                w.byte_size() + (scales.len() + bias.as_ref().map_or(0, Vec::len)) * 4
            }
        };
        imp + (self.p.filter_scales.len() + self.bias.as_ref().map_or(0, Vec::len)) * 4
    }

    /// Scratch [`run`](Self::run) needs: (`i8` elements for a quantized image, `i16`
    /// elements for the kernel's widened input).
    pub fn scratch_len(&self) -> (usize, usize) {
        let image = self.g.in_h * self.g.in_w * self.g.in_c;
        match &self.imp {
            Impl::Generic(_) => (image, 0),
            Impl::Simd { w, .. } => (image, w.scratch_len(&image_geometry(&self.g))),
        }
    }

    /// Runs the convolution: `input` `[N, H, W, IC]` f32, `output` `[N, OH, OW, OC]`; up to
    /// `threads` threads. The scratch slices are at least [`scratch_len`](Self::scratch_len)
    /// long.
    pub fn run(
        &self,
        input: &[f32],
        output: &mut [f32],
        scratch_q: &mut [i8],
        scratch_w: &mut [i16],
        threads: usize,
    ) -> Result<(), QuantError> {
        let g = &self.g;
        let (w, scales, bias) = match &self.imp {
            Impl::Generic(filter) => {
                return hybrid_conv2d(
                    &self.p,
                    g,
                    1,
                    input,
                    filter,
                    self.bias.as_deref(),
                    scratch_q,
                    output,
                )
            }
            Impl::Simd { w, scales, bias } => (w, scales, bias),
        };
        let (nq, nw) = self.scratch_len();
        check_len("input", g.input_len(), input.len())?;
        check_len("output", g.output_len(), output.len())?;
        check_len("scratch", nq, scratch_q.len())?;
        check_len("scratch", nw, scratch_w.len())?;
        let ig = image_geometry(g);
        let (in_img, out_img) = (ig.input_len(), ig.output_len());
        if out_img == 0 {
            return Ok(());
        }
        let q = &mut scratch_q[..nq];
        let xw = &mut scratch_w[..nw];
        let isa = self.isa;
        for (x, y) in input[..g.input_len()]
            .chunks_exact(in_img)
            .zip(output.chunks_exact_mut(out_img))
        {
            let (scale, zp) = if self.p.per_channel {
                quantize_asymmetric_in(isa, x, q)
            } else {
                (quantize_symmetric_in(isa, x, q), 0)
            };
            let out = HybridOut {
                out: y.as_mut_ptr(),
                out_c: g.out_c,
                filter_scales: scales,
                bias: bias.as_deref(),
                per_channel: self.p.per_channel,
                input_scale: scale,
                tensor_scale: scale * self.p.filter_scales[0],
                lo: self.p.act_min,
                hi: self.p.act_max,
            };
            // SAFETY: the SIMD weights exist only for a tier the CPU has (checked at
            // preparation), packed for `ig`; `q` is one image and `xw` the scratch their
            // run needs; `part` does not read the job's requantization constants.
            unsafe { run_simd(w, &ig, q, -zp, xw, threads, &out) };
        }
        Ok(())
    }
}

/// One batch image of `g`: images are quantized, so convolved, one at a time.
fn image_geometry(g: &ConvGeometry) -> ConvGeometry {
    ConvGeometry { batches: 1, ..*g }
}

/// # Safety
/// As for [`SimdWeights::run`]; `out` describes `ig`'s whole output.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe fn run_simd(
    w: &SimdWeights,
    ig: &ConvGeometry,
    q: &[i8],
    input_offset: i32,
    xw: &mut [i16],
    threads: usize,
    out: &HybridOut<'_>,
) {
    #[cfg(target_arch = "aarch64")]
    use crate::neon::qconv;
    #[cfg(target_arch = "x86_64")]
    use crate::x86::qconv;
    let rq = super::channel_consts::Requant::unused();
    let part = |job: &ConvJob<'_>, pix0, n, mine| {
        // SAFETY: the caller's contract; parts write disjoint pixels × channel blocks of
        // `out`.
        unsafe { qconv::conv_part_hybrid(job, pix0, n, mine, out) }
    };
    // SAFETY: forwarded contract.
    unsafe { w.run(ig, q, input_offset, xw, threads, rq, part) }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn run_simd(
    _: &SimdWeights,
    _: &ConvGeometry,
    _: &[i8],
    _: i32,
    _: &mut [i16],
    _: usize,
    _: &HybridOut<'_>,
) {
    unreachable!("SIMD weights are only built on x86-64 and aarch64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::conv::tests::{random_geometry, Lcg};
    use crate::quant::hybrid::{hybrid_conv_scratch_len, quantize_asymmetric, quantize_symmetric};
    use crate::quant::FusedActivation;

    const ACTS: [FusedActivation; 4] = [
        FusedActivation::None,
        FusedActivation::Relu,
        FusedActivation::Relu6,
        FusedActivation::ReluN1To1,
    ];

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Runs `g` both ways in every tier the CPU has and checks the outputs bit for bit.
    fn check(r: &mut Lcg, g: &ConvGeometry, case: usize) {
        let scales: Vec<f32> = match case % 3 {
            // Per tensor (symmetric input quantization).
            0 => vec![0.003 + r.unit() * 0.01],
            // Per channel, all equal: still the per-tensor path.
            1 => vec![0.0071; g.out_c],
            // Per channel (asymmetric input quantization).
            _ => (0..g.out_c).map(|_| 0.001 + r.unit() * 0.02).collect(),
        };
        let act = ACTS[case % ACTS.len()];
        let p = HybridConvParams::new(&scales, g.out_c, 1, act).unwrap();
        let filter = r.vec_i8(g.out_c * g.filter_h * g.filter_w * g.in_c, -127, 127);
        let bias: Option<Vec<f32>> =
            (case % 2 == 0).then(|| (0..g.out_c).map(|_| r.unit() * 4.0 - 2.0).collect());
        // Mostly positive inputs, as after a ReLU, for some cases: the asymmetric
        // quantizer's zero point then sits at an end of the range.
        let shift = if case % 5 == 0 { 0.0 } else { 0.5 };
        let input: Vec<f32> = (0..g.input_len())
            .map(|i| match (case % 7, i % 13) {
                // Exact zeros and ties of the rounding.
                (0, 3) => 0.0,
                (1, 5) => -0.0,
                _ => (r.unit() - shift) * 6.0,
            })
            .collect();
        let mut want = vec![0.0_f32; g.output_len()];
        let mut q = vec![0_i8; hybrid_conv_scratch_len(g)];
        hybrid_conv2d(
            &p,
            g,
            1,
            &input,
            &filter,
            bias.as_deref(),
            &mut q,
            &mut want,
        )
        .unwrap();
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for threads in [1, 2] {
                let k = PackedHybridConv::new(p.clone(), g, &filter, bias.as_deref(), isa).unwrap();
                let (nq, nw) = k.scratch_len();
                let mut got = vec![f32::NAN; g.output_len()];
                k.run(
                    &input,
                    &mut got,
                    &mut vec![0; nq],
                    &mut vec![0; nw],
                    threads,
                )
                .unwrap();
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{g:?} case {case} {isa:?} x{threads}"
                );
            }
        }
    }

    #[test]
    fn every_tier_matches_scalar_kernel() {
        let mut r = Lcg(11);
        let mut case = 0;
        // Channel counts around the kernels' blocks: rows mode below 64 input channels,
        // narrow last blocks, partial vectors.
        for (ic, oc) in [
            (1, 1),
            (3, 5),
            (6, 15),
            (15, 21),
            (16, 16),
            (17, 24),
            (8, 33),
            (70, 9),
        ] {
            for _ in 0..6 {
                let g = random_geometry(&mut r, ic, oc);
                check(&mut r, &g, case);
                case += 1;
            }
        }
    }

    #[test]
    fn pointwise_and_large_layers_match_scalar_kernel() {
        let mut r = Lcg(5);
        let g = |h: usize, w: usize, ic: usize, oc: usize, k: usize, s: usize| {
            let pad = (k - 1) / 2;
            ConvGeometry {
                batches: 2,
                in_h: h,
                in_w: w,
                in_c: ic,
                out_h: (h + 2 * pad - k) / s + 1,
                out_w: (w + 2 * pad - k) / s + 1,
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
        };
        for (case, geo) in [
            g(9, 11, 24, 40, 1, 1),
            g(16, 16, 20, 26, 3, 1),
            g(17, 13, 96, 72, 3, 2),
            g(32, 32, 3, 15, 3, 1),
        ]
        .iter()
        .enumerate()
        {
            for c in 0..3 {
                check(&mut r, geo, case * 3 + c);
            }
        }
    }

    /// The vector quantizer loops against the scalar ones, on rows with the values that
    /// decide the rounding and the range: ties, signed zeros, extremes, NaN and infinities.
    #[test]
    fn quantizer_tiers_agree() {
        let specials = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            0.499_999_97,
            1.5,
            -2.5,
            127.0,
            -128.0,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1e-30,
        ];
        let mut r = Lcg(3);
        for len in [0, 1, 7, 8, 9, 16, 23, 64, 100] {
            for trial in 0..40 {
                let row: Vec<f32> = (0..len)
                    .map(|_| {
                        if trial % 4 != 0 && r.range(0, 9) == 0 {
                            specials[r.range(0, specials.len() as i64 - 1) as usize]
                        } else {
                            (r.unit() - 0.3) * 10.0
                        }
                    })
                    .collect();
                let mut want = vec![0_i8; len];
                let mut got = vec![0_i8; len];
                for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
                    let a = quantize_asymmetric(&row, &mut want);
                    let b = quantize_asymmetric_in(isa, &row, &mut got);
                    assert_eq!((a.0.to_bits(), a.1), (b.0.to_bits(), b.1), "{row:?}");
                    assert_eq!(got, want, "{row:?}");
                    let a = quantize_symmetric(&row, &mut want);
                    let b = quantize_symmetric_in(isa, &row, &mut got);
                    assert_eq!(a.to_bits(), b.to_bits(), "{row:?}");
                    assert_eq!(got, want, "{row:?}");
                }
            }
        }
    }
}
