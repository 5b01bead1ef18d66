//! Control flow and state: WHILE, IF and CALL_ONCE run other subgraphs, each prepared and
//! planned on its own (with its own arena) when this node is prepared; VAR_HANDLE,
//! READ_VARIABLE and ASSIGN_VARIABLE keep resource variables shared by all subgraphs of one
//! interpreter.
//!
//! Loop-carried and branch tensors keep the shapes known at preparation: a body or branch
//! whose outputs would change shape is refused, since the arena is planned once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::registry::{s, OpSupport};
use super::{Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::options::OpOptions;
use crate::schema::BuiltinOperator as B;
use crate::subgraph::SubgraphRun;

const ALL: &[&str] = &[
    "float32", "int8", "uint8", "int16", "int32", "int64", "bool",
];

pub(super) const SUPPORT: &[OpSupport] = &[
    s(
        B::WHILE,
        ALL,
        "loop-carried shapes fixed; iteration limit in Limits",
    ),
    s(
        B::IF,
        ALL,
        "both branches prepared; output shapes must agree",
    ),
    s(B::CALL_ONCE, ALL, "runs its subgraph at the first invoke"),
    s(B::VAR_HANDLE, ALL, ""),
    s(B::READ_VARIABLE, ALL, ""),
    s(B::ASSIGN_VARIABLE, ALL, ""),
];

/// Resource variables, by resource id.
#[derive(Default)]
pub(crate) struct Resources {
    vars: Mutex<HashMap<u32, Vec<u8>>>,
}

/// A resource id derived from the variable's container and shared name (FNV-1a), so that every
/// subgraph refers to the same variable without a registry.
fn resource_id(container: &str, shared_name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in container.bytes().chain([0u8]).chain(shared_name.bytes()) {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn subgraph_index(ctx: &PrepareCtx<'_>, index: i32, what: &str) -> Result<usize> {
    let count = ctx.model.subgraphs().len();
    usize::try_from(index)
        .ok()
        .filter(|&i| i < count && i != ctx.subgraph)
        .ok_or_else(|| {
            ctx.invalid(format!(
                "{what} subgraph index {index} is out of range or refers to itself"
            ))
        })
}

/// Prepares subgraph `sg` with its inputs shaped like `inputs`, checking dtypes.
fn prepare_child(
    ctx: &PrepareCtx<'_>,
    sg: usize,
    inputs: &[&Tensor],
    what: &str,
) -> Result<SubgraphRun> {
    let graph = &ctx.model.subgraphs()[sg];
    if graph.inputs.len() != inputs.len() {
        return Err(ctx.invalid(format!(
            "{what} subgraph {sg} takes {} inputs, the node passes {}",
            graph.inputs.len(),
            inputs.len()
        )));
    }
    for (k, (&t, given)) in graph.inputs.iter().zip(inputs).enumerate() {
        if graph.tensors[t].dtype != given.dtype {
            return Err(ctx.invalid(format!(
                "{what} subgraph {sg} input {k} is {}, the node passes {}",
                graph.tensors[t].dtype, given.dtype
            )));
        }
    }
    let shapes: Vec<(usize, Vec<usize>)> = graph
        .inputs
        .iter()
        .zip(inputs)
        .map(|(&t, given)| (t, given.shape.clone()))
        .collect();
    SubgraphRun::prepare(ctx.model, sg, ctx.env.clone().nested(), &shapes)
}

/// The node's inputs `from..`, which must all be present.
fn node_inputs<'m>(ctx: &PrepareCtx<'m>, from: usize) -> Result<Vec<&'m Tensor>> {
    (from..ctx.op.inputs.len()).map(|k| ctx.input(k)).collect()
}

fn copy(dst: &mut [u8], src: &[u8]) -> Result<()> {
    if dst.len() != src.len() {
        return Err(Error::Internal(format!(
            "copy of {} bytes into {}",
            src.len(),
            dst.len()
        )));
    }
    dst.copy_from_slice(src);
    Ok(())
}

/// Output `k` of a node: output 0 or one of the others.
fn output<'e>(output: &'e mut [u8], more: &'e mut [&mut [u8]], k: usize) -> Result<&'e mut [u8]> {
    if k == 0 {
        Ok(output)
    } else {
        more.get_mut(k - 1)
            .map(|o| &mut **o)
            .ok_or_else(|| Error::Internal(format!("no output {k}")))
    }
}

pub(super) fn prepare_while(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let OpOptions::While {
        cond_subgraph,
        body_subgraph,
    } = ctx.op.options
    else {
        return Err(ctx.invalid("missing WhileOptions"));
    };
    let n = ctx.op.inputs.len();
    ctx.expect_arity(n, n, n)?;
    let cond = subgraph_index(ctx, cond_subgraph, "condition")?;
    let body = subgraph_index(ctx, body_subgraph, "body")?;
    let vars = node_inputs(ctx, 0)?;
    let cond_run = prepare_child(ctx, cond, &vars, "condition")?;
    let body_run = prepare_child(ctx, body, &vars, "body")?;
    let (cond_g, body_g) = (&ctx.model.subgraphs()[cond], &ctx.model.subgraphs()[body]);
    let [cond_out] = cond_g.outputs[..] else {
        return Err(ctx.invalid("the condition subgraph must have exactly one output"));
    };
    if cond_run.tensors[cond_out].dtype != DType::Bool || cond_run.tensors[cond_out].numel != 1 {
        return Err(ctx.invalid("the condition subgraph must output one bool"));
    }
    if body_g.outputs.len() != n {
        return Err(ctx.invalid(format!(
            "the body returns {} values for {n} loop variables",
            body_g.outputs.len()
        )));
    }
    for (k, (&t, var)) in body_g.outputs.iter().zip(&vars).enumerate() {
        let out = &body_run.tensors[t];
        if out.shape != var.shape || out.dtype != var.dtype {
            return Err(ctx.unsupported(format!(
                "loop variable {k} changes from {} {:?} to {} {:?} in the body",
                var.dtype, var.shape, out.dtype, out.shape
            )));
        }
        ctx.set_output_shape(k, &var.shape)?;
    }
    Ok(Prepared::Kernel(Box::new(While {
        cond_inputs: cond_g.inputs.clone(),
        cond_output: cond_out,
        body_inputs: body_g.inputs.clone(),
        body_outputs: body_g.outputs.clone(),
        runs: Mutex::new((cond_run, body_run)),
        max_iterations: ctx.env.max_loop_iterations,
    })))
}

struct While {
    cond_inputs: Vec<usize>,
    cond_output: usize,
    body_inputs: Vec<usize>,
    body_outputs: Vec<usize>,
    runs: Mutex<(SubgraphRun, SubgraphRun)>,
    max_iterations: u64,
}

impl Kernel for While {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let model = e.inputs.model;
        let mut guard = self
            .runs
            .lock()
            .map_err(|_| Error::Internal("WHILE state poisoned".into()))?;
        let (cond, body) = &mut *guard;
        let (first, more) = (e.output, e.more_outputs);
        let n = self.body_inputs.len();
        // The node's outputs hold the loop variables between iterations.
        for k in 0..n {
            copy(output(first, more, k)?, e.inputs.bytes(k)?)?;
        }
        let mut iterations = 0u64;
        loop {
            for (k, &t) in self.cond_inputs.iter().enumerate() {
                copy(cond.tensor_bytes_mut(t)?, output(first, more, k)?)?;
            }
            cond.run(model, e.threads)?;
            if cond
                .tensor_bytes(model, self.cond_output)
                .first()
                .is_none_or(|&b| b == 0)
            {
                return Ok(());
            }
            iterations += 1;
            if iterations > self.max_iterations {
                return Err(Error::Limit(format!(
                    "WHILE ran more than {} iterations",
                    self.max_iterations
                )));
            }
            for (k, &t) in self.body_inputs.iter().enumerate() {
                copy(body.tensor_bytes_mut(t)?, output(first, more, k)?)?;
            }
            body.run(model, e.threads)?;
            for (k, &t) in self.body_outputs.iter().enumerate() {
                copy(output(first, more, k)?, body.tensor_bytes(model, t))?;
            }
        }
    }

    fn persistent_bytes(&self) -> usize {
        self.runs
            .lock()
            .map(|r| child_bytes(&r.0) + child_bytes(&r.1))
            .unwrap_or(0)
    }
}

/// Everything a nested subgraph holds: its arena, scratch and persistent memory.
fn child_bytes(run: &SubgraphRun) -> usize {
    let m = run.memory;
    m.arena_bytes + m.scratch_bytes + m.persistent_bytes
}

pub(super) fn prepare_if(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let OpOptions::If {
        then_subgraph,
        else_subgraph,
    } = ctx.op.options
    else {
        return Err(ctx.invalid("missing IfOptions"));
    };
    let outs = ctx.op.outputs.len();
    ctx.expect_arity(1, usize::MAX, outs)?;
    let cond = ctx.input(0)?;
    if cond.numel != 1 || cond.bytes.is_none() {
        return Err(ctx.invalid("the condition must be a single value"));
    }
    let args = node_inputs(ctx, 1)?;
    let mut branches = Vec::with_capacity(2);
    for (index, what) in [(then_subgraph, "then"), (else_subgraph, "else")] {
        let sg = subgraph_index(ctx, index, what)?;
        let run = prepare_child(ctx, sg, &args, what)?;
        let graph = &ctx.model.subgraphs()[sg];
        if graph.outputs.len() != outs {
            return Err(ctx.invalid(format!(
                "the {what} branch returns {} values, the node has {outs}",
                graph.outputs.len()
            )));
        }
        branches.push((graph.inputs.clone(), graph.outputs.clone(), run));
    }
    for k in 0..outs {
        let (a, b) = (
            &branches[0].2.tensors[branches[0].1[k]],
            &branches[1].2.tensors[branches[1].1[k]],
        );
        if a.shape != b.shape || a.dtype != b.dtype {
            return Err(ctx.unsupported(format!(
                "branches disagree on output {k}: {} {:?} vs {} {:?}",
                a.dtype, a.shape, b.dtype, b.shape
            )));
        }
        ctx.set_output_shape(k, &a.shape)?;
    }
    let mut it = branches.into_iter();
    let (then_b, else_b) = (it.next(), it.next());
    let (Some(then_b), Some(else_b)) = (then_b, else_b) else {
        return Err(ctx.invalid("IF needs two branches"));
    };
    Ok(Prepared::Kernel(Box::new(If {
        then_b: Branch::new(then_b),
        else_b: Branch::new(else_b),
    })))
}

struct Branch {
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    run: Mutex<SubgraphRun>,
}

impl Branch {
    fn new((inputs, outputs, run): (Vec<usize>, Vec<usize>, SubgraphRun)) -> Branch {
        Branch {
            inputs,
            outputs,
            run: Mutex::new(run),
        }
    }
}

struct If {
    then_b: Branch,
    else_b: Branch,
}

impl Kernel for If {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let model = e.inputs.model;
        // Any non-zero byte of the condition means true (bool, or a numeric scalar).
        let taken = e.inputs.bytes(0)?.iter().any(|&b| b != 0);
        let branch = if taken { &self.then_b } else { &self.else_b };
        let mut run = branch
            .run
            .lock()
            .map_err(|_| Error::Internal("IF state poisoned".into()))?;
        for (k, &t) in branch.inputs.iter().enumerate() {
            copy(run.tensor_bytes_mut(t)?, e.inputs.bytes(k + 1)?)?;
        }
        run.run(model, e.threads)?;
        let (first, more) = (e.output, e.more_outputs);
        for (k, &t) in branch.outputs.iter().enumerate() {
            copy(output(first, more, k)?, run.tensor_bytes(model, t))?;
        }
        Ok(())
    }

    fn persistent_bytes(&self) -> usize {
        [&self.then_b, &self.else_b]
            .iter()
            .map(|b| b.run.lock().map(|r| child_bytes(&r)).unwrap_or(0))
            .sum()
    }
}

pub(super) fn prepare_call_once(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let OpOptions::CallOnce { init_subgraph } = ctx.op.options else {
        return Err(ctx.invalid("missing CallOnceOptions"));
    };
    ctx.expect_arity(0, 0, 0)?;
    let sg = subgraph_index(ctx, init_subgraph, "init")?;
    let run = prepare_child(ctx, sg, &[], "init")?;
    Ok(Prepared::Kernel(Box::new(CallOnce {
        run: Mutex::new(run),
        done: AtomicBool::new(false),
    })))
}

struct CallOnce {
    run: Mutex<SubgraphRun>,
    done: AtomicBool,
}

impl Kernel for CallOnce {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        if self.done.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut run = self
            .run
            .lock()
            .map_err(|_| Error::Internal("CALL_ONCE state poisoned".into()))?;
        run.run(e.inputs.model, e.threads)?;
        self.done.store(true, Ordering::Release);
        Ok(())
    }
}

pub(super) fn prepare_var_handle(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(0, 0, 1)?;
    let OpOptions::VarHandle {
        container,
        shared_name,
    } = &ctx.op.options
    else {
        return Err(ctx.invalid("missing VarHandleOptions"));
    };
    if ctx.output(0)?.dtype != DType::Resource {
        return Err(ctx.unsupported_dtypes());
    }
    ctx.set_output_shape(0, &[])?;
    Ok(Prepared::Kernel(Box::new(VarHandle {
        id: resource_id(container, shared_name),
    })))
}

struct VarHandle {
    id: u32,
}

impl Kernel for VarHandle {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        copy(e.output, &self.id.to_le_bytes())
    }
}

fn read_id(bytes: &[u8]) -> Result<u32> {
    let b: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::Internal("resource tensor too small".into()))?;
    Ok(u32::from_le_bytes(b))
}

pub(super) fn prepare_read_variable(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 1, 1)?;
    if ctx.input(0)?.dtype != DType::Resource {
        return Err(ctx.unsupported_dtypes());
    }
    if ctx.output(0)?.bytes.is_none() {
        return Err(ctx.unsupported_dtypes());
    }
    Ok(Prepared::Kernel(Box::new(ReadVariable {
        resources: ctx.env.resources.clone(),
    })))
}

struct ReadVariable {
    resources: std::sync::Arc<Resources>,
}

impl Kernel for ReadVariable {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let id = read_id(e.inputs.bytes(0)?)?;
        let vars = self
            .resources
            .vars
            .lock()
            .map_err(|_| Error::Internal("variables poisoned".into()))?;
        let value = vars.get(&id).ok_or_else(|| {
            Error::Input("READ_VARIABLE of a variable that was never assigned".into())
        })?;
        if value.len() != e.output.len() {
            return Err(Error::Input(format!(
                "variable holds {} bytes, READ_VARIABLE's output has {}",
                value.len(),
                e.output.len()
            )));
        }
        e.output.copy_from_slice(value);
        Ok(())
    }
}

pub(super) fn prepare_assign_variable(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 0)?;
    if ctx.input(0)?.dtype != DType::Resource || ctx.input(1)?.bytes.is_none() {
        return Err(ctx.unsupported_dtypes());
    }
    Ok(Prepared::Kernel(Box::new(AssignVariable {
        resources: ctx.env.resources.clone(),
    })))
}

struct AssignVariable {
    resources: std::sync::Arc<Resources>,
}

impl Kernel for AssignVariable {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let id = read_id(e.inputs.bytes(0)?)?;
        let value = e.inputs.bytes(1)?;
        let mut vars = self
            .resources
            .vars
            .lock()
            .map_err(|_| Error::Internal("variables poisoned".into()))?;
        // The first assignment allocates; later ones reuse the buffer when the size is the same.
        let slot = vars.entry(id).or_default();
        slot.clear();
        slot.extend_from_slice(value);
        Ok(())
    }
}
