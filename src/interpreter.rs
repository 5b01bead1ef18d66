//! The interpreter: prepared kernels, the planned arena, and `invoke()`.

use std::sync::Arc;

use crate::aligned::AlignedBuf;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::graph::{Quantization, Tensor};
use crate::limits::Limits;
use crate::model::Model;
use crate::ops::{self, Eval, Inputs, Kernel, Loc, PrepareCtx, Prepared};
use crate::planner;
pub use ferrolite_kernels::isa::Isa;

/// Which hardware runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The CPU kernels of `ferrolite-kernels`.
    #[default]
    Cpu,
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 1,
            backend: Backend::Cpu,
            limits: Limits::default(),
            isa: None,
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

struct Step {
    op: usize,
    kernel: Box<dyn Kernel>,
    inputs: Vec<Loc>,
    /// Arena ranges of the outputs, in output order.
    outputs: Vec<std::ops::Range<usize>>,
    /// Output indices sorted by arena offset, to split the arena around them.
    order: Vec<usize>,
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
    steps: Vec<Step>,
    locs: Vec<Loc>,
    arena: AlignedBuf,
    scratch: AlignedBuf,
    persistent: Vec<AlignedBuf>,
    pool: Option<rayon::ThreadPool>,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    memory: MemoryReport,
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
        let named = |list: &[usize]| list.iter().map(|&t| (sg.tensors[t].name.clone(), t)).collect();
        Entry {
            subgraph: 0,
            signature: None,
            inputs: named(&sg.inputs),
            outputs: named(&sg.outputs),
            input_shapes: vec![None; sg.inputs.len()],
        }
    }

    fn signature(model: &Model, key: &str) -> Result<Entry> {
        let sig = model.signatures().iter().find(|s| s.key == key).ok_or_else(|| {
            let keys: Vec<&str> = model.signatures().iter().map(|s| s.key.as_str()).collect();
            Error::Input(format!("no signature '{key}' (the model has: {})", keys.join(", ")))
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

/// Outcome of preparing every node: either the prepared nodes or the full list of problems.
struct Preparation {
    nodes: Vec<Prepared>,
    folded: Vec<Option<AlignedBuf>>,
    /// Tensor metadata with computed shapes.
    tensors: Vec<Tensor>,
}

impl std::fmt::Debug for Interpreter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interpreter")
            .field("threads", &self.options.threads)
            .field("steps", &self.steps.len())
            .field("memory", &self.memory)
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
        let env = PrepareEnv {
            threads: options.threads,
            isa: options.resolve_isa()?,
            max_elements: options.limits.max_tensor_elements,
        };
        let overrides: Vec<(usize, Vec<usize>)> = entry
            .inputs
            .iter()
            .zip(&entry.input_shapes)
            .filter_map(|((_, t), s)| s.clone().map(|s| (*t, s)))
            .collect();
        let prep = prepare_all(&model, entry.subgraph, env, &overrides)?;
        Self::build(model, entry, options, prep)
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
        let env = PrepareEnv {
            threads: 1,
            isa: Isa::detect(),
            max_elements: Limits::default().max_tensor_elements,
        };
        let (results, _, _) = prepare_nodes(model, 0, env, &[]);
        results.into_iter().map(|r| r.map(|_| ())).collect()
    }

    fn build(
        model: Arc<Model>,
        entry: Entry,
        options: Options,
        prep: Preparation,
    ) -> Result<Interpreter> {
        let sg = entry.subgraph;
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
        let mut kernels: Vec<(usize, Box<dyn Kernel>)> = Vec::new();
        for (index, node) in prep.nodes.into_iter().enumerate() {
            let op = &graph.operators[index];
            match node {
                Prepared::Kernel(k) => kernels.push((index, k)),
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
        for (step, (index, _)) in kernels.iter().enumerate() {
            let op = &graph.operators[*index];
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
        for (index, kernel) in kernels {
            let op = &graph.operators[index];
            let inputs = op
                .inputs
                .iter()
                .enumerate()
                .map(|(k, t)| match t {
                    Some(t) if kernel.reads_input(k) => locs[*t].clone(),
                    _ => Loc::None,
                })
                .collect();
            let mut outputs = Vec::with_capacity(op.outputs.len());
            for &t in &op.outputs {
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
            steps.push(Step { op: index, kernel, inputs, outputs, order });
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
        if total > options.limits.max_memory_bytes {
            return Err(Error::Limit(format!(
                "the model needs {total} bytes of memory, over the limit of {}",
                options.limits.max_memory_bytes
            )));
        }
        let arena = AlignedBuf::zeroed(plan.arena_bytes)?;
        let scratch = AlignedBuf::zeroed(scratch_bytes)?;
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
            let tensor = &tensors[*t];
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
            steps,
            locs,
            arena,
            scratch,
            persistent,
            pool,
            inputs,
            outputs,
            memory,
        })
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
        self.memory
    }

    /// Indices of the nodes that run at each invoke, in order (folded and view nodes do not).
    pub fn executed_nodes(&self) -> Vec<usize> {
        self.steps.iter().map(|s| s.op).collect()
    }

    fn input_loc(&self, i: usize) -> Result<&Loc> {
        let info = self.inputs.get(i).ok_or_else(|| {
            Error::Input(format!(
                "input {i} does not exist ({} inputs)",
                self.inputs.len()
            ))
        })?;
        Ok(&self.locs[info.index])
    }

    fn output_loc(&self, i: usize) -> Result<&Loc> {
        let info = self.outputs.get(i).ok_or_else(|| {
            Error::Input(format!(
                "output {i} does not exist ({} outputs)",
                self.outputs.len()
            ))
        })?;
        Ok(&self.locs[info.index])
    }

    fn loc_bytes(&self, loc: &Loc) -> &[u8] {
        match loc {
            Loc::None => &[],
            Loc::Arena(r) => &self.arena.as_slice()[r.clone()],
            Loc::Model(r) => self.model.slice(r).unwrap_or_default(),
            Loc::Persistent(i) => self.persistent[*i].as_slice(),
        }
    }

    /// The bytes of input `i`, to be filled before `invoke`.
    pub fn input_bytes_mut(&mut self, i: usize) -> Result<&mut [u8]> {
        match self.input_loc(i)?.clone() {
            Loc::Arena(r) => Ok(&mut self.arena.as_mut_slice()[r]),
            Loc::None => Ok(&mut []),
            _ => Err(Error::Input(format!(
                "input {i} is a constant and cannot be written"
            ))),
        }
    }

    /// Input `i` as a slice of `T`, which must match the tensor's dtype.
    pub fn input_mut<T: Element>(&mut self, i: usize) -> Result<&mut [T]> {
        let dtype = self.input_loc(i).map(|_| self.inputs[i].dtype)?;
        check_dtype::<T>(dtype, "input", i)?;
        ops::cast_mut(self.input_bytes_mut(i)?)
    }

    /// The bytes of output `i` after `invoke`.
    pub fn output_bytes(&self, i: usize) -> Result<&[u8]> {
        let loc = self.output_loc(i)?;
        Ok(self.loc_bytes(loc))
    }

    /// Output `i` as a slice of `T`, which must match the tensor's dtype.
    pub fn output<T: Element>(&self, i: usize) -> Result<&[T]> {
        let loc = self.output_loc(i)?;
        check_dtype::<T>(self.outputs[i].dtype, "output", i)?;
        let bytes = self.loc_bytes(loc);
        match bytemuck::try_cast_slice(bytes) {
            Ok(s) => Ok(s),
            Err(e) => Err(Error::Internal(format!(
                "output {i} cannot be viewed as {}: {e}",
                T::DTYPE
            ))),
        }
    }

    /// Runs the model on the current inputs. Allocates nothing.
    pub fn invoke(&mut self) -> Result<()> {
        let Interpreter {
            model,
            steps,
            arena,
            scratch,
            persistent,
            pool,
            options,
            ..
        } = self;
        let threads = options.threads;
        let mut run = || run_steps(steps, arena, scratch, persistent, model.bytes(), threads);
        match pool {
            Some(pool) => pool.install(run),
            None => run(),
        }
    }
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

fn run_steps(
    steps: &[Step],
    arena: &mut AlignedBuf,
    scratch: &mut AlignedBuf,
    persistent: &[AlignedBuf],
    model: &[u8],
    threads: usize,
) -> Result<()> {
    let arena = arena.as_mut_slice();
    let scratch = scratch.as_mut_slice();
    for step in steps {
        // Cut the arena into the outputs (written) and the pieces between them (read), in
        // fixed-size arrays so that nothing is allocated.
        let mut outs: [&mut [u8]; ops::MAX_OUTPUTS] = std::array::from_fn(|_| Default::default());
        let mut pieces: [(usize, &[u8]); ops::MAX_OUTPUTS + 1] = std::array::from_fn(|_| (0, &[][..]));
        let mut rest: &mut [u8] = &mut *arena;
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
            inputs: Inputs { locs: &step.inputs, pieces: &pieces[..=n], model, persistent },
            output: std::mem::take(&mut first[0]),
            more_outputs: more,
            scratch: &mut *scratch,
            threads,
        };
        step.kernel.eval(e)?;
    }
    Ok(())
}

/// What preparation needs besides the model.
#[derive(Clone, Copy)]
struct PrepareEnv {
    threads: usize,
    isa: Isa,
    max_elements: usize,
}

/// Prepares every node in order. Folded constants and computed output shapes become visible
/// to later nodes; the returned tensor table holds the computed shapes.
fn prepare_nodes(
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
    for (index, op) in graph.operators.iter().enumerate() {
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
        };
        let r = ops::prepare(&ctx);
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

fn prepare_all(
    model: &Model,
    sg: usize,
    env: PrepareEnv,
    input_shapes: &[(usize, Vec<usize>)],
) -> Result<Preparation> {
    for (t, shape) in input_shapes {
        let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if numel.is_none_or(|n| n > env.max_elements) {
            return Err(Error::Limit(format!("input tensor {t} shape {shape:?} is too large")));
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
        0 => Ok(Preparation { nodes, folded, tensors }),
        1 => Err(errors.remove(0)),
        _ => Err(Error::UnsupportedOps(errors)),
    }
}
