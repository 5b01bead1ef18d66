//! int16 SOFTMAX, bit-exact with TFLite's `reference_ops::SoftmaxInt16` and the tables its
//! `Prepare` builds.
//!
//! Per row: `d = x − max` is rescaled so that `[−65535, 0]` spans `[−10, 0]` (multiplier
//! `in_scale·beta / (10/65535)`, 32-bit `MultiplyByQuantizedMultiplier`), recentred by
//! +32767, saturated to int16 and looked up in an interpolated `exp` table (Q0.15). The
//! sum of the exponentials (Q16.15) is normalised by its leading zeros, recentred and
//! looked up in a `1/(1 + x)` table; each output is `exp · recip`, rounded and shifted
//! back, clamped to `[0, 32767]`.
//!
//! Both tables have 513 entries over 512 steps. Entry `i` samples `f` at the step's start,
//! corrected by half the error between linear interpolation and `f` at the step's
//! midpoint (TFLite's `gen_lut` / `LUTPopulate` for int16), so interpolation errors are
//! balanced; values are scaled by 32768 (an output range of `[−1, 1]`).

use super::error::{check_len, QuantError};
use super::fixedpoint::{multiply_by_quantized_multiplier, quantize_multiplier};
use super::params::QuantParams;

/// Entries of an int16 interpolation table (512 steps plus the end point).
const LUT_LEN: usize = 513;

/// C's `round` on an `f64`.
fn round(x: f64) -> f64 {
    x.round()
}

/// Builds the 513-entry table of `f` over `[lo, hi]` for outputs in `[−1, 1]`.
fn build_lut(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> Box<[i16; LUT_LEN]> {
    let steps = 512;
    let step = (hi - lo) / f64::from(steps);
    let half = step / 2.0;
    // 65536 output codes over a range of 2.
    let inv = 65536.0 / 2.0;
    let mut lut = Box::new([0i16; LUT_LEN]);
    for i in 0..steps {
        let at = lo + f64::from(i) * step;
        let val = f(at);
        let mid = f(at + half);
        let next = f(lo + f64::from(i + 1) * step);
        let sample = round(val * inv);
        let interpolated = round((next * inv + round(val * inv)) / 2.0);
        let bias = round((interpolated - round(mid * inv)) / 2.0);
        lut[i as usize] = (sample - bias).clamp(-32768.0, 32767.0) as i16;
    }
    lut[steps as usize] = round(f(hi) * inv).clamp(-32768.0, 32767.0) as i16;
    lut
}

/// Interpolated lookup: the top 9 bits of `value` (offset by 256) pick the entry, the low
/// 7 bits interpolate towards the next one with rounding.
#[inline]
fn lookup(value: i16, lut: &[i16; LUT_LEN]) -> i16 {
    let index = (256 + (i32::from(value) >> 7)) as usize; // in [0, 511]
    let offset = i32::from(value) & 0x7F;
    let base = lut[index];
    // The reference keeps the slope in an int16 (wrapping).
    let slope = lut[index + 1].wrapping_sub(base);
    let delta = (i32::from(slope) * offset + 64) >> 7;
    (i32::from(base) + delta) as i16
}

/// Prepare-time parameters of an int16 SOFTMAX.
#[derive(Debug, Clone, PartialEq)]
pub struct Softmax16 {
    multiplier: i32,
    shift: i32,
    exp_lut: Box<[i16; LUT_LEN]>,
    recip_lut: Box<[i16; LUT_LEN]>,
}

impl Softmax16 {
    /// Zero points must be 0 and the output scale within 0.1% of 1/32768, as TFLite's
    /// `Prepare` requires.
    pub fn new(beta: f32, input: QuantParams, output: QuantParams) -> Result<Self, QuantError> {
        if input.zero_point != 0 || output.zero_point != 0 {
            return Err(QuantError::BadOutputParams(
                "int16 SOFTMAX needs zero points 0",
            ));
        }
        let want = 1.0_f64 / 32768.0;
        if (f64::from(output.scale) - want).abs() > 0.001 * want {
            return Err(QuantError::BadOutputParams(
                "int16 SOFTMAX needs an output scale of 1/32768",
            ));
        }
        // The scale·beta product is taken in f32, as the reference's float operands are.
        let real = f64::from(input.scale * beta) / (10.0 / 65535.0);
        let (multiplier, shift) = quantize_multiplier(real)?;
        Ok(Self {
            multiplier,
            shift,
            exp_lut: build_lut(f64::exp, -10.0, 0.0),
            recip_lut: build_lut(|x| 1.0 / (1.0 + x), 0.0, 1.0),
        })
    }

    /// Bytes held by the tables.
    pub fn byte_size(&self) -> usize {
        2 * LUT_LEN * 2
    }
}

/// SOFTMAX over rows of `depth` elements. `output` doubles as the cache of the
/// exponentials, as in the reference.
pub fn softmax_i16(
    q: &Softmax16,
    depth: usize,
    input: &[i16],
    output: &mut [i16],
) -> Result<(), QuantError> {
    check_len("output", input.len(), output.len())?;
    if depth == 0 {
        return Ok(());
    }
    if input.len() % depth != 0 {
        return Err(QuantError::BadGeometry("softmax input is not whole rows"));
    }
    for (row, out) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let max = row.iter().copied().max().unwrap_or(i16::MIN);
        let mut sum: i32 = 0;
        for (o, &x) in out.iter_mut().zip(row) {
            let diff = i32::from(x) - i32::from(max);
            let scaled = multiply_by_quantized_multiplier(diff, q.multiplier, q.shift);
            let centred = scaled.wrapping_add(32767).clamp(-32768, 32767) as i16;
            *o = lookup(centred, &q.exp_lut);
            sum = sum.wrapping_add(i32::from(*o));
        }
        // Each exponential is at most 32767 and the maximum's is close to it, so the sum
        // is positive; its leading zeros are in [1, 17] for any realistic row.
        let headroom_plus_one = (sum as u32).leading_zeros().clamp(1, 31);
        let shifted = ((i64::from(sum) << (headroom_plus_one - 1)) + (1 << 13)) >> 14;
        let centred = (shifted - ((1 << 15) + (1 << 16))).clamp(-32768, 32767) as i16;
        let recip = i64::from(lookup(centred, &q.recip_lut));
        let right_shift = 31 - headroom_plus_one;
        let round = if right_shift > 0 {
            1_i64 << (right_shift - 1)
        } else {
            0
        };
        for o in out.iter_mut() {
            let r = ((i64::from(*o) * recip + round) >> right_shift) as i32;
            *o = r.clamp(0, 32767) as i16;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_their_functions() {
        let e = build_lut(f64::exp, -10.0, 0.0);
        let r = build_lut(|x| 1.0 / (1.0 + x), 0.0, 1.0);
        for i in 0..LUT_LEN {
            let x = -10.0 + 10.0 * i as f64 / 512.0;
            assert!(
                (f64::from(e[i]) - 32768.0 * x.exp()).abs() <= 2.0,
                "exp {i}"
            );
            let y = i as f64 / 512.0;
            let want = (32768.0 / (1.0 + y)).min(32767.0);
            assert!((f64::from(r[i]) - want).abs() <= 2.0, "recip {i}");
        }
    }

    #[test]
    fn rows_sum_to_one_and_follow_float_softmax() {
        let scale = 4.0 / 32767.0;
        let q = Softmax16::new(
            1.0,
            QuantParams::new(scale, 0),
            QuantParams::new(1.0 / 32768.0, 0),
        )
        .unwrap();
        let x: Vec<i16> = (0..20)
            .map(|i| ((i * 7919) % 65536 - 32768) as i16)
            .collect();
        let mut out = vec![0i16; 20];
        softmax_i16(&q, 10, &x, &mut out).unwrap();
        for r in 0..2 {
            let row = &x[r * 10..r * 10 + 10];
            let m = row
                .iter()
                .map(|&v| f64::from(v) * f64::from(scale))
                .fold(f64::MIN, f64::max);
            let s: f64 = row
                .iter()
                .map(|&v| (f64::from(v) * f64::from(scale) - m).exp())
                .sum();
            for c in 0..10 {
                let want = (f64::from(row[c]) * f64::from(scale) - m).exp() / s * 32768.0;
                let got = f64::from(out[r * 10 + c]);
                assert!((got - want).abs() <= 40.0, "{r},{c}: {got} vs {want}");
            }
        }
        assert!(Softmax16::new(1.0, QuantParams::new(0.1, 0), QuantParams::new(0.001, 0)).is_err());
    }
}
