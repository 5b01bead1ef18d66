//! Quantized FULLY_CONNECTED, bit-exact with the reference kernels of the TFLite runtime in
//! ai-edge-litert 2.3.0.
//!
//! Unlike CONV_2D, the reference FULLY_CONNECTED (int8 per-channel, int8 per-tensor and
//! uint8 alike) requantizes in double precision:
//! `out = clamp((int32)round((f64)acc · ((f64)in · (f64)w / (f64)out)) + out_zp)` with
//! `round` half away from zero. The quantized multipliers computed in `Prepare` are only
//! used by the optimized kernels. (Checked against `BUILTIN_REF`: the MBQM formula
//! mismatches on a few outputs per thousand, the double formula on none.)
//!
//! Weights are `[units, depth]`; the input is flattened to `[batches, depth]`.

use super::conv::{dot_i8, dot_offset, legacy_multiplier};
use super::error::{check_len, QuantError};
use super::fixedpoint::round_to_i32_x86;
use super::params::{activation_range_for, clamp_i32, FusedActivation, QuantElem, QuantParams};

/// Sizes of a fully connected layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FcShape {
    /// Input rows (`numel(input) / depth`).
    pub batches: usize,
    /// Inner dimension (weights dim 1).
    pub depth: usize,
    /// Output units (weights dim 0).
    pub units: usize,
}

impl FcShape {
    fn check(
        &self,
        input_len: usize,
        filter_len: usize,
        bias_len: Option<usize>,
        output_len: usize,
    ) -> Result<(), QuantError> {
        let mul = |a: usize, b: usize| {
            a.checked_mul(b)
                .ok_or(QuantError::BadGeometry("fully connected size overflow"))
        };
        check_len("input", mul(self.batches, self.depth)?, input_len)?;
        check_len("filter", mul(self.units, self.depth)?, filter_len)?;
        check_len("output", mul(self.batches, self.units)?, output_len)?;
        if let Some(b) = bias_len {
            check_len("bias", self.units, b)?;
        }
        Ok(())
    }
}

/// Prepare-time parameters of a quantized FULLY_CONNECTED.
#[derive(Debug, Clone, PartialEq)]
pub struct FcQuant {
    /// `−input_zero_point`.
    pub input_offset: i32,
    /// `−filter_zero_point` on the per-tensor paths; 0 on the per-channel path (TFLite
    /// assumes symmetric per-channel weights and ignores their zero points).
    pub filter_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// `(f64)in · (f64)w / (f64)out`, one per unit, or a single one (per-tensor).
    pub effective_scales: Vec<f64>,
    /// Lower clamp.
    pub act_min: i32,
    /// Upper clamp.
    pub act_max: i32,
}

fn check_fc_activation(activation: FusedActivation) -> Result<(), QuantError> {
    match activation {
        FusedActivation::Tanh | FusedActivation::SignBit => Err(QuantError::UnsupportedActivation),
        _ => Ok(()),
    }
}

impl FcQuant {
    /// int8 activations and weights. More than one filter scale selects the per-channel
    /// path (exactly `units` scales required); one scale is per-tensor and honours the
    /// filter zero point, as TFLite does.
    pub fn new_i8(
        input: QuantParams,
        filter_scales: &[f32],
        filter_zero_points: &[i64],
        output: QuantParams,
        activation: FusedActivation,
        units: usize,
    ) -> Result<Self, QuantError> {
        check_fc_activation(activation)?;
        let per_channel = filter_scales.len() > 1;
        if filter_scales.is_empty() || (per_channel && filter_scales.len() != units) {
            return Err(QuantError::ChannelCountMismatch {
                expected: units,
                got: filter_scales.len(),
            });
        }
        let filter_offset = if per_channel {
            0
        } else {
            let zp = filter_zero_points.first().copied().unwrap_or(0);
            QuantParams::new(filter_scales[0], zp)
                .zero_point_i32()?
                .wrapping_neg()
        };
        let effective_scales = filter_scales
            .iter()
            .map(|&w| f64::from(input.scale) * f64::from(w) / f64::from(output.scale))
            .collect();
        let (act_min, act_max) = activation_range_for::<i8>(activation, output)?;
        Ok(Self {
            input_offset: input.zero_point_i32()?.wrapping_neg(),
            filter_offset,
            output_offset: output.zero_point_i32()?,
            effective_scales,
            act_min,
            act_max,
        })
    }

    /// Legacy uint8 (per-tensor, asymmetric weights). `Prepare` still runs the
    /// bias-scale consistency check when there is a bias.
    pub fn new_u8(
        input: QuantParams,
        filter: QuantParams,
        bias_scale: Option<f32>,
        output: QuantParams,
        activation: FusedActivation,
    ) -> Result<Self, QuantError> {
        check_fc_activation(activation)?;
        legacy_multiplier(input.scale, filter.scale, bias_scale, output.scale)?;
        let (act_min, act_max) = activation_range_for::<u8>(activation, output)?;
        Ok(Self {
            input_offset: input.zero_point_i32()?.wrapping_neg(),
            filter_offset: filter.zero_point_i32()?.wrapping_neg(),
            output_offset: output.zero_point_i32()?,
            effective_scales: vec![
                f64::from(input.scale) * f64::from(filter.scale) / f64::from(output.scale),
            ],
            act_min,
            act_max,
        })
    }

    #[inline]
    pub(crate) fn requantize(&self, acc: i32, unit: usize) -> i32 {
        let scale = if self.effective_scales.len() > 1 {
            self.effective_scales[unit]
        } else {
            self.effective_scales[0]
        };
        let v = round_to_i32_x86(f64::from(acc) * scale).wrapping_add(self.output_offset);
        clamp_i32(v, self.act_min, self.act_max)
    }

    pub(crate) fn check_scales(&self, units: usize) -> Result<(), QuantError> {
        match self.effective_scales.len() {
            1 => Ok(()),
            n if n == units => Ok(()),
            n => Err(QuantError::ChannelCountMismatch {
                expected: units,
                got: n,
            }),
        }
    }
}

/// int8 FULLY_CONNECTED. `filter_row_sums` comes from
/// [`filter_row_sums`](super::conv::filter_row_sums)`(filter, units, depth)`; with zero
/// filter offset the input offset is folded as `Σw·x + x_off·Σw` (exact in wrapping
/// arithmetic, see the conv module). Processes one input row at a time.
pub fn fully_connected_i8(
    q: &FcQuant,
    shape: FcShape,
    input: &[i8],
    filter: &[i8],
    filter_row_sums: &[i32],
    bias: Option<&[i32]>,
    output: &mut [i8],
) -> Result<(), QuantError> {
    shape.check(
        input.len(),
        filter.len(),
        bias.map(<[i32]>::len),
        output.len(),
    )?;
    check_len("filter row sums", shape.units, filter_row_sums.len())?;
    q.check_scales(shape.units)?;
    let FcShape {
        batches,
        depth,
        units,
    } = shape;
    if units == 0 {
        return Ok(());
    }
    for (b, out_row) in output[..batches * units].chunks_mut(units).enumerate() {
        let x = &input[b * depth..(b + 1) * depth];
        for (u, out) in out_row.iter_mut().enumerate() {
            let w = &filter[u * depth..(u + 1) * depth];
            let mut acc = if q.filter_offset == 0 {
                dot_i8(w, x).wrapping_add(q.input_offset.wrapping_mul(filter_row_sums[u]))
            } else {
                dot_offset(w, x, q.filter_offset, q.input_offset)
            };
            if let Some(bias) = bias {
                acc = acc.wrapping_add(bias[u]);
            }
            *out = i8::from_i32(q.requantize(acc, u));
        }
    }
    Ok(())
}

/// Legacy uint8 FULLY_CONNECTED (direct form `Σ (w + w_off)(x + x_off)`).
pub fn fully_connected_u8(
    q: &FcQuant,
    shape: FcShape,
    input: &[u8],
    filter: &[u8],
    bias: Option<&[i32]>,
    output: &mut [u8],
) -> Result<(), QuantError> {
    shape.check(
        input.len(),
        filter.len(),
        bias.map(<[i32]>::len),
        output.len(),
    )?;
    q.check_scales(shape.units)?;
    let FcShape {
        batches,
        depth,
        units,
    } = shape;
    if units == 0 {
        return Ok(());
    }
    for (b, out_row) in output[..batches * units].chunks_mut(units).enumerate() {
        let x = &input[b * depth..(b + 1) * depth];
        for (u, out) in out_row.iter_mut().enumerate() {
            let w = &filter[u * depth..(u + 1) * depth];
            let mut acc = dot_offset(w, x, q.filter_offset, q.input_offset);
            if let Some(bias) = bias {
                acc = acc.wrapping_add(bias[u]);
            }
            *out = u8::from_i32(q.requantize(acc, u));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::conv::filter_row_sums;
    use crate::quant::conv::tests::Lcg;

    /// Exact rational rounding of `acc · in · w / out` where the scales are the f32
    /// values; used to check the f64 formula lands on the same integers away from ties.
    fn naive(q: &FcQuant, shape: FcShape, x: &[i32], w: &[i32], bias: Option<&[i32]>) -> Vec<i32> {
        let mut out = vec![0; shape.batches * shape.units];
        for b in 0..shape.batches {
            for u in 0..shape.units {
                let mut acc = 0_i64;
                for d in 0..shape.depth {
                    acc += (w[u * shape.depth + d] as i64 + q.filter_offset as i64)
                        * (x[b * shape.depth + d] as i64 + q.input_offset as i64);
                }
                if let Some(bias) = bias {
                    acc += bias[u] as i64;
                }
                let s = q.effective_scales[if q.effective_scales.len() > 1 { u } else { 0 }];
                let v = (acc as f64 * s).round() as i64 + q.output_offset as i64;
                out[b * shape.units + u] = v.clamp(q.act_min as i64, q.act_max as i64) as i32;
            }
        }
        out
    }

    #[test]
    fn int8_per_channel_and_per_tensor_match_naive() {
        let mut r = Lcg(17);
        for case in 0..40 {
            let shape = FcShape {
                batches: r.range(1, 5) as usize,
                depth: r.range(1, 70) as usize,
                units: r.range(1, 20) as usize,
            };
            let per_channel = case % 2 == 0 && shape.units > 1;
            let scales: Vec<f32> = if per_channel {
                (0..shape.units).map(|_| 0.001 + 0.02 * r.unit()).collect()
            } else {
                vec![0.01 * (1.0 + r.unit())]
            };
            let zps = if per_channel {
                vec![0; shape.units]
            } else {
                vec![r.range(-5, 5)]
            };
            let q = FcQuant::new_i8(
                QuantParams::new(0.02 + 0.03 * r.unit(), r.range(-128, 127)),
                &scales,
                &zps,
                QuantParams::new(0.05 + 0.2 * r.unit(), r.range(-128, 127)),
                [
                    FusedActivation::None,
                    FusedActivation::Relu,
                    FusedActivation::ReluN1To1,
                ][case % 3],
                shape.units,
            )
            .unwrap();
            let x = r.vec_i8(shape.batches * shape.depth, -128, 127);
            let w = r.vec_i8(shape.units * shape.depth, -127, 127);
            let bias: Vec<i32> = (0..shape.units)
                .map(|_| r.range(-20000, 20000) as i32)
                .collect();
            let sums = filter_row_sums(&w, shape.units, shape.depth);
            let mut out = vec![0_i8; shape.batches * shape.units];
            let bias_opt = (case % 4 != 1).then_some(&bias[..]);
            fully_connected_i8(&q, shape, &x, &w, &sums, bias_opt, &mut out).unwrap();
            let want = naive(
                &q,
                shape,
                &x.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                &w.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                bias_opt,
            );
            assert_eq!(
                out.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                want,
                "case {case}"
            );
        }
    }

    #[test]
    fn uint8_matches_naive() {
        let mut r = Lcg(23);
        for case in 0..20 {
            let shape = FcShape {
                batches: r.range(1, 4) as usize,
                depth: r.range(1, 50) as usize,
                units: r.range(1, 10) as usize,
            };
            let q = FcQuant::new_u8(
                QuantParams::new(0.02, r.range(0, 255)),
                QuantParams::new(0.004, r.range(100, 150)),
                None,
                QuantParams::new(0.2 + r.unit(), r.range(0, 255)),
                FusedActivation::None,
            )
            .unwrap();
            let x = r.vec_u8(shape.batches * shape.depth);
            let w = r.vec_u8(shape.units * shape.depth);
            let bias: Vec<i32> = (0..shape.units)
                .map(|_| r.range(-5000, 5000) as i32)
                .collect();
            let mut out = vec![0_u8; shape.batches * shape.units];
            fully_connected_u8(&q, shape, &x, &w, Some(&bias), &mut out).unwrap();
            let want = naive(
                &q,
                shape,
                &x.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                &w.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                Some(&bias),
            );
            assert_eq!(
                out.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                want,
                "case {case}"
            );
        }
    }

    /// Reference-interpreter output (ai-edge-litert 2.3.0, `BUILTIN_REF`) for an int8
    /// per-tensor FC whose accumulators sit where the fixed-point MBQM path rounds
    /// differently from the double path: REF gives `[-3, -2, -1, 0]`, MBQM would give
    /// `[-4, -3, -2, -1]`.
    #[test]
    fn matches_reference_interpreter_where_mbqm_differs() {
        use crate::quant::fixedpoint::{multiply_by_quantized_multiplier, quantize_multiplier};
        let in_s = f32::from_bits(0x3c5b_f896);
        let w_s = f32::from_bits(0x3b4d_3668);
        let out_s = f32::from_bits(0x3e28_2bc1);
        let accs = [-13672, -9766, -5859, -1953];
        let q = FcQuant::new_i8(
            QuantParams::new(in_s, 0),
            &[w_s],
            &[0],
            QuantParams::new(out_s, 0),
            FusedActivation::None,
            4,
        )
        .unwrap();
        let shape = FcShape {
            batches: 1,
            depth: 1,
            units: 4,
        };
        let bias: Vec<i32> = accs.iter().map(|a| a - 1).collect();
        let mut out = [0_i8; 4];
        fully_connected_i8(&q, shape, &[1], &[1; 4], &[1; 4], Some(&bias), &mut out).unwrap();
        assert_eq!(out, [-3, -2, -1, 0]);
        let (m, s) = quantize_multiplier(f64::from(in_s * w_s) / f64::from(out_s)).unwrap();
        let mbqm: Vec<i32> = accs
            .iter()
            .map(|&a| multiply_by_quantized_multiplier(a, m, s))
            .collect();
        assert_eq!(
            mbqm,
            [-4, -3, -2, -1],
            "the case must tell the two formulas apart"
        );
    }

    #[test]
    fn builder_rules() {
        let p = QuantParams::new(0.1, 0);
        assert!(FcQuant::new_i8(p, &[0.1, 0.2], &[0, 0], p, FusedActivation::None, 3).is_err());
        assert!(FcQuant::new_i8(p, &[0.1], &[0], p, FusedActivation::Tanh, 3).is_err());
        // Per-channel ignores filter zero points; per-tensor uses them.
        let q = FcQuant::new_i8(p, &[0.1, 0.2], &[4, 4], p, FusedActivation::None, 2).unwrap();
        assert_eq!(q.filter_offset, 0);
        let q = FcQuant::new_i8(p, &[0.1], &[4], p, FusedActivation::None, 2).unwrap();
        assert_eq!(q.filter_offset, -4);
        let shape = FcShape {
            batches: 2,
            depth: 3,
            units: 2,
        };
        let mut out = [0_i8; 4];
        assert!(fully_connected_i8(&q, shape, &[0; 5], &[0; 6], &[0; 2], None, &mut out).is_err());
    }
}
