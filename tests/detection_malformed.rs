//! TFLite_Detection_PostProcess on hand-built models: a small case checked by hand, then one
//! broken thing at a time, each refused with an error (never a panic or a huge allocation).

mod common;

use common::builder::{f32_bytes, ModelSpec, OpSpec, OptionsSpec, TensorSpec};
use ferrolite::schema::{BuiltinOperator, TensorType};
use ferrolite::{Error, Interpreter, Model, Options};

/// Option values as the converter writes them (ints, floats, and an int for the bool).
#[derive(Clone)]
enum V {
    I(i64),
    F(f32),
    S(&'static str),
}

fn default_options() -> Vec<(&'static str, V)> {
    vec![
        ("max_detections", V::I(3)),
        ("max_classes_per_detection", V::I(1)),
        ("num_classes", V::I(2)),
        ("nms_score_threshold", V::F(0.5)),
        ("nms_iou_threshold", V::F(0.5)),
        ("y_scale", V::F(10.0)),
        ("x_scale", V::F(10.0)),
        ("h_scale", V::F(5.0)),
        ("w_scale", V::F(5.0)),
        ("use_regular_nms", V::I(0)),
    ]
}

fn flex(options: &[(&'static str, V)]) -> Vec<u8> {
    let mut b = flexbuffers::Builder::default();
    let mut m = b.start_map();
    for (k, v) in options {
        match v {
            V::I(i) => m.push(k, *i),
            V::F(f) => m.push(k, *f),
            V::S(s) => m.push(k, *s),
        }
    }
    m.end_map();
    b.view().to_vec()
}

/// Anchors of the hand-built model: three unit-sized boxes, the first two overlapping
/// (IoU 0.6), the third apart. `[y_center, x_center, h, w]`.
const ANCHORS: [f32; 12] = [
    0.5, 0.5, 1.0, 1.0, //
    0.5, 0.75, 1.0, 1.0, //
    3.0, 3.0, 1.0, 1.0,
];

/// Tensors: 0 box encodings [1, 3, 4], 1 class predictions [1, 3, 3] (background first),
/// 2 anchors (constant), 3..=6 the outputs.
fn spec(options: &[(&'static str, V)]) -> ModelSpec {
    ModelSpec {
        version: 3,
        opcodes: vec![BuiltinOperator::CUSTOM.0],
        buffers: vec![vec![], f32_bytes(&ANCHORS)],
        tensors: vec![
            TensorSpec::f32("boxes", &[1, 3, 4], 0),
            TensorSpec::f32("scores", &[1, 3, 3], 0),
            TensorSpec::f32("anchors", &[3, 4], 1),
            TensorSpec::f32("detection_boxes", &[], 0),
            TensorSpec::f32("detection_classes", &[], 0),
            TensorSpec::f32("detection_scores", &[], 0),
            TensorSpec::f32("num_detections", &[], 0),
        ],
        inputs: vec![0, 1],
        outputs: vec![3, 4, 5, 6],
        ops: vec![OpSpec {
            opcode_index: 0,
            inputs: vec![0, 1, 2],
            outputs: vec![3, 4, 5, 6],
            options: OptionsSpec::None,
        }],
        custom_names: vec!["TFLite_Detection_PostProcess".into()],
        custom_options: vec![(0, flex(options))],
    }
}

fn prepare(spec: &ModelSpec) -> Result<Interpreter, Error> {
    Interpreter::new(Model::from_vec(spec.build())?, Options::default())
}

fn run(interp: &mut Interpreter, scores: &[f32]) -> Result<(), Error> {
    interp.input_mut::<f32>(0)?.fill(0.0);
    interp.input_mut::<f32>(1)?.copy_from_slice(scores);
    interp.invoke()
}

// Class scores per anchor: background, class 0, class 1.
const SCORES: [f32; 9] = [
    0.9, 0.8, 0.1, // anchor 0: class 0 wins
    0.0, 0.7, 0.6, // anchor 1: overlaps anchor 0 (IoU 0.6 > 0.5)
    0.0, 0.2, 0.55, // anchor 2: apart
];

#[test]
fn fast_suppression_by_hand() {
    let mut interp = prepare(&spec(&default_options())).unwrap();
    run(&mut interp, &SCORES).unwrap();
    // Anchor 0 (0.8, class 0) suppresses anchor 1 (its best 0.7); anchor 2 (0.55, class 1).
    assert_eq!(interp.output::<f32>(3).unwrap(), &[2.0]);
    assert_eq!(interp.output::<f32>(1).unwrap(), &[0.0, 1.0, 0.0]);
    assert_eq!(interp.output::<f32>(2).unwrap(), &[0.8, 0.55, 0.0]);
    let boxes = interp.output::<f32>(0).unwrap();
    assert_eq!(interp.outputs()[0].shape, [1, 3, 4]);
    assert_eq!(boxes[..8], [0.0, 0.0, 1.0, 1.0, 2.5, 2.5, 3.5, 3.5]);
    assert!(boxes[8..].iter().all(|&v| v == 0.0));
}

#[test]
fn regular_suppression_by_hand() {
    let mut options = with("use_regular_nms", V::I(1));
    options.retain(|(k, _)| *k != "max_detections");
    options.push(("max_detections", V::I(4)));
    let mut interp = prepare(&spec(&options)).unwrap();
    run(&mut interp, &SCORES).unwrap();
    // Class 0: anchor 0 (0.8) suppresses anchor 1 (0.7). Class 1: anchor 1 (0.6) is kept
    // (anchor 0 scores 0.1 there), anchor 2 (0.55) too. Merged by score.
    assert_eq!(interp.output::<f32>(3).unwrap(), &[3.0]);
    assert_eq!(interp.output::<f32>(1).unwrap(), &[0.0, 1.0, 1.0, 0.0]);
    assert_eq!(interp.output::<f32>(2).unwrap(), &[0.8, 0.6, 0.55, 0.0]);
}

fn with(key: &'static str, value: V) -> Vec<(&'static str, V)> {
    let mut o = default_options();
    o.retain(|(k, _)| *k != key);
    o.push((key, value));
    o
}

fn without(key: &'static str) -> Vec<(&'static str, V)> {
    let mut o = default_options();
    o.retain(|(k, _)| *k != key);
    o
}

#[test]
fn hostile_options_are_refused() {
    let cases = [
        (
            "huge max_detections",
            with("max_detections", V::I(i32::MAX as i64)),
        ),
        ("negative max_detections", with("max_detections", V::I(-1))),
        (
            "max_detections over int32",
            with("max_detections", V::I(1 << 40)),
        ),
        (
            "huge classes per detection",
            with("max_classes_per_detection", V::I(1 << 30)),
        ),
        (
            "no classes per detection",
            with("max_classes_per_detection", V::I(0)),
        ),
        ("num_classes not matching", with("num_classes", V::I(5))),
        ("num_classes zero", with("num_classes", V::I(0))),
        ("iou threshold 0", with("nms_iou_threshold", V::F(0.0))),
        (
            "iou threshold NaN",
            with("nms_iou_threshold", V::F(f32::NAN)),
        ),
        ("zero scale", with("h_scale", V::F(0.0))),
        ("string option", with("num_classes", V::S("2"))),
        ("missing option", without("y_scale")),
    ];
    for (what, options) in cases {
        match prepare(&spec(&options)) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => eprintln!("{what}: {e}"),
        }
    }
    let mut s = spec(&default_options());
    s.custom_options.clear();
    assert!(prepare(&s).is_err(), "no options");
    s.custom_options.push((0, vec![0xff; 7]));
    assert!(prepare(&s).is_err(), "garbage options");
}

/// One edit that breaks the valid model.
type Break = Box<dyn Fn(&mut ModelSpec)>;

#[test]
fn hostile_shapes_and_types_are_refused() {
    let breaks: Vec<(&str, Break)> = vec![
        ("batch 2", Box::new(|s| s.tensors[0].shape = vec![2, 3, 4])),
        (
            "3 box values",
            Box::new(|s| s.tensors[0].shape = vec![1, 3, 3]),
        ),
        (
            "rank 2 boxes",
            Box::new(|s| s.tensors[0].shape = vec![3, 4]),
        ),
        (
            "score rows",
            Box::new(|s| s.tensors[1].shape = vec![1, 2, 3]),
        ),
        ("anchor rows", Box::new(|s| s.tensors[2].shape = vec![2, 4])),
        (
            "anchor width 3",
            Box::new(|s| s.tensors[2].shape = vec![4, 3]),
        ),
        ("two inputs", Box::new(|s| s.ops[0].inputs.truncate(2))),
        (
            "three outputs",
            Box::new(|s| {
                s.ops[0].outputs.truncate(3);
                s.outputs.truncate(3);
            }),
        ),
        (
            "int8 scores",
            Box::new(|s| {
                s.tensors[1].dtype = TensorType::INT8;
                s.tensors[1].quant = Some((vec![0.1], vec![0], 0));
            }),
        ),
        (
            "uint8 scores without quantization",
            Box::new(|s| s.tensors[1].dtype = TensorType::UINT8),
        ),
        (
            "uint8 boxes with float anchors",
            Box::new(|s| {
                s.tensors[0].dtype = TensorType::UINT8;
                s.tensors[0].quant = Some((vec![0.1], vec![128], 0));
            }),
        ),
        (
            "int32 output",
            Box::new(|s| s.tensors[6].dtype = TensorType::INT32),
        ),
    ];
    for (what, f) in breaks {
        let mut s = spec(&default_options());
        f(&mut s);
        match prepare(&s) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => eprintln!("{what}: {e}"),
        }
    }
}

#[test]
fn boxes_with_min_above_max_fail_at_run_time() {
    // A negative anchor height flips ymin and ymax; the reference refuses to suppress then.
    let mut s = spec(&default_options());
    let mut anchors = ANCHORS;
    anchors[2] = -1.0;
    s.buffers[1] = f32_bytes(&anchors);
    let mut interp = prepare(&s).unwrap();
    assert!(run(&mut interp, &SCORES).is_err());
}

#[test]
fn uint8_inputs_dequantize_like_the_reference() {
    // uint8 everywhere: encodings 128 = 0 with zero point 128, anchors in quarter units,
    // scores in 1/128 units (exact in float): the float case up to the score values.
    let mut s = spec(&default_options());
    for (t, scale, zp) in [(0, 0.5, 128), (1, 1.0 / 128.0, 0), (2, 0.25, 0)] {
        s.tensors[t].dtype = TensorType::UINT8;
        s.tensors[t].quant = Some((vec![scale], vec![zp], 0));
    }
    s.buffers[1] = ANCHORS.iter().map(|a| (a * 4.0) as u8).collect();
    let mut interp = prepare(&s).unwrap();
    interp.input_mut::<u8>(0).unwrap().fill(128);
    let scores: [u8; 9] = [115, 102, 13, 0, 90, 77, 0, 26, 70];
    interp.input_mut::<u8>(1).unwrap().copy_from_slice(&scores);
    interp.invoke().unwrap();
    assert_eq!(interp.output::<f32>(3).unwrap(), &[2.0]);
    assert_eq!(interp.output::<f32>(1).unwrap(), &[0.0, 1.0, 0.0]);
    assert_eq!(
        interp.output::<f32>(2).unwrap(),
        &[102.0 / 128.0, 70.0 / 128.0, 0.0]
    );
    assert_eq!(
        interp.output::<f32>(0).unwrap()[..8],
        [0.0, 0.0, 1.0, 1.0, 2.5, 2.5, 3.5, 3.5]
    );
}
