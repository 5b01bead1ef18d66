//! int16 LOGISTIC and TANH, bit-exact with TFLite's reference kernels
//! (`reference_integer_ops::Logistic` / `Tanh` for `int16_t`, parameters from
//! `activations.cc`'s `SigmoidPrepare` / `TanhPrepare`).
//!
//! Both interpolate one 256-entry table of `sigmoid(i/24)` in unsigned 0.16 fixed point
//! (TANH uses `tanh(x) = 2·sigmoid(2x) − 1`). The input is first brought to a scale of
//! `1/(3·4096)`: for power-of-two input scales (`2^-12`, and for TANH also `2^-11`) by an
//! exact multiplication by `3·2^left_shift`; otherwise by an integer multiplier in
//! `(16383.5, 32767]` and a rounding right shift. Zero points must be 0 and the output
//! scale `2^-15`.

use super::add16::checked_log2;
use super::error::{check_len, QuantError};
use super::params::QuantParams;

/// TFLite's `sigmoid_table_uint16`: `sigmoid(i/24)` scaled by 2^16 (the last entry
/// capped at 65535). Its rounding follows no simple formula, so the values are data.
#[rustfmt::skip]
const SIGMOID_TABLE: [u16; 256] = [
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535,
];

/// Prepare-time parameters of an int16 LOGISTIC or TANH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sigmoid16 {
    /// Integer input multiplier (already including the factor 3).
    multiplier: i32,
    /// Rounding right shift after the multiplication.
    right_shift: i32,
    tanh: bool,
}

impl Sigmoid16 {
    /// Parameters for LOGISTIC (`tanh` false) or TANH.
    pub fn new(input: QuantParams, output: QuantParams, tanh: bool) -> Result<Self, QuantError> {
        if input.zero_point != 0 || output.zero_point != 0 {
            return Err(QuantError::BadOutputParams(
                "int16 LOGISTIC/TANH need zero points 0",
            ));
        }
        let (out_log2, out_pot) = checked_log2(output.scale);
        if !out_pot || out_log2 != -15 {
            return Err(QuantError::BadOutputParams(
                "int16 LOGISTIC/TANH need an output scale of 2^-15",
            ));
        }
        let (in_log2, in_pot) = checked_log2(input.scale);
        // Input bits: the reference treats the input as Q3.12.
        let left_shift = in_log2.saturating_add(12);
        let pot = in_pot && (left_shift == 0 || (tanh && left_shift == 1));
        let (multiplier, right_shift) = if pot {
            (3 << left_shift, 0)
        } else {
            let mut m = f64::from(input.scale) * 4096.0 * 3.0;
            let mut shift = 0;
            while m <= 32767.0 / 2.0 && shift <= 30 {
                shift += 1;
                m *= 2.0;
            }
            // The reference keeps `(int)m`; a huge input scale would not fit in its
            // int32 arithmetic, so it is refused.
            if m.is_nan() || m >= 32768.0 {
                return Err(QuantError::MultiplierOutOfRange {
                    what: "int16 LOGISTIC/TANH input multiplier",
                    value: m,
                });
            }
            (m as i32, shift)
        };
        Ok(Self {
            multiplier,
            right_shift,
            tanh,
        })
    }

    /// One output value.
    #[inline]
    pub fn apply(&self, x: i16) -> i16 {
        let round = if self.right_shift > 0 {
            1_i32 << (self.right_shift - 1)
        } else {
            0
        };
        // |x·m| < 2^15·2^15, so the i32 arithmetic cannot overflow.
        let v = (i32::from(x) * self.multiplier + round) >> self.right_shift;
        let abs = v.unsigned_abs();
        if self.tanh {
            // Table step 2^8 (the doubled argument of tanh = 2·sigmoid(2x) − 1).
            let hi = (abs >> 8) as usize;
            let r: i32 = if hi >= 255 {
                0xFFFF << 8
            } else {
                let (a, b) = (
                    u32::from(SIGMOID_TABLE[hi]),
                    u32::from(SIGMOID_TABLE[hi + 1]),
                );
                ((a << 8) + (abs & 0xFF) * (b - a)) as i32
            };
            let r = if v >= 0 {
                r - (1 << 23) + (1 << 7)
            } else {
                -r + (1 << 23) + (1 << 7) - 1
            };
            (r >> 8) as i16
        } else {
            // Table step 2^9.
            let hi = (abs >> 9) as usize;
            let r: u32 = if hi >= 255 {
                0x7FFF << 10
            } else {
                let (a, b) = (
                    u32::from(SIGMOID_TABLE[hi]),
                    u32::from(SIGMOID_TABLE[hi + 1]),
                );
                (a << 9) + (abs & 0x1FF) * (b - a)
            };
            let r = if v >= 0 {
                r + (1 << 9)
            } else {
                (1 << 25) - r + (1 << 9) - 1
            };
            (r >> 10) as i16
        }
    }
}

/// Applies [`Sigmoid16::apply`] to every element.
pub fn sigmoid16(p: &Sigmoid16, input: &[i16], output: &mut [i16]) -> Result<(), QuantError> {
    check_len("output", input.len(), output.len())?;
    for (o, &x) in output.iter_mut().zip(input) {
        *o = p.apply(x);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sigmoid_over_24() {
        for (i, &t) in SIGMOID_TABLE.iter().enumerate() {
            let s = 65536.0 / (1.0 + (-(i as f64) / 24.0).exp());
            // Within about one unit: the table's rounding is not exact.
            assert!((f64::from(t) - s).abs() <= 1.5, "{i}: {t} vs {s}");
        }
    }

    fn close(p: &Sigmoid16, in_scale: f64, f: fn(f64) -> f64) {
        for x in (-32768..=32767).step_by(97) {
            let real = f(f64::from(x) * in_scale) * 32768.0;
            let got = f64::from(p.apply(x as i16));
            assert!((got - real).abs() <= 3.0, "{x}: {got} vs {real}");
        }
    }

    #[test]
    fn logistic_and_tanh_follow_the_functions() {
        let out = QuantParams::new(1.0 / 32768.0, 0);
        for scale in [1.0 / 4096.0, 8.0 / 32767.0, 3.0 / 32767.0, 1e-4] {
            let q = QuantParams::new(scale as f32, 0);
            let s = f64::from(scale as f32);
            close(&Sigmoid16::new(q, out, false).unwrap(), s, |v| {
                1.0 / (1.0 + (-v).exp())
            });
            close(&Sigmoid16::new(q, out, true).unwrap(), s, f64::tanh);
        }
        // The output scale must be 2^-15.
        assert!(Sigmoid16::new(
            QuantParams::new(0.001, 0),
            QuantParams::new(0.001, 0),
            false
        )
        .is_err());
    }

    #[test]
    fn power_of_two_path_hand_derived() {
        // Input scale 2^-12 (Q3.12): x = 4096 is 1.0; 3·4096 = 12288 = 24·512 → table[24]
        // = sigmoid(1) in 0.16, rounded into Q0.15: (47911·512 + 512) >> 10 = 23956.
        let p = Sigmoid16::new(
            QuantParams::new(1.0 / 4096.0, 0),
            QuantParams::new(1.0 / 32768.0, 0),
            false,
        )
        .unwrap();
        assert_eq!(p.apply(4096), 23956);
        assert_eq!(p.apply(0), 16384);
        // x ≈ 8: sigmoid(8)·32768 ≈ 32757.
        assert_eq!(p.apply(i16::MAX), 32757);
    }
}
