//! Reading and writing `.npy` files as raw tensor bytes.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::Path;

use ferrolite::{DType, Error, Result};
use npyz::WriterBuilder;

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The numpy type string of a dtype, little-endian.
fn descr(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::F64 => "<f8",
        DType::I8 => "|i1",
        DType::U8 => "|u1",
        DType::I16 => "<i2",
        DType::U16 => "<u2",
        DType::I32 => "<i4",
        DType::U32 => "<u4",
        DType::I64 => "<i8",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
        _ => return None,
    })
}

/// Reads `path`, which must hold an array of exactly `dtype` and `shape`, as raw bytes.
pub fn read(path: &Path, dtype: DType, shape: &[usize]) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let npy = npyz::NpyFile::new(BufReader::new(file)).map_err(|e| io_err(path, e))?;
    let want = descr(dtype).ok_or_else(|| {
        Error::Input(format!(
            "{}: inputs of dtype {dtype} cannot be read from .npy",
            path.display()
        ))
    })?;
    let got = match npy.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        other => format!("{other:?}"),
    };
    // `<` and `|` mean the same for one-byte types; numpy writes either.
    let same = got == want
        || (got.len() == 3 && want.len() == 3 && got[1..] == want[1..] && want.contains("1"));
    if !same {
        return Err(Error::Input(format!(
            "{}: array dtype {got} does not match the input's dtype {dtype} ({want})",
            path.display()
        )));
    }
    let got_shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if got_shape != shape {
        return Err(Error::Input(format!(
            "{}: array shape {got_shape:?} does not match the input's shape {shape:?}",
            path.display()
        )));
    }
    if npy.order() != npyz::Order::C {
        return Err(Error::Input(format!(
            "{}: Fortran-ordered arrays are not supported",
            path.display()
        )));
    }
    let need = dtype.bytes_for(shape.iter().product()).unwrap_or(0);
    let mut data = Vec::with_capacity(need);
    npy.into_inner()
        .take(need as u64)
        .read_to_end(&mut data)
        .map_err(|e| io_err(path, e))?;
    if data.len() != need {
        return Err(Error::Input(format!(
            "{}: file holds {} data bytes, expected {need}",
            path.display(),
            data.len()
        )));
    }
    Ok(data)
}

fn write_as<T>(
    path: &Path,
    shape: &[usize],
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> T,
) -> Result<()>
where
    T: npyz::Serialize + npyz::AutoSerialize,
{
    let file = File::create(path).map_err(|e| io_err(path, e))?;
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(|e| io_err(path, e))?;
    let size = std::mem::size_of::<T>();
    for c in bytes.chunks_exact(size) {
        w.push(&decode(c)).map_err(|e| io_err(path, e))?;
    }
    w.finish().map_err(|e| io_err(path, e))
}

/// Writes raw tensor bytes of `dtype` and `shape` to `path`.
pub fn write(path: &Path, dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<()> {
    macro_rules! le {
        ($t:ty) => {
            write_as::<$t>(path, shape, bytes, |c| {
                <$t>::from_le_bytes(c.try_into().unwrap_or_default())
            })
        };
    }
    match dtype {
        DType::F32 => le!(f32),
        DType::F64 => le!(f64),
        DType::I8 => le!(i8),
        DType::U8 => le!(u8),
        DType::I16 => le!(i16),
        DType::U16 => le!(u16),
        DType::I32 => le!(i32),
        DType::U32 => le!(u32),
        DType::I64 => le!(i64),
        DType::U64 => le!(u64),
        DType::Bool => write_as::<bool>(path, shape, bytes, |c| c[0] != 0),
        DType::F16 => le!(half::f16),
        other => Err(Error::Input(format!(
            "outputs of dtype {other} cannot be written as .npy"
        ))),
    }
}
