//! A zero-filled byte buffer aligned to a cache line, allocated with `alloc_zeroed`.
//!
//! The interpreter's arena, scratch and persistent buffers are large and mostly overwritten
//! before they are read. `alloc_zeroed` lets the allocator hand out pages the OS already
//! zeroed (large blocks come straight from `mmap`), where filling a `Vec` writes every byte
//! once more: on ResNet18 that write was a fifth of the load time. Allocation failure is
//! reported, not an abort, so that a size which passed the limits but not the system still
//! fails gracefully.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Alignment of every buffer: one cache line, and enough for any SIMD load.
pub const ALIGN: usize = 64;

#[repr(align(64))]
struct Line(#[allow(dead_code)] [u8; ALIGN]);

/// Alignment asked of the allocator. Rust's system allocator serves zeroed blocks of this
/// alignment with `calloc` (fresh pages, no writes), but larger alignments with an aligned
/// allocation followed by a memset; so the block is over-allocated and its start rounded up.
const BASE_ALIGN: usize = 16;

pub struct AlignedBytes {
    /// First byte of the buffer (`base` rounded up to `ALIGN`).
    ptr: NonNull<u8>,
    len: usize,
    /// The allocation, when `len > 0`.
    base: Option<(NonNull<u8>, Layout)>,
}

// SAFETY: the buffer is owned exclusively, like a `Box<[u8]>`; nothing else points into it.
unsafe impl Send for AlignedBytes {}
// SAFETY: shared access only hands out `&[u8]`.
unsafe impl Sync for AlignedBytes {}

impl AlignedBytes {
    /// `len` zero bytes starting on an `ALIGN` boundary; `None` if the allocation fails or
    /// the size does not fit a layout.
    pub fn zeroed(len: usize) -> Option<Self> {
        if len == 0 {
            return Some(AlignedBytes::default());
        }
        let layout =
            Layout::from_size_align(len.checked_add(ALIGN - BASE_ALIGN)?, BASE_ALIGN).ok()?;
        // SAFETY: the layout's size is not zero.
        let base = NonNull::new(unsafe { alloc::alloc_zeroed(layout) })?;
        let skip = base.as_ptr().align_offset(ALIGN);
        if skip > ALIGN - BASE_ALIGN {
            // SAFETY: allocated just above with this layout.
            unsafe { alloc::dealloc(base.as_ptr(), layout) };
            return None;
        }
        // SAFETY: `skip + len <= layout.size()`, so the pointer stays inside the allocation.
        let ptr = unsafe { NonNull::new_unchecked(base.as_ptr().add(skip)) };
        advise_huge_pages(ptr.as_ptr(), len);
        Some(AlignedBytes {
            ptr,
            len,
            base: Some((base, layout)),
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` initialised bytes (zeroed at allocation) for as
        // long as `self` lives, or dangling and aligned with `len == 0`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBytes {
    fn drop(&mut self) {
        if let Some((base, layout)) = self.base {
            // SAFETY: allocated in `zeroed` with exactly this layout.
            unsafe { alloc::dealloc(base.as_ptr(), layout) }
        }
    }
}

impl Default for AlignedBytes {
    fn default() -> Self {
        AlignedBytes {
            ptr: NonNull::<Line>::dangling().cast(),
            len: 0,
            base: None,
        }
    }
}

/// Buffers at least this large are offered huge pages (see [`advise_huge_pages`]).
pub const HUGE_PAGE_MIN: usize = 4 << 20;

/// Asks the OS to back the whole 2 MiB pages inside `len` bytes at `addr` with huge pages, for
/// buffers of at least [`HUGE_PAGE_MIN`] bytes that nothing has written yet. Packed weights are
/// written once, at load, where each 4 KiB page costs a fault (about a fifth of ResNet18's
/// load time), and read at every invoke, where huge pages need fewer TLB entries. It is only
/// advice: where the OS does not follow it (other systems, huge pages disabled, none free)
/// nothing changes.
pub fn advise_huge_pages(addr: *const u8, len: usize) {
    if len < HUGE_PAGE_MIN {
        return;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = addr;
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = (addr as usize).div_ceil(HUGE) * HUGE;
        let end = (addr as usize + len) / HUGE * HUGE;
        if end > start {
            // SAFETY: `madvise(MADV_HUGEPAGE)` changes neither the mapping nor its contents,
            // only how the kernel backs it; the range lies inside the caller's own allocation.
            // The result is ignored: it is advice.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_aligned_and_writable() {
        // The last sizes are offered huge pages.
        for len in [
            0,
            1,
            63,
            64,
            65,
            4096,
            1 << 20,
            HUGE_PAGE_MIN,
            (5 << 20) + 3,
        ] {
            let mut b = AlignedBytes::zeroed(len).unwrap();
            assert_eq!(b.len(), len);
            assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0);
            assert!(b.as_slice().iter().all(|&x| x == 0));
            b.as_mut_slice().fill(7);
            assert!(b.as_slice().iter().all(|&x| x == 7));
        }
    }

    #[test]
    fn impossible_sizes_are_none() {
        assert!(AlignedBytes::zeroed(usize::MAX - 10).is_none());
    }
}
