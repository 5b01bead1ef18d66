//! One test per class of past TFLite vulnerability triggered by a malformed model (TFSA
//! advisories, CVE-2020-15208 onwards, and later reported overflow bugs). Each builds a small
//! model that carries the attack and checks that ferrolite refuses it with the specific error,
//! naming the operator and, where it matters, the tensor.
//!
//! Operators ferrolite does not implement (SEGMENT_SUM, STRIDED_SLICE, TILE, ...) must be
//! refused by name; when one of them gains a kernel, its test here must keep passing, which
//! means the kernel's preparation has to refuse the hostile parameters.

#[path = "../fuzz/src/desc.rs"]
#[allow(dead_code)]
mod desc;

use desc::{
    BufferDesc, ModelDesc, OpDesc, OpcodeDesc, OptionsDesc, Quant, SubgraphDesc, TensorDesc,
};
use ferrolite::schema::{BuiltinOperator as Op, TensorType};
use ferrolite::{Error, Interpreter, Invalid, Limits, Model, Options};

// ---------------------------------------------------------------------------------------------
// Model construction

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn tensor(name: &str, shape: &[i32], dtype: TensorType, buffer: u32) -> TensorDesc {
    TensorDesc {
        name: name.into(),
        shape: shape.to_vec(),
        dtype: dtype.0,
        buffer,
        quant: None,
        is_variable: false,
        shape_signature: None,
    }
}

fn f32t(name: &str, shape: &[i32], buffer: u32) -> TensorDesc {
    tensor(name, shape, TensorType::FLOAT32, buffer)
}

fn opcode(code: Op) -> OpcodeDesc {
    OpcodeDesc {
        deprecated_builtin_code: code.0.min(127) as i8,
        builtin_code: code.0,
        custom_code: None,
        version: 1,
    }
}

fn op(inputs: &[i32], outputs: &[i32], options: OptionsDesc) -> OpDesc {
    OpDesc {
        opcode_index: 0,
        inputs: inputs.to_vec(),
        outputs: outputs.to_vec(),
        intermediates: Vec::new(),
        options,
        custom_options: None,
    }
}

fn buffer(data: Vec<u8>) -> BufferDesc {
    BufferDesc {
        data,
        offset: 0,
        size: 0,
    }
}

/// A one-operator model: buffer 0 is the empty sentinel, `data[i]` becomes buffer `i + 1`.
fn single_op(
    code: Op,
    data: Vec<Vec<u8>>,
    tensors: Vec<TensorDesc>,
    graph_inputs: &[i32],
    graph_outputs: &[i32],
    node: OpDesc,
) -> ModelDesc {
    let mut buffers = vec![buffer(Vec::new())];
    buffers.extend(data.into_iter().map(buffer));
    ModelDesc {
        version: 3,
        opcodes: vec![opcode(code)],
        buffers,
        subgraphs: vec![SubgraphDesc {
            tensors,
            inputs: graph_inputs.to_vec(),
            outputs: graph_outputs.to_vec(),
            ops: vec![node],
            name: "main".into(),
        }],
        signatures: Vec::new(),
        description: "cve test".into(),
    }
}

fn conv_options(stride: i32, dilation: i32) -> OptionsDesc {
    OptionsDesc::Conv2D {
        padding: 0, // SAME
        stride_w: stride,
        stride_h: stride,
        activation: 0,
        dilation_w: dilation,
        dilation_h: dilation,
    }
}

/// CONV_2D: input [1,5,5,2] (t0), filter [3,3,3,2] (t1, buffer 1), bias [3] (t2, buffer 2),
/// output [1,5,5,3] (t3), SAME padding, stride 1.
fn conv_model() -> ModelDesc {
    single_op(
        Op::CONV_2D,
        vec![f32_bytes(&[0.1; 54]), f32_bytes(&[0.5; 3])],
        vec![
            f32t("input", &[1, 5, 5, 2], 0),
            f32t("filter", &[3, 3, 3, 2], 1),
            f32t("bias", &[3], 2),
            f32t("output", &[1, 5, 5, 3], 0),
        ],
        &[0],
        &[3],
        op(&[0, 1, 2], &[3], conv_options(1, 1)),
    )
}

/// DEPTHWISE_CONV_2D: input [1,5,5,2], filter [1,3,3,4] (multiplier 2), bias [4], output
/// [1,5,5,4].
fn depthwise_model() -> ModelDesc {
    single_op(
        Op::DEPTHWISE_CONV_2D,
        vec![f32_bytes(&[0.1; 36]), f32_bytes(&[0.5; 4])],
        vec![
            f32t("input", &[1, 5, 5, 2], 0),
            f32t("filter", &[1, 3, 3, 4], 1),
            f32t("bias", &[4], 2),
            f32t("output", &[1, 5, 5, 4], 0),
        ],
        &[0],
        &[3],
        op(
            &[0, 1, 2],
            &[3],
            OptionsDesc::Depthwise {
                padding: 0,
                stride_w: 1,
                stride_h: 1,
                depth_multiplier: 2,
                activation: 0,
                dilation_w: 1,
                dilation_h: 1,
            },
        ),
    )
}

/// FULLY_CONNECTED: input [2,4], weights [3,4] (buffer 1), bias [3] (buffer 2), output [2,3].
fn fc_model() -> ModelDesc {
    single_op(
        Op::FULLY_CONNECTED,
        vec![f32_bytes(&[0.25; 12]), f32_bytes(&[1.0; 3])],
        vec![
            f32t("input", &[2, 4], 0),
            f32t("weights", &[3, 4], 1),
            f32t("bias", &[3], 2),
            f32t("output", &[2, 3], 0),
        ],
        &[0],
        &[3],
        op(
            &[0, 1, 2],
            &[3],
            OptionsDesc::FullyConnected {
                activation: 0,
                weights_format: 0,
                keep_num_dims: false,
                asymmetric: false,
            },
        ),
    )
}

fn pool_options(filter: i32, stride: i32) -> OptionsDesc {
    OptionsDesc::Pool2D {
        padding: 1, // VALID
        stride_w: stride,
        stride_h: stride,
        filter_w: filter,
        filter_h: filter,
        activation: 0,
    }
}

/// MAX_POOL_2D or AVERAGE_POOL_2D: input [1,4,4,2], 2x2 window, stride 2, output [1,2,2,2].
fn pool_model(code: Op) -> ModelDesc {
    single_op(
        code,
        Vec::new(),
        vec![
            f32t("input", &[1, 4, 4, 2], 0),
            f32t("output", &[1, 2, 2, 2], 0),
        ],
        &[0],
        &[1],
        op(&[0], &[1], pool_options(2, 2)),
    )
}

/// MEAN over `axes` of an input [1,4,4,2] into an output of `out_shape`.
fn mean_model(axes: &[i32], out_shape: &[i32]) -> ModelDesc {
    single_op(
        Op::MEAN,
        vec![i32_bytes(axes)],
        vec![
            f32t("input", &[1, 4, 4, 2], 0),
            tensor("axes", &[axes.len() as i32], TensorType::INT32, 1),
            f32t("output", out_shape, 0),
        ],
        &[0],
        &[2],
        op(&[0, 1], &[2], OptionsDesc::Reducer { keep_dims: false }),
    )
}

/// RESHAPE of an input [2,3] to `target` (a constant int32 shape input).
fn reshape_model(target: &[i32], out_shape: &[i32]) -> ModelDesc {
    single_op(
        Op::RESHAPE,
        vec![i32_bytes(target)],
        vec![
            f32t("input", &[2, 3], 0),
            tensor("shape", &[target.len() as i32], TensorType::INT32, 1),
            f32t("output", out_shape, 0),
        ],
        &[0],
        &[2],
        op(&[0, 1], &[2], OptionsDesc::Reshape { new_shape: None }),
    )
}

/// ADD of two [1,4] inputs.
fn add_model() -> ModelDesc {
    single_op(
        Op::ADD,
        Vec::new(),
        vec![
            f32t("a", &[1, 4], 0),
            f32t("b", &[1, 4], 0),
            f32t("sum", &[1, 4], 0),
        ],
        &[0, 1],
        &[2],
        op(
            &[0, 1],
            &[2],
            OptionsDesc::Add {
                activation: 0,
                pot_scale_int16: false,
            },
        ),
    )
}

/// DEQUANTIZE of a graph input int8 [4] with one scale.
fn dequantize_model() -> ModelDesc {
    let mut input = tensor("q", &[4], TensorType::INT8, 0);
    input.quant = Some(Quant {
        scale: vec![0.5],
        zero_point: vec![1],
        quantized_dimension: 0,
    });
    single_op(
        Op::DEQUANTIZE,
        Vec::new(),
        vec![input, f32t("out", &[4], 0)],
        &[0],
        &[1],
        op(&[0], &[1], OptionsDesc::None),
    )
}

/// A per-channel int8 CONV_2D like the converter writes (input [1,4,4,2] s=0.5 zp=-1, filter
/// [2,3,3,2] with two scales along dimension 0, int32 bias, output [1,4,4,2]).
fn int8_conv_model() -> ModelDesc {
    let q = |scale: Vec<f32>, zp: Vec<i64>, axis| {
        Some(Quant {
            scale,
            zero_point: zp,
            quantized_dimension: axis,
        })
    };
    let mut input = tensor("input", &[1, 4, 4, 2], TensorType::INT8, 0);
    input.quant = q(vec![0.5], vec![-1], 0);
    let mut filter = tensor("filter", &[2, 3, 3, 2], TensorType::INT8, 1);
    filter.quant = q(vec![0.01, 0.02], vec![0, 0], 0);
    let mut bias = tensor("bias", &[2], TensorType::INT32, 2);
    bias.quant = q(vec![0.005, 0.01], vec![0, 0], 0);
    let mut output = tensor("output", &[1, 4, 4, 2], TensorType::INT8, 0);
    output.quant = q(vec![0.25], vec![3], 0);
    single_op(
        Op::CONV_2D,
        vec![vec![3u8; 36], i32_bytes(&[10, -10])],
        vec![input, filter, bias, output],
        &[0],
        &[3],
        op(&[0, 1, 2], &[3], conv_options(1, 1)),
    )
}

// ---------------------------------------------------------------------------------------------
// Checks

fn load(m: &ModelDesc) -> Result<Model, Error> {
    Model::from_vec(m.encode())
}

fn prepare(m: &ModelDesc) -> Result<Interpreter, Error> {
    Interpreter::new(load(m)?, Options::default())
}

/// Loading must fail with `Error::Invalid`; returns its kind and message.
fn load_invalid(m: &ModelDesc) -> (Invalid, String) {
    match load(m) {
        Ok(_) => panic!("the model loaded"),
        Err(e @ Error::Invalid { .. }) => (e.invalid_kind().cloned().unwrap(), e.to_string()),
        Err(e) => panic!("expected a validation error, got: {e}"),
    }
}

/// Loading succeeds (the problem is operator-specific) and preparing fails; returns the error.
fn prepare_err(m: &ModelDesc) -> Error {
    let model = load(m).unwrap_or_else(|e| panic!("model does not load: {e}"));
    match Interpreter::new(model, Options::default()) {
        Ok(_) => panic!("the model was prepared"),
        Err(e) => e,
    }
}

/// Preparing fails with `Error::Invalid` at operator 0 named `name`; returns the message.
fn prepare_invalid(m: &ModelDesc, name: &str) -> String {
    let e = prepare_err(m);
    let msg = e.to_string();
    match &e {
        Error::Invalid { loc, .. } => {
            assert_eq!(loc.op, Some((0, name.to_string())), "{msg}");
        }
        other => panic!("expected Error::Invalid naming op 0 ({name}), got: {other}"),
    }
    assert!(msg.contains(&format!("op 0 ({name})")), "{msg}");
    msg
}

fn assert_contains(msg: &str, what: &str) {
    assert!(
        msg.contains(what),
        "message {msg:?} does not mention {what:?}"
    );
}

#[test]
fn base_models_are_valid() {
    // Every attack below changes one thing in one of these, so each must be accepted as is.
    let mut interp = prepare(&conv_model()).expect("conv");
    interp.input_mut::<f32>(0).unwrap().fill(1.0);
    interp.invoke().unwrap();
    // Centre pixel: 3x3 taps x 2 channels x 0.1 x 1.0 + 0.5 bias = 2.3 (hand-derived).
    let out = interp.output::<f32>(0).unwrap();
    assert!((out[(2 * 5 + 2) * 3] - 2.3).abs() < 1e-5, "{}", out[36]);
    for m in [
        depthwise_model(),
        fc_model(),
        pool_model(Op::MAX_POOL_2D),
        pool_model(Op::AVERAGE_POOL_2D),
        mean_model(&[1, 2], &[1, 2]),
        reshape_model(&[3, 2], &[3, 2]),
        add_model(),
        dequantize_model(),
    ] {
        let mut interp = prepare(&m).expect("base model");
        interp.invoke().unwrap();
    }
    assert!(load(&int8_conv_model()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// CVE-2020-15211: the −1 "optional" index accepted anywhere.

#[test]
fn cve_2020_15211_optional_index_for_required_inputs() {
    let cases: Vec<(ModelDesc, &str, usize)> = vec![
        (conv_model(), "CONV_2D", 1),
        (conv_model(), "CONV_2D", 0),
        (depthwise_model(), "DEPTHWISE_CONV_2D", 1),
        (fc_model(), "FULLY_CONNECTED", 1),
        (add_model(), "ADD", 1),
        (pool_model(Op::MAX_POOL_2D), "MAX_POOL_2D", 0),
        (mean_model(&[1, 2], &[1, 2]), "MEAN", 1),
        (reshape_model(&[3, 2], &[3, 2]), "RESHAPE", 0),
        (dequantize_model(), "DEQUANTIZE", 0),
    ];
    for (mut m, name, k) in cases {
        m.subgraphs[0].ops[0].inputs[k] = -1;
        // The graph input that fed the slot may now be unused, which is fine.
        let msg = prepare_invalid(&m, name);
        assert_contains(&msg, &format!("required input {k} is missing"));
    }
}

#[test]
fn cve_2020_15211_optional_index_for_outputs_and_graph_io() {
    let mut m = conv_model();
    m.subgraphs[0].ops[0].outputs[0] = -1;
    let (kind, msg) = load_invalid(&m);
    assert_eq!(kind, Invalid::MissingTensor);
    assert_contains(&msg, "op 0 (CONV_2D)");

    let mut m = conv_model();
    m.subgraphs[0].inputs[0] = -1;
    assert_eq!(load_invalid(&m).0, Invalid::MissingTensor);

    let mut m = conv_model();
    m.subgraphs[0].outputs[0] = -1;
    assert_eq!(load_invalid(&m).0, Invalid::MissingTensor);

    // An intermediate index is never optional either.
    let mut m = conv_model();
    m.subgraphs[0].ops[0].intermediates = vec![-1];
    assert_eq!(load_invalid(&m).0, Invalid::MissingTensor);
}

#[test]
fn absent_optional_bias_is_accepted() {
    // The legitimate use of −1: no bias.
    let mut m = conv_model();
    m.subgraphs[0].ops[0].inputs[2] = -1;
    prepare(&m).expect("conv without bias");
    let mut m = fc_model();
    m.subgraphs[0].ops[0].inputs[2] = -1;
    prepare(&m).expect("fc without bias");
}

#[test]
fn tensor_indices_out_of_range_name_the_op() {
    for bad in [4, 1000, i32::MAX, -2, i32::MIN] {
        let mut m = conv_model();
        m.subgraphs[0].ops[0].inputs[1] = bad;
        let (kind, msg) = load_invalid(&m);
        assert_eq!(
            kind,
            Invalid::TensorIndex {
                index: bad as i64,
                count: 4
            }
        );
        assert_contains(&msg, "op 0 (CONV_2D)");
        assert_contains(&msg, &format!("tensor {bad}"));
    }
}

// ---------------------------------------------------------------------------------------------
// CVE-2020-15210: the same tensor as input and output of one node.

#[test]
fn cve_2020_15210_tensor_is_input_and_output() {
    let mut m = add_model();
    m.subgraphs[0].ops[0].outputs = vec![0];
    match load(&m) {
        Err(Error::Invalid {
            loc,
            kind: Invalid::InputIsOutput,
        }) => {
            assert_eq!(loc.op, Some((0, "ADD".to_string())));
            assert_eq!(loc.tensor, Some((0, "a".to_string())));
        }
        other => panic!("expected InputIsOutput, got {other:?}"),
    }
    // Also when the output is listed twice among the inputs of a later node that writes it.
    let mut m = conv_model();
    m.subgraphs[0].ops[0].outputs = vec![1];
    // The filter is a constant: writing it is refused whichever rule catches it first.
    let (kind, _) = load_invalid(&m);
    assert!(
        matches!(kind, Invalid::InputIsOutput | Invalid::OutputAlreadyDefined),
        "{kind:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// CVE-2020-15209: a tensor whose buffer index was edited to reach the null buffer or another
// buffer; and the null-buffer output.

#[test]
fn cve_2020_15209_weights_moved_to_the_null_buffer() {
    // The filter now points at buffer 0 (no data): it is no longer a constant and nothing
    // produces it.
    let mut m = conv_model();
    m.subgraphs[0].tensors[1].buffer = 0;
    match load(&m) {
        Err(Error::Invalid {
            loc,
            kind: Invalid::UsedBeforeProduced,
        }) => {
            assert_eq!(loc.op, Some((0, "CONV_2D".to_string())));
            assert_eq!(loc.tensor.map(|t| t.0), Some(1));
        }
        other => panic!("expected UsedBeforeProduced, got {other:?}"),
    }

    // The same, with the filter made a graph input: refused as a non-constant filter.
    let mut m = conv_model();
    m.subgraphs[0].tensors[1].buffer = 0;
    m.subgraphs[0].inputs.push(1);
    let e = prepare_err(&m);
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    assert_contains(&e.to_string(), "op 0 (CONV_2D)");
    assert_contains(&e.to_string(), "non-constant filter");
}

#[test]
fn cve_2020_15209_buffer_index_edited() {
    // Past the end of the buffer table.
    for bad in [3, 1000, u32::MAX] {
        let mut m = conv_model();
        m.subgraphs[0].tensors[1].buffer = bad;
        let (kind, msg) = load_invalid(&m);
        assert_eq!(
            kind,
            Invalid::BufferIndex {
                index: bad as u64,
                count: 3
            }
        );
        assert_contains(&msg, "tensor 1 'filter'");
    }
    // Pointing at the (smaller) bias buffer: 3 floats for a 54-float filter.
    let mut m = conv_model();
    m.subgraphs[0].tensors[1].buffer = 2;
    let (kind, msg) = load_invalid(&m);
    assert_eq!(
        kind,
        Invalid::BufferTooSmall {
            need: 216,
            have: 12
        }
    );
    assert_contains(&msg, "tensor 1 'filter'");
    // An empty non-sentinel buffer is "no data": again a tensor nothing produces.
    let mut m = conv_model();
    m.buffers[2].data.clear();
    assert_eq!(load_invalid(&m).0, Invalid::UsedBeforeProduced);
}

#[test]
fn output_pointing_at_constant_data() {
    // An output whose buffer holds data would overwrite a constant.
    let mut m = conv_model();
    m.subgraphs[0].tensors[3].buffer = 1;
    m.subgraphs[0].tensors[3].shape = vec![1, 1, 1, 3];
    let (kind, msg) = load_invalid(&m);
    assert_eq!(kind, Invalid::OutputAlreadyDefined);
    assert_contains(&msg, "op 0 (CONV_2D)");
    assert_contains(&msg, "tensor 3 'output'");
}

#[test]
fn tensor_used_before_it_is_produced() {
    let mut m = add_model();
    m.subgraphs[0].inputs = vec![0];
    let (kind, msg) = load_invalid(&m);
    assert_eq!(kind, Invalid::UsedBeforeProduced);
    assert_contains(&msg, "op 0 (ADD), tensor 1 'b'");
}

// ---------------------------------------------------------------------------------------------
// CVE-2020-15208: dimension checks that were only debug assertions.

#[test]
fn cve_2020_15208_dimension_mismatches_are_errors() {
    // ADD of shapes that do not broadcast.
    let mut m = add_model();
    m.subgraphs[0].tensors[1].shape = vec![1, 3];
    assert_contains(&prepare_invalid(&m, "ADD"), "do not broadcast");

    // Convolution input of the wrong rank.
    let mut m = conv_model();
    m.subgraphs[0].tensors[0].shape = vec![5, 5, 2];
    assert_contains(&prepare_invalid(&m, "CONV_2D"), "input must be 4-D");

    // Filter depth differs from the input depth (3 is not a divisor of... anything useful).
    let mut m = conv_model();
    m.subgraphs[0].tensors[0].shape = vec![1, 5, 5, 3];
    assert_contains(
        &prepare_invalid(&m, "CONV_2D"),
        "filter depth 2 does not match input depth 3",
    );

    // Bias length differs from the output channels.
    let mut m = conv_model();
    m.subgraphs[0].tensors[2].shape = vec![2];
    assert_contains(
        &prepare_invalid(&m, "CONV_2D"),
        "bias has 2 values for 3 output channels",
    );

    // Depthwise output depth that is not a multiple of the input depth.
    let mut m = depthwise_model();
    m.subgraphs[0].tensors[0].shape = vec![1, 5, 5, 3];
    let msg = prepare_invalid(&m, "DEPTHWISE_CONV_2D");
    assert_contains(&msg, "not a multiple of input depth 3");

    // FULLY_CONNECTED input that does not split into rows of the weights' depth.
    let mut m = fc_model();
    m.subgraphs[0].tensors[0].shape = vec![2, 5];
    assert_contains(
        &prepare_invalid(&m, "FULLY_CONNECTED"),
        "does not split into rows of 4",
    );

    // Weights of the wrong rank.
    let mut m = fc_model();
    m.subgraphs[0].tensors[1].shape = vec![12];
    assert_contains(
        &prepare_invalid(&m, "FULLY_CONNECTED"),
        "weights must be 2-D",
    );

    // Pooling input of the wrong rank.
    let mut m = pool_model(Op::AVERAGE_POOL_2D);
    m.subgraphs[0].tensors[0].shape = vec![4, 4, 2];
    assert_contains(&prepare_invalid(&m, "AVERAGE_POOL_2D"), "input must be 4-D");
}

#[test]
fn output_shape_the_op_cannot_produce_is_not_trusted() {
    // The file claims a larger output than a 2x2 pool of a 4x4 input gives. Whatever the
    // interpreter does with the recorded shape, the output it hands back must have the
    // computed size, so no kernel can write past it.
    let mut m = pool_model(Op::MAX_POOL_2D);
    m.subgraphs[0].tensors[1].shape = vec![1, 9, 9, 2];
    match prepare(&m) {
        Err(e) => assert_contains(&e.to_string(), "op 0 (MAX_POOL_2D)"),
        Ok(mut interp) => {
            interp.invoke().unwrap();
            assert_eq!(interp.outputs()[0].shape, vec![1, 2, 2, 2]);
            assert_eq!(interp.output::<f32>(0).unwrap().len(), 8);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Division by zero: zero strides, dilations and window sizes (TFSA 2021 batch).

#[test]
fn zero_strides_and_dilations_are_refused() {
    for (stride, dilation) in [(0, 1), (-1, 1), (1, 0), (1, -3), (i32::MIN, 1)] {
        let mut m = conv_model();
        m.subgraphs[0].ops[0].options = conv_options(stride, dilation);
        let msg = prepare_invalid(&m, "CONV_2D");
        assert_contains(&msg, "must be at least 1");

        let mut m = depthwise_model();
        if let OptionsDesc::Depthwise {
            stride_w,
            dilation_h,
            ..
        } = &mut m.subgraphs[0].ops[0].options
        {
            *stride_w = stride;
            *dilation_h = dilation;
        }
        let msg = prepare_invalid(&m, "DEPTHWISE_CONV_2D");
        assert_contains(&msg, "must be at least 1");
    }
    for (filter, stride) in [(0, 1), (2, 0), (-2, 2), (2, i32::MIN)] {
        for code in [Op::MAX_POOL_2D, Op::AVERAGE_POOL_2D] {
            let mut m = pool_model(code);
            m.subgraphs[0].ops[0].options = pool_options(filter, stride);
            let name = if code == Op::MAX_POOL_2D {
                "MAX_POOL_2D"
            } else {
                "AVERAGE_POOL_2D"
            };
            assert_contains(&prepare_invalid(&m, name), "must be at least 1");
        }
    }
}

#[test]
fn zero_sized_filters_are_refused() {
    let mut m = conv_model();
    m.subgraphs[0].tensors[1].shape = vec![3, 0, 3, 2];
    assert_contains(&prepare_invalid(&m, "CONV_2D"), "zero-sized window");
    let mut m = fc_model();
    m.subgraphs[0].tensors[1].shape = vec![3, 0];
    prepare_invalid(&m, "FULLY_CONNECTED");
}

#[test]
fn huge_dilation_does_not_overflow() {
    // (3 − 1) · dilation + 1 overflows i32 but not the checked usize arithmetic; with SAME
    // padding the output keeps its size and the window only sees padding.
    let mut m = conv_model();
    m.subgraphs[0].ops[0].options = conv_options(1, i32::MAX);
    match prepare(&m) {
        Ok(mut interp) => {
            interp.input_mut::<f32>(0).unwrap().fill(1.0);
            interp.invoke().unwrap();
            // Only the centre tap is inside: 2 channels x 0.1 + 0.5 (hand-derived).
            for v in interp.output::<f32>(0).unwrap() {
                assert!((v - 0.7).abs() < 1e-5, "{v}");
            }
        }
        Err(e) => assert_contains(&e.to_string(), "op 0 (CONV_2D)"),
    }
    let mut m = conv_model();
    m.subgraphs[0].ops[0].options = conv_options(i32::MAX, i32::MAX);
    if let Err(e) = prepare(&m) {
        assert_contains(&e.to_string(), "op 0 (CONV_2D)");
    }
}

// ---------------------------------------------------------------------------------------------
// Negative or out-of-range axes.

#[test]
fn mean_axis_out_of_range() {
    for axes in [
        vec![4],
        vec![-5],
        vec![1, 100],
        vec![i32::MIN],
        vec![i32::MAX],
    ] {
        let m = mean_model(&axes, &[1, 2]);
        let msg = prepare_invalid(&m, "MEAN");
        assert_contains(&msg, "axis out of range for rank 4");
    }
    // Negative axes inside the range count from the end, as in TFLite.
    prepare(&mean_model(&[-3, -2], &[1, 2])).expect("axes -3, -2");
}

#[test]
fn mean_axes_from_a_too_small_buffer() {
    // The axis tensor claims 8 entries but its buffer holds 2.
    let mut m = mean_model(&[1, 2], &[1, 2]);
    m.subgraphs[0].tensors[1].shape = vec![8];
    assert_eq!(
        load_invalid(&m).0,
        Invalid::BufferTooSmall { need: 32, have: 8 }
    );
}

#[test]
fn quantized_dimension_out_of_range() {
    for axis in [4, -1, 100, i32::MIN] {
        let mut m = int8_conv_model();
        m.subgraphs[0].tensors[1]
            .quant
            .as_mut()
            .unwrap()
            .quantized_dimension = axis;
        let (kind, msg) = load_invalid(&m);
        assert!(matches!(kind, Invalid::Quantization(_)), "{kind:?}");
        assert_contains(&msg, "tensor 1 'filter'");
        assert_contains(
            &msg,
            &format!("quantized_dimension {axis} out of range for rank 4"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Integer overflow in shape products (CVE-2022-23558 and later), huge allocations.

#[test]
fn shape_products_that_overflow() {
    let shape = vec![i32::MAX, i32::MAX, i32::MAX, 2];
    let mut m = conv_model();
    m.subgraphs[0].tensors[0].shape = shape.clone();
    let (kind, msg) = load_invalid(&m);
    assert_eq!(kind, Invalid::ShapeOverflow { shape });
    assert_contains(&msg, "tensor 0 'input'");

    // A product that fits in 64 bits but not in the default element limit (2^31).
    let shape = vec![1 << 16, 1 << 16];
    let mut m = add_model();
    m.subgraphs[0].tensors[2].shape = shape.clone();
    assert_eq!(load_invalid(&m).0, Invalid::ShapeOverflow { shape });

    // Negative dimensions never become huge unsigned ones.
    let mut m = add_model();
    m.subgraphs[0].tensors[0].shape = vec![1, -1];
    assert!(matches!(
        load_invalid(&m).0,
        Invalid::NegativeDimension { dim: -1, .. }
    ));
}

#[test]
fn rank_over_the_limit() {
    let mut m = add_model();
    m.subgraphs[0].tensors[0].shape = vec![1; 17];
    assert_eq!(
        load_invalid(&m).0,
        Invalid::RankTooLarge {
            rank: 17,
            limit: 16
        }
    );
}

#[test]
fn huge_activation_is_refused_before_allocating() {
    // Three activations of 2^30 floats each (4 GiB apiece) pass the element limit but not the
    // memory limit: refused with Error::Limit, and nothing that size is allocated.
    let mut m = add_model();
    for t in &mut m.subgraphs[0].tensors {
        t.shape = vec![1 << 15, 1 << 15];
    }
    let model = load(&m).expect("loads: sizes are within the element limit");
    match Interpreter::new(model, Options::default()) {
        Err(Error::Limit(msg)) => assert_contains(&msg, "over the limit"),
        other => panic!("expected Error::Limit, got {other:?}"),
    }

    // The same with a user-set memory limit: a 1 MiB budget refuses 3 x 64 KiB... no, 3 MiB.
    let mut m = add_model();
    for t in &mut m.subgraphs[0].tensors {
        t.shape = vec![512, 512];
    }
    let limits = Limits {
        max_memory_bytes: 1 << 20,
        ..Limits::default()
    };
    let model = Model::from_vec_with_limits(m.encode(), &limits).unwrap();
    assert!(matches!(
        Interpreter::new(model, Options::default().limits(limits)),
        Err(Error::Limit(_))
    ));
}

#[test]
fn element_limit_is_configurable() {
    let limits = Limits {
        max_tensor_elements: 10,
        ..Limits::default()
    };
    let mut m = add_model();
    m.subgraphs[0].tensors[0].shape = vec![1, 11];
    match Model::from_vec_with_limits(m.encode(), &limits) {
        Err(e) => assert!(
            matches!(e.invalid_kind(), Some(Invalid::ShapeOverflow { .. })),
            "{e}"
        ),
        Ok(_) => panic!("11 elements accepted under a limit of 10"),
    }
}

// ---------------------------------------------------------------------------------------------
// RESHAPE: a larger rank than the output's dimension array, mismatched element counts.

#[test]
fn reshape_to_a_larger_rank_or_other_count() {
    // Rank 8 target for a rank-2 output: the recorded output must not be trusted to hold it.
    let target = [1, 1, 1, 1, 1, 1, 2, 3];
    let m = reshape_model(&target, &[3, 2]);
    match prepare(&m) {
        Err(e) => assert_contains(&e.to_string(), "op 0 (RESHAPE)"),
        Ok(interp) => assert_eq!(interp.outputs()[0].shape, vec![1, 1, 1, 1, 1, 1, 2, 3]),
    }
    // A rank far past the file's rank limit (40 dimensions, 6 elements): refused, or held in
    // full; either way the output has exactly 6 elements.
    let mut target = vec![1; 38];
    target.extend([2, 3]);
    let m = reshape_model(&target, &[3, 2]);
    match prepare(&m) {
        Err(e) => assert_contains(&e.to_string(), "op 0 (RESHAPE)"),
        Ok(mut interp) => {
            assert_eq!(interp.outputs()[0].shape.len(), 40);
            interp.invoke().unwrap();
            assert_eq!(interp.output::<f32>(0).unwrap().len(), 6);
        }
    }
    // Element count differs (7 vs 6), two −1, a −1 with a zero, a negative dimension.
    for target in [
        vec![7],
        vec![-1, -1],
        vec![0, -1],
        vec![-2, 3],
        vec![i32::MAX, 2],
    ] {
        let m = reshape_model(&target, &[3, 2]);
        let msg = prepare_invalid(&m, "RESHAPE");
        assert_contains(&msg, "reshape");
    }
    // Output tensor recorded with another element count: as in TFLite, the shape the op
    // computes replaces the recorded one, so the output holds 6 elements, not 8.
    let m = reshape_model(&[3, 2], &[4, 2]);
    match prepare(&m) {
        Err(e) => assert_contains(&e.to_string(), "op 0 (RESHAPE)"),
        Ok(mut interp) => {
            assert_eq!(interp.outputs()[0].shape, vec![3, 2]);
            interp.invoke().unwrap();
            assert_eq!(interp.output::<f32>(0).unwrap().len(), 6);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Buffers stored after the flatbuffer (the >2 GB layout): offset + size must not wrap.

#[test]
fn buffer_offset_and_size_wraparound() {
    let cases = [
        (u64::MAX - 7, 16),
        (16, u64::MAX),
        (1 << 63, 1 << 63),
        (1 << 40, 4),
        (64, 1 << 32),
    ];
    for (offset, size) in cases {
        let mut m = conv_model();
        m.buffers[1] = BufferDesc {
            data: Vec::new(),
            offset,
            size,
        };
        let (kind, _) = load_invalid(&m);
        match kind {
            Invalid::BufferOutOfFile {
                offset: o, size: s, ..
            } => assert_eq!((o, s), (offset, size)),
            other => panic!("expected BufferOutOfFile, got {other:?}"),
        }
    }
    // Inside the file but too small for the tensor.
    let mut m = conv_model();
    m.buffers[1] = BufferDesc {
        data: Vec::new(),
        offset: 8,
        size: 4,
    };
    assert_eq!(
        load_invalid(&m).0,
        Invalid::BufferTooSmall { need: 216, have: 4 }
    );
}

// ---------------------------------------------------------------------------------------------
// Operator codes: index range, and the two code fields.

#[test]
fn opcode_index_out_of_range() {
    for bad in [1, 7, u32::MAX] {
        let mut m = conv_model();
        m.subgraphs[0].ops[0].opcode_index = bad;
        let (kind, msg) = load_invalid(&m);
        assert_eq!(
            kind,
            Invalid::OpcodeIndex {
                index: bad as u64,
                count: 1
            }
        );
        assert_contains(&msg, "op 0");
    }
}

#[test]
fn deprecated_builtin_code_versus_builtin_code() {
    // Old writers fill only the byte: builtin_code stays 0 (ADD), the byte says CONV_2D. The
    // effective code is the larger one, so this is a convolution, not an ADD.
    let mut m = conv_model();
    m.opcodes[0].builtin_code = 0;
    m.opcodes[0].deprecated_builtin_code = Op::CONV_2D.0 as i8;
    prepare(&m).expect("CONV_2D through the deprecated field");

    // New writers put 127 (the placeholder) in the byte and codes above 127 in builtin_code.
    let mut m = conv_model();
    m.opcodes[0].deprecated_builtin_code = 127;
    m.opcodes[0].builtin_code = Op::CONV_3D_TRANSPOSE.0;
    let e = prepare_err(&m);
    assert_contains(&e.to_string(), "op 0 (CONV_3D_TRANSPOSE)");
    // Below 127 the placeholder wins the max, as in TFLite: a file claiming SEGMENT_SUM this
    // way names the placeholder, and is refused either way.
    let mut m = conv_model();
    m.opcodes[0].deprecated_builtin_code = 127;
    m.opcodes[0].builtin_code = Op::SEGMENT_SUM.0;
    let e = prepare_err(&m);
    assert_contains(&e.to_string(), "op 0 (PLACEHOLDER_FOR_GREATER_OP_CODES)");

    // A forged byte larger than the real code takes over, exactly as in TFLite: here the
    // "CONV_2D" node is read as MAX_POOL_2D (17), whose checks then refuse it.
    let mut m = conv_model();
    m.opcodes[0].deprecated_builtin_code = Op::MAX_POOL_2D.0 as i8;
    let e = prepare_err(&m);
    assert_contains(&e.to_string(), "op 0 (MAX_POOL_2D)");

    // Negative and unknown codes: refused by name, never an index into a table.
    for (narrow, wide) in [(-1i8, -1i32), (-128, -5), (127, 100_000), (0, i32::MAX)] {
        let mut m = conv_model();
        m.opcodes[0].deprecated_builtin_code = narrow;
        m.opcodes[0].builtin_code = wide;
        let code = wide.max(narrow as i32);
        let e = prepare_err(&m);
        let msg = e.to_string();
        assert!(matches!(e, Error::Unsupported { .. }), "{msg}");
        assert_contains(&msg, &format!("op 0 (BUILTIN_{code})"));
    }
}

#[test]
fn custom_operator_is_refused_by_name() {
    let mut m = conv_model();
    m.opcodes[0] = OpcodeDesc {
        deprecated_builtin_code: 32,
        builtin_code: 32,
        custom_code: Some("MyDetector_PostProcess".into()),
        version: 1,
    };
    m.subgraphs[0].ops[0].options = OptionsDesc::None;
    m.subgraphs[0].ops[0].custom_options = Some(vec![0xff; 40]);
    let e = prepare_err(&m);
    let msg = e.to_string();
    assert!(matches!(e, Error::Unsupported { .. }), "{msg}");
    assert_contains(&msg, "op 0 (MyDetector_PostProcess)");
    assert_contains(&msg, "not registered");

    // The one built-in custom operator reads its options and refuses garbage ones.
    m.opcodes[0].custom_code = Some("TFLite_Detection_PostProcess".into());
    let e = prepare_err(&m);
    let msg = e.to_string();
    assert!(matches!(e, Error::Invalid { .. }), "{msg}");
    assert_contains(&msg, "op 0 (TFLite_Detection_PostProcess)");
}

// ---------------------------------------------------------------------------------------------
// Quantization parameters.

#[test]
fn quantization_parameter_count_mismatch() {
    let mut m = int8_conv_model();
    m.subgraphs[0].tensors[0].quant.as_mut().unwrap().zero_point = vec![0, 0];
    let (kind, msg) = load_invalid(&m);
    assert_eq!(
        kind,
        Invalid::Quantization("1 scales but 2 zero points".into())
    );
    assert_contains(&msg, "tensor 0 'input'");

    let mut m = int8_conv_model();
    m.subgraphs[0].tensors[3].quant.as_mut().unwrap().zero_point = Vec::new();
    assert!(matches!(load_invalid(&m).0, Invalid::Quantization(_)));
}

#[test]
fn per_axis_scale_count_mismatch() {
    // Three scales for the filter's 2 output channels.
    let mut m = int8_conv_model();
    let q = m.subgraphs[0].tensors[1].quant.as_mut().unwrap();
    q.scale = vec![0.01; 3];
    q.zero_point = vec![0; 3];
    let (kind, msg) = load_invalid(&m);
    assert_eq!(
        kind,
        Invalid::Quantization("3 per-axis scales for a dimension of size 2".into())
    );
    assert_contains(&msg, "tensor 1 'filter'");
}

#[test]
fn missing_quantization_on_a_quantized_input() {
    for t in [0usize, 1, 3] {
        let mut m = int8_conv_model();
        m.subgraphs[0].tensors[t].quant = None;
        let msg = prepare_invalid(&m, "CONV_2D");
        assert_contains(&msg, "no quantization parameters");
    }
    let mut m = dequantize_model();
    m.subgraphs[0].tensors[0].quant = None;
    assert_contains(
        &prepare_invalid(&m, "DEQUANTIZE"),
        "no quantization parameters",
    );
}

#[test]
fn degenerate_scales_are_refused_or_harmless() {
    // Zero, negative, NaN and infinite scales: refused, or (where TFLite computes with them)
    // computed without a panic.
    for s in [0.0, -1.0, f32::NAN, f32::INFINITY, f32::MIN_POSITIVE, 1e-45] {
        for t in [0usize, 1, 3] {
            let mut m = int8_conv_model();
            m.subgraphs[0].tensors[t].quant.as_mut().unwrap().scale[0] = s;
            match prepare(&m) {
                Ok(mut interp) => interp.invoke().unwrap(),
                Err(e) => assert_contains(&e.to_string(), "op 0 (CONV_2D)"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operators ferrolite does not implement: the advisories' attacks are refused by name.

// ---------------------------------------------------------------------------------------------
// Operators from the advisories that ferrolite implements: each fixture is decoded, the
// advisory's parameter is written into it, and preparation (or invoke, for indices that only
// exist at run time) must refuse it, naming the operator.

fn fixture(name: &str) -> ModelDesc {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/models")
        .join(format!("{name}.tflite"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ModelDesc::decode(&bytes).unwrap_or_else(|| panic!("{name} does not decode"))
}

/// Replaces the data of the constant int32 input `k` of operator 0 with `values` (1-D, or a
/// scalar when `scalar`).
fn set_const_i32(m: &mut ModelDesc, k: usize, values: &[i32], scalar: bool) {
    let t = m.subgraphs[0].ops[0].inputs[k] as usize;
    let tensor = &mut m.subgraphs[0].tensors[t];
    assert_ne!(tensor.buffer, 0, "input {k} is not a constant");
    tensor.shape = if scalar {
        Vec::new()
    } else {
        vec![values.len() as i32]
    };
    let b = tensor.buffer as usize;
    m.buffers[b].data = i32_bytes(values);
}

fn set_int_option(m: &mut ModelDesc, field: usize, value: i32) {
    match &mut m.subgraphs[0].ops[0].options {
        OptionsDesc::Scalars { ints, .. } => ints[field] = value,
        other => panic!("unexpected options {other:?}"),
    }
}

/// Preparing fails naming operator 0 (`name`), as an invalid model or over a limit.
fn refused(m: &ModelDesc, name: &str) -> String {
    let e = prepare_err(m);
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Invalid { .. } | Error::Limit(_)),
        "expected a validation error: {msg}"
    );
    assert_contains(&msg, &format!("op 0 ({name})"));
    msg
}

#[test]
fn strided_slice_zero_stride() {
    // The reported infinite loop: a stride of 0. Inputs: data, begin, end, strides.
    for strides in [[1, 0, 2, 1], [0, 0, 0, 0]] {
        let mut m = fixture("strided_slice_basic_f32");
        set_const_i32(&mut m, 3, &strides, false);
        refused(&m, "STRIDED_SLICE");
    }
    // Begin, end and strides of different lengths than the input's rank.
    let mut m = fixture("strided_slice_basic_f32");
    set_const_i32(&mut m, 3, &[1, 1, 1, 1, 1, 1, 1, 1, 1], false);
    refused(&m, "STRIDED_SLICE");
}

#[test]
fn tile_multiples_that_overflow_or_are_negative() {
    for multiples in [
        [i32::MAX, i32::MAX, i32::MAX],
        [-1, 1, 1],
        [1 << 20, 1 << 20, 1],
    ] {
        let mut m = fixture("tile_f32");
        set_const_i32(&mut m, 1, &multiples, false);
        refused(&m, "TILE");
    }
    // Fewer multiples than dimensions.
    let mut m = fixture("tile_f32");
    set_const_i32(&mut m, 1, &[2, 2], false);
    refused(&m, "TILE");
}

#[test]
fn zero_or_negative_block_sizes() {
    for (name, op) in [
        ("space_to_depth_b2_f32", "SPACE_TO_DEPTH"),
        ("depth_to_space_b2_f32", "DEPTH_TO_SPACE"),
    ] {
        for block in [0, -1, i32::MIN, i32::MAX] {
            let mut m = fixture(name);
            set_int_option(&mut m, 0, block);
            refused(&m, op);
        }
    }
}

#[test]
fn gather_axis_and_constant_indices_out_of_range() {
    // Options: [axis, batch_dims]; params [6,4,3].
    for axis in [3, -4, i32::MAX, i32::MIN] {
        let mut m = fixture("gather_axis0_f32");
        set_int_option(&mut m, 0, axis);
        refused(&m, "GATHER");
    }
    // Constant indices past the 6 rows or negative: refused at preparation or at invoke.
    for bad in [6, -1, i32::MAX, i32::MIN] {
        let mut m = fixture("gather_axis0_f32");
        set_const_i32(&mut m, 1, &[0, 1, bad, 2, 3], false);
        match prepare(&m) {
            Err(e) => assert_contains(&e.to_string(), "op 0 (GATHER)"),
            Ok(mut interp) => match interp.invoke() {
                Err(e @ Error::Input(_)) => assert_contains(&e.to_string(), "op 0"),
                other => panic!("index {bad} accepted: {other:?}"),
            },
        }
    }
}

#[test]
fn runtime_indices_out_of_range_fail_the_invoke() {
    // GATHER_ND with indices from a graph input ([4,2] into params [8,8,3]).
    let m = fixture("gather_nd_runtime_f32");
    let mut interp = prepare(&m).unwrap();
    let k = (0..interp.inputs().len())
        .find(|&k| interp.inputs()[k].dtype == ferrolite::DType::I32)
        .unwrap();
    for bad in [8, -1, i32::MAX, i32::MIN] {
        let idx = interp.input_mut::<i32>(k).unwrap();
        idx.fill(0);
        idx[5] = bad;
        match interp.invoke() {
            Err(e @ Error::Input(_)) => assert_contains(&e.to_string(), "op 0"),
            other => panic!("index {bad} accepted: {other:?}"),
        }
    }
    interp.input_mut::<i32>(k).unwrap().fill(7);
    interp.invoke().expect("in-range indices");

    // EMBEDDING_LOOKUP with ids past the 10-row table.
    let mut interp = prepare(&fixture("embedding_lookup_f32")).unwrap();
    for bad in [10, -1, i32::MIN] {
        let ids = interp.input_mut::<i32>(0).unwrap();
        ids.fill(0);
        ids[4] = bad;
        match interp.invoke() {
            Err(e @ Error::Input(_)) => assert_contains(&e.to_string(), "op 0"),
            other => panic!("id {bad} accepted: {other:?}"),
        }
    }
}

#[test]
fn split_and_concatenation_axes() {
    // SPLIT: inputs (axis, data), options [num_splits]; data [1,5,6,3] split 3 ways on axis 2.
    for axis in [4, -5, i32::MAX] {
        let mut m = fixture("split_axis2_f32");
        set_const_i32(&mut m, 0, &[axis], true);
        refused(&m, "SPLIT");
    }
    for num_splits in [0, -1, 4] {
        let mut m = fixture("split_axis2_f32");
        set_int_option(&mut m, 0, num_splits);
        refused(&m, "SPLIT");
    }
    // CONCATENATION of two rank-4 inputs on an axis they do not have.
    for axis in [4, -5, i32::MIN] {
        let mut m = fixture("concat_lastaxis_f32");
        match &mut m.subgraphs[0].ops[0].options {
            OptionsDesc::Concatenation { axis: a, .. } => *a = axis,
            other => panic!("unexpected options {other:?}"),
        }
        refused(&m, "CONCATENATION");
    }
}

#[test]
fn topk_and_pad_arguments() {
    // TOPK_V2: k larger than the last dimension (6), or negative.
    for k in [7, -1, i32::MAX] {
        let mut m = fixture("topk_k3_f32");
        set_const_i32(&mut m, 1, &[k], true);
        refused(&m, "TOPK_V2");
    }
    // PAD: negative or overflowing paddings ([4,2] for a rank-4 input).
    for bad in [-1, i32::MAX, i32::MIN] {
        let mut m = fixture("pad_hw_f32");
        let t = m.subgraphs[0].ops[0].inputs[1] as usize;
        let b = m.subgraphs[0].tensors[t].buffer as usize;
        m.buffers[b].data = i32_bytes(&[0, 0, bad, 1, 1, 1, 0, 0]);
        refused(&m, "PAD");
    }
}

#[test]
fn control_flow_subgraph_indices() {
    // WHILE options: [cond, body]. Out of range, negative, or the main graph itself.
    for (field, index) in [(0, 99), (1, 99), (0, -1), (1, i32::MIN), (1, 0), (0, 0)] {
        let mut m = fixture("while_counter_f32");
        set_int_option(&mut m, field, index);
        let e = prepare_err(&m);
        let msg = e.to_string();
        assert!(
            matches!(e, Error::Invalid { .. } | Error::Limit(_)),
            "WHILE field {field} = {index}: {msg}"
        );
        assert_contains(&msg, "WHILE");
    }
}

/// A one-node model running `code` on an int32 tensor with a constant second input.
fn unimplemented_op(code: Op, second: &[i32]) -> ModelDesc {
    single_op(
        code,
        vec![i32_bytes(second)],
        vec![
            tensor("data", &[4, 2], TensorType::INT32, 0),
            tensor("arg", &[second.len() as i32], TensorType::INT32, 1),
            tensor("out", &[4, 2], TensorType::INT32, 0),
        ],
        &[0],
        &[2],
        op(&[0, 1], &[2], OptionsDesc::None),
    )
}

#[test]
fn unimplemented_operators_from_advisories_are_refused() {
    // Also the implemented ones, built without their options tables: refused either way.
    let cases = [
        // CVE-2020-15212/13/14: negative, huge or unsorted segment ids.
        (Op::SEGMENT_SUM, vec![-1, 1 << 30, 3, 0]),
        (Op::UNSORTED_SEGMENT_SUM, vec![i32::MAX, -5, 0, 0]),
        // Zero block sizes.
        (Op::SPACE_TO_BATCH_ND, vec![0, 0]),
        (Op::BATCH_TO_SPACE_ND, vec![0, 0]),
        // Out-of-range indices.
        (Op::SCATTER_ND, vec![-1, 99]),
        (Op::ONE_HOT, vec![i32::MAX]),
        (Op::CONV_3D_TRANSPOSE, vec![1, 1]),
        (Op::STRIDED_SLICE, vec![0, 0]),
        (Op::TILE, vec![i32::MAX, i32::MAX]),
        (Op::SPACE_TO_DEPTH, vec![0]),
        (Op::GATHER, vec![-100, 1 << 20]),
        (Op::SPLIT, vec![-9]),
        (Op::WHILE, vec![0]),
        (Op::IF, vec![0]),
        (Op::CALL_ONCE, vec![0]),
    ];
    for (code, arg) in cases {
        let name = code.variant_name().unwrap();
        let m = unimplemented_op(code, &arg);
        let model = load(&m).unwrap_or_else(|e| panic!("{name}: {e}"));
        let e = match Interpreter::new(model, Options::default()) {
            Err(e) => e,
            // Implemented, with arguments only checked when the node runs (indices): the
            // invoke must fail instead.
            Ok(mut interp) => match interp.invoke() {
                Err(e) => e,
                Ok(()) => panic!("{name} with {arg:?} ran"),
            },
        };
        let msg = e.to_string();
        assert_contains(&msg, &format!("op 0 ({name})"));
        // Not implemented; or, once a kernel exists, the advisory's arguments are refused.
        assert!(
            matches!(&e, Error::Unsupported { what, .. } if what.contains("not implemented"))
                || matches!(e, Error::Invalid { .. } | Error::Input(_)),
            "{msg}"
        );
    }
}

#[test]
fn subgraph_index_out_of_range_in_a_signature() {
    let mut m = add_model();
    m.signatures.push(desc::SignatureDesc {
        key: "serving_default".into(),
        subgraph: 5,
        inputs: vec![("a".into(), 0)],
        outputs: vec![("sum".into(), 2)],
    });
    assert_eq!(
        load_invalid(&m).0,
        Invalid::SubgraphIndex { index: 5, count: 1 }
    );
    let mut m = add_model();
    m.signatures.push(desc::SignatureDesc {
        key: "serving_default".into(),
        subgraph: 0,
        inputs: vec![("a".into(), 77)],
        outputs: Vec::new(),
    });
    assert_eq!(
        load_invalid(&m).0,
        Invalid::TensorIndex {
            index: 77,
            count: 3
        }
    );
}

#[test]
fn unknown_tensor_type_and_enum_values() {
    let mut m = add_model();
    m.subgraphs[0].tensors[1].dtype = 99;
    assert_eq!(load_invalid(&m).0, Invalid::UnknownType(99));

    // Unknown padding and activation values in the options.
    let mut m = conv_model();
    if let OptionsDesc::Conv2D { padding, .. } = &mut m.subgraphs[0].ops[0].options {
        *padding = 7;
    }
    assert_contains(&prepare_invalid(&m, "CONV_2D"), "unknown padding 7");
    let mut m = conv_model();
    if let OptionsDesc::Conv2D { activation, .. } = &mut m.subgraphs[0].ops[0].options {
        *activation = -3;
    }
    assert_contains(
        &prepare_invalid(&m, "CONV_2D"),
        "unknown fused activation -3",
    );
}

// ---------------------------------------------------------------------------------------------
// Inputs at invoke time.

#[test]
fn wrong_input_type_or_index_is_an_error() {
    let mut interp = prepare(&conv_model()).unwrap();
    assert!(matches!(interp.input_mut::<i8>(0), Err(Error::Input(_))));
    assert!(matches!(interp.input_mut::<u8>(0), Err(Error::Input(_))));
    assert!(matches!(interp.input_mut::<i32>(0), Err(Error::Input(_))));
    assert!(matches!(interp.input_mut::<f32>(1), Err(Error::Input(_))));
    assert!(matches!(interp.input_bytes_mut(9), Err(Error::Input(_))));
    assert!(matches!(interp.output::<i8>(0), Err(Error::Input(_))));
    assert!(matches!(interp.output::<f32>(3), Err(Error::Input(_))));
    // The typed view has exactly the tensor's element count: a caller cannot write past it.
    assert_eq!(interp.input_mut::<f32>(0).unwrap().len(), 50);
    assert_eq!(interp.input_bytes_mut(0).unwrap().len(), 200);
}

#[test]
fn nan_and_infinite_inputs_never_panic() {
    // Every fixture with a float input, fed NaN, ±infinity, the float extremes and a mix: each
    // invoke returns Ok and the outputs can be read. (Values are not checked: NaN in, NaN out
    // is the reference's behaviour too.)
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/models")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tflite"))
        .collect();
    paths.sort();
    let patterns: [&dyn Fn(usize) -> f32; 6] = [
        &|_| f32::NAN,
        &|_| f32::INFINITY,
        &|_| f32::NEG_INFINITY,
        &|i| if i % 2 == 0 { f32::MAX } else { f32::MIN },
        &|i| [f32::NAN, 1.0, f32::INFINITY, -0.0, f32::NEG_INFINITY, 1e-45][i % 6],
        &|i| f32::from_bits(0x7fc0_0000 | i as u32), // NaNs with payloads
    ];
    let mut tried = 0;
    for path in &paths {
        let Ok(model) = Model::from_file(path) else {
            continue;
        };
        let Ok(mut interp) = Interpreter::new(model, Options::default()) else {
            continue;
        };
        let float_inputs: Vec<usize> = (0..interp.inputs().len())
            .filter(|&k| interp.inputs()[k].dtype == ferrolite::DType::F32)
            .collect();
        if float_inputs.is_empty() {
            continue;
        }
        tried += 1;
        for pattern in &patterns {
            for &k in &float_inputs {
                for (i, v) in interp.input_mut::<f32>(k).unwrap().iter_mut().enumerate() {
                    *v = pattern(i);
                }
            }
            interp
                .invoke()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for k in 0..interp.outputs().len() {
                let bytes = interp.output_bytes(k).unwrap();
                let info = &interp.outputs()[k];
                let numel: usize = info.shape.iter().product();
                assert_eq!(bytes.len(), numel * info.dtype.size().unwrap());
            }
        }
    }
    assert!(tried >= 20, "only {tried} float-input fixtures ran");
}

#[test]
fn resizing_an_input_is_checked_like_a_file_shape() {
    // A dynamic batch (−1 in the shape signature) may change; the new shape must still pass
    // the element and memory limits, and a failed resize leaves a working interpreter.
    let mut m = fc_model();
    m.subgraphs[0].tensors[0].shape_signature = Some(vec![-1, 4]);
    let mut interp = prepare(&m).unwrap();
    for shape in [
        vec![usize::MAX, 4], // the element count overflows
        vec![1 << 40, 4],    // over the element limit
        vec![1 << 28, 4],    // within it, but 4 GiB of input alone
        vec![2, 4, 1],       // another rank
        vec![2, 5],          // a dimension the model fixes
    ] {
        let e = interp
            .resize_input(0, &shape)
            .expect_err(&format!("{shape:?} accepted"));
        assert!(
            matches!(e, Error::Input(_) | Error::Limit(_) | Error::Invalid { .. }),
            "{shape:?}: {e}"
        );
        assert_eq!(interp.inputs()[0].shape, vec![2, 4]);
    }
    interp.resize_input(0, &[3, 4]).unwrap();
    interp.input_mut::<f32>(0).unwrap().fill(1.0);
    interp.invoke().unwrap();
    // Each unit: 4 inputs x 0.25 + bias 1.0 = 2.0 (hand-derived).
    assert_eq!(interp.output::<f32>(0).unwrap(), &[2.0; 9]);
}
