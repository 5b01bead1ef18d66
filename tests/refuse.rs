//! Unsupported operators are refused when the interpreter is built, all of them at once.

mod common;

use common::builder::{ModelSpec, OpSpec, OptionsSpec, TensorSpec};
use ferrolite::{Error, Interpreter, Model, Options};

#[test]
fn every_unsupported_node_is_named() {
    // ADD, then an operator code newer than any schema, then another unknown one.
    let mut spec = ModelSpec::add_model();
    spec.opcodes.push(250);
    spec.opcodes.push(251);
    spec.tensors.push(TensorSpec::f32("mid1", &[1, 4], 0));
    spec.tensors.push(TensorSpec::f32("mid2", &[1, 4], 0));
    spec.ops.push(OpSpec {
        opcode_index: 1,
        inputs: vec![2],
        outputs: vec![3],
        options: OptionsSpec::None,
    });
    spec.ops.push(OpSpec {
        opcode_index: 2,
        inputs: vec![3],
        outputs: vec![4],
        options: OptionsSpec::None,
    });
    spec.outputs = vec![4];
    let model = Model::from_vec(spec.build()).expect("structurally valid");
    let err = Interpreter::new(model, Options::default()).expect_err("unknown ops accepted");
    match &err {
        Error::UnsupportedOps(list) => assert_eq!(list.len(), 2, "{err}"),
        other => panic!("expected a list of unsupported nodes, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("op 1 (BUILTIN_250)") && msg.contains("op 2 (BUILTIN_251)"),
        "{msg}"
    );

    // The per-node check used by `inspect` agrees.
    let model = Model::from_vec(spec.build()).unwrap();
    let per_node = Interpreter::check_support(&model);
    assert!(per_node[0].is_ok() && per_node[1].is_err() && per_node[2].is_err());
}
