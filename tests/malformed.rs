//! Malformed models: each must be refused with its own specific error, never a panic.

mod common;

use common::builder::{ModelSpec, OpSpec, OptionsSpec, TensorSpec};
use ferrolite::{Error, Interpreter, Invalid, Model, Options};

fn load(bytes: Vec<u8>) -> Result<Model, Error> {
    Model::from_vec(bytes)
}

fn invalid_kind(bytes: Vec<u8>) -> Invalid {
    match load(bytes) {
        Ok(_) => panic!("model was accepted"),
        Err(e) => e
            .invalid_kind()
            .cloned()
            .unwrap_or_else(|| panic!("not a validation error: {e}")),
    }
}

#[test]
fn the_valid_base_model_loads_and_runs() {
    let model = load(ModelSpec::add_model().build()).expect("valid model");
    let mut interp = Interpreter::new(model, Options::default()).expect("prepares");
    interp
        .input_mut::<f32>(0)
        .unwrap()
        .copy_from_slice(&[10.0, 20.0, 30.0, 40.0]);
    interp.invoke().unwrap();
    assert_eq!(interp.output::<f32>(0).unwrap(), &[11.0, 22.0, 33.0, 44.0]);
}

#[test]
fn empty_file() {
    assert!(matches!(load(Vec::new()), Err(Error::Empty)));
}

#[test]
fn truncated_file() {
    let bytes = ModelSpec::add_model().build();
    for len in [4, 8, 16, bytes.len() / 2, bytes.len() - 1] {
        let err = load(bytes[..len].to_vec()).expect_err("truncated model accepted");
        assert!(
            matches!(err, Error::Flatbuffer(_) | Error::WrongIdentifier { .. }),
            "len {len}: {err}"
        );
    }
}

#[test]
fn wrong_identifier() {
    let mut bytes = ModelSpec::add_model().build();
    bytes[4..8].copy_from_slice(b"TFL2");
    match load(bytes) {
        Err(Error::WrongIdentifier { found }) => assert_eq!(found, "TFL2"),
        other => panic!("expected WrongIdentifier, got {other:?}"),
    }
}

#[test]
fn wrong_version() {
    let mut spec = ModelSpec::add_model();
    spec.version = 2;
    assert!(matches!(load(spec.build()), Err(Error::Version(2))));
}

#[test]
fn tensor_index_out_of_range() {
    let mut spec = ModelSpec::add_model();
    spec.ops[0].inputs[1] = 7;
    assert_eq!(
        invalid_kind(spec.build()),
        Invalid::TensorIndex { index: 7, count: 3 }
    );

    let mut spec = ModelSpec::add_model();
    spec.ops[0].inputs[0] = -2;
    assert_eq!(
        invalid_kind(spec.build()),
        Invalid::TensorIndex {
            index: -2,
            count: 3
        }
    );

    let mut spec = ModelSpec::add_model();
    spec.outputs[0] = 3;
    assert_eq!(
        invalid_kind(spec.build()),
        Invalid::TensorIndex { index: 3, count: 3 }
    );
}

#[test]
fn optional_index_only_for_inputs() {
    // −1 as an operator output is never valid.
    let mut spec = ModelSpec::add_model();
    spec.ops[0].outputs[0] = -1;
    assert_eq!(invalid_kind(spec.build()), Invalid::MissingTensor);

    // −1 as a required ADD input is refused by ADD's preparation, naming the op.
    let mut spec = ModelSpec::add_model();
    spec.ops[0].inputs[1] = -1;
    let model = load(spec.build()).expect("loads: optional inputs are checked per op");
    let err = Interpreter::new(model, Options::default()).expect_err("missing input accepted");
    let msg = err.to_string();
    assert!(
        msg.contains("op 0 (ADD)") && msg.contains("input 1"),
        "{msg}"
    );
}

#[test]
fn buffer_index_out_of_range() {
    let mut spec = ModelSpec::add_model();
    spec.tensors[1].buffer = 9;
    assert_eq!(
        invalid_kind(spec.build()),
        Invalid::BufferIndex { index: 9, count: 2 }
    );
}

#[test]
fn opcode_index_out_of_range() {
    let mut spec = ModelSpec::add_model();
    spec.ops[0].opcode_index = 5;
    assert_eq!(
        invalid_kind(spec.build()),
        Invalid::OpcodeIndex { index: 5, count: 1 }
    );
}

#[test]
fn constant_buffer_too_small() {
    let mut spec = ModelSpec::add_model();
    spec.buffers[1].truncate(12);
    assert_eq!(
        invalid_kind(spec.build()),
        Invalid::BufferTooSmall { need: 16, have: 12 }
    );
}

#[test]
fn negative_dimension() {
    let mut spec = ModelSpec::add_model();
    spec.tensors[0].shape = vec![1, -4];
    assert_eq!(
        invalid_kind(spec.build()),
        Invalid::NegativeDimension {
            dim: -4,
            shape: vec![1, -4]
        }
    );
}

#[test]
fn huge_dimensions_overflow() {
    let mut spec = ModelSpec::add_model();
    let shape = vec![i32::MAX, i32::MAX, i32::MAX, i32::MAX];
    spec.tensors[2].shape = shape.clone();
    assert_eq!(invalid_kind(spec.build()), Invalid::ShapeOverflow { shape });
}

#[test]
fn input_used_before_produced() {
    // Two ADDs in the wrong order: the first reads what the second writes.
    let mut spec = ModelSpec::add_model();
    spec.tensors.push(TensorSpec::f32("mid", &[1, 4], 0));
    spec.ops = vec![
        OpSpec {
            opcode_index: 0,
            inputs: vec![3, 1],
            outputs: vec![2],
            options: OptionsSpec::Add {
                activation: ferrolite::schema::ActivationFunctionType::NONE,
            },
        },
        OpSpec {
            opcode_index: 0,
            inputs: vec![0, 1],
            outputs: vec![3],
            options: OptionsSpec::Add {
                activation: ferrolite::schema::ActivationFunctionType::NONE,
            },
        },
    ];
    match load(spec.build()) {
        Err(Error::Invalid {
            loc,
            kind: Invalid::UsedBeforeProduced,
        }) => {
            assert_eq!(loc.op.map(|o| o.0), Some(0));
            assert_eq!(loc.tensor.map(|t| t.0), Some(3));
        }
        other => panic!("expected UsedBeforeProduced, got {other:?}"),
    }
}

#[test]
fn op_reads_and_writes_the_same_tensor() {
    // Tensor 2 is a graph input (so reading it is legal) and also the ADD's output.
    let mut spec = ModelSpec::add_model();
    spec.inputs = vec![0, 2];
    spec.ops[0].inputs = vec![0, 2];
    match load(spec.build()) {
        Err(Error::Invalid {
            kind: Invalid::InputIsOutput,
            loc,
        }) => {
            assert_eq!(loc.tensor.map(|t| t.0), Some(2));
        }
        other => panic!("expected InputIsOutput, got {other:?}"),
    }
}

#[test]
fn output_written_twice() {
    let mut spec = ModelSpec::add_model();
    spec.ops.push(spec.ops[0].clone());
    assert_eq!(invalid_kind(spec.build()), Invalid::OutputAlreadyDefined);
}

#[test]
fn quantization_counts_must_match() {
    let mut spec = ModelSpec::add_model();
    spec.tensors[0].quant = Some((vec![0.5, 0.5], vec![0], 1));
    assert!(matches!(
        invalid_kind(spec.build()),
        Invalid::Quantization(_)
    ));

    let mut spec = ModelSpec::add_model();
    spec.tensors[0].quant = Some((vec![0.5, 0.5, 0.5], vec![0, 0, 0], 1));
    assert!(matches!(
        invalid_kind(spec.build()),
        Invalid::Quantization(_)
    ));

    let mut spec = ModelSpec::add_model();
    spec.tensors[0].quant = Some((vec![0.5, 0.5], vec![0, 0], 5));
    assert!(matches!(
        invalid_kind(spec.build()),
        Invalid::Quantization(_)
    ));
}

#[test]
fn every_prefix_and_byte_flip_is_handled() {
    // Not a specific error: only that nothing panics on any truncation or single-byte change.
    let bytes = ModelSpec::add_model().build();
    for len in 0..bytes.len() {
        let _ = load(bytes[..len].to_vec()).map(|m| Interpreter::new(m, Options::default()));
    }
    for i in 0..bytes.len() {
        for v in [0u8, 0xff, 0x80, 1] {
            let mut b = bytes.clone();
            b[i] = v;
            if let Ok(m) = load(b) {
                if let Ok(mut interp) = Interpreter::new(m, Options::default()) {
                    let _ = interp.invoke();
                }
            }
        }
    }
}
