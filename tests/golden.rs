//! Golden tests against the reference interpreter (see `tools/make_golden.py`).

mod common;

use common::golden::{check, Golden};
use ferrolite::Options;

/// Runs every case, at 1 and 2 threads, and reports all failures together.
fn run_cases(cases: Vec<Golden>, int_slack: i32) {
    let mut failures = Vec::new();
    let mut ran = 0;
    for g in &cases {
        if !g.model_exists() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                failures.push(format!(
                    "{}: model {} is missing",
                    g.name,
                    g.model.display()
                ));
            } else {
                eprintln!("skipping {}: {} not found", g.name, g.model.display());
            }
            continue;
        }
        ran += 1;
        let one = match g.run(Options::default().threads(1)) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{}: {e}", g.name));
                continue;
            }
        };
        if let Err(e) = check(g, &one, int_slack) {
            failures.push(e);
        }
        match g.run(Options::default().threads(2)) {
            Ok(two) => {
                for k in 0..one.outputs().len() {
                    if one.output_bytes(k).ok() != two.output_bytes(k).ok() {
                        failures.push(format!(
                            "{}: output {k} differs between 1 and 2 threads",
                            g.name
                        ));
                    }
                }
            }
            Err(e) => failures.push(format!("{} (2 threads): {e}", g.name)),
        }
    }
    eprintln!("{ran} golden cases ran");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn is_shared(name: &str) -> bool {
    name.starts_with("cifar10_")
        || name.starts_with("resnet18_224")
        || name.starts_with("mobilenet_v2_224")
}

#[test]
fn fixtures() {
    let cases = Golden::all(|n| !is_shared(n));
    assert!(!cases.is_empty(), "no golden fixtures found");
    run_cases(cases, 0);
}

#[test]
fn seed_models() {
    run_cases(Golden::all(|n| n.starts_with("cifar10_")), 0);
}

#[test]
fn bench_models() {
    // REF cannot run mobilenet_v2_224_int8; its golden is the optimized kernels', ±1 step.
    run_cases(
        Golden::all(|n| n.starts_with("resnet18_224") || n.starts_with("mobilenet_v2_224")),
        1,
    );
}
