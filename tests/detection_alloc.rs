//! The detection post-processing allocates nothing during `invoke()` (all its buffers are
//! scratch sized at preparation). Its own test binary: the counting allocator is global.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::golden::Golden;
use ferrolite::{Interpreter, Model, Options};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn detection_invoke_does_not_allocate() {
    let cases =
        Golden::all(|n| n.starts_with("detection_postprocess_") || n.starts_with("zoo_ssd_"));
    assert!(!cases.is_empty());
    for g in cases {
        let model = Model::from_file(&g.model).unwrap();
        let mut interp = Interpreter::new(model, Options::default().threads(1)).unwrap();
        for k in 0..interp.inputs().len() {
            let dtype = interp.inputs()[k].dtype;
            ferrolite::inputs::fill(interp.input_bytes_mut(k).unwrap(), dtype, g.seed, k);
        }
        interp.invoke().unwrap();
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        interp.invoke().unwrap();
        interp.invoke().unwrap();
        let n = ALLOCATIONS.load(Ordering::SeqCst) - before;
        assert_eq!(n, 0, "{}: {n} allocations during invoke", g.name);
    }
}
