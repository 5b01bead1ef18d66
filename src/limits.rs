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
    /// Most flatbuffer tables the verifier accepts (TFLite's verifier uses the same default).
    pub max_flatbuffer_tables: usize,
    /// How many bytes the flatbuffer verifier may visit, as a multiple of the file's length
    /// (plus 1 MiB). A file laid out as a tree is visited about once (converter output: under
    /// 1.4 times its size, counting shared vtables). Offsets that point at one table or vector
    /// many times would make loading copy it each time, a memory amplification; they are
    /// refused past this factor.
    pub max_flatbuffer_expansion: usize,
    /// Deepest nesting of subgraphs called by WHILE, IF and CALL_ONCE.
    pub max_subgraph_depth: usize,
    /// Most iterations one WHILE may run in one invoke before it is stopped with an error.
    pub max_loop_iterations: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rank: 16,
            max_tensor_elements: 1 << 31,
            max_memory_bytes: 4 << 30,
            max_flatbuffer_depth: 64,
            max_flatbuffer_tables: 1_000_000,
            max_flatbuffer_expansion: 4,
            max_subgraph_depth: 16,
            max_loop_iterations: 10_000_000,
        }
    }
}

impl Limits {
    /// The verifier's budget of visited bytes for a file of `file_len` bytes.
    pub(crate) fn flatbuffer_apparent_bytes(&self, file_len: usize) -> usize {
        file_len
            .saturating_mul(self.max_flatbuffer_expansion)
            .saturating_add(1 << 20)
    }
}
