//! ferrolite: a pure-Rust interpreter for TensorFlow Lite models.
//!
//! Load a `.tflite` file into a [`Model`] (memory-mapped, static, or owned bytes), build an
//! [`Interpreter`] for it, fill the inputs, and [`invoke`](Interpreter::invoke):
//!
//! ```no_run
//! use ferrolite::{Interpreter, Model, Options};
//!
//! let model = Model::from_file("mobilenet_v2.tflite")?;
//! let mut interp = Interpreter::new(model, Options::default())?;
//! let input = interp.input_mut::<f32>(0)?;
//! input.fill(0.0);
//! interp.invoke()?;
//! let logits = interp.output::<f32>(0)?;
//! println!("class 0 score: {}", logits[0]);
//! # Ok::<(), ferrolite::Error>(())
//! ```
//!
//! Every file is validated before anything runs: a malformed or hostile model gives an
//! [`Error`], never a panic. Activation tensors share one arena planned ahead of time, and
//! `invoke` allocates nothing.

// Only the memory map and the generated flatbuffer accessors may use `unsafe`.
#![deny(unsafe_code)]

mod aligned;
pub mod custom;
pub mod delegate;
pub mod dtype;
pub mod error;
mod flexcheck;
pub mod float_io;
pub(crate) mod fusion;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod graph;
pub mod inputs;
mod interpreter;
pub mod limits;
#[allow(unsafe_code)]
mod mmap;
mod model;
mod ops;
pub use ops::registry::{markdown as support_matrix, table as supported_ops, OpSupport};
pub mod options;
pub mod planner;
pub mod schema;
mod subgraph;
mod validate;

pub use dtype::{DType, Element};
pub use error::{Error, Invalid, Location, Result};
pub use interpreter::{Backend, Interpreter, Isa, MemoryReport, NodeTime, Options, TensorInfo};
pub use limits::Limits;
pub use model::Model;

/// The README's examples are compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
