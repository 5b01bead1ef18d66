//! Quantized MUL (int8, uint8), bit-exact with `reference_integer_ops::Mul` /
//! `reference_ops::Mul` and `BroadcastMul6DSlow`:
//! `out = clamp(MBQM((x1 − z1)·(x2 − z2), m, shift) + z_out)`.
//!
//! The real multiplier `s1·s2/s_out` is computed entirely in **f32** (as `mul.cc` does)
//! before `QuantizeMultiplier`.

use super::broadcast::BroadcastPlan;
use super::error::{check_len, QuantError};
use super::fixedpoint::{multiply_by_quantized_multiplier, quantize_multiplier};
use super::params::{activation_range_for, clamp_i32, FusedActivation, QuantElem, QuantParams};

/// Prepare-time parameters of a quantized MUL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulQuant {
    /// `−z1`.
    pub input1_offset: i32,
    /// `−z2`.
    pub input2_offset: i32,
    /// `z_out`.
    pub output_offset: i32,
    /// Quantized `s1·s2/s_out`.
    pub output_multiplier: i32,
    /// Its shift.
    pub output_shift: i32,
    /// Lower clamp.
    pub act_min: i32,
    /// Upper clamp.
    pub act_max: i32,
}

impl MulQuant {
    /// Builds the parameters for element type `T` (`i8` or `u8`).
    pub fn new<T: QuantElem>(
        input1: QuantParams,
        input2: QuantParams,
        output: QuantParams,
        activation: FusedActivation,
    ) -> Result<Self, QuantError> {
        let real = f64::from(input1.scale * input2.scale / output.scale);
        let (m, s) = quantize_multiplier(real)?;
        let (act_min, act_max) = activation_range_for::<T>(activation, output)?;
        Ok(Self {
            input1_offset: input1.zero_point_i32()?.wrapping_neg(),
            input2_offset: input2.zero_point_i32()?.wrapping_neg(),
            output_offset: output.zero_point_i32()?,
            output_multiplier: m,
            output_shift: s,
            act_min,
            act_max,
        })
    }

    /// The quantized product of one pair of elements.
    #[inline]
    pub fn apply(&self, x1: i32, x2: i32) -> i32 {
        let p = self
            .input1_offset
            .wrapping_add(x1)
            .wrapping_mul(self.input2_offset.wrapping_add(x2));
        let v = multiply_by_quantized_multiplier(p, self.output_multiplier, self.output_shift)
            .wrapping_add(self.output_offset);
        clamp_i32(v, self.act_min, self.act_max)
    }
}

/// Quantized MUL with broadcasting; `plan` from the two input shapes.
pub fn mul<T: QuantElem>(
    q: &MulQuant,
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

/// Below this many elements a MUL stays on one thread (the vector path, x86-64 only).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const MIN_PARALLEL_MUL: usize = 1 << 16;

/// int8 MUL in kernel tier `isa`: vectorised in the AVX2 tier (bit-identical to [`mul`]),
/// run by run of the innermost dimension when an input broadcasts (a squeeze-and-excite
/// scale, a scalar), and split over up to `threads` threads when the inputs have the same
/// shape and are large; everything else runs [`mul`].
pub fn mul_i8(
    q: &MulQuant,
    plan: &BroadcastPlan,
    input1: &[i8],
    input2: &[i8],
    output: &mut [i8],
    isa: crate::isa::Isa,
    threads: usize,
) -> Result<(), QuantError> {
    let (l1, l2, lo) = plan.lens();
    #[cfg(target_arch = "x86_64")]
    if isa.or_generic() == crate::isa::Isa::Avx2 && crate::x86::qmul::suits(q) {
        use crate::x86::qmul;
        check_len("input1", l1, input1.len())?;
        check_len("input2", l2, input2.len())?;
        check_len("output", lo, output.len())?;
        if l1 == lo && l2 == lo {
            let threads = if lo < MIN_PARALLEL_MUL { 1 } else { threads };
            // Every element is computed the same way whatever the split.
            crate::parallel::for_each_part(&mut output[..lo], 1, 4096, threads, |at, part| {
                let (a, b) = (&input1[at..at + part.len()], &input2[at..at + part.len()]);
                // SAFETY: AVX2 and `suits` confirmed just above; `a` and `b` are as long
                // as `part`.
                unsafe { qmul::mul_i8(q, a, 1, b, 1, part) };
            });
        } else if let Some(row) = plan.repeated_row() {
            // One input is a row of `c` values repeated along every outer dimension (a
            // squeeze-and-excite scale): the row copied side by side up to 256 values, so
            // that short rows still fill whole vectors.
            let c = row;
            let mut pattern = [0_i8; 256];
            let reps = (256 / c).max(1);
            let (vec_in, full, vec_first) = if l1 == c {
                (input1, input2, true)
            } else {
                (input2, input1, false)
            };
            for chunk in pattern[..reps * c].chunks_exact_mut(c) {
                chunk.copy_from_slice(&vec_in[..c]);
            }
            let pat = &pattern[..reps * c];
            for (x, y) in full[..lo]
                .chunks(reps * c)
                .zip(output[..lo].chunks_mut(reps * c))
            {
                let p = &pat[..x.len()];
                let (a, b) = if vec_first { (p, x) } else { (x, p) };
                // SAFETY: AVX2 and `suits` confirmed just above; `a` and `b` are as long
                // as `y`.
                unsafe { qmul::mul_i8(q, a, 1, b, 1, y) };
            }
        } else {
            plan.for_each_run(|i1, s1, i2, s2, o, n| {
                // SAFETY: AVX2 and `suits` confirmed just above; the plan's runs lie
                // inside inputs of the checked lengths (`n` elements with step 1, one
                // with step 0) and inside the output.
                unsafe {
                    qmul::mul_i8(
                        q,
                        &input1[i1..],
                        s1,
                        &input2[i2..],
                        s2,
                        &mut output[o..o + n],
                    )
                };
            });
        }
        return Ok(());
    }
    let _ = (isa, l1, l2, lo, threads);
    mul(q, plan, input1, input2, output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MBQM from its definition (round-half-up high multiply, round-half-away shift),
    /// in i128.
    fn exact_mbqm(x: i64, m: i32, s: i32) -> i64 {
        let x = x << s.max(0);
        let high = (i128::from(x) * i128::from(m) + (1 << 30)).div_euclid(1 << 31);
        let d = 1_i128 << (-s).max(0);
        let q = high.abs() / d;
        let r = high.abs() % d;
        let q = if 2 * r >= d { q + 1 } else { q };
        (if high < 0 { -q } else { q }) as i64
    }

    #[test]
    fn all_pairs_match_naive() {
        for (s1, s2, so) in [(0.05_f32, 0.07_f32, 0.11_f32), (0.5, 0.9, 0.01)] {
            let q = MulQuant::new::<i8>(
                QuantParams::new(s1, 5),
                QuantParams::new(s2, -9),
                QuantParams::new(so, -3),
                FusedActivation::Relu6,
            )
            .unwrap();
            for x1 in -128..=127 {
                for x2 in -128..=127 {
                    let p = i64::from((x1 - 5) * (x2 + 9));
                    let want = (exact_mbqm(p, q.output_multiplier, q.output_shift) - 3)
                        .clamp(i64::from(q.act_min), i64::from(q.act_max));
                    assert_eq!(i64::from(q.apply(x1, x2)), want, "{x1} {x2}");
                }
            }
        }
    }

    /// The vector path against the scalar one on random tensors, same-shape and
    /// broadcasting, with and without a left shift, in every tier the CPU has.
    #[test]
    fn every_tier_matches_scalar_kernel() {
        let mut r = crate::quant::conv::tests::Lcg(9);
        let shapes: &[(&[usize], &[usize])] = &[
            (&[1, 5, 7, 24], &[1, 5, 7, 24]),
            (&[3, 1000], &[3, 1000]),
            (&[1, 300, 250], &[1, 300, 250]),
            (&[1, 4, 4, 40], &[1, 1, 1, 40]),
            (&[1, 1, 1, 21], &[2, 3, 3, 21]),
            (&[2, 9, 17], &[]),
            (&[1], &[70, 5]),
            (&[6, 1, 9], &[6, 1]),
            (&[1, 8, 8, 8], &[8]),
            (&[2, 2, 300], &[300]),
            (&[3], &[7, 3]),
        ];
        let scales = [
            (0.05_f32, 0.07_f32, 0.11_f32),
            (0.5, 0.9, 0.01),
            (0.01, 0.02, 0.9),
        ];
        for (case, &(s1, s2)) in shapes.iter().enumerate() {
            let (sa, sb, so) = scales[case % scales.len()];
            let act = [FusedActivation::None, FusedActivation::Relu6][case % 2];
            let q = MulQuant::new::<i8>(
                QuantParams::new(sa, r.range(-128, 127)),
                QuantParams::new(sb, r.range(-128, 127)),
                QuantParams::new(so, r.range(-128, 127)),
                act,
            )
            .unwrap();
            let plan = BroadcastPlan::new(s1, s2).unwrap();
            let (l1, l2, lo) = plan.lens();
            let a = r.vec_i8(l1, -128, 127);
            let b = r.vec_i8(l2, -128, 127);
            let mut want = vec![0_i8; lo];
            mul(&q, &plan, &a, &b, &mut want).unwrap();
            for isa in crate::isa::Isa::available() {
                for threads in [1, 2] {
                    let mut got = vec![0_i8; lo];
                    mul_i8(&q, &plan, &a, &b, &mut got, isa, threads).unwrap();
                    assert_eq!(got, want, "{s1:?} x {s2:?} {isa:?} x{threads}");
                }
            }
        }
    }

    #[test]
    fn multiplier_is_computed_in_f32() {
        // Pick scales whose f32 and f64 products differ after quantization.
        let (s1, s2, so) = (0.1_f32, 0.3_f32, 0.7_f32);
        let q = MulQuant::new::<u8>(
            QuantParams::new(s1, 0),
            QuantParams::new(s2, 0),
            QuantParams::new(so, 0),
            FusedActivation::None,
        )
        .unwrap();
        let f32_way = quantize_multiplier(f64::from(s1 * s2 / so)).unwrap();
        let f64_way = quantize_multiplier(f64::from(s1) * f64::from(s2) / f64::from(so)).unwrap();
        assert_ne!(f32_way, f64_way, "the scales must tell the formulas apart");
        assert_eq!((q.output_multiplier, q.output_shift), f32_way);
    }

    #[test]
    fn broadcast_scalar() {
        let q = MulQuant::new::<i8>(
            QuantParams::new(0.1, 0),
            QuantParams::new(0.1, 0),
            QuantParams::new(0.01, 0),
            FusedActivation::None,
        )
        .unwrap();
        let plan = BroadcastPlan::new(&[3], &[]).unwrap();
        let mut out = [0_i8; 3];
        mul(&q, &plan, &[1_i8, -2, 50], &[3_i8], &mut out).unwrap();
        // 0.1·0.1/0.01 = 1 (within f32 rounding): products 3, −6, 150 → clamped 127.
        assert_eq!(out, [3, -6, 127]);
    }
}
