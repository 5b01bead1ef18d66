//! Delegates: backends that take over groups of nodes, like TFLite's delegates.
//!
//! After every node is prepared for the CPU, the interpreter asks the delegate which nodes
//! it [supports](Delegate::supports). The [partitioner](partition::partition) groups the
//! supported nodes into maximal runs that respect dependencies; the delegate
//! [compiles](Delegate::compile) each run into one [`DelegateKernel`], which then runs as a
//! single step with several inputs and outputs. Everything else runs on the CPU kernels, and
//! tensors cross between the two only at partition boundaries: the CPU arena holds only the
//! partition inputs and outputs, never the tensors internal to a partition.
//!
//! ```
//! use std::sync::Arc;
//! use ferrolite::delegate::{Delegate, DelegateIo, DelegateKernel, Node, Partition};
//!
//! /// Claims nothing: every node stays on the CPU.
//! struct Nothing;
//!
//! impl Delegate for Nothing {
//!     fn name(&self) -> &str {
//!         "nothing"
//!     }
//!     fn supports(&self, _node: &Node<'_>) -> Result<(), String> {
//!         Err("this delegate runs nothing".into())
//!     }
//!     fn compile(&self, _p: &Partition<'_>) -> ferrolite::Result<Box<dyn DelegateKernel>> {
//!         Err(ferrolite::Error::Internal("nothing to compile".into()))
//!     }
//! }
//!
//! let options = ferrolite::Options::default().delegate(Arc::new(Nothing));
//! # let _ = options;
//! ```

pub mod partition;

use std::fmt;
use std::sync::Arc;

use crate::aligned::AlignedBuf;
use crate::dtype::Element;
use crate::error::{Error, Result};
use crate::graph::{OpCode, Operator, OperatorCode, Subgraph, Tensor};
use crate::model::Model;
use crate::ops::{self, Eval, Kernel, Loc};
use crate::schema::BuiltinOperator;

/// A backend that runs groups of nodes.
pub trait Delegate: Send + Sync {
    /// A short name for reports (`inspect`).
    fn name(&self) -> &str;
    /// Whether this delegate can run `node`; `Err` says why not (shown by `inspect`).
    fn supports(&self, node: &Node<'_>) -> std::result::Result<(), String>;
    /// Builds the kernel that runs every node of `partition` at once. An error fails the
    /// interpreter's construction.
    fn compile(&self, partition: &Partition<'_>) -> Result<Box<dyn DelegateKernel>>;
}

/// A compiled partition.
pub trait DelegateKernel: Send + Sync {
    /// Reads the partition inputs and writes every partition output.
    fn invoke(&self, io: DelegateIo<'_>) -> Result<()>;
}

/// Where constant bytes live: the model file or buffers the interpreter computed.
#[derive(Clone, Copy)]
struct Constants<'a> {
    locs: &'a [Loc],
    model: &'a [u8],
    persistent: &'a [AlignedBuf],
}

impl<'a> Constants<'a> {
    fn get(&self, t: usize) -> Option<&'a [u8]> {
        match self.locs.get(t)? {
            Loc::Model(r) => self.model.get(r.clone()),
            Loc::Persistent(i) => self.persistent.get(*i).map(|b| b.as_slice()),
            _ => None,
        }
    }
}

/// One node as a delegate sees it, with the shapes computed at preparation.
pub struct Node<'a> {
    /// Node index in the subgraph.
    pub index: usize,
    pub op: &'a Operator,
    pub code: &'a OperatorCode,
    /// The subgraph's tensors, with computed shapes.
    pub tensors: &'a [Tensor],
    /// The CPU runs nothing for this node: its output is its input's bytes (RESHAPE).
    pub is_view: bool,
    consts: Constants<'a>,
}

impl<'a> Node<'a> {
    /// The builtin operator, or `None` for a custom one.
    pub fn builtin(&self) -> Option<BuiltinOperator> {
        match self.code.code {
            OpCode::Builtin(c) => Some(BuiltinOperator(c)),
            OpCode::Custom(_) => None,
        }
    }

    /// Tensor index of input `k`, if present.
    pub fn input_index(&self, k: usize) -> Option<usize> {
        self.op.inputs.get(k).copied().flatten()
    }

    pub fn input(&self, k: usize) -> Option<&'a Tensor> {
        self.input_index(k).and_then(|t| self.tensors.get(t))
    }

    pub fn output(&self, k: usize) -> Option<&'a Tensor> {
        self.op.outputs.get(k).and_then(|&t| self.tensors.get(t))
    }

    /// The bytes of input `k` if it is a constant (from the file, or folded at preparation,
    /// e.g. fp16 weights already dequantized to f32).
    pub fn constant(&self, k: usize) -> Option<&'a [u8]> {
        self.input_index(k).and_then(|t| self.consts.get(t))
    }
}

/// A group of nodes compiled into one kernel.
pub struct Partition<'a> {
    /// The nodes, in an order that respects their dependencies.
    pub nodes: Vec<Node<'a>>,
    /// Non-constant tensors the partition reads from outside: [`DelegateIo`] input `k` is
    /// tensor `inputs[k]`.
    pub inputs: Vec<usize>,
    /// Tensors the partition must write for the CPU or the caller: [`DelegateIo`] output
    /// `k` is tensor `outputs[k]`. Other tensors the nodes produce stay inside.
    pub outputs: Vec<usize>,
    /// The subgraph's tensors, with computed shapes.
    pub tensors: &'a [Tensor],
    consts: Constants<'a>,
}

impl<'a> Partition<'a> {
    /// The bytes of tensor `t` if it is a constant.
    pub fn constant(&self, t: usize) -> Option<&'a [u8]> {
        self.consts.get(t)
    }
}

/// A partition's inputs and outputs during one invoke.
pub struct DelegateIo<'a> {
    e: Eval<'a>,
}

impl<'a> DelegateIo<'a> {
    /// Input `k` as raw bytes.
    pub fn input_bytes(&self, k: usize) -> Result<&'a [u8]> {
        self.e.inputs.bytes(k)
    }

    /// Input `k` as elements of `T`.
    pub fn input<T: Element>(&self, k: usize) -> Result<&'a [T]> {
        self.e.inputs.get::<T>(k)
    }

    /// Output `k` as raw bytes.
    pub fn output_bytes_mut(&mut self, k: usize) -> Result<&mut [u8]> {
        if k == 0 {
            return Ok(&mut *self.e.output);
        }
        self.e
            .more_outputs
            .get_mut(k - 1)
            .map(|o| &mut **o)
            .ok_or_else(|| Error::Input(format!("delegate output {k} does not exist")))
    }

    /// Output `k` as elements of `T`.
    pub fn output_mut<T: Element>(&mut self, k: usize) -> Result<&mut [T]> {
        ops::cast_mut(self.output_bytes_mut(k)?)
    }
}

struct DelegateStep(Box<dyn DelegateKernel>);

impl Kernel for DelegateStep {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        self.0.invoke(DelegateIo { e })
    }
}

/// The delegates an interpreter applies (at most one for now).
#[derive(Clone, Default)]
pub struct Delegates {
    pub(crate) list: Vec<Arc<dyn Delegate>>,
}

impl fmt::Debug for Delegates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|d| d.name().to_string()))
            .finish()
    }
}

/// Where each node of the entry subgraph went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelegationPlan {
    /// The delegate's name.
    pub delegate: String,
    /// The nodes of each delegated partition, in the order they run.
    pub partitions: Vec<Vec<usize>>,
    /// Nodes left to the CPU, with the delegate's reason.
    pub on_cpu: Vec<(usize, String)>,
    /// Nodes computed once at preparation (constant folding): they run nowhere.
    pub folded: Vec<usize>,
}

impl DelegationPlan {
    /// Where node `index` runs: `Some(p)` for delegated partition `p`.
    pub fn partition_of(&self, index: usize) -> Option<usize> {
        self.partitions.iter().position(|p| p.contains(&index))
    }
}

/// A step before planning: one CPU node, or one delegated partition.
pub(crate) struct Pending {
    /// The node index (the first node, for a partition).
    pub op: usize,
    pub kernel: Box<dyn Kernel>,
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<usize>,
    /// Other nodes that run inside this step (see [`crate::fusion`]), in graph order.
    pub fused: Vec<usize>,
}

/// How preparation left a node.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Kernel,
    View,
    Fold,
}

/// What the subgraph's preparation hands over for delegation.
pub(crate) struct DelegateInput<'a> {
    pub model: &'a Model,
    pub sg: usize,
    pub graph: &'a Subgraph,
    pub tensors: &'a [Tensor],
    pub kinds: &'a [NodeKind],
    pub locs: &'a [Loc],
    pub persistent: &'a [AlignedBuf],
    /// Alias root of each tensor (views share their input's bytes).
    pub root: &'a [usize],
}

/// Replaces the CPU steps of the nodes `delegate` supports by one step per partition.
pub(crate) fn apply(
    delegate: &dyn Delegate,
    d: &DelegateInput<'_>,
    steps: Vec<Pending>,
) -> Result<(Vec<Pending>, DelegationPlan)> {
    let consts = Constants {
        locs: d.locs,
        model: d.model.bytes(),
        persistent: d.persistent,
    };
    let node = |index: usize| {
        let op = &d.graph.operators[index];
        Node {
            index,
            op,
            code: &d.model.operator_codes()[op.opcode_index],
            tensors: d.tensors,
            is_view: d.kinds[index] == NodeKind::View,
            consts,
        }
    };
    let mut plan = DelegationPlan {
        delegate: delegate.name().to_string(),
        ..Default::default()
    };
    // The nodes that run (kernels) or could run (views), in order; folds are constants.
    let live: Vec<usize> = (0..d.kinds.len())
        .filter(|&i| {
            let fold = d.kinds[i] == NodeKind::Fold;
            if fold {
                plan.folded.push(i);
            }
            !fold
        })
        .collect();
    let mut supported = Vec::with_capacity(live.len());
    for &i in &live {
        let verdict = delegate.supports(&node(i));
        if let Err(reason) = &verdict {
            plan.on_cpu.push((i, reason.clone()));
        }
        supported.push(verdict.is_ok());
    }
    let deps: Vec<partition::NodeDeps> = live
        .iter()
        .map(|&i| {
            let op = &d.graph.operators[i];
            partition::NodeDeps {
                inputs: op.inputs.iter().flatten().copied().collect(),
                outputs: op.outputs.clone(),
            }
        })
        .collect();
    let groups = partition::partition(&deps, &supported);

    let mut cpu: Vec<Option<Pending>> = vec![];
    cpu.resize_with(d.kinds.len(), || None);
    for s in steps {
        let op = s.op;
        cpu[op] = Some(s);
    }
    let is_const = |t: usize| matches!(d.locs[t], Loc::Model(_) | Loc::Persistent(_));

    // Roots read outside the group that computes them (by CPU steps, by another partition,
    // or as graph outputs): what partitions must hand back.
    let mut needed = vec![false; d.tensors.len()];
    for &t in &d.graph.outputs {
        needed[d.root[t]] = true;
    }
    for g in &groups {
        let mut inside = vec![false; d.tensors.len()];
        for &li in &g.nodes {
            for &t in &d.graph.operators[live[li]].outputs {
                inside[d.root[t]] = true;
            }
        }
        for &li in &g.nodes {
            let op = &d.graph.operators[live[li]];
            for &t in op.inputs.iter().flatten() {
                if !inside[d.root[t]] {
                    needed[d.root[t]] = true;
                }
            }
        }
    }

    let mut out = Vec::new();
    for g in groups {
        let nodes: Vec<usize> = g.nodes.iter().map(|&li| live[li]).collect();
        if !g.delegated {
            // Views have no CPU step.
            out.extend(nodes.iter().filter_map(|&i| cpu[i].take()));
            continue;
        }
        let mut produced = vec![false; d.tensors.len()];
        let mut computed = vec![false; d.tensors.len()];
        for &i in &nodes {
            for &t in &d.graph.operators[i].outputs {
                produced[t] = true;
                computed[t] = d.kinds[i] == NodeKind::Kernel;
            }
        }
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for &i in &nodes {
            let op = &d.graph.operators[i];
            for &t in op.inputs.iter().flatten() {
                if !produced[t] && !is_const(t) && !inputs.contains(&t) {
                    inputs.push(t);
                }
            }
            for &t in &op.outputs {
                let r = d.root[t];
                if needed[r] && computed[r] && !outputs.contains(&r) {
                    outputs.push(r);
                }
            }
        }
        if outputs.len() > ops::MAX_OUTPUTS {
            return Err(Error::unsupported(
                d.model.op_location(d.sg, nodes[0]),
                format!(
                    "a {} partition would have {} outputs, over {}",
                    delegate.name(),
                    outputs.len(),
                    ops::MAX_OUTPUTS
                ),
            ));
        }
        let partition = Partition {
            nodes: nodes.iter().map(|&i| node(i)).collect(),
            inputs: inputs.clone(),
            outputs: outputs.clone(),
            tensors: d.tensors,
            consts,
        };
        let kernel = delegate.compile(&partition)?;
        // The CPU kernels of these nodes are no longer needed.
        for &i in &nodes {
            cpu[i] = None;
        }
        out.push(Pending {
            op: nodes[0],
            kernel: Box::new(DelegateStep(kernel)),
            inputs: inputs.into_iter().map(Some).collect(),
            outputs,
            fused: Vec::new(),
        });
        plan.partitions.push(nodes);
    }
    Ok((out, plan))
}
