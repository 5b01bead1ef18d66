//! Quantized MEAN (int8, uint8), bit-exact with the `BUILTIN_REF` kernel of
//! ai-edge-litert 2.3.0: `reference_ops::QuantizedMeanOrSum` for every axis set (the
//! special 4-D `{1, 2}` path only exists in the optimized kernel; checked against the
//! reference interpreter for 4-D `{1,2}`, single-axis and 3-D cases).
//!
//! With `n` reduced elements and `(m, s) = QuantizeMultiplier(in_scale / out_scale)`:
//! `k = min(floor(log2 n), 32, 31 + s)`, `m' = (m·2^k) / n` (truncating, i64),
//! `out = clamp(MBQM(Σq − z_in·n, m', s − k) + z_out)` to the element range (no fused
//! activation). The sum wraps in `i32`.

use super::error::{check_len, QuantError};
use super::fixedpoint::{multiply_by_quantized_multiplier, quantize_multiplier};
use super::params::{clamp_i32, QuantElem, QuantParams};

/// Highest input rank handled.
pub const MAX_REDUCE_RANK: usize = 8;
/// Channels summed together when the innermost axis is kept.
const SUM_BLOCK: usize = 256;

/// Prepare-time parameters of a quantized MEAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeanQuant {
    /// `z_in`.
    pub input_zero_point: i32,
    /// `z_out`.
    pub output_zero_point: i32,
    /// Multiplier already divided by the reduced count.
    pub multiplier: i32,
    /// Shift matching `multiplier`.
    pub shift: i32,
    /// Number of reduced elements (≥ 1; 0 means an empty reduction).
    pub count: i64,
}

impl MeanQuant {
    /// `count` is the number of input elements averaged into each output
    /// ([`ReducePlan::count`]).
    pub fn new(input: QuantParams, output: QuantParams, count: usize) -> Result<Self, QuantError> {
        let (m, s) = quantize_multiplier(f64::from(input.scale) / f64::from(output.scale))?;
        let count = i64::try_from(count).map_err(|_| QuantError::BadGeometry("count overflow"))?;
        let (multiplier, shift) = if count > 0 {
            let k = (63 - count.leading_zeros() as i32).min(32).min(31 + s);
            // k ≥ 0 because QuantizeMultiplier never returns a shift below −31.
            let k = k.max(0);
            ((((i64::from(m)) << k) / count) as i32, s - k)
        } else {
            (m, s)
        };
        Ok(Self {
            input_zero_point: input.zero_point_i32()?,
            output_zero_point: output.zero_point_i32()?,
            multiplier,
            shift,
            count,
        })
    }
}

/// Index bookkeeping of a reduction over some axes of a row-major tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReducePlan {
    kept_dims: Vec<usize>,
    kept_strides: Vec<usize>,
    reduced_dims: Vec<usize>,
    reduced_strides: Vec<usize>,
    input_len: usize,
    output_len: usize,
    count: usize,
}

impl ReducePlan {
    /// `axes` may be negative (counted from the end) and may repeat, as in TFLite.
    pub fn new(input_shape: &[usize], axes: &[i64]) -> Result<Self, QuantError> {
        let rank = input_shape.len();
        if rank > MAX_REDUCE_RANK {
            return Err(QuantError::BadGeometry("reduce rank too high"));
        }
        let mut reduced = [false; MAX_REDUCE_RANK];
        for &a in axes {
            let a = if a < 0 { a + rank as i64 } else { a };
            if a < 0 || a >= rank as i64 {
                return Err(QuantError::BadGeometry("reduction axis out of range"));
            }
            reduced[a as usize] = true;
        }
        let mut strides = vec![1_usize; rank];
        let mut len = 1_usize;
        for i in (0..rank).rev() {
            strides[i] = len;
            len = len
                .checked_mul(input_shape[i])
                .ok_or(QuantError::BadGeometry("reduce size overflow"))?;
        }
        let mut plan = Self {
            kept_dims: vec![],
            kept_strides: vec![],
            reduced_dims: vec![],
            reduced_strides: vec![],
            input_len: len,
            output_len: 1,
            count: 1,
        };
        // A zero dimension elsewhere can keep the total product small while these partial
        // products overflow, so they are checked too.
        let overflow = QuantError::BadGeometry("reduce size overflow");
        for i in 0..rank {
            if reduced[i] {
                plan.reduced_dims.push(input_shape[i]);
                plan.reduced_strides.push(strides[i]);
                plan.count = plan
                    .count
                    .checked_mul(input_shape[i])
                    .ok_or(overflow.clone())?;
            } else {
                plan.kept_dims.push(input_shape[i]);
                plan.kept_strides.push(strides[i]);
                plan.output_len = plan
                    .output_len
                    .checked_mul(input_shape[i])
                    .ok_or(overflow.clone())?;
            }
        }
        Ok(plan)
    }

    /// Elements averaged into each output.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Output elements.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// Calls `f(base)` for the input offset of every combination of `dims`.
    fn walk(dims: &[usize], strides: &[usize], mut f: impl FnMut(usize)) {
        if dims.contains(&0) {
            return;
        }
        let mut idx = [0_usize; MAX_REDUCE_RANK];
        let mut base = 0;
        loop {
            f(base);
            let mut d = dims.len();
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                base += strides[d];
                if idx[d] < dims[d] {
                    break;
                }
                base -= strides[d] * idx[d];
                idx[d] = 0;
            }
        }
    }
}

/// Quantized MEAN over the axes of `plan`. An empty input gives all-zero outputs, as
/// TFLite's (integer "NaN") initialization does.
pub fn mean<T: QuantElem>(
    q: &MeanQuant,
    plan: &ReducePlan,
    input: &[T],
    output: &mut [T],
) -> Result<(), QuantError> {
    check_len("input", plan.input_len, input.len())?;
    check_len("output", plan.output_len, output.len())?;
    if plan.input_len == 0 || q.count == 0 {
        output[..plan.output_len].fill(T::from_i32(0));
        return Ok(());
    }
    let zp_times_n = i64::from(q.input_zero_point).wrapping_mul(q.count);
    let finish = |sum: i32| {
        let shifted = i64::from(sum).wrapping_sub(zp_times_n) as i32;
        let v = multiply_by_quantized_multiplier(shifted, q.multiplier, q.shift)
            .wrapping_add(q.output_zero_point);
        T::from_i32(clamp_i32(v, T::MIN, T::MAX))
    };
    if let (Some((&1, outer_strides)), Some((&c, outer_dims))) =
        (plan.kept_strides.split_last(), plan.kept_dims.split_last())
    {
        // The innermost axis is kept (channels, in a spatial mean): each reduced position
        // is a contiguous run of it, added lane by lane into a block of sums. Wrapping i32
        // additions give the same sums in any order. (`c > 0`: the input is not empty.)
        let mut outs = output[..plan.output_len].chunks_exact_mut(c);
        ReducePlan::walk(outer_dims, outer_strides, |base| {
            let Some(out) = outs.next() else { return };
            for (c0, out) in (0..c).step_by(SUM_BLOCK).zip(out.chunks_mut(SUM_BLOCK)) {
                let sums = &mut [0_i32; SUM_BLOCK][..out.len()];
                ReducePlan::walk(&plan.reduced_dims, &plan.reduced_strides, |off| {
                    let run = &input[base + off + c0..][..sums.len()];
                    for (s, x) in sums.iter_mut().zip(run) {
                        *s = s.wrapping_add(x.to_i32());
                    }
                });
                for (o, &sum) in out.iter_mut().zip(sums.iter()) {
                    *o = finish(sum);
                }
            }
        });
        return Ok(());
    }
    let mut o = 0;
    ReducePlan::walk(&plan.kept_dims, &plan.kept_strides, |base| {
        let mut sum = 0_i32;
        ReducePlan::walk(&plan.reduced_dims, &plan.reduced_strides, |off| {
            sum = sum.wrapping_add(input[base + off].to_i32());
        });
        output[o] = finish(sum);
        o += 1;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::conv::tests::Lcg;

    /// Sum over the reduced axes by brute force on coordinates.
    fn naive_sums(shape: &[usize], axes: &[usize], x: &[i32]) -> Vec<i64> {
        let out_shape: Vec<usize> = (0..shape.len())
            .map(|i| if axes.contains(&i) { 1 } else { shape[i] })
            .collect();
        let out_len: usize = out_shape.iter().product();
        let mut sums = vec![0_i64; out_len];
        for (flat, &v) in x.iter().enumerate() {
            let mut rem = flat;
            let mut coords = vec![0; shape.len()];
            for i in (0..shape.len()).rev() {
                coords[i] = rem % shape[i];
                rem /= shape[i];
            }
            let mut o = 0;
            for i in 0..shape.len() {
                o = o * out_shape[i] + if axes.contains(&i) { 0 } else { coords[i] };
            }
            sums[o] += v as i64;
        }
        sums
    }

    #[test]
    fn matches_naive_formula() {
        let mut r = Lcg(31);
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 7, 9, 5], &[1, 2]),
            (&[3, 5, 6, 4], &[2]),
            (&[4, 11, 13], &[0, 2]),
            (&[2, 3, 4, 5], &[1, 2, 3]),
            (&[6], &[0]),
            (&[2, 1, 3], &[1]),
            // More channels than one block of sums in the kept-innermost-axis path.
            (&[2, 3, 2, 300], &[1, 2]),
        ];
        for (shape, axes) in cases {
            for uint in [false, true] {
                let (lo, hi) = if uint { (0, 255) } else { (-128, 127) };
                let ip = QuantParams::new(0.01 + 0.1 * r.unit(), r.range(lo, hi));
                let op = QuantParams::new(0.005 + 0.1 * r.unit(), r.range(lo, hi));
                let ax: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
                let plan = ReducePlan::new(shape, &ax).unwrap();
                let q = MeanQuant::new(ip, op, plan.count()).unwrap();
                let n: usize = shape.iter().product();
                let x: Vec<i32> = (0..n).map(|_| r.range(lo, hi) as i32).collect();
                let got: Vec<i32> = if uint {
                    let xs: Vec<u8> = x.iter().map(|&v| v as u8).collect();
                    let mut o = vec![0_u8; plan.output_len()];
                    mean(&q, &plan, &xs, &mut o).unwrap();
                    o.iter().map(|&v| v.into()).collect()
                } else {
                    let xs: Vec<i8> = x.iter().map(|&v| v as i8).collect();
                    let mut o = vec![0_i8; plan.output_len()];
                    mean(&q, &plan, &xs, &mut o).unwrap();
                    o.iter().map(|&v| v.into()).collect()
                };
                // The documented formula, evaluated independently with the
                // fixed-point primitive (itself tested against exact arithmetic).
                let (m, s) =
                    quantize_multiplier(f64::from(ip.scale) / f64::from(op.scale)).unwrap();
                let cnt = plan.count() as i64;
                let k = (cnt.ilog2() as i32).min(32).min(31 + s);
                let m2 = ((m as i64) << k) / cnt;
                let want: Vec<i32> = naive_sums(shape, axes, &x)
                    .iter()
                    .map(|&sum| {
                        let v = multiply_by_quantized_multiplier(
                            (sum - ip.zero_point * cnt) as i32,
                            m2 as i32,
                            s - k,
                        ) + op.zero_point as i32;
                        v.clamp(lo as i32, hi as i32)
                    })
                    .collect();
                assert_eq!(got, want, "{shape:?} {axes:?} uint={uint}");
            }
        }
    }

    /// Reference-interpreter outputs (ai-edge-litert 2.3.0, `BUILTIN_REF`), keep_dims MEAN
    /// over axes {1, 2} of a `[1, 2, 2, 1]` / `[1, 2, 3, 1]` int8 tensor. The second case
    /// was chosen so that the older 4-D kernel (MBQM then divide) and the older float
    /// formula both give −76; REF gives −77, the general integer formula.
    #[test]
    fn reference_interpreter_values() {
        let plan = ReducePlan::new(&[1, 2, 2, 1], &[1, 2]).unwrap();
        let q = MeanQuant::new(
            QuantParams::new(0.05, -3),
            QuantParams::new(0.011, 9),
            plan.count(),
        )
        .unwrap();
        let mut out = [0_i8; 1];
        mean(&q, &plan, &[-128_i8, 127, 5, 6], &mut out).unwrap();
        assert_eq!(out, [34]);

        let plan = ReducePlan::new(&[1, 2, 3, 1], &[1, 2]).unwrap();
        let q = MeanQuant::new(
            QuantParams::new(f32::from_bits(0x3d75_0bc3), 8),
            QuantParams::new(f32::from_bits(0x3d88_7a27), -68),
            plan.count(),
        )
        .unwrap();
        mean(&q, &plan, &[55_i8, 67, 35, -89, 18, -94], &mut out).unwrap();
        assert_eq!(out, [-77]);
    }

    #[test]
    fn bad_axes_and_empty_input() {
        assert!(ReducePlan::new(&[2, 3], &[2]).is_err());
        assert!(ReducePlan::new(&[2, 3], &[-3]).is_err());
        let p = ReducePlan::new(&[2, 3], &[-1, 1]).unwrap();
        assert_eq!((p.count(), p.output_len()), (3, 2));
        let p = ReducePlan::new(&[2, 0], &[1]).unwrap();
        let q = MeanQuant::new(
            QuantParams::new(1.0, 0),
            QuantParams::new(1.0, 0),
            p.count(),
        )
        .unwrap();
        let mut out = [9_i8; 2];
        mean(&q, &p, &[], &mut out).unwrap();
        assert_eq!(out, [0, 0]);
    }
}
