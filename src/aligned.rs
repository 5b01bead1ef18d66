//! A zero-initialised byte buffer whose start is aligned to 64 bytes.
//!
//! The arena, scratch and persistent buffers use it so that every tensor can be viewed as any
//! element type (`bytemuck` checks alignment) and starts on a cache line. It over-allocates by
//! up to 63 bytes and starts at the first aligned address, which keeps it free of `unsafe`.

use crate::error::{Error, Result};

pub(crate) const ALIGN: usize = 64;

#[derive(Default)]
pub(crate) struct AlignedBuf {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes. Allocation failure is an error, not an abort, so that a
    /// size that passed the limits but not the system still fails gracefully.
    pub fn zeroed(len: usize) -> Result<Self> {
        let total = len
            .checked_add(ALIGN - 1)
            .ok_or_else(|| Error::Limit(format!("buffer of {len} bytes")))?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(total)
            .map_err(|_| Error::Limit(format!("could not allocate {len} bytes")))?;
        buf.resize(total, 0);
        let start = (ALIGN - (buf.as_ptr() as usize % ALIGN)) % ALIGN;
        Ok(AlignedBuf { buf, start, len })
    }

    /// An aligned copy of `bytes`.
    pub fn copy_of(bytes: &[u8]) -> Result<Self> {
        let mut b = Self::zeroed(bytes.len())?;
        b.as_mut_slice().copy_from_slice(bytes);
        Ok(b)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
}
