//! The arena plan: equal to the largest live set on real models, and unaffected by folded
//! constants.

mod common;

use std::path::PathBuf;

use ferrolite::{Interpreter, MemoryReport, Model, Options};

fn shared(rel: &str) -> Option<PathBuf> {
    let p = common::golden::repo_root()
        .join("../shared/models")
        .join(rel);
    if p.exists() {
        Some(p)
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} is missing in CI", p.display());
    } else {
        eprintln!("skipping {}: not found", p.display());
        None
    }
}

fn memory(path: &std::path::Path) -> MemoryReport {
    let interp = Interpreter::new(Model::from_file(path).unwrap(), Options::default()).unwrap();
    interp.memory()
}

#[test]
fn arena_equals_the_largest_live_set() {
    let fixtures = [
        "resnet18_cifar_f32",
        "resnet18_cifar_fp16",
        "resnet18_cifar_int8_uint8io",
    ]
    .map(|m| common::golden::repo_root().join(format!("tests/models/{m}.tflite")));
    let shared_models = [
        "seed/cifar10_resnet18_pruned.tflite",
        "seed/cifar10_resnet18_pruned_float16.tflite",
        "seed/cifar10_resnet18_pruned_dynamic.tflite",
        "seed/cifar10_resnet18_int8_all.tflite",
        "seed/cifar10_resnet18_int8_notall.tflite",
        "bench/resnet18_224_f32.tflite",
        "bench/resnet18_224_fp16.tflite",
        "bench/resnet18_224_int8.tflite",
        "bench/mobilenet_v2_224_f32.tflite",
        "bench/mobilenet_v2_224_int8.tflite",
    ];
    let all = fixtures
        .into_iter()
        .chain(shared_models.iter().filter_map(|m| shared(m)));
    for path in all {
        let m = memory(&path);
        assert_eq!(
            m.arena_bytes,
            m.arena_lower_bound_bytes,
            "{}: {m:?}",
            path.display()
        );
        assert!(
            m.arena_bytes < m.arena_naive_bytes,
            "{}: no reuse: {m:?}",
            path.display()
        );
    }
}

#[test]
fn folded_fp16_weights_do_not_grow_the_arena() {
    let pairs = [
        (
            "seed/cifar10_resnet18_pruned.tflite",
            "seed/cifar10_resnet18_pruned_float16.tflite",
        ),
        (
            "bench/resnet18_224_f32.tflite",
            "bench/resnet18_224_fp16.tflite",
        ),
    ];
    let root = common::golden::repo_root();
    let mut cases = vec![(
        root.join("tests/models/resnet18_cifar_f32.tflite"),
        root.join("tests/models/resnet18_cifar_fp16.tflite"),
    )];
    for (a, b) in pairs {
        if let (Some(a), Some(b)) = (shared(a), shared(b)) {
            cases.push((a, b));
        }
    }
    for (f32_path, fp16_path) in cases {
        let (a, b) = (memory(&f32_path), memory(&fp16_path));
        assert_eq!(
            a.arena_bytes,
            b.arena_bytes,
            "{} vs {}",
            f32_path.display(),
            fp16_path.display()
        );
        // Folded fp16 weights are packed like the f32 ones and the folded copy is dropped, so
        // persistent memory is not doubled. (Small folded constants that a kernel reads at run
        // time, such as a MUL operand, stay: the f32 model reads those from the file instead.)
        assert!(
            b.persistent_bytes < a.persistent_bytes + a.persistent_bytes / 100,
            "{}: {} vs {}: {}",
            f32_path.display(),
            a.persistent_bytes,
            fp16_path.display(),
            b.persistent_bytes
        );
    }
}
