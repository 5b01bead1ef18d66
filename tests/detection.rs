//! TFLite_Detection_PostProcess: built in, matching the reference on the golden fixtures, and
//! replaceable by a user registration of the same name.

mod common;

use std::sync::Arc;

use common::golden::{check, Golden};
use ferrolite::custom::{CustomContext, CustomKernel, CustomNode, CustomOp};
use ferrolite::{Interpreter, Model, Options};

fn detection_cases() -> Vec<Golden> {
    let cases =
        Golden::all(|n| n.starts_with("detection_postprocess_") || n.starts_with("zoo_ssd_"));
    assert!(cases.len() >= 10, "only {} detection fixtures", cases.len());
    cases
}

#[test]
fn fixtures_match_the_reference_at_any_thread_count() {
    let mut failures = Vec::new();
    for g in detection_cases() {
        let one = match g.run(Options::default().threads(1)) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{}: {e}", g.name));
                continue;
            }
        };
        if let Err(e) = check(&g, &one, 0) {
            failures.push(e);
        }
        let two = g
            .run(Options::default().threads(2))
            .expect("runs at 2 threads");
        for k in 0..one.outputs().len() {
            assert_eq!(
                one.output_bytes(k).unwrap(),
                two.output_bytes(k).unwrap(),
                "{} output {k}",
                g.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fixtures_have_suppressed_and_kept_detections() {
    // The goldens must exercise the op: detections found, and (somewhere) fewer than slots.
    let mut partial = 0;
    for g in detection_cases() {
        let interp = g.run(Options::default()).expect("runs");
        let count = interp.output::<f32>(count_output(&interp)).unwrap()[0];
        assert!(count >= 1.0, "{}: no detections", g.name);
        let slots = interp
            .outputs()
            .iter()
            .find(|o| o.shape.len() == 3)
            .map(|o| o.shape[1])
            .unwrap();
        if (count as usize) < slots {
            partial += 1;
        }
    }
    assert!(partial >= 1, "no fixture leaves slots empty");
}

/// The output holding the detection count: the only one of shape [1].
fn count_output(interp: &Interpreter) -> usize {
    interp
        .outputs()
        .iter()
        .position(|o| o.shape == [1])
        .expect("a [1] output")
}

/// A stand-in that reports 42 detections, to see which implementation ran.
struct Fake;
struct FakeKernel;

impl CustomOp for Fake {
    fn prepare(&self, _node: &CustomNode<'_>) -> ferrolite::Result<Box<dyn CustomKernel>> {
        Ok(Box::new(FakeKernel))
    }
}

impl CustomKernel for FakeKernel {
    fn eval(&self, mut ctx: CustomContext<'_>) -> ferrolite::Result<()> {
        for k in 0..4 {
            ctx.output_mut::<f32>(k)?.fill(42.0);
        }
        Ok(())
    }
}

#[test]
fn a_user_registration_wins_over_the_builtin() {
    let g = Golden::load("detection_postprocess_fast_f32");
    let model = Model::from_file(&g.model).unwrap();
    let options = Options::default().custom_op("TFLite_Detection_PostProcess", Arc::new(Fake));
    let mut interp = Interpreter::new(model, options).unwrap();
    interp.invoke().unwrap();
    // The user's kernel sees the shapes recorded in the file (scalars here) and fills them.
    for k in 0..4 {
        let out = interp.output::<f32>(k).unwrap();
        assert!(
            !out.is_empty() && out.iter().all(|&v| v == 42.0),
            "output {k}: {out:?}"
        );
    }
}

#[test]
fn reference_backends_agree_on_the_op_fixtures() {
    // Stale memory in a golden (slots the reference never writes) would show up as REF and
    // XNNPACK disagreeing, and would make the float tolerance meaningless.
    for g in Golden::all(|n| n.starts_with("detection_postprocess_")) {
        for k in 0..4 {
            let r = g.expected("ref", k).expect("ref output");
            let x = g.expected("xnn", k).expect("xnn output");
            assert_eq!(r.bytes, x.bytes, "{} output {k}", g.name);
        }
    }
    // The SSD models' backbones may round differently on XNNPACK (float noise, or a step of
    // an int8 convolution that moves a box a little), never by stale-memory magnitudes.
    for g in Golden::all(|n| n.starts_with("zoo_ssd_")) {
        for k in 0..4 {
            let r = g.expected("ref", k).expect("ref output").f32s();
            let x = g.expected("xnn", k).expect("xnn output").f32s();
            let worst = r
                .iter()
                .zip(&x)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                worst < 0.1,
                "{} output {k}: REF and XNNPACK differ by {worst}",
                g.name
            );
        }
    }
}

/// Sets input `name_part` of `interp` to `values`.
fn set_input(interp: &mut Interpreter, name_part: &str, values: &[f32]) {
    let k = interp
        .inputs()
        .iter()
        .position(|t| t.name.contains(name_part))
        .expect("input");
    let bytes = interp.input_bytes_mut(k).unwrap();
    for (b, v) in bytes.chunks_exact_mut(4).zip(values) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

/// The output named `PartitionedCall:<k>`: the converter's name for op output `k`.
fn op_output(interp: &Interpreter, k: usize) -> &[f32] {
    let i = interp
        .outputs()
        .iter()
        .position(|t| t.name.ends_with(&format!(":{k}")))
        .expect("output");
    interp.output::<f32>(i).unwrap()
}

#[test]
fn one_detection_by_hand_leaves_the_other_slots_zero() {
    // detection_postprocess_fast_f32: 32 anchors from a 4x4 grid over [0, 1], sizes 0.4 and
    // 0.3 (width 0.8 of that) per cell; 3 classes after a background column; threshold 0.8.
    let g = Golden::load("detection_postprocess_fast_f32");
    let mut interp =
        Interpreter::new(Model::from_file(&g.model).unwrap(), Options::default()).unwrap();
    // Zero encodings decode to the anchors themselves.
    set_input(&mut interp, "x0", &[0.0; 32 * 4]);
    let mut scores = [0.1f32; 32 * 4];
    scores[3 * 4 + 2] = 0.95; // anchor 3 (cell (0, 1), size 0.3), class 1
    scores[3 * 4] = 0.99; // its background column is ignored
    scores[5 * 4 + 1] = 0.7; // below the threshold
    set_input(&mut interp, "x1", &scores);
    interp.invoke().unwrap();
    assert_eq!(op_output(&interp, 3), &[1.0]);
    let boxes = op_output(&interp, 0);
    let (yc, xc, h, w) = (0.125f32, 0.375f32, 0.3f32, 0.24f32);
    let want = [yc - h / 2.0, xc - w / 2.0, yc + h / 2.0, xc + w / 2.0];
    for (b, w) in boxes[..4].iter().zip(want) {
        assert!((b - w).abs() < 1e-6, "{:?} vs {want:?}", &boxes[..4]);
    }
    assert!(boxes[4..].iter().all(|&v| v == 0.0));
    let classes = op_output(&interp, 1);
    assert_eq!(classes[0], 1.0);
    assert!(classes[1..].iter().all(|&v| v == 0.0));
    let scores = op_output(&interp, 2);
    assert_eq!(scores[0], 0.95);
    assert!(scores[1..].iter().all(|&v| v == 0.0));
}
