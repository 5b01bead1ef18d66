//! int8 DEPTHWISE_CONV_2D with weights packed once at preparation for the CPU tier,
//! bit-exact with [`depthwise_conv2d`] (and so with TFLite's reference kernel) in every tier.
//!
//! [`Isa::Generic`] (and layers the SIMD kernel does not take: channel multiplier ≠ 1, more
//! than 64 taps) runs the scalar [`depthwise_conv2d`]. [`Isa::Avx2`] runs
//! `x86::qdepthwise` and [`Isa::Neon`] `neon::qdepthwise`, on the same weights: int16, taps
//! in pairs, channels in the lane order of the AVX2 kernel's interleaved accumulators.
//! When the channels are a multiple of 16 the kernels read the int8 input directly: `Σ w·(x − zp) + bias = Σ w·x + (bias − zp·Σ w)`, so the zero point's
//! share moves into the bias once at preparation, and a padding tap reads a row of `zp`
//! (its `w·(zp − zp)` is 0, as in the reference). The int32 sums are the same numbers, so
//! the results are bit-identical. Other channel counts first widen the input to int16 with
//! the zero point subtracted (channels padded to a multiple of 16; padding taps read
//! zeros). Output rows are split over threads; each element is computed the same way
//! whatever the split.

// The SIMD layouts run on x86-64 and aarch64; elsewhere they compile but stay unused.
#![cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code, unused_imports)
)]

use super::channel_consts::ChannelConsts;
use super::conv::ConvQuant;
use super::depthwise::depthwise_conv2d;
use super::dw_window::{DwJob, CB, MAX_TAPS};
use super::error::{check_len, QuantError};
use super::fixedpoint::multipliers_fit;
use super::geometry::ConvGeometry;
use crate::isa::Isa;
use crate::parallel;

/// Channel held by each of the 16 lanes of a step: the interleaved accumulators hold
/// channels 0–3 and 8–11, then 4–7 and 12–15.
const LANE_CHANNEL: [usize; CB] = [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15];
/// Below this many output values a layer runs on one thread.
const MIN_PARALLEL_OUTPUTS: usize = 1 << 15;

/// An int8 DEPTHWISE_CONV_2D ready to run.
#[derive(Debug, Clone)]
pub struct PackedDepthwiseI8 {
    g: ConvGeometry,
    q: ConvQuant,
    bias: Option<Vec<i32>>,
    imp: Impl,
}

#[derive(Debug, Clone)]
enum Impl {
    Generic(Vec<i8>),
    Simd(SimdWeights),
}

#[derive(Debug, Clone)]
struct SimdWeights {
    /// Channels rounded up to a multiple of 16.
    cp: usize,
    pairs: usize,
    weights: Vec<i16>,
    consts: ChannelConsts,
    /// Set when the kernel reads the int8 input directly (see the module docs).
    direct: Option<Direct>,
}

/// The direct int8 path's constants.
#[derive(Debug, Clone)]
struct Direct {
    /// `bias − zp·Σ w` per lane, in the order of `SimdWeights::consts`.
    bias: Vec<i32>,
    /// `cp` copies of the zero point, read by padding taps.
    pad: Vec<i8>,
}

impl PackedDepthwiseI8 {
    /// Packs `filter` (`[1, KH, KW, OC]`) for tier `isa`.
    pub fn new(
        g: &ConvGeometry,
        q: ConvQuant,
        filter: &[i8],
        bias: Option<&[i32]>,
        isa: Isa,
    ) -> Result<Self, QuantError> {
        g.validate()?;
        let taps = g.filter_h * g.filter_w;
        check_len("filter", taps * g.out_c, filter.len())?;
        if let Some(b) = bias {
            check_len("bias", g.out_c, b.len())?;
        }
        check_len(
            "multipliers",
            g.out_c,
            q.multipliers.len().min(q.shifts.len()),
        )?;
        let offset_fits = (-32_639..=32_639).contains(&q.input_offset);
        let tier = match isa.or_generic() {
            Isa::Avx2 => cfg!(target_arch = "x86_64"),
            Isa::Neon | Isa::NeonDot => cfg!(target_arch = "aarch64"),
            Isa::Generic => false,
        };
        let simd = tier
            && offset_fits
            && g.in_c == g.out_c
            && taps <= MAX_TAPS
            && multipliers_fit(&q.multipliers);
        let imp = if simd {
            Impl::Simd(SimdWeights::new(g, &q, filter, bias))
        } else {
            Impl::Generic(filter[..taps * g.out_c].to_vec())
        };
        Ok(PackedDepthwiseI8 {
            g: *g,
            q,
            bias: bias.map(<[i32]>::to_vec),
            imp,
        })
    }

    /// Whether the SIMD kernel runs this layer.
    pub fn is_simd(&self) -> bool {
        matches!(self.imp, Impl::Simd(_))
    }

    /// Bytes held for the life of the layer.
    pub fn byte_size(&self) -> usize {
        let imp = match &self.imp {
            Impl::Generic(f) => f.len(),
            Impl::Simd(s) => {
                s.weights.len() * 2
                    + s.consts.byte_size()
                    + s.direct
                        .as_ref()
                        .map_or(0, |d| d.bias.len() * 4 + d.pad.len())
            }
        };
        imp + self.bias.as_ref().map_or(0, |b| b.len() * 4)
            + (self.q.multipliers.len() + self.q.shifts.len()) * 4
    }

    /// `i16` elements of scratch [`run`](Self::run) needs.
    pub fn scratch_len(&self) -> usize {
        match &self.imp {
            Impl::Generic(_) => 0,
            Impl::Simd(s) if s.direct.is_some() => 0,
            Impl::Simd(s) => (self.g.batches * self.g.in_h * self.g.in_w + 1) * s.cp,
        }
    }

    /// Runs the layer: `input` `[N, H, W, C]`, `output` `[N, OH, OW, OC]`, `scratch` at
    /// least [`scratch_len`](Self::scratch_len) long; up to `threads` threads.
    pub fn run(
        &self,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [i16],
        threads: usize,
    ) -> Result<(), QuantError> {
        let g = &self.g;
        match &self.imp {
            Impl::Generic(filter) => {
                depthwise_conv2d(g, &self.q, input, filter, self.bias.as_deref(), output)
            }
            Impl::Simd(s) => {
                check_len("input", g.input_len(), input.len())?;
                check_len("output", g.output_len(), output.len())?;
                check_len("scratch", self.scratch_len(), scratch.len())?;
                let n = g.output_len();
                self.run_simd(
                    s,
                    &input[..g.input_len()],
                    &mut output[..n],
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
        use crate::neon::qdepthwise;
        #[cfg(target_arch = "x86_64")]
        use crate::x86::qdepthwise;
        let g = &self.g;
        if output.is_empty() {
            return;
        }
        let threads = if output.len() < MIN_PARALLEL_OUTPUTS {
            1
        } else {
            threads
        };
        if let Some(d) = &s.direct {
            let job = self.job(s, input, &d.pad, &d.bias);
            parallel::for_each_part(output, g.out_w * g.out_c, 1, threads, |row0, part| {
                // SAFETY: the tier was confirmed at preparation; the job matches the geometry (the
                // direct path is only built when `cp` is the channel count, so `input` is
                // `pixels·cp` long); `part` is whole output rows starting at `row0`.
                unsafe { qdepthwise::depthwise_part(&job, row0, part) }
            });
            return;
        }
        let xw = &mut scratch[..self.scratch_len()];
        let (body, zero) = xw.split_at_mut(xw.len() - s.cp);
        zero.fill(0);
        // SAFETY: SIMD weights exist only when AVX2 was confirmed at preparation; `body`
        // holds `pixels·cp` values for `pixels·in_c` inputs (in_c ≥ 1 by validation of a
        // non-empty output).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            crate::x86::qconv::widen(input, g.in_c, body, s.cp, self.q.input_offset)
        };
        #[cfg(target_arch = "aarch64")]
        super::conv_packed::widen_portable(input, g.in_c, body, s.cp, self.q.input_offset);
        let job = self.job(s, &*body, &*zero, &s.consts.bias);
        parallel::for_each_part(output, g.out_w * g.out_c, 1, threads, |row0, part| {
            // SAFETY: the tier was confirmed at preparation; the job matches the geometry;
            // `part` is whole output rows starting at `row0`.
            unsafe { qdepthwise::depthwise_part(&job, row0, part) }
        });
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn job<'a, T>(
        &'a self,
        s: &'a SimdWeights,
        x: &'a [T],
        pad: &'a [T],
        bias: &'a [i32],
    ) -> DwJob<'a, T> {
        DwJob {
            g: &self.g,
            cp: s.cp,
            pairs: s.pairs,
            weights: &s.weights,
            rq: super::channel_consts::Requant {
                bias,
                ..s.consts.view(&self.q)
            },
            x,
            pad,
        }
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn run_simd(&self, _: &SimdWeights, _: &[i8], _: &mut [i8], _: &mut [i16], _: usize) {
        unreachable!("SIMD int8 weights are only built on x86-64 and aarch64")
    }
}

impl SimdWeights {
    fn new(g: &ConvGeometry, q: &ConvQuant, filter: &[i8], bias: Option<&[i32]>) -> Self {
        let c = g.out_c;
        let taps = g.filter_h * g.filter_w;
        let pairs = taps.div_ceil(2);
        let cp = c.next_multiple_of(CB);
        let blocks = cp / CB;
        let mut weights = vec![0_i16; blocks * pairs * 2 * CB];
        let mut consts = ChannelConsts::zeros(cp);
        for nb in 0..blocks {
            for (lane, &off) in LANE_CHANNEL.iter().enumerate() {
                let ch = nb * CB + off;
                if ch >= c {
                    continue;
                }
                let at = nb * CB + lane;
                consts.set(at, q, ch, bias.map_or(0, |b| b[ch]));
                for t in 0..taps {
                    let dst = (nb * pairs + t / 2) * 2 * CB + lane * 2 + t % 2;
                    weights[dst] = i16::from(filter[t * c + ch]);
                }
            }
        }
        // The direct path needs whole 16-channel steps (so no load runs past a pixel) and a
        // zero point that is an int8 value.
        let zp = q
            .input_offset
            .checked_neg()
            .and_then(|z| i8::try_from(z).ok());
        let direct = zp.filter(|_| cp == c).map(|zp| {
            let bias = (0..cp)
                .map(|at| {
                    let (nb, lane) = (at / CB, at % CB);
                    let w_sum = (0..taps).fold(0_i32, |acc, t| {
                        acc + i32::from(weights[(nb * pairs + t / 2) * 2 * CB + lane * 2 + t % 2])
                    });
                    // bias + input_offset·Σw: the input offset is −zp. Wrapping, like the
                    // reference's int32 sums (the same value modulo 2^32).
                    consts.bias[at].wrapping_add(q.input_offset.wrapping_mul(w_sum))
                })
                .collect();
            Direct {
                bias,
                pad: vec![zp; cp],
            }
        });
        SimdWeights {
            cp,
            pairs,
            weights,
            direct,
            consts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::conv::tests::{random_geometry, Lcg};
    use crate::quant::{FusedActivation, QuantParams};

    fn check(r: &mut Lcg, g: &ConvGeometry, case: usize) {
        let c = g.out_c;
        let scales: Vec<f32> = (0..c).map(|_| 0.002 + 0.02 * r.unit()).collect();
        let input_p = QuantParams::new(0.02 + 0.05 * r.unit(), r.range(-128, 127));
        let output_p = QuantParams::new(0.05 + 0.3 * r.unit(), r.range(-128, 127));
        let act = [
            FusedActivation::None,
            FusedActivation::Relu,
            FusedActivation::Relu6,
        ][case % 3];
        let q = ConvQuant::new_i8(input_p, &scales, output_p, act, c).unwrap();
        let input = r.vec_i8(g.input_len(), -128, 127);
        let filter = r.vec_i8(g.filter_h * g.filter_w * c, -128, 127);
        let bias: Vec<i32> = (0..c).map(|_| r.range(-50000, 50000) as i32).collect();
        let bias = (case % 4 != 0).then_some(&bias[..]);
        let mut want = vec![0_i8; g.output_len()];
        depthwise_conv2d(g, &q, &input, &filter, bias, &mut want).unwrap();
        for isa in Isa::available() {
            let p = PackedDepthwiseI8::new(g, q.clone(), &filter, bias, isa).unwrap();
            assert_eq!(p.is_simd(), isa != Isa::Generic && g.in_c == g.out_c);
            for threads in [1, 2, 3] {
                let mut scratch = vec![0_i16; p.scratch_len()];
                let mut out = vec![0_i8; g.output_len()];
                p.run(&input, &mut out, &mut scratch, threads).unwrap();
                assert_eq!(out, want, "case {case} {isa} threads {threads} {g:?}");
            }
        }
    }

    #[test]
    fn whole_channel_steps_read_int8_directly() {
        let mut r = Lcg(21);
        for case in 0..24 {
            let c = 16 * r.range(1, 4) as usize;
            let g = random_geometry(&mut r, c, c);
            check(&mut r, &g, case);
            let q = ConvQuant::new_i8(
                QuantParams::new(0.03, 5),
                &vec![0.01; c],
                QuantParams::new(0.1, -3),
                FusedActivation::None,
                c,
            )
            .unwrap();
            let filter = vec![1_i8; g.filter_h * g.filter_w * c];
            // So `check` above ran the direct path (which needs no scratch) in the SIMD tiers.
            for isa in Isa::available().into_iter().filter(|&i| i != Isa::Generic) {
                let p = PackedDepthwiseI8::new(&g, q.clone(), &filter, None, isa).unwrap();
                assert!(p.is_simd() && p.scratch_len() == 0);
            }
        }
    }

    #[test]
    fn every_tier_matches_scalar_kernel() {
        let mut r = Lcg(8);
        for case in 0..100 {
            let c = r.range(1, 40) as usize;
            let m = if case % 7 == 0 { 2 } else { 1 };
            let mut g = random_geometry(&mut r, c, c * m);
            if case % 5 == 0 {
                // A wider image so that parts split over threads.
                g.in_h = 40;
                g.in_w = 40;
                g.out_h =
                    (40 + 2 * g.pad_top - (g.filter_h - 1) * g.dilation_h - 1) / g.stride_h + 1;
                g.out_w =
                    (40 + 2 * g.pad_left - (g.filter_w - 1) * g.dilation_w - 1) / g.stride_w + 1;
            }
            check(&mut r, &g, case);
        }
    }
}
