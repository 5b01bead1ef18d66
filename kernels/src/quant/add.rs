//! Quantized ADD (int8, uint8), bit-exact with `reference_integer_ops::Add` /
//! `reference_ops::Add` and their `BroadcastAdd6DSlow` variants.
//!
//! Both inputs are brought to a common scale `2·max(s1, s2)` with 20 bits of headroom:
//! `a = MBQM<1((x1 − z1)·2^20, m1)`, `b = MBQM<1((x2 − z2)·2^20, m2)`,
//! `out = clamp(MBQM<1(a + b, m_out) + z_out)`, where MBQM<1 is
//! `MultiplyByQuantizedMultiplierSmallerThanOneExp` (double rounding).

use super::broadcast::BroadcastPlan;
use super::error::{check_len, QuantError};
use super::fixedpoint::{
    multiply_by_quantized_multiplier_smaller_than_one_exp as mbqm_lt1,
    quantize_multiplier_smaller_than_one_exp,
};
use super::params::{activation_range_for, clamp_i32, FusedActivation, QuantElem, QuantParams};

/// Prepare-time parameters of a quantized ADD (TFLite's `add.cc` `Prepare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddQuant {
    /// Headroom shift applied to both inputs (20 for 8-bit types).
    pub left_shift: i32,
    /// `−z1`.
    pub input1_offset: i32,
    /// Multiplier of input 1 (`s1 / (2·max(s1, s2))`).
    pub input1_multiplier: i32,
    /// Its shift (≤ 0).
    pub input1_shift: i32,
    /// `−z2`.
    pub input2_offset: i32,
    /// Multiplier of input 2.
    pub input2_multiplier: i32,
    /// Its shift (≤ 0).
    pub input2_shift: i32,
    /// Output multiplier (`2·max(s1, s2) / (2^20 · s_out)`).
    pub output_multiplier: i32,
    /// Its shift (≤ 0).
    pub output_shift: i32,
    /// `z_out`.
    pub output_offset: i32,
    /// Lower clamp.
    pub act_min: i32,
    /// Upper clamp.
    pub act_max: i32,
}

impl AddQuant {
    /// Builds the parameters for element type `T` (`i8` or `u8`). All real multipliers are
    /// computed in f64 from the f32 scales, and each must lie in `(0, 1)` (TFLite aborts
    /// otherwise; here it is an error).
    pub fn new<T: QuantElem>(
        input1: QuantParams,
        input2: QuantParams,
        output: QuantParams,
        activation: FusedActivation,
    ) -> Result<Self, QuantError> {
        let left_shift = 20;
        let twice_max = 2.0 * f64::from(input1.scale.max(input2.scale));
        let (m1, s1) =
            quantize_multiplier_smaller_than_one_exp(f64::from(input1.scale) / twice_max)?;
        let (m2, s2) =
            quantize_multiplier_smaller_than_one_exp(f64::from(input2.scale) / twice_max)?;
        let (mo, so) = quantize_multiplier_smaller_than_one_exp(
            twice_max / (f64::from(1_i32 << left_shift) * f64::from(output.scale)),
        )?;
        let (act_min, act_max) = activation_range_for::<T>(activation, output)?;
        Ok(Self {
            left_shift,
            input1_offset: input1.zero_point_i32()?.wrapping_neg(),
            input1_multiplier: m1,
            input1_shift: s1,
            input2_offset: input2.zero_point_i32()?.wrapping_neg(),
            input2_multiplier: m2,
            input2_shift: s2,
            output_multiplier: mo,
            output_shift: so,
            output_offset: output.zero_point_i32()?,
            act_min,
            act_max,
        })
    }

    /// The quantized sum of one pair of elements.
    #[inline]
    pub fn apply(&self, x1: i32, x2: i32) -> i32 {
        let shift = 1_i32.wrapping_shl(self.left_shift as u32);
        let a = mbqm_lt1(
            self.input1_offset.wrapping_add(x1).wrapping_mul(shift),
            self.input1_multiplier,
            self.input1_shift,
        );
        let b = mbqm_lt1(
            self.input2_offset.wrapping_add(x2).wrapping_mul(shift),
            self.input2_multiplier,
            self.input2_shift,
        );
        let raw = mbqm_lt1(a.wrapping_add(b), self.output_multiplier, self.output_shift)
            .wrapping_add(self.output_offset);
        clamp_i32(raw, self.act_min, self.act_max)
    }
}

/// Quantized ADD with broadcasting; `plan` from the two input shapes.
pub fn add<T: QuantElem>(
    q: &AddQuant,
    plan: &BroadcastPlan,
    input1: &[T],
    input2: &[T],
    output: &mut [T],
) -> Result<(), QuantError> {
    let (l1, l2, lo) = plan.lens();
    check_len("input1", l1, input1.len())?;
    check_len("input2", l2, input2.len())?;
    check_len("output", lo, output.len())?;
    if l1 == lo && l2 == lo {
        for ((o, &a), &b) in output[..lo].iter_mut().zip(input1).zip(input2) {
            *o = T::from_i32(q.apply(a.to_i32(), b.to_i32()));
        }
    } else {
        plan.for_each(|i1, i2, o| {
            output[o] = T::from_i32(q.apply(input1[i1].to_i32(), input2[i2].to_i32()));
        });
    }
    Ok(())
}

/// Elements of a broadcast run the AVX2 ADD takes at a time (a repeated input is
/// expanded to this many copies on the stack).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const RUN_BLOCK: usize = 256;

/// Below this many elements an ADD stays on one thread (the vector path, x86-64 only).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const MIN_PARALLEL_ADD: usize = 1 << 16;

/// int8 ADD in kernel tier `isa`: same-shape inputs run vectorised in the AVX2 tier
/// (bit-identical to [`add`]), split over up to `threads` threads when large; everything
/// else runs [`add`].
pub fn add_i8(
    q: &AddQuant,
    plan: &BroadcastPlan,
    input1: &[i8],
    input2: &[i8],
    output: &mut [i8],
    isa: crate::isa::Isa,
    threads: usize,
) -> Result<(), QuantError> {
    let (l1, l2, lo) = plan.lens();
    #[cfg(target_arch = "x86_64")]
    if isa.or_generic() == crate::isa::Isa::Avx2
        && !(l1 == lo && l2 == lo)
        && crate::x86::qadd::suits(q)
    {
        check_len("input1", l1, input1.len())?;
        check_len("input2", l2, input2.len())?;
        check_len("output", lo, output.len())?;
        // Broadcasting: run by run (a tensor plus a scalar is one run). An input repeated
        // along a run (step 0) is copied into a block of equal values, so that every run
        // goes through the same-shape kernel.
        plan.for_each_run(|i1, s1, i2, s2, o, n| {
            let out = &mut output[o..o + n];
            let block = |x: &[i8], step: usize| -> Option<[i8; RUN_BLOCK]> {
                (step == 0).then(|| [x[0]; RUN_BLOCK])
            };
            let (r1, r2) = (block(&input1[i1..], s1), block(&input2[i2..], s2));
            for (c, out) in out.chunks_mut(RUN_BLOCK).enumerate() {
                let at = c * RUN_BLOCK;
                let len = out.len();
                let a = match &r1 {
                    Some(r) => &r[..len],
                    None => &input1[i1 + at..][..len],
                };
                let b = match &r2 {
                    Some(r) => &r[..len],
                    None => &input2[i2 + at..][..len],
                };
                // SAFETY: AVX2 and `suits` confirmed just above; `a` and `b` are as long
                // as `out`.
                unsafe { crate::x86::qadd::add_i8(q, a, b, out) };
            }
        });
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if isa.or_generic() == crate::isa::Isa::Avx2
        && l1 == lo
        && l2 == lo
        && crate::x86::qadd::suits(q)
    {
        check_len("input1", l1, input1.len())?;
        check_len("input2", l2, input2.len())?;
        check_len("output", lo, output.len())?;
        let threads = if lo < MIN_PARALLEL_ADD { 1 } else { threads };
        // Parts of whole 4096-element runs (the last may be shorter); every element is
        // computed the same way whatever the split.
        crate::parallel::for_each_part(&mut output[..lo], 1, 4096, threads, |at, part| {
            let (a, b) = (&input1[at..at + part.len()], &input2[at..at + part.len()]);
            // SAFETY: AVX2 and `suits` confirmed just above; `a` and `b` are as long as
            // `part`.
            unsafe { crate::x86::qadd::add_i8(q, a, b, part) };
        });
        return Ok(());
    }
    let _ = (isa, l1, l2, lo, threads);
    add(q, plan, input1, input2, output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::conv::tests::Lcg;

    /// The ADD formula evaluated from its definition with exact wide arithmetic:
    /// each MBQM<1 is a round-half-up high multiply followed by a round-half-away shift.
    fn exact_lt1(x: i64, m: i32, s: i32) -> i64 {
        let high = (x * i64::from(m) + (1 << 30)).div_euclid(1 << 31);
        let d = 1_i64 << (-s);
        let q = high.abs() / d;
        let r = high.abs() % d;
        let q = if 2 * r >= d { q + 1 } else { q };
        if high < 0 {
            -q
        } else {
            q
        }
    }

    fn naive(q: &AddQuant, x1: i32, x2: i32) -> i32 {
        let a = exact_lt1(
            ((x1 + q.input1_offset) as i64) << 20,
            q.input1_multiplier,
            q.input1_shift,
        );
        let b = exact_lt1(
            ((x2 + q.input2_offset) as i64) << 20,
            q.input2_multiplier,
            q.input2_shift,
        );
        let o = exact_lt1(a + b, q.output_multiplier, q.output_shift) + q.output_offset as i64;
        o.clamp(q.act_min as i64, q.act_max as i64) as i32
    }

    #[test]
    fn int8_all_pairs_match_naive() {
        let q = AddQuant::new::<i8>(
            QuantParams::new(0.0371, -17),
            QuantParams::new(0.0213, 44),
            QuantParams::new(0.0452, 3),
            FusedActivation::Relu,
        )
        .unwrap();
        for x1 in -128..=127 {
            for x2 in -128..=127 {
                assert_eq!(q.apply(x1, x2), naive(&q, x1, x2), "{x1} {x2}");
            }
        }
    }

    #[test]
    fn broadcast_add_uint8_matches_elementwise() {
        let mut r = Lcg(5);
        let q = AddQuant::new::<u8>(
            QuantParams::new(0.1, 128),
            QuantParams::new(0.25, 100),
            QuantParams::new(0.3, 120),
            FusedActivation::None,
        )
        .unwrap();
        let (s1, s2) = ([2, 3, 4], [3, 1]);
        let plan = BroadcastPlan::new(&s1, &s2).unwrap();
        let a = r.vec_u8(24);
        let b = r.vec_u8(3);
        let mut out = vec![0_u8; 24];
        add(&q, &plan, &a, &b, &mut out).unwrap();
        for i in 0..24 {
            let j = (i / 4) % 3;
            assert_eq!(
                i32::from(out[i]),
                naive(&q, a[i].into(), b[j].into()),
                "{i}"
            );
        }
    }

    #[test]
    fn multipliers_and_errors() {
        let q = AddQuant::new::<i8>(
            QuantParams::new(0.5, 0),
            QuantParams::new(0.25, 0),
            QuantParams::new(1.0, 0),
            FusedActivation::None,
        )
        .unwrap();
        // s1/(2·0.5) = 0.5 → (2^30, 0); s2 → 0.25 → (2^30, −1); 1/(2^20·1) → (2^30, −19).
        assert_eq!((q.input1_multiplier, q.input1_shift), (1 << 30, 0));
        assert_eq!((q.input2_multiplier, q.input2_shift), (1 << 30, -1));
        assert_eq!((q.output_multiplier, q.output_shift), (1 << 30, -19));
        // An output scale so small the output multiplier reaches 1 is an error.
        assert!(AddQuant::new::<i8>(
            QuantParams::new(0.5, 0),
            QuantParams::new(0.5, 0),
            QuantParams::new(1e-7, 0),
            FusedActivation::None
        )
        .is_err());
        // A zero input scale makes a zero multiplier, which TFLite's CHECK rejects.
        assert!(AddQuant::new::<i8>(
            QuantParams::new(0.0, 0),
            QuantParams::new(0.5, 0),
            QuantParams::new(0.5, 0),
            FusedActivation::None
        )
        .is_err());
    }

    /// Every pair of int8 values through each tier's same-shape path, for scales whose
    /// ratios give rescale exponents from 1 to over 20, zero points at both ends of the
    /// range, with and without an activation.
    #[test]
    fn every_tier_matches_scalar_add_on_all_pairs() {
        let a: Vec<i8> = (0..1 << 16).map(|i| (i >> 8) as u8 as i8).collect();
        let b: Vec<i8> = (0..1 << 16).map(|i| i as u8 as i8).collect();
        let plan = BroadcastPlan::new(&[1 << 16], &[1 << 16]).unwrap();
        for (case, (s1, z1, s2, z2, so, zo)) in [
            (0.0371, -17, 0.0213, 44, 0.0452, 3),
            (0.5, -128, 0.5, 127, 0.25, -128),
            (1e-6, 127, 0.3, -128, 0.02, 0),
            (0.8, 0, 3e-7, 5, 1.7, 127),
            (0.004, -1, 0.0039, 1, 0.0001, -100),
        ]
        .into_iter()
        .enumerate()
        {
            let act = [FusedActivation::None, FusedActivation::Relu][case % 2];
            let q = AddQuant::new::<i8>(
                QuantParams::new(s1, z1),
                QuantParams::new(s2, z2),
                QuantParams::new(so, zo),
                act,
            )
            .unwrap();
            let mut want = vec![0_i8; 1 << 16];
            add(&q, &plan, &a, &b, &mut want).unwrap();
            for isa in crate::isa::Isa::available() {
                let mut out = vec![0_i8; 1 << 16];
                add_i8(&q, &plan, &a, &b, &mut out, isa, 1).unwrap();
                assert_eq!(out, want, "case {case} {isa} {q:?}");
            }
        }
    }

    /// Broadcast shapes (a scalar, a row, an inner and an outer broadcast) through every
    /// tier equal the element-wise loop.
    #[test]
    fn every_tier_matches_scalar_add_when_broadcasting() {
        let mut r = Lcg(33);
        let cases: &[(&[usize], &[usize])] = &[
            (&[1, 20, 20, 3], &[]),
            (&[], &[1, 7, 9, 40]),
            (&[2, 5, 7, 3], &[3]),
            (&[2, 5, 7, 300], &[2, 5, 7, 1]),
            (&[1, 1, 1, 1], &[1, 1, 1, 1]),
            (&[3, 1, 600], &[3, 4, 600]),
            (&[1], &[1000]),
        ];
        for (case, &(s1, s2)) in cases.iter().enumerate() {
            let p = |r: &mut Lcg| QuantParams::new(0.01 + r.unit(), r.range(-128, 127));
            let act = [FusedActivation::None, FusedActivation::Relu][case % 2];
            let q = AddQuant::new::<i8>(p(&mut r), p(&mut r), p(&mut r), act).unwrap();
            let plan = BroadcastPlan::new(s1, s2).unwrap();
            let (l1, l2, lo) = plan.lens();
            let a = r.vec_i8(l1, -128, 127);
            let b = r.vec_i8(l2, -128, 127);
            let mut want = vec![0_i8; lo];
            plan.for_each(|i1, i2, o| {
                want[o] = q.apply(a[i1].into(), b[i2].into()) as i8;
            });
            for isa in crate::isa::Isa::available() {
                let mut out = vec![0_i8; lo];
                add_i8(&q, &plan, &a, &b, &mut out, isa, 2).unwrap();
                assert_eq!(out, want, "case {case} {isa}");
            }
        }
    }

    #[test]
    fn every_tier_matches_scalar_add() {
        let mut r = Lcg(21);
        for case in 0..200 {
            // Some large enough to split over threads.
            let n = if case % 25 == 0 {
                MIN_PARALLEL_ADD + r.range(0, 9000) as usize
            } else {
                r.range(0, 100) as usize
            };
            let p = |r: &mut Lcg| QuantParams::new(0.01 + r.unit(), r.range(-128, 127));
            let act = [FusedActivation::None, FusedActivation::Relu][case % 2];
            let q = AddQuant::new::<i8>(p(&mut r), p(&mut r), p(&mut r), act).unwrap();
            let plan = BroadcastPlan::new(&[n], &[n]).unwrap();
            let a = r.vec_i8(n, -128, 127);
            let b = r.vec_i8(n, -128, 127);
            let mut want = vec![0_i8; n];
            add(&q, &plan, &a, &b, &mut want).unwrap();
            for isa in crate::isa::Isa::available() {
                for threads in [1, 2, 3] {
                    let mut out = vec![0_i8; n];
                    add_i8(&q, &plan, &a, &b, &mut out, isa, threads).unwrap();
                    assert_eq!(out, want, "case {case} {isa} threads {threads}");
                }
            }
        }
    }
}
