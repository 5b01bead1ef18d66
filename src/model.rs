//! Loading a model: the bytes, the flatbuffer verifier, and the conversion into the owned,
//! validated [`graph`](crate::graph) view.

use std::ops::Range;
use std::path::Path;

use crate::dtype::DType;
use crate::error::{Error, Invalid, Location, Result};
use crate::graph::{
    DimMetadata, OpCode, Operator, OperatorCode, Quantization, Signature, Sparsity, Subgraph,
    Tensor,
};
use crate::limits::Limits;
use crate::schema as fb;

enum Storage {
    Mapped(memmap2::Mmap),
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Static(b) => b,
            Storage::Owned(v) => v,
        }
    }
}

/// A loaded and validated TFLite model. Weights stay in the file's bytes and are read in place.
///
/// ```no_run
/// let model = ferrolite::Model::from_file("model.tflite")?;
/// println!("{} operators", model.subgraphs()[0].operators.len());
/// # Ok::<(), ferrolite::Error>(())
/// ```
pub struct Model {
    storage: Storage,
    version: u32,
    description: String,
    opcodes: Vec<OperatorCode>,
    subgraphs: Vec<Subgraph>,
    signatures: Vec<Signature>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("bytes", &self.bytes().len())
            .field("subgraphs", &self.subgraphs.len())
            .field("opcodes", &self.opcodes.len())
            .finish()
    }
}

impl Model {
    /// Maps the file at `path` and validates it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Model> {
        Self::from_file_with_limits(path, &Limits::default())
    }

    pub fn from_file_with_limits(path: impl AsRef<Path>, limits: &Limits) -> Result<Model> {
        Self::load(Storage::Mapped(crate::mmap::map(path.as_ref())?), limits)
    }

    /// Validates a model embedded in the binary, e.g. with `include_bytes!`.
    pub fn from_static(bytes: &'static [u8]) -> Result<Model> {
        Self::load(Storage::Static(bytes), &Limits::default())
    }

    /// Takes ownership of model bytes already in memory.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Model> {
        Self::from_vec_with_limits(bytes, &Limits::default())
    }

    pub fn from_vec_with_limits(bytes: Vec<u8>, limits: &Limits) -> Result<Model> {
        Self::load(Storage::Owned(bytes), limits)
    }

    fn load(storage: Storage, limits: &Limits) -> Result<Model> {
        let parts = parse(storage.bytes(), limits)?;
        let model = Model {
            storage,
            version: parts.version,
            description: parts.description,
            opcodes: parts.opcodes,
            subgraphs: parts.subgraphs,
            signatures: parts.signatures,
        };
        crate::validate::dataflow(&model)?;
        Ok(model)
    }

    /// The whole model file.
    pub fn bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn operator_codes(&self) -> &[OperatorCode] {
        &self.opcodes
    }

    pub fn subgraphs(&self) -> &[Subgraph] {
        &self.subgraphs
    }

    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// Constant data of tensor `t` in subgraph `sg`, in place in the model bytes.
    pub fn tensor_data(&self, sg: usize, t: usize) -> Option<&[u8]> {
        let range = self.subgraphs.get(sg)?.tensors.get(t)?.data.clone()?;
        self.bytes().get(range)
    }

    /// The bytes of a byte range recorded in the graph (constant data, custom options).
    pub fn slice(&self, range: &Range<usize>) -> Option<&[u8]> {
        self.bytes().get(range.clone())
    }

    /// The operator code of operator `op` of subgraph `sg`.
    pub fn opcode(&self, sg: usize, op: usize) -> Option<&OperatorCode> {
        let index = self.subgraphs.get(sg)?.operators.get(op)?.opcode_index;
        self.opcodes.get(index)
    }

    /// A location naming operator `op` of subgraph `sg`, for error messages.
    pub fn op_location(&self, sg: usize, op: usize) -> Location {
        let name = self.opcode(sg, op).map(|c| c.name()).unwrap_or_default();
        Location::op(sg, op, name)
    }

    /// `loc` extended with tensor `t` of subgraph `sg`.
    pub fn with_tensor(&self, loc: Location, sg: usize, t: usize) -> Location {
        let name = self
            .subgraphs
            .get(sg)
            .and_then(|s| s.tensors.get(t))
            .map(|t| t.name.clone())
            .unwrap_or_default();
        loc.with_tensor(t as i64, name)
    }
}

struct Parts {
    version: u32,
    description: String,
    opcodes: Vec<OperatorCode>,
    subgraphs: Vec<Subgraph>,
    signatures: Vec<Signature>,
}

fn parse(bytes: &[u8], limits: &Limits) -> Result<Parts> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    if bytes.len() < 8 {
        return Err(Error::Flatbuffer(format!(
            "file is only {} bytes long",
            bytes.len()
        )));
    }
    if &bytes[4..8] != b"TFL3" {
        return Err(Error::WrongIdentifier {
            found: String::from_utf8_lossy(&bytes[4..8])
                .escape_debug()
                .to_string(),
        });
    }
    let opts = flatbuffers::VerifierOptions {
        max_depth: limits.max_flatbuffer_depth,
        max_tables: limits.max_flatbuffer_tables,
        // Bytes visited while following offsets, which aliasing offsets can inflate far
        // beyond the file's size; everything visited is later copied into the graph.
        max_apparent_size: limits.flatbuffer_apparent_bytes(bytes.len()),
        ignore_missing_null_terminator: true,
    };
    let root = fb::root_as_model_with_opts(&opts, bytes)
        .map_err(|e| Error::Flatbuffer(e.to_string().trim_end().to_string()))?;
    if root.version() != 3 {
        return Err(Error::Version(root.version()));
    }

    let buffers = read_buffers(&root, bytes)?;

    let opcodes: Vec<OperatorCode> = root
        .operator_codes()
        .map(|codes| codes.iter().map(|c| read_opcode(&c)).collect())
        .unwrap_or_default();

    let fb_subgraphs = root.subgraphs().ok_or_else(|| {
        Error::invalid(
            Location::default(),
            Invalid::Other("model has no subgraphs".into()),
        )
    })?;
    if fb_subgraphs.is_empty() {
        return Err(Error::invalid(
            Location::default(),
            Invalid::Other("model has no subgraphs".into()),
        ));
    }
    let mut subgraphs = Vec::with_capacity(fb_subgraphs.len());
    for (si, sg) in fb_subgraphs.iter().enumerate() {
        subgraphs.push(read_subgraph(si, &sg, bytes, &buffers, &opcodes, limits)?);
    }

    let mut signatures = Vec::new();
    if let Some(defs) = root.signature_defs() {
        for def in defs.iter() {
            signatures.push(read_signature(&def, &subgraphs)?);
        }
    }

    Ok(Parts {
        version: root.version(),
        description: root.description().unwrap_or_default().to_string(),
        opcodes,
        subgraphs,
        signatures,
    })
}

/// Byte offset of `inner` inside `outer`; `inner` must be a sub-slice of `outer`.
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize)
}

/// Where each buffer's payload lies in the file: `None` for buffers without data.
fn read_buffers(root: &fb::Model<'_>, bytes: &[u8]) -> Result<Vec<Option<Range<usize>>>> {
    let Some(buffers) = root.buffers() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(buffers.len());
    for b in buffers.iter() {
        let inline = b.data().filter(|d| !d.is_empty());
        let range = if let Some(d) = inline {
            let start = offset_in(bytes, d.bytes());
            Some(start..start + d.len())
        } else if b.offset() > 1 {
            // Models over 2 GB keep payloads after the flatbuffer; offset and size come from the
            // file and are untrusted, so the end is computed with checked arithmetic.
            let (offset, size) = (b.offset(), b.size());
            let file_len = bytes.len() as u64;
            let end = offset
                .checked_add(size)
                .filter(|&e| e <= file_len)
                .ok_or_else(|| {
                    Error::invalid(
                        Location::default(),
                        Invalid::BufferOutOfFile {
                            offset,
                            size,
                            file_len,
                        },
                    )
                })?;
            (size > 0).then_some(offset as usize..end as usize)
        } else {
            None
        };
        out.push(range);
    }
    Ok(out)
}

fn read_opcode(c: &fb::OperatorCode<'_>) -> OperatorCode {
    let code = fb::builtin_code(c).0;
    let code = if code == fb::BuiltinOperator::CUSTOM.0 {
        OpCode::Custom(c.custom_code().unwrap_or_default().to_string())
    } else {
        OpCode::Builtin(code)
    };
    OperatorCode {
        code,
        version: c.version(),
    }
}

fn read_subgraph(
    si: usize,
    sg: &fb::SubGraph<'_>,
    file: &[u8],
    buffers: &[Option<Range<usize>>],
    opcodes: &[OperatorCode],
    limits: &Limits,
) -> Result<Subgraph> {
    let loc = || Location::subgraph(si);
    let fb_tensors = sg.tensors().map(|t| t.len()).unwrap_or(0);
    let mut tensors = Vec::with_capacity(fb_tensors);
    if let Some(ts) = sg.tensors() {
        for (ti, t) in ts.iter().enumerate() {
            let name = t.name().unwrap_or_default().to_string();
            let tloc = || loc().with_tensor(ti as i64, t.name().unwrap_or_default());
            tensors.push(
                read_tensor(&t, name, buffers, limits).map_err(|k| Error::invalid(tloc(), k))?,
            );
        }
    }
    let count = tensors.len();
    let index = |i: i32| -> Result<usize, Invalid> {
        if i < 0 {
            Err(if i == -1 {
                Invalid::MissingTensor
            } else {
                Invalid::TensorIndex {
                    index: i as i64,
                    count,
                }
            })
        } else if (i as usize) < count {
            Ok(i as usize)
        } else {
            Err(Invalid::TensorIndex {
                index: i as i64,
                count,
            })
        }
    };
    let index_list = |v: Option<flatbuffers::Vector<'_, i32>>, what: &str| -> Result<Vec<usize>> {
        v.map(|v| v.iter().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|i| {
                index(i).map_err(|k| {
                    Error::invalid(loc().with_tensor(i as i64, format!("subgraph {what}")), k)
                })
            })
            .collect()
    };
    let inputs = index_list(sg.inputs(), "input")?;
    let outputs = index_list(sg.outputs(), "output")?;

    let mut operators = Vec::new();
    if let Some(ops) = sg.operators() {
        operators.reserve(ops.len());
        for (oi, op) in ops.iter().enumerate() {
            let opcode_index = op.opcode_index() as usize;
            let name = opcodes
                .get(opcode_index)
                .map(|c| c.name())
                .unwrap_or_default();
            let oloc = || Location::op(si, oi, name.clone());
            if opcode_index >= opcodes.len() {
                return Err(Error::invalid(
                    oloc(),
                    Invalid::OpcodeIndex {
                        index: op.opcode_index() as u64,
                        count: opcodes.len(),
                    },
                ));
            }
            let mut op_inputs = Vec::new();
            for i in op
                .inputs()
                .map(|v| v.iter().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                op_inputs.push(match index(i) {
                    Ok(t) => Some(t),
                    // −1 marks an absent optional input; each operator's preparation decides
                    // whether that input may be absent.
                    Err(Invalid::MissingTensor) => None,
                    Err(k) => return Err(Error::invalid(oloc().with_tensor(i as i64, ""), k)),
                });
            }
            let mut op_outputs = Vec::new();
            for i in op
                .outputs()
                .map(|v| v.iter().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                op_outputs.push(
                    index(i).map_err(|k| Error::invalid(oloc().with_tensor(i as i64, ""), k))?,
                );
            }
            let mut intermediates = Vec::new();
            for i in op
                .intermediates()
                .map(|v| v.iter().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                intermediates.push(
                    index(i).map_err(|k| Error::invalid(oloc().with_tensor(i as i64, ""), k))?,
                );
            }
            let custom_options = op.custom_options().filter(|d| !d.is_empty()).map(|d| {
                let start = offset_in(file, d.bytes());
                start..start + d.len()
            });
            operators.push(Operator {
                opcode_index,
                inputs: op_inputs,
                outputs: op_outputs,
                intermediates,
                options: crate::options::parse(&op),
                custom_options,
            });
        }
    }

    Ok(Subgraph {
        name: sg.name().unwrap_or_default().to_string(),
        tensors,
        inputs,
        outputs,
        operators,
    })
}

fn read_tensor(
    t: &fb::Tensor<'_>,
    name: String,
    buffers: &[Option<Range<usize>>],
    limits: &Limits,
) -> Result<Tensor, Invalid> {
    let dtype = DType::from_schema(t.type_().0).ok_or(Invalid::UnknownType(t.type_().0 as i32))?;
    let raw_shape: Vec<i32> = t.shape().map(|s| s.iter().collect()).unwrap_or_default();
    if raw_shape.len() > limits.max_rank {
        return Err(Invalid::RankTooLarge {
            rank: raw_shape.len(),
            limit: limits.max_rank,
        });
    }
    let mut shape = Vec::with_capacity(raw_shape.len());
    let mut numel: usize = 1;
    for &d in &raw_shape {
        if d < 0 {
            return Err(Invalid::NegativeDimension {
                dim: d,
                shape: raw_shape,
            });
        }
        shape.push(d as usize);
        numel = numel
            .checked_mul(d as usize)
            .filter(|&n| n <= limits.max_tensor_elements)
            .ok_or_else(|| Invalid::ShapeOverflow {
                shape: raw_shape.clone(),
            })?;
    }
    let bytes = dtype.bytes_for(numel);

    let buffer_index = t.buffer() as usize;
    let data = if buffer_index == 0 {
        None
    } else {
        buffers
            .get(buffer_index)
            .ok_or(Invalid::BufferIndex {
                index: t.buffer() as u64,
                count: buffers.len(),
            })?
            .clone()
    };
    let sparsity = read_sparsity(t)?;
    // A sparse tensor's buffer holds only its stored values: DENSIFY checks their count.
    let bytes = if sparsity.is_some() { None } else { bytes };
    if let (Some(range), Some(need)) = (&data, bytes) {
        if range.len() < need {
            return Err(Invalid::BufferTooSmall {
                need: need as u64,
                have: range.len() as u64,
            });
        }
    }
    // A buffer may be longer than its tensor (TFLite accepts that); the tensor's data is only
    // its own bytes, so that kernels never see a slice longer than the shape says.
    let data = match (data, bytes) {
        (Some(range), Some(need)) => Some(range.start..range.start + need),
        (data, _) => data,
    };

    let quantization = read_quantization(t, &shape)?;
    Ok(Tensor {
        name,
        dtype,
        shape,
        shape_signature: t.shape_signature().map(|s| s.iter().collect()),
        quantization,
        data,
        is_variable: t.is_variable(),
        sparsity,
        numel,
        bytes,
    })
}

/// Reads a tensor's `sparsity` table: non-negative orders and sizes, and index vectors of any
/// of the three storage types widened to `usize`.
fn read_sparsity(t: &fb::Tensor<'_>) -> Result<Option<Sparsity>, Invalid> {
    let Some(sp) = t.sparsity() else {
        return Ok(None);
    };
    let bad = |what: &str| Invalid::Other(format!("bad sparsity parameters: {what}"));
    let list = |v: Option<flatbuffers::Vector<'_, i32>>, what: &str| {
        v.map(|v| v.iter().collect::<Vec<i32>>())
            .unwrap_or_default()
            .into_iter()
            .map(|x| usize::try_from(x).map_err(|_| bad(what)))
            .collect::<Result<Vec<usize>, Invalid>>()
    };
    let traversal_order = list(sp.traversal_order(), "negative traversal order")?;
    let block_map = list(sp.block_map(), "negative block map")?;
    let mut dim_metadata = Vec::new();
    for m in sp.dim_metadata().iter().flatten() {
        if m.format() == fb::DimensionType::DENSE {
            let size = usize::try_from(m.dense_size()).map_err(|_| bad("negative dense size"))?;
            dim_metadata.push(DimMetadata::Dense(size));
            continue;
        }
        if m.format() != fb::DimensionType::SPARSE_CSR {
            return Err(bad("unknown dimension format"));
        }
        let segments = index_vector(
            m.array_segments_type(),
            m.array_segments_as_int_32_vector().and_then(|v| v.values()),
            m.array_segments_as_uint_16_vector()
                .and_then(|v| v.values()),
            m.array_segments_as_uint_8_vector().and_then(|v| v.values()),
        )
        .ok_or_else(|| bad("missing or negative segments"))?;
        let indices = index_vector(
            m.array_indices_type(),
            m.array_indices_as_int_32_vector().and_then(|v| v.values()),
            m.array_indices_as_uint_16_vector().and_then(|v| v.values()),
            m.array_indices_as_uint_8_vector().and_then(|v| v.values()),
        )
        .ok_or_else(|| bad("missing or negative indices"))?;
        dim_metadata.push(DimMetadata::SparseCsr { segments, indices });
    }
    if traversal_order.len() != dim_metadata.len()
        || traversal_order.iter().any(|&d| d >= traversal_order.len())
        || block_map.len() > traversal_order.len()
    {
        return Err(bad(
            "traversal order, block map and dimension metadata disagree",
        ));
    }
    Ok(Some(Sparsity {
        traversal_order,
        block_map,
        dim_metadata,
    }))
}

/// One of a sparse dimension's index vectors (int32, uint16 or uint8) as `usize`; `None` if
/// it is absent or has a negative entry.
fn index_vector(
    kind: fb::SparseIndexVector,
    i32s: Option<flatbuffers::Vector<'_, i32>>,
    u16s: Option<flatbuffers::Vector<'_, u16>>,
    u8s: Option<flatbuffers::Vector<'_, u8>>,
) -> Option<Vec<usize>> {
    match kind {
        fb::SparseIndexVector::Int32Vector => {
            i32s?.iter().map(|x| usize::try_from(x).ok()).collect()
        }
        fb::SparseIndexVector::Uint16Vector => Some(u16s?.iter().map(usize::from).collect()),
        fb::SparseIndexVector::Uint8Vector => Some(u8s?.iter().map(usize::from).collect()),
        _ => None,
    }
}

fn read_quantization(t: &fb::Tensor<'_>, shape: &[usize]) -> Result<Option<Quantization>, Invalid> {
    let Some(q) = t.quantization() else {
        return Ok(None);
    };
    let scale: Vec<f32> = q.scale().map(|s| s.iter().collect()).unwrap_or_default();
    let zero_point: Vec<i64> = q
        .zero_point()
        .map(|z| z.iter().collect())
        .unwrap_or_default();
    if scale.is_empty() && zero_point.is_empty() {
        return Ok(None);
    }
    if scale.len() != zero_point.len() {
        return Err(Invalid::Quantization(format!(
            "{} scales but {} zero points",
            scale.len(),
            zero_point.len()
        )));
    }
    let axis = q.quantized_dimension();
    if scale.len() > 1 {
        let dim = usize::try_from(axis)
            .ok()
            .and_then(|a| shape.get(a).copied())
            .ok_or_else(|| {
                Invalid::Quantization(format!(
                    "quantized_dimension {axis} out of range for rank {}",
                    shape.len()
                ))
            })?;
        if dim != scale.len() {
            return Err(Invalid::Quantization(format!(
                "{} per-axis scales for a dimension of size {dim}",
                scale.len()
            )));
        }
    }
    Ok(Some(Quantization {
        scale,
        zero_point,
        axis: axis.max(0) as usize,
    }))
}

fn read_signature(def: &fb::SignatureDef<'_>, subgraphs: &[Subgraph]) -> Result<Signature> {
    let sg = def.subgraph_index() as usize;
    let key = def.signature_key().unwrap_or_default().to_string();
    let sub = subgraphs.get(sg).ok_or_else(|| {
        Error::invalid(
            Location::default(),
            Invalid::SubgraphIndex {
                index: def.subgraph_index() as i64,
                count: subgraphs.len(),
            },
        )
    })?;
    let maps =
        |v: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<fb::TensorMap<'_>>>>| {
            let mut out = Vec::new();
            for m in v.iter().flat_map(|v| v.iter()) {
                let t = m.tensor_index() as usize;
                if t >= sub.tensors.len() {
                    return Err(Error::invalid(
                        Location::subgraph(sg),
                        Invalid::TensorIndex {
                            index: t as i64,
                            count: sub.tensors.len(),
                        },
                    ));
                }
                out.push((m.name().unwrap_or_default().to_string(), t));
            }
            Ok(out)
        };
    Ok(Signature {
        key,
        subgraph: sg,
        inputs: maps(def.inputs())?,
        outputs: maps(def.outputs())?,
    })
}
