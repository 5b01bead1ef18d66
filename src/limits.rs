//! Resource limits, checked against sizes read from the file before anything is allocated.

/// Limits applied while loading and preparing a model. The defaults admit every model the
/// TFLite converter produces for mobile and desktop use, and stop hostile files from asking
/// for absurd amounts of memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted tensor rank.
    pub max_rank: usize,
    /// Largest element count of any one tensor.
    pub max_tensor_elements: usize,
    /// Largest total of arena, persistent and scratch memory one interpreter may allocate.
    pub max_memory_bytes: usize,
    /// Deepest nesting of flatbuffer tables the verifier accepts.
    pub max_flatbuffer_depth: usize,
    /// Most flatbuffer tables the verifier accepts.
    pub max_flatbuffer_tables: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rank: 16,
            max_tensor_elements: 1 << 31,
            max_memory_bytes: 4 << 30,
            max_flatbuffer_depth: 64,
            max_flatbuffer_tables: 10_000_000,
        }
    }
}
