//! Custom operators: user kernels registered by name, like TFLite's op resolver.
//!
//! ferrolite ships one custom operator of its own, `TFLite_Detection_PostProcess` (as TFLite's
//! builtin resolver does); registering that name replaces the shipped kernel.
//!
//! ```
//! use std::sync::Arc;
//! use ferrolite::custom::{CustomContext, CustomKernel, CustomNode, CustomOp};
//!
//! /// `out = in * factor`, with the factor read from the node's flexbuffer options.
//! struct Scale;
//! struct ScaleKernel(f32);
//!
//! impl CustomOp for Scale {
//!     fn prepare(&self, node: &CustomNode<'_>) -> ferrolite::Result<Box<dyn CustomKernel>> {
//!         let factor = node
//!             .options()?
//!             .map(|o| o.as_map().idx("factor").as_f32())
//!             .unwrap_or(1.0);
//!         Ok(Box::new(ScaleKernel(factor)))
//!     }
//! }
//!
//! impl CustomKernel for ScaleKernel {
//!     fn eval(&self, mut ctx: CustomContext<'_>) -> ferrolite::Result<()> {
//!         let input = ctx.input::<f32>(0)?;
//!         for (o, i) in ctx.output_mut::<f32>(0)?.iter_mut().zip(input) {
//!             *o = i * self.0;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let options = ferrolite::Options::default().custom_op("Scale", Arc::new(Scale));
//! # let _ = options;
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::dtype::Element;
use crate::error::{Error, Result};
use crate::interpreter::TensorInfo;
use crate::ops::{self, Eval, Kernel, PrepareCtx, Prepared};

/// A custom operator: checks a node at preparation and returns its kernel.
pub trait CustomOp: Send + Sync {
    fn prepare(&self, node: &CustomNode<'_>) -> Result<Box<dyn CustomKernel>>;
}

/// The run-time part of a custom operator.
pub trait CustomKernel: Send + Sync {
    /// Computes the outputs from the inputs. Must not panic; should not allocate.
    fn eval(&self, ctx: CustomContext<'_>) -> Result<()>;
}

/// What a custom operator's preparation sees of its node. Output shapes are the ones the
/// model records.
pub struct CustomNode<'a> {
    pub name: &'a str,
    /// Node index in its subgraph.
    pub index: usize,
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    /// The node's custom options (a flexbuffer in converter output), empty if none.
    pub options_bytes: &'a [u8],
}

impl CustomNode<'_> {
    /// The custom options parsed as a flexbuffer, if there are any.
    pub fn options(&self) -> Result<Option<flexbuffers::Reader<&[u8]>>> {
        if self.options_bytes.is_empty() {
            return Ok(None);
        }
        // The crate's reader panics on out-of-range offsets: check them all first.
        crate::flexcheck::check(self.options_bytes).map_err(|e| {
            Error::Input(format!(
                "custom options of '{}' are not a flexbuffer: {e}",
                self.name
            ))
        })?;
        flexbuffers::Reader::get_root(self.options_bytes)
            .map(Some)
            .map_err(|e| {
                Error::Input(format!(
                    "custom options of '{}' are not a flexbuffer: {e}",
                    self.name
                ))
            })
    }
}

/// A custom kernel's view of its node's inputs and outputs during one evaluation.
pub struct CustomContext<'a> {
    e: Eval<'a>,
}

impl<'a> CustomContext<'a> {
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
            .ok_or_else(|| Error::Input(format!("output {k} does not exist")))
    }

    /// Output `k` as elements of `T`.
    pub fn output_mut<T: Element>(&mut self, k: usize) -> Result<&mut [T]> {
        ops::cast_mut(self.output_bytes_mut(k)?)
    }

    /// Worker threads available (the kernel runs inside the interpreter's pool).
    pub fn threads(&self) -> usize {
        self.e.threads
    }
}

/// The registered custom operators of an interpreter, by custom code.
#[derive(Clone, Default)]
pub struct CustomOps {
    ops: BTreeMap<String, Arc<dyn CustomOp>>,
}

impl CustomOps {
    pub fn insert(&mut self, name: impl Into<String>, op: Arc<dyn CustomOp>) {
        self.ops.insert(name.into(), op);
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn CustomOp>> {
        self.ops.get(name)
    }
}

impl fmt::Debug for CustomOps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.ops.keys()).finish()
    }
}

struct UserKernel(Box<dyn CustomKernel>);

impl Kernel for UserKernel {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        self.0.eval(CustomContext { e })
    }
}

/// Prepares a custom node with the registered operator of that name, if there is one.
pub(crate) fn prepare(ctx: &PrepareCtx<'_>, name: &str) -> Option<Result<Prepared>> {
    let op = ctx.env.custom_ops.get(name)?.clone();
    let info = |t: usize| {
        let tensor = &ctx.tensors[t];
        TensorInfo {
            index: t,
            name: tensor.name.clone(),
            shape: tensor.shape.clone(),
            dtype: tensor.dtype,
            quantization: tensor.quantization.clone(),
        }
    };
    let mut inputs = Vec::new();
    for k in 0..ctx.op.inputs.len() {
        match ctx.input_index(k) {
            Ok(t) => inputs.push(info(t)),
            Err(e) => return Some(Err(e)),
        }
    }
    let outputs = ctx.op.outputs.iter().map(|&t| info(t)).collect();
    let options_bytes = ctx
        .op
        .custom_options
        .as_ref()
        .and_then(|r| ctx.model.slice(r))
        .unwrap_or_default();
    let node = CustomNode {
        name,
        index: ctx.index,
        inputs,
        outputs,
        options_bytes,
    };
    Some(
        op.prepare(&node)
            .map(|k| Prepared::Kernel(Box::new(UserKernel(k)))),
    )
}
