//! Quantized SOFTMAX with int8/uint8 input, bit-exact with TFLite's reference kernel
//! (`reference_ops::Softmax<InputT, OutputT>` and `SoftmaxPrepare` for `kReference`).
//!
//! Per row (the last dimension): differences to the row maximum are rescaled by
//! `β·s_in·2^26` into Q5.26, exponentiated with gemmlowp's `exp_on_negative_values`,
//! summed in Q12.19, inverted with `GetReciprocal`, and each output is
//! `RDBPOT(reciprocal · exp, bits_over_unit + 31 − 8) + OutputT::MIN`, clamped. Inputs more
//! than `diff_min` below the maximum give `OutputT::MIN`.
//!
//! Where the reference kernel would abort because the sum of exponentials is too large
//! (at least 512), every output is the type's minimum, which is the correctly rounded
//! result and what TFLite's optimized kernel produces.
//!
//! The output quantization is implied by the output type: int8 means zero point −128 and
//! scale 1/256 (TFLite's `Prepare` requires exactly that, see
//! [`SoftmaxQuant::check_int8_output`]); uint8 means zero point 0, scale 1/256.

use super::error::{check_len, QuantError};
use super::fixedpoint::{
    exp_on_negative_values_q5, get_reciprocal, multiply_by_quantized_multiplier_greater_than_one,
    quantize_multiplier_greater_than_one, rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
};
use super::params::{clamp_i32, QuantElem, QuantParams};

const SCALED_DIFF_INTEGER_BITS: i32 = 5;
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// Prepare-time parameters of a quantized softmax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxQuant {
    /// Quantized `min(β·s_in·2^26, 2^31 − 1)`.
    pub input_multiplier: i32,
    /// Its left shift (≥ 0).
    pub input_left_shift: i32,
    /// Most negative `x − max` that still contributes (smaller ones give the minimum).
    pub diff_min: i32,
    /// `exp(x − max)` for the 256 differences of 8-bit inputs (`table[d]` for `x − max = −d`;
    /// 0 below `diff_min`), computed once here: an 8-bit row reads it instead of
    /// evaluating the exponential per element.
    pub exp_table: [i32; 256],
}

impl SoftmaxQuant {
    /// `PreprocessSoftmaxScaling` (in f64) and `CalculateInputRadius`. The real multiplier
    /// must exceed 1 (TFLite aborts otherwise; here it is an error).
    pub fn new(beta: f32, input_scale: f32) -> Result<Self, QuantError> {
        let real = (f64::from(beta)
            * f64::from(input_scale)
            * f64::from(1_i32 << (31 - SCALED_DIFF_INTEGER_BITS)))
        .min(f64::from(i32::MAX));
        let (m, shift) = quantize_multiplier_greater_than_one(real)?;
        // CalculateInputRadius(5, shift, 31) in f64, floored.
        let radius = (f64::from((1 << SCALED_DIFF_INTEGER_BITS) - 1)
            * (1_i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64
            / (1_i64 << shift.clamp(0, 62)) as f64)
            .floor();
        let mut q = Self {
            input_multiplier: m,
            input_left_shift: shift,
            diff_min: -(radius as i32),
            exp_table: [0; 256],
        };
        for d in 0..q.exp_table.len() {
            let diff = -(d as i32);
            if diff >= q.diff_min {
                q.exp_table[d] = exp_on_negative_values_q5(q.scaled_diff(diff));
            }
        }
        Ok(q)
    }

    /// The int8-output requirement of `SoftmaxPrepare`: zero point −128 and
    /// `|scale − 1/256| ≤ 0.001/256` (compared in f32).
    pub fn check_int8_output(output: QuantParams) -> Result<(), QuantError> {
        let want = 1.0_f32 / 256.0;
        let delta = if output.scale > want {
            output.scale - want
        } else {
            want - output.scale
        };
        if output.zero_point != -128 {
            return Err(QuantError::BadOutputParams(
                "softmax int8 output zero point must be -128",
            ));
        }
        if delta > 0.001_f32 * want || delta.is_nan() {
            return Err(QuantError::BadOutputParams(
                "softmax int8 output scale must be 1/256",
            ));
        }
        Ok(())
    }

    #[inline]
    fn scaled_diff(&self, diff: i32) -> i32 {
        multiply_by_quantized_multiplier_greater_than_one(
            diff,
            self.input_multiplier,
            self.input_left_shift,
        )
    }
}

/// Quantized softmax over rows of `depth` elements. `I`: `i8` or `u8`; `O`: `i8`, `u8` (or
/// `i16`, whose exponent uses 16 bits).
pub fn softmax<I: QuantElem, O: QuantElem>(
    q: &SoftmaxQuant,
    depth: usize,
    input: &[I],
    output: &mut [O],
) -> Result<(), QuantError> {
    if depth == 0 {
        return Ok(());
    }
    let n = input.len() / depth * depth;
    check_len("output", n, output.len())?;
    let out_bits = (O::MAX - O::MIN).wrapping_add(1).max(1).ilog2() as i32;
    // With 8-bit inputs a difference to the row maximum is one of 256 values, whose
    // exponentials the prepared table holds (the same function of the same value, so the
    // same bits); small tensors compute them directly.
    let span = usize::try_from(I::MAX - I::MIN).map_or(usize::MAX, |s| s + 1);
    let use_table = span <= q.exp_table.len() && n > span;
    // Only called with `diff_min <= diff <= 0`.
    let exp = |diff: i32| {
        if use_table {
            q.exp_table[diff.unsigned_abs() as usize]
        } else {
            exp_on_negative_values_q5(q.scaled_diff(diff))
        }
    };
    for (x, out) in input[..n].chunks(depth).zip(output.chunks_mut(depth)) {
        let max_in_row = x.iter().map(|v| v.to_i32()).fold(I::MIN, i32::max);
        let mut sum_of_exps = 0_i32; // Q12.19
        for v in x {
            let diff = v.to_i32() - max_in_row;
            if diff >= q.diff_min {
                let e = exp(diff);
                // Rescale Q0.31 → Q12.19; the int32 sum wraps as in gemmlowp.
                sum_of_exps =
                    sum_of_exps.wrapping_add(rounding_divide_by_pot(e, ACCUMULATION_INTEGER_BITS));
            }
        }
        let (shifted_scale, bits_over_unit) =
            get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS);
        let exponent = bits_over_unit + 31 - out_bits;
        if exponent > 31 {
            // The sum of exponentials is at least 2^(32 − 23) = 512 (for 8-bit outputs), so
            // every probability is below 1/512 and quantizes to the minimum. TFLite's
            // reference kernel aborts here (`TFLITE_CHECK`, hit by e.g. MobileNetV2's
            // 1000-way softmax); the optimized kernel gives this same result.
            out.fill(O::from_i32(O::MIN));
            continue;
        }
        if exponent < 0 {
            return Err(QuantError::SoftmaxExponentOutOfRange(exponent));
        }
        for (v, o) in x.iter().zip(out.iter_mut()) {
            let diff = v.to_i32() - max_in_row;
            *o = if diff >= q.diff_min {
                let e = exp(diff);
                let unsat = rounding_divide_by_pot(
                    saturating_rounding_doubling_high_mul(shifted_scale, e),
                    exponent,
                );
                O::from_i32(clamp_i32(unsat.wrapping_add(O::MIN), O::MIN, O::MAX))
            } else {
                O::from_i32(O::MIN)
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of 10 and the reference interpreter's outputs (ai-edge-litert 2.3.0,
    /// `BUILTIN_REF`; output scale 1/256, zero point −128 for int8 and 0 for uint8).
    #[test]
    fn matches_reference_interpreter() {
        let q = SoftmaxQuant::new(1.0, 0.0625).unwrap();
        let x: [i8; 20] = [
            57, 113, 97, 2, 112, 121, 120, -108, -12, 27, -56, -32, 32, 77, 20, -84, 45, 95, -72,
            11,
        ];
        let want: [i8; 20] = [
            -127, -82, -111, -128, -85, -52, -56, -128, -128, -128, -128, -128, -124, -69, -126,
            -128, -120, 54, -128, -127,
        ];
        let mut y = [0_i8; 20];
        softmax(&q, 10, &x, &mut y).unwrap();
        assert_eq!(y, want);

        let q = SoftmaxQuant::new(1.0, 0.003_906_25).unwrap();
        let x: [i8; 10] = [-86, 5, 19, 36, 102, 112, 8, 20, -108, -60];
        let want: [i8; 10] = [-111, -103, -102, -100, -92, -90, -103, -102, -112, -109];
        let mut y = [0_i8; 10];
        softmax(&q, 10, &x, &mut y).unwrap();
        assert_eq!(y, want);

        let q = SoftmaxQuant::new(0.7, 0.13).unwrap();
        let x: [u8; 20] = [
            103, 129, 38, 18, 253, 179, 88, 134, 247, 180, 149, 22, 12, 165, 164, 94, 142, 127,
            215, 85,
        ];
        let want: [u8; 20] = [
            0, 0, 0, 0, 162, 0, 0, 0, 94, 0, 1, 0, 0, 3, 2, 0, 0, 0, 250, 0,
        ];
        let mut y = [0_u8; 20];
        softmax(&q, 10, &x, &mut y).unwrap();
        assert_eq!(y, want);

        // A constant row of 10: every output is 1/10 → 25.6 → 26 (uint8) / −102 (int8).
        let q = SoftmaxQuant::new(1.0, 0.0625).unwrap();
        let mut y = [0_u8; 10];
        softmax(&q, 10, &[75_u8; 10], &mut y).unwrap();
        assert_eq!(y, [26; 10]);
        let mut y = [0_i8; 10];
        softmax(&q, 10, &[-42_i8; 10], &mut y).unwrap();
        assert_eq!(y, [-102; 10]);
    }

    /// A large tensor (exponentials from the table) gives each row what the row alone
    /// (computed directly) gives.
    #[test]
    fn table_path_matches_direct_path() {
        let mut s = 7_u64;
        let mut byte = || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (s >> 56) as u8
        };
        for beta_scale in [0.01_f32, 0.1, 0.5] {
            let q = SoftmaxQuant::new(1.0, beta_scale).unwrap();
            let depth = 13;
            let x: Vec<i8> = (0..depth * 40).map(|_| byte() as i8).collect();
            let xu: Vec<u8> = (0..depth * 40).map(|_| byte()).collect();
            let mut y = vec![0_i8; x.len()];
            let mut yu = vec![0_u8; xu.len()];
            softmax(&q, depth, &x, &mut y).unwrap();
            softmax(&q, depth, &xu, &mut yu).unwrap();
            for r in 0..40 {
                let row = r * depth..(r + 1) * depth;
                let mut one = vec![0_i8; depth];
                softmax(&q, depth, &x[row.clone()], &mut one).unwrap();
                assert_eq!(&y[row.clone()], &one[..], "int8 row {r}");
                let mut one = vec![0_u8; depth];
                softmax(&q, depth, &xu[row.clone()], &mut one).unwrap();
                assert_eq!(&yu[row], &one[..], "uint8 row {r}");
            }
        }
    }

    #[test]
    fn close_to_float_softmax() {
        let mut s = 1_u64;
        for beta_scale in [0.01_f32, 0.05, 0.2] {
            let q = SoftmaxQuant::new(1.0, beta_scale).unwrap();
            for _ in 0..50 {
                let x: Vec<i8> = (0..17)
                    .map(|_| {
                        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        (s >> 56) as i8
                    })
                    .collect();
                let mut y = vec![0_i8; 17];
                softmax(&q, 17, &x, &mut y).unwrap();
                let m = *x.iter().max().unwrap() as f32;
                let e: Vec<f32> = x
                    .iter()
                    .map(|&v| ((v as f32 - m) * beta_scale).exp())
                    .collect();
                let sum: f32 = e.iter().sum();
                for (o, e) in y.iter().zip(&e) {
                    let want = e / sum * 256.0 - 128.0;
                    assert!((f32::from(*o) - want).abs() <= 1.0, "{o} vs {want}");
                }
            }
        }
    }

    #[test]
    fn huge_sums_give_the_minimum_instead_of_aborting() {
        // 1000 equal inputs: each probability is 1/1000 < 0.5/256, so every output is the
        // minimum. (Depth 400 still fits the exponent range: 400·(1/400)·256 → 0.64 → 1.)
        let q = SoftmaxQuant::new(1.0, 0.01).unwrap();
        let mut y = vec![0_i8; 1000];
        softmax(&q, 1000, &vec![3_i8; 1000], &mut y).unwrap();
        assert!(y.iter().all(|&v| v == -128));
        let mut y = vec![0_u8; 400];
        softmax(&q, 400, &vec![3_u8; 400], &mut y).unwrap();
        assert!(y.iter().all(|&v| v == 1));
    }

    #[test]
    fn prepare_rules() {
        // β·s·2^26 ≤ 1 is rejected (TFLite aborts).
        assert!(SoftmaxQuant::new(1.0, 1e-9).is_err());
        // The multiplier saturates at 2^31 − 1 for huge β·s.
        let q = SoftmaxQuant::new(1.0, 1e6).unwrap();
        assert_eq!((q.input_multiplier, q.input_left_shift), (i32::MAX, 31));
        // β·s = 1/16: real 2^22 → (2^30, 23); radius = floor(31·2^26 / 2^23) = 248.
        let q = SoftmaxQuant::new(1.0, 0.0625).unwrap();
        assert_eq!(
            (q.input_multiplier, q.input_left_shift, q.diff_min),
            (1 << 30, 23, -248)
        );
        assert!(SoftmaxQuant::check_int8_output(QuantParams::new(1.0 / 256.0, -128)).is_ok());
        assert!(SoftmaxQuant::check_int8_output(QuantParams::new(1.0 / 256.0, 0)).is_err());
        assert!(SoftmaxQuant::check_int8_output(QuantParams::new(1.0 / 250.0, -128)).is_err());
    }
}
