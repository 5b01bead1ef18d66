//! TRANSPOSE_CONV (the gradient of CONV_2D with respect to its input), float, int8 and
//! int16 activations with int8 weights.
//!
//! TFLite's reference kernels (`reference_ops::TransposeConv`,
//! `reference_integer_ops::TransposeConv`) scatter: every input pixel adds
//! `x · w[oc, ky, kx, ic]` into output `(iy·s − pad + ky, ix·s − pad + kx)` when that lies
//! inside the output. Here each output element gathers the same terms instead: tap `ky`
//! contributes to output row `oy` from input row `iy = (oy + pad − ky) / s` when the division
//! is exact and `iy` is in range. Integer sums are exact (wrapping addition is associative),
//! so the result is bit-identical; float sums only change order. Gathering needs no zeroed
//! accumulator buffer and lets output rows run on separate threads.
//!
//! Filter layout is TFLite's `[out_c, kh, kw, in_c]`; activations are NHWC.
//!
//! The float and int8 kernels read the filter rearranged `[kh, kw, in_c, out_c]`
//! ([`pack_filter`]) and take each output pixel's taps in the order the reference's scatter
//! adds them (input rows, then columns, ascending; channels ascending), every term added
//! straight into the pixel's `out_c` sums: the inner loop runs over output channels, which
//! vectorizes, and float sums are the reference's own, operation for operation.

use crate::parallel;
use crate::quant::fixedpoint::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_i64, quantize_multiplier,
};
use crate::quant::params::{activation_range_for, clamp_f32, clamp_i32, FusedActivation};
use crate::quant::{QuantElem, QuantError, QuantParams};

/// Shapes and window of one transpose convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransposeConvGeometry {
    pub batches: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub filter_h: usize,
    pub filter_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    /// Leading padding of the equivalent forward convolution (TFLite's `padding_values`).
    pub pad_top: usize,
    pub pad_left: usize,
}

impl TransposeConvGeometry {
    /// Checks that strides are positive and every buffer size fits in `usize`.
    pub fn validate(&self) -> Result<(), QuantError> {
        if self.stride_h == 0 || self.stride_w == 0 {
            return Err(QuantError::BadGeometry("stride must be at least 1"));
        }
        let sizes = [
            [self.batches, self.in_h, self.in_w, self.in_c],
            [self.batches, self.out_h, self.out_w, self.out_c],
            [self.out_c, self.filter_h, self.filter_w, self.in_c],
        ];
        for s in sizes {
            s.iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .ok_or(QuantError::BadGeometry("tensor size overflows"))?;
        }
        // Offsets `o + pad` must not overflow.
        self.out_h
            .checked_add(self.pad_top)
            .and(self.out_w.checked_add(self.pad_left))
            .ok_or(QuantError::BadGeometry("padding overflows"))?;
        Ok(())
    }

    pub fn input_len(&self) -> usize {
        self.batches * self.in_h * self.in_w * self.in_c
    }

    pub fn output_len(&self) -> usize {
        self.batches * self.out_h * self.out_w * self.out_c
    }

    pub fn filter_len(&self) -> usize {
        self.out_c * self.filter_h * self.filter_w * self.in_c
    }

    /// The input index along one axis that filter tap `k` maps to output position `o`.
    #[inline]
    fn source(o: usize, pad: usize, k: usize, stride: usize, size: usize) -> Option<usize> {
        let t = (o + pad).checked_sub(k)?;
        if t % stride != 0 {
            return None;
        }
        let i = t / stride;
        (i < size).then_some(i)
    }

    fn check(&self, input: usize, filter: usize, output: usize) -> Result<(), QuantError> {
        let need = |what, needed, got| {
            if got < needed {
                Err(QuantError::BufferTooSmall { what, needed, got })
            } else {
                Ok(())
            }
        };
        need("input", self.input_len(), input)?;
        need("filter", self.filter_len(), filter)?;
        need("output", self.output_len(), output)
    }

    /// Calls `f(input_offset, filter_offset)` for every tap contributing to output pixel
    /// `pixel` (`(b·out_h + oy)·out_w + ox`), with offsets of the `in_c`-long runs; `oc`
    /// is added to the filter offset by the caller.
    #[inline]
    fn for_each_tap(&self, pixel: usize, mut f: impl FnMut(usize, usize)) {
        let ox = pixel % self.out_w;
        let oy = (pixel / self.out_w) % self.out_h;
        let b = pixel / (self.out_w * self.out_h);
        for ky in 0..self.filter_h {
            let Some(iy) = Self::source(oy, self.pad_top, ky, self.stride_h, self.in_h) else {
                continue;
            };
            for kx in 0..self.filter_w {
                let Some(ix) = Self::source(ox, self.pad_left, kx, self.stride_w, self.in_w) else {
                    continue;
                };
                let in_off = ((b * self.in_h + iy) * self.in_w + ix) * self.in_c;
                let w_off = (ky * self.filter_w + kx) * self.in_c;
                f(in_off, w_off);
            }
        }
    }
}

impl TransposeConvGeometry {
    /// Calls `f(input_offset, tap)` (`tap = ky·filter_w + kx`) for every tap contributing
    /// to output pixel `pixel`, in the order the reference's scatter reaches that pixel:
    /// input rows ascending (filter rows descending), then input columns ascending.
    #[inline]
    fn for_each_tap_in_scatter_order(&self, pixel: usize, mut f: impl FnMut(usize, usize)) {
        let ox = pixel % self.out_w;
        let oy = (pixel / self.out_w) % self.out_h;
        let b = pixel / (self.out_w * self.out_h);
        for ky in (0..self.filter_h).rev() {
            let Some(iy) = Self::source(oy, self.pad_top, ky, self.stride_h, self.in_h) else {
                continue;
            };
            for kx in (0..self.filter_w).rev() {
                let Some(ix) = Self::source(ox, self.pad_left, kx, self.stride_w, self.in_w) else {
                    continue;
                };
                f(
                    ((b * self.in_h + iy) * self.in_w + ix) * self.in_c,
                    ky * self.filter_w + kx,
                );
            }
        }
    }
}

/// Rearranges a filter `[out_c, kh, kw, in_c]` into `packed` as `[kh, kw, in_c, out_c]`,
/// the layout [`transpose_conv_f32`] and [`transpose_conv_i8`] read.
pub fn pack_filter<T: Copy>(
    g: &TransposeConvGeometry,
    filter: &[T],
    packed: &mut [T],
) -> Result<(), QuantError> {
    let n = g.filter_len();
    for (what, len) in [("filter", filter.len()), ("packed filter", packed.len())] {
        if len < n {
            return Err(QuantError::BufferTooSmall {
                what,
                needed: n,
                got: len,
            });
        }
    }
    if n == 0 {
        return Ok(());
    }
    let per_oc = n / g.out_c;
    for (oc, w) in filter[..n].chunks_exact(per_oc).enumerate() {
        for (t, &v) in w.iter().enumerate() {
            packed[t * g.out_c + oc] = v;
        }
    }
    Ok(())
}

/// Float transpose convolution: gathered sums, `+ bias[oc]`, clamp to `[min, max]`.
/// `filter` is packed by [`pack_filter`].
pub fn transpose_conv_f32(
    g: &TransposeConvGeometry,
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    (min, max): (f32, f32),
    output: &mut [f32],
    threads: usize,
) -> Result<(), QuantError> {
    g.check(input.len(), filter.len(), output.len())?;
    if let Some(b) = bias {
        if b.len() < g.out_c {
            return Err(QuantError::ChannelCountMismatch {
                expected: g.out_c,
                got: b.len(),
            });
        }
    }
    let out = &mut output[..g.output_len()];
    if g.out_c == 0 || out.is_empty() {
        return Ok(());
    }
    let tap_len = g.in_c * g.out_c;
    parallel::for_each_part(out, g.out_c, 1, threads, |first, part| {
        for (r, row) in part.chunks_exact_mut(g.out_c).enumerate() {
            row.fill(0.0);
            g.for_each_tap_in_scatter_order(first + r, |in_off, tap| {
                let x = &input[in_off..in_off + g.in_c];
                let w = &filter[tap * tap_len..][..tap_len];
                for (&a, w_ic) in x.iter().zip(w.chunks_exact(g.out_c)) {
                    for (o, &b) in row.iter_mut().zip(w_ic) {
                        *o += a * b;
                    }
                }
            });
            for (oc, o) in row.iter_mut().enumerate() {
                let v = *o + bias.map_or(0.0, |b| b[oc]);
                *o = clamp_f32(v, min, max);
            }
        }
    });
    Ok(())
}

/// Hybrid transpose convolution (float activations, int8 weights), as LiteRT's `EvalHybrid`:
/// each batch of the input is quantized to int8 with its own asymmetric scale and zero point
/// (`quantize_asymmetric`, written to `quantized`), the taps are summed exactly in i32 as
/// `Σ (q − zp)·w`, and the sum is scaled back by `input_scale · filter_scale[oc]` before the
/// bias and the clamp. `filter_scales` holds one scale per output channel or one for all.
#[allow(clippy::too_many_arguments)]
pub fn transpose_conv_hybrid(
    g: &TransposeConvGeometry,
    input: &[f32],
    filter: &[i8],
    filter_scales: &[f32],
    bias: Option<&[f32]>,
    (min, max): (f32, f32),
    quantized: &mut [i8],
    output: &mut [f32],
    threads: usize,
) -> Result<(), QuantError> {
    g.check(input.len(), filter.len(), output.len())?;
    check_bias(bias, g.out_c)?;
    if filter_scales.len() != 1 && filter_scales.len() < g.out_c {
        return Err(QuantError::ChannelCountMismatch {
            expected: g.out_c,
            got: filter_scales.len(),
        });
    }
    let per_batch = g.in_h * g.in_w * g.in_c;
    if quantized.len() < g.input_len() {
        return Err(QuantError::BufferTooSmall {
            what: "quantized input",
            needed: g.input_len(),
            got: quantized.len(),
        });
    }
    let out = &mut output[..g.output_len()];
    if g.out_c == 0 || out.is_empty() {
        return Ok(());
    }
    let quantized = &mut quantized[..g.input_len()];
    let out_per_batch = g.out_h * g.out_w * g.out_c;
    let oc_stride = g.filter_h * g.filter_w * g.in_c;
    for (b, (out_b, q_b)) in out
        .chunks_exact_mut(out_per_batch)
        .zip(quantized.chunks_exact_mut(per_batch.max(1)))
        .enumerate()
    {
        let x = &input[b * per_batch..(b + 1) * per_batch];
        let (in_scale, zp) = crate::quant::hybrid::quantize_asymmetric(x, q_b);
        let q_b = &*q_b;
        // The geometry of one batch: taps index from this batch's first pixel.
        let one = TransposeConvGeometry { batches: 1, ..*g };
        parallel::for_each_part(out_b, g.out_c, 1, threads, |first, part| {
            for (r, row) in part.chunks_exact_mut(g.out_c).enumerate() {
                for (oc, o) in row.iter_mut().enumerate() {
                    let mut acc = 0i32;
                    one.for_each_tap(first + r, |in_off, w_off| {
                        let xq = &q_b[in_off..in_off + g.in_c];
                        let w = &filter[oc * oc_stride + w_off..][..g.in_c];
                        for (&a, &k) in xq.iter().zip(w) {
                            acc = acc.wrapping_add((i32::from(a) - zp) * i32::from(k));
                        }
                    });
                    let ws = if filter_scales.len() == 1 {
                        filter_scales[0]
                    } else {
                        filter_scales[oc]
                    };
                    let v = acc as f32 * (in_scale * ws) + bias.map_or(0.0, |b| b[oc]);
                    *o = clamp_f32(v, min, max);
                }
            }
        });
    }
    Ok(())
}

/// Prepare-time parameters of a quantized transpose convolution
/// (`PopulateConvolutionQuantizationParams`).
#[derive(Debug, Clone, PartialEq)]
pub struct TransposeConvQuant {
    /// `−input_zero_point`.
    pub input_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    pub multipliers: Vec<i32>,
    pub shifts: Vec<i32>,
    pub act_min: i32,
    pub act_max: i32,
}

impl TransposeConvQuant {
    /// Per-channel multipliers from `(f64)in · (f64)w[c] / (f64)out`, a single filter scale
    /// serving every channel; the clamp is the activation range in the output type `T`.
    pub fn new<T: QuantElem>(
        input: QuantParams,
        filter_scales: &[f32],
        output: QuantParams,
        activation: FusedActivation,
        out_channels: usize,
    ) -> Result<Self, QuantError> {
        if filter_scales.is_empty()
            || (filter_scales.len() > 1 && filter_scales.len() != out_channels)
        {
            return Err(QuantError::ChannelCountMismatch {
                expected: out_channels,
                got: filter_scales.len(),
            });
        }
        let mut multipliers = Vec::with_capacity(out_channels);
        let mut shifts = Vec::with_capacity(out_channels);
        for c in 0..out_channels {
            let w = filter_scales[if filter_scales.len() > 1 { c } else { 0 }];
            let eff = f64::from(input.scale) * f64::from(w) / f64::from(output.scale);
            let (m, s) = quantize_multiplier(eff)?;
            multipliers.push(m);
            shifts.push(s);
        }
        let (act_min, act_max) = activation_range_for::<T>(activation, output)?;
        Ok(Self {
            input_offset: input.zero_point_i32()?.wrapping_neg(),
            output_offset: output.zero_point_i32()?,
            multipliers,
            shifts,
            act_min,
            act_max,
        })
    }

    fn check(&self, out_c: usize) -> Result<(), QuantError> {
        if self.multipliers.len() < out_c || self.shifts.len() < out_c {
            return Err(QuantError::ChannelCountMismatch {
                expected: out_c,
                got: self.multipliers.len().min(self.shifts.len()),
            });
        }
        Ok(())
    }
}

fn check_bias<B>(bias: Option<&[B]>, out_c: usize) -> Result<(), QuantError> {
    match bias {
        Some(b) if b.len() < out_c => Err(QuantError::ChannelCountMismatch {
            expected: out_c,
            got: b.len(),
        }),
        _ => Ok(()),
    }
}

/// The checks the integer kernels open with: the buffers against the geometry, the
/// quantization and the bias against the channels. Returns the output to write, or `None`
/// when there is nothing to compute.
fn checked_output<'o, B, O>(
    g: &TransposeConvGeometry,
    q: &TransposeConvQuant,
    input_len: usize,
    filter_len: usize,
    bias: Option<&[B]>,
    output: &'o mut [O],
) -> Result<Option<&'o mut [O]>, QuantError> {
    g.check(input_len, filter_len, output.len())?;
    q.check(g.out_c)?;
    check_bias(bias, g.out_c)?;
    let out = &mut output[..g.output_len()];
    Ok((g.out_c != 0 && !out.is_empty()).then_some(out))
}

/// int8 transpose convolution (`reference_integer_ops::TransposeConv`, int8 overload):
/// `acc = Σ (x − in_zp)·w` in wrapping i32, `+ bias`, per-channel
/// `MultiplyByQuantizedMultiplier`, `+ out_zp`, clamp.
pub fn transpose_conv_i8(
    g: &TransposeConvGeometry,
    q: &TransposeConvQuant,
    input: &[i8],
    filter: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i8],
    threads: usize,
) -> Result<(), QuantError> {
    let Some(out) = checked_output(g, q, input.len(), filter.len(), bias, output)? else {
        return Ok(());
    };
    let tap_len = g.in_c * g.out_c;
    // `x − zp` of a valid int8 zero point lies within ±255, and its products with int8
    // weights within ±32640: exact in 16 bits, which doubles the lanes per vector.
    let narrow = (-128..=127).contains(&q.input_offset.wrapping_neg());
    parallel::for_each_part(out, g.out_c, 1, threads, |first, part| {
        for (r, row) in part.chunks_exact_mut(g.out_c).enumerate() {
            // Output channels in blocks whose sums stay in registers or on the stack.
            for (blk, o_blk) in row.chunks_mut(OC_BLOCK).enumerate() {
                let c0 = blk * OC_BLOCK;
                let mut acc = [0i32; OC_BLOCK];
                let acc = &mut acc[..o_blk.len()];
                g.for_each_tap_in_scatter_order(first + r, |in_off, tap| {
                    let x = &input[in_off..in_off + g.in_c];
                    let w = &filter[tap * tap_len..][..tap_len];
                    for (&v, w_ic) in x.iter().zip(w.chunks_exact(g.out_c)) {
                        let a = i32::from(v).wrapping_add(q.input_offset);
                        let w_ic = &w_ic[c0..c0 + acc.len()];
                        if narrow {
                            let a = a as i16;
                            for (s, &b) in acc.iter_mut().zip(w_ic) {
                                *s = s.wrapping_add(i32::from(a * i16::from(b)));
                            }
                        } else {
                            for (s, &b) in acc.iter_mut().zip(w_ic) {
                                *s = s.wrapping_add(a.wrapping_mul(i32::from(b)));
                            }
                        }
                    }
                });
                for (i, (o, &s)) in o_blk.iter_mut().zip(acc.iter()).enumerate() {
                    let oc = c0 + i;
                    let s = bias.map_or(s, |b| s.wrapping_add(b[oc]));
                    let v = multiply_by_quantized_multiplier(s, q.multipliers[oc], q.shifts[oc])
                        .wrapping_add(q.output_offset);
                    *o = clamp_i32(v, q.act_min, q.act_max) as i8;
                }
            }
        }
    });
    Ok(())
}

/// Output channels the int8 kernel sums at a time.
const OC_BLOCK: usize = 64;

/// The 32-bit accumulator path shared by int8 and by int16 with an int32 bias: wrapping i32
/// sums, the 32-bit `MultiplyByQuantizedMultiplier`, `+ out_zp`, clamp, then `narrow`.
#[allow(clippy::too_many_arguments)]
fn acc32<T: Copy + Into<i32> + Sync, O: Send>(
    g: &TransposeConvGeometry,
    q: &TransposeConvQuant,
    input: &[T],
    filter: &[i8],
    bias: Option<&[i32]>,
    output: &mut [O],
    threads: usize,
    narrow: impl Fn(i32) -> O + Sync,
) -> Result<(), QuantError> {
    let Some(out) = checked_output(g, q, input.len(), filter.len(), bias, output)? else {
        return Ok(());
    };
    let oc_stride = g.filter_h * g.filter_w * g.in_c;
    parallel::for_each_part(out, g.out_c, 1, threads, |first, part| {
        for (r, row) in part.chunks_exact_mut(g.out_c).enumerate() {
            for (oc, o) in row.iter_mut().enumerate() {
                let mut acc = 0i32;
                g.for_each_tap(first + r, |in_off, w_off| {
                    let x = &input[in_off..in_off + g.in_c];
                    let w = &filter[oc * oc_stride + w_off..][..g.in_c];
                    for (&a, &b) in x.iter().zip(w) {
                        let term = a
                            .into()
                            .wrapping_add(q.input_offset)
                            .wrapping_mul(i32::from(b));
                        acc = acc.wrapping_add(term);
                    }
                });
                if let Some(b) = bias {
                    acc = acc.wrapping_add(b[oc]);
                }
                let v = multiply_by_quantized_multiplier(acc, q.multipliers[oc], q.shifts[oc])
                    .wrapping_add(q.output_offset);
                *o = narrow(clamp_i32(v, q.act_min, q.act_max));
            }
        }
    });
    Ok(())
}

/// int16 activations, int8 weights, int64 accumulator and optional int64 bias
/// (`reference_integer_ops::TransposeConv<int64_t>`): the 64-bit
/// `MultiplyByQuantizedMultiplier` (16-bit reduced multiplier), `+ out_zp`, clamp.
pub fn transpose_conv_i16(
    g: &TransposeConvGeometry,
    q: &TransposeConvQuant,
    input: &[i16],
    filter: &[i8],
    bias: Option<&[i64]>,
    output: &mut [i16],
    threads: usize,
) -> Result<(), QuantError> {
    let Some(out) = checked_output(g, q, input.len(), filter.len(), bias, output)? else {
        return Ok(());
    };
    let oc_stride = g.filter_h * g.filter_w * g.in_c;
    let in_off = i64::from(q.input_offset);
    parallel::for_each_part(out, g.out_c, 1, threads, |first, part| {
        for (r, row) in part.chunks_exact_mut(g.out_c).enumerate() {
            for (oc, o) in row.iter_mut().enumerate() {
                let mut acc = 0i64;
                g.for_each_tap(first + r, |i_off, w_off| {
                    let x = &input[i_off..i_off + g.in_c];
                    let w = &filter[oc * oc_stride + w_off..][..g.in_c];
                    for (&a, &b) in x.iter().zip(w) {
                        acc = acc.wrapping_add((i64::from(a) + in_off) * i64::from(b));
                    }
                });
                if let Some(b) = bias {
                    acc = acc.wrapping_add(b[oc]);
                }
                let v = multiply_by_quantized_multiplier_i64(acc, q.multipliers[oc], q.shifts[oc])
                    .wrapping_add(q.output_offset);
                *o = clamp_i32(v, q.act_min, q.act_max) as i16;
            }
        }
    });
    Ok(())
}

/// int16 activations with an int32 bias (`quantized_bias_type` INT32): the same sums in a
/// wrapping i32 accumulator and the 32-bit `MultiplyByQuantizedMultiplier`, as the
/// reference's `TransposeConv<int32_t>` instantiation.
pub fn transpose_conv_i16_acc32(
    g: &TransposeConvGeometry,
    q: &TransposeConvQuant,
    input: &[i16],
    filter: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i16],
    threads: usize,
) -> Result<(), QuantError> {
    acc32(g, q, input, filter, bias, output, threads, |v| v as i16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's scatter formulation, in the type of `x` and `w`: each product added
    /// straight into the output in the reference's loop order (in f32, its own rounding).
    fn scatter<T>(g: &TransposeConvGeometry, x: &[T], w: &[T]) -> Vec<T>
    where
        T: Copy + Default + std::ops::Mul<Output = T> + std::ops::AddAssign,
    {
        let mut out = vec![T::default(); g.output_len()];
        for b in 0..g.batches {
            for iy in 0..g.in_h {
                for ix in 0..g.in_w {
                    for ic in 0..g.in_c {
                        for ky in 0..g.filter_h {
                            for kx in 0..g.filter_w {
                                for oc in 0..g.out_c {
                                    let oy = (iy * g.stride_h + ky) as isize - g.pad_top as isize;
                                    let ox = (ix * g.stride_w + kx) as isize - g.pad_left as isize;
                                    if oy < 0
                                        || ox < 0
                                        || oy >= g.out_h as isize
                                        || ox >= g.out_w as isize
                                    {
                                        continue;
                                    }
                                    let (oy, ox) = (oy as usize, ox as usize);
                                    let xi = ((b * g.in_h + iy) * g.in_w + ix) * g.in_c + ic;
                                    let wi =
                                        ((oc * g.filter_h + ky) * g.filter_w + kx) * g.in_c + ic;
                                    let oi = ((b * g.out_h + oy) * g.out_w + ox) * g.out_c + oc;
                                    out[oi] += x[xi] * w[wi];
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn geometries() -> Vec<TransposeConvGeometry> {
        let base = TransposeConvGeometry {
            batches: 2,
            in_h: 3,
            in_w: 4,
            in_c: 3,
            out_h: 6,
            out_w: 8,
            out_c: 5,
            filter_h: 3,
            filter_w: 3,
            stride_h: 2,
            stride_w: 2,
            pad_top: 0,
            pad_left: 0,
        };
        vec![
            base,
            TransposeConvGeometry {
                pad_top: 1,
                pad_left: 1,
                out_h: 5,
                out_w: 7,
                ..base
            },
            TransposeConvGeometry {
                stride_h: 1,
                stride_w: 3,
                filter_w: 2,
                out_h: 5,
                out_w: 11,
                pad_top: 1,
                ..base
            },
        ]
    }

    fn data(n: usize, seed: u32) -> Vec<i32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 255) as i32 - 127
            })
            .collect()
    }

    #[test]
    fn float_matches_scatter() {
        for g in geometries() {
            g.validate().unwrap();
            let x: Vec<f32> = data(g.input_len(), 1)
                .iter()
                .map(|&v| v as f32 / 64.0)
                .collect();
            let w: Vec<f32> = data(g.filter_len(), 2)
                .iter()
                .map(|&v| v as f32 / 64.0)
                .collect();
            let bias: Vec<f32> = (0..g.out_c).map(|c| c as f32 * 0.25 - 0.5).collect();
            let want = scatter(
                &g,
                &x.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                &w.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            );
            let mut packed = vec![f32::NAN; g.filter_len()];
            pack_filter(&g, &w, &mut packed).unwrap();
            for threads in [1, 3] {
                let mut out = vec![0.0; g.output_len()];
                transpose_conv_f32(&g, &x, &packed, Some(&bias), (-1.5, 2.0), &mut out, threads)
                    .unwrap();
                for (i, (&o, &r)) in out.iter().zip(&want).enumerate() {
                    let r = (r + f64::from(bias[i % g.out_c])).clamp(-1.5, 2.0);
                    assert!((f64::from(o) - r).abs() < 1e-4, "{i}: {o} vs {r}");
                }
            }
        }
    }

    /// The reference's float scatter: every product added straight into the output in its
    /// loop order (in f32, multiply then add), then bias and clamp.
    fn scatter_f32(g: &TransposeConvGeometry, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        let mut out = scatter(g, x, w);
        for (i, o) in out.iter_mut().enumerate() {
            *o = clamp_f32(*o + bias[i % g.out_c], -1.5, 2.0);
        }
        out
    }

    /// Float results are the reference scatter's, bit for bit (random values, so that
    /// every rounding shows), at one and three threads.
    #[test]
    fn float_sums_in_the_reference_order() {
        for (n, g) in geometries().into_iter().enumerate() {
            let f = |v: Vec<i32>| -> Vec<f32> { v.iter().map(|&v| v as f32 * 0.01731).collect() };
            let x = f(data(g.input_len(), 10 + n as u32));
            let w = f(data(g.filter_len(), 20 + n as u32));
            let bias: Vec<f32> = (0..g.out_c).map(|c| c as f32 * 0.0771 - 0.3).collect();
            let want = scatter_f32(&g, &x, &w, &bias);
            let mut packed = vec![f32::NAN; g.filter_len()];
            pack_filter(&g, &w, &mut packed).unwrap();
            for threads in [1, 3] {
                let mut out = vec![f32::NAN; g.output_len()];
                transpose_conv_f32(&g, &x, &packed, Some(&bias), (-1.5, 2.0), &mut out, threads)
                    .unwrap();
                let same = out
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "geometry {n} threads {threads}");
            }
        }
    }

    #[test]
    fn int8_matches_scatter() {
        for g in geometries() {
            let x: Vec<i8> = data(g.input_len(), 3).iter().map(|&v| v as i8).collect();
            let w: Vec<i8> = data(g.filter_len(), 4).iter().map(|&v| v as i8).collect();
            let bias: Vec<i32> = (0..g.out_c as i32).map(|c| c * 300 - 700).collect();
            let q = TransposeConvQuant::new::<i8>(
                QuantParams::new(0.05, 3),
                &[0.01, 0.02, 0.015, 0.03, 0.005],
                QuantParams::new(0.2, -7),
                FusedActivation::None,
                g.out_c,
            )
            .unwrap();
            let xs: Vec<f64> = x.iter().map(|&v| f64::from(v) - 3.0).collect();
            let ws: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
            let acc = scatter(&g, &xs, &ws);
            let mut out = vec![0i8; g.output_len()];
            let mut packed = vec![0i8; g.filter_len()];
            pack_filter(&g, &w, &mut packed).unwrap();
            transpose_conv_i8(&g, &q, &x, &packed, Some(&bias), &mut out, 2).unwrap();
            for (i, (&o, &a)) in out.iter().zip(&acc).enumerate() {
                let oc = i % g.out_c;
                let a = a as i32 + bias[oc];
                let want = (multiply_by_quantized_multiplier(a, q.multipliers[oc], q.shifts[oc])
                    - 7)
                .clamp(-128, 127);
                assert_eq!(i32::from(o), want, "{i}");
            }
        }
    }

    /// More output channels than one block of sums, and a zero point at the end of the
    /// range.
    #[test]
    fn int8_wide_output_matches_scatter() {
        let g = TransposeConvGeometry {
            out_c: 70,
            in_c: 9,
            ..geometries()[1]
        };
        let x: Vec<i8> = data(g.input_len(), 8).iter().map(|&v| v as i8).collect();
        let w: Vec<i8> = data(g.filter_len(), 9).iter().map(|&v| v as i8).collect();
        let q = TransposeConvQuant::new::<i8>(
            QuantParams::new(0.05, -128),
            &[0.002],
            QuantParams::new(0.3, 4),
            FusedActivation::Relu6,
            g.out_c,
        )
        .unwrap();
        let xs: Vec<f64> = x.iter().map(|&v| f64::from(v) + 128.0).collect();
        let ws: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
        let acc = scatter(&g, &xs, &ws);
        let mut packed = vec![0i8; g.filter_len()];
        pack_filter(&g, &w, &mut packed).unwrap();
        let mut out = vec![0i8; g.output_len()];
        transpose_conv_i8(&g, &q, &x, &packed, None, &mut out, 2).unwrap();
        for (i, (&o, &a)) in out.iter().zip(&acc).enumerate() {
            let v = multiply_by_quantized_multiplier(a as i32, q.multipliers[0], q.shifts[0]) + 4;
            assert_eq!(i32::from(o), v.clamp(q.act_min, q.act_max), "{i}");
        }
    }

    #[test]
    fn int16_matches_scatter() {
        let g = geometries()[1];
        let x: Vec<i16> = data(g.input_len(), 5)
            .iter()
            .map(|&v| (v * 200) as i16)
            .collect();
        let w: Vec<i8> = data(g.filter_len(), 6).iter().map(|&v| v as i8).collect();
        let q = TransposeConvQuant::new::<i16>(
            QuantParams::new(0.001, 0),
            &[0.01],
            QuantParams::new(0.05, 0),
            FusedActivation::Relu,
            g.out_c,
        )
        .unwrap();
        let acc = scatter(
            &g,
            &x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            &w.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
        );
        let mut out = vec![0i16; g.output_len()];
        transpose_conv_i16(&g, &q, &x, &w, None, &mut out, 1).unwrap();
        for (i, (&o, &a)) in out.iter().zip(&acc).enumerate() {
            let oc = i % g.out_c;
            let want =
                multiply_by_quantized_multiplier_i64(a as i64, q.multipliers[oc], q.shifts[oc])
                    .clamp(0, 32767);
            assert_eq!(i32::from(o), want, "{i}");
        }
    }

    #[test]
    fn short_buffers_are_errors() {
        let g = geometries()[0];
        let mut out = vec![0.0; 3];
        assert!(transpose_conv_f32(&g, &[], &[], None, (0.0, 1.0), &mut out, 1).is_err());
    }
}
