//! A zero-initialised byte buffer whose start is aligned to 64 bytes.
//!
//! The arena, scratch and persistent buffers use it so that every tensor can be viewed as any
//! element type (`bytemuck` checks alignment) and starts on a cache line. The allocation
//! itself (`alloc_zeroed`, the only `unsafe` it needs) lives in the kernels crate.

use crate::error::{Error, Result};
use ferrolite_kernels::buffer::AlignedBytes;

#[derive(Default)]
pub(crate) struct AlignedBuf {
    buf: AlignedBytes,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes. Allocation failure is an error, not an abort, so that a
    /// size that passed the limits but not the system still fails gracefully.
    pub fn zeroed(len: usize) -> Result<Self> {
        let buf = AlignedBytes::zeroed(len)
            .ok_or_else(|| Error::Limit(format!("could not allocate {len} bytes")))?;
        Ok(AlignedBuf { buf })
    }

    /// An aligned copy of `bytes`.
    pub fn copy_of(bytes: &[u8]) -> Result<Self> {
        let mut b = Self::zeroed(bytes.len())?;
        b.as_mut_slice().copy_from_slice(bytes);
        Ok(b)
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn as_slice(&self) -> &[u8] {
        self.buf.as_slice()
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.buf.as_mut_slice()
    }
}
