//! The validated, read-only view of a model.
//!
//! Loading copies the small metadata (shapes, quantization, operator lists, options) out of the
//! flatbuffer once; constant data stays in the file's bytes and is handed out as slices.

use std::ops::Range;

use crate::dtype::DType;
use crate::options::OpOptions;

/// Quantization parameters of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantization {
    /// One scale for per-tensor quantization, or one per slice along `axis`.
    pub scale: Vec<f32>,
    /// Same length as `scale`.
    pub zero_point: Vec<i64>,
    /// The quantized dimension; meaningful only when there is more than one scale.
    pub axis: usize,
}

impl Quantization {
    pub fn is_per_tensor(&self) -> bool {
        self.scale.len() == 1
    }

    /// The per-tensor (scale, zero point), when this is per-tensor quantization.
    pub fn single(&self) -> Option<(f32, i64)> {
        if self.is_per_tensor() {
            Some((self.scale[0], self.zero_point[0]))
        } else {
            None
        }
    }
}

/// One tensor of a subgraph.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Shape with −1 for dynamic dimensions, as the converter recorded it.
    pub shape_signature: Option<Vec<i32>>,
    pub quantization: Option<Quantization>,
    /// Byte range of constant data inside the model bytes.
    pub data: Option<Range<usize>>,
    pub is_variable: bool,
    /// Sparse storage of constant data (DENSIFY's input); `data` then holds only the stored
    /// values, fewer than `numel`.
    pub sparsity: Option<Sparsity>,
    /// Element count (checked product of `shape`).
    pub numel: usize,
    /// Storage size in bytes, when the type has a fixed size.
    pub bytes: Option<usize>,
}

/// How a constant tensor's values are stored sparsely (TFLite's `SparsityParameters`), as
/// read from the file. Only the structure was checked at load (no negative numbers, orders
/// within range); DENSIFY validates every index against the shape before using it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sparsity {
    /// The stored dimensions, outermost first: `0..rank` name the tensor's dimensions,
    /// `rank + j` the inner dimension of block `j`.
    pub traversal_order: Vec<usize>,
    /// For each block, the tensor dimension it divides.
    pub block_map: Vec<usize>,
    /// One entry per stored dimension, in traversal order.
    pub dim_metadata: Vec<DimMetadata>,
}

/// The storage of one stored dimension.
#[derive(Debug, Clone, PartialEq)]
pub enum DimMetadata {
    /// Every index `0..size` is present.
    Dense(usize),
    /// Compressed: for parent position `p`, the present indices are
    /// `indices[segments[p]..segments[p + 1]]`.
    SparseCsr {
        segments: Vec<usize>,
        indices: Vec<usize>,
    },
}

impl Tensor {
    pub fn is_const(&self) -> bool {
        self.data.is_some()
    }
}

/// Which operator an opcode names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpCode {
    /// A builtin operator, by its schema number.
    Builtin(i32),
    /// A custom operator, by name.
    Custom(String),
}

/// One entry of the model's operator-code table.
#[derive(Debug, Clone)]
pub struct OperatorCode {
    pub code: OpCode,
    pub version: i32,
}

impl OperatorCode {
    /// The operator's name, as TFLite prints it (`CONV_2D`, or the custom code).
    pub fn name(&self) -> String {
        match &self.code {
            OpCode::Builtin(c) => crate::options::builtin_name(*c),
            OpCode::Custom(s) => s.clone(),
        }
    }
}

/// One operator of a subgraph.
#[derive(Debug, Clone)]
pub struct Operator {
    pub opcode_index: usize,
    /// Input tensor indices; `None` where an optional input is absent (−1 in the file).
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<usize>,
    pub intermediates: Vec<usize>,
    pub options: OpOptions,
    /// Byte range of the flexbuffer custom options, for custom operators.
    pub custom_options: Option<Range<usize>>,
}

/// A subgraph: tensors plus operators in execution order.
#[derive(Debug, Clone)]
pub struct Subgraph {
    pub name: String,
    pub tensors: Vec<Tensor>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    pub operators: Vec<Operator>,
}

/// A named entry point: `signature_key` maps names to tensors of one subgraph.
#[derive(Debug, Clone)]
pub struct Signature {
    pub key: String,
    pub subgraph: usize,
    pub inputs: Vec<(String, usize)>,
    pub outputs: Vec<(String, usize)>,
}
