//! UNIDIRECTIONAL_SEQUENCE_LSTM with float activations: float weights, or int8 weights
//! ("hybrid", dynamic range) whose operands are quantized on the fly per batch row, as in
//! TFLite's `lstm_eval` float and hybrid steps.
//!
//! One step, per batch row (TFLite's order, which matters for the peepholes):
//! - input, forget and cell gates: `bias + W_x·x + W_h·h (+ p ⊙ c_prev)`, or with layer
//!   norm `coef ⊙ normalize(W_x·x + W_h·h (+ p ⊙ c_prev)) + bias`; sigmoid for input and
//!   forget, the cell activation for the cell gate;
//! - `c = f ⊙ c_prev + i ⊙ g` (CIFG: `i = 1 − f`), clipped to `±cell_clip` when positive;
//! - output gate like the others, its peephole on the *new* cell state;
//! - `h = o ⊙ act(c)`, then optionally `h = clip(P·h + bias, ±proj_clip)`.
//!
//! The hybrid path follows REF's arithmetic: each row of `x`, `h` and (for the projection)
//! the hidden vector is quantized to int8 with [`quantize_symmetric`] or
//! [`quantize_asymmetric`]; a gate receives `(f32)(Σ w·q − zp·Σ w) · (s_w · s_row)`.
//! Peephole weights are dequantized (`s · w`) once.

mod fixed16;
pub mod integer;
mod math;

pub use math::CellActivation;

use crate::quant::hybrid::{quantize_asymmetric, quantize_symmetric};
use crate::quant::QuantError;
use math::{layer_norm, sigmoid_slice};

/// Sizes of one LSTM node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmShape {
    pub n_batch: usize,
    pub n_time: usize,
    pub n_input: usize,
    pub n_cell: usize,
    /// Size of the output and of the output state (`n_cell` without projection).
    pub n_output: usize,
    /// Input and output are `[time, batch, ·]` rather than `[batch, time, ·]`.
    pub time_major: bool,
}

impl LstmShape {
    /// Offset (in rows) of the row of batch `b` at time `t` in the input or output.
    fn row(&self, t: usize, b: usize) -> usize {
        if self.time_major {
            t * self.n_batch + b
        } else {
            b * self.n_time + t
        }
    }
}

/// A weight matrix `[rows, cols]`, row-major.
#[derive(Clone, Debug)]
pub enum Matrix {
    F32(Vec<f32>),
    /// Symmetric int8 weights with one scale; `row_sums` serve asymmetric operands.
    I8 {
        values: Vec<i8>,
        scale: f32,
        row_sums: Vec<i32>,
    },
}

impl Matrix {
    /// Int8 weights of `rows` rows, with their row sums computed now.
    pub fn int8(values: Vec<i8>, rows: usize, scale: f32) -> Matrix {
        let cols = values.len().checked_div(rows).unwrap_or(0);
        let row_sums = (0..rows)
            .map(|r| {
                values[r * cols..(r + 1) * cols]
                    .iter()
                    .map(|&v| i32::from(v))
                    .sum()
            })
            .collect();
        Matrix::I8 {
            values,
            scale,
            row_sums,
        }
    }

    fn len(&self) -> usize {
        match self {
            Matrix::F32(v) => v.len(),
            Matrix::I8 { values, .. } => values.len(),
        }
    }

    fn is_int8(&self) -> bool {
        matches!(self, Matrix::I8 { .. })
    }

    /// `acc[b, r] += Σ_c W[r, c] · v[b, c]` for every batch row, reading the float rows
    /// for float weights and the quantized rows for int8 weights.
    fn accumulate(&self, v: &Rows<'_>, rows: usize, cols: usize, acc: &mut [f32]) {
        match self {
            Matrix::F32(w) => {
                for (b, out) in acc.chunks_exact_mut(rows).enumerate() {
                    let x = &v.f[b * cols..(b + 1) * cols];
                    for (o, wr) in out.iter_mut().zip(w.chunks_exact(cols)) {
                        *o += dot_f32(wr, x);
                    }
                }
            }
            Matrix::I8 {
                values,
                scale,
                row_sums,
            } => {
                for (b, out) in acc.chunks_exact_mut(rows).enumerate() {
                    let q = &v.q[b * cols..(b + 1) * cols];
                    let s = scale * v.scale[b];
                    let zp = v.zero_point[b];
                    for ((o, wr), &sum) in
                        out.iter_mut().zip(values.chunks_exact(cols)).zip(row_sums)
                    {
                        let d = dot_i8(wr, q).wrapping_sub(zp.wrapping_mul(sum));
                        *o += d as f32 * s;
                    }
                }
            }
        }
    }
}

fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .fold(0i32, i32::wrapping_add)
}

/// Batch rows of an operand: as floats, and quantized (hybrid only).
struct Rows<'a> {
    f: &'a [f32],
    q: &'a [i8],
    scale: &'a [f32],
    zero_point: &'a [i32],
}

/// One gate's constants.
#[derive(Clone, Debug)]
pub struct Gate {
    /// `[n_cell, n_input]`.
    pub input: Matrix,
    /// `[n_cell, n_output]`.
    pub recurrent: Matrix,
    /// Peephole weights `[n_cell]` (input, forget and output gates only), dequantized.
    pub peephole: Option<Vec<f32>>,
    /// Layer-norm coefficients `[n_cell]`.
    pub layer_norm: Option<Vec<f32>>,
    /// `[n_cell]`.
    pub bias: Vec<f32>,
}

/// The optional projection of the hidden state.
#[derive(Clone, Debug)]
pub struct Projection {
    /// `[n_output, n_cell]`.
    pub weights: Matrix,
    /// `[n_output]`.
    pub bias: Option<Vec<f32>>,
}

/// A prepared LSTM node.
#[derive(Clone, Debug)]
pub struct Lstm {
    pub shape: LstmShape,
    /// `None`: CIFG (coupled input and forget gates).
    pub input_gate: Option<Gate>,
    pub forget_gate: Gate,
    pub cell_gate: Gate,
    pub output_gate: Gate,
    pub projection: Option<Projection>,
    pub activation: CellActivation,
    /// Clip bound of the cell state; 0 (or less) disables it.
    pub cell_clip: f32,
    /// Clip bound of the projection output; 0 (or less) disables it.
    pub proj_clip: f32,
    /// Hybrid only: quantize operands with a zero point rather than symmetrically.
    pub asymmetric_quantize_inputs: bool,
}

/// Work memory of one run, sized by [`Lstm::scratch_len`].
pub struct LstmScratch<'a> {
    pub f32s: &'a mut [f32],
    pub i8s: &'a mut [i8],
    pub i32s: &'a mut [i32],
}

impl Lstm {
    fn gates(&self) -> impl Iterator<Item = &Gate> {
        self.input_gate
            .iter()
            .chain([&self.forget_gate, &self.cell_gate, &self.output_gate])
    }

    /// Whether the weights are int8 (operands are quantized at run time).
    pub fn is_hybrid(&self) -> bool {
        self.forget_gate.input.is_int8()
    }

    /// Checks that every constant has the length the shape requires, and that the weights
    /// are all float or all int8.
    pub fn validate(&self) -> Result<(), QuantError> {
        let s = &self.shape;
        if s.n_input == 0 || s.n_cell == 0 || s.n_output == 0 {
            return Err(QuantError::BadGeometry("empty input, cell or output size"));
        }
        let hybrid = self.is_hybrid();
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
            len("input weights", s.n_cell * s.n_input, g.input.len())?;
            len(
                "recurrent weights",
                s.n_cell * s.n_output,
                g.recurrent.len(),
            )?;
            if g.input.is_int8() != hybrid || g.recurrent.is_int8() != hybrid {
                return Err(QuantError::BadGeometry("float and int8 weights are mixed"));
            }
            len("gate bias", s.n_cell, g.bias.len())?;
            if let Some(p) = &g.peephole {
                len("peephole weights", s.n_cell, p.len())?;
            }
            if let Some(l) = &g.layer_norm {
                len("layer norm coefficients", s.n_cell, l.len())?;
            }
        }
        match &self.projection {
            Some(p) => {
                len("projection weights", s.n_output * s.n_cell, p.weights.len())?;
                if p.weights.is_int8() != hybrid {
                    return Err(QuantError::BadGeometry("float and int8 weights are mixed"));
                }
                if let Some(b) = &p.bias {
                    len("projection bias", s.n_output, b.len())?;
                }
            }
            None => {
                if s.n_output != s.n_cell {
                    return Err(QuantError::BadGeometry(
                        "output size differs from cell size without projection",
                    ));
                }
            }
        }
        Ok(())
    }

    /// `(f32, i8, i32)` element counts of the scratch memory a run needs.
    pub fn scratch_len(&self) -> (usize, usize, usize) {
        let s = &self.shape;
        let (b, i, c, o) = (s.n_batch, s.n_input, s.n_cell, s.n_output);
        // x_t, four gates, hidden, and three per-row scales.
        let f = b * i + 5 * b * c + 3 * b;
        if self.is_hybrid() {
            (f, b * i + b * o + b * c, 3 * b)
        } else {
            (f, 0, 0)
        }
    }

    /// Runs the whole sequence. `input` is `[T, B, I]` or `[B, T, I]`, `output` likewise
    /// with `O`; `output_state` (`[B, O]`) and `cell_state` (`[B, C]`) carry in the state
    /// before the first step and hold the state after the last one.
    pub fn run(
        &self,
        input: &[f32],
        output: &mut [f32],
        output_state: &mut [f32],
        cell_state: &mut [f32],
        scratch: LstmScratch<'_>,
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
        let (nf, nq, nz) = self.scratch_len();
        check("float scratch", nf, scratch.f32s.len())?;
        check("int8 scratch", nq, scratch.i8s.len())?;
        check("int32 scratch", nz, scratch.i32s.len())?;
        let h = &mut output_state[..nb * no];
        let c = &mut cell_state[..nb * nc];

        let (x, rest) = scratch.f32s.split_at_mut(nb * ni);
        let (gi, rest) = rest.split_at_mut(nb * nc);
        let (gf, rest) = rest.split_at_mut(nb * nc);
        let (gg, rest) = rest.split_at_mut(nb * nc);
        let (go, rest) = rest.split_at_mut(nb * nc);
        let (hidden, rest) = rest.split_at_mut(nb * nc);
        let (sx, rest) = rest.split_at_mut(nb);
        let (sh, rest) = rest.split_at_mut(nb);
        let (sp, _) = rest.split_at_mut(nb);
        let hybrid = self.is_hybrid();
        let (qx, qh, qp, zx, zh, zp) = if hybrid {
            let (qx, rest) = scratch.i8s.split_at_mut(nb * ni);
            let (qh, rest) = rest.split_at_mut(nb * no);
            let (qp, _) = rest.split_at_mut(nb * nc);
            let (zx, rest) = scratch.i32s.split_at_mut(nb);
            let (zh, rest) = rest.split_at_mut(nb);
            let (zp, _) = rest.split_at_mut(nb);
            (qx, qh, qp, zx, zh, zp)
        } else {
            Default::default()
        };

        for t in 0..s.n_time {
            for b in 0..nb {
                let r = s.row(t, b) * ni;
                x[b * ni..(b + 1) * ni].copy_from_slice(&input[r..r + ni]);
            }
            if hybrid {
                self.quantize_rows(x, ni, qx, sx, zx);
                self.quantize_rows(h, no, qh, sh, zh);
            }
            let xs = Rows {
                f: x,
                q: qx,
                scale: sx,
                zero_point: zx,
            };
            let hs = Rows {
                f: h,
                q: qh,
                scale: sh,
                zero_point: zh,
            };
            if let Some(g) = &self.input_gate {
                self.gate(g, &xs, &hs, c, gi);
                sigmoid_slice(gi);
            }
            self.gate(&self.forget_gate, &xs, &hs, c, gf);
            sigmoid_slice(gf);
            self.gate(&self.cell_gate, &xs, &hs, c, gg);
            self.activation.apply_slice(gg);
            let identity = self.activation == CellActivation::None;
            if identity && !hybrid {
                self.zero_input_identity_quirk(x, gg);
            }

            // The new cell state.
            let cifg = self.input_gate.is_none();
            for k in 0..nb * nc {
                let i = if cifg { 1.0 - gf[k] } else { gi[k] };
                c[k] = gf[k] * c[k] + gg[k] * i;
            }
            if self.cell_clip > 0.0 {
                clip(c, self.cell_clip);
            }

            self.gate(&self.output_gate, &xs, &hs, c, go);
            sigmoid_slice(go);
            for k in 0..nb * nc {
                // REF's `ApplyActivationToVector` returns without writing its output for
                // activation NONE, so the buffer that should receive act(c) keeps what it
                // held: the cell gate of this step.
                let a = if identity {
                    gg[k]
                } else {
                    self.activation.apply(c[k])
                };
                hidden[k] = go[k] * a;
            }

            match &self.projection {
                Some(p) => {
                    for row in h.chunks_exact_mut(no) {
                        match &p.bias {
                            Some(bias) => row.copy_from_slice(bias),
                            None => row.fill(0.0),
                        }
                    }
                    if hybrid {
                        self.quantize_rows(hidden, nc, qp, sp, zp);
                    }
                    let hv = Rows {
                        f: hidden,
                        q: qp,
                        scale: sp,
                        zero_point: zp,
                    };
                    p.weights.accumulate(&hv, no, nc, h);
                    if self.proj_clip > 0.0 {
                        clip(h, self.proj_clip);
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

    /// REF's float gate skips the input product when the input is all zeros, which leaves
    /// the sum in its second buffer, and activation NONE does not copy it back: the cell
    /// gate then keeps its initial value (the bias, or 0 with layer norm). REF checks the
    /// whole step when time-major and each batch row otherwise (it runs rows separately).
    fn zero_input_identity_quirk(&self, x: &[f32], gg: &mut [f32]) {
        let s = &self.shape;
        let (ni, nc) = (s.n_input, s.n_cell);
        let all_zero = |v: &[f32]| v.iter().all(|&a| a == 0.0);
        let step_zero = s.time_major && all_zero(x);
        for (b, row) in gg.chunks_exact_mut(nc).enumerate() {
            if step_zero || (!s.time_major && all_zero(&x[b * ni..(b + 1) * ni])) {
                match self.cell_gate.layer_norm {
                    Some(_) => row.fill(0.0),
                    None => row.copy_from_slice(&self.cell_gate.bias),
                }
            }
        }
    }

    /// Quantizes each `n`-element row of `v` (REF's `BatchQuantizeFloats`).
    fn quantize_rows(&self, v: &[f32], n: usize, q: &mut [i8], scale: &mut [f32], zp: &mut [i32]) {
        if n == 0 {
            return;
        }
        for (b, (row, out)) in v.chunks_exact(n).zip(q.chunks_exact_mut(n)).enumerate() {
            if self.asymmetric_quantize_inputs {
                (scale[b], zp[b]) = quantize_asymmetric(row, out);
            } else {
                scale[b] = quantize_symmetric(row, out);
                zp[b] = 0;
            }
        }
    }

    /// One gate's pre-activation value for every batch row, into `out`.
    fn gate(&self, g: &Gate, x: &Rows<'_>, h: &Rows<'_>, c: &[f32], out: &mut [f32]) {
        let s = &self.shape;
        let nc = s.n_cell;
        for row in out.chunks_exact_mut(nc) {
            match g.layer_norm {
                Some(_) => row.fill(0.0),
                None => row.copy_from_slice(&g.bias),
            }
        }
        g.input.accumulate(x, nc, s.n_input, out);
        g.recurrent.accumulate(h, nc, s.n_output, out);
        if let Some(p) = &g.peephole {
            for (row, cr) in out.chunks_exact_mut(nc).zip(c.chunks_exact(nc)) {
                for ((o, &w), &cv) in row.iter_mut().zip(p).zip(cr) {
                    *o += w * cv;
                }
            }
        }
        if let Some(coef) = &g.layer_norm {
            for row in out.chunks_exact_mut(nc) {
                layer_norm(row);
                for ((o, &k), &b) in row.iter_mut().zip(coef).zip(&g.bias) {
                    *o = *o * k + b;
                }
            }
        }
    }
}

/// Clamps to `[−bound, bound]`.
fn clip(v: &mut [f32], bound: f32) {
    for x in v {
        *x = x.clamp(-bound, bound);
    }
}

#[cfg(test)]
mod tests;
