//! Signatures and input resizing.

mod common;

use common::golden::repo_root;
use ferrolite::{Interpreter, Model, Options};

fn model(name: &str) -> Model {
    Model::from_file(repo_root().join("tests/models").join(name)).unwrap()
}

fn run_with(interp: &mut Interpreter, input: &[f32]) -> Vec<f32> {
    interp.input_mut::<f32>(0).unwrap().copy_from_slice(input);
    interp.invoke().unwrap();
    interp.output::<f32>(0).unwrap().to_vec()
}

#[test]
fn batch_n_rows_equal_batch_1_runs() {
    // The model's batch dimension is dynamic (shape_signature −1). Run three different images
    // one at a time, then together as one batch of three: each row must give the same scores.
    let mut one = Interpreter::new(model("resnet18_cifar_f32.tflite"), Options::default()).unwrap();
    let per_image = one.inputs()[0].shape.iter().product::<usize>();
    let mut batch =
        Interpreter::new(model("resnet18_cifar_f32.tflite"), Options::default()).unwrap();
    batch.resize_input(0, &[3, 32, 32, 3]).unwrap();
    assert_eq!(batch.inputs()[0].shape, vec![3, 32, 32, 3]);
    assert_eq!(batch.outputs()[0].shape, vec![3, 10]);

    let mut images = vec![0u8; per_image * 3 * 4];
    ferrolite::inputs::fill(&mut images, ferrolite::DType::F32, 7, 0);
    let images: Vec<f32> = images
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let together = run_with(&mut batch, &images);
    for (row, image) in images.chunks(per_image).enumerate() {
        let alone = run_with(&mut one, image);
        let got = &together[row * 10..row * 10 + 10];
        let diff = alone
            .iter()
            .zip(got)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff <= 1e-6, "row {row}: {diff}");
    }
    // Back to batch 1 works too, and the arena shrinks.
    let big = batch.memory().arena_bytes;
    batch.resize_input(0, &[1, 32, 32, 3]).unwrap();
    assert!(batch.memory().arena_bytes < big);
}

#[test]
fn resize_checks_rank_and_fixed_dimensions() {
    let mut interp =
        Interpreter::new(model("resnet18_cifar_f32.tflite"), Options::default()).unwrap();
    assert!(interp.resize_input(0, &[1, 32, 32]).is_err());
    let err = interp
        .resize_input(0, &[1, 32, 32, 4])
        .unwrap_err()
        .to_string();
    assert!(err.contains("fixed"), "{err}");
    assert!(interp.resize_input(5, &[1]).is_err());
    // The interpreter still works after refused resizes.
    interp.invoke().unwrap();
}

#[test]
fn signature_runner_uses_signature_names() {
    let m = model("resnet18_cifar_f32.tflite");
    let sig = &m.signatures()[0];
    let key = sig.key.clone();
    let (in_name, out_name) = (sig.inputs[0].0.clone(), sig.outputs[0].0.clone());
    let mut by_sig = Interpreter::with_signature(m, &key, Options::default()).unwrap();
    assert_eq!(by_sig.signature(), Some(key.as_str()));
    assert_eq!(by_sig.input_index(&in_name), Some(0));
    assert_eq!(by_sig.output_index(&out_name), Some(0));
    let mut plain =
        Interpreter::new(model("resnet18_cifar_f32.tflite"), Options::default()).unwrap();
    let input: Vec<f32> = (0..3072).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    assert_eq!(run_with(&mut by_sig, &input), run_with(&mut plain, &input));
    let err = Interpreter::with_signature(
        model("resnet18_cifar_f32.tflite"),
        "nope",
        Options::default(),
    );
    assert!(err.is_err());
}
