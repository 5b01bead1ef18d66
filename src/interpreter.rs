//! The interpreter: prepared kernels, the planned arena, and `invoke()`.

use std::sync::Arc;

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::graph::Quantization;
use crate::limits::Limits;
use crate::model::Model;
use crate::ops;
use crate::subgraph::{prepare_nodes, PrepareEnv, SubgraphRun};
pub use ferrolite_kernels::isa::Isa;

/// Which hardware runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The CPU kernels of `ferrolite-kernels`.
    #[default]
    Cpu,
    /// The wgpu delegate on the default adapter (or the one `FERROLITE_ADAPTER` names), with
    /// the CPU kernels for the nodes it does not support. Needs the `gpu` feature.
    Gpu,
}

/// How an interpreter is built.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads for the kernels (at least 1). Results do not depend on it.
    pub threads: usize,
    pub backend: Backend,
    pub limits: Limits,
    /// Force a CPU kernel tier; `None` picks `FERROLITE_ISA` if set, else the best the CPU runs.
    pub isa: Option<Isa>,
    /// User kernels for custom operators, by custom code.
    pub custom_ops: crate::custom::CustomOps,
    /// A delegate that takes over the nodes it supports (see [`crate::delegate`]).
    pub delegates: crate::delegate::Delegates,
    /// Run a float ADD of a convolution's output inside the convolution (default `true`;
    /// results are bit-identical either way). With `false` every node is a step of its own,
    /// as in a per-node profile of the reference.
    pub fuse: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 1,
            backend: Backend::Cpu,
            limits: Limits::default(),
            isa: None,
            custom_ops: Default::default(),
            delegates: Default::default(),
            fuse: true,
        }
    }
}

impl Options {
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Registers a kernel for the custom operator `name` (its `custom_code` in the model).
    pub fn custom_op(
        mut self,
        name: &str,
        op: std::sync::Arc<dyn crate::custom::CustomOp>,
    ) -> Self {
        self.custom_ops.insert(name, op);
        self
    }

    /// Hands the nodes `delegate` supports to it; replaces any delegate set before.
    pub fn delegate(mut self, delegate: std::sync::Arc<dyn crate::delegate::Delegate>) -> Self {
        self.delegates.list = vec![delegate];
        self
    }

    /// Whether nodes may be fused (see [`Options::fuse`]).
    pub fn fuse(mut self, fuse: bool) -> Self {
        self.fuse = fuse;
        self
    }

    pub fn isa(mut self, isa: Isa) -> Self {
        self.isa = Some(isa);
        self
    }

    /// The tier kernels will use: the forced one, else `FERROLITE_ISA`, else the best available.
    pub fn resolve_isa(&self) -> Result<Isa> {
        let forced = match self.isa {
            Some(isa) => Some(isa.require()),
            None => Isa::from_env().transpose(),
        };
        match forced {
            Some(r) => r.map_err(Error::Input),
            None => Ok(Isa::detect()),
        }
    }
}

/// Name, shape, dtype and quantization of a model input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Tensor index in the subgraph.
    pub index: usize,
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub quantization: Option<Quantization>,
}

/// Memory the interpreter holds, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// The activation arena.
    pub arena_bytes: usize,
    /// The largest total of activation tensors alive at one step: no plan can be smaller.
    pub arena_lower_bound_bytes: usize,
    /// The sum of all activation tensors: the memory with no reuse.
    pub arena_naive_bytes: usize,
    /// Folded constants, aligned copies of constants, and packed weights.
    pub persistent_bytes: usize,
    /// Shared kernel workspace.
    pub scratch_bytes: usize,
}

/// Runs one model.
///
/// ```no_run
/// use ferrolite::{Interpreter, Model, Options};
///
/// let model = Model::from_file("model.tflite")?;
/// let mut interp = Interpreter::new(model, Options::default().threads(2))?;
/// interp.input_mut::<f32>(0)?.fill(0.5);
/// interp.invoke()?;
/// let scores: &[f32] = interp.output(0)?;
/// println!("{} scores", scores.len());
/// # Ok::<(), ferrolite::Error>(())
/// ```
pub struct Interpreter {
    model: Arc<Model>,
    options: Options,
    entry: Entry,
    run: SubgraphRun,
    pool: Option<rayon::ThreadPool>,
    /// Whether a kernel split its work over threads in the last invoke: then the next runs
    /// inside the pool, else on the calling thread (see `ferrolite_kernels::parallel`).
    splitting: bool,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
}

/// What an interpreter runs: a subgraph, its named inputs and outputs (the tensor names, or a
/// signature's names), and input shapes set with `resize_input`.
#[derive(Debug, Clone)]
struct Entry {
    subgraph: usize,
    signature: Option<String>,
    inputs: Vec<(String, usize)>,
    outputs: Vec<(String, usize)>,
    input_shapes: Vec<Option<Vec<usize>>>,
}

impl Entry {
    fn main(model: &Model) -> Entry {
        let sg = &model.subgraphs()[0];
        let named = |list: &[usize]| {
            list.iter()
                .map(|&t| (sg.tensors[t].name.clone(), t))
                .collect()
        };
        Entry {
            subgraph: 0,
            signature: None,
            inputs: named(&sg.inputs),
            outputs: named(&sg.outputs),
            input_shapes: vec![None; sg.inputs.len()],
        }
    }

    fn signature(model: &Model, key: &str) -> Result<Entry> {
        let sig = model
            .signatures()
            .iter()
            .find(|s| s.key == key)
            .ok_or_else(|| {
                let keys: Vec<&str> = model.signatures().iter().map(|s| s.key.as_str()).collect();
                Error::Input(format!(
                    "no signature '{key}' (the model has: {})",
                    keys.join(", ")
                ))
            })?;
        let sg = &model.subgraphs()[sig.subgraph];
        for (name, t) in &sig.inputs {
            if !sg.inputs.contains(t) {
                return Err(Error::Input(format!(
                    "signature input '{name}' is not an input of subgraph {}",
                    sig.subgraph
                )));
            }
        }
        Ok(Entry {
            subgraph: sig.subgraph,
            signature: Some(key.to_string()),
            inputs: sig.inputs.clone(),
            outputs: sig.outputs.clone(),
            input_shapes: vec![None; sig.inputs.len()],
        })
    }
}

impl std::fmt::Debug for Interpreter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interpreter")
            .field("threads", &self.options.threads)
            .field("steps", &self.run.steps.len())
            .field("memory", &self.run.memory)
            .finish()
    }
}

impl Interpreter {
    /// Prepares `model` for execution. Every unsupported or invalid node is reported at once.
    pub fn new(model: impl Into<Arc<Model>>, options: Options) -> Result<Interpreter> {
        let model = model.into();
        let entry = Entry::main(&model);
        Self::for_entry(model, entry, options)
    }

    /// Prepares the subgraph of signature `key`, whose inputs and outputs are then addressed
    /// in the signature's order and by the signature's names (TFLite's `SignatureRunner`).
    pub fn with_signature(
        model: impl Into<Arc<Model>>,
        key: &str,
        options: Options,
    ) -> Result<Interpreter> {
        let model = model.into();
        let entry = Entry::signature(&model, key)?;
        Self::for_entry(model, entry, options)
    }

    fn for_entry(model: Arc<Model>, entry: Entry, options: Options) -> Result<Interpreter> {
        if options.threads == 0 {
            return Err(Error::Input("threads must be at least 1".into()));
        }
        let mut env = PrepareEnv::new(&options, options.resolve_isa()?);
        if options.backend == Backend::Gpu && env.delegates.list.is_empty() {
            env.delegates.list = vec![gpu_delegate()?];
        }
        let overrides: Vec<(usize, Vec<usize>)> = entry
            .inputs
            .iter()
            .zip(&entry.input_shapes)
            .filter_map(|((_, t), s)| s.clone().map(|s| (*t, s)))
            .collect();
        let run = SubgraphRun::prepare(&model, entry.subgraph, env, &overrides)?;
        let pool = if options.threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(options.threads)
                    .build()
                    .map_err(|e| Error::Internal(format!("could not start threads: {e}")))?,
            )
        } else {
            None
        };
        let info = |(name, t): &(String, usize)| {
            let tensor = &run.tensors[*t];
            TensorInfo {
                index: *t,
                name: name.clone(),
                shape: tensor.shape.clone(),
                dtype: tensor.dtype,
                quantization: tensor.quantization.clone(),
            }
        };
        let inputs = entry.inputs.iter().map(info).collect();
        let outputs = entry.outputs.iter().map(info).collect();
        Ok(Interpreter {
            model,
            options,
            entry,
            run,
            pool,
            splitting: true,
            inputs,
            outputs,
        })
    }

    /// The signature this interpreter runs, if it was built with one.
    pub fn signature(&self) -> Option<&str> {
        self.entry.signature.as_deref()
    }

    /// Gives input `i` a new shape and prepares the model again for it: output shapes are
    /// recomputed and the arena is planned anew. Dimensions fixed in the model's
    /// `shape_signature` (anything but −1) cannot change. Input contents are reset.
    pub fn resize_input(&mut self, i: usize, shape: &[usize]) -> Result<()> {
        let t = self
            .entry
            .inputs
            .get(i)
            .map(|(_, t)| *t)
            .ok_or_else(|| Error::Input(format!("input {i} does not exist")))?;
        let tensor = &self.model.subgraphs()[self.entry.subgraph].tensors[t];
        if shape.len() != tensor.shape.len() {
            return Err(Error::Input(format!(
                "input {i} has rank {}, not {}",
                tensor.shape.len(),
                shape.len()
            )));
        }
        if let Some(sig) = &tensor.shape_signature {
            for (d, (&want, &got)) in sig.iter().zip(shape).enumerate() {
                if want >= 0 && want as usize != got {
                    return Err(Error::Input(format!(
                        "input {i} dimension {d} is fixed at {want} by the model, cannot be {got}"
                    )));
                }
            }
        }
        let mut entry = self.entry.clone();
        entry.input_shapes[i] = Some(shape.to_vec());
        *self = Self::for_entry(self.model.clone(), entry, self.options.clone())?;
        Ok(())
    }

    /// The index of the input named `name` (tensor or signature name).
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|i| i.name == name)
    }

    /// The index of the output named `name` (tensor or signature name).
    pub fn output_index(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|i| i.name == name)
    }

    /// Checks every node of subgraph 0 and returns one result per node: what `new` would
    /// refuse, without building anything.
    pub fn check_support(model: &Model) -> Vec<Result<()>> {
        let env = PrepareEnv::new(&Options::default(), Isa::detect());
        let (results, _, _) = prepare_nodes(model, 0, env, &[]);
        results.into_iter().map(|r| r.map(|_| ())).collect()
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn inputs(&self) -> &[TensorInfo] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    pub fn memory(&self) -> MemoryReport {
        self.run.memory
    }

    /// Where each node went when a delegate was applied (the `Gpu` backend or
    /// [`Options::delegate`]); `None` on the plain CPU backend.
    pub fn delegation(&self) -> Option<&crate::delegate::DelegationPlan> {
        self.run.delegation.as_ref()
    }

    /// Indices of the nodes that run at each invoke, in order (folded and view nodes do not,
    /// nor do nodes fused into another: see [`Interpreter::fused_nodes`]).
    pub fn executed_nodes(&self) -> Vec<usize> {
        self.run.steps.iter().map(|s| s.op).collect()
    }

    /// For each executed node that other nodes were fused into (see [`Options::fuse`]): its
    /// index and theirs, in graph order. Their work runs inside its step, and in
    /// [`Interpreter::invoke_profiled`] its time includes theirs.
    pub fn fused_nodes(&self) -> Vec<(usize, Vec<usize>)> {
        let steps = self.run.steps.iter();
        steps
            .filter(|s| !s.fused.is_empty())
            .map(|s| (s.op, s.fused.clone()))
            .collect()
    }

    /// The bytes of input `i`, to be filled before `invoke`.
    pub fn input_bytes_mut(&mut self, i: usize) -> Result<&mut [u8]> {
        let info = self.inputs.get(i).ok_or_else(|| {
            Error::Input(format!(
                "input {i} does not exist ({} inputs)",
                self.inputs.len()
            ))
        })?;
        let t = info.index;
        self.run.tensor_bytes_mut(t)
    }

    /// Input `i` as a slice of `T`, which must match the tensor's dtype.
    pub fn input_mut<T: Element>(&mut self, i: usize) -> Result<&mut [T]> {
        let dtype = self
            .inputs
            .get(i)
            .map(|info| info.dtype)
            .ok_or_else(|| Error::Input(format!("input {i} does not exist")))?;
        check_dtype::<T>(dtype, "input", i)?;
        ops::cast_mut(self.input_bytes_mut(i)?)
    }

    /// The bytes of output `i` after `invoke`.
    pub fn output_bytes(&self, i: usize) -> Result<&[u8]> {
        let info = self.outputs.get(i).ok_or_else(|| {
            Error::Input(format!(
                "output {i} does not exist ({} outputs)",
                self.outputs.len()
            ))
        })?;
        Ok(self.run.tensor_bytes(self.model.bytes(), info.index))
    }

    /// Output `i` as a slice of `T`, which must match the tensor's dtype.
    pub fn output<T: Element>(&self, i: usize) -> Result<&[T]> {
        let bytes = self.output_bytes(i)?;
        check_dtype::<T>(self.outputs[i].dtype, "output", i)?;
        match bytemuck::try_cast_slice(bytes) {
            Ok(s) => Ok(s),
            Err(e) => Err(Error::Internal(format!(
                "output {i} cannot be viewed as {}: {e}",
                T::DTYPE
            ))),
        }
    }

    /// Runs the model on the current inputs. Allocates nothing itself (a kernel split over
    /// threads hands each extra worker one small job).
    pub fn invoke(&mut self) -> Result<()> {
        self.run_steps(None)
    }

    /// Runs the main plan, inside the interpreter's pool when the last invoke split a kernel
    /// and on this thread otherwise; with `times`, adds each step's wall
    /// time to its entry.
    fn run_steps(&mut self, times: Option<&mut [std::time::Duration]>) -> Result<()> {
        let Interpreter {
            model,
            run,
            pool,
            options,
            splitting,
            ..
        } = self;
        let threads = options.threads;
        use ferrolite_kernels::parallel;
        let (result, splits) = match pool {
            Some(pool) if *splitting => pool.install(|| {
                parallel::count_splits(|| run.run_timed(model.bytes(), threads, times))
            }),
            Some(_) => parallel::serial(|| run.run_timed(model.bytes(), threads, times)),
            None => return run.run_timed(model.bytes(), threads, times),
        };
        *splitting = splits > 0;
        result
    }

    /// Runs the model like [`Interpreter::invoke`] and returns the wall time of every executed
    /// node, in execution order (the per-op profile of `ferrolite bench --profile`). Timing
    /// adds a clock read per node; the results are the same as `invoke`'s.
    pub fn invoke_profiled(&mut self) -> Result<Vec<NodeTime>> {
        let mut times = vec![std::time::Duration::ZERO; self.run.steps.len()];
        self.run_steps(Some(&mut times))?;
        let graph = &self.model.subgraphs()[self.entry.subgraph];
        let codes = self.model.operator_codes();
        Ok(self
            .run
            .steps
            .iter()
            .zip(times)
            .map(|(step, time)| NodeTime {
                node: step.op,
                op: graph
                    .operators
                    .get(step.op)
                    .and_then(|o| codes.get(o.opcode_index))
                    .map(|c| c.name())
                    .unwrap_or_default(),
                time,
            })
            .collect())
    }
}

/// Wall time of one node in [`Interpreter::invoke_profiled`].
#[derive(Debug, Clone)]
pub struct NodeTime {
    /// Operator index in the subgraph that runs (the main one, or the signature's).
    pub node: usize,
    /// Builtin operator name, or the custom code.
    pub op: String,
    pub time: std::time::Duration,
}

/// The GPU delegate for `Backend::Gpu`.
#[cfg(feature = "gpu")]
fn gpu_delegate() -> Result<Arc<dyn crate::delegate::Delegate>> {
    Ok(Arc::new(crate::gpu::GpuDelegate::new(
        crate::gpu::GpuOptions::default(),
    )?))
}

#[cfg(not(feature = "gpu"))]
fn gpu_delegate() -> Result<Arc<dyn crate::delegate::Delegate>> {
    Err(Error::Input(
        "the GPU backend needs ferrolite built with the `gpu` feature".into(),
    ))
}

fn check_dtype<T: Element>(dtype: DType, what: &str, i: usize) -> Result<()> {
    if T::DTYPE == dtype {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "{what} {i} has dtype {dtype}, not {}",
            T::DTYPE
        )))
    }
}
