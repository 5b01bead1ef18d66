//! Regression tests for problems found by fuzzing (cargo-fuzz targets in `fuzz/`) and by the
//! CLI mutation harness (`tools/mutate_run.py`). Each test names the target that found it.

#[path = "../fuzz/src/desc.rs"]
#[allow(dead_code)]
mod desc;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use desc::{BufferDesc, ModelDesc, OpDesc, OpcodeDesc, OptionsDesc, SubgraphDesc, TensorDesc};
use ferrolite::schema as fb;
use ferrolite::{Error, Interpreter, Limits, Model, Options};

/// Counts the bytes live on threads that asked to be tracked, and their peak, so that a test
/// can bound the memory a call uses while other tests run on other threads.
struct Tracking;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TRACKED: Cell<bool> = const { Cell::new(false) };
}

fn tracked() -> bool {
    TRACKED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if tracked() {
            let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(live, Ordering::SeqCst);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if tracked() {
            LIVE.fetch_sub(
                layout.size().min(LIVE.load(Ordering::SeqCst)),
                Ordering::SeqCst,
            );
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// The peak of bytes allocated (and not yet freed) on this thread while `f` runs.
fn peak_bytes<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LIVE.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    TRACKED.with(|t| t.set(true));
    let r = f();
    TRACKED.with(|t| t.set(false));
    (r, PEAK.load(Ordering::SeqCst))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32t(name: &str, shape: &[i32], buffer: u32) -> TensorDesc {
    TensorDesc {
        name: name.into(),
        shape: shape.to_vec(),
        dtype: fb::TensorType::FLOAT32.0,
        buffer,
        quant: None,
        is_variable: false,
        shape_signature: None,
    }
}

fn buffer(data: Vec<u8>) -> BufferDesc {
    BufferDesc {
        data,
        offset: 0,
        size: 0,
    }
}

/// `out = x * c` with x [2,3] and a constant c [3] whose buffer is `c_data`.
fn mul_model(c_data: Vec<u8>) -> ModelDesc {
    ModelDesc {
        version: 3,
        opcodes: vec![OpcodeDesc {
            deprecated_builtin_code: fb::BuiltinOperator::MUL.0 as i8,
            builtin_code: fb::BuiltinOperator::MUL.0,
            custom_code: None,
            version: 1,
        }],
        buffers: vec![buffer(Vec::new()), buffer(c_data)],
        subgraphs: vec![SubgraphDesc {
            tensors: vec![
                f32t("x", &[2, 3], 0),
                f32t("c", &[3], 1),
                f32t("out", &[2, 3], 0),
            ],
            inputs: vec![0],
            outputs: vec![2],
            ops: vec![OpDesc {
                opcode_index: 0,
                inputs: vec![0, 1],
                outputs: vec![2],
                intermediates: Vec::new(),
                options: OptionsDesc::Mul { activation: 0 },
                custom_options: None,
            }],
            name: String::new(),
        }],
        signatures: Vec::new(),
        description: String::new(),
    }
}

/// Found by `mutate`: a constant whose buffer is longer than its shape needs (a tensor's buffer
/// index edited to point at a bigger buffer) reached the broadcast kernel as a longer slice
/// than its plan expected. The tensor's data is now cut to its own byte size at load.
#[test]
fn constant_buffer_longer_than_its_tensor() {
    let mut c = vec![2.0f32, 3.0, 4.0];
    c.extend([100.0f32; 21]); // 24 floats in the buffer, 3 in the tensor
    let model = Model::from_vec(mul_model(f32_bytes(&c)).encode()).unwrap();
    assert_eq!(model.tensor_data(0, 1).map(<[u8]>::len), Some(12));
    let mut interp = Interpreter::new(model, Options::default()).unwrap();
    interp
        .input_mut::<f32>(0)
        .unwrap()
        .copy_from_slice(&[1.0, 1.0, 1.0, 0.5, -1.0, 2.0]);
    interp.invoke().unwrap();
    assert_eq!(
        interp.output::<f32>(0).unwrap(),
        &[2.0, 3.0, 4.0, 1.0, -3.0, 8.0]
    );
}

/// A model whose subgraph lists the same tensor table `copies` times; that tensor carries a
/// per-axis quantization of `channels` scales. The file is small, but reading it naively
/// copies the scales once per alias.
fn aliased_tensors(copies: usize, channels: usize) -> Vec<u8> {
    let mut b = flatbuffers::FlatBufferBuilder::new();
    let scale = b.create_vector(&vec![0.5f32; channels]);
    let zero_point = b.create_vector(&vec![0i64; channels]);
    let quantization = fb::QuantizationParameters::create(
        &mut b,
        &fb::QuantizationParametersArgs {
            scale: Some(scale),
            zero_point: Some(zero_point),
            quantized_dimension: 0,
            ..Default::default()
        },
    );
    let shape = b.create_vector(&[channels as i32]);
    let name = b.create_string("aliased");
    let tensor = fb::Tensor::create(
        &mut b,
        &fb::TensorArgs {
            shape: Some(shape),
            type_: fb::TensorType::INT8,
            name: Some(name),
            quantization: Some(quantization),
            ..Default::default()
        },
    );
    let tensors = b.create_vector(&vec![tensor; copies]);
    let io = b.create_vector::<i32>(&[]);
    let sg = fb::SubGraph::create(
        &mut b,
        &fb::SubGraphArgs {
            tensors: Some(tensors),
            inputs: Some(io),
            outputs: Some(io),
            ..Default::default()
        },
    );
    let subgraphs = b.create_vector(&[sg]);
    let empty = fb::Buffer::create(&mut b, &fb::BufferArgs::default());
    let buffers = b.create_vector(&[empty]);
    let model = fb::Model::create(
        &mut b,
        &fb::ModelArgs {
            version: 3,
            subgraphs: Some(subgraphs),
            buffers: Some(buffers),
            ..Default::default()
        },
    );
    fb::finish_model_buffer(&mut b, model);
    b.finished_data().to_vec()
}

/// Found in the validation audit: the verifier's visited-bytes budget was unbounded, so a
/// file of 200 KB whose 50,000 tensor entries alias one tensor with 4,000 scales (48 KB of
/// quantization each) made loading allocate about 2.4 GB. The budget now scales with the file.
#[test]
fn aliased_offsets_do_not_amplify_memory() {
    let bytes = aliased_tensors(50_000, 4_000);
    assert!(bytes.len() < 300_000, "{}", bytes.len());
    match Model::from_vec(bytes) {
        Err(Error::Flatbuffer(msg)) => assert!(msg.to_lowercase().contains("apparent"), "{msg}"),
        other => panic!("expected the verifier to refuse, got {other:?}"),
    }
    // A handful of aliases is within the budget and loads (each tensor is its own copy).
    let model = Model::from_vec(aliased_tensors(8, 4_000)).unwrap();
    assert_eq!(model.subgraphs()[0].tensors.len(), 8);
    // And the factor is a limit the caller can loosen.
    let loose = Limits {
        max_flatbuffer_expansion: 1_000,
        ..Limits::default()
    };
    assert!(Model::from_vec_with_limits(aliased_tensors(200, 4_000), &loose).is_ok());
}

/// Real files are visited about once by the verifier: every fixture loads under the default
/// budget (this is what the factor of 4 was chosen against).
#[test]
fn fixtures_fit_the_verifier_budget() {
    let strict = Limits {
        max_flatbuffer_expansion: 2,
        ..Limits::default()
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "tflite") {
            Model::from_file_with_limits(&p, &strict)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n > 0);
}

/// A model of one builtin operator `op` with `options`, from tensor 0 (the input) to tensor 1
/// (the output), every tensor on the empty buffer 0.
fn one_op_model(
    op: fb::BuiltinOperator,
    x: TensorDesc,
    y: TensorDesc,
    options: OptionsDesc,
) -> ModelDesc {
    ModelDesc {
        version: 3,
        opcodes: vec![OpcodeDesc {
            deprecated_builtin_code: op.0 as i8,
            builtin_code: op.0,
            custom_code: None,
            version: 1,
        }],
        buffers: vec![buffer(Vec::new())],
        subgraphs: vec![SubgraphDesc {
            tensors: vec![x, y],
            inputs: vec![0],
            outputs: vec![1],
            ops: vec![OpDesc {
                opcode_index: 0,
                inputs: vec![0],
                outputs: vec![1],
                intermediates: Vec::new(),
                options,
                custom_options: None,
            }],
            name: String::new(),
        }],
        signatures: Vec::new(),
        description: String::new(),
    }
}

/// Found by `mutate`: SOFTMAX of a tensor whose last dimension is 0 handed the kernel a row
/// length of 0, which its precondition forbids (a debug assertion fired; release builds
/// returned early). An empty tensor now runs as rows of length 1 over zero elements.
#[test]
fn softmax_with_an_empty_last_dimension() {
    let model = one_op_model(
        fb::BuiltinOperator::SOFTMAX,
        f32t("x", &[1, 3, 2, 0], 0),
        f32t("y", &[1, 3, 2, 0], 0),
        OptionsDesc::Softmax { beta: 1.0 },
    );
    let model = Model::from_vec(model.encode()).unwrap();
    let mut interp = Interpreter::new(model, Options::default()).unwrap();
    interp.invoke().unwrap();
    assert!(interp.output::<f32>(0).unwrap().is_empty());
}

/// DEQUANTIZE of int8 `q` (constant when `constant`) with one scale and zero point.
fn dequantize_model(q: &[i8], scale: f32, zero_point: i64, constant: bool) -> ModelDesc {
    let quant = Some(desc::Quant {
        scale: vec![scale],
        zero_point: vec![zero_point],
        quantized_dimension: 0,
    });
    let input = TensorDesc {
        name: "q".into(),
        shape: vec![q.len() as i32],
        dtype: fb::TensorType::INT8.0,
        buffer: if constant { 1 } else { 0 },
        quant,
        is_variable: false,
        shape_signature: None,
    };
    ModelDesc {
        version: 3,
        opcodes: vec![OpcodeDesc {
            deprecated_builtin_code: fb::BuiltinOperator::DEQUANTIZE.0 as i8,
            builtin_code: fb::BuiltinOperator::DEQUANTIZE.0,
            custom_code: None,
            version: 1,
        }],
        buffers: vec![
            buffer(Vec::new()),
            buffer(q.iter().map(|&v| v as u8).collect()),
        ],
        subgraphs: vec![SubgraphDesc {
            tensors: vec![input, f32t("out", &[q.len() as i32], 0)],
            inputs: if constant { vec![] } else { vec![0] },
            outputs: vec![1],
            ops: vec![OpDesc {
                opcode_index: 0,
                inputs: vec![0],
                outputs: vec![1],
                intermediates: Vec::new(),
                options: OptionsDesc::None,
                custom_options: None,
            }],
            name: String::new(),
        }],
        signatures: Vec::new(),
        description: String::new(),
    }
}

/// Found by `mutate`: DEQUANTIZE subtracted a zero point read from the file (here i64::MAX and
/// i64::MIN) from the value in i64 and overflowed. The difference now saturates; zero points
/// that fit are unaffected.
#[test]
fn dequantize_with_extreme_zero_points() {
    let q = [1i8, -2, 0, 127];
    for constant in [true, false] {
        let run = |zero_point: i64| -> Vec<f32> {
            let m = dequantize_model(&q, 0.5, zero_point, constant);
            let mut interp =
                Interpreter::new(Model::from_vec(m.encode()).unwrap(), Options::default()).unwrap();
            if !constant {
                let input = interp.input_mut::<i8>(0).unwrap();
                input.copy_from_slice(&q);
            }
            interp.invoke().unwrap();
            interp.output::<f32>(0).unwrap().to_vec()
        };
        // Hand-derived: 0.5 · (q − zp).
        assert_eq!(run(-3), [2.0, 0.5, 1.5, 65.0]);
        // (1 − i64::MIN) overflows and saturates to i64::MAX; (0 − i64::MAX) fits exactly.
        let big = 0.5 * i64::MAX as f64;
        assert_eq!(run(i64::MIN)[0], big as f32);
        assert_eq!(run(i64::MAX)[2], -big as f32);
    }
}

/// Found by `mutate`: three MAX_POOL_2D nodes writing one variable tensor (variables may be
/// written more than once) computed different output shapes; the last one set the variable's
/// size, so the first node's kernel got an output slice of 100 floats for 40 results. A
/// variable now keeps its recorded shape, and a node computing another shape is refused.
#[test]
fn variable_written_with_another_shape() {
    let pool = |stride_w: i32| OpDesc {
        opcode_index: 0,
        inputs: vec![0],
        outputs: vec![1],
        intermediates: Vec::new(),
        options: OptionsDesc::Pool2D {
            padding: 1, // VALID
            stride_w,
            stride_h: 2,
            filter_w: 3,
            filter_h: 3,
            activation: 0,
        },
        custom_options: None,
    };
    let model = |strides: &[i32]| {
        let mut state = f32t("state", &[1, 4, 5, 5], 0);
        state.is_variable = true;
        ModelDesc {
            version: 3,
            opcodes: vec![OpcodeDesc {
                deprecated_builtin_code: fb::BuiltinOperator::MAX_POOL_2D.0 as i8,
                builtin_code: fb::BuiltinOperator::MAX_POOL_2D.0,
                custom_code: None,
                version: 1,
            }],
            buffers: vec![buffer(Vec::new())],
            subgraphs: vec![SubgraphDesc {
                tensors: vec![f32t("x", &[1, 9, 11, 5], 0), state],
                inputs: vec![0],
                outputs: vec![1],
                ops: strides.iter().map(|&s| pool(s)).collect(),
                name: String::new(),
            }],
            signatures: Vec::new(),
            description: String::new(),
        }
        .encode()
    };
    // Stride 2 gives the recorded [1,4,5,5]; stride 7 gives [1,4,2,5].
    let ok = Model::from_vec(model(&[2, 2])).unwrap();
    let mut interp = Interpreter::new(ok, Options::default()).unwrap();
    interp.invoke().unwrap();
    assert_eq!(interp.output::<f32>(0).unwrap().len(), 100);

    let bad = Model::from_vec(model(&[7, 2, 2])).unwrap();
    let e = Interpreter::new(bad, Options::default()).expect_err("variable reshaped");
    let msg = e.to_string();
    assert!(
        msg.contains("op 0 (MAX_POOL_2D)") && msg.contains("is a variable of shape"),
        "{msg}"
    );
}

fn fixture(name: &str) -> ModelDesc {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/models")
        .join(format!("{name}.tflite"));
    ModelDesc::decode(&std::fs::read(&path).unwrap()).unwrap()
}

/// Found by `prepare` and `invoke`: TILE of an int64 [50331650, 0] tensor and MIRROR_PAD of a
/// float [0, 1593835520, 7, 3] one. Neither output has an element, so no element limit bounds
/// the other dimensions, and the copy plan built one table entry (16 bytes) per position of
/// each outer axis: 0.8 and 25 GB. A plan with no output element now holds no table.
#[test]
fn empty_outputs_with_huge_dimensions() {
    let mut tile = fixture("tile_f32");
    tile.subgraphs[0].tensors[0].shape = vec![1 << 28, 0, 4];
    let mut pad = fixture("mirror_pad_reflect_f32");
    pad.subgraphs[0].tensors[0].shape = vec![0, 1 << 28, 7, 3];
    for m in [tile, pad] {
        let ((), peak) = peak_bytes(|| {
            let model = Model::from_vec(m.encode()).unwrap();
            match Interpreter::new(model, Options::default()) {
                Ok(mut interp) => {
                    interp.invoke().unwrap();
                    assert!(interp.output_bytes(0).unwrap().is_empty());
                }
                Err(e) => assert!(e.to_string().contains("op 0"), "{e}"),
            }
        });
        assert!(peak < 64 << 20, "peak {peak} bytes");
    }
}

/// Found in the validation audit: a constant shared by many nodes is packed (copied) by each
/// node's preparation, so 200 FULLY_CONNECTED nodes reading one 256 KB weight tensor held
/// 51 MB before the interpreter compared its total with the limit. Preparation now counts
/// what prepared nodes hold and stops at the limit.
#[test]
fn shared_weights_are_counted_while_preparing() {
    let n = 200;
    let mut tensors = vec![f32t("x", &[1, 256], 0), f32t("w", &[256, 256], 1)];
    let mut ops = Vec::new();
    for i in 0..n {
        tensors.push(f32t(&format!("t{i}"), &[1, 256], 0));
        ops.push(OpDesc {
            opcode_index: 0,
            inputs: vec![if i == 0 { 0 } else { i + 1 }, 1, -1],
            outputs: vec![i + 2],
            intermediates: Vec::new(),
            options: OptionsDesc::FullyConnected {
                activation: 0,
                weights_format: 0,
                keep_num_dims: false,
                asymmetric: false,
            },
            custom_options: None,
        });
    }
    let model = ModelDesc {
        version: 3,
        opcodes: vec![OpcodeDesc {
            deprecated_builtin_code: fb::BuiltinOperator::FULLY_CONNECTED.0 as i8,
            builtin_code: fb::BuiltinOperator::FULLY_CONNECTED.0,
            custom_code: None,
            version: 1,
        }],
        buffers: vec![buffer(Vec::new()), buffer(f32_bytes(&[0.01; 256 * 256]))],
        subgraphs: vec![SubgraphDesc {
            tensors,
            inputs: vec![0],
            outputs: vec![n + 1],
            ops,
            name: String::new(),
        }],
        signatures: Vec::new(),
        description: String::new(),
    }
    .encode();
    let limits = Limits {
        max_memory_bytes: 4 << 20,
        ..Limits::default()
    };
    let (r, peak) = peak_bytes(|| {
        let model = Model::from_vec_with_limits(model.clone(), &limits).unwrap();
        Interpreter::new(model, Options::default().limits(limits.clone()))
    });
    match r {
        Err(Error::Limit(msg)) => assert!(msg.contains("over the limit"), "{msg}"),
        other => panic!("expected Error::Limit, got {other:?}"),
    }
    // The file (256 KB) is held twice (the test's copy and the model's), plus at most one
    // node's packing over the 4 MB limit; 51 MB if every node were packed first.
    assert!(peak < 12 << 20, "peak {peak} bytes");

    // Within a larger limit the same model prepares and runs.
    let model = Model::from_vec(model).unwrap();
    let mut interp = Interpreter::new(model, Options::default()).unwrap();
    interp.invoke().unwrap();
}

/// Model bytes of a committed fuzz seed: `invoke` seeds are `[u32 LE length][model][input]`.
fn seed_model(path: &str, framed: bool) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(root.join(path)).unwrap();
    if !framed {
        return bytes;
    }
    let n = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    bytes[4..4 + n.min(bytes.len() - 4)].to_vec()
}

/// invoke target: a TFLite_Detection_PostProcess node whose flexbuffer options hold an offset
/// past their end made the `flexbuffers` reader panic; the options are now bounds-checked first.
#[test]
fn detection_options_with_a_bad_flexbuffer_offset_are_refused() {
    let bytes = seed_model(
        "fuzz/corpus/seed/invoke/regress-detection-flexbuffer.bin",
        true,
    );
    let model = Model::from_vec(bytes).expect("the model itself parses");
    let Err(err) = Interpreter::new(model, Options::default()) else {
        panic!("refused")
    };
    assert!(err.to_string().contains("flexbuffer"), "{err}");
}

/// prepare target: a slice-like layout op whose outer axis has hundreds of millions of
/// positions asked for a 4 GB index table before any memory check; the table is now
/// measured against the memory limit first.
#[test]
fn huge_layout_index_tables_are_refused_before_allocation() {
    let bytes = seed_model("fuzz/corpus/seed/models/regress-layout-table.tflite", false);
    let (r, peak) = peak_bytes(|| {
        Model::from_vec(bytes).and_then(|m| Interpreter::new(m, Options::default()).map(|_| ()))
    });
    assert!(r.is_err(), "expected a refusal");
    assert!(peak < 256 << 20, "peak {peak} bytes");
}

/// Found by `mutate`: a pool whose filter is far larger than its input (here 1,258,291,166 ×
/// 737,013,229, SAME padding, stride 2) overflowed the float kernel's work estimate for
/// splitting over threads (output row × filter height × filter width), which panics where
/// overflow is checked. The estimate now saturates; every window is clipped to the input, so
/// each output is the pool of the whole image.
#[test]
fn pool_filter_far_larger_than_the_input() {
    let (h, w, c) = (9, 11, 5);
    let x: Vec<f32> = (0..h * w * c)
        .map(|i| ((i * 37) % 101) as f32 - 50.0)
        .collect();
    for (op, max) in [
        (fb::BuiltinOperator::MAX_POOL_2D, true),
        (fb::BuiltinOperator::AVERAGE_POOL_2D, false),
    ] {
        let model = one_op_model(
            op,
            f32t("x", &[1, h as i32, w as i32, c as i32], 0),
            f32t("y", &[1, 5, 6, c as i32], 0),
            OptionsDesc::Pool2D {
                padding: fb::Padding::SAME.0,
                stride_w: 2,
                stride_h: 2,
                filter_w: 737_013_229,
                filter_h: 1_258_291_166,
                activation: 0,
            },
        );
        let model = Model::from_vec(model.encode()).unwrap();
        let mut interp = Interpreter::new(model, Options::default()).unwrap();
        interp.input_mut::<f32>(0).unwrap().copy_from_slice(&x);
        interp.invoke().unwrap();
        // Every window covers the whole image: per channel, its maximum or its mean.
        let want: Vec<f32> = (0..c)
            .map(|ch| {
                let v = x.iter().skip(ch).step_by(c);
                if max {
                    v.fold(f32::MIN, |a, &b| a.max(b))
                } else {
                    v.sum::<f32>() / (h * w) as f32
                }
            })
            .collect();
        let out = interp.output::<f32>(0).unwrap();
        assert_eq!(out.len(), 5 * 6 * c);
        for px in out.chunks_exact(c) {
            for (got, want) in px.iter().zip(&want) {
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
        }
    }
}
