//! Tensor element types.

use std::fmt;

/// A tensor's element type, numbered as in the TFLite schema's `TensorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    I32,
    U8,
    I64,
    String,
    Bool,
    I16,
    Complex64,
    I8,
    F64,
    Complex128,
    U64,
    Resource,
    Variant,
    U32,
    U16,
    I4,
    BF16,
    I2,
    U4,
    Float8E4M3FN,
    Float8E5M2,
}

impl DType {
    /// Maps the schema's `TensorType` value.
    pub fn from_schema(v: i8) -> Option<DType> {
        use DType::*;
        Some(match v {
            0 => F32,
            1 => F16,
            2 => I32,
            3 => U8,
            4 => I64,
            5 => String,
            6 => Bool,
            7 => I16,
            8 => Complex64,
            9 => I8,
            10 => F64,
            11 => Complex128,
            12 => U64,
            13 => Resource,
            14 => Variant,
            15 => U32,
            16 => U16,
            17 => I4,
            18 => BF16,
            19 => I2,
            20 => U4,
            21 => Float8E4M3FN,
            22 => Float8E5M2,
            _ => return None,
        })
    }

    /// Storage size in bytes of one element, for types stored one element per whole byte run.
    /// Sub-byte and variable-size types return `None`.
    pub fn size(self) -> Option<usize> {
        use DType::*;
        Some(match self {
            U8 | I8 | Bool | Float8E4M3FN | Float8E5M2 => 1,
            F16 | I16 | U16 | BF16 => 2,
            F32 | I32 | U32 => 4,
            I64 | U64 | F64 | Complex64 => 8,
            Complex128 => 16,
            // A resource tensor holds the id of a variable (TFLite stores an int32 there).
            Resource => 4,
            String | Variant | I4 | I2 | U4 => return None,
        })
    }

    /// Bytes needed to store `n` elements; packed sub-byte types round up.
    pub fn bytes_for(self, n: usize) -> Option<usize> {
        match self {
            DType::I4 | DType::U4 => Some(n.div_ceil(2)),
            DType::I2 => Some(n.div_ceil(4)),
            t => t.size()?.checked_mul(n),
        }
    }

    /// The name TFLite's Python API uses (`numpy` dtype names).
    pub fn name(self) -> &'static str {
        use DType::*;
        match self {
            F32 => "float32",
            F16 => "float16",
            I32 => "int32",
            U8 => "uint8",
            I64 => "int64",
            String => "string",
            Bool => "bool",
            I16 => "int16",
            Complex64 => "complex64",
            I8 => "int8",
            F64 => "float64",
            Complex128 => "complex128",
            U64 => "uint64",
            Resource => "resource",
            Variant => "variant",
            U32 => "uint32",
            U16 => "uint16",
            I4 => "int4",
            BF16 => "bfloat16",
            I2 => "int2",
            U4 => "uint4",
            Float8E4M3FN => "float8_e4m3fn",
            Float8E5M2 => "float8_e5m2",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Rust element types that can view tensor memory directly.
pub trait Element: bytemuck::Pod {
    const DTYPE: DType;
}

macro_rules! element {
    ($t:ty, $d:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
    };
}
element!(f32, F32);
element!(half::f16, F16);
element!(i32, I32);
element!(u8, U8);
element!(i64, I64);
element!(i16, I16);
element!(i8, I8);
element!(f64, F64);
element!(u64, U64);
element!(u32, U32);
element!(u16, U16);
