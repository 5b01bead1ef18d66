//! What every fuzz target runs: load, prepare, fill the inputs, invoke, read the outputs.
//!
//! Any `Err` is a fine outcome. A panic, an abort, a sanitizer report, a timeout or an
//! allocation over libFuzzer's limit is a bug. The few properties checked with `assert!` here
//! are ones the public API promises whatever the model is.

use ferrolite::{DType, Interpreter, Limits, Model, Options};

/// Limits for fuzzing: small enough that a legitimate-but-large model is refused by the limits
/// (an `Err`) long before libFuzzer's RSS or malloc limit would report it as a crash.
pub fn limits() -> Limits {
    Limits {
        max_memory_bytes: 256 << 20,
        max_tensor_elements: 1 << 26,
        max_flatbuffer_tables: 100_000,
        // A WHILE that never ends runs to this limit; 10 million iterations take seconds in
        // a release build, minutes under the sanitizer.
        max_loop_iterations: 10_000,
        ..Limits::default()
    }
}

/// Limits for targets that also invoke: activations are kept small so that each execution
/// stays fast under the sanitizer (compute grows with the activation sizes the model asks
/// for, and a slow-but-finite unit would otherwise be reported as a timeout).
pub fn invoke_limits() -> Limits {
    Limits {
        max_memory_bytes: 4 << 20,
        max_tensor_elements: 1 << 20,
        ..limits()
    }
}

/// Loads `bytes`; also exercises the accessors that format errors and names.
pub fn load(bytes: Vec<u8>, limits: &Limits) -> Option<Model> {
    match Model::from_vec_with_limits(bytes, limits) {
        Ok(m) => {
            for sg in m.subgraphs() {
                for (oi, _) in sg.operators.iter().enumerate() {
                    let _ = m.op_location(0, oi).to_string();
                }
            }
            Some(m)
        }
        Err(e) => {
            let _ = e.to_string();
            None
        }
    }
}

/// Loads and prepares `bytes`.
pub fn prepare(bytes: Vec<u8>, limits: &Limits, threads: usize) -> Option<Interpreter> {
    let model = load(bytes, limits)?;
    for r in Interpreter::check_support(&model) {
        if let Err(e) = r {
            let _ = e.to_string();
        }
    }
    let options = Options::default().threads(threads).limits(limits.clone());
    match Interpreter::new(model, options) {
        Ok(i) => Some(i),
        Err(e) => {
            let _ = e.to_string();
            None
        }
    }
}

/// Loads, prepares and invokes `bytes`, with the model inputs filled from `data` (repeated as
/// needed, so that every bit pattern, NaN and infinity included, can reach the kernels).
pub fn run(bytes: Vec<u8>, data: &[u8], limits: &Limits, threads: usize) {
    let Some(mut interp) = prepare(bytes, limits, threads) else {
        return;
    };
    let mut pos = 0;
    for k in 0..interp.inputs().len() {
        let Ok(buf) = interp.input_bytes_mut(k) else {
            continue;
        };
        for b in buf.iter_mut() {
            *b = if data.is_empty() {
                0
            } else {
                data[pos % data.len()]
            };
            pos += 1;
        }
    }
    // Typed access with the wrong element type must be an error, never a bad view.
    for k in 0..interp.inputs().len() {
        let dtype = interp.inputs()[k].dtype;
        check_typed_input(&mut interp, k, dtype);
    }
    let _ = interp.input_mut::<f32>(interp.inputs().len());

    if interp.invoke().is_err() {
        return;
    }
    for k in 0..interp.outputs().len() {
        let info = interp.outputs()[k].clone();
        let bytes = interp.output_bytes(k).map(|b| b.len());
        let numel: usize = info.shape.iter().product();
        if let (Ok(len), Some(size)) = (bytes, info.dtype.size()) {
            assert_eq!(
                len,
                numel * size,
                "output {k} holds {len} bytes for shape {:?} of {}",
                info.shape,
                info.dtype
            );
        }
        let _ = interp.output::<f32>(k);
        let _ = interp.output::<i8>(k);
        let _ = interp.output::<u8>(k);
    }
    // A second invoke on the same inputs must work too (and gives the same result, but that
    // is the golden tests' business).
    let _ = interp.invoke();
}

fn check_typed_input(interp: &mut Interpreter, k: usize, dtype: DType) {
    let f = interp.input_mut::<f32>(k).is_ok();
    assert!(!f || dtype == DType::F32, "f32 view of a {dtype} input");
    let i = interp.input_mut::<i8>(k).is_ok();
    assert!(!i || dtype == DType::I8, "i8 view of a {dtype} input");
    let u = interp.input_mut::<u8>(k).is_ok();
    assert!(!u || dtype == DType::U8, "u8 view of a {dtype} input");
}

/// Splits an `invoke` target input: the first 4 bytes (little endian) give the model's length,
/// the model follows, and whatever is left fills the inputs.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    if data.len() < 4 {
        return (&[], data);
    }
    let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    let n = n.min(rest.len());
    rest.split_at(n)
}

/// The inverse of [`split`]: how the seed corpus of the `invoke` target is written.
pub fn join(model: &[u8], inputs: &[u8]) -> Vec<u8> {
    let mut out = (model.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(model);
    out.extend_from_slice(inputs);
    out
}
