//! Fusing nodes at planning time, two patterns.
//!
//! A float ADD of a convolution's output and another tensor of the same shape (a ResNet's
//! residual connection) runs inside the convolution, which adds the other tensor to each part
//! of its output as that part is finished, while it is still in cache. The convolution's own output tensor then never exists: the node writes the ADD's
//! output, and the ADD is no step of its own.
//!
//! The sum is the ADD's arithmetic on the two values the unfused graph would have stored
//! (`clamp(a + b)` in float), so results are bit-identical. Only what cannot change the
//! meaning of the graph is fused: the convolution's output has no other reader, is no graph
//! output or variable and has no views, and nothing between the two steps writes the other
//! operand.
//!
//! A float MUL of a LOGISTIC's output by that LOGISTIC's input (SiLU, "swish", as
//! converters emit it) runs inside the LOGISTIC step ([`swish`]): `clamp(x · sigmoid(x))`
//! with the same operations as the two steps, so bit-identical, under the same conditions
//! on the sigmoid tensor.
//!
//! An 8-bit MUL of a lookup table's output by the table's input (int8 SiLU) is tabulated
//! into the table ([`table_times_input`]): the product depends on the input byte alone, and
//! the new table holds the MUL's own result for each byte, so bit-identical.
//!
//! A float pointwise convolution whose large output only a depthwise convolution reads runs
//! inside the depthwise step ([`pointwise_depthwise`]), under the same conditions on that
//! output and on the pointwise input, which is then read later than it was.

use crate::delegate::Pending;
use crate::dtype::DType;
use crate::graph::{OpCode, Subgraph, Tensor};
use crate::model::Model;
use crate::ops::Kernel;
use crate::options::{Activation, OpOptions};
use crate::schema::BuiltinOperator;
use ferrolite_kernels::activation::Clamp;

/// Fuses every ADD of `steps` (subgraph `sg`, no delegate) that qualifies into the step
/// producing one of its operands. `root[t]` is the tensor whose memory `t` shares (views).
pub(crate) fn residual_adds(
    model: &Model,
    sg: usize,
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &mut Vec<Pending>,
) {
    let mut i = 0;
    while i < steps.len() {
        if let Some((producer, other, clamp)) = candidate(model, sg, graph, tensors, root, steps, i)
        {
            // The residual is read as one more input of the producer.
            let k = steps[producer].inputs.len();
            if steps[producer].kernel.fuse_residual_add(k, clamp) {
                steps[producer].inputs.push(Some(other));
                absorb_consumer(steps, producer, i);
                continue;
            }
        }
        i += 1;
    }
}

/// For step `i`, if it is a fusable float ADD: the index of the step producing the operand it
/// would be fused into, the other operand and the ADD's clamp.
fn candidate(
    model: &Model,
    sg: usize,
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &[Pending],
    i: usize,
) -> Option<(usize, usize, Clamp)> {
    let (a, b, clamp) = float_binary(model, sg, graph, tensors, root, &steps[i], |o| match o {
        (BuiltinOperator::ADD, OpOptions::Add { activation, .. }) => Some(*activation),
        (BuiltinOperator::ADD, OpOptions::None) => Some(Activation::None),
        _ => None,
    })?;
    // Float addition is commutative (a sum of two NaNs may keep either one's payload, which
    // neither compiler fixes), so either operand may be the convolution's; try `a` first.
    [(a, b), (b, a)].into_iter().find_map(|(operand, other)| {
        fusable(graph, tensors, root, steps, i, operand, other).map(|p| (p, other, clamp))
    })
}

/// For a step running a builtin float binary operator whose options `activation` accepts
/// (giving its fused activation), with two distinct inputs and an output of one shape, no
/// variable or view: the two inputs and the activation's clamp.
fn float_binary(
    model: &Model,
    sg: usize,
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    step: &Pending,
    activation: impl Fn((BuiltinOperator, &OpOptions)) -> Option<Activation>,
) -> Option<(usize, usize, Clamp)> {
    let op = graph.operators.get(step.op)?;
    let OpCode::Builtin(code) = model.opcode(sg, step.op)?.code else {
        return None;
    };
    let (lo, hi) = activation((BuiltinOperator(code), &op.options))?.float_range();
    let (&[Some(a), Some(b)], &[out]) = (step.inputs.as_slice(), step.outputs.as_slice()) else {
        return None;
    };
    let same = |t: usize| {
        let x = tensors.get(t)?;
        (x.dtype == DType::F32 && x.shape == tensors.get(out)?.shape).then_some(())
    };
    same(a)?;
    same(b)?;
    same(out)?;
    if a == b || tensors[out].is_variable || root[out] != out {
        return None;
    }
    Some((a, b, Clamp { min: lo, max: hi }))
}

/// The step that `operand` can be fused into, for the ADD at step `add` whose other operand
/// is `other`.
fn fusable(
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &[Pending],
    add: usize,
    operand: usize,
    other: usize,
) -> Option<usize> {
    let producer = sole_producer(graph, tensors, root, steps, add, operand)?;
    // Nothing between the two writes the other operand (it is read earlier than it was), and
    // the producer does not write it either.
    (!writes_between(root, &steps[producer..add], other)).then_some(producer)
}

/// The step before `before` whose output 0 is `t`, when `t` is a plain intermediate that only
/// one input of one step reads: no graph output, variable or view, and no other reader.
fn sole_producer(
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &[Pending],
    before: usize,
    t: usize,
) -> Option<usize> {
    if root[t] != t
        || tensors[t].is_variable
        || graph.outputs.contains(&t)
        || root.iter().enumerate().any(|(v, &r)| r == t && v != t)
    {
        return None;
    }
    let producer = (0..before).rev().find(|&s| steps[s].outputs.contains(&t))?;
    if steps[producer].outputs.first() != Some(&t) {
        return None;
    }
    let readers = steps
        .iter()
        .flat_map(|s| s.inputs.iter().flatten())
        .filter(|&&v| root[v] == t)
        .count();
    (readers == 1).then_some(producer)
}

/// Whether any of `steps` writes (as an output, or an input it updates) the memory of `t`.
fn writes_between(root: &[usize], steps: &[Pending], t: usize) -> bool {
    let r = root[t];
    steps.iter().any(|s| {
        let updated = s.kernel.updates_inputs().iter();
        s.outputs.iter().any(|&o| root[o] == r)
            || updated
                .filter_map(|&k| s.inputs.get(k).copied().flatten())
                .any(|v| root[v] == r)
    })
}

/// Fuses every float MUL of a LOGISTIC's output by that LOGISTIC's input (same shapes) into
/// the LOGISTIC step.
pub(crate) fn swish(
    model: &Model,
    sg: usize,
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &mut Vec<Pending>,
) {
    let mut i = 0;
    while i < steps.len() {
        if let Some((p, clamp)) = swish_candidate(model, sg, graph, tensors, root, steps, i) {
            if steps[p].kernel.fuse_times_input(clamp) {
                absorb_consumer(steps, p, i);
                continue;
            }
        }
        i += 1;
    }
}

/// Fuses every 8-bit MUL of a step's output by that step's input (same shapes), which the
/// step can tabulate (an 8-bit lookup table: int8 SiLU), into that step.
pub(crate) fn table_times_input(
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &mut Vec<Pending>,
) {
    let mut i = 0;
    while i < steps.len() {
        if let Some((p, table_first)) = table_candidate(graph, tensors, root, steps, i) {
            let fused = steps[i]
                .kernel
                .mul8()
                .is_some_and(|q| steps[p].kernel.fuse_mul8_of_input(&q, table_first));
            if fused {
                absorb_consumer(steps, p, i);
                continue;
            }
        }
        i += 1;
    }
}

/// For step `i`, if its two inputs and its output are 8-bit tensors of one type and shape,
/// and one input `s` is the output of a step reading the other, `x`, as its input 0, under
/// the conditions of [`swish_candidate`]: that step, and whether `s` is the first input.
/// (The steps' kernels decide whether they are a MUL and a table.)
fn table_candidate(
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &[Pending],
    i: usize,
) -> Option<(usize, bool)> {
    let step = &steps[i];
    let (&[Some(a), Some(b)], &[out]) = (step.inputs.as_slice(), step.outputs.as_slice()) else {
        return None;
    };
    let o = tensors.get(out)?;
    if !matches!(o.dtype, DType::I8 | DType::U8) || o.is_variable || root[out] != out || a == b {
        return None;
    }
    for k in [a, b] {
        let t = tensors.get(k)?;
        if t.dtype != o.dtype || t.shape != o.shape {
            return None;
        }
    }
    times_input_producer(graph, tensors, root, steps, i, a, b)
}

/// For step `i`, if it is a float MUL `x · s` (either order, no broadcast) where `s` is the
/// output of a step reading `x` as its input 0, that only this MUL reads, and nothing in
/// between writes `x`: that step and the MUL's clamp. (The kernel decides whether it is a
/// LOGISTIC.)
fn swish_candidate(
    model: &Model,
    sg: usize,
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &[Pending],
    i: usize,
) -> Option<(usize, Clamp)> {
    let (a, b, clamp) = float_binary(model, sg, graph, tensors, root, &steps[i], |o| match o {
        (BuiltinOperator::MUL, OpOptions::Mul { activation }) => Some(*activation),
        (BuiltinOperator::MUL, OpOptions::None) => Some(Activation::None),
        _ => None,
    })?;
    // Float multiplication is commutative: the sigmoid may be either operand.
    let (p, _) = times_input_producer(graph, tensors, root, steps, i, a, b)?;
    Some((p, clamp))
}

/// For step `i` with operands `a` and `b`: a step producing one of them, `s`, from the
/// other, `x`, as its input 0, with `s` read by step `i` alone and `x` written by no step in
/// between; that step, and whether `s` is `a`.
fn times_input_producer(
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &[Pending],
    i: usize,
    a: usize,
    b: usize,
) -> Option<(usize, bool)> {
    [(a, b, true), (b, a, false)]
        .into_iter()
        .find_map(|(s, x, s_first)| {
            let p = sole_producer(graph, tensors, root, steps, i, s)?;
            let reads_x = steps[p].inputs.first().copied().flatten() == Some(x);
            (reads_x && steps[p].outputs.len() == 1 && !writes_between(root, &steps[p + 1..i], x))
                .then_some((p, s_first))
        })
}

/// Removes step `i`, whose work step `p` (before it) has taken over: `p` now writes `i`'s
/// output and lists `i`'s nodes among those it runs.
fn absorb_consumer(steps: &mut Vec<Pending>, p: usize, i: usize) {
    let gone = steps.remove(i);
    let step = &mut steps[p];
    step.outputs[0] = gone.outputs[0];
    step.fused.push(gone.op);
    step.fused.extend(gone.fused);
}

/// Fuses every float pointwise convolution whose output only a depthwise convolution reads
/// into that depthwise step, then every such depthwise step (fused or not) whose output only
/// a pointwise convolution reads into that pointwise step
/// (`ferrolite_kernels::depthwise_block`): the fused step computes the rows it needs in small
/// bands, so the MobileNet "expand" and depthwise outputs, the largest tensors of such a
/// network, never exist. Bit-identical, as the kernel computes every value as the steps
/// apart would.
pub(crate) fn depthwise_blocks(
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &mut Vec<Pending>,
) {
    absorb_sources(graph, tensors, root, steps, |source, step| {
        source
            .pointwise_stage()
            .is_some_and(|s| step.fuse_pointwise_input(s))
    });
    absorb_sources(graph, tensors, root, steps, |source, step| {
        source
            .depthwise_stage()
            .is_some_and(|s| step.fuse_depthwise_input(s))
    });
}

/// Lets each step take over the step producing its input 0 (see [`fusable_source`]) when
/// `fuse(source, step)` says it did; the step then reads the source's input 0 instead.
fn absorb_sources(
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &mut Vec<Pending>,
    fuse: impl Fn(&dyn Kernel, &mut dyn Kernel) -> bool,
) {
    let mut i = 0;
    while i < steps.len() {
        if let Some(p) = fusable_source(graph, tensors, root, steps, i) {
            let (before, after) = steps.split_at_mut(i);
            if fuse(before[p].kernel.as_ref(), after[0].kernel.as_mut()) {
                let source = steps.remove(p);
                // The fused step, now at `i - 1`, reads the source's input instead; `i` is
                // already the step after it.
                let step = &mut steps[i - 1];
                step.inputs[0] = source.inputs[0];
                let own = std::mem::take(&mut step.fused);
                step.fused = source
                    .fused
                    .into_iter()
                    .chain([source.op])
                    .chain(own)
                    .collect();
                continue;
            }
        }
        i += 1;
    }
}

/// For step `i`, the step producing its input 0 that it could take over: one whose only
/// output that step alone reads, and whose own input 0 nothing in between overwrites.
fn fusable_source(
    graph: &Subgraph,
    tensors: &[Tensor],
    root: &[usize],
    steps: &[Pending],
    i: usize,
) -> Option<usize> {
    let t = (*steps[i].inputs.first()?)?;
    let p = sole_producer(graph, tensors, root, steps, i, t)?;
    let x = (*steps[p].inputs.first()?)?;
    (steps[p].outputs.len() == 1 && !writes_between(root, &steps[p..i], x)).then_some(p)
}
