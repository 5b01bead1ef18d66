//! int16 ADD and SUB, bit-exact with TFLite's reference kernels (`add.cc`, `sub.cc`).
//!
//! Two paths, chosen at prepare time as TFLite does:
//!
//! - **General** (the `pot_scale_int16` option is false, which is what the converter
//!   writes, or some scale is not a power of two): the 8-bit algorithm with a left shift
//!   of 15 instead of 20: `a = MBQM<1((x1 − z1)·2^15, m1)`, `b = MBQM<1((x2 − z2)·2^15, m2)`,
//!   `out = clamp(MBQM<1(a ± b, m_out) + z_out)`. ADD requires zero points 0; SUB accepts
//!   any zero point in the int16 range.
//! - **Power of two** (`pot_scale_int16` true and every scale within 1e-3 of a power of two
//!   in log2, TFLite's `CheckedLog2`): zero points 0, at most one input rescaled, by a right
//!   shift (`RoundingDivideByPOT`), then a saturating int16 sum or difference and the
//!   activation clamp. The reference ADD has no broadcasting variant on this path (it
//!   reads past the smaller input), so it is refused; SUB broadcasts.

use super::add::AddQuant;
use super::broadcast::BroadcastPlan;
use super::error::{check_len, QuantError};
use super::fixedpoint::{
    multiply_by_quantized_multiplier_smaller_than_one_exp as mbqm_lt1,
    quantize_multiplier_smaller_than_one_exp, rounding_divide_by_pot,
};
use super::params::{activation_range_for, clamp_i32, FusedActivation, QuantParams};

/// The left shift of the general int16 path.
const LEFT_SHIFT: i32 = 15;

/// TFLite's `CheckedLog2` on an `f32` scale: `(round(log2 s), |frac| < 1e-3)`, computed in
/// `f32` like `std::log(float)`.
pub fn checked_log2(scale: f32) -> (i32, bool) {
    let l = scale.ln() * (1.0 / 2.0_f32.ln());
    let r = l.round();
    (r as i32, (l - r).abs() < 1e-3)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    General(AddQuant),
    Pot {
        /// Right shift of input 1 (0 when input 2 is the shifted one).
        shift1: i32,
        /// Right shift of input 2.
        shift2: i32,
        act_min: i32,
        act_max: i32,
    },
}

/// Prepare-time parameters of an int16 ADD or SUB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddSub16 {
    path: Path,
    sub: bool,
}

fn require_zero(ps: &[QuantParams]) -> Result<(), QuantError> {
    if ps.iter().any(|p| p.zero_point != 0) {
        return Err(QuantError::BadOutputParams("int16 ADD needs zero points 0"));
    }
    Ok(())
}

impl AddSub16 {
    /// Parameters for ADD (`sub` false) or SUB (`sub` true). `pot_scale_int16` is the
    /// operator option of that name.
    pub fn new(
        input1: QuantParams,
        input2: QuantParams,
        output: QuantParams,
        activation: FusedActivation,
        pot_scale_int16: bool,
        sub: bool,
    ) -> Result<Self, QuantError> {
        if !sub {
            require_zero(&[input1, input2, output])?;
        }
        let logs = [input1, input2, output].map(|p| checked_log2(p.scale));
        let pot = pot_scale_int16 && logs.iter().all(|&(_, ok)| ok);
        let (act_min, act_max) = activation_range_for::<i16>(activation, output)?;
        let path = if pot {
            require_zero(&[input1, input2, output])?;
            let s1 = logs[0].0 - logs[2].0;
            let s2 = logs[1].0 - logs[2].0;
            if !(s1 == 0 || s2 == 0) || s1 > 0 || s2 > 0 {
                return Err(QuantError::BadOutputParams(
                    "power-of-two int16 ADD/SUB rescales at most one input, downwards",
                ));
            }
            Path::Pot {
                shift1: -s1,
                shift2: -s2,
                act_min,
                act_max,
            }
        } else {
            for p in [input1, input2, output] {
                let zp = p.zero_point_i32()?;
                if !(i32::from(i16::MIN)..=i32::from(i16::MAX)).contains(&zp) {
                    return Err(QuantError::ZeroPointOutOfRange(p.zero_point));
                }
            }
            let twice_max = 2.0 * f64::from(input1.scale.max(input2.scale));
            let (m1, sh1) =
                quantize_multiplier_smaller_than_one_exp(f64::from(input1.scale) / twice_max)?;
            let (m2, sh2) =
                quantize_multiplier_smaller_than_one_exp(f64::from(input2.scale) / twice_max)?;
            // SUB's reference would switch to a multiplier above one for an output range
            // far narrower than the inputs' and then shift by a negative amount
            // (undefined); like ADD, that is refused here.
            let (mo, so) = quantize_multiplier_smaller_than_one_exp(
                twice_max / (f64::from(1_i32 << LEFT_SHIFT) * f64::from(output.scale)),
            )?;
            Path::General(AddQuant {
                left_shift: LEFT_SHIFT,
                input1_offset: input1.zero_point_i32()?.wrapping_neg(),
                input1_multiplier: m1,
                input1_shift: sh1,
                input2_offset: input2.zero_point_i32()?.wrapping_neg(),
                input2_multiplier: m2,
                input2_shift: sh2,
                output_multiplier: mo,
                output_shift: so,
                output_offset: output.zero_point_i32()?,
                act_min,
                act_max,
            })
        };
        Ok(Self { path, sub })
    }

    /// Whether this runs the power-of-two path.
    pub fn is_pot(&self) -> bool {
        matches!(self.path, Path::Pot { .. })
    }

    /// One output element.
    #[inline]
    pub fn apply(&self, x1: i16, x2: i16) -> i16 {
        match self.path {
            Path::General(q) => {
                let shift = 1_i32 << q.left_shift;
                let a = mbqm_lt1(
                    q.input1_offset
                        .wrapping_add(i32::from(x1))
                        .wrapping_mul(shift),
                    q.input1_multiplier,
                    q.input1_shift,
                );
                let b = mbqm_lt1(
                    q.input2_offset
                        .wrapping_add(i32::from(x2))
                        .wrapping_mul(shift),
                    q.input2_multiplier,
                    q.input2_shift,
                );
                let raw = if self.sub {
                    a.wrapping_sub(b)
                } else {
                    a.wrapping_add(b)
                };
                let v = mbqm_lt1(raw, q.output_multiplier, q.output_shift)
                    .wrapping_add(q.output_offset);
                clamp_i32(v, q.act_min, q.act_max) as i16
            }
            Path::Pot {
                shift1,
                shift2,
                act_min,
                act_max,
            } => {
                let a = rounding_divide_by_pot(i32::from(x1), shift1);
                let b = rounding_divide_by_pot(i32::from(x2), shift2);
                let raw = if self.sub { a - b } else { a + b };
                // gemmlowp's saturating int16 add/sub, then the activation clamp.
                let sat = raw.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
                clamp_i32(sat, act_min, act_max) as i16
            }
        }
    }
}

/// int16 ADD or SUB with broadcasting; `plan` from the two input shapes.
pub fn add_sub_i16(
    q: &AddSub16,
    plan: &BroadcastPlan,
    input1: &[i16],
    input2: &[i16],
    output: &mut [i16],
) -> Result<(), QuantError> {
    let (l1, l2, lo) = plan.lens();
    check_len("input1", l1, input1.len())?;
    check_len("input2", l2, input2.len())?;
    check_len("output", lo, output.len())?;
    if l1 == lo && l2 == lo {
        for ((o, &a), &b) in output[..lo].iter_mut().zip(input1).zip(input2) {
            *o = q.apply(a, b);
        }
    } else {
        plan.for_each(|i1, i2, o| output[o] = q.apply(input1[i1], input2[i2]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_tolerance() {
        assert_eq!(checked_log2(0.25), (-2, true));
        // 1/32767 is within 1e-3 of 2^-15 in log2.
        assert_eq!(checked_log2(1.0 / 32767.0), (-15, true));
        assert!(!checked_log2(0.3).1);
    }

    #[test]
    fn general_add_close_to_real_sum() {
        let (s1, s2, so) = (0.001_f32, 0.0025_f32, 0.004_f32);
        let q = AddSub16::new(
            QuantParams::new(s1, 0),
            QuantParams::new(s2, 0),
            QuantParams::new(so, 0),
            FusedActivation::None,
            false,
            false,
        )
        .unwrap();
        assert!(!q.is_pot());
        for (a, b) in [(1000_i16, -300_i16), (-32768, 32767), (7, 3), (12345, 2000)] {
            let real = (f64::from(a) * f64::from(s1) + f64::from(b) * f64::from(s2)) / 0.004;
            let got = f64::from(q.apply(a, b));
            assert!(
                (got - real.round()).abs() <= 1.0,
                "{a}+{b}: {got} vs {real}"
            );
        }
        let s = AddSub16::new(
            QuantParams::new(s1, 0),
            QuantParams::new(s2, 0),
            QuantParams::new(so, 0),
            FusedActivation::Relu,
            false,
            true,
        )
        .unwrap();
        // 1000·0.001 − 100·0.0025 = 0.75 → 187.5; negative results clamp to 0.
        assert!((i32::from(s.apply(1000, 100)) - 188).abs() <= 1);
        assert_eq!(s.apply(100, 1000), 0);
    }

    #[test]
    fn pot_path_hand_derived() {
        // Input 1 at 2^-14, input 2 and output at 2^-13: input 1 is halved (rounding
        // half away from zero) and the sum saturates at int16.
        let q = AddSub16::new(
            QuantParams::new(1.0 / 16384.0, 0),
            QuantParams::new(1.0 / 8192.0, 0),
            QuantParams::new(1.0 / 8192.0, 0),
            FusedActivation::None,
            true,
            false,
        )
        .unwrap();
        assert!(q.is_pot());
        assert_eq!(q.apply(3, 10), 12);
        assert_eq!(q.apply(-3, 10), 8);
        assert_eq!(q.apply(32000, 20000), 32767);
        // Zero points must be 0 for ADD.
        assert!(AddSub16::new(
            QuantParams::new(0.5, 1),
            QuantParams::new(0.5, 0),
            QuantParams::new(0.5, 0),
            FusedActivation::None,
            false,
            false
        )
        .is_err());
    }
}
