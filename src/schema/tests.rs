//! Checks that the generated accessors read real models the way the reference
//! interpreter does, and that the schema's defaults and opcode rules hold.

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What the reference interpreter (ai-edge-litert 2.3.0, BUILTIN_REF
/// resolver) reports for one model's main subgraph: `_get_ops_details()`
/// counted by op name, `len(get_tensor_details())`, and the single input and
/// output from `get_input_details()` / `get_output_details()`.
struct Reference {
    file: &'static str,
    ops: &'static [(BuiltinOperator, usize)],
    tensors: usize,
    input: (&'static [i32], TensorType),
    output: (&'static [i32], TensorType),
    signatures: usize,
}

const CIFAR_IN: &[i32] = &[1, 32, 32, 3];
const CIFAR_OUT: &[i32] = &[1, 10];
const IMAGENET_IN: &[i32] = &[1, 224, 224, 3];
const IMAGENET_OUT: &[i32] = &[1, 1000];

use BuiltinOperator as Op;

const CIFAR_FLOAT_OPS: &[(Op, usize)] = &[
    (Op::ADD, 9),
    (Op::AVERAGE_POOL_2D, 1),
    (Op::CONV_2D, 20),
    (Op::FULLY_CONNECTED, 1),
    (Op::MUL, 1),
    (Op::RESHAPE, 1),
    (Op::SOFTMAX, 1),
];
const RESNET224_OPS: &[(Op, usize)] = &[
    (Op::ADD, 8),
    (Op::CONV_2D, 20),
    (Op::FULLY_CONNECTED, 1),
    (Op::MAX_POOL_2D, 1),
    (Op::MEAN, 1),
    (Op::SOFTMAX, 1),
];
const MOBILENET_OPS: &[(Op, usize)] = &[
    (Op::ADD, 10),
    (Op::CONV_2D, 35),
    (Op::DEPTHWISE_CONV_2D, 17),
    (Op::FULLY_CONNECTED, 1),
    (Op::MEAN, 1),
    (Op::SOFTMAX, 1),
];

const REFERENCE: &[Reference] = &[
    Reference {
        file: "cifar10_resnet18_pruned.tflite",
        ops: CIFAR_FLOAT_OPS,
        tensors: 80,
        input: (CIFAR_IN, TensorType::FLOAT32),
        output: (CIFAR_OUT, TensorType::FLOAT32),
        signatures: 0,
    },
    Reference {
        file: "cifar10_resnet18_pruned_dynamic.tflite",
        ops: CIFAR_FLOAT_OPS,
        tensors: 80,
        input: (CIFAR_IN, TensorType::FLOAT32),
        output: (CIFAR_OUT, TensorType::FLOAT32),
        signatures: 0,
    },
    Reference {
        file: "cifar10_resnet18_pruned_float16.tflite",
        ops: &[
            (Op::ADD, 9),
            (Op::AVERAGE_POOL_2D, 1),
            (Op::CONV_2D, 20),
            (Op::DEQUANTIZE, 44),
            (Op::FULLY_CONNECTED, 1),
            (Op::MUL, 1),
            (Op::RESHAPE, 1),
            (Op::SOFTMAX, 1),
        ],
        tensors: 124,
        input: (CIFAR_IN, TensorType::FLOAT32),
        output: (CIFAR_OUT, TensorType::FLOAT32),
        signatures: 0,
    },
    Reference {
        file: "cifar10_resnet18_int8_all.tflite",
        ops: &[
            (Op::ADD, 9),
            (Op::AVERAGE_POOL_2D, 1),
            (Op::CONV_2D, 20),
            (Op::FULLY_CONNECTED, 1),
            (Op::MUL, 1),
            (Op::QUANTIZE, 2),
            (Op::RESHAPE, 1),
            (Op::SOFTMAX, 1),
        ],
        tensors: 82,
        input: (CIFAR_IN, TensorType::UINT8),
        output: (CIFAR_OUT, TensorType::UINT8),
        signatures: 0,
    },
    Reference {
        file: "cifar10_resnet18_int8_notall.tflite",
        ops: &[
            (Op::ADD, 9),
            (Op::AVERAGE_POOL_2D, 1),
            (Op::CONV_2D, 20),
            (Op::DEQUANTIZE, 1),
            (Op::FULLY_CONNECTED, 1),
            (Op::MUL, 1),
            (Op::QUANTIZE, 1),
            (Op::RESHAPE, 1),
            (Op::SOFTMAX, 1),
        ],
        tensors: 82,
        input: (CIFAR_IN, TensorType::FLOAT32),
        output: (CIFAR_OUT, TensorType::FLOAT32),
        signatures: 0,
    },
    Reference {
        file: "resnet18_224_f32.tflite",
        ops: RESNET224_OPS,
        tensors: 75,
        input: (IMAGENET_IN, TensorType::FLOAT32),
        output: (IMAGENET_OUT, TensorType::FLOAT32),
        signatures: 1,
    },
    Reference {
        file: "resnet18_224_dynamic.tflite",
        ops: RESNET224_OPS,
        tensors: 75,
        input: (IMAGENET_IN, TensorType::FLOAT32),
        output: (IMAGENET_OUT, TensorType::FLOAT32),
        signatures: 1,
    },
    Reference {
        file: "resnet18_224_fp16.tflite",
        ops: &[
            (Op::ADD, 8),
            (Op::CONV_2D, 20),
            (Op::DEQUANTIZE, 41),
            (Op::FULLY_CONNECTED, 1),
            (Op::MAX_POOL_2D, 1),
            (Op::MEAN, 1),
            (Op::SOFTMAX, 1),
        ],
        tensors: 116,
        input: (IMAGENET_IN, TensorType::FLOAT32),
        output: (IMAGENET_OUT, TensorType::FLOAT32),
        signatures: 1,
    },
    Reference {
        file: "resnet18_224_int8.tflite",
        ops: RESNET224_OPS,
        tensors: 75,
        input: (IMAGENET_IN, TensorType::INT8),
        output: (IMAGENET_OUT, TensorType::INT8),
        signatures: 1,
    },
    Reference {
        file: "mobilenet_v2_224_f32.tflite",
        ops: MOBILENET_OPS,
        tensors: 172,
        input: (IMAGENET_IN, TensorType::FLOAT32),
        output: (IMAGENET_OUT, TensorType::FLOAT32),
        signatures: 1,
    },
    Reference {
        file: "mobilenet_v2_224_int8.tflite",
        ops: MOBILENET_OPS,
        tensors: 172,
        input: (IMAGENET_IN, TensorType::INT8),
        output: (IMAGENET_OUT, TensorType::INT8),
        signatures: 1,
    },
];

/// The shared model folders, relative to the crate root.
fn model_dirs() -> [PathBuf; 2] {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models");
    [shared.join("seed"), shared.join("bench")]
}

/// All `.tflite` files in `dir`, sorted, or `None` if the folder is missing.
fn tflite_files(dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "tflite"))
        .collect();
    files.sort();
    Some(files)
}

/// Structural invariants every well-formed model satisfies, independent of
/// what the model computes. Returns the main subgraph's op histogram.
fn check_structure(name: &str, model: &Model<'_>) -> BTreeMap<i32, usize> {
    assert_eq!(model.version(), 3, "{name}: schema version");
    let codes = model.operator_codes().expect("operator_codes present");
    let subgraphs = model.subgraphs().expect("subgraphs present");
    assert!(!subgraphs.is_empty(), "{name}: no subgraphs");
    let buffers = model.buffers().expect("buffers present");
    assert!(!buffers.is_empty(), "{name}: buffer 0 must exist");

    for code in codes.iter() {
        let op = builtin_code(&code);
        assert!(
            op.variant_name().is_some(),
            "{name}: opcode {} is not in the schema",
            op.0
        );
    }

    for subgraph in subgraphs.iter() {
        let tensors = subgraph.tensors().expect("tensors present");
        let n_tensors = tensors.len();
        for tensor in tensors.iter() {
            assert!(
                (tensor.buffer() as usize) < buffers.len(),
                "{name}: tensor buffer index out of range"
            );
        }
        let in_range = |i: i32| usize::try_from(i).is_ok_and(|i| i < n_tensors);
        for op in subgraph.operators().expect("operators present").iter() {
            assert!(
                (op.opcode_index() as usize) < codes.len(),
                "{name}: opcode index {} out of range",
                op.opcode_index()
            );
            // -1 marks an omitted optional input; outputs are never omitted.
            for i in op.inputs().expect("op inputs").iter() {
                assert!(i == -1 || in_range(i), "{name}: input tensor {i}");
            }
            for i in op.outputs().expect("op outputs").iter() {
                assert!(in_range(i), "{name}: output tensor {i}");
            }
        }
    }

    let main = subgraphs.get(0);
    let mut histogram = BTreeMap::new();
    for op in main.operators().expect("operators present").iter() {
        let code = codes.get(op.opcode_index() as usize);
        *histogram.entry(builtin_code(&code).0).or_insert(0) += 1;
    }
    histogram
}

fn check_against_reference(reference: &Reference, model: &Model<'_>, ops: &BTreeMap<i32, usize>) {
    let name = reference.file;
    let expected: BTreeMap<i32, usize> = reference.ops.iter().map(|&(op, n)| (op.0, n)).collect();
    assert_eq!(
        ops, &expected,
        "{name}: op histogram (keys are BuiltinOperator values)"
    );

    let main = model.subgraphs().expect("subgraphs").get(0);
    let tensors = main.tensors().expect("tensors");
    assert_eq!(tensors.len(), reference.tensors, "{name}: tensor count");

    let single = |indices: Option<flatbuffers::Vector<'_, i32>>| {
        let indices = indices.expect("io list present");
        assert_eq!(indices.len(), 1, "{name}: one input and one output");
        tensors.get(indices.get(0) as usize)
    };
    for (tensor, (shape, ty)) in [
        (single(main.inputs()), reference.input),
        (single(main.outputs()), reference.output),
    ] {
        let got: Vec<i32> = tensor.shape().expect("shape").iter().collect();
        assert_eq!(got, shape, "{name}: io shape");
        assert_eq!(tensor.type_(), ty, "{name}: io type");
    }

    let signatures = model.signature_defs().map_or(0, |s| s.len());
    assert_eq!(signatures, reference.signatures, "{name}: signature count");
}

#[test]
fn shared_models_parse_and_match_reference() {
    // Defaults would do for these models; spelled out so the limits a model
    // must respect are visible. The largest file is ~47 MB.
    let opts = flatbuffers::VerifierOptions {
        max_depth: 64,
        max_tables: 1_000_000,
        max_apparent_size: 1 << 31,
        ignore_missing_null_terminator: false,
    };
    let mut checked = Vec::new();
    for dir in model_dirs() {
        let Some(files) = tflite_files(&dir) else {
            eprintln!("skipping {}: folder not found", dir.display());
            continue;
        };
        for path in files {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).expect("readable model");
            assert!(model_buffer_has_identifier(&bytes), "{name}: identifier");
            let model = root_as_model_with_opts(&opts, &bytes)
                .unwrap_or_else(|e| panic!("{name}: verification failed: {e}"));
            let ops = check_structure(&name, &model);
            match REFERENCE.iter().find(|r| r.file == name) {
                Some(reference) => check_against_reference(reference, &model, &ops),
                None => eprintln!("{name}: parsed; no reference data to compare"),
            }
            checked.push(name);
        }
    }
    if checked.is_empty() {
        eprintln!("no shared models found; nothing checked");
    } else if model_dirs().iter().all(|d| d.is_dir()) {
        // Guards against a silent pass if a reference model is renamed.
        for reference in REFERENCE {
            assert!(
                checked.iter().any(|c| c == reference.file),
                "{} missing",
                reference.file
            );
        }
    }
}

#[test]
fn seed_float_model_has_expected_op_kinds() {
    // The set comes from the reference interpreter's `_get_ops_details()`:
    // the seed float model pools with AVERAGE_POOL_2D + RESHAPE, not MEAN.
    let path = model_dirs()[0].join("cifar10_resnet18_pruned.tflite");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("skipping: {} not found", path.display());
        return;
    };
    let model = root_as_model(&bytes).expect("valid model");
    let kinds: BTreeSet<&str> = check_structure("seed float", &model)
        .keys()
        .map(|&code| BuiltinOperator(code).variant_name().expect("known op"))
        .collect();
    let expected: BTreeSet<&str> = [
        "ADD",
        "AVERAGE_POOL_2D",
        "CONV_2D",
        "FULLY_CONNECTED",
        "MUL",
        "RESHAPE",
        "SOFTMAX",
    ]
    .into_iter()
    .collect();
    assert_eq!(kinds, expected);
}

#[test]
fn damaged_models_are_rejected_not_trusted() {
    let path = model_dirs()[0].join("cifar10_resnet18_pruned.tflite");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("skipping: {} not found", path.display());
        return;
    };
    // Cut inside the flatbuffer: offsets now point past the end.
    for len in [0, 3, 8, 64, bytes.len() / 2] {
        assert!(
            root_as_model(&bytes[..len]).is_err(),
            "accepted {len} bytes"
        );
    }
    // A root offset pointing outside the buffer.
    let mut bad_root = bytes.clone();
    bad_root[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(root_as_model(&bad_root).is_err());
}

/// Builds a one-subgraph model whose operator codes are `codes`, given as
/// (deprecated_builtin_code, builtin_code) pairs.
fn model_with_codes(codes: &[(i8, BuiltinOperator)]) -> Vec<u8> {
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let codes: Vec<_> = codes
        .iter()
        .map(|&(narrow, wide)| {
            OperatorCode::create(
                &mut fbb,
                &OperatorCodeArgs {
                    deprecated_builtin_code: narrow,
                    builtin_code: wide,
                    ..Default::default()
                },
            )
        })
        .collect();
    let codes = fbb.create_vector(&codes);
    let subgraph = SubGraph::create(&mut fbb, &SubGraphArgs::default());
    let subgraphs = fbb.create_vector(&[subgraph]);
    let empty = Buffer::create(&mut fbb, &BufferArgs::default());
    let buffers = fbb.create_vector(&[empty]);
    let model = Model::create(
        &mut fbb,
        &ModelArgs {
            version: 3,
            operator_codes: Some(codes),
            subgraphs: Some(subgraphs),
            buffers: Some(buffers),
            ..Default::default()
        },
    );
    finish_model_buffer(&mut fbb, model);
    fbb.finished_data().to_vec()
}

#[test]
fn effective_opcode_is_the_larger_of_the_two_fields() {
    let placeholder = Op::PLACEHOLDER_FOR_GREATER_OP_CODES.0 as i8;
    let bytes = model_with_codes(&[
        // Old writer: only the byte is set.
        (3, Op::ADD),
        // New writer, small code: both fields agree.
        (9, Op::FULLY_CONNECTED),
        // New writer, code above 126: the byte holds the placeholder.
        (placeholder, Op::CUMSUM),
        (placeholder, Op::STABLEHLO_CASE),
    ]);
    let model = root_as_model(&bytes).expect("valid model");
    assert!(model_buffer_has_identifier(&bytes));
    let got: Vec<Op> = model
        .operator_codes()
        .expect("codes")
        .iter()
        .map(|c| builtin_code(&c))
        .collect();
    assert_eq!(
        got,
        [
            Op::CONV_2D,
            Op::FULLY_CONNECTED,
            Op::CUMSUM,
            Op::STABLEHLO_CASE
        ]
    );
    // Hand-checked numbers from the format: the enum is append-only.
    assert_eq!(Op::CUMSUM.0, 128);
    assert_eq!(Op::STABLEHLO_CASE.0, 209);
}

#[test]
fn absent_fields_read_as_schema_defaults() {
    // An empty table stores no fields, so every accessor returns the default
    // declared in tflite.fbs. These defaults are part of the wire format:
    // writers omit fields equal to them.
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let conv = Conv2DOptions::create(&mut fbb, &Conv2DOptionsArgs::default());
    fbb.finish_minimal(conv);
    let conv = flatbuffers::root::<Conv2DOptions>(fbb.finished_data()).expect("valid table");
    assert_eq!(conv.padding(), Padding::SAME);
    assert_eq!((conv.stride_w(), conv.stride_h()), (0, 0));
    assert_eq!((conv.dilation_w_factor(), conv.dilation_h_factor()), (1, 1));
    assert_eq!(
        conv.fused_activation_function(),
        ActivationFunctionType::NONE
    );
    assert_eq!(conv.quantized_bias_type(), TensorType::FLOAT32);

    let bytes = model_with_codes(&[(0, Op::ADD)]);
    let model = root_as_model(&bytes).expect("valid model");
    let code = model.operator_codes().expect("codes").get(0);
    assert_eq!(code.version(), 1);
    let subgraph = model.subgraphs().expect("subgraphs").get(0);
    assert_eq!(subgraph.debug_metadata_index(), -1);

    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let add = AddOptions::create(&mut fbb, &AddOptionsArgs::default());
    fbb.finish_minimal(add);
    let add = flatbuffers::root::<AddOptions>(fbb.finished_data()).expect("valid table");
    assert!(add.pot_scale_int16());

    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let lstm = BidirectionalSequenceLSTMOptions::create(
        &mut fbb,
        &BidirectionalSequenceLSTMOptionsArgs::default(),
    );
    fbb.finish_minimal(lstm);
    let lstm = flatbuffers::root::<BidirectionalSequenceLSTMOptions>(fbb.finished_data())
        .expect("valid table");
    assert!(lstm.time_major());
}
