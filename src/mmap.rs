//! Read-only memory mapping of model files.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};

/// Maps `path` read-only.
pub(crate) fn map(path: &Path) -> Result<memmap2::Mmap> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // SAFETY: the mapping is read-only and private to this process. If another process
    // truncates or rewrites the file while it is mapped, reads may fault or see new bytes;
    // TFLite's mmap allocation has the same contract, and users who cannot rule that out load
    // the file into a `Vec<u8>` instead (`Model::from_vec`).
    // `populate` maps every page of the file at once: preparation reads all of the weights
    // anyway, and one call costs less than a page fault per few pages.
    unsafe { memmap2::MmapOptions::new().populate().map(&file) }.map_err(io)
}
