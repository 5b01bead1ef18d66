//! The GPU delegate against the reference interpreter's goldens. Needs a wgpu adapter
//! (software Vulkan is enough): in CI a missing adapter fails these tests, elsewhere they
//! are skipped with a notice.

#![cfg(feature = "gpu")]

mod common;

use std::sync::Arc;

use common::golden::{check, Golden};
use ferrolite::gpu::{GpuDelegate, GpuOptions};
use ferrolite::{Backend, DType, Options};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Options with a fresh GPU delegate, or `None` (after a notice) when there is no adapter
/// outside CI.
fn gpu() -> Option<Options> {
    match GpuDelegate::new(GpuOptions::default()) {
        Ok(d) => Some(Options::default().delegate(Arc::new(d))),
        Err(e) if in_ci() => panic!("CI needs a GPU adapter: {e}"),
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// A model the goldens need that is absent: fails in CI, skips elsewhere.
fn present(g: &Golden) -> bool {
    if g.model_exists() {
        return true;
    }
    assert!(
        !in_ci(),
        "{}: model {} is missing",
        g.name,
        g.model.display()
    );
    eprintln!("skipping {}: {} not found", g.name, g.model.display());
    false
}

/// Runs golden models that must go to the GPU as one partition and match REF within the
/// float tolerance.
fn fully_delegated(names: &[&str]) {
    let Some(options) = gpu() else { return };
    let mut failures = Vec::new();
    for name in names {
        let g = Golden::load(name);
        if !present(&g) {
            continue;
        }
        let interp = match g.run(options.clone()) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let plan = interp.delegation().expect("a delegation plan");
        if plan.partitions.len() != 1 || !plan.on_cpu.is_empty() {
            failures.push(format!("{name}: not one GPU partition: {plan:?}"));
        }
        if let Err(e) = check(&g, &interp, 0) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seed_float_models_run_as_one_partition() {
    fully_delegated(&["cifar10_resnet18_pruned", "cifar10_resnet18_pruned_float16"]);
}

#[test]
fn bench_float_models_run_as_one_partition() {
    fully_delegated(&["resnet18_224_f32", "mobilenet_v2_224_f32"]);
}

/// Every float golden fixture, each node on the GPU or the CPU as the delegate decides,
/// against REF with the float tolerance. Fixtures mixing both kinds of node are counted:
/// they test the partition boundaries.
#[test]
fn float_fixtures_match_the_reference() {
    let Some(options) = gpu() else { return };
    let cases =
        Golden::all(|n| n.ends_with("_f32") && !n.starts_with("cifar10_") && !n.contains("_224"));
    assert!(!cases.is_empty());
    let (mut delegated, mut split) = (0, Vec::new());
    let mut failures = Vec::new();
    for g in &cases {
        let interp = match g.run(options.clone()) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{}: {e}", g.name));
                continue;
            }
        };
        let plan = interp.delegation().expect("a delegation plan");
        if !plan.partitions.is_empty() {
            delegated += 1;
            if !plan.on_cpu.is_empty() {
                split.push(g.name.clone());
            }
        }
        if let Err(e) = check(g, &interp, 0) {
            failures.push(format!("{e} (plan {plan:?})"));
        }
    }
    eprintln!(
        "{} float fixtures, {delegated} with GPU partitions, split CPU/GPU: {split:?}",
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(delegated > 30, "only {delegated} fixtures reached the GPU");
}

/// Quantized models run on dequantized values, like TFLite's GPU delegate: outputs may
/// differ from the integer reference by a few quantization steps (docs/gpu.md).
#[test]
fn int8_seed_models_within_documented_steps() {
    const STEPS: f32 = 10.0;
    let Some(options) = gpu() else { return };
    for name in ["cifar10_resnet18_int8_all", "cifar10_resnet18_int8_notall"] {
        let g = Golden::load(name);
        if !present(&g) {
            continue;
        }
        let interp = g.run(options.clone()).unwrap();
        let plan = interp.delegation().unwrap();
        assert_eq!(plan.partitions.len(), 1, "{name}: {plan:?}");
        for k in 0..interp.outputs().len() {
            let want = g.expected("ref", k).unwrap();
            let info = &interp.outputs()[k];
            // Both sides as real values; the softmax output's step is 1/256 (its scale).
            let real = |bytes: &[u8]| -> Vec<f32> {
                match info.dtype {
                    DType::F32 => bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                    DType::I8 | DType::U8 => {
                        let (s, z) = info.quantization.as_ref().unwrap().single().unwrap();
                        let signed = info.dtype == DType::I8;
                        bytes
                            .iter()
                            .map(|&b| {
                                let q = if signed { b as i8 as i64 } else { b as i64 };
                                (q - z) as f32 * s
                            })
                            .collect()
                    }
                    other => panic!("{name}: output dtype {other}"),
                }
            };
            let got = real(interp.output_bytes(k).unwrap());
            let want = real(&want.bytes);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs() * 256.0)
                .fold(0.0f32, f32::max);
            eprintln!("{name} output {k}: worst {worst:.2} steps of 1/256 from REF");
            assert!(worst <= STEPS, "{name} output {k}: {worst} steps from REF");
            // The class the model picks does not change.
            let top = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
            assert_eq!(top(&got), top(&want), "{name}: top class differs");
        }
    }
}

#[test]
fn the_backend_option_opens_the_gpu() {
    if gpu().is_none() {
        return;
    }
    let g = Golden::load("add_bcast_channel_f32");
    let interp = g.run(Options::default().backend(Backend::Gpu)).unwrap();
    assert_eq!(interp.delegation().unwrap().delegate, "gpu");
    check(&g, &interp, 0).unwrap();
}

#[test]
fn an_unknown_adapter_name_is_a_clear_error() {
    let err = GpuDelegate::new(GpuOptions::default().adapter("no-such-adapter-anywhere"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no GPU adapter"), "{err}");
}

#[test]
fn invoking_twice_gives_the_same_outputs() {
    let Some(options) = gpu() else { return };
    let g = Golden::load("conv2d_same_s1_relu_f32");
    let mut interp = g.run(options).unwrap();
    let first = interp.output_bytes(0).unwrap().to_vec();
    interp.invoke().unwrap();
    assert_eq!(interp.output_bytes(0).unwrap(), first.as_slice());
    check(&g, &interp, 0).unwrap();
}

/// A fixture with ops the GPU lacks (ABS then LOG around GPU ops, or the like) runs split
/// into CPU and GPU steps and still matches the reference.
#[test]
fn a_model_with_cpu_only_ops_runs_split() {
    let Some(options) = gpu() else { return };
    for name in ["elu_plain_f32", "pow_abs_f32", "select_v2_cmp_f32"] {
        let g = Golden::load(name);
        let interp = g.run(options.clone()).unwrap();
        let plan = interp.delegation().unwrap();
        assert!(!plan.partitions.is_empty(), "{name}: {plan:?}");
        assert!(!plan.on_cpu.is_empty(), "{name}: {plan:?}");
        check(&g, &interp, 0).unwrap();
    }
}

/// `inspect --backend gpu` lists the partition plan: the seed model is one GPU partition,
/// and a model with CPU-only ops names them with the reason.
#[test]
fn inspect_shows_the_partition_plan() {
    if gpu().is_none() {
        return;
    }
    let run = |model: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrolite"))
            .arg("inspect")
            .arg(model)
            .args(["--backend", "gpu"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let g = Golden::load("cifar10_resnet18_pruned_float16");
    if present(&g) {
        let text = run(&g.model);
        assert!(
            text.contains("partitions (gpu): 1 delegated, 0 nodes on the CPU"),
            "{text}"
        );
        assert!(text.contains("gpu#0: 34 nodes"), "{text}");
    }
    let text = run(&Golden::load("elu_plain_f32").model);
    assert!(text.contains("cpu: node"), "{text}");
    assert!(text.contains("has no GPU kernel"), "{text}");
}
