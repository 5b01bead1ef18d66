//! The `ferrolite` command: run, benchmark and inspect `.tflite` models.
//!
//! Exit status: 0 on success, 1 for a model or input error (one line on stderr), 2 for a
//! usage error.

#[path = "ferrolite/npy.rs"]
mod npy;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ferrolite::{Backend, DType, Error, Interpreter, Model, Options, Result, TensorInfo};

#[derive(Parser)]
#[command(
    name = "ferrolite",
    version,
    about = "Run TensorFlow Lite models in pure Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a model once and print or save its outputs.
    Run(RunArgs),
    /// Time invoke() over many runs.
    Bench(BenchArgs),
    /// List a model's tensors and operators and its memory plan.
    Inspect(InspectArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Cpu,
    /// The wgpu delegate (needs the `gpu` feature); unsupported nodes stay on the CPU.
    Gpu,
}

impl BackendArg {
    fn name(self) -> &'static str {
        match self {
            BackendArg::Cpu => "cpu",
            BackendArg::Gpu => "gpu",
        }
    }

    fn backend(self) -> Backend {
        match self {
            BackendArg::Cpu => Backend::Cpu,
            BackendArg::Gpu => Backend::Gpu,
        }
    }
}

#[derive(Args)]
struct Common {
    /// The .tflite model.
    model: PathBuf,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Where the model runs.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendArg,
    /// Force a CPU kernel tier (generic, avx2, neon, neon-dot); default: FERROLITE_ISA, else the best.
    #[arg(long)]
    isa: Option<ferrolite::Isa>,
    /// Run the subgraph of this signature key, with its named inputs and outputs.
    #[arg(long)]
    signature: Option<String>,
    /// Resize input I to a shape before running, e.g. `0:4x224x224x3` (repeatable).
    #[arg(long = "input-shape", value_parser = parse_input_shape)]
    input_shapes: Vec<(usize, Vec<usize>)>,
    /// Seed of the generated inputs used when no -i is given.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Refuse a model whose arena, prepared weights and scratch need more than this many MiB.
    /// Lower than the library's default (4096) so that a stray file cannot occupy the
    /// machine for long: elementwise work over gigabytes of activations takes many seconds.
    #[arg(long = "max-memory-mib", default_value_t = 1024)]
    max_memory_mib: usize,
    /// Run every node as a step of its own (no residual ADD inside its convolution), e.g. for
    /// a per-node profile that lists every node of the model.
    #[arg(long = "no-fuse")]
    no_fuse: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Input .npy file; the k-th -i feeds model input k.
    #[arg(short = 'i', long = "input")]
    inputs: Vec<PathBuf>,
    /// Write outputs to DIR/output_<k>.npy.
    #[arg(short = 'o', long = "output-dir")]
    output_dir: Option<PathBuf>,
    /// Take float inputs and give float outputs for quantized models, quantizing and
    /// dequantizing with each tensor's own parameters.
    #[arg(long)]
    float_io: bool,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    common: Common,
    /// Untimed runs before measuring.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Timed runs.
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// After timing, run `--runs` more times with a clock around every node and print where
    /// the time goes, per node and per operator type.
    #[arg(long)]
    profile: bool,
}

#[derive(Args)]
struct InspectArgs {
    /// The .tflite model.
    model: PathBuf,
    /// Show where each node runs on this backend (the partition plan).
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendArg,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Run(a) => run(a),
        Command::Bench(a) => bench(a),
        Command::Inspect(a) => inspect(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: multi-node reports are joined.
            let msg = e
                .to_string()
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; ");
            let hint = match e {
                Error::Limit(m) if m.contains("memory") => " (see --max-memory-mib)",
                _ => "",
            };
            eprintln!("error: {msg}{hint}");
            ExitCode::from(1)
        }
    }
}

fn options(c: &Common) -> Result<Options> {
    if c.threads == 0 {
        return Err(Error::Input("--threads must be at least 1".into()));
    }
    let backend = c.backend.backend();
    let mut o = Options::default()
        .threads(c.threads)
        .backend(backend)
        .fuse(!c.no_fuse);
    o.isa = c.isa;
    o.limits.max_memory_bytes = c.max_memory_mib.saturating_mul(1 << 20);
    Ok(o)
}

fn parse_input_shape(s: &str) -> std::result::Result<(usize, Vec<usize>), String> {
    let (i, dims) = s
        .split_once(':')
        .ok_or("expected INDEX:DIMS, e.g. 0:1x224x224x3")?;
    let i = i
        .parse::<usize>()
        .map_err(|e| format!("bad input index '{i}': {e}"))?;
    let dims = if dims.is_empty() {
        Vec::new()
    } else {
        dims.split('x')
            .map(|d| {
                d.parse::<usize>()
                    .map_err(|e| format!("bad dimension '{d}': {e}"))
            })
            .collect::<std::result::Result<_, _>>()?
    };
    Ok((i, dims))
}

fn load(c: &Common) -> Result<(Interpreter, u128)> {
    let start = Instant::now();
    let model = Model::from_file(&c.model)?;
    let mut interp = match &c.signature {
        Some(key) => Interpreter::with_signature(model, key, options(c)?)?,
        None => Interpreter::new(model, options(c)?)?,
    };
    for (i, shape) in &c.input_shapes {
        interp.resize_input(*i, shape)?;
    }
    Ok((interp, start.elapsed().as_micros()))
}

/// Fills every input with the deterministic generator.
fn fill_generated(interp: &mut Interpreter, seed: u64) -> Result<()> {
    for k in 0..interp.inputs().len() {
        let dtype = interp.inputs()[k].dtype;
        ferrolite::inputs::fill(interp.input_bytes_mut(k)?, dtype, seed, k);
    }
    Ok(())
}

fn run(a: RunArgs) -> Result<()> {
    let (mut interp, _) = load(&a.common)?;
    let n_inputs = interp.inputs().len();
    if a.inputs.len() > n_inputs {
        return Err(Error::Input(format!(
            "{} input files given but the model has {n_inputs} inputs",
            a.inputs.len()
        )));
    }
    if a.inputs.is_empty() {
        fill_generated(&mut interp, a.common.seed)?;
    } else if a.inputs.len() != n_inputs {
        return Err(Error::Input(format!(
            "{} input files given but the model has {n_inputs} inputs",
            a.inputs.len()
        )));
    }
    for (k, path) in a.inputs.iter().enumerate() {
        let info = interp.inputs()[k].clone();
        if a.float_io && info.dtype != DType::F32 {
            let bytes = npy::read(path, DType::F32, &info.shape)?;
            let values: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            interp.set_input_f32(k, &values)?;
        } else {
            let bytes = npy::read(path, info.dtype, &info.shape)?;
            interp.input_bytes_mut(k)?.copy_from_slice(&bytes);
        }
    }
    let start = Instant::now();
    interp.invoke()?;
    let elapsed = start.elapsed();

    if let Some(dir) = &a.output_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        for (k, info) in interp.outputs().iter().enumerate() {
            let path = dir.join(format!("output_{k}.npy"));
            if a.float_io && info.dtype != DType::F32 {
                let v = interp.output_f32(k)?;
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                npy::write(&path, DType::F32, &info.shape, &bytes)?;
            } else {
                npy::write(&path, info.dtype, &info.shape, interp.output_bytes(k)?)?;
            }
        }
        println!(
            "wrote {} outputs to {}",
            interp.outputs().len(),
            dir.display()
        );
    } else {
        for (k, info) in interp.outputs().iter().enumerate() {
            println!(
                "output {k} '{}': {} {:?}",
                info.name, info.dtype, info.shape
            );
            print_top5(&interp, k, info);
        }
    }
    println!("invoke: {:.3} ms", elapsed.as_secs_f64() * 1e3);
    Ok(())
}

/// Prints the five highest scores of a classifier-like output (one row of class scores).
fn print_top5(interp: &Interpreter, k: usize, info: &TensorInfo) {
    let classes = info.shape.last().copied().unwrap_or(0);
    let rows: usize = info.shape.iter().rev().skip(1).product();
    if classes < 2 || rows != 1 {
        return;
    }
    let Ok(scores) = interp.output_f32(k).or_else(|_| {
        // Quantized outputs without parameters still rank by their raw values.
        interp.output_bytes(k).map(|b| raw_scores(b, info.dtype))
    }) else {
        return;
    };
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    for (rank, &c) in idx.iter().take(5).enumerate() {
        println!("  #{} class {c}: {:.6}", rank + 1, scores[c]);
    }
}

fn raw_scores(bytes: &[u8], dtype: DType) -> Vec<f32> {
    match dtype {
        DType::U8 => bytes.iter().map(|&b| b as f32).collect(),
        DType::I8 => bytes.iter().map(|&b| b as i8 as f32).collect(),
        _ => Vec::new(),
    }
}

fn bench(a: BenchArgs) -> Result<()> {
    if a.runs == 0 {
        return Err(Error::Input("--runs must be at least 1".into()));
    }
    let (mut interp, load_us) = load(&a.common)?;
    fill_generated(&mut interp, a.common.seed)?;
    for _ in 0..a.warmup {
        interp.invoke()?;
    }
    let mut times = Vec::with_capacity(a.runs);
    for _ in 0..a.runs {
        let start = Instant::now();
        interp.invoke()?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    };
    let mean = times.iter().sum::<f64>() / n as f64;
    let p90 = times[((n as f64 * 0.9).ceil() as usize).clamp(1, n) - 1];
    let mem = interp.memory();
    let profile = if a.profile {
        Some(Profile::measure(&mut interp, a.runs)?)
    } else {
        None
    };
    if a.json {
        let mut j = serde_json::json!({
            "model": a.common.model.display().to_string(),
            "runs": n,
            "warmup": a.warmup,
            "threads": a.common.threads,
            "backend": a.common.backend.name(),
            "min_us": times[0],
            "median_us": median,
            "mean_us": mean,
            "p90_us": p90,
            "max_us": times[n - 1],
            "load_us": load_us,
            "arena_bytes": mem.arena_bytes,
            "persistent_bytes": mem.persistent_bytes,
            "scratch_bytes": mem.scratch_bytes,
        });
        if let Some(p) = &profile {
            j["profile"] = p.json();
        }
        println!("{j}");
    } else {
        println!("model: {}", a.common.model.display());
        println!(
            "threads: {}, backend: {}, runs: {n}, warmup: {}",
            a.common.threads,
            a.common.backend.name(),
            a.warmup
        );
        println!("load: {:.3} ms", load_us as f64 / 1e3);
        println!(
            "invoke (ms): min {:.3}  median {:.3}  mean {:.3}  p90 {:.3}  max {:.3}",
            times[0] / 1e3,
            median / 1e3,
            mean / 1e3,
            p90 / 1e3,
            times[n - 1] / 1e3
        );
        println!(
            "memory: arena {} B, persistent {} B, scratch {} B",
            mem.arena_bytes, mem.persistent_bytes, mem.scratch_bytes
        );
        if let Some(p) = &profile {
            p.print();
        }
    }
    Ok(())
}

/// `node 3` or `nodes 3, 4`.
fn list(nodes: &[usize]) -> String {
    let names: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    let s = if nodes.len() == 1 { "" } else { "s" };
    format!("node{s} {}", names.join(", "))
}

/// Mean wall time per node over several profiled runs, and its sum per operator type.
struct Profile {
    runs: usize,
    /// (node index, operator name, mean µs), in execution order.
    nodes: Vec<(usize, String, f64)>,
    /// (operator name, node count, mean µs per run), slowest first.
    ops: Vec<(String, usize, f64)>,
    /// Nodes that others were fused into, and those others (their time is in the first's).
    fused: Vec<(usize, Vec<usize>)>,
}

impl Profile {
    fn measure(interp: &mut Interpreter, runs: usize) -> Result<Profile> {
        let mut nodes: Vec<(usize, String, f64)> = Vec::new();
        for _ in 0..runs {
            let times = interp.invoke_profiled()?;
            if nodes.is_empty() {
                nodes = times.iter().map(|t| (t.node, t.op.clone(), 0.0)).collect();
            }
            for (n, t) in nodes.iter_mut().zip(&times) {
                n.2 += t.time.as_secs_f64() * 1e6;
            }
        }
        for n in &mut nodes {
            n.2 /= runs as f64;
        }
        let mut ops: Vec<(String, usize, f64)> = Vec::new();
        for (_, op, us) in &nodes {
            match ops.iter_mut().find(|o| &o.0 == op) {
                Some(o) => {
                    o.1 += 1;
                    o.2 += us;
                }
                None => ops.push((op.clone(), 1, *us)),
            }
        }
        ops.sort_by(|a, b| b.2.total_cmp(&a.2));
        let fused = interp.fused_nodes();
        Ok(Profile {
            runs,
            nodes,
            ops,
            fused,
        })
    }

    fn total_us(&self) -> f64 {
        self.nodes.iter().map(|n| n.2).sum()
    }

    fn print(&self) {
        let total = self.total_us().max(f64::MIN_POSITIVE);
        println!(
            "\nper-op profile: mean of {} runs, {:.3} ms in nodes",
            self.runs,
            total / 1e3
        );
        println!("by operator type:");
        println!(
            "  {:<28} {:>5} {:>11} {:>7} {:>7}",
            "op", "nodes", "ms/run", "%", "cdf%"
        );
        let mut cdf = 0.0;
        for (op, count, us) in &self.ops {
            cdf += us / total * 100.0;
            println!(
                "  {:<28} {:>5} {:>11.3} {:>7.2} {:>7.2}",
                op,
                count,
                us / 1e3,
                us / total * 100.0,
                cdf
            );
        }
        println!("slowest nodes:");
        println!("  {:>6} {:<28} {:>11} {:>7}", "node", "op", "ms/run", "%");
        let mut slow: Vec<&(usize, String, f64)> = self.nodes.iter().collect();
        slow.sort_by(|a, b| b.2.total_cmp(&a.2));
        for (node, op, us) in slow.into_iter().take(20) {
            println!(
                "  {:>6} {:<28} {:>11.3} {:>7.2}{}",
                node,
                op,
                us / 1e3,
                us / total * 100.0,
                self.with(*node)
                    .map(|w| format!("  (with {})", list(w)))
                    .unwrap_or_default()
            );
        }
        if !self.fused.is_empty() {
            println!(
                "({} nodes fused into others; --no-fuse times every node on its own)",
                self.fused.iter().map(|(_, w)| w.len()).sum::<usize>()
            );
        }
    }

    /// The nodes fused into `node`, if any.
    fn with(&self, node: usize) -> Option<&[usize]> {
        let mut it = self.fused.iter();
        it.find(|(n, _)| *n == node).map(|(_, w)| w.as_slice())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "runs": self.runs,
            "total_us": self.total_us(),
            "ops": self.ops.iter().map(|(op, count, us)| {
                serde_json::json!({"op": op, "nodes": count, "mean_us": us})
            }).collect::<Vec<_>>(),
            "nodes": self.nodes.iter().map(|(node, op, us)| {
                serde_json::json!({"node": node, "op": op, "mean_us": us, "fused": self.with(*node).unwrap_or_default()})
            }).collect::<Vec<_>>(),
        })
    }
}

fn quant_json(info: &TensorInfo) -> serde_json::Value {
    match &info.quantization {
        Some(q) => {
            serde_json::json!({"scale": q.scale, "zero_point": q.zero_point, "axis": q.axis})
        }
        None => serde_json::Value::Null,
    }
}

fn tensor_json(model: &Model, t: usize) -> serde_json::Value {
    let tensor = &model.subgraphs()[0].tensors[t];
    let info = TensorInfo {
        index: t,
        name: tensor.name.clone(),
        shape: tensor.shape.clone(),
        dtype: tensor.dtype,
        quantization: tensor.quantization.clone(),
    };
    serde_json::json!({
        "index": t,
        "name": info.name,
        "shape": info.shape,
        "dtype": info.dtype.name(),
        "quantization": quant_json(&info),
    })
}

fn inspect(a: InspectArgs) -> Result<()> {
    let model = Arc::new(Model::from_file(&a.model)?);
    // Build once; only when that fails, check node by node to name every unsupported one.
    let options = Options::default().backend(a.backend.backend());
    let mut delegation = None;
    let mut fused = Vec::new();
    // Build once; only when that fails, check node by node to name every unsupported one.
    let (memory, support) = match Interpreter::new(model.clone(), options) {
        Ok(interp) => {
            delegation = interp.delegation().cloned();
            fused = interp.fused_nodes();
            (
                Some(interp.memory()),
                model.subgraphs()[0]
                    .operators
                    .iter()
                    .map(|_| Ok(()))
                    .collect(),
            )
        }
        // A missing GPU is an error, not a list of unsupported nodes.
        Err(e)
            if a.backend.backend() != Backend::Cpu
                && !matches!(e, Error::Unsupported { .. } | Error::UnsupportedOps(_)) =>
        {
            return Err(e)
        }
        Err(_) => (None, Interpreter::check_support(&model)),
    };
    let sg = &model.subgraphs()[0];
    let op_rows: Vec<_> = sg
        .operators
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let code = &model.operator_codes()[op.opcode_index];
            let status = match &support[i] {
                Ok(()) => None,
                Err(e) => Some(e.to_string()),
            };
            (i, code.name(), code.version, op, status)
        })
        .collect();

    if a.json {
        let ops: Vec<_> = op_rows
            .iter()
            .map(|(i, name, version, op, status)| {
                serde_json::json!({
                    "index": i,
                    "op": name,
                    "version": version,
                    "inputs": op.inputs.iter().map(|t| t.map(|t| t as i64).unwrap_or(-1)).collect::<Vec<_>>(),
                    "outputs": op.outputs,
                    "supported": status.is_none(),
                    "reason": status,
                })
            })
            .collect();
        let arena = memory.map(|m| {
            serde_json::json!({
                "bytes": m.arena_bytes,
                "lower_bound_bytes": m.arena_lower_bound_bytes,
                "naive_bytes": m.arena_naive_bytes,
            })
        });
        let j = serde_json::json!({
            "model": a.model.display().to_string(),
            "version": model.version(),
            "description": model.description(),
            "inputs": sg.inputs.iter().map(|&t| tensor_json(&model, t)).collect::<Vec<_>>(),
            "outputs": sg.outputs.iter().map(|&t| tensor_json(&model, t)).collect::<Vec<_>>(),
            "operators": ops,
            "arena": arena,
            "persistent_bytes": memory.map(|m| m.persistent_bytes),
            "delegation": delegation.as_ref().map(|d| serde_json::json!({
                "delegate": d.delegate,
                "partitions": d.partitions,
                "on_cpu": d.on_cpu.iter().map(|(i, r)| serde_json::json!({"index": i, "reason": r})).collect::<Vec<_>>(),
                "folded": d.folded,
            })),
            "scratch_bytes": memory.map(|m| m.scratch_bytes),
            "fused": fused.iter().map(|(node, with)| serde_json::json!({"node": node, "with": with})).collect::<Vec<_>>(),
        });
        println!("{j}");
        return Ok(());
    }

    println!(
        "model: {} (schema v{}, {} subgraphs)",
        a.model.display(),
        model.version(),
        model.subgraphs().len()
    );
    let show = |what: &str, list: &[usize]| {
        println!("{what}:");
        for &t in list {
            let tensor = &sg.tensors[t];
            let q = tensor
                .quantization
                .as_ref()
                .map(|q| match q.single() {
                    Some((s, z)) => format!("  scale {s:e} zero_point {z}"),
                    None => format!("  per-axis ({} scales, axis {})", q.scale.len(), q.axis),
                })
                .unwrap_or_default();
            println!(
                "  [{t}] {:<40} {:<8} {:?}{q}",
                tensor.name,
                tensor.dtype.name(),
                tensor.shape
            );
        }
    };
    show("inputs", &sg.inputs);
    show("outputs", &sg.outputs);
    println!("operators:");
    println!(
        "  {:>4}  {:<24} {:>3}  {:<20} {:<12} supported",
        "#", "op", "ver", "inputs", "outputs"
    );
    for (i, name, version, op, status) in &op_rows {
        let ins: Vec<String> = op
            .inputs
            .iter()
            .map(|t| t.map(|t| t.to_string()).unwrap_or("-".into()))
            .collect();
        let outs: Vec<String> = op.outputs.iter().map(|t| t.to_string()).collect();
        let s = match status {
            None => "yes".to_string(),
            Some(reason) => format!("no: {reason}"),
        };
        println!(
            "  {i:>4}  {name:<24} {version:>3}  {:<20} {:<12} {s}",
            ins.join(","),
            outs.join(",")
        );
    }
    for (node, with) in &fused {
        println!("  node {node} also runs {} (fused)", list(with));
    }
    match memory {
        Some(m) => {
            println!("arena:");
            println!("  arena.bytes             {}", m.arena_bytes);
            println!("  arena.lower_bound_bytes {}", m.arena_lower_bound_bytes);
            println!("  arena.naive_bytes       {}", m.arena_naive_bytes);
            println!("  persistent_bytes        {}", m.persistent_bytes);
            println!("  scratch_bytes           {}", m.scratch_bytes);
        }
        None => println!("arena: not planned (the model has unsupported operators)"),
    }
    if let Some(d) = &delegation {
        print_partitions(&model, d);
    }
    Ok(())
}

/// The partition plan: each delegated partition and the nodes left on the CPU, with why.
fn print_partitions(model: &Model, d: &ferrolite::delegate::DelegationPlan) {
    let name = |i: usize| {
        let op = &model.subgraphs()[0].operators[i];
        model.operator_codes()[op.opcode_index].name()
    };
    println!(
        "partitions ({}): {} delegated, {} nodes on the CPU, {} folded",
        d.delegate,
        d.partitions.len(),
        d.on_cpu.len(),
        d.folded.len()
    );
    for (k, nodes) in d.partitions.iter().enumerate() {
        let list: Vec<String> = nodes.iter().map(|i| i.to_string()).collect();
        println!(
            "  {}#{k}: {} nodes [{}]",
            d.delegate,
            nodes.len(),
            list.join(",")
        );
    }
    for (i, reason) in &d.on_cpu {
        println!("  cpu: node {i} {}: {reason}", name(*i));
    }
    if !d.folded.is_empty() {
        let list: Vec<String> = d.folded.iter().map(|i| i.to_string()).collect();
        println!("  folded at preparation (constants): [{}]", list.join(","));
    }
}
