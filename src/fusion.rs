//! Fusing nodes at planning time: a float ADD of a convolution's output and another tensor of
//! the same shape (a ResNet's residual connection) runs inside the convolution, which adds
//! the other tensor to each part of its output as that part is finished, while it is still in
//! cache. The convolution's own output tensor then never exists: the node writes the ADD's
//! output, and the ADD is no step of its own.
//!
//! The sum is the ADD's arithmetic on the two values the unfused graph would have stored
//! (`clamp(a + b)` in float), so results are bit-identical. Only what cannot change the
//! meaning of the graph is fused: the convolution's output has no other reader, is no graph
//! output or variable and has no views, and nothing between the two steps writes the other
//! operand.

use crate::delegate::Pending;
use crate::dtype::DType;
use crate::graph::{OpCode, Subgraph, Tensor};
use crate::model::Model;
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
                let add = steps.remove(i);
                let step = &mut steps[producer];
                step.inputs.push(Some(other));
                step.outputs[0] = add.outputs[0];
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
    let add = &steps[i];
    let op = graph.operators.get(add.op)?;
    let code = model.opcode(sg, add.op)?;
    if code.code != OpCode::Builtin(BuiltinOperator::ADD.0) {
        return None;
    }
    let activation = match op.options {
        OpOptions::Add { activation, .. } => activation,
        OpOptions::None => Activation::None,
        _ => return None,
    };
    let (lo, hi) = activation.float_range();
    let clamp = Clamp { min: lo, max: hi };
    let (&[Some(a), Some(b)], &[out]) = (add.inputs.as_slice(), add.outputs.as_slice()) else {
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
    // Float addition is commutative (a sum of two NaNs may keep either one's payload, which
    // neither compiler fixes), so either operand may be the convolution's; try `a` first.
    [(a, b), (b, a)].into_iter().find_map(|(operand, other)| {
        fusable(graph, tensors, root, steps, i, operand, other).map(|p| (p, other, clamp))
    })
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
    if root[operand] != operand
        || tensors[operand].is_variable
        || graph.outputs.contains(&operand)
        || root
            .iter()
            .enumerate()
            .any(|(t, &r)| r == operand && t != operand)
    {
        return None;
    }
    // Its producer writes it as output 0 and comes before the ADD.
    let producer = (0..add)
        .rev()
        .find(|&s| steps[s].outputs.contains(&operand))?;
    if steps[producer].outputs.first() != Some(&operand) {
        return None;
    }
    // The ADD is its only reader.
    let readers = steps
        .iter()
        .flat_map(|s| s.inputs.iter().flatten())
        .filter(|&&t| root[t] == operand)
        .count();
    if readers != 1 {
        return None;
    }
    // Nothing between the two writes the other operand (it is read earlier than it was), and
    // the producer does not write it either.
    let r = root[other];
    let writes = |s: &Pending| {
        let updated = s.kernel.updates_inputs().iter();
        s.outputs.iter().any(|&t| root[t] == r)
            || updated
                .filter_map(|&k| s.inputs.get(k).copied().flatten())
                .any(|t| root[t] == r)
    };
    if steps[producer..add].iter().any(writes) {
        return None;
    }
    Some(producer)
}
