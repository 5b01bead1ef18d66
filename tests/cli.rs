//! The `ferrolite` command's contracts: outputs, exit codes and one-line errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::golden::{repo_root, Array, Golden};

fn ferrolite(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrolite"))
        .args(args)
        .output()
        .expect("runs")
}

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrolite-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(name: &str) -> String {
    repo_root()
        .join("tests/models")
        .join(name)
        .display()
        .to_string()
}

fn assert_one_line_error(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
}

#[test]
fn run_writes_outputs_matching_the_reference() {
    let g = Golden::load("conv2d_same_s1_none_f32");
    let dir = tmp_dir("run");
    let out = ferrolite(&[
        "run",
        &g.model.display().to_string(),
        "-o",
        &dir.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = Array::read(&dir.join("output_0.npy"));
    let reference = g.expected("ref", 0).unwrap();
    assert_eq!(ours.descr, reference.descr);
    assert_eq!(ours.shape, reference.shape);
    let (a, b) = (ours.f32s(), reference.f32s());
    let max_ref = b.iter().fold(1.0f32, |m, x| m.max(x.abs()));
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(diff <= 1e-5 * max_ref, "max diff {diff}");
}

#[test]
fn run_reads_inputs_from_npy() {
    // Feed the generator's own values back through -i: same outputs as without -i.
    let model = fixture("conv2d_same_s1_none_f32.tflite");
    let (a, b) = (tmp_dir("npy-a"), tmp_dir("npy-b"));
    let input = Path::new(&repo_root()).join("tests/golden/conv2d_same_s1_none_f32/input_0.npy");
    assert!(ferrolite(&["run", &model, "-o", &a.display().to_string()])
        .status
        .success());
    let out = ferrolite(&[
        "run",
        &model,
        "-i",
        &input.display().to_string(),
        "-o",
        &b.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (x, y) = (
        Array::read(&a.join("output_0.npy")),
        Array::read(&b.join("output_0.npy")),
    );
    assert_eq!(x.bytes, y.bytes);
}

#[test]
fn run_prints_a_summary_without_output_dir() {
    let out = ferrolite(&["run", &fixture("conv2d_same_s1_none_f32.tflite")]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("output 0") && text.contains("invoke:"),
        "{text}"
    );
}

#[test]
fn wrong_input_shape_or_dtype_is_an_error() {
    let model = fixture("conv2d_same_s1_none_f32.tflite");
    let dir = tmp_dir("wrong");
    let shape_path = dir.join("shape.npy");
    npyz::to_file_1d(&shape_path, vec![0.5f32; 7]).unwrap();
    assert_one_line_error(&ferrolite(&[
        "run",
        &model,
        "-i",
        &shape_path.display().to_string(),
    ]));
    let n =
        Array::read(&repo_root().join("tests/golden/conv2d_same_s1_none_f32/input_0.npy")).shape;
    let dtype_path = dir.join("dtype.npy");
    {
        use npyz::WriterBuilder;
        let shape: Vec<u64> = n.iter().map(|&d| d as u64).collect();
        let f = std::fs::File::create(&dtype_path).unwrap();
        let mut w = npyz::WriteOptions::<i32>::new()
            .default_dtype()
            .shape(&shape)
            .writer(f)
            .begin_nd()
            .unwrap();
        for _ in 0..n.iter().product::<usize>() {
            w.push(&1).unwrap();
        }
        w.finish().unwrap();
    }
    assert_one_line_error(&ferrolite(&[
        "run",
        &model,
        "-i",
        &dtype_path.display().to_string(),
    ]));
    // Too many inputs.
    let own = repo_root().join("tests/golden/conv2d_same_s1_none_f32/input_0.npy");
    let own = own.display().to_string();
    assert_one_line_error(&ferrolite(&["run", &model, "-i", &own, "-i", &own]));
}

#[test]
fn bad_files_exit_1_with_one_line() {
    let dir = tmp_dir("bad");
    let garbage = dir.join("garbage.tflite");
    std::fs::write(&garbage, b"this is not a model at all").unwrap();
    let empty = dir.join("empty.tflite");
    std::fs::write(&empty, b"").unwrap();
    for path in [garbage, empty, dir.join("missing.tflite")] {
        let p = path.display().to_string();
        for cmd in ["run", "bench", "inspect"] {
            assert_one_line_error(&ferrolite(&[cmd, &p]));
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(ferrolite(&[]).status.code(), Some(2));
    assert_eq!(ferrolite(&["run"]).status.code(), Some(2));
    assert_eq!(ferrolite(&["frobnicate", "x"]).status.code(), Some(2));
    assert_eq!(
        ferrolite(&["bench", "x", "--runs", "many"]).status.code(),
        Some(2)
    );
}

#[test]
fn bench_json_has_the_contract_fields() {
    let out = ferrolite(&[
        "bench",
        &fixture("conv2d_same_s1_none_f32.tflite"),
        "--runs",
        "3",
        "--warmup",
        "1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for key in [
        "median_us",
        "min_us",
        "mean_us",
        "p90_us",
        "runs",
        "threads",
        "backend",
        "load_us",
        "arena_bytes",
        "persistent_bytes",
        "scratch_bytes",
    ] {
        assert!(!j[key].is_null(), "missing {key}");
    }
    assert_eq!(j["runs"], 3);
}

/// `--profile` lists every executed node once, with the operator names the model declares,
/// and the per-type summary adds up to the same nodes.
#[test]
fn bench_profile_covers_every_node() {
    let model = fixture("resnet18_cifar_f32.tflite");
    let out = ferrolite(&[
        "bench",
        &model,
        "--runs",
        "2",
        "--warmup",
        "0",
        "--json",
        "--profile",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let nodes = j["profile"]["nodes"].as_array().expect("profile.nodes");
    let m = ferrolite::Model::from_file(&model).unwrap();
    let interp = ferrolite::Interpreter::new(m, Default::default()).unwrap();
    let executed = interp.executed_nodes();
    let listed: Vec<usize> = nodes
        .iter()
        .map(|n| n["node"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(listed, executed);
    let ops = j["profile"]["ops"].as_array().expect("profile.ops");
    let counted: u64 = ops.iter().map(|o| o["nodes"].as_u64().unwrap()).sum();
    assert_eq!(counted as usize, executed.len());
    for n in nodes {
        assert!(n["op"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(n["mean_us"].as_f64().is_some_and(|t| t >= 0.0));
    }
}

#[test]
fn inspect_json_reports_the_plan() {
    let out = ferrolite(&[
        "inspect",
        &fixture("conv2d_same_s1_none_f32.tflite"),
        "--json",
    ]);
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(j["operators"][0]["op"], "CONV_2D");
    assert_eq!(j["operators"][0]["supported"], true);
    let arena = &j["arena"];
    assert!(arena["bytes"].as_u64().unwrap() >= arena["lower_bound_bytes"].as_u64().unwrap());
    assert!(arena["naive_bytes"].as_u64().is_some());
    let text = ferrolite(&["inspect", &fixture("conv2d_same_s1_none_f32.tflite")]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("arena.bytes"));
}

#[test]
fn float_io_quantizes_inputs_and_dequantizes_outputs() {
    // The uint8 input the reference saw, written as the floats it stands for: --float-io must
    // quantize them back to the same bytes, and print the reference output dequantized.
    let g = Golden::load("resnet18_cifar_int8_uint8io");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(g.dir.join("meta.json")).unwrap()).unwrap();
    let q = |v: &serde_json::Value| {
        (
            v["scale"].as_f64().unwrap() as f32,
            v["zero_point"].as_i64().unwrap(),
        )
    };
    let (in_s, in_z) = q(&meta["inputs"][0]);
    let (out_s, out_z) = q(&meta["outputs"][0]);
    let input = Array::read(&g.dir.join("input_0.npy"));
    let floats: Vec<f32> = input
        .bytes
        .iter()
        .map(|&b| (b as i64 - in_z) as f32 * in_s)
        .collect();
    let dir = tmp_dir("floatio");
    let in_path = dir.join("in.npy");
    {
        use npyz::WriterBuilder;
        let shape: Vec<u64> = input.shape.iter().map(|&d| d as u64).collect();
        let f = std::fs::File::create(&in_path).unwrap();
        let mut w = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&shape)
            .writer(f)
            .begin_nd()
            .unwrap();
        for x in &floats {
            w.push(x).unwrap();
        }
        w.finish().unwrap();
    }
    let out = ferrolite(&[
        "run",
        &g.model.display().to_string(),
        "--float-io",
        "-i",
        &in_path.display().to_string(),
        "-o",
        &dir.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = Array::read(&dir.join("output_0.npy"));
    assert_eq!(ours.descr, "<f4");
    let reference = g.expected("ref", 0).unwrap();
    let want: Vec<f32> = reference
        .bytes
        .iter()
        .map(|&b| (out_s as f64 * (b as i64 - out_z) as f64) as f32)
        .collect();
    assert_eq!(ours.f32s(), want);
}
