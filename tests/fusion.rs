//! A float ADD of a convolution's output runs inside the convolution when nothing else needs
//! that output: the ADD is no step of its own, the arena holds one tensor fewer, and the
//! outputs are bit-identical to running the two nodes apart (`Options::fuse(false)`). So do a
//! depthwise convolution and the pointwise ones before and after it whose large outputs only
//! the next layer reads (a MobileNet block), and a LOGISTIC with the MUL of its output by
//! its input (SiLU).

mod common;

use std::sync::Arc;

use common::builder::{f32_bytes, ModelSpec, OpSpec, OptionsSpec, TensorSpec};
use ferrolite::schema::{ActivationFunctionType as Act, BuiltinOperator};
use ferrolite::{Interpreter, Model, Options};

const X: [i32; 4] = [1, 5, 6, 3];
const Y: [i32; 4] = [1, 5, 6, 4];

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// Tensors: 0 `x` [1,5,6,3] (input), 1 filter [4,3,3,3], 2 bias [4], 3 `t` = conv(x) [1,5,6,4],
/// 4 `r` [1,5,6,4] (input), 5 `out`, 6 `out2`. Opcodes: CONV_2D (0), ADD (1).
fn model(ops: Vec<OpSpec>, outputs: Vec<i32>) -> Vec<u8> {
    ModelSpec {
        version: 3,
        opcodes: vec![BuiltinOperator::CONV_2D.0, BuiltinOperator::ADD.0],
        buffers: vec![
            vec![],
            f32_bytes(&values(4 * 27, 7)),
            f32_bytes(&values(4, 11)),
        ],
        tensors: vec![
            TensorSpec::f32("x", &X, 0),
            TensorSpec::f32("filter", &[4, 3, 3, 3], 1),
            TensorSpec::f32("bias", &[4], 2),
            TensorSpec::f32("t", &Y, 0),
            TensorSpec::f32("r", &Y, 0),
            TensorSpec::f32("out", &Y, 0),
            TensorSpec::f32("out2", &Y, 0),
        ],
        inputs: vec![0, 4],
        outputs,
        ops,
        custom_names: Vec::new(),
        custom_options: Vec::new(),
    }
    .build()
}

fn conv() -> OpSpec {
    OpSpec {
        opcode_index: 0,
        inputs: vec![0, 1, 2],
        outputs: vec![3],
        options: OptionsSpec::Conv2D {
            stride: 1,
            activation: Act::RELU,
        },
    }
}

fn add(inputs: Vec<i32>, out: i32, activation: Act) -> OpSpec {
    OpSpec {
        opcode_index: 1,
        inputs,
        outputs: vec![out],
        options: OptionsSpec::Add { activation },
    }
}

/// Runs `bytes` and returns (executed nodes, arena bytes, every output's bits).
fn run(bytes: &[u8], options: Options) -> (Vec<usize>, usize, Vec<Vec<u32>>) {
    let model = Arc::new(Model::from_vec(bytes.to_vec()).unwrap());
    let mut interp = Interpreter::new(model, options).unwrap();
    let x = values(5 * 6 * 3, 3);
    // The residual spans the clamps and holds an infinity and a NaN.
    let mut r: Vec<f32> = values(5 * 6 * 4, 5).iter().map(|v| 8.0 * v).collect();
    r[7] = f32::INFINITY;
    r[20] = f32::NAN;
    interp.input_mut::<f32>(0).unwrap().copy_from_slice(&x);
    interp.input_mut::<f32>(1).unwrap().copy_from_slice(&r);
    invoke(interp)
}

/// Invokes `interp` (inputs set): (executed nodes, arena bytes, every output's bits).
fn invoke(mut interp: Interpreter) -> (Vec<usize>, usize, Vec<Vec<u32>>) {
    interp.invoke().unwrap();
    let outs = (0..interp.outputs().len())
        .map(|i| {
            let o = interp.output::<f32>(i).unwrap();
            o.iter().map(|v| v.to_bits()).collect()
        })
        .collect();
    (interp.executed_nodes(), interp.memory().arena_bytes, outs)
}

#[test]
fn residual_add_runs_inside_the_convolution_with_identical_bits() {
    for (inputs, act) in [(vec![3, 4], Act::RELU6), (vec![4, 3], Act::NONE)] {
        let bytes = model(vec![conv(), add(inputs.clone(), 5, act)], vec![5]);
        let (nodes, arena, apart) = run(&bytes, Options::default().fuse(false));
        assert_eq!(nodes, vec![0, 1]);
        for threads in [1, 2] {
            let (fused_nodes, fused_arena, fused) =
                run(&bytes, Options::default().threads(threads));
            assert_eq!(fused_nodes, vec![0], "ADD{inputs:?} not fused");
            assert!(fused_arena < arena, "{fused_arena} vs {arena}");
            assert_eq!(fused, apart, "ADD{inputs:?} at {threads} threads");
        }
    }
}

#[test]
fn a_convolution_output_needed_elsewhere_is_not_fused() {
    // `t` is also a graph output.
    let bytes = model(vec![conv(), add(vec![3, 4], 5, Act::NONE)], vec![5, 3]);
    let (nodes, _, outs) = run(&bytes, Options::default());
    assert_eq!(nodes, vec![0, 1]);
    assert_eq!(outs, run(&bytes, Options::default().fuse(false)).2);
    // `t` is read by a second ADD too.
    let bytes = model(
        vec![
            conv(),
            add(vec![3, 4], 5, Act::NONE),
            add(vec![3, 4], 6, Act::RELU),
        ],
        vec![5, 6],
    );
    let (nodes, _, outs) = run(&bytes, Options::default());
    assert_eq!(nodes, vec![0, 1, 2]);
    assert_eq!(outs, run(&bytes, Options::default().fuse(false)).2);
    // t + t.
    let bytes = model(vec![conv(), add(vec![3, 3], 5, Act::NONE)], vec![5]);
    assert_eq!(run(&bytes, Options::default()).0, vec![0, 1]);
}

/// A MobileNet block: tensors 0 `x` [1,H,W,8] (input), 1 filter [64,1,1,8], 2 bias [64],
/// 3 `t` = expand(x) [1,H,W,64], 4 depthwise filter [1,3,3,64], 5 bias [64], 6 `d` =
/// depthwise(t), 7 project filter [8,1,1,64], 8 bias [8], 9 `p` = project(d), 10 `s` = p + x
/// (stride 1 only). Opcodes: CONV_2D (0), DEPTHWISE_CONV_2D (1), ADD (2). `layers` of the
/// four ops run (expand, depthwise, then project and the ADD if asked).
fn block_model(hw: i32, stride: i32, act: Act, layers: usize, outputs: Vec<i32>) -> Vec<u8> {
    let o = (hw + stride - 1) / stride;
    let conv = |inputs: Vec<i32>, out: i32, activation| OpSpec {
        opcode_index: 0,
        inputs,
        outputs: vec![out],
        options: OptionsSpec::Conv2D {
            stride: 1,
            activation,
        },
    };
    let ops = vec![
        conv(vec![0, 1, 2], 3, Act::RELU6),
        OpSpec {
            opcode_index: 1,
            inputs: vec![3, 4, 5],
            outputs: vec![6],
            options: OptionsSpec::DepthwiseConv2D {
                stride,
                activation: act,
            },
        },
        conv(vec![6, 7, 8], 9, Act::NONE),
        OpSpec {
            opcode_index: 2,
            ..add(vec![9, 0], 10, Act::NONE)
        },
    ];
    ModelSpec {
        version: 3,
        opcodes: vec![
            BuiltinOperator::CONV_2D.0,
            BuiltinOperator::DEPTHWISE_CONV_2D.0,
            BuiltinOperator::ADD.0,
        ],
        buffers: vec![
            vec![],
            f32_bytes(&values(64 * 8, 7)),
            f32_bytes(&values(64, 11)),
            f32_bytes(&values(9 * 64, 13)),
            f32_bytes(&values(64, 17)),
            f32_bytes(&values(8 * 64, 19)),
            f32_bytes(&values(8, 23)),
        ],
        tensors: vec![
            TensorSpec::f32("x", &[1, hw, hw, 8], 0),
            TensorSpec::f32("filter", &[64, 1, 1, 8], 1),
            TensorSpec::f32("bias", &[64], 2),
            TensorSpec::f32("t", &[1, hw, hw, 64], 0),
            TensorSpec::f32("dw_filter", &[1, 3, 3, 64], 3),
            TensorSpec::f32("dw_bias", &[64], 4),
            TensorSpec::f32("d", &[1, o, o, 64], 0),
            TensorSpec::f32("project", &[8, 1, 1, 64], 5),
            TensorSpec::f32("project_bias", &[8], 6),
            TensorSpec::f32("p", &[1, o, o, 8], 0),
            TensorSpec::f32("s", &[1, o, o, 8], 0),
        ],
        inputs: vec![0],
        outputs,
        ops: ops.into_iter().take(layers).collect(),
        custom_names: Vec::new(),
        custom_options: Vec::new(),
    }
    .build()
}

/// Runs a [`block_model`] on `hw`×`hw` input: (executed nodes, arena bytes, every output's
/// bits).
fn run_block(bytes: &[u8], hw: usize, options: Options) -> (Vec<usize>, usize, Vec<Vec<u32>>) {
    let model = Arc::new(Model::from_vec(bytes.to_vec()).unwrap());
    let mut interp = Interpreter::new(model, options).unwrap();
    let x: Vec<f32> = values(hw * hw * 8, 3).iter().map(|v| 4.0 * v).collect();
    interp.input_mut::<f32>(0).unwrap().copy_from_slice(&x);
    invoke(interp)
}

#[test]
fn large_block_intermediates_are_computed_in_bands_with_identical_bits() {
    // 64×64×64 floats: the smallest intermediate that is fused. (layers, stride, depthwise
    // activation, output, the nodes that run fused, the output's floats.)
    let cases = [
        (2, 1, Act::NONE, 6, vec![1], 64 * 64 * 64),
        (2, 2, Act::RELU6, 6, vec![1], 32 * 32 * 64),
        (3, 1, Act::RELU6, 9, vec![2], 64 * 64 * 8),
        // At stride 2 the depthwise output (32×32×64) is too small to fuse.
        (3, 2, Act::NONE, 9, vec![1, 2], 32 * 32 * 8),
        (4, 1, Act::NONE, 10, vec![2], 64 * 64 * 8),
    ];
    for (layers, stride, act, out, fused_nodes, out_floats) in cases {
        let what = format!("{layers} layers, stride {stride}");
        let bytes = block_model(64, stride, act, layers, vec![out]);
        let (nodes, arena, apart) = run_block(&bytes, 64, Options::default().fuse(false));
        assert_eq!(nodes, (0..layers).collect::<Vec<_>>(), "{what}");
        for threads in [1, 2, 3] {
            let (got_nodes, got_arena, fused) =
                run_block(&bytes, 64, Options::default().threads(threads));
            assert_eq!(got_nodes, fused_nodes, "{what}, {threads} threads");
            if got_nodes.len() == 1 {
                // The arena holds the input and the output alone.
                assert_eq!(got_arena, (64 * 64 * 8 + out_floats) * 4, "{what}");
            }
            assert!(got_arena < arena, "{what}");
            assert_eq!(fused, apart, "{what}, {threads} threads");
        }
    }
}

#[test]
fn fused_nodes_are_listed_with_the_node_they_run_in() {
    let model = |bytes: Vec<u8>| Arc::new(Model::from_vec(bytes).unwrap());
    let block = model(block_model(64, 1, Act::NONE, 4, vec![10]));
    let interp = Interpreter::new(block.clone(), Options::default()).unwrap();
    assert_eq!(interp.fused_nodes(), vec![(2, vec![0, 1, 3])]);
    let apart = Interpreter::new(block, Options::default().fuse(false)).unwrap();
    assert!(apart.fused_nodes().is_empty());
    let residual = model(self::model(
        vec![conv(), add(vec![3, 4], 5, Act::NONE)],
        vec![5],
    ));
    let interp = Interpreter::new(residual, Options::default()).unwrap();
    assert_eq!(interp.fused_nodes(), vec![(0, vec![1])]);
}

#[test]
fn a_block_intermediate_needed_elsewhere_or_small_is_not_fused() {
    // `t` is also a graph output.
    let bytes = block_model(64, 1, Act::NONE, 2, vec![6, 3]);
    let (nodes, _, outs) = run_block(&bytes, 64, Options::default());
    assert_eq!(nodes, vec![0, 1]);
    assert_eq!(
        outs,
        run_block(&bytes, 64, Options::default().fuse(false)).2
    );
    // `d` is also a graph output: only the expansion is fused.
    let bytes = block_model(64, 1, Act::NONE, 3, vec![9, 6]);
    let (nodes, _, outs) = run_block(&bytes, 64, Options::default());
    assert_eq!(nodes, vec![1, 2]);
    assert_eq!(
        outs,
        run_block(&bytes, 64, Options::default().fuse(false)).2
    );
    // 32×32×64 floats stay in cache between the layers: nothing to gain.
    let bytes = block_model(32, 1, Act::NONE, 3, vec![9]);
    assert_eq!(run_block(&bytes, 32, Options::default()).0, vec![0, 1, 2]);
}

/// Tensors: 0 `x` [1,5,6,4] (input), 1 `s` = logistic(x), 2 `out` = x·s (or s·x), 3 `y`
/// [1,5,6,4] (input). Opcodes: LOGISTIC (0), MUL (1).
fn silu_model(mul_inputs: Vec<i32>, activation: Act, outputs: Vec<i32>) -> Vec<u8> {
    let tensors = ["x", "s", "out", "y"].map(|n| TensorSpec::f32(n, &Y, 0));
    logistic_mul_model(tensors.to_vec(), mul_inputs, activation, outputs)
}

/// A LOGISTIC of tensor 0 into tensor 1, then a MUL of `mul_inputs` into tensor 2; tensors 0
/// and 3 are the graph inputs.
fn logistic_mul_model(
    tensors: Vec<TensorSpec>,
    mul_inputs: Vec<i32>,
    activation: Act,
    outputs: Vec<i32>,
) -> Vec<u8> {
    ModelSpec {
        version: 3,
        opcodes: vec![BuiltinOperator::LOGISTIC.0, BuiltinOperator::MUL.0],
        buffers: vec![vec![]],
        tensors,
        inputs: vec![0, 3],
        outputs,
        ops: vec![
            OpSpec {
                opcode_index: 0,
                inputs: vec![0],
                outputs: vec![1],
                options: OptionsSpec::None,
            },
            OpSpec {
                opcode_index: 1,
                inputs: mul_inputs,
                outputs: vec![2],
                options: OptionsSpec::Mul { activation },
            },
        ],
        custom_names: Vec::new(),
        custom_options: Vec::new(),
    }
    .build()
}

/// Runs a SiLU model on inputs spanning the sigmoid's cut-offs, with infinities and a NaN.
fn run_silu(bytes: &[u8], options: Options) -> (Vec<usize>, usize, Vec<Vec<u32>>) {
    let model = Arc::new(Model::from_vec(bytes.to_vec()).unwrap());
    let mut interp = Interpreter::new(model, options).unwrap();
    let mut x: Vec<f32> = values(5 * 6 * 4, 13).iter().map(|v| 30.0 * v).collect();
    x[3] = f32::INFINITY;
    x[9] = f32::NEG_INFINITY;
    x[17] = f32::NAN;
    interp.input_mut::<f32>(0).unwrap().copy_from_slice(&x);
    interp
        .input_mut::<f32>(1)
        .unwrap()
        .copy_from_slice(&values(5 * 6 * 4, 2));
    invoke(interp)
}

#[test]
fn silu_runs_in_one_step_with_identical_bits() {
    for (inputs, act) in [(vec![0, 1], Act::NONE), (vec![1, 0], Act::RELU6)] {
        let bytes = silu_model(inputs.clone(), act, vec![2]);
        // (The arena is the same: the MUL's output may share the sigmoid's memory.)
        let (nodes, _, apart) = run_silu(&bytes, Options::default().fuse(false));
        assert_eq!(nodes, vec![0, 1]);
        for threads in [1, 2] {
            let (fused_nodes, _, fused) = run_silu(&bytes, Options::default().threads(threads));
            assert_eq!(fused_nodes, vec![0], "MUL{inputs:?} not fused");
            assert_eq!(fused, apart, "MUL{inputs:?} at {threads} threads");
        }
    }
}

#[test]
fn a_sigmoid_needed_elsewhere_or_of_another_tensor_is_not_fused() {
    // `s` is also a graph output.
    let bytes = silu_model(vec![0, 1], Act::NONE, vec![2, 1]);
    assert_eq!(run_silu(&bytes, Options::default()).0, vec![0, 1]);
    // The MUL multiplies the sigmoid by another tensor.
    let bytes = silu_model(vec![3, 1], Act::NONE, vec![2]);
    assert_eq!(run_silu(&bytes, Options::default()).0, vec![0, 1]);
}

/// Tensors: 0 `x` int8 [1,8,8,4] (input), 1 `s` = logistic(x), 2 `out` = x·s (or s·x), 3 `y`
/// int8 (input). Opcodes: LOGISTIC (0), MUL (1).
fn int8_silu_model(mul_inputs: Vec<i32>, activation: Act, outputs: Vec<i32>) -> Vec<u8> {
    let int8 = |name: &str, scale: f32, zero_point: i64| TensorSpec {
        name: name.into(),
        shape: vec![1, 8, 8, 4],
        dtype: ferrolite::schema::TensorType::INT8,
        buffer: 0,
        quant: Some((vec![scale], vec![zero_point], 0)),
    };
    let tensors = vec![
        int8("x", 0.05, -3),
        int8("s", 1.0 / 256.0, -128),
        int8("out", 0.031, 5),
        int8("y", 0.02, 1),
    ];
    logistic_mul_model(tensors, mul_inputs, activation, outputs)
}

/// Runs an int8 SiLU model on every int8 value: (executed nodes, every output's bytes).
fn run_int8_silu(bytes: &[u8], options: Options) -> (Vec<usize>, Vec<Vec<i8>>) {
    let model = Arc::new(Model::from_vec(bytes.to_vec()).unwrap());
    let mut interp = Interpreter::new(model, options).unwrap();
    let x: Vec<i8> = (0..256)
        .map(|i| (i as u8).wrapping_mul(167) as i8)
        .collect();
    interp.input_mut::<i8>(0).unwrap().copy_from_slice(&x);
    let y: Vec<i8> = (0..256).map(|i| (i as u8).wrapping_mul(13) as i8).collect();
    interp.input_mut::<i8>(1).unwrap().copy_from_slice(&y);
    interp.invoke().unwrap();
    let outs = (0..interp.outputs().len())
        .map(|i| interp.output::<i8>(i).unwrap().to_vec())
        .collect();
    (interp.executed_nodes(), outs)
}

#[test]
fn int8_silu_becomes_one_table_with_identical_values() {
    for (inputs, act) in [(vec![0, 1], Act::NONE), (vec![1, 0], Act::RELU6)] {
        let bytes = int8_silu_model(inputs.clone(), act, vec![2]);
        let (nodes, apart) = run_int8_silu(&bytes, Options::default().fuse(false));
        assert_eq!(nodes, vec![0, 1]);
        // The two operand orders give different products (the offsets differ), so a
        // swapped order would show.
        assert!(apart[0].iter().any(|&v| v != apart[0][0]));
        for threads in [1, 2] {
            let (fused_nodes, fused) = run_int8_silu(&bytes, Options::default().threads(threads));
            assert_eq!(fused_nodes, vec![0], "MUL{inputs:?} not fused");
            assert_eq!(fused, apart, "MUL{inputs:?} at {threads} threads");
        }
    }
}

#[test]
fn an_int8_sigmoid_needed_elsewhere_or_of_another_tensor_is_not_fused() {
    let bytes = int8_silu_model(vec![0, 1], Act::NONE, vec![2, 1]);
    assert_eq!(run_int8_silu(&bytes, Options::default()).0, vec![0, 1]);
    let bytes = int8_silu_model(vec![3, 1], Act::NONE, vec![2]);
    assert_eq!(run_int8_silu(&bytes, Options::default()).0, vec![0, 1]);
}
