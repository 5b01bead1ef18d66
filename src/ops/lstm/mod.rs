//! UNIDIRECTIONAL_SEQUENCE_LSTM: float32, and hybrid (float activations, int8 weights).
//!
//! The node's inputs 18 (output state) and 19 (cell state) are variable tensors: TFLite
//! zeroes them when tensors are allocated, the kernel overwrites them with the state after
//! the last time step, and the next invoke starts from there. The kernel therefore updates
//! them in place ([`Kernel::updates_inputs`]); the arena keeps variables alive for the whole
//! run and is zeroed when the interpreter is built.
//!
//! Every constant (weights, biases, peephole and layer-norm coefficients) is copied at
//! preparation. Full-integer LSTMs (int8 activations, int16 cell state) are prepared in
//! [`integer`].

mod integer;

use std::sync::Mutex;

use ferrolite_kernels::lstm::{
    CellActivation, Gate, Lstm, LstmScratch, LstmShape, Matrix, Projection,
};

use super::registry::{s, OpSupport};
use super::{cast_mut, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::options::{Activation, OpOptions};
use crate::schema::BuiltinOperator as B;

pub(super) const SUPPORT: &[OpSupport] = &[s(
    B::UNIDIRECTIONAL_SEQUENCE_LSTM,
    &["float32", "int8", "hybrid"],
    "peephole, CIFG, layer norm, projection, clipping, time_major; hybrid int8 weights \
     per-tensor; int8 is the 8x8_16 form without layer norm or projection; state persists \
     between invokes",
)];

/// Prepares `code` if this family implements it.
pub(super) fn prepare(ctx: &PrepareCtx<'_>, code: B) -> Option<Result<Prepared>> {
    match code {
        B::UNIDIRECTIONAL_SEQUENCE_LSTM => Some(prepare_lstm(ctx)),
        _ => None,
    }
}

// Input slots.
const INPUT: usize = 0;
const INPUT_TO: [usize; 4] = [1, 2, 3, 4];
const RECURRENT_TO: [usize; 4] = [5, 6, 7, 8];
/// Peephole weights of the input, forget and output gates (the cell gate has none).
const CELL_TO: [Option<usize>; 4] = [Some(9), Some(10), None, Some(11)];
const BIAS: [usize; 4] = [12, 13, 14, 15];
const PROJ_W: usize = 16;
const PROJ_B: usize = 17;
const OUTPUT_STATE: usize = 18;
const CELL_STATE: usize = 19;
const LAYER_NORM: [usize; 4] = [20, 21, 22, 23];

fn prepare_lstm(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(20, 24, 1)?;
    let OpOptions::UnidirectionalSequenceLstm(o) = &ctx.op.options else {
        return Err(ctx.invalid("missing UnidirectionalSequenceLSTMOptions"));
    };
    let input = ctx.input(INPUT)?;
    let weights = ctx.input(INPUT_TO[3])?;
    let out_dtype = ctx.output(0)?.dtype;
    let (hybrid, integer) = match (input.dtype, weights.dtype, out_dtype) {
        (DType::F32, DType::F32, DType::F32) => (false, false),
        (DType::F32, DType::I8, DType::F32) => (true, false),
        (DType::I8, DType::I8, DType::I8) => (false, true),
        _ => return Err(ctx.unsupported_dtypes()),
    };
    // REF: 0 disables a clip, a positive value enables it, a negative one is an error.
    if !(o.cell_clip >= 0.0 && o.proj_clip >= 0.0) {
        return Err(ctx.invalid(format!(
            "negative clip (cell_clip {}, proj_clip {})",
            o.cell_clip, o.proj_clip
        )));
    }
    if o.diagonal_recurrent_tensors {
        return Err(ctx.unsupported("diagonal recurrent weights"));
    }
    let activation = match o.activation {
        Activation::None => CellActivation::None,
        Activation::Relu => CellActivation::Relu,
        Activation::ReluN1To1 => CellActivation::ReluN1To1,
        Activation::Relu6 => CellActivation::Relu6,
        Activation::Tanh => CellActivation::Tanh,
        Activation::SignBit => return Err(ctx.unsupported("cell activation SIGN_BIT")),
    };

    if input.shape.len() != 3 {
        return Err(ctx.invalid(format!("input of rank {} (needs 3)", input.shape.len())));
    }
    let (n_time, n_batch) = if o.time_major {
        (input.shape[0], input.shape[1])
    } else {
        (input.shape[1], input.shape[0])
    };
    let n_input = input.shape[2];
    let n_cell = *weights
        .shape
        .first()
        .ok_or_else(|| ctx.invalid("input-to-output weights have rank 0"))?;
    let n_output = *ctx
        .input(RECURRENT_TO[3])?
        .shape
        .get(1)
        .ok_or_else(|| ctx.invalid("recurrent-to-output weights are not a matrix"))?;
    if n_input == 0 || n_cell == 0 || n_output == 0 {
        return Err(ctx.unsupported("an LSTM with an empty input, cell or output size"));
    }
    let shape = LstmShape {
        n_batch,
        n_time,
        n_input,
        n_cell,
        n_output,
        time_major: o.time_major,
    };

    // CIFG: no input gate; its weights, recurrent weights and bias come together.
    let cifg = ctx.input_opt(INPUT_TO[0]).is_none();
    if ctx.input_opt(RECURRENT_TO[0]).is_none() != cifg {
        return Err(ctx.invalid("input-to-input and recurrent-to-input weights must come together"));
    }
    if cifg && ctx.input_opt(BIAS[0]).is_some() {
        return Err(ctx.invalid("an input gate bias without input gate weights"));
    }
    // Peepholes: all (the input one may be absent with CIFG) or none.
    let peep = |k: usize| CELL_TO[k].and_then(|i| ctx.input_opt(i)).is_some();
    let peephole = peep(1);
    if peep(1) != peep(3) || (!cifg && peep(0) != peep(1)) || (!peephole && peep(0)) {
        return Err(ctx.invalid("peephole weights must be all present or all absent"));
    }
    let layer_norm = ctx.op.inputs.len() > LAYER_NORM[1] && ctx.input_opt(LAYER_NORM[1]).is_some();
    if layer_norm {
        let has = |k: usize| ctx.input_opt(LAYER_NORM[k]).is_some();
        if has(0) == cifg || !has(2) || !has(3) {
            return Err(ctx.invalid("layer-norm coefficients are incomplete"));
        }
    }

    if integer {
        let layout = integer::Layout {
            shape,
            cifg,
            peephole,
            layer_norm,
        };
        return integer::prepare(ctx, o, layout);
    }
    let gate = |k: usize| -> Result<Gate> {
        Ok(Gate {
            input: matrix(ctx, INPUT_TO[k], n_cell, n_input, hybrid)?,
            recurrent: matrix(ctx, RECURRENT_TO[k], n_cell, n_output, hybrid)?,
            peephole: match CELL_TO[k] {
                Some(i) if peephole => Some(vector(ctx, i, n_cell, hybrid)?),
                _ => None,
            },
            layer_norm: match layer_norm {
                true => Some(vector(ctx, LAYER_NORM[k], n_cell, false)?),
                false => None,
            },
            bias: vector(ctx, BIAS[k], n_cell, false)?,
        })
    };
    let projection = match ctx.input_opt(PROJ_W) {
        Some(_) => Some(Projection {
            weights: matrix(ctx, PROJ_W, n_output, n_cell, hybrid)?,
            bias: match ctx.input_opt(PROJ_B) {
                Some(_) => Some(vector(ctx, PROJ_B, n_output, false)?),
                None => None,
            },
        }),
        None if ctx.input_opt(PROJ_B).is_some() => {
            return Err(ctx.invalid("a projection bias without projection weights"))
        }
        None => None,
    };
    let lstm = Lstm {
        shape,
        input_gate: if cifg { None } else { Some(gate(0)?) },
        forget_gate: gate(1)?,
        cell_gate: gate(2)?,
        output_gate: gate(3)?,
        projection,
        activation,
        cell_clip: o.cell_clip,
        proj_clip: o.proj_clip,
        asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
    };
    lstm.validate().map_err(|e| ctx.quant_err(e))?;

    let h_state = state(ctx, OUTPUT_STATE, n_batch * n_output)?;
    let c_state = state(ctx, CELL_STATE, n_batch * n_cell)?;
    let updated = in_place(&h_state, &c_state);
    let out_t = ctx.op.outputs[0];
    let (h_t, c_t) = (ctx.input_index(OUTPUT_STATE)?, ctx.input_index(CELL_STATE)?);
    if h_t == c_t || out_t == h_t || out_t == c_t {
        return Err(ctx.invalid("the output and the two states must be distinct tensors"));
    }
    let out_shape = if o.time_major {
        [n_time, n_batch, n_output]
    } else {
        [n_batch, n_time, n_output]
    };
    ctx.set_output_shape(0, &out_shape)?;
    Ok(Prepared::Kernel(Box::new(LstmKernel {
        lstm,
        h_state,
        c_state,
        updated,
    })))
}

/// A constant weight matrix `[rows, cols]`: float32, or (hybrid) per-tensor int8.
fn matrix(
    ctx: &PrepareCtx<'_>,
    k: usize,
    rows: usize,
    cols: usize,
    hybrid: bool,
) -> Result<Matrix> {
    let t = ctx.input(k)?;
    if t.shape != [rows, cols] {
        return Err(ctx.invalid(format!(
            "input {k} has shape {:?}, expected [{rows}, {cols}]",
            t.shape
        )));
    }
    if hybrid {
        let scale = int8_scale(ctx, t, k)?;
        Ok(Matrix::int8(constant(ctx, k)?, rows, scale))
    } else {
        expect_dtype(ctx, t, k, DType::F32)?;
        Ok(Matrix::F32(constant(ctx, k)?))
    }
}

/// A constant vector of `n` floats; with `int8`, int8 values dequantized with their scale.
fn vector(ctx: &PrepareCtx<'_>, k: usize, n: usize, int8: bool) -> Result<Vec<f32>> {
    let t = ctx.input(k)?;
    if t.shape != [n] {
        return Err(ctx.invalid(format!("input {k} has shape {:?}, expected [{n}]", t.shape)));
    }
    if int8 {
        let scale = int8_scale(ctx, t, k)?;
        let q: Vec<i8> = constant(ctx, k)?;
        // REF recovers the weights as scale · q in f32, once per gate evaluation.
        Ok(q.iter().map(|&v| scale * f32::from(v)).collect())
    } else {
        expect_dtype(ctx, t, k, DType::F32)?;
        constant(ctx, k)
    }
}

fn expect_dtype(ctx: &PrepareCtx<'_>, t: &Tensor, k: usize, want: DType) -> Result<()> {
    if t.dtype != want {
        return Err(ctx.unsupported(format!("input {k} of dtype {} (expected {want})", t.dtype)));
    }
    Ok(())
}

/// The scale of an int8 hybrid weight; REF reads only the (first) scale.
fn int8_scale(ctx: &PrepareCtx<'_>, t: &Tensor, k: usize) -> Result<f32> {
    expect_dtype(ctx, t, k, DType::I8)?;
    let q = t
        .quantization
        .as_ref()
        .ok_or_else(|| ctx.invalid(format!("int8 input {k} has no scale")))?;
    if q.scale.len() != 1 {
        return Err(ctx.unsupported(format!("per-channel int8 weights (input {k})")));
    }
    Ok(q.scale[0])
}

fn constant<T: bytemuck::Pod>(ctx: &PrepareCtx<'_>, k: usize) -> Result<Vec<T>> {
    ctx.const_vec::<T>(k)?.ok_or_else(|| {
        ctx.unsupported(format!("non-constant input {k} (weights must be constant)"))
    })
}

/// Where a state lives between invokes.
enum State<T> {
    /// In its variable tensor, updated in place.
    InPlace,
    /// In the kernel: the variable has constant initial data (in fp16 models it is the
    /// folded DEQUANTIZE of zeros), which REF dequantizes once and then overwrites; or
    /// (int8) it must start at its zero point, where the arena starts at 0.
    Owned(Mutex<Vec<T>>),
}

impl<T: bytemuck::Pod> State<T> {
    fn owned_bytes(&self) -> usize {
        match self {
            State::Owned(m) => m.lock().map_or(0, |v| std::mem::size_of_val(&v[..])),
            State::InPlace => 0,
        }
    }
}

/// The in-place states among `(input slot, state)`, in slot order.
fn in_place<A, B>(h: &State<A>, c: &State<B>) -> Vec<usize> {
    let mut v = Vec::new();
    if matches!(h, State::InPlace) {
        v.push(OUTPUT_STATE);
    }
    if matches!(c, State::InPlace) {
        v.push(CELL_STATE);
    }
    v
}

/// Checks a state input: a float32 variable of `numel` elements.
fn state(ctx: &PrepareCtx<'_>, k: usize, numel: usize) -> Result<State<f32>> {
    let t = ctx.input(k)?;
    if !t.is_variable {
        return Err(ctx.invalid(format!("state input {k} is not a variable tensor")));
    }
    expect_dtype(ctx, t, k, DType::F32)?;
    if t.numel != numel {
        return Err(ctx.invalid(format!(
            "state input {k} has {} elements, expected {numel}",
            t.numel
        )));
    }
    Ok(match ctx.const_vec::<f32>(k)? {
        Some(init) => State::Owned(Mutex::new(init)),
        None => State::InPlace,
    })
}

struct LstmKernel {
    lstm: Lstm,
    h_state: State<f32>,
    c_state: State<f32>,
    /// The states updated in place, in slot order.
    updated: Vec<usize>,
}

impl LstmKernel {
    /// Scratch layout: f32 values, then i32 zero points, then i8 quantized rows.
    fn scratch_parts(&self) -> (usize, usize, usize) {
        let (f, q, z) = self.lstm.scratch_len();
        (f * 4, z * 4, q)
    }
}

impl Kernel for LstmKernel {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let input = e.inputs.get::<f32>(INPUT)?;
        let output = cast_mut::<f32>(e.output)?;
        // In-place states come after the output, in the order of `updated`.
        let mut slots = e.more_outputs.iter_mut();
        let (mut h_guard, mut c_guard);
        let h: &mut [f32] = match &self.h_state {
            State::InPlace => cast_mut(slots.next().ok_or_else(no_slot)?)?,
            State::Owned(m) => {
                h_guard = m.lock().map_err(|_| poisoned())?;
                &mut h_guard
            }
        };
        let c: &mut [f32] = match &self.c_state {
            State::InPlace => cast_mut(slots.next().ok_or_else(no_slot)?)?,
            State::Owned(m) => {
                c_guard = m.lock().map_err(|_| poisoned())?;
                &mut c_guard
            }
        };
        let (fb, zb, qb) = self.scratch_parts();
        let scratch = e
            .scratch
            .get_mut(..fb + zb + qb)
            .ok_or_else(|| Error::Internal("LSTM scratch too small".into()))?;
        let (f, rest) = scratch.split_at_mut(fb);
        let (z, q) = rest.split_at_mut(zb);
        let scratch = LstmScratch {
            f32s: cast_mut::<f32>(f)?,
            i32s: cast_mut::<i32>(z)?,
            i8s: bytemuck::cast_slice_mut(q),
        };
        self.lstm
            .run(input, output, h, c, scratch)
            .map_err(kernel_err)
    }

    fn scratch_bytes(&self) -> usize {
        let (f, z, q) = self.scratch_parts();
        f + z + q
    }

    fn persistent_bytes(&self) -> usize {
        let s = &self.lstm.shape;
        // Weights, row sums and vectors, counted as 4-byte elements (an upper bound).
        4 * (4 * s.n_cell * (s.n_input + s.n_output + 4) + 2 * s.n_output * (s.n_cell + 1))
            + self.h_state.owned_bytes()
            + self.c_state.owned_bytes()
    }

    fn reads_input(&self, k: usize) -> bool {
        k == INPUT
    }

    fn updates_inputs(&self) -> &[usize] {
        &self.updated
    }
}

pub(super) fn no_slot() -> Error {
    Error::Internal("LSTM state is not writable".into())
}

pub(super) fn poisoned() -> Error {
    Error::Internal("LSTM state lock poisoned".into())
}

#[cfg(test)]
mod tests {
    use crate::{Interpreter, Model, Options};

    /// The state carries over: a second invoke on the same inputs matches the reference
    /// interpreter's second invoke (`tools/fixtures_lstm.py` writes those outputs).
    fn read_npy<T: npyz::Deserialize>(path: std::path::PathBuf) -> Vec<T> {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        npyz::NpyFile::new(file).unwrap().into_vec().unwrap()
    }

    fn run_twice<T: crate::Element + Clone>(name: &str) -> (Vec<T>, Vec<T>) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let model = Model::from_file(root.join(format!("tests/models/{name}.tflite"))).unwrap();
        let mut it = Interpreter::new(model, Options::default()).unwrap();
        // Inputs are set before each invoke: their memory may be reused once read.
        let mut run = || {
            for k in 0..it.inputs().len() {
                let dtype = it.inputs()[k].dtype;
                crate::inputs::fill(it.input_bytes_mut(k).unwrap(), dtype, 0, k);
            }
            it.invoke().unwrap();
            it.output::<T>(0).unwrap().to_vec()
        };
        let first = run();
        (first, run())
    }

    fn golden(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/golden/{name}/ref_invoke2_output_0.npy"))
    }

    /// The state carries over: a second invoke on the same inputs matches the reference
    /// interpreter's second invoke (`tools/fixtures_lstm.py` writes those outputs).
    #[test]
    fn state_persists_between_invokes() {
        for name in [
            "lstm_basic_f32",
            "lstm_timemajor_f32",
            "lstm_basic_dynamic",
            "zoo_text_lstm_fp16",
        ] {
            let (first, second) = run_twice::<f32>(name);
            let want: Vec<f32> = read_npy(golden(name));
            assert_eq!(second.len(), want.len(), "{name}");
            let tol = 1e-5 * want.iter().fold(1.0f32, |m, x| m.max(x.abs()));
            for (a, b) in second.iter().zip(&want) {
                assert!((a - b).abs() <= tol, "{name}: {a} vs {b}");
            }
            assert_ne!(
                first, second,
                "{name}: the second invoke starts from the first's state"
            );
        }
        let (first, second) = run_twice::<i8>("lstm_basic_int8");
        assert_eq!(second, read_npy::<i8>(golden("lstm_basic_int8")));
        assert_ne!(first, second);
    }
}
