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
//! The interpreter runs an invoke inside its rayon pool (`ThreadPool::install`) only when the
//! previous one had a kernel that split ([`count_splits`]); otherwise it runs the invoke on
//! the calling thread inside [`serial`], which saves the two thread hand-overs of `install`
//! (about 65 µs per invoke of a small model none of whose layers splits, on a 2-vCPU
//! virtual machine). A kernel that wants to split under [`serial`] runs its parts in order on
//! that thread (same results) and makes the next invoke use the pool again. Inside the pool,
//! rayon's work stealing never waits for a worker that has not started: the thread that
//! drains the queue takes back the work it offered.

use std::cell::Cell;
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

thread_local! {
    /// Set by [`serial`]: kernels run all their parts on this thread.
    static SERIAL: Cell<bool> = const { Cell::new(false) };
    /// Kernels on this thread that split (or, under [`serial`], would have).
    static SPLITS: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` with this thread's split count and serial flag set as given, restoring both
/// afterwards (also when `f` panics); returns `f`'s result and the kernels that split in it.
fn scoped<R>(serial: bool, f: impl FnOnce() -> R) -> (R, usize) {
    struct Restore(bool, usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL.with(|s| s.set(self.0));
            SPLITS.with(|s| s.set(self.1));
        }
    }
    let _restore = Restore(
        SERIAL.with(|s| s.replace(serial)),
        SPLITS.with(|s| s.replace(0)),
    );
    let r = f();
    (r, SPLITS.with(Cell::get))
}

/// Runs `f` and counts the kernels that split their work over threads in it (on this thread).
pub fn count_splits<R>(f: impl FnOnce() -> R) -> (R, usize) {
    scoped(SERIAL.with(Cell::get), f)
}

/// Runs `f` with every kernel's parts in order on this thread, whatever its `threads`, and
/// counts the kernels that would have split.
pub fn serial<R>(f: impl FnOnce() -> R) -> (R, usize) {
    scoped(true, f)
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

/// Runs `f(item, piece)` for every item, on `workers` rayon jobs that each own one
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
    // The lock is never held while `f` runs, so a panicking part cannot poison it; the
    // poison is ignored anyway rather than turned into a second panic.
    let next = || queue.lock().unwrap_or_else(PoisonError::into_inner).next();
    let work = |piece: &mut [S]| {
        while let Some(item) = next() {
            f(item, piece);
        }
    };
    SPLITS.with(|s| s.set(s.get() + 1));
    if SERIAL.with(Cell::get) {
        work(&mut scratch[..per]);
        return;
    }
    if per == 0 {
        (0..workers).into_par_iter().for_each(|_| work(&mut []));
    } else {
        scratch[..workers * per].par_chunks_mut(per).for_each(work);
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

    #[test]
    fn indexed_parts_run_once_each_with_own_scratch() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for threads in 1..5 {
            // On the rayon pool, and all on this thread under `serial`.
            for serially in [false, true] {
                for per in [0, 3] {
                    let parts = 11;
                    let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
                    let mut scratch = vec![0u8; threads * per];
                    let me = std::thread::current().id();
                    let run = || {
                        for_each_index_with_scratch(parts, threads, &mut scratch, per, |i, s| {
                            assert_eq!(s.len(), per);
                            // The piece is this worker's alone while the part runs.
                            s.fill(i as u8 + 1);
                            std::thread::yield_now();
                            assert!(s.iter().all(|&v| v == i as u8 + 1));
                            assert!(!serially || std::thread::current().id() == me);
                            hits[i].fetch_add(1, Ordering::Relaxed);
                        })
                    };
                    let ((), splits) = if serially {
                        serial(run)
                    } else {
                        count_splits(run)
                    };
                    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                    assert_eq!(splits, usize::from(threads > 1));
                }
            }
        }
    }

    #[test]
    fn split_counts_nest_and_restore() {
        let ((inner, ()), outer) = count_splits(|| {
            for_each_index(5, 2, |_| {});
            let inner = serial(|| for_each_index(5, 2, |_| {})).1;
            // A single part never splits.
            for_each_index(1, 2, |_| {});
            (inner, ())
        });
        assert_eq!((inner, outer), (1, 1));
        assert!(!SERIAL.with(Cell::get));
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
