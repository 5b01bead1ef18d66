//! `invoke()` allocates nothing after the first call.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

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

fn allocations_in_second_invoke(path: &std::path::Path, threads: usize) -> usize {
    let model = Model::from_file(path).unwrap();
    let mut interp = Interpreter::new(model, Options::default().threads(threads)).unwrap();
    for k in 0..interp.inputs().len() {
        let dtype = interp.inputs()[k].dtype;
        ferrolite::inputs::fill(interp.input_bytes_mut(k).unwrap(), dtype, 0, k);
    }
    interp.invoke().unwrap();
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    interp.invoke().unwrap();
    interp.invoke().unwrap();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn invoke_does_not_allocate() {
    let dir = common::golden::repo_root().join("tests/models");
    let mut models: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tflite"))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("resnet18_cifar"))
        })
        .collect();
    models.sort();
    assert!(
        !models.is_empty(),
        "no resnet18_cifar fixtures in tests/models"
    );
    for path in models {
        let n = allocations_in_second_invoke(&path, 1);
        assert_eq!(n, 0, "{}: {n} allocations during invoke", path.display());
    }
}
