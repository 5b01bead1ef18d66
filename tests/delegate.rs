//! A user-written delegate: a CPU "delegate" that claims ADD and MUL, checked to have run
//! and to give the same outputs as the CPU kernels and as values worked out by hand.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::builder::{f32_bytes, ModelSpec, OpSpec, OptionsSpec, TensorSpec};
use ferrolite::delegate::{Delegate, DelegateIo, DelegateKernel, Node, Partition};
use ferrolite::schema::{ActivationFunctionType, BuiltinOperator};
use ferrolite::{Interpreter, Model, Options};

#[derive(Default)]
struct Toy {
    /// Partitions compiled and invokes run, to prove the delegate did the work.
    compiled: AtomicUsize,
    invoked: Arc<AtomicUsize>,
}

struct ToyKernel {
    /// (op, a, b, out) per node, in order.
    nodes: Vec<(BuiltinOperator, usize, usize, usize)>,
    constants: HashMap<usize, Vec<f32>>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    invoked: Arc<AtomicUsize>,
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl Delegate for Toy {
    fn name(&self) -> &str {
        "toy"
    }

    fn supports(&self, node: &Node<'_>) -> Result<(), String> {
        let op = node.builtin().ok_or("custom operator")?;
        if op != BuiltinOperator::ADD && op != BuiltinOperator::MUL {
            return Err(format!("{op:?} is not ADD or MUL"));
        }
        let (a, b) = (
            node.input(0).ok_or("no input 0")?,
            node.input(1).ok_or("no input 1")?,
        );
        if a.shape != b.shape {
            return Err("no broadcasting".into());
        }
        Ok(())
    }

    fn compile(&self, p: &Partition<'_>) -> ferrolite::Result<Box<dyn DelegateKernel>> {
        self.compiled.fetch_add(1, Ordering::SeqCst);
        let mut constants = HashMap::new();
        let mut nodes = Vec::new();
        for node in &p.nodes {
            for k in 0..2 {
                if let Some(bytes) = node.constant(k) {
                    constants.insert(node.input_index(k).unwrap(), floats(bytes));
                }
            }
            nodes.push((
                node.builtin().unwrap(),
                node.input_index(0).unwrap(),
                node.input_index(1).unwrap(),
                node.op.outputs[0],
            ));
        }
        Ok(Box::new(ToyKernel {
            nodes,
            constants,
            inputs: p.inputs.clone(),
            outputs: p.outputs.clone(),
            invoked: self.invoked.clone(),
        }))
    }
}

impl DelegateKernel for ToyKernel {
    fn invoke(&self, mut io: DelegateIo<'_>) -> ferrolite::Result<()> {
        self.invoked.fetch_add(1, Ordering::SeqCst);
        let mut values = self.constants.clone();
        for (k, &t) in self.inputs.iter().enumerate() {
            values.insert(t, io.input::<f32>(k)?.to_vec());
        }
        for &(op, a, b, out) in &self.nodes {
            let r: Vec<f32> = values[&a]
                .iter()
                .zip(&values[&b])
                .map(|(x, y)| {
                    if op == BuiltinOperator::ADD {
                        x + y
                    } else {
                        x * y
                    }
                })
                .collect();
            values.insert(out, r);
        }
        for (k, &t) in self.outputs.iter().enumerate() {
            io.output_mut::<f32>(k)?.copy_from_slice(&values[&t]);
        }
        Ok(())
    }
}

/// The toy models' common frame: opcodes ADD (0), LOGISTIC (1), MUL (2); tensors `in`, the
/// constant `c` = [1, −2, 0.5, 0] and `t2`..`t5`, all `[1, 4]` float32; input `in`.
fn toy_model(outputs: Vec<i32>, ops: Vec<OpSpec>) -> Vec<u8> {
    ModelSpec {
        version: 3,
        opcodes: vec![
            BuiltinOperator::ADD.0,
            BuiltinOperator::LOGISTIC.0,
            BuiltinOperator::MUL.0,
        ],
        buffers: vec![vec![], f32_bytes(&[1.0, -2.0, 0.5, 0.0])],
        tensors: vec![
            TensorSpec::f32("in", &[1, 4], 0),
            TensorSpec::f32("c", &[1, 4], 1),
            TensorSpec::f32("t2", &[1, 4], 0),
            TensorSpec::f32("t3", &[1, 4], 0),
            TensorSpec::f32("t4", &[1, 4], 0),
            TensorSpec::f32("t5", &[1, 4], 0),
        ],
        inputs: vec![0],
        outputs,
        ops,
        custom_names: Vec::new(),
        custom_options: Vec::new(),
    }
    .build()
}

/// An operator of the toy models without options.
fn plain(opcode_index: u32, inputs: Vec<i32>, out: i32) -> OpSpec {
    OpSpec {
        opcode_index,
        inputs,
        outputs: vec![out],
        options: OptionsSpec::None,
    }
}

/// t2 = in + c; t3 = logistic(t2) (CPU); t4 = t2 * t3; t5 = t4 + c. Outputs: t5 and t2.
fn model() -> Vec<u8> {
    let add = |inputs: Vec<i32>, out: i32| OpSpec {
        opcode_index: 0,
        inputs,
        outputs: vec![out],
        options: OptionsSpec::Add {
            activation: ActivationFunctionType::NONE,
        },
    };
    toy_model(
        vec![5, 2],
        vec![
            add(vec![0, 1], 2),
            plain(1, vec![2], 3),
            plain(2, vec![2, 3], 4),
            add(vec![4, 1], 5),
        ],
    )
}

#[test]
fn toy_delegate_runs_its_partitions_and_matches_the_cpu() {
    let input = [0.25f32, 1.0, -3.0, 2.0];
    let c = [1.0f32, -2.0, 0.5, 0.0];
    let model = Arc::new(Model::from_vec(model()).unwrap());

    let mut cpu = Interpreter::new(model.clone(), Options::default()).unwrap();
    assert!(cpu.delegation().is_none());
    cpu.input_mut::<f32>(0).unwrap().copy_from_slice(&input);
    cpu.invoke().unwrap();

    let toy = Arc::new(Toy::default());
    let mut del = Interpreter::new(model, Options::default().delegate(toy.clone())).unwrap();
    let plan = del.delegation().expect("a delegation plan").clone();
    assert_eq!(plan.delegate, "toy");
    // ADD(0) alone; LOGISTIC(1) on the CPU; MUL(2) and ADD(3) together.
    assert_eq!(plan.partitions, vec![vec![0], vec![2, 3]]);
    assert_eq!(plan.on_cpu.len(), 1);
    assert_eq!(plan.on_cpu[0].0, 1);
    assert!(plan.on_cpu[0].1.contains("not ADD or MUL"), "{plan:?}");
    assert_eq!(toy.compiled.load(Ordering::SeqCst), 2);
    // Three steps: two partitions and the CPU node between them.
    assert_eq!(del.executed_nodes(), vec![0, 1, 2]);

    for round in 1..=2 {
        del.input_mut::<f32>(0).unwrap().copy_from_slice(&input);
        del.invoke().unwrap();
        assert_eq!(toy.invoked.load(Ordering::SeqCst), 2 * round);
        for k in 0..2 {
            assert_eq!(
                del.output::<f32>(k).unwrap(),
                cpu.output::<f32>(k).unwrap(),
                "output {k}"
            );
        }
    }
    // By hand: t2 = in + c, t5 = t2 * sigmoid(t2) + c.
    for i in 0..4 {
        let t2 = input[i] + c[i];
        let t5 = t2 * (1.0 / (1.0 + (-t2).exp())) + c[i];
        assert_eq!(del.output::<f32>(1).unwrap()[i], t2);
        assert!((del.output::<f32>(0).unwrap()[i] - t5).abs() <= 1e-6 * t5.abs().max(1.0));
    }
}

#[test]
fn a_delegate_that_claims_nothing_leaves_the_cpu_plan() {
    struct Nothing;
    impl Delegate for Nothing {
        fn name(&self) -> &str {
            "nothing"
        }
        fn supports(&self, _node: &Node<'_>) -> Result<(), String> {
            Err("claims nothing".into())
        }
        fn compile(&self, _p: &Partition<'_>) -> ferrolite::Result<Box<dyn DelegateKernel>> {
            panic!("nothing to compile")
        }
    }
    let model = Arc::new(Model::from_vec(model()).unwrap());
    let mut interp =
        Interpreter::new(model, Options::default().delegate(Arc::new(Nothing))).unwrap();
    let plan = interp.delegation().unwrap();
    assert!(plan.partitions.is_empty());
    assert_eq!(plan.on_cpu.len(), 4);
    assert_eq!(interp.executed_nodes(), vec![0, 1, 2, 3]);
    interp.input_mut::<f32>(0).unwrap().fill(1.0);
    interp.invoke().unwrap();
    assert_eq!(interp.output::<f32>(1).unwrap(), &[2.0, -1.0, 1.5, 1.0]);
}

#[test]
fn gpu_backend_without_the_feature_says_so() {
    if cfg!(feature = "gpu") {
        return;
    }
    let model = Model::from_vec(model()).unwrap();
    let err =
        Interpreter::new(model, Options::default().backend(ferrolite::Backend::Gpu)).unwrap_err();
    assert!(err.to_string().contains("gpu"), "{err}");
}

/// t2 = in + c and t3 = in * c (one partition); t4 = logistic(t3) on the CPU; t5 = t4 * t2
/// (a second partition). t2 passes from one partition to the other without any CPU step
/// reading it, so the first partition must still hand it back.
fn partition_to_partition_model() -> Vec<u8> {
    toy_model(
        vec![5],
        vec![
            plain(0, vec![0, 1], 2),
            plain(2, vec![0, 1], 3),
            plain(1, vec![3], 4),
            plain(2, vec![4, 2], 5),
        ],
    )
}

#[test]
fn a_tensor_passed_between_partitions_is_handed_back() {
    let input = [0.25f32, 1.0, -3.0, 2.0];
    let c = [1.0f32, -2.0, 0.5, 0.0];
    let model = Arc::new(Model::from_vec(partition_to_partition_model()).unwrap());
    let toy = Arc::new(Toy::default());
    let mut del = Interpreter::new(model, Options::default().delegate(toy.clone())).unwrap();
    let plan = del.delegation().expect("a delegation plan").clone();
    assert_eq!(plan.partitions, vec![vec![0, 1], vec![3]]);
    del.input_mut::<f32>(0).unwrap().copy_from_slice(&input);
    del.invoke().unwrap();
    assert_eq!(toy.invoked.load(Ordering::SeqCst), 2);
    for i in 0..4 {
        let t5 = (1.0 / (1.0 + (-(input[i] * c[i])).exp())) * (input[i] + c[i]);
        let got = del.output::<f32>(0).unwrap()[i];
        assert!(
            (got - t5).abs() <= 1e-6 * t5.abs().max(1.0),
            "{i}: {got} vs {t5}"
        );
    }
}
