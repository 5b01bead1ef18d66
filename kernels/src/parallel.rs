//! Splitting a kernel's output rows over threads.
//!
//! Every parallel float kernel in this crate divides its *output* into contiguous parts of
//! whole rows and computes each part independently. Reductions are never split, so each output
//! element is computed by the same sequence of operations whatever the thread count: results
//! are bit-identical for 1 thread and for N threads.
//!
//! With threads, a large kernel is cut into a few parts per thread ([`PARTS_PER_THREAD`]),
//! which one worker per thread takes from a queue as it becomes free: the work balances itself
//! when one thread starts late or runs slower, yet how the output is cut never depends on
//! timing. A kernel that needs working memory gets one fixed piece of a caller-provided
//! scratch slice per worker (reused by that worker's parts in turn). With `threads <= 1` no
//! rayon function is called at all.
//!
//! The interpreter runs an invoke on the calling thread inside [`with_pool`]: a kernel that
//! splits runs parts on that thread and hands one helper job per other thread to the
//! interpreter's rayon pool, and all of them take parts from the same queue. The calling
//! thread never waits for a helper that has not started: when the queue runs dry it closes
//! it, and a helper that starts later leaves without running anything. So a worker that was
//! asleep costs speed-up, never latency, and the invoke is not handed to the pool and back
//! (`ThreadPool::install` did that: about 65 µs per invoke on a 2-vCPU virtual machine, and
//! after a pause two threads ran a small layer barely faster than one). Outside `with_pool`
//! (kernels called directly, or a part that splits again on a helper) the parts run on
//! rayon's current pool, whose work stealing has the same property: the thread that drains
//! the queue takes back the work it offered.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rayon::prelude::*;

thread_local! {
    /// Set by [`with_pool`]: the pool whose workers help this thread with its parts.
    static POOL: Cell<*const rayon::ThreadPool> = const { Cell::new(std::ptr::null()) };
}

/// Minimum multiply-adds per thread part of the float GEMM, Winograd (counted in the
/// transformed domain), planar and fused-block kernels: under a microsecond of one core's
/// work. Splitting even small layers pays: within an invoke whose layers keep splitting, the
/// other worker is still awake when the next layer starts (on the 2-vCPU Zen 3 machine, the CIFAR ResNet at
/// two threads: ×0.79 with 2^17, a further ×0.92 with 2^15, against 2^20, which left its
/// layers on one thread; 2^13 no better). Unit tests use 1 so that even small cases are
/// split and thread-count independence is really exercised.
pub(crate) const MIN_MACS_PER_PART: usize = if cfg!(test) { 1 } else { 1 << 15 };

/// Parts per thread that a large enough kernel is cut into. Parts are handed out from a
/// queue to one worker per thread as the workers become free, so a thread that starts late
/// (a worker waking up, a core shared with another process) or runs slower simply takes fewer
/// parts, instead of the whole kernel waiting for its one static share.
pub const PARTS_PER_THREAD: usize = 4;

/// Parts a kernel with enough work is cut into for `threads` threads: one without threads,
/// [`PARTS_PER_THREAD`] per thread with them.
pub fn target_parts(threads: usize) -> usize {
    if threads <= 1 {
        1
    } else {
        threads * PARTS_PER_THREAD
    }
}

/// How `rows` rows are divided: `parts` contiguous parts of `rows_per_part` rows each (the
/// last part may be shorter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub parts: usize,
    pub rows_per_part: usize,
}

/// Divides `rows` rows into at most [`target_parts`]`(threads)` parts whose sizes are
/// multiples of `grain` rows (except the last). `grain` lets a kernel keep its register tiles
/// whole and avoid parts too small to be worth handing out. Zero values of `grain`/`threads`
/// count as 1.
pub fn split(rows: usize, grain: usize, threads: usize) -> Split {
    let grain = grain.max(1);
    let grains = rows.div_ceil(grain);
    let parts = target_parts(threads).min(grains).max(1);
    let rows_per_part = grains.div_ceil(parts) * grain;
    // Rounding up can leave trailing parts empty; recount so every part has rows.
    let parts = if rows_per_part == 0 {
        1
    } else {
        rows.div_ceil(rows_per_part).max(1)
    };
    Split {
        parts,
        rows_per_part: rows_per_part.max(1),
    }
}

/// Pieces of scratch memory [`for_each_part_with_scratch`] can use, for sizing it:
/// `scratch_len = max_parts(..) * per_part`. One piece per worker, i.e. per thread that has
/// a part to run (parts themselves may be more).
pub fn max_parts(rows: usize, grain: usize, threads: usize) -> usize {
    split(rows, grain, threads).parts.min(threads.max(1))
}

/// Runs `f` on this thread with `pool`'s workers as its helpers: each kernel that splits
/// runs parts on this thread too, and hands the rest to the pool (see the module docs), so
/// an invoke needs no hand-over to the pool and back. Restores the previous pool afterwards
/// (also when `f` panics).
pub fn with_pool<R>(pool: &rayon::ThreadPool, f: impl FnOnce() -> R) -> R {
    struct Restore(*const rayon::ThreadPool);
    impl Drop for Restore {
        fn drop(&mut self) {
            POOL.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(POOL.with(|p| p.replace(pool)));
    f()
}

/// Runs `f(item, piece)` for every item, on `workers` participants that each own one
/// `per`-long piece of `scratch` (an empty slice when `per` is 0) and take items from a
/// shared queue until it is empty. Preconditions: `workers >= 1`, and
/// `scratch.len() >= workers · per`.
fn run_queue<I, S, F>(items: I, workers: usize, scratch: &mut [S], per: usize, f: F)
where
    I: Iterator + Send,
    S: Send,
    F: Fn(I::Item, &mut [S]) + Sync,
{
    let queue = Mutex::new(items);
    let pool = POOL.with(Cell::get);
    if !pool.is_null() {
        // SAFETY: `with_pool` set it from a reference that outlives its closure, which is
        // running (this call is inside it).
        let pool = unsafe { &*pool };
        run_shared(
            pool,
            &queue,
            workers,
            &mut scratch[..workers * per],
            per,
            &f,
        );
        return;
    }
    // Outside `with_pool` (kernels called directly, and parts that split again on a
    // helper): rayon's current pool.
    if per == 0 {
        (0..workers)
            .into_par_iter()
            .for_each(|_| drain(&queue, &f, &mut []));
    } else {
        scratch[..workers * per]
            .par_chunks_mut(per)
            .for_each(|piece| drain(&queue, &f, piece));
    }
}

/// Runs items from `queue` until it is empty.
fn drain<I: Iterator, S, F: Fn(I::Item, &mut [S])>(queue: &Mutex<I>, f: &F, piece: &mut [S]) {
    // The lock is never held while `f` runs, so a panicking part cannot poison it; the
    // poison is ignored anyway rather than turned into a second panic.
    let next = || queue.lock().unwrap_or_else(PoisonError::into_inner).next();
    while let Some(item) = next() {
        f(item, piece);
    }
}

/// A queue of parts shared between the thread that owns it and helper jobs on the pool:
/// the number of helpers inside it, and [`CLOSED`] once the owner has stopped waiting for
/// more.
struct Section {
    state: AtomicUsize,
    /// The payload of a part that panicked on a helper, re-raised on the owner's thread.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

const CLOSED: usize = 1 << (usize::BITS - 1);

impl Section {
    /// Registers a helper, unless the owner has closed the section.
    fn enter(&self) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & CLOSED != 0 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    fn leave(&self) {
        self.state.fetch_sub(1, Ordering::Release);
    }

    /// Closes the section and waits for the helpers inside it to leave: each is finishing
    /// the part it took, since the queue is empty (or the owner is unwinding).
    fn close(&self) {
        let mut s = self.state.fetch_or(CLOSED, Ordering::AcqRel) | CLOSED;
        while s != CLOSED {
            std::hint::spin_loop();
            s = self.state.load(Ordering::Acquire);
        }
    }
}

/// What a helper job needs to take and run parts, behind one pointer.
struct Shared<'a, I, S, F> {
    queue: &'a Mutex<I>,
    f: &'a F,
    scratch: *mut S,
    per: usize,
}

/// Runs parts from the queue with scratch piece `idx`.
///
/// # Safety
/// `shared` points to a live `Shared<I, S, F>`, and piece `idx` is this caller's alone.
unsafe fn help<I: Iterator, S, F: Fn(I::Item, &mut [S])>(shared: *const (), idx: usize) {
    // SAFETY: the caller's promises.
    unsafe {
        let sh = &*(shared as *const Shared<I, S, F>);
        let piece = std::slice::from_raw_parts_mut(sh.scratch.add(idx * sh.per), sh.per);
        drain(sh.queue, sh.f, piece);
    }
}

/// [`run_queue`] on this thread and `workers − 1` helper jobs on `pool`. This thread starts
/// on the parts at once and never waits for a helper that has not started: when the queue is
/// empty it closes the section, so a helper that starts later leaves without touching
/// anything, and it waits (spinning: a part is short) only for helpers still running a part.
/// That wait is also what keeps the borrowed queue, `f` and scratch alive for the helpers,
/// which is why they can be `'static` jobs, and why it happens even when a part panics.
fn run_shared<I, S, F>(
    pool: &rayon::ThreadPool,
    queue: &Mutex<I>,
    workers: usize,
    scratch: &mut [S],
    per: usize,
    f: &F,
) where
    I: Iterator + Send,
    S: Send,
    F: Fn(I::Item, &mut [S]) + Sync,
{
    let shared = Shared {
        queue,
        f,
        scratch: scratch.as_mut_ptr(),
        per,
    };
    // Addresses as integers, so that the jobs are `Send` and `'static`; they are used only
    // inside an open section (see above).
    let at = &shared as *const Shared<'_, I, S, F> as usize;
    let run: unsafe fn(*const (), usize) = help::<I, S, F>;
    let section = Arc::new(Section {
        state: AtomicUsize::new(0),
        panic: Mutex::new(None),
    });
    struct Close<'a>(&'a Section);
    impl Drop for Close<'_> {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    let close = Close(&section);
    for idx in 1..workers {
        let section = Arc::clone(&section);
        pool.spawn(move || {
            if !section.enter() {
                return;
            }
            // SAFETY: the section is open, so `at` (a `Shared<I, S, F>`) and everything it
            // borrows stay alive until this helper leaves it; piece `idx` is this job's
            // alone (one job per index, and the owner uses piece 0).
            let r = catch_unwind(AssertUnwindSafe(|| unsafe { run(at as *const (), idx) }));
            if let Err(payload) = r {
                *section.panic.lock().unwrap_or_else(PoisonError::into_inner) = Some(payload);
            }
            section.leave();
        });
    }
    // SAFETY: `shared` is alive for this call, and piece 0 is this thread's.
    unsafe { run(at as *const (), 0) };
    drop(close);
    let payload = section
        .panic
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(payload) = payload {
        resume_unwind(payload);
    }
}

/// Runs `f(first_row, part)` over contiguous parts of `out`, in parallel when `threads > 1`.
///
/// Preconditions: `row_len > 0` and `out.len()` is a multiple of `row_len`.
pub fn for_each_part<T, F>(out: &mut [T], row_len: usize, grain: usize, threads: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    for_each_part_with_scratch::<T, u8, _>(out, row_len, grain, threads, &mut [], 0, |r0, p, _| {
        f(r0, p)
    });
}

/// Like [`for_each_part`], but each part also receives a disjoint `scratch_per_part`-long
/// piece of `scratch` (the piece of the worker running it; a piece is reused by the parts
/// its worker runs one after another): `f(first_row, part, scratch_piece)`.
///
/// Preconditions: as for [`for_each_part`]. Full parallelism needs
/// `scratch.len() >= max_parts(rows, grain, threads) * scratch_per_part`; with less, fewer
/// workers run the same parts, with the same results. If the scratch cannot hold even one
/// piece, `f` gets all of it and must cope (the kernels here then panic on slicing: a caller
/// bug, never a model-file condition).
pub fn for_each_part_with_scratch<T, S, F>(
    out: &mut [T],
    row_len: usize,
    grain: usize,
    threads: usize,
    scratch: &mut [S],
    scratch_per_part: usize,
    f: F,
) where
    T: Send,
    S: Send,
    F: Fn(usize, &mut [T], &mut [S]) + Sync,
{
    debug_assert!(row_len > 0 && out.len() % row_len == 0);
    let row_len = row_len.max(1);
    let rows = out.len() / row_len;
    let s = split(rows, grain, threads);
    let pieces = scratch
        .len()
        .checked_div(scratch_per_part)
        .unwrap_or(usize::MAX);
    let workers = threads.min(s.parts).min(pieces);
    let rpp = s.rows_per_part;
    if workers <= 1 {
        let end = scratch_per_part.min(scratch.len());
        let piece = &mut scratch[..end];
        for (i, part) in out.chunks_mut(rpp * row_len).enumerate() {
            f(i * rpp, part, &mut *piece);
        }
        return;
    }
    let parts = out.chunks_mut(rpp * row_len).enumerate();
    run_queue(
        parts,
        workers,
        scratch,
        scratch_per_part,
        |(i, part), piece| f(i * rpp, part, piece),
    );
}

/// Runs `f(i)` for every part `i` in `0..parts`, in parallel when `threads > 1`. For kernels
/// whose parts are not contiguous runs of rows (e.g. rectangles of a GEMM output): the
/// kernel itself guarantees that parts write disjoint elements.
pub fn for_each_index<F>(parts: usize, threads: usize, f: F)
where
    F: Fn(usize) + Sync,
{
    for_each_index_with_scratch::<u8, _>(parts, threads, &mut [], 0, |i, _| f(i));
}

/// Like [`for_each_index`], but part `i` also receives a disjoint `scratch_per_part`-long
/// piece of `scratch` (its worker's; reused by the parts that worker runs in turn):
/// `f(i, piece)`. There are at most `threads` workers, and no more than whole pieces fit.
///
/// Precondition: `scratch` holds at least one piece when `scratch_per_part > 0` (else panics).
pub fn for_each_index_with_scratch<S, F>(
    parts: usize,
    threads: usize,
    scratch: &mut [S],
    scratch_per_part: usize,
    f: F,
) where
    S: Send,
    F: Fn(usize, &mut [S]) + Sync,
{
    let pieces = scratch
        .len()
        .checked_div(scratch_per_part)
        .unwrap_or(usize::MAX);
    assert!(pieces >= 1, "scratch shorter than one piece");
    let workers = threads.min(parts).min(pieces);
    if workers <= 1 {
        let piece = &mut scratch[..scratch_per_part];
        for i in 0..parts {
            f(i, &mut *piece);
        }
        return;
    }
    run_queue(0..parts, workers, scratch, scratch_per_part, f);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_all_rows() {
        for rows in 0..60 {
            for grain in 1..8 {
                for threads in 0..6 {
                    let s = split(rows, grain, threads);
                    assert!(s.parts >= 1 && s.parts <= target_parts(threads));
                    assert!(s.parts * s.rows_per_part >= rows);
                    if rows > 0 {
                        // No empty trailing part.
                        assert!((s.parts - 1) * s.rows_per_part < rows);
                    }
                    if s.parts > 1 {
                        assert_eq!(s.rows_per_part % grain, 0);
                    }
                }
            }
        }
    }

    #[test]
    fn parts_visit_every_row_once_with_own_scratch() {
        for threads in 1..5 {
            let row_len = 3;
            let rows = 17;
            let mut out = vec![0u32; rows * row_len];
            let per = 2;
            let pieces = max_parts(rows, 2, threads);
            assert!(pieces <= threads);
            let mut scratch = vec![0u32; pieces * per];
            for_each_part_with_scratch(
                &mut out,
                row_len,
                2,
                threads,
                &mut scratch,
                per,
                |r0, part, s| {
                    assert_eq!(s.len(), per);
                    s[0] += 1;
                    for (i, row) in part.chunks_mut(row_len).enumerate() {
                        for v in row {
                            *v += (r0 + i) as u32 + 1;
                        }
                    }
                },
            );
            for (r, row) in out.chunks(row_len).enumerate() {
                assert!(row.iter().all(|&v| v == r as u32 + 1));
            }
            // Every part ran with one of the pieces (a worker reuses its piece).
            let uses: u32 = scratch.chunks(per).map(|p| p[0]).sum();
            assert_eq!(uses as usize, split(rows, 2, threads).parts);
        }
    }

    /// A pool of `threads − 1` workers, as the interpreter builds it.
    fn helpers(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(2) - 1)
            .build()
            .unwrap()
    }

    #[test]
    fn indexed_parts_run_once_each_with_own_scratch() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for threads in 1..5 {
            let pool = helpers(threads);
            // On rayon's current pool, and on this thread with `pool`'s helpers.
            for with_helpers in [false, true] {
                for per in [0, 3] {
                    let parts = 11;
                    let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
                    let mut scratch = vec![0u8; threads * per];
                    let mut run = || {
                        for_each_index_with_scratch(parts, threads, &mut scratch, per, |i, s| {
                            assert_eq!(s.len(), per);
                            // The piece is this worker's alone while the part runs.
                            s.fill(i as u8 + 1);
                            std::thread::yield_now();
                            assert!(s.iter().all(|&v| v == i as u8 + 1));
                            hits[i].fetch_add(1, Ordering::Relaxed);
                        })
                    };
                    if with_helpers {
                        with_pool(&pool, run);
                    } else {
                        run();
                    }
                    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                }
            }
        }
    }

    /// The calling thread never waits for a helper that has not started: with the pool's
    /// only worker blocked, it runs every part itself and returns; the helper job, when it
    /// runs at last, finds the queue closed and touches nothing.
    #[test]
    fn helpers_that_start_late_are_not_waited_for() {
        let pool = helpers(2);
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        pool.spawn(move || {
            started_tx.send(()).unwrap();
            blocked.recv().unwrap();
        });
        started.recv().unwrap();
        let me = std::thread::current().id();
        let mut seen = vec![false; 9];
        let mut scratch = vec![0u32; 2 * 4];
        with_pool(&pool, || {
            let seen = Mutex::new(&mut seen);
            for_each_index_with_scratch(9, 2, &mut scratch, 4, |i, s| {
                assert_eq!(std::thread::current().id(), me);
                s[0] += 1;
                seen.lock().unwrap()[i] = true;
            });
        });
        assert!(seen.iter().all(|&v| v));
        // The owner's piece is the first: it ran all nine parts.
        assert_eq!(scratch[0], 9);
        release.send(()).unwrap();
        // The late helper job runs on the worker now and leaves; the pool still works.
        let n = AtomicUsize::new(0);
        with_pool(&pool, || {
            for_each_index(16, 2, |_| {
                n.fetch_add(1, Ordering::Relaxed);
            })
        });
        assert_eq!(n.load(Ordering::Relaxed), 16);
    }

    /// A part that panics, on the calling thread or on a helper, panics the call (after
    /// every helper has left it), and leaves the pool and this thread as they were.
    #[test]
    fn a_panicking_part_panics_the_caller() {
        let pool = helpers(2);
        for bad in 0..8 {
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                with_pool(&pool, || {
                    for_each_index(8, 2, |i| {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                        assert!(i != bad, "part {i} fails");
                    })
                })
            }));
            assert!(r.is_err());
            assert!(POOL.with(Cell::get).is_null());
        }
        let n = AtomicUsize::new(0);
        with_pool(&pool, || {
            for_each_index(8, 2, |_| _ = n.fetch_add(1, Ordering::Relaxed))
        });
        assert_eq!(n.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn threads_get_several_parts_each() {
        assert_eq!(split(1000, 1, 1).parts, 1);
        assert_eq!(split(1000, 1, 2).parts, 2 * PARTS_PER_THREAD);
        assert_eq!(max_parts(1000, 1, 2), 2);
    }

    #[test]
    fn short_scratch_falls_back_to_fewer_parts() {
        let mut out = vec![0u8; 40];
        let mut scratch = vec![0u8; 3];
        for_each_part_with_scratch(&mut out, 4, 1, 4, &mut scratch, 3, |_, part, s| {
            assert_eq!(s.len(), 3);
            part.fill(1);
        });
        assert!(out.iter().all(|&v| v == 1));
    }
}
