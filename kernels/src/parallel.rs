//! Splitting a kernel's output rows over threads.
//!
//! Every parallel float kernel in this crate divides its *output* into contiguous parts of
//! whole rows and computes each part independently. Reductions are never split, so each output
//! element is computed by the same sequence of operations whatever the thread count: results
//! are bit-identical for 1 thread and for N threads.
//!
//! Parts are static (at most `threads` of them), so a kernel that needs working memory gets
//! one fixed piece of a caller-provided scratch slice per part and never allocates. The
//! interpreter runs kernels inside its own rayon pool (`pool.install`), so the rayon calls
//! here use that pool. With `threads <= 1` no rayon function is called at all.

use rayon::prelude::*;

/// How `rows` rows are divided: `parts` contiguous parts of `rows_per_part` rows each (the
/// last part may be shorter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub parts: usize,
    pub rows_per_part: usize,
}

/// Divides `rows` rows into at most `threads` parts whose sizes are multiples of `grain`
/// rows (except the last). `grain` lets a kernel keep its register tiles whole and avoid
/// parts too small to be worth a thread. Zero values of `grain`/`threads` count as 1.
pub fn split(rows: usize, grain: usize, threads: usize) -> Split {
    let grain = grain.max(1);
    let grains = rows.div_ceil(grain);
    let parts = threads.max(1).min(grains).max(1);
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

/// Upper bound on the number of parts [`split`] produces, for sizing scratch memory:
/// `scratch_len = max_parts(..) * per_part`.
pub fn max_parts(rows: usize, grain: usize, threads: usize) -> usize {
    split(rows, grain, threads).parts
}

/// Runs `f(first_row, part)` over contiguous parts of `out`, in parallel when `threads > 1`.
///
/// Preconditions: `row_len > 0` and `out.len()` is a multiple of `row_len`.
pub fn for_each_part<T, F>(out: &mut [T], row_len: usize, grain: usize, threads: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    debug_assert!(row_len > 0 && out.len() % row_len == 0);
    let row_len = row_len.max(1);
    let s = split(out.len() / row_len, grain, threads);
    if threads <= 1 || s.parts <= 1 {
        f(0, out);
        return;
    }
    let rpp = s.rows_per_part;
    out.par_chunks_mut(rpp * row_len)
        .enumerate()
        .for_each(|(i, part)| f(i * rpp, part));
}

/// Like [`for_each_part`], but each part also receives its own disjoint
/// `scratch_per_part`-long piece of `scratch`: `f(first_row, part, scratch_piece)`.
///
/// Preconditions: as for [`for_each_part`]. Full parallelism needs
/// `scratch.len() >= max_parts(rows, grain, threads) * scratch_per_part`; with less, fewer
/// (larger) parts are used so every row is still computed, with the same results. If the
/// scratch cannot hold even one piece, `f` gets all of it and must cope (the kernels here
/// then panic on slicing: a caller bug, never a model-file condition).
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
    // Only as many parts as there are scratch pieces (no limit when no scratch is needed).
    let threads = scratch
        .len()
        .checked_div(scratch_per_part)
        .map_or(threads, |pieces| threads.min(pieces));
    let s = split(rows, grain, threads);
    if threads <= 1 || s.parts <= 1 {
        let end = scratch_per_part.min(scratch.len());
        let piece = if scratch_per_part == 0 {
            &mut scratch[..0]
        } else {
            &mut scratch[..end]
        };
        f(0, out, piece);
        return;
    }
    let rpp = s.rows_per_part;
    if scratch_per_part == 0 {
        out.par_chunks_mut(rpp * row_len)
            .enumerate()
            .for_each(|(i, part)| f(i * rpp, part, &mut []));
    } else {
        out.par_chunks_mut(rpp * row_len)
            .zip(scratch.par_chunks_mut(scratch_per_part))
            .enumerate()
            .for_each(|(i, (part, piece))| f(i * rpp, part, piece));
    }
}

/// Runs `f(i)` for every part `i` in `0..parts`, in parallel when `threads > 1`. For kernels
/// whose parts are not contiguous runs of rows (e.g. rectangles of a GEMM output): the
/// kernel itself guarantees that parts write disjoint elements.
pub fn for_each_index<F>(parts: usize, threads: usize, f: F)
where
    F: Fn(usize) + Sync,
{
    if threads <= 1 || parts <= 1 {
        (0..parts).for_each(f);
        return;
    }
    (0..parts).into_par_iter().for_each(&f);
}

/// Like [`for_each_index`], but part `i` also receives the `i`-th disjoint
/// `scratch_per_part`-long piece of `scratch`: `f(i, piece)`.
///
/// Precondition: `scratch.len() >= parts · scratch_per_part` (else panics).
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
    let scratch = &mut scratch[..parts * scratch_per_part];
    if scratch_per_part == 0 {
        for_each_index(parts, threads, |i| f(i, &mut []));
    } else if threads <= 1 || parts <= 1 {
        for (i, piece) in scratch.chunks_mut(scratch_per_part).enumerate() {
            f(i, piece);
        }
    } else {
        scratch
            .par_chunks_mut(scratch_per_part)
            .enumerate()
            .for_each(|(i, piece)| f(i, piece));
    }
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
                    assert!(s.parts >= 1 && s.parts <= threads.max(1));
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
            let mut scratch = vec![0u32; max_parts(rows, 2, threads) * per];
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
            // Each piece of scratch was used by exactly one part.
            assert!(scratch.chunks(per).all(|p| p[0] == 1));
        }
    }

    #[test]
    fn indexed_parts_run_once_each_with_own_scratch() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for threads in 1..4 {
            for per in [0, 3] {
                let hits: Vec<AtomicUsize> = (0..5).map(|_| AtomicUsize::new(0)).collect();
                let mut scratch = vec![0u8; 5 * per];
                for_each_index_with_scratch(5, threads, &mut scratch, per, |i, s| {
                    assert_eq!(s.len(), per);
                    s.fill(i as u8 + 1);
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                for (i, piece) in scratch.chunks(per.max(1)).enumerate() {
                    assert!(piece.iter().all(|&v| v == i as u8 + 1));
                }
            }
        }
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
