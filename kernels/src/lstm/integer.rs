//! Full-integer UNIDIRECTIONAL_SEQUENCE_LSTM ("8x8_16": int8 input, output and output
//! state, int16 cell state and gates), bit-exact with TFLite's `LstmStepInteger8x8_16`
//! without layer norm.
//!
//! Per step and batch row:
//! - each gate `g = act(sat16(M_x(b_x + W_x·x) + M_h(b_h + W_h·h) (+ M_c(p ⊙ c))))` in Q3.12,
//!   where the effective biases fold in the input and output-state zero points, `M_*`
//!   are the gates' requantizing multipliers, and `act` is gemmlowp's 16-bit logistic
//!   (Q0.15) or tanh (cell gate);
//! - `c = sat16(rdbp(f·c, 15) + rdbp(i·g, 30 + cell_scale))` (`i = 32767 − f` with CIFG),
//!   clipped when a clip is set;
//! - `hidden = clamp8(M_hid(o · tanh(c)) + hidden_zp)`;
//! - with projection `h = clamp8(M_p(b_p + P·hidden) + h_zp)` (clipped), else `h = hidden`.

use super::fixed16;
use super::LstmShape;
use crate::quant::fixedpoint::{multiply_by_quantized_multiplier, rounding_divide_by_pot};
use crate::quant::QuantError;

/// A requantizing multiplier `(m, shift)` from `QuantizeMultiplier`.
pub type Multiplier = (i32, i32);

/// An int8 matrix `[rows, cols]` with its effective bias (bias plus zero-point term).
#[derive(Clone, Debug)]
pub struct IntMatrix {
    pub weights: Vec<i8>,
    pub bias: Vec<i32>,
    pub scale: Multiplier,
}

impl IntMatrix {
    /// Effective bias `bias + zero_point · Σ_row w` (`zero_point` already negated).
    pub fn new(
        weights: Vec<i8>,
        rows: usize,
        bias: Option<&[i32]>,
        zero_point: i32,
        scale: Multiplier,
    ) -> IntMatrix {
        let cols = weights.len().checked_div(rows).unwrap_or(0);
        let bias = (0..rows)
            .map(|r| {
                let sum: i32 = weights[r * cols..(r + 1) * cols]
                    .iter()
                    .map(|&w| i32::from(w))
                    .sum();
                bias.map_or(0, |b| b[r])
                    .wrapping_add(sum.wrapping_mul(zero_point))
            })
            .collect();
        IntMatrix {
            weights,
            bias,
            scale,
        }
    }

    /// `out[b, r] = clamp(M(bias[r] + Σ w·v) + zp + out[b, r])` to `lo..=hi`.
    fn accumulate(
        &self,
        v: &[i8],
        cols: usize,
        rows: usize,
        zp: i32,
        (lo, hi): (i32, i32),
        out: &mut [i32],
    ) {
        for (vb, ob) in v.chunks_exact(cols).zip(out.chunks_exact_mut(rows)) {
            for ((o, wr), &b) in ob
                .iter_mut()
                .zip(self.weights.chunks_exact(cols))
                .zip(&self.bias)
            {
                let dot = wr
                    .iter()
                    .zip(vb)
                    .fold(b, |a, (&w, &x)| a.wrapping_add(i32::from(w) * i32::from(x)));
                let acc = multiply_by_quantized_multiplier(dot, self.scale.0, self.scale.1)
                    .wrapping_add(zp)
                    .wrapping_add(*o);
                *o = acc.clamp(lo, hi);
            }
        }
    }
}

/// One gate's constants.
#[derive(Clone, Debug)]
pub struct IntGate {
    /// `[n_cell, n_input]`, bias folds in `−input_zp`.
    pub input: IntMatrix,
    /// `[n_cell, n_output]`, bias folds in `−output_state_zp`.
    pub recurrent: IntMatrix,
    /// int16 peephole weights `[n_cell]` and their multiplier.
    pub peephole: Option<(Vec<i16>, Multiplier)>,
}

/// A prepared full-integer LSTM.
#[derive(Clone, Debug)]
pub struct IntegerLstm {
    pub shape: LstmShape,
    pub input_gate: Option<IntGate>,
    pub forget_gate: IntGate,
    pub cell_gate: IntGate,
    pub output_gate: IntGate,
    /// `log2` of the cell state's scale (≤ −9).
    pub cell_scale: i32,
    pub hidden_scale: Multiplier,
    pub hidden_zp: i32,
    /// `[n_output, n_cell]`, bias folds in `−hidden_zp`.
    pub projection: Option<IntMatrix>,
    pub output_state_zp: i32,
    /// 0 disables.
    pub cell_clip: i16,
    /// 0 disables.
    pub proj_clip: i8,
}

/// Work memory, sized by [`IntegerLstm::scratch_len`].
pub struct IntScratch<'a> {
    pub i32s: &'a mut [i32],
    pub i8s: &'a mut [i8],
}

impl IntegerLstm {
    fn gates(&self) -> impl Iterator<Item = &IntGate> {
        self.input_gate
            .iter()
            .chain([&self.forget_gate, &self.cell_gate, &self.output_gate])
    }

    /// Checks the constants' lengths against the shape.
    pub fn validate(&self) -> Result<(), QuantError> {
        let s = &self.shape;
        if s.n_input == 0 || s.n_cell == 0 || s.n_output == 0 {
            return Err(QuantError::BadGeometry("empty input, cell or output size"));
        }
        let len = |what, want: usize, got: usize| {
            if want == got {
                Ok(())
            } else {
                Err(QuantError::BufferTooSmall {
                    what,
                    needed: want,
                    got,
                })
            }
        };
        for g in self.gates() {
            len("input weights", s.n_cell * s.n_input, g.input.weights.len())?;
            len("input bias", s.n_cell, g.input.bias.len())?;
            len(
                "recurrent weights",
                s.n_cell * s.n_output,
                g.recurrent.weights.len(),
            )?;
            len("recurrent bias", s.n_cell, g.recurrent.bias.len())?;
            if let Some((p, _)) = &g.peephole {
                len("peephole weights", s.n_cell, p.len())?;
            }
        }
        match &self.projection {
            Some(p) => {
                len("projection weights", s.n_output * s.n_cell, p.weights.len())?;
                len("projection bias", s.n_output, p.bias.len())?;
            }
            None => len("output size", s.n_cell, s.n_output)?,
        }
        if !(-30..=-1).contains(&self.cell_scale) {
            return Err(QuantError::BadGeometry("cell state scale"));
        }
        Ok(())
    }

    /// `(i32, i8)` element counts of the scratch memory.
    pub fn scratch_len(&self) -> (usize, usize) {
        let s = &self.shape;
        let bc = s.n_batch * s.n_cell;
        // Four gates, tanh(c); gathered x_t, hidden.
        (
            5 * bc.max(s.n_batch * s.n_output),
            s.n_batch * s.n_input + bc,
        )
    }

    /// Runs the sequence; layouts as in [`super::Lstm::run`].
    pub fn run(
        &self,
        input: &[i8],
        output: &mut [i8],
        output_state: &mut [i8],
        cell_state: &mut [i16],
        scratch: IntScratch<'_>,
    ) -> Result<(), QuantError> {
        let s = self.shape;
        let (nb, ni, nc, no) = (s.n_batch, s.n_input, s.n_cell, s.n_output);
        let check = |what, needed: usize, got: usize| {
            if got < needed {
                Err(QuantError::BufferTooSmall { what, needed, got })
            } else {
                Ok(())
            }
        };
        let rows = s.n_time * nb;
        check("input", rows * ni, input.len())?;
        check("output", rows * no, output.len())?;
        check("output state", nb * no, output_state.len())?;
        check("cell state", nb * nc, cell_state.len())?;
        let (n32, n8) = self.scratch_len();
        check("int32 scratch", n32, scratch.i32s.len())?;
        check("int8 scratch", n8, scratch.i8s.len())?;
        let h = &mut output_state[..nb * no];
        let c = &mut cell_state[..nb * nc];
        let bc = nb * nc;
        let (gi, rest) = scratch.i32s.split_at_mut(bc);
        let (gf, rest) = rest.split_at_mut(bc);
        let (gg, rest) = rest.split_at_mut(bc);
        let (go, rest) = rest.split_at_mut(bc);
        let (proj, _) = rest.split_at_mut(nb * no);
        let (x, rest) = scratch.i8s.split_at_mut(nb * ni);
        let (hidden, _) = rest.split_at_mut(bc);

        for t in 0..s.n_time {
            for b in 0..nb {
                let r = s.row(t, b) * ni;
                x[b * ni..(b + 1) * ni].copy_from_slice(&input[r..r + ni]);
            }
            if let Some(g) = &self.input_gate {
                self.gate(g, x, h, c, gi);
                gi.iter_mut()
                    .for_each(|v| *v = i32::from(fixed16::logistic(*v as i16, 3)));
            }
            self.gate(&self.forget_gate, x, h, c, gf);
            gf.iter_mut()
                .for_each(|v| *v = i32::from(fixed16::logistic(*v as i16, 3)));
            self.gate(&self.cell_gate, x, h, c, gg);
            gg.iter_mut()
                .for_each(|v| *v = i32::from(fixed16::tanh(*v as i16, 3)));

            let cifg = self.input_gate.is_none();
            for k in 0..bc {
                let kept = rounding_divide_by_pot(gf[k] * i32::from(c[k]), 15) as i16;
                let i = if cifg {
                    i32::from(32767i16 - gf[k] as i16)
                } else {
                    gi[k]
                };
                let new = rounding_divide_by_pot(i * gg[k], 30 + self.cell_scale) as i16;
                let mut sum = (i32::from(kept) + i32::from(new)).clamp(-32768, 32767) as i16;
                if self.cell_clip > 0 {
                    sum = sum.clamp(-self.cell_clip, self.cell_clip);
                }
                c[k] = sum;
            }

            self.gate(&self.output_gate, x, h, c, go);
            go.iter_mut()
                .for_each(|v| *v = i32::from(fixed16::logistic(*v as i16, 3)));
            for k in 0..bc {
                let tc = fixed16::tanh(c[k], 15 + self.cell_scale);
                let v = i32::from(go[k] as i16) * i32::from(tc);
                let v =
                    multiply_by_quantized_multiplier(v, self.hidden_scale.0, self.hidden_scale.1)
                        .wrapping_add(self.hidden_zp);
                hidden[k] = v.clamp(-128, 127) as i8;
            }

            match &self.projection {
                Some(p) => {
                    proj.fill(0);
                    p.accumulate(hidden, nc, no, self.output_state_zp, (-128, 127), proj);
                    for (hv, &pv) in h.iter_mut().zip(proj.iter()) {
                        let mut q = pv as i8;
                        if self.proj_clip > 0 {
                            q = q.clamp(-self.proj_clip, self.proj_clip);
                        }
                        *hv = q;
                    }
                }
                None => h.copy_from_slice(hidden),
            }
            for b in 0..nb {
                let r = s.row(t, b) * no;
                output[r..r + no].copy_from_slice(&h[b * no..(b + 1) * no]);
            }
        }
        Ok(())
    }

    /// One gate before its activation, saturated to int16 (held in i32).
    fn gate(&self, g: &IntGate, x: &[i8], h: &[i8], c: &[i16], out: &mut [i32]) {
        let s = &self.shape;
        let (lo, hi) = (i32::from(i16::MIN), i32::from(i16::MAX));
        out.fill(0);
        g.input.accumulate(x, s.n_input, s.n_cell, 0, (lo, hi), out);
        g.recurrent
            .accumulate(h, s.n_output, s.n_cell, 0, (lo, hi), out);
        if let Some((w, m)) = &g.peephole {
            for (ob, cb) in out.chunks_exact_mut(s.n_cell).zip(c.chunks_exact(s.n_cell)) {
                for ((o, &wv), &cv) in ob.iter_mut().zip(w).zip(cb) {
                    let prod =
                        multiply_by_quantized_multiplier(i32::from(wv) * i32::from(cv), m.0, m.1);
                    *o = prod.wrapping_add(*o).clamp(lo, hi);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Effective bias and one requantized row, by hand: w = [[1, 2], [-3, 4]], bias
    /// [10, 20], zero point term −(−5) = 5; x = [3, −1], multiplier ½ (2^30, shift 0).
    #[test]
    fn matrix_by_hand() {
        let m = IntMatrix::new(vec![1, 2, -3, 4], 2, Some(&[10, 20]), 5, (1 << 30, 0));
        assert_eq!(m.bias, vec![10 + 5 * 3, 20 + 5]);
        let mut out = [100, -100];
        m.accumulate(&[3, -1], 2, 2, 7, (-128, 127), &mut out);
        // row 0: (25 + 3 − 2)/2 = 13, + 7 + 100 = 120; row 1: (25 − 9 − 4)/2 = 6, + 7 − 100.
        assert_eq!(out, [120, -87]);
    }
}
