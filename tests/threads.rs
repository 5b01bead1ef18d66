//! Invokes after the first run on the calling thread when nothing split in the previous one,
//! and inside the pool otherwise: every invoke, at any thread count, gives one thread's bits.

mod common;

use common::golden::repo_root;
use ferrolite::{Interpreter, Model, Options};

#[test]
fn repeated_invokes_match_one_thread_bit_for_bit() {
    let model =
        Model::from_file(repo_root().join("tests/models/resnet18_cifar_f32.tflite")).unwrap();
    let model = std::sync::Arc::new(model);
    // Batch 1: no layer large enough to split; batch 8: most layers split.
    for batch in [1, 8] {
        let run = |threads: usize| -> Vec<Vec<u32>> {
            let options = Options::default().threads(threads);
            let mut interp = Interpreter::new(model.clone(), options).unwrap();
            interp.resize_input(0, &[batch, 32, 32, 3]).unwrap();
            let n = interp.inputs()[0].shape.iter().product::<usize>();
            (0..3)
                .map(|seed| {
                    let mut bytes = vec![0u8; n * 4];
                    ferrolite::inputs::fill(&mut bytes, ferrolite::DType::F32, seed, 0);
                    interp.input_bytes_mut(0).unwrap().copy_from_slice(&bytes);
                    interp.invoke().unwrap();
                    let out = interp.output::<f32>(0).unwrap();
                    out.iter().map(|v| v.to_bits()).collect()
                })
                .collect()
        };
        let one = run(1);
        for threads in [2, 3] {
            assert_eq!(run(threads), one, "batch {batch}, {threads} threads");
        }
    }
}
