//! Turns a fuzzer input back into a `.tflite` file and a description, to triage a crash:
//!
//!     cargo run --release --example triage -- <load|prepare|invoke|mutate> INPUT [OUT.tflite]
//!
//! For `mutate` it prints the fixture's index and the edited model description; for `invoke`
//! it splits off the model. Then it runs the input through the harness, so a panic shows here
//! with a full backtrace (RUST_BACKTRACE=1).

use arbitrary::Unstructured;
use ferrolite_fuzz::{desc::ModelDesc, harness, mutate};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: triage <load|prepare|invoke|mutate> INPUT [OUT.tflite]");
        std::process::exit(2);
    }
    let data = std::fs::read(&args[2]).expect("read input");
    let (model, inputs): (Vec<u8>, Vec<u8>) = match args[1].as_str() {
        "load" | "prepare" => (data.clone(), Vec::new()),
        "invoke" => {
            let (m, i) = harness::split(&data);
            (m.to_vec(), i.to_vec())
        }
        "mutate" => {
            let mut u = Unstructured::new(&data);
            let index = u
                .choose_index(mutate::FIXTURES.len())
                .expect("fixture choice");
            let fixture = mutate::FIXTURES[index];
            let original = ModelDesc::decode(fixture).expect("fixture decodes");
            let mut desc = original.clone();
            let _ = mutate::mutate(&mut u, &mut desc, 6);
            println!("fixture {index}");
            print_diff(&original, &desc);
            (desc.encode(), u.take_rest().to_vec())
        }
        other => panic!("unknown target {other}"),
    };
    if let Some(out) = args.get(3) {
        std::fs::write(out, &model).expect("write model");
        println!("wrote {out} ({} bytes)", model.len());
    }
    let limits = if args[1] == "invoke" || args[1] == "mutate" {
        harness::invoke_limits()
    } else {
        harness::limits()
    };
    harness::run(model, &inputs, &limits, 1);
    println!("no crash");
}

/// Prints the parts of the description that the mutation changed.
fn print_diff(a: &ModelDesc, b: &ModelDesc) {
    if a.version != b.version {
        println!("version: {} -> {}", a.version, b.version);
    }
    if a.opcodes != b.opcodes {
        println!("opcodes: {:?}\n     -> {:?}", a.opcodes, b.opcodes);
    }
    for (i, (x, y)) in a.buffers.iter().zip(&b.buffers).enumerate() {
        if x != y {
            println!(
                "buffer {i}: {} bytes off {} size {} -> {} bytes off {} size {}",
                x.data.len(),
                x.offset,
                x.size,
                y.data.len(),
                y.offset,
                y.size
            );
        }
    }
    if a.signatures != b.signatures {
        println!("signatures -> {:?}", b.signatures);
    }
    if a.subgraphs.len() != b.subgraphs.len() {
        println!("subgraphs: {} -> {}", a.subgraphs.len(), b.subgraphs.len());
    }
    for (x, y) in a.subgraphs.iter().zip(&b.subgraphs) {
        if x.inputs != y.inputs || x.outputs != y.outputs {
            println!(
                "graph io {:?}/{:?} -> {:?}/{:?}",
                x.inputs, x.outputs, y.inputs, y.outputs
            );
        }
        for (i, t) in y.tensors.iter().enumerate() {
            if x.tensors.get(i) != Some(t) {
                println!("tensor {i}: {:?}\n     was {:?}", t, x.tensors.get(i));
            }
        }
        println!("ops:");
        for (i, op) in y.ops.iter().enumerate() {
            let mark = if x.ops.get(i) != Some(op) { "*" } else { " " };
            println!("{mark} {i}: {op:?}");
        }
        println!("all tensors:");
        for (i, t) in y.tensors.iter().enumerate() {
            println!(
                "  {i}: {:?} {:?} dtype {} buf {}",
                t.name, t.shape, t.dtype, t.buffer
            );
        }
    }
}
