//! int8 FULLY_CONNECTED with weights packed once at preparation for the CPU tier,
//! bit-exact with [`fully_connected_i8`] in every tier.
//!
//! [`Isa::Generic`] runs the scalar [`fully_connected_i8`]. [`Isa::Avx2`] and [`Isa::Neon`]
//! keep the weights as int16 with the filter offset added, rows padded with zeros to a
//! multiple of 16; at each run an input row is widened the same way (`x + input_offset`)
//! into scratch, the sums `Σ (w + w_off)(x + x_off)` come from `x86::qfc` or `neon::qfc`,
//! and bias and the (double-precision) requantization are the scalar kernel's own.
//! [`Isa::NeonDot`] runs int8 models (filter offset 0) with `sdot` on the int8 input as it
//! is, the input offset's share `x_off·Σw` added to each unit's sum.

// The SIMD layouts run on x86-64 and aarch64; elsewhere they compile but stay unused.
#![cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code, unused_imports)
)]

#[cfg(target_arch = "aarch64")]
use crate::neon::qfc::{dots, Src as LaneSrc};
#[cfg(target_arch = "x86_64")]
use crate::x86::{qdepthwise::Src as LaneSrc, qfc::dots};

use super::conv::filter_row_sums;
use super::error::{check_len, QuantError};
use super::fully_connected::{fully_connected_i8, FcQuant, FcShape};
use super::params::QuantElem;
use crate::isa::Isa;

/// Weight rows are padded to a multiple of this many values.
const LANES: usize = 16;

/// An int8 FULLY_CONNECTED ready to run.
#[derive(Debug, Clone)]
pub struct PackedFcI8 {
    q: FcQuant,
    shape: FcShape,
    bias: Option<Vec<i32>>,
    imp: Impl,
}

#[derive(Debug, Clone)]
enum Impl {
    Generic {
        filter: Vec<i8>,
        row_sums: Vec<i32>,
    },
    /// `[units][dp]` weights plus the filter offset, `dp` = depth rounded up to 16.
    Simd {
        weights: SimdWeights,
        dp: usize,
    },
    /// [`Isa::NeonDot`] with a filter offset of 0 (int8 models): `[units][dp]` int8
    /// weights multiplied with the int8 input by `sdot`, and each unit's weight sum, which
    /// carries the input offset: `Σ w·(x + x_off) = Σ w·x + x_off·Σ w`.
    Dot {
        weights: Vec<i8>,
        dp: usize,
        w_sums: Vec<i32>,
    },
}

/// The SIMD weights: int8 as stored when the filter offset is 0 (int8 models; the kernel
/// widens them as it loads, and a one-row layer, which streams its weights once, reads half
/// the bytes), else widened to int16 with the offset added (uint8 models).
#[derive(Debug, Clone)]
enum SimdWeights {
    I8(Vec<i8>),
    I16(Vec<i16>),
}

impl PackedFcI8 {
    /// Packs `filter` (`[units, depth]`) for tier `isa`.
    pub fn new(
        q: FcQuant,
        shape: FcShape,
        filter: &[i8],
        bias: Option<&[i32]>,
        isa: Isa,
    ) -> Result<Self, QuantError> {
        let n = shape
            .units
            .checked_mul(shape.depth)
            .ok_or(QuantError::BadGeometry("fully connected size overflow"))?;
        check_len("filter", n, filter.len())?;
        if let Some(b) = bias {
            check_len("bias", shape.units, b.len())?;
        }
        // Offsets within ±255 keep |w'|, |x'| ≤ 383, so a vpmaddwd pair sum cannot overflow.
        let small = |o: i32| (-255..=255).contains(&o);
        let tier = match isa.or_generic() {
            Isa::Avx2 => cfg!(target_arch = "x86_64"),
            Isa::Neon | Isa::NeonDot => cfg!(target_arch = "aarch64"),
            Isa::Generic => false,
        };
        let simd = tier && small(q.input_offset) && small(q.filter_offset);
        let dot = cfg!(target_arch = "aarch64")
            && isa.or_generic() == Isa::NeonDot
            && q.filter_offset == 0;
        let imp = if dot {
            let dp = shape.depth.next_multiple_of(LANES);
            Impl::Dot {
                weights: pack_rows(filter, shape, dp, |w| w),
                dp,
                w_sums: filter_row_sums(filter, shape.units, shape.depth),
            }
        } else if simd {
            let dp = shape.depth.next_multiple_of(LANES);
            let weights = if q.filter_offset == 0 {
                SimdWeights::I8(pack_rows(filter, shape, dp, |w| w))
            } else {
                let off = q.filter_offset;
                SimdWeights::I16(pack_rows(filter, shape, dp, |w| {
                    (i32::from(w) + off) as i16
                }))
            };
            Impl::Simd { weights, dp }
        } else {
            Impl::Generic {
                filter: filter[..n].to_vec(),
                row_sums: filter_row_sums(filter, shape.units, shape.depth),
            }
        };
        Ok(PackedFcI8 {
            q,
            shape,
            bias: bias.map(<[i32]>::to_vec),
            imp,
        })
    }

    /// Whether the SIMD kernel runs this layer.
    pub fn is_simd(&self) -> bool {
        matches!(self.imp, Impl::Simd { .. } | Impl::Dot { .. })
    }

    /// Bytes held for the life of the layer.
    pub fn byte_size(&self) -> usize {
        let imp = match &self.imp {
            Impl::Generic { filter, row_sums } => filter.len() + row_sums.len() * 4,
            Impl::Simd {
                weights: SimdWeights::I8(w),
                ..
            } => w.len(),
            Impl::Simd {
                weights: SimdWeights::I16(w),
                ..
            } => w.len() * 2,
            Impl::Dot {
                weights, w_sums, ..
            } => weights.len() + w_sums.len() * 4,
        };
        imp + self.bias.as_ref().map_or(0, |b| b.len() * 4) + self.q.effective_scales.len() * 8
    }

    /// `i32`-sized elements of scratch [`run`](Self::run) needs: one widened input row
    /// (two int16 per element, or four int8 for `sdot`) and one row of sums.
    pub fn scratch_len(&self) -> usize {
        match &self.imp {
            Impl::Generic { .. } => 0,
            Impl::Simd { dp, .. } => dp / 2 + self.shape.units,
            Impl::Dot { dp, .. } => dp / 4 + self.shape.units,
        }
    }

    /// Runs the layer: `input` `[batches, depth]`, `output` `[batches, units]`; large
    /// weight matrices split their units over up to `threads` threads.
    pub fn run(
        &self,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [i32],
        threads: usize,
    ) -> Result<(), QuantError> {
        match &self.imp {
            Impl::Generic { filter, row_sums } => fully_connected_i8(
                &self.q,
                self.shape,
                input,
                filter,
                row_sums,
                self.bias.as_deref(),
                output,
            ),
            Impl::Simd { weights, dp } => match weights {
                SimdWeights::I8(w) => self.run_simd(w, *dp, input, output, scratch, threads),
                SimdWeights::I16(w) => self.run_simd(w, *dp, input, output, scratch, threads),
            },
            Impl::Dot {
                weights,
                dp,
                w_sums,
            } => self.run_dot(weights, *dp, w_sums, input, output, scratch, threads),
        }
    }

    /// Checks the buffers of a SIMD run; `Ok(true)` when it is finished already (no
    /// units or no depth: every output is the requantized bias).
    fn simd_start(
        &self,
        input: &[i8],
        output: &mut [i8],
        scratch: &[i32],
    ) -> Result<bool, QuantError> {
        let FcShape {
            batches,
            depth,
            units,
        } = self.shape;
        check_len("input", batches * depth, input.len())?;
        check_len("output", batches * units, output.len())?;
        check_len("scratch", self.scratch_len(), scratch.len())?;
        self.q.check_scales(units)?;
        if units != 0 && depth != 0 {
            return Ok(false);
        }
        for out_row in output[..batches * units].chunks_mut(units.max(1)) {
            self.finish_row(out_row, |_| 0);
        }
        Ok(true)
    }

    /// `out_row[u] = requantize(sum(u) + bias[u])`, the int32 additions wrapping.
    fn finish_row(&self, out_row: &mut [i8], sum: impl Fn(usize) -> i32) {
        for (u, o) in out_row.iter_mut().enumerate() {
            let acc = match &self.bias {
                Some(bias) => sum(u).wrapping_add(bias[u]),
                None => sum(u),
            };
            *o = i8::from_i32(self.q.requantize(acc, u));
        }
    }

    /// Threads for one row's dot products: the weights are streamed once per row, so a
    /// large matrix is worth a second core's memory bandwidth.
    fn row_threads(&self, dp: usize, threads: usize) -> usize {
        if self.shape.units * dp < MIN_PARALLEL_WEIGHTS {
            1
        } else {
            threads
        }
    }

    #[cfg(target_arch = "aarch64")]
    #[allow(clippy::too_many_arguments)]
    fn run_dot(
        &self,
        weights: &[i8],
        dp: usize,
        w_sums: &[i32],
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [i32],
        threads: usize,
    ) -> Result<(), QuantError> {
        if self.simd_start(input, output, scratch)? {
            return Ok(());
        }
        let FcShape {
            batches,
            depth,
            units,
        } = self.shape;
        let (xs, sums) = scratch[..self.scratch_len()].split_at_mut(dp / 4);
        let x8 = i32s_as_i8s(xs);
        let threads = self.row_threads(dp, threads);
        for (x, out_row) in input
            .chunks_exact(depth)
            .zip(output.chunks_exact_mut(units))
            .take(batches)
        {
            x8[..depth].copy_from_slice(x);
            // Meets zero weights; any value would do.
            x8[depth..].fill(0);
            let x8 = &*x8;
            crate::parallel::for_each_part(&mut sums[..units], 1, 16, threads, |u0, part| {
                let w = &weights[u0 * dp..(u0 + part.len()) * dp];
                // SAFETY: these weights exist only when `dotprod` was confirmed at
                // preparation; `x8` holds `dp` values and `w` `part.len()·dp`.
                unsafe { crate::neon::qfc::dots_i8(x8, w, dp, part) };
            });
            let off = self.q.input_offset;
            self.finish_row(out_row, |u| {
                sums[u].wrapping_add(off.wrapping_mul(w_sums[u]))
            });
        }
        Ok(())
    }

    #[cfg(not(target_arch = "aarch64"))]
    #[allow(clippy::too_many_arguments)]
    fn run_dot(
        &self,
        _: &[i8],
        _: usize,
        _: &[i32],
        _: &[i8],
        _: &mut [i8],
        _: &mut [i32],
        _: usize,
    ) -> Result<(), QuantError> {
        unreachable!("sdot weights are only built on aarch64")
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn run_simd<T: LaneSrc + Sync>(
        &self,
        weights: &[T],
        dp: usize,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [i32],
        threads: usize,
    ) -> Result<(), QuantError> {
        if self.simd_start(input, output, scratch)? {
            return Ok(());
        }
        let FcShape {
            batches,
            depth,
            units,
        } = self.shape;
        let (xs, sums) = scratch[..self.scratch_len()].split_at_mut(dp / 2);
        let xw = i32s_as_i16s(xs);
        let threads = self.row_threads(dp, threads);
        for (x, out_row) in input
            .chunks_exact(depth)
            .zip(output.chunks_exact_mut(units))
            .take(batches)
        {
            for (d, &s) in xw.iter_mut().zip(x) {
                *d = (s.to_i32() + self.q.input_offset) as i16;
            }
            xw[depth..].fill(0);
            // Each unit's sum is the same whatever the split.
            let xw = &*xw;
            crate::parallel::for_each_part(&mut sums[..units], 1, 16, threads, |u0, part| {
                let w = &weights[u0 * dp..(u0 + part.len()) * dp];
                // SAFETY: SIMD weights exist only when the tier was confirmed at
                // preparation; `xw` holds `dp` values and `w` `part.len()·dp`.
                unsafe { dots(xw, w, dp, part) };
            });
            self.finish_row(out_row, |u| sums[u]);
        }
        Ok(())
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn run_simd<T>(
        &self,
        _: &[T],
        _: usize,
        _: &[i8],
        _: &mut [i8],
        _: &mut [i32],
        _: usize,
    ) -> Result<(), QuantError> {
        unreachable!("SIMD int8 weights are only built on x86-64 and aarch64")
    }
}

/// `filter` (`[units][depth]`) as `[units][dp]` rows of `f(w)`, zero-padded.
fn pack_rows<T: Copy + Default>(
    filter: &[i8],
    shape: FcShape,
    dp: usize,
    f: impl Fn(i8) -> T,
) -> Vec<T> {
    let mut out = vec![T::default(); shape.units * dp];
    if dp > 0 {
        for (d, s) in out
            .chunks_exact_mut(dp)
            .zip(filter.chunks_exact(shape.depth.max(1)))
        {
            for (d, &s) in d.iter_mut().zip(s) {
                *d = f(s);
            }
        }
    }
    out
}

/// Below this many a layer's dot products run on one thread.
const MIN_PARALLEL_WEIGHTS: usize = if cfg!(test) { 1 } else { 1 << 17 };

/// Views `i32` scratch as four times as many `i8` (same bytes).
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
fn i32s_as_i8s(s: &mut [i32]) -> &mut [i8] {
    let len = s.len() * 4;
    // SAFETY: i8 has no invalid bit patterns and a weaker alignment than i32; the new
    // slice covers exactly the same bytes, borrowed mutably for the same lifetime.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut i8, len) }
}

/// Views `i32` scratch as twice as many `i16` (same bytes, stricter alignment kept).
fn i32s_as_i16s(s: &mut [i32]) -> &mut [i16] {
    let len = s.len() * 2;
    // SAFETY: i16 has no invalid bit patterns and a weaker alignment than i32; the new
    // slice covers exactly the same bytes, borrowed mutably for the same lifetime.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut i16, len) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::conv::tests::Lcg;
    use crate::quant::{FusedActivation, QuantParams};

    #[test]
    fn every_tier_matches_scalar_kernel() {
        let mut r = Lcg(3);
        for case in 0..60 {
            let shape = FcShape {
                batches: r.range(1, 3) as usize,
                depth: r.range(1, 70) as usize,
                units: r.range(1, 23) as usize,
            };
            let per_channel = case % 2 == 0;
            let scales: Vec<f32> = if per_channel {
                (0..shape.units).map(|_| 0.002 + 0.02 * r.unit()).collect()
            } else {
                vec![0.01]
            };
            // Filter zero point 0 (int8 models) in every other case: the int8-weight and
            // `sdot` paths.
            let zps = [if case % 2 == 1 { 0 } else { r.range(-128, 127) }];
            let q = FcQuant::new_i8(
                QuantParams::new(0.02 + 0.05 * r.unit(), r.range(-128, 127)),
                &scales,
                &zps,
                QuantParams::new(0.05 + 0.3 * r.unit(), r.range(-128, 127)),
                [FusedActivation::None, FusedActivation::Relu][case % 2],
                shape.units,
            )
            .unwrap();
            let input = r.vec_i8(shape.batches * shape.depth, -128, 127);
            let filter = r.vec_i8(shape.units * shape.depth, -128, 127);
            let bias: Vec<i32> = (0..shape.units)
                .map(|_| r.range(-9000, 9000) as i32)
                .collect();
            let bias = (case % 3 != 0).then_some(&bias[..]);
            let sums = filter_row_sums(&filter, shape.units, shape.depth);
            let mut want = vec![0_i8; shape.batches * shape.units];
            fully_connected_i8(&q, shape, &input, &filter, &sums, bias, &mut want).unwrap();
            for isa in Isa::available() {
                let p = PackedFcI8::new(q.clone(), shape, &filter, bias, isa).unwrap();
                assert_eq!(p.is_simd(), isa != Isa::Generic);
                let dot = isa == Isa::NeonDot && q.filter_offset == 0;
                assert_eq!(matches!(p.imp, Impl::Dot { .. }), dot);
                for threads in [1, 2, 3] {
                    let mut scratch = vec![0_i32; p.scratch_len()];
                    let mut out = vec![0_i8; want.len()];
                    p.run(&input, &mut out, &mut scratch, threads).unwrap();
                    assert_eq!(out, want, "case {case} {isa} threads {threads}");
                }
            }
        }
    }
}
