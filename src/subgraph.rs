//! One subgraph, prepared and planned: its kernel steps, tensor locations and arena, and
//! the loop that runs them. The interpreter runs one; control-flow kernels own more.

use crate::aligned::AlignedBuf;
use crate::delegate::{DelegateInput, NodeKind, Pending};
use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::interpreter::MemoryReport;
use crate::model::Model;
use crate::ops::{self, Eval, Inputs, Kernel, Loc, PrepareCtx, Prepared};
use crate::planner;
use ferrolite_kernels::isa::Isa;

pub(crate) struct Step {
    pub(crate) op: usize,
    kernel: Box<dyn Kernel>,
    inputs: Vec<Loc>,
    /// Arena ranges of the outputs, in output order.
    outputs: Vec<std::ops::Range<usize>>,
    /// Output indices sorted by arena offset, to split the arena around them.
    order: Vec<usize>,
    /// Other nodes that run inside this one (fused), in graph order.
    pub(crate) fused: Vec<usize>,
}

/// Outcome of preparing every node: either the prepared nodes or the full list of problems.
struct Preparation {
    nodes: Vec<Prepared>,
    folded: Vec<Option<AlignedBuf>>,
    /// Tensor metadata with computed shapes.
    tensors: Vec<Tensor>,
}

/// A prepared subgraph.
pub(crate) struct SubgraphRun {
    pub(crate) steps: Vec<Step>,
    /// Where each node went, when a delegate was applied.
    pub(crate) delegation: Option<crate::delegate::DelegationPlan>,
    pub(crate) locs: Vec<Loc>,
    arena: AlignedBuf,
    scratch: AlignedBuf,
    persistent: Vec<AlignedBuf>,
    pub(crate) memory: MemoryReport,
    /// Tensor metadata with the shapes computed at preparation.
    pub(crate) tensors: Vec<Tensor>,
}

impl SubgraphRun {
    /// Prepares every node of subgraph `sg` (every problem is reported at once) and plans its
    /// arena. `input_shapes` overrides the shapes of some graph inputs.
    pub(crate) fn prepare(
        model: &Model,
        sg: usize,
        env: PrepareEnv,
        input_shapes: &[(usize, Vec<usize>)],
    ) -> Result<SubgraphRun> {
        if env.depth > env.max_depth {
            return Err(Error::Limit(format!(
                "subgraphs nest deeper than {} (control flow calling itself?)",
                env.max_depth
            )));
        }
        let prep = prepare_all(model, sg, env.clone(), input_shapes)?;
        let graph = &model.subgraphs()[sg];
        let tensors = prep.tensors;
        let ntensors = tensors.len();
        let mut persistent: Vec<AlignedBuf> = Vec::new();
        let mut locs: Vec<Loc> = vec![Loc::None; ntensors];

        // Constants: read in place when the file's alignment suits the element type, else
        // copied once (files only guarantee 4-byte alignment; `include_bytes!` guarantees none).
        for (t, tensor) in graph.tensors.iter().enumerate() {
            if let Some(range) = &tensor.data {
                let align = tensor.dtype.size().unwrap_or(1).clamp(1, 8);
                let start = model.bytes().as_ptr() as usize + range.start;
                if start % align == 0 {
                    locs[t] = Loc::Model(range.clone());
                } else {
                    let bytes = model.slice(range).unwrap_or_default();
                    persistent.push(AlignedBuf::copy_of(bytes)?);
                    locs[t] = Loc::Persistent(persistent.len() - 1);
                }
            }
        }
        // Folded constants.
        for (t, buf) in prep.folded.into_iter().enumerate() {
            if let Some(buf) = buf {
                persistent.push(buf);
                locs[t] = Loc::Persistent(persistent.len() - 1);
            }
        }

        // Alias roots (views share their input's memory) and the kernel steps.
        let mut root: Vec<usize> = (0..ntensors).collect();
        let mut kernels: Vec<Pending> = Vec::new();
        let mut kinds = Vec::with_capacity(prep.nodes.len());
        for (index, node) in prep.nodes.into_iter().enumerate() {
            let op = &graph.operators[index];
            kinds.push(match node {
                Prepared::Kernel(_) => NodeKind::Kernel,
                Prepared::View => NodeKind::View,
                Prepared::Fold(_) => NodeKind::Fold,
            });
            match node {
                Prepared::Kernel(kernel) => kernels.push(Pending {
                    op: index,
                    kernel,
                    inputs: op.inputs.clone(),
                    outputs: op.outputs.clone(),
                    fused: Vec::new(),
                }),
                Prepared::View => {
                    let input = op.inputs.first().copied().flatten().ok_or_else(|| {
                        Error::Internal(format!("view node {index} has no input"))
                    })?;
                    let out = op.outputs[0];
                    root[out] = root[input];
                    if locs[root[input]] != Loc::None {
                        locs[out] = locs[root[input]].clone();
                    }
                }
                Prepared::Fold(_) => {}
            }
        }
        // A delegate takes over groups of nodes: each group becomes one step.
        let mut delegation = None;
        if let Some(delegate) = env.delegates.list.first() {
            let input = DelegateInput {
                model,
                sg,
                graph,
                tensors: &tensors,
                kinds: &kinds,
                locs: &locs,
                persistent: &persistent,
                root: &root,
            };
            let (steps, plan) = crate::delegate::apply(delegate.as_ref(), &input, kernels)?;
            kernels = steps;
            delegation = Some(plan);
        } else if env.fuse {
            // (With a delegate, its partitions decide where each node runs; nothing is fused.)
            crate::fusion::residual_adds(model, sg, graph, &tensors, &root, &mut kernels);
            crate::fusion::swish(model, sg, graph, &tensors, &root, &mut kernels);
            crate::fusion::table_times_input(graph, &tensors, &root, &mut kernels);
            crate::fusion::depthwise_blocks(graph, &tensors, &root, &mut kernels);
        }

        // Lifetimes of arena buffers, in kernel steps.
        let nsteps = kernels.len();
        let end = nsteps; // one past the last step: graph outputs live until the caller reads them
        let in_arena = |t: usize| locs[t] == Loc::None && tensors[t].bytes.is_some();
        let mut first: Vec<Option<usize>> = vec![None; ntensors];
        let mut last: Vec<usize> = vec![0; ntensors];
        for &t in &graph.inputs {
            let r = root[t];
            first[r] = Some(0);
        }
        for (t, tensor) in graph.tensors.iter().enumerate() {
            if tensor.is_variable && in_arena(root[t]) {
                first[root[t]] = Some(0);
                last[root[t]] = end;
            }
        }
        for (step, op) in kernels.iter().enumerate() {
            for &t in op.inputs.iter().flatten() {
                let r = root[t];
                last[r] = last[r].max(step);
            }
            for &t in &op.outputs {
                let r = root[t];
                if first[r].is_none() {
                    first[r] = Some(step);
                }
                last[r] = last[r].max(step);
            }
        }
        for &t in &graph.outputs {
            last[root[t]] = end;
        }
        let mut buffers = Vec::new();
        let mut buffer_of: Vec<Option<usize>> = vec![None; ntensors];
        for t in 0..ntensors {
            if root[t] == t && in_arena(t) {
                if let Some(f) = first[t] {
                    let bytes = tensors[t].bytes.unwrap_or(0);
                    buffer_of[t] = Some(buffers.len());
                    buffers.push(planner::Interval {
                        bytes,
                        first: f,
                        last: last[t].max(f),
                    });
                }
            }
        }
        let plan = planner::plan(&buffers);
        for t in 0..ntensors {
            if let Some(b) = buffer_of[root[t]] {
                let off = plan.offsets[b];
                locs[t] = Loc::Arena(off..off + tensors[t].bytes.unwrap_or(0));
            }
        }

        // Each step sees only the inputs its kernel reads at run time.
        let mut steps = Vec::with_capacity(kernels.len());
        for node in kernels {
            let Pending {
                op: index,
                kernel,
                inputs: node_inputs,
                outputs: node_outputs,
                fused,
            } = node;
            let updated = kernel.updates_inputs();
            let inputs = node_inputs
                .iter()
                .enumerate()
                .map(|(k, t)| match t {
                    Some(t) if kernel.reads_input(k) && !updated.contains(&k) => locs[*t].clone(),
                    _ => Loc::None,
                })
                .collect();
            // Inputs updated in place are written like outputs, after the real ones.
            let in_place = updated
                .iter()
                .map(|&k| node_inputs.get(k).copied().flatten());
            let written: Vec<Option<usize>> = node_outputs
                .iter()
                .map(|&t| Some(t))
                .chain(in_place)
                .collect();
            let mut outputs = Vec::with_capacity(written.len());
            for t in written {
                let Some(t) = t else {
                    return Err(Error::Internal(format!(
                        "node {index} updates an absent input in place"
                    )));
                };
                match &locs[t] {
                    Loc::Arena(r) => outputs.push(r.clone()),
                    _ => {
                        return Err(Error::Internal(format!(
                            "node {index}'s output {t} is not in the arena"
                        )))
                    }
                }
            }
            let mut order: Vec<usize> = (0..outputs.len()).collect();
            order.sort_by_key(|&i| (outputs[i].start, outputs[i].end));
            steps.push(Step {
                op: index,
                kernel,
                inputs,
                outputs,
                order,
                fused,
            });
        }

        // Persistent buffers only read during preparation (e.g. folded fp16 weights that a
        // convolution has since packed) are dropped.
        let mut used = vec![false; persistent.len()];
        let graph_io = graph.outputs.iter().chain(&graph.inputs).map(|&t| &locs[t]);
        for loc in steps.iter().flat_map(|s| s.inputs.iter()).chain(graph_io) {
            if let Loc::Persistent(i) = loc {
                used[*i] = true;
            }
        }
        for (i, u) in used.iter().enumerate() {
            if !u {
                persistent[i] = AlignedBuf::default();
            }
        }

        let scratch_bytes = steps
            .iter()
            .map(|s| s.kernel.scratch_bytes())
            .max()
            .unwrap_or(0);
        let persistent_bytes = persistent.iter().map(|b| b.len()).sum::<usize>()
            + steps
                .iter()
                .map(|s| s.kernel.persistent_bytes())
                .sum::<usize>();
        let memory = MemoryReport {
            arena_bytes: plan.arena_bytes,
            arena_lower_bound_bytes: plan.lower_bound_bytes,
            arena_naive_bytes: plan.naive_bytes,
            persistent_bytes,
            scratch_bytes,
        };
        let total = memory
            .arena_bytes
            .saturating_add(scratch_bytes)
            .saturating_add(persistent_bytes);
        if total > env.max_memory_bytes {
            return Err(Error::Limit(format!(
                "the model needs {total} bytes of memory, over the limit of {}",
                env.max_memory_bytes
            )));
        }
        let arena = AlignedBuf::zeroed(plan.arena_bytes)?;
        let scratch = AlignedBuf::zeroed(scratch_bytes)?;
        Ok(SubgraphRun {
            steps,
            delegation,
            locs,
            arena,
            scratch,
            persistent,
            memory,
            tensors,
        })
    }

    /// Runs every step on the current inputs. Allocates nothing itself (a kernel split over
    /// threads hands each extra worker one small job).
    pub(crate) fn run(&mut self, model: &[u8], threads: usize) -> Result<()> {
        self.run_timed(model, threads, None)
    }

    /// Like [`SubgraphRun::run`]; with `times` (one entry per step), adds each step's wall
    /// time to its entry. Nested subgraphs count towards the control-flow node that runs them.
    pub(crate) fn run_timed(
        &mut self,
        model: &[u8],
        threads: usize,
        times: Option<&mut [std::time::Duration]>,
    ) -> Result<()> {
        run_steps(
            &self.steps,
            &mut self.arena,
            &mut self.scratch,
            &self.persistent,
            model,
            threads,
            times,
        )
    }

    /// The bytes of tensor `t` (arena, constant or folded).
    pub(crate) fn tensor_bytes<'a>(&'a self, model: &'a [u8], t: usize) -> &'a [u8] {
        match self.locs.get(t) {
            Some(Loc::Arena(r)) => &self.arena.as_slice()[r.clone()],
            Some(Loc::Model(r)) => model.get(r.clone()).unwrap_or_default(),
            Some(Loc::Persistent(i)) => self.persistent[*i].as_slice(),
            _ => &[],
        }
    }

    /// The writable bytes of tensor `t`, which must live in the arena.
    pub(crate) fn tensor_bytes_mut(&mut self, t: usize) -> Result<&mut [u8]> {
        match self.locs.get(t).cloned() {
            Some(Loc::Arena(r)) => Ok(&mut self.arena.as_mut_slice()[r]),
            Some(Loc::None) => Ok(&mut []),
            _ => Err(Error::Input(format!(
                "tensor {t} is a constant and cannot be written"
            ))),
        }
    }
}

fn run_steps(
    steps: &[Step],
    arena: &mut AlignedBuf,
    scratch: &mut AlignedBuf,
    persistent: &[AlignedBuf],
    model: &[u8],
    threads: usize,
    mut times: Option<&mut [std::time::Duration]>,
) -> Result<()> {
    let arena = arena.as_mut_slice();
    let scratch = scratch.as_mut_slice();
    for (k, step) in steps.iter().enumerate() {
        let time = times.as_deref_mut().and_then(|t| t.get_mut(k));
        // Most nodes have one output: arrays sized for a few, so that the per-node set-up
        // does not clear room for 64 (measured: 12% of a 40-node transformer block).
        if step.outputs.len() <= FEW_OUTPUTS {
            run_step::<FEW_OUTPUTS, { FEW_OUTPUTS + 1 }>(
                step, arena, scratch, persistent, model, threads, time,
            )?;
        } else {
            run_step::<{ ops::MAX_OUTPUTS }, { ops::MAX_OUTPUTS + 1 }>(
                step, arena, scratch, persistent, model, threads, time,
            )?;
        }
    }
    Ok(())
}

/// Outputs of the nodes whose set-up uses the small arrays.
const FEW_OUTPUTS: usize = 4;

/// Runs one node with room for `N` outputs (`P = N + 1` pieces of the arena between them).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run_step<const N: usize, const P: usize>(
    step: &Step,
    arena: &mut [u8],
    scratch: &mut [u8],
    persistent: &[AlignedBuf],
    model: &[u8],
    threads: usize,
    time: Option<&mut std::time::Duration>,
) -> Result<()> {
    // Cut the arena into the outputs (written) and the pieces between them (read), in
    // fixed-size arrays so that nothing is allocated.
    let mut outs: [&mut [u8]; N] = std::array::from_fn(|_| Default::default());
    let mut pieces: [(usize, &[u8]); P] = std::array::from_fn(|_| (0, &[][..]));
    let mut rest: &mut [u8] = arena;
    let mut base = 0;
    let mut n = 0;
    for &i in &step.order {
        let r = &step.outputs[i];
        let overlap = || Error::Internal(format!("outputs of node {} overlap", step.op));
        let (before, tail) = rest.split_at_mut(r.start.checked_sub(base).ok_or_else(overlap)?);
        let (out, after) = tail.split_at_mut(r.len());
        pieces[n] = (base, before);
        n += 1;
        outs[i] = out;
        base = r.end;
        rest = after;
    }
    pieces[n] = (base, rest);
    let (first, more) = outs[..step.outputs.len().max(1)].split_at_mut(1);
    let e = Eval {
        inputs: Inputs {
            locs: &step.inputs,
            pieces: &pieces[..=n],
            model,
            persistent,
        },
        output: std::mem::take(&mut first[0]),
        more_outputs: more,
        scratch,
        threads,
    };
    match time {
        None => step.kernel.eval(e)?,
        Some(t) => {
            let start = std::time::Instant::now();
            step.kernel.eval(e)?;
            *t += start.elapsed();
        }
    }
    Ok(())
}

/// What preparation needs besides the model.
#[derive(Clone)]
pub(crate) struct PrepareEnv {
    pub threads: usize,
    pub isa: Isa,
    pub max_elements: usize,
    pub max_memory_bytes: usize,
    /// Nesting depth of the subgraph being prepared (0 for the entry subgraph).
    pub depth: usize,
    pub max_depth: usize,
    pub max_loop_iterations: u64,
    /// Resource variables shared by every subgraph of one interpreter.
    pub resources: std::sync::Arc<crate::ops::control::Resources>,
    /// Registered custom operators.
    pub custom_ops: crate::custom::CustomOps,
    /// Delegates that take over the nodes they support.
    pub delegates: crate::delegate::Delegates,
    /// Whether nodes may be fused (see [`crate::fusion`]).
    pub fuse: bool,
}

impl PrepareEnv {
    pub(crate) fn new(options: &crate::interpreter::Options, isa: Isa) -> PrepareEnv {
        let l = &options.limits;
        PrepareEnv {
            threads: options.threads,
            isa,
            max_elements: l.max_tensor_elements,
            max_memory_bytes: l.max_memory_bytes,
            depth: 0,
            max_depth: l.max_subgraph_depth,
            max_loop_iterations: l.max_loop_iterations,
            resources: Default::default(),
            custom_ops: options.custom_ops.clone(),
            delegates: options.delegates.clone(),
            fuse: options.fuse,
        }
    }

    /// The environment of a subgraph called from this one.
    pub(crate) fn nested(self) -> PrepareEnv {
        PrepareEnv {
            depth: self.depth + 1,
            ..self
        }
    }
}

/// Prepares every node in order. Folded constants and computed output shapes become visible
/// to later nodes; the returned tensor table holds the computed shapes.
pub(crate) fn prepare_nodes(
    model: &Model,
    sg: usize,
    env: PrepareEnv,
    input_shapes: &[(usize, Vec<usize>)],
) -> (Vec<Result<Prepared>>, Vec<Option<AlignedBuf>>, Vec<Tensor>) {
    let graph = &model.subgraphs()[sg];
    let mut tensors = graph.tensors.clone();
    for (t, shape) in input_shapes {
        let tensor = &mut tensors[*t];
        tensor.numel = shape.iter().product();
        tensor.bytes = tensor.dtype.bytes_for(tensor.numel);
        tensor.shape = shape.clone();
    }
    let mut folded: Vec<Option<AlignedBuf>> = (0..graph.tensors.len()).map(|_| None).collect();
    let mut results = Vec::with_capacity(graph.operators.len());
    // Memory the prepared nodes hold (packed weights, tables, folded constants). It is counted
    // as it grows: a constant shared by many nodes is copied by each, so the total can outgrow
    // the file by any factor before the interpreter's final memory check.
    let mut held: usize = 0;
    for (index, op) in graph.operators.iter().enumerate() {
        // Sparse constants read by any op but DENSIFY are densified once, here, and then look
        // like folded constants to the op.
        let is_densify = matches!(
            model.operator_codes().get(op.opcode_index).map(|c| &c.code),
            Some(crate::graph::OpCode::Builtin(c)) if *c == crate::schema::BuiltinOperator::DENSIFY.0
        );
        let dense_err = if is_densify {
            None
        } else {
            densify_inputs(model, sg, op, &tensors, &mut folded, &mut held).err()
        };
        let ctx = PrepareCtx {
            model,
            subgraph: sg,
            index,
            op,
            folded: &folded,
            threads: env.threads,
            isa: env.isa,
            tensors: &tensors,
            out_shapes: Default::default(),
            max_elements: env.max_elements,
            env: env.clone(),
        };
        let r = match dense_err {
            Some(e) => Err(ctx.unsupported(e)),
            None => ops::prepare(&ctx),
        };
        let shapes = ctx.out_shapes.into_inner();
        if r.is_ok() {
            for (k, shape) in shapes.into_iter().enumerate() {
                if let (Some(shape), Some(&t)) = (shape, op.outputs.get(k)) {
                    let tensor = &mut tensors[t];
                    tensor.numel = shape.iter().product();
                    tensor.bytes = tensor.dtype.bytes_for(tensor.numel);
                    tensor.shape = shape;
                }
            }
        }
        held = held.saturating_add(match &r {
            Ok(Prepared::Kernel(k)) => k.persistent_bytes(),
            Ok(Prepared::Fold(buf)) => buf.len(),
            _ => 0,
        });
        if held > env.max_memory_bytes {
            results.push(Err(Error::Limit(format!(
                "preparing node {index} brings the memory held by prepared nodes to {held} \
                 bytes, over the limit of {}",
                env.max_memory_bytes
            ))));
            break;
        }
        results.push(match r {
            Ok(Prepared::Fold(buf)) => {
                folded[op.outputs[0]] = Some(buf);
                Ok(Prepared::Fold(AlignedBuf::default()))
            }
            other => other,
        });
    }
    (results, folded, tensors)
}

/// Folds the dense form of every sparse constant input of `op` that is not folded yet.
fn densify_inputs(
    model: &Model,
    sg: usize,
    op: &crate::graph::Operator,
    tensors: &[crate::graph::Tensor],
    folded: &mut [Option<AlignedBuf>],
    held: &mut usize,
) -> std::result::Result<(), String> {
    for &t in op.inputs.iter().flatten() {
        let Some(tensor) = tensors.get(t) else {
            continue;
        };
        if tensor.sparsity.is_none() || folded[t].is_some() {
            continue;
        }
        let values = model
            .tensor_data(sg, t)
            .ok_or_else(|| format!("sparse tensor {t} is not a constant"))?;
        let buf = crate::ops::densify_tensor(tensor, values)
            .map_err(|e| format!("sparse tensor {t}: {e}"))?;
        *held = held.saturating_add(buf.len());
        folded[t] = Some(buf);
    }
    Ok(())
}

fn prepare_all(
    model: &Model,
    sg: usize,
    env: PrepareEnv,
    input_shapes: &[(usize, Vec<usize>)],
) -> Result<Preparation> {
    for (t, shape) in input_shapes {
        let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if numel.is_none_or(|n| n > env.max_elements) {
            return Err(Error::Limit(format!(
                "input tensor {t} shape {shape:?} is too large"
            )));
        }
    }
    let (results, folded, tensors) = prepare_nodes(model, sg, env, input_shapes);
    let mut nodes = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(p) => nodes.push(p),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(Preparation {
            nodes,
            folded,
            tensors,
        }),
        1 => Err(errors.remove(0)),
        _ => Err(Error::UnsupportedOps(errors)),
    }
}
