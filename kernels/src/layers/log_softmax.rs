//! LOG_SOFTMAX over the last dimension: float, and int8 bit-exact with
//! `reference_integer_ops::LogSoftmax`.
//!
//! The int8 form works in gemmlowp fixed point: differences to the row maximum are scaled
//! into Q5.26 (`β = 1`), exponentiated, summed in Q12.19, and the sum's logarithm is taken
//! with gemmlowp's `log_x_for_x_greater_than_or_equal_to_1` (5 integer bits out). Each
//! output is `RDBPOT(diff_q5 − log_sum, 22) + 127`, i.e. scale 16/256 and zero point 127,
//! the only output parameters TFLite's `Prepare` accepts. Differences too negative to matter
//! give −128.

use crate::quant::error::QuantError;
use crate::quant::fixedpoint::{
    exp_on_negative_values_q5, multiply_by_quantized_multiplier, one_over_one_plus_x_for_x_in_0_1,
    quantize_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul as srdhm,
};
use crate::quant::softmax::SoftmaxQuant;
use crate::quant::QuantParams;

/// Float log-softmax over rows of `depth`: `x − max − ln Σ exp(x − max)`.
pub fn log_softmax_f32(input: &[f32], depth: usize, output: &mut [f32]) {
    if depth == 0 {
        return;
    }
    for (x, y) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = x.iter().map(|&v| (v - max).exp()).sum();
        let log_sum = sum.ln();
        for (o, &v) in y.iter_mut().zip(x) {
            *o = v - max - log_sum;
        }
    }
}

/// gemmlowp `SaturatingRoundingMultiplyByPOT` with a run-time exponent ≥ 0 (TFLite's
/// `SaturatingRoundingMultiplyByPOTParam`); shift counts wrap mod 32 as on x86.
#[inline]
pub(crate) fn saturating_shift_left(x: i32, exponent: i32) -> i32 {
    if exponent == 0 {
        return x;
    }
    let threshold = 1_i32
        .wrapping_shl(31_i32.wrapping_sub(exponent) as u32)
        .wrapping_sub(1);
    if x > threshold {
        i32::MAX
    } else if x < threshold.wrapping_neg() {
        i32::MIN
    } else {
        x.wrapping_shl(exponent as u32)
    }
}

/// gemmlowp `Rescale`: changes the number of integer bits of a fixed-point raw value.
#[inline]
pub(crate) fn rescale(x: i32, from_bits: i32, to_bits: i32) -> i32 {
    let e = from_bits - to_bits;
    if e >= 0 {
        saturating_shift_left(x, e)
    } else {
        rounding_divide_by_pot(x, -e)
    }
}

fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = i64::from(a) + i64::from(b);
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

fn saturating_add(a: i32, b: i32) -> i32 {
    (i64::from(a) + i64::from(b)).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

fn saturating_sub(a: i32, b: i32) -> i32 {
    (i64::from(a) - i64::from(b)).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// TFLite's `log_x_for_x_greater_than_or_equal_to_1_impl`: `ln(x)` of a raw value with
/// `in_bits` integer bits, returned with `out_bits` integer bits.
pub fn log_x_ge_1(x: i32, in_bits: i32, out_bits: i32) -> i32 {
    // Q0.31 constants: ln 2, 2^-1/4, 2^-1/2, 1/4 and the rational approximation's alphas.
    const LOG_2: i32 = 1_488_522_236;
    const SQRT_SQRT_HALF: i32 = 1_805_811_301;
    const SQRT_HALF: i32 = 1_518_500_250;
    const ONE_QUARTER: i32 = 536_870_912;
    const ALPHA_N: i32 = 117_049_297;
    const ALPHA_D: i32 = 127_690_142;
    const ALPHA_I: i32 = 1_057_819_769;
    const ALPHA_F: i32 = 638_450_708;
    // One extra integer bit of headroom for the accumulation.
    let accum_bits = out_bits + 1;
    let shifted_quarter = rescale(ONE_QUARTER, 0, accum_bits);

    // Normalize x two ways (as is, and premultiplied by sqrt(1/2)) and keep the one whose
    // mantissa r lies closer to 2^-1/4; z_pow_2_adj is the matching power of two.
    let z_a_headroom_plus_1 = (x as u32).leading_zeros() as i32;
    let r_a_tmp = saturating_shift_left(x, z_a_headroom_plus_1 - 1);
    let r_a = saturating_shift_left(srdhm(r_a_tmp, SQRT_HALF), 1);
    let z_a_pow_2_adj = saturating_add(
        saturating_shift_left(in_bits - z_a_headroom_plus_1, 31 - accum_bits),
        shifted_quarter,
    );
    let z_b = srdhm(x, SQRT_HALF);
    let z_b_headroom = (z_b as u32).leading_zeros() as i32 - 1;
    let r_b = saturating_shift_left(x, z_b_headroom);
    let z_b_pow_2_adj = saturating_sub(
        saturating_shift_left(in_bits - z_b_headroom, 31 - accum_bits),
        shifted_quarter,
    );
    let r = r_a.min(r_b);
    let z_pow_2_adj = z_a_pow_2_adj.max(z_b_pow_2_adj);

    let p = rounding_half_sum(r, SQRT_SQRT_HALF);
    let mut q = r.wrapping_sub(SQRT_SQRT_HALF);
    q = q.wrapping_add(q);
    let common_sq = srdhm(q, q);
    let num = srdhm(q, r).wrapping_add(srdhm(srdhm(q, common_sq), ALPHA_N));
    let denom_minus_one = srdhm(
        p,
        ALPHA_I
            .wrapping_add(q)
            .wrapping_add(srdhm(ALPHA_D, common_sq)),
    )
    .wrapping_add(srdhm(ALPHA_F, q));
    let recip_denom = one_over_one_plus_x_for_x_in_0_1(denom_minus_one);
    let num_scaled = rescale(num, 0, accum_bits);
    rescale(
        srdhm(z_pow_2_adj, LOG_2).wrapping_add(srdhm(num_scaled, recip_denom)),
        accum_bits,
        out_bits,
    )
}

const INPUT_BITS: i32 = 5;
const ACCUM_BITS: i32 = 12;
const OUTPUT_BITS: i32 = 4;
const OUTPUT_ZERO_POINT: i32 = 127;

/// Prepare-time parameters of the int8 log-softmax (`PreprocessLogSoftmaxScalingExp` with
/// `β = 1` and 5 integer bits, and `CalculateInputRadius`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSoftmaxQuant {
    pub input_multiplier: i32,
    pub input_left_shift: i32,
    /// Quantized `2^(31 − input_left_shift) / input_multiplier` (below 1).
    pub reverse_multiplier: i32,
    /// Its shift (≤ 0, a right shift).
    pub reverse_shift: i32,
    pub diff_min: i32,
}

impl LogSoftmaxQuant {
    pub fn new(input_scale: f32) -> Result<Self, QuantError> {
        let sm = SoftmaxQuant::new(1.0, input_scale)?;
        // `1 << (31 − shift)` is a C int: shift ≥ 1 for a multiplier above 1.
        let num = 1_i64
            .checked_shl((31 - sm.input_left_shift).clamp(0, 62) as u32)
            .unwrap_or(0) as i32;
        let real = f64::from(num) / f64::from(sm.input_multiplier);
        if !(real > 0.0 && real < 1.0) {
            return Err(QuantError::MultiplierOutOfRange {
                what: "log-softmax reverse scaling",
                value: real,
            });
        }
        let (reverse_multiplier, reverse_shift) = quantize_multiplier(real)?;
        if reverse_shift > 0 {
            return Err(QuantError::MultiplierOutOfRange {
                what: "log-softmax reverse scaling",
                value: real,
            });
        }
        Ok(Self {
            input_multiplier: sm.input_multiplier,
            input_left_shift: sm.input_left_shift,
            reverse_multiplier,
            reverse_shift,
            diff_min: sm.diff_min,
        })
    }

    /// `LogSoftmaxPrepare`'s int8 output requirement: scale exactly 16/256, zero point 127.
    pub fn check_int8_output(output: QuantParams) -> Result<(), QuantError> {
        if f64::from(output.scale) != 16.0 / 256.0 || output.zero_point != 127 {
            return Err(QuantError::BadOutputParams(
                "log-softmax int8 output must have scale 16/256 and zero point 127",
            ));
        }
        Ok(())
    }
}

/// int8 log-softmax over rows of `depth`.
pub fn log_softmax_i8(
    q: &LogSoftmaxQuant,
    input: &[i8],
    depth: usize,
    output: &mut [i8],
) -> Result<(), QuantError> {
    if output.len() < input.len() {
        return Err(QuantError::BufferTooSmall {
            what: "output",
            needed: input.len(),
            got: output.len(),
        });
    }
    if depth == 0 {
        return Ok(());
    }
    let scaled =
        |d: i32| multiply_by_quantized_multiplier(d, q.input_multiplier, q.input_left_shift);
    for (x, y) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let max = i32::from(x.iter().copied().max().unwrap_or(i8::MIN));
        let mut sum = 0i32;
        for &v in x {
            let diff = i32::from(v) - max;
            if diff >= q.diff_min {
                let e = exp_on_negative_values_q5(scaled(diff));
                sum = sum.wrapping_add(rescale(e, 0, ACCUM_BITS));
            }
        }
        let log_sum = log_x_ge_1(sum, ACCUM_BITS, INPUT_BITS);
        let shifted = log_sum.wrapping_add(i32::MIN);
        let adjusted_diff_min = (q.diff_min - 1).max(multiply_by_quantized_multiplier(
            shifted,
            q.reverse_multiplier,
            q.reverse_shift,
        ));
        for (o, &v) in y.iter_mut().zip(x) {
            let diff = i32::from(v) - max;
            *o = if diff > adjusted_diff_min {
                let r = rounding_divide_by_pot(
                    scaled(diff).wrapping_sub(log_sum),
                    31 - INPUT_BITS - OUTPUT_BITS,
                ) + OUTPUT_ZERO_POINT;
                r.clamp(-128, 127) as i8
            } else {
                i8::MIN
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_matches_ln() {
        // Q12.19 inputs from 1 to 4000, output Q5.26.
        for v in [1.0f64, 1.5, 2.0, 3.7, 10.0, 100.0, 1234.5, 4000.0] {
            let raw = (v * f64::from(1 << 19)).round() as i32;
            let got = f64::from(log_x_ge_1(raw, 12, 5)) / f64::from(1 << 26);
            assert!((got - v.ln()).abs() < 1e-6, "{v}: {got} vs {}", v.ln());
        }
    }

    #[test]
    fn int8_close_to_float() {
        let scale = 0.05f32;
        let q = LogSoftmaxQuant::new(scale).unwrap();
        let x: Vec<i8> = (0..30).map(|i| ((i * 53) % 255 - 127) as i8).collect();
        let mut out = vec![0i8; 30];
        log_softmax_i8(&q, &x, 10, &mut out).unwrap();
        let xf: Vec<f32> = x.iter().map(|&v| f32::from(v) * scale).collect();
        let mut want = vec![0.0; 30];
        log_softmax_f32(&xf, 10, &mut want);
        for (&o, &w) in out.iter().zip(&want) {
            let deq = (f32::from(o) - 127.0) / 16.0;
            // Within one step, or saturated at the bottom of the range.
            assert!((deq - w).abs() <= 1.0 / 16.0 + 1e-3 || (o == -128 && w < -15.8));
        }
    }

    #[test]
    fn output_params_are_checked() {
        assert!(LogSoftmaxQuant::check_int8_output(QuantParams::new(0.0625, 127)).is_ok());
        assert!(LogSoftmaxQuant::check_int8_output(QuantParams::new(0.0625, 0)).is_err());
        assert!(LogSoftmaxQuant::check_int8_output(QuantParams::new(0.06, 127)).is_err());
    }
}
