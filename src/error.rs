//! Error types.
//!
//! Every problem with a model names where it was found: the subgraph, the operator (with its
//! name) and the tensor, so that a user can find the node in Netron or in the converter log.

use std::fmt;

/// Where in a model a problem was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// Subgraph index (0 is the main graph).
    pub subgraph: usize,
    /// Operator index in execution order, with the operator's name when known.
    pub op: Option<(usize, String)>,
    /// Tensor index, with its name when known.
    pub tensor: Option<(i64, String)>,
}

impl Location {
    pub fn subgraph(subgraph: usize) -> Self {
        Self {
            subgraph,
            op: None,
            tensor: None,
        }
    }

    pub fn op(subgraph: usize, op: usize, name: impl Into<String>) -> Self {
        Self {
            subgraph,
            op: Some((op, name.into())),
            tensor: None,
        }
    }

    pub fn with_tensor(mut self, index: i64, name: impl Into<String>) -> Self {
        self.tensor = Some((index, name.into()));
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "subgraph {}", self.subgraph)?;
        if let Some((i, name)) = &self.op {
            write!(f, ", op {i} ({name})")?;
        }
        if let Some((i, name)) = &self.tensor {
            if name.is_empty() {
                write!(f, ", tensor {i}")?;
            } else {
                write!(f, ", tensor {i} '{name}'")?;
            }
        }
        Ok(())
    }
}

/// What is wrong with a model that passed the flatbuffer verifier.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Invalid {
    #[error("tensor index {index} out of range (subgraph has {count} tensors)")]
    TensorIndex { index: i64, count: usize },
    #[error("buffer index {index} out of range (model has {count} buffers)")]
    BufferIndex { index: u64, count: usize },
    #[error("opcode index {index} out of range (model has {count} operator codes)")]
    OpcodeIndex { index: u64, count: usize },
    #[error("subgraph index {index} out of range (model has {count} subgraphs)")]
    SubgraphIndex { index: i64, count: usize },
    #[error("optional (-1) index is not allowed here")]
    MissingTensor,
    #[error("negative dimension {dim} in shape {shape:?}")]
    NegativeDimension { dim: i32, shape: Vec<i32> },
    #[error("shape {shape:?} has too many elements (overflow or over the limit)")]
    ShapeOverflow { shape: Vec<i32> },
    #[error("rank {rank} exceeds the limit of {limit}")]
    RankTooLarge { rank: usize, limit: usize },
    #[error("constant buffer holds {have} bytes but the tensor needs {need}")]
    BufferTooSmall { need: u64, have: u64 },
    #[error("buffer offset {offset} + size {size} lies outside the {file_len}-byte file")]
    BufferOutOfFile {
        offset: u64,
        size: u64,
        file_len: u64,
    },
    #[error("tensor is read before any operator produces it")]
    UsedBeforeProduced,
    #[error("tensor is both an input and an output of the same operator")]
    InputIsOutput,
    #[error("tensor is written by more than one operator, or is a constant or graph input")]
    OutputAlreadyDefined,
    #[error("bad quantization parameters: {0}")]
    Quantization(String),
    #[error("tensor type {0} is not a known TFLite type")]
    UnknownType(i32),
    #[error("{0}")]
    Other(String),
}

/// The error type of every fallible ferrolite call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("empty model file")]
    Empty,
    #[error("not a TFLite model: file identifier is {found:?}, expected \"TFL3\"")]
    WrongIdentifier { found: String },
    #[error("malformed flatbuffer: {0}")]
    Flatbuffer(String),
    #[error("unsupported schema version {0} (only version 3 is supported)")]
    Version(u32),
    #[error("invalid model at {loc}: {kind}")]
    Invalid { loc: Location, kind: Invalid },
    #[error("unsupported at {loc}: {what}")]
    Unsupported { loc: Location, what: String },
    #[error("{} operators are not supported:\n{}", .0.len(), join_lines(.0))]
    UnsupportedOps(Vec<Error>),
    #[error("over a resource limit: {0}")]
    Limit(String),
    #[error("bad input: {0}")]
    Input(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

fn join_lines(errors: &[Error]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    pub(crate) fn invalid(loc: Location, kind: Invalid) -> Self {
        Error::Invalid { loc, kind }
    }

    pub(crate) fn unsupported(loc: Location, what: impl Into<String>) -> Self {
        Error::Unsupported {
            loc,
            what: what.into(),
        }
    }

    /// The validation problem, when this error is one.
    pub fn invalid_kind(&self) -> Option<&Invalid> {
        match self {
            Error::Invalid { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
