//! What each operator family supports, declared beside its code. The README's support matrix
//! is generated from this table, and a test fails when the two disagree.

use crate::schema::BuiltinOperator as B;

/// The activation types one builtin operator accepts.
#[derive(Debug, Clone, Copy)]
pub struct OpSupport {
    pub op: B,
    /// Column names of the matrix: `float32`, `int8`, `uint8`, `int16`, `hybrid` (int8 weights
    /// with float activations), `int32`, `int64`, `bool`.
    pub dtypes: &'static [&'static str],
    /// Limits worth knowing, shown in the matrix.
    pub notes: &'static str,
}

/// The columns of the matrix, in order.
pub const COLUMNS: [&str; 8] = [
    "float32", "int8", "uint8", "int16", "hybrid", "int32", "int64", "bool",
];

pub(super) const fn s(op: B, dtypes: &'static [&'static str], notes: &'static str) -> OpSupport {
    OpSupport { op, dtypes, notes }
}

/// The operators of the core families (convolution, pooling, arithmetic, views, quantization).
pub(super) const CORE: &[OpSupport] = &[
    s(
        B::CONV_2D,
        &["float32", "int8", "uint8", "int16", "hybrid"],
        "int8 per-channel or per-tensor weights",
    ),
    s(
        B::DEPTHWISE_CONV_2D,
        &["float32", "int8", "uint8", "int16", "hybrid"],
        "any depth multiplier",
    ),
    s(
        B::FULLY_CONNECTED,
        &["float32", "int8", "uint8", "int16", "hybrid"],
        "keep_num_dims, optional bias",
    ),
    s(
        B::ADD,
        &["float32", "int8", "uint8", "int16", "int32", "int64"],
        "broadcasting up to rank 6; int32/int64 wrap on overflow",
    ),
    s(
        B::MUL,
        &["float32", "int8", "uint8", "int16", "int32", "int64"],
        "broadcasting up to rank 6; int32/int64 wrap on overflow",
    ),
    s(
        B::AVERAGE_POOL_2D,
        &["float32", "int8", "uint8", "int16"],
        "",
    ),
    s(B::MAX_POOL_2D, &["float32", "int8", "uint8", "int16"], ""),
    s(
        B::MEAN,
        &["float32", "int8", "uint8", "int16"],
        "rank up to 6",
    ),
    s(B::SOFTMAX, &["float32", "int8", "uint8", "int16"], "beta"),
    s(
        B::RESHAPE,
        &[
            "float32", "int8", "uint8", "int16", "int32", "int64", "bool",
        ],
        "a view: no copy",
    ),
    s(
        B::SQUEEZE,
        &[
            "float32", "int8", "uint8", "int16", "int32", "int64", "bool",
        ],
        "a view: no copy",
    ),
    s(
        B::EXPAND_DIMS,
        &[
            "float32", "int8", "uint8", "int16", "int32", "int64", "bool",
        ],
        "a view: no copy",
    ),
    s(
        B::QUANTIZE,
        &["float32", "int8", "uint8", "int16"],
        "float to int8/uint8/int16; int8/uint8 requantize; int16 to int8/int16",
    ),
    s(
        B::DEQUANTIZE,
        &["float32", "int8", "uint8", "int16"],
        "fp16/int8/uint8/int16 to float32; constants folded",
    ),
];

/// Every supported builtin operator, sorted by name.
pub fn table() -> Vec<OpSupport> {
    let mut all: Vec<OpSupport> = super::FAMILIES
        .iter()
        .flat_map(|f| f.iter().copied())
        .collect();
    all.sort_by_key(|s| s.op.variant_name().unwrap_or(""));
    all
}

/// The support matrix as a Markdown table.
pub fn markdown() -> String {
    let mut out = String::from("| operator |");
    for c in COLUMNS {
        out.push_str(&format!(" {c} |"));
    }
    out.push_str(" notes |\n|---|");
    for _ in COLUMNS {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    for s in table() {
        out.push_str(&format!("| {} |", s.op.variant_name().unwrap_or("?")));
        for c in COLUMNS {
            out.push_str(if s.dtypes.contains(&c) {
                " ✓ |"
            } else {
                " |"
            });
        }
        out.push_str(&format!(" {} |\n", s.notes));
    }
    out
}
