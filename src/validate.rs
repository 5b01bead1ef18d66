//! Graph-level checks that need the whole subgraph: the order of production and use.
//!
//! Index ranges, shapes, buffer sizes and quantization counts are checked while the model is
//! read (`model.rs`); each operator's own rules are checked by its preparation (`ops/`).

use crate::error::{Error, Invalid, Result};
use crate::model::Model;

/// Checks, for every subgraph, that operators only read tensors that already exist (constants,
/// graph inputs, variables or earlier outputs), that every tensor is written at most once and
/// never over a constant or graph input, that no operator reads its own output, and that every
/// graph output exists by the end.
pub(crate) fn dataflow(model: &Model) -> Result<()> {
    for (si, sg) in model.subgraphs().iter().enumerate() {
        let mut defined: Vec<bool> = sg
            .tensors
            .iter()
            .map(|t| t.is_const() || t.is_variable)
            .collect();
        for &i in &sg.inputs {
            defined[i] = true;
        }
        for (oi, op) in sg.operators.iter().enumerate() {
            let at = |t: usize, kind: Invalid| {
                Error::invalid(model.with_tensor(model.op_location(si, oi), si, t), kind)
            };
            for &t in op.inputs.iter().flatten() {
                if !defined[t] {
                    return Err(at(t, Invalid::UsedBeforeProduced));
                }
            }
            for &t in &op.outputs {
                if op.inputs.contains(&Some(t)) {
                    return Err(at(t, Invalid::InputIsOutput));
                }
                if defined[t] && !sg.tensors[t].is_variable && sg.tensors[t].numel != 0 {
                    return Err(at(t, Invalid::OutputAlreadyDefined));
                }
                defined[t] = true;
            }
        }
        for &t in &sg.outputs {
            if !defined[t] {
                let loc = model.with_tensor(crate::error::Location::subgraph(si), si, t);
                return Err(Error::invalid(loc, Invalid::UsedBeforeProduced));
            }
        }
    }
    Ok(())
}
