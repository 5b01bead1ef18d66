//! L2_NORMALIZATION over the last dimension: float (`x / max(‖x‖, 1e-6)`), and int8
//! bit-exact with `reference_integer_ops::L2Normalization`.
//!
//! The int8 form sums `(x − zp)²` in i32, turns the sum into a fixed-point inverse square
//! root with TFLite's `GetInvSqrtQuantizedMultiplierExp` (a Newton–Raphson iteration in
//! gemmlowp Q3.28), and requantizes each `x − zp` with it and 7 extra bits: the output scale
//! is 1/128 with zero point 0, the only output parameters TFLite's `Prepare` accepts.

use super::log_softmax::rescale;
use crate::quant::error::QuantError;
use crate::quant::fixedpoint::{
    multiply_by_quantized_multiplier, rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul as srdhm,
};
use crate::quant::QuantParams;

/// TFLite's float epsilon for the norm.
const EPSILON: f32 = 1e-6;

/// Float L2 normalization over rows of `depth`.
pub fn l2_norm_f32(input: &[f32], depth: usize, output: &mut [f32]) {
    if depth == 0 {
        return;
    }
    for (x, y) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let mut sq = 0.0f32;
        for &v in x {
            sq += v * v;
        }
        let norm = sq.sqrt().max(EPSILON);
        for (o, &v) in y.iter_mut().zip(x) {
            *o = v / norm;
        }
    }
}

/// TFLite's `GetInvSqrtQuantizedMultiplierExp(input, reverse_shift = −1)`: a multiplier and
/// left shift approximating `1 / sqrt(input)`. Inputs 0 and 1 give `(i32::MAX, 0)`.
pub fn inv_sqrt_multiplier(input: i32) -> (i32, i32) {
    if input <= 1 {
        return (i32::MAX, 0);
    }
    let mut input = input;
    let mut shift = 11;
    while input >= (1 << 29) {
        input /= 4;
        shift += 1;
    }
    let max_left_shift_bits = (input as u32).leading_zeros() as i32 - 1;
    let left_shift_bit_pairs = max_left_shift_bits / 2 - 1;
    shift -= left_shift_bit_pairs;
    input <<= 2 * left_shift_bit_pairs;
    // Q3.28 Newton–Raphson for 1/sqrt, starting at 1, five iterations.
    let fixed_input = input >> 1;
    let half_input = rounding_divide_by_pot(fixed_input, 1);
    let half_three = (1 << 28) + (1 << 27);
    let mut x = 1 << 28;
    for _ in 0..5 {
        let x3 = rescale(srdhm(srdhm(x, x), x), 9, 3);
        x = rescale(
            srdhm(half_three, x).wrapping_sub(srdhm(half_input, x3)),
            6,
            3,
        );
    }
    // Times sqrt(2)/2 in Q0.31.
    let mut inv = srdhm(x, 1_518_500_250);
    if shift < 0 {
        inv = inv.wrapping_shl((-shift) as u32);
        shift = 0;
    }
    (inv, -shift)
}

/// `L2NormPrepare`'s int8 output requirement: scale exactly 1/128, zero point 0.
pub fn check_int8_output(output: QuantParams) -> Result<(), QuantError> {
    if f64::from(output.scale) != 1.0 / 128.0 || output.zero_point != 0 {
        return Err(QuantError::BadOutputParams(
            "L2 normalization int8 output must have scale 1/128 and zero point 0",
        ));
    }
    Ok(())
}

/// int8 L2 normalization over rows of `depth`; `input_zero_point` from the input tensor.
pub fn l2_norm_i8(
    input_zero_point: i32,
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
    for (x, y) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let mut acc = 0i32;
        for &v in x {
            let d = i32::from(v).wrapping_sub(input_zero_point);
            acc = acc.wrapping_add(d.wrapping_mul(d));
        }
        let (m, s) = inv_sqrt_multiplier(acc);
        for (o, &v) in y.iter_mut().zip(x) {
            let d = i32::from(v).wrapping_sub(input_zero_point);
            let r = multiply_by_quantized_multiplier(d, m, s.wrapping_add(7));
            *o = r.clamp(-128, 127) as i8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inv_sqrt_is_close() {
        for v in [2, 3, 10, 100, 1000, 65_025, 1 << 20, 1 << 29, i32::MAX] {
            let (m, s) = inv_sqrt_multiplier(v);
            let got = f64::from(m) / 2f64.powi(31) * 2f64.powi(s);
            let want = 1.0 / f64::from(v).sqrt();
            assert!((got / want - 1.0).abs() < 1e-4, "{v}: {got} vs {want}");
        }
        assert_eq!(inv_sqrt_multiplier(0), (i32::MAX, 0));
    }

    #[test]
    fn int8_close_to_float() {
        let x: Vec<i8> = (0..24).map(|i| ((i * 37) % 200 - 100) as i8).collect();
        let mut out = vec![0i8; 24];
        l2_norm_i8(5, &x, 8, &mut out).unwrap();
        let xf: Vec<f32> = x.iter().map(|&v| f32::from(v) - 5.0).collect();
        let mut want = vec![0.0; 24];
        l2_norm_f32(&xf, 8, &mut want);
        for (&o, &w) in out.iter().zip(&want) {
            let want_q = (w * 128.0).round().clamp(-128.0, 127.0);
            assert!((f32::from(o) - want_q).abs() <= 1.0, "{o} vs {want_q}");
        }
    }
}
