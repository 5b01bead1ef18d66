//! Arena planning: give every activation buffer an offset in one allocation so that buffers
//! alive at the same time never overlap.
//!
//! Each buffer has an inclusive lifetime `[first, last]` in execution steps. A step's outputs
//! may not share memory with inputs that die at that same step, because kernels read inputs
//! while they write outputs; inclusive intervals express exactly that.
//!
//! Placement is best-fit (the smallest gap between already-placed, time-overlapping buffers
//! that fits), as TFLite's arena planner does. The result depends on the order buffers are
//! placed in, so several orders are tried and the smallest arena kept. The largest total of
//! buffers alive at one step is a lower bound for any plan; planning stops as soon as an order
//! reaches it.

/// Alignment of every offset and of the arena itself, in bytes.
pub const ALIGN: usize = 64;

/// One buffer to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub bytes: usize,
    pub first: usize,
    pub last: usize,
}

impl Interval {
    fn overlaps(&self, other: &Interval) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Offset of each buffer, in input order.
    pub offsets: Vec<usize>,
    /// Arena size: the highest `offset + aligned size`.
    pub arena_bytes: usize,
    /// The largest total of aligned sizes alive at one step.
    pub lower_bound_bytes: usize,
    /// The sum of all (unaligned) sizes: the memory with no reuse at all.
    pub naive_bytes: usize,
}

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Plans `buffers`. Sizes are rounded up to [`ALIGN`].
pub fn plan(buffers: &[Interval]) -> Plan {
    let lower_bound_bytes = lower_bound(buffers);
    let naive_bytes = buffers.iter().map(|b| b.bytes).sum();

    let n = buffers.len();
    let by_size = |a: &usize, b: &usize| {
        let (x, y) = (&buffers[*a], &buffers[*b]);
        y.bytes
            .cmp(&x.bytes)
            .then(x.first.cmp(&y.first))
            .then(a.cmp(b))
    };
    let by_start = |a: &usize, b: &usize| {
        let (x, y) = (&buffers[*a], &buffers[*b]);
        x.first
            .cmp(&y.first)
            .then(y.bytes.cmp(&x.bytes))
            .then(a.cmp(b))
    };
    let by_area = |a: &usize, b: &usize| {
        let (x, y) = (&buffers[*a], &buffers[*b]);
        let area = |i: &Interval| i.bytes as u128 * (i.last - i.first + 1) as u128;
        area(y).cmp(&area(x)).then(a.cmp(b))
    };
    let by_length = |a: &usize, b: &usize| {
        let (x, y) = (&buffers[*a], &buffers[*b]);
        (y.last - y.first)
            .cmp(&(x.last - x.first))
            .then(y.bytes.cmp(&x.bytes))
            .then(a.cmp(b))
    };
    type Order<'a> = &'a dyn Fn(&usize, &usize) -> std::cmp::Ordering;
    let orders: [Order<'_>; 4] = [&by_size, &by_start, &by_area, &by_length];

    let mut best: Option<(Vec<usize>, usize)> = None;
    for cmp in orders {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|a, b| cmp(a, b));
        let (offsets, size) = place(buffers, &order);
        if best.as_ref().is_none_or(|(_, s)| size < *s) {
            best = Some((offsets, size));
        }
        if size <= lower_bound_bytes {
            break;
        }
    }
    let (offsets, arena_bytes) = best.unwrap_or_default();
    Plan {
        offsets,
        arena_bytes,
        lower_bound_bytes,
        naive_bytes,
    }
}

/// Best-fit placement of `buffers` in `order`; returns offsets and the arena size.
fn place(buffers: &[Interval], order: &[usize]) -> (Vec<usize>, usize) {
    let mut offsets = vec![0usize; buffers.len()];
    // Placed buffers as (offset, aligned size, index), kept sorted by offset.
    let mut placed: Vec<(usize, usize, usize)> = Vec::with_capacity(buffers.len());
    let mut arena = 0;
    for &i in order {
        let b = &buffers[i];
        let size = align(b.bytes);
        let mut best: Option<(usize, usize)> = None; // (gap, offset)
        let mut cursor = 0;
        for &(off, sz, j) in &placed {
            if !buffers[j].overlaps(b) {
                continue;
            }
            if off >= cursor {
                let gap = off - cursor;
                if gap >= size && best.is_none_or(|(g, _)| gap < g) {
                    best = Some((gap, cursor));
                }
            }
            cursor = cursor.max(off + sz);
        }
        let offset = best.map(|(_, o)| o).unwrap_or(cursor);
        offsets[i] = offset;
        arena = arena.max(offset + size);
        let pos = placed.partition_point(|&(o, _, _)| o <= offset);
        placed.insert(pos, (offset, size, i));
    }
    (offsets, arena)
}

fn lower_bound(buffers: &[Interval]) -> usize {
    let steps = buffers.iter().map(|b| b.last + 1).max().unwrap_or(0);
    // Difference array over steps: +size at first, −size after last.
    let mut delta = vec![0i128; steps + 1];
    for b in buffers {
        delta[b.first] += align(b.bytes) as i128;
        delta[b.last + 1] -= align(b.bytes) as i128;
    }
    let mut live = 0i128;
    let mut max = 0i128;
    for d in delta {
        live += d;
        max = max.max(live);
    }
    max as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(bytes: usize, first: usize, last: usize) -> Interval {
        Interval { bytes, first, last }
    }

    fn check_no_overlap(buffers: &[Interval], plan: &Plan) {
        for i in 0..buffers.len() {
            assert_eq!(plan.offsets[i] % ALIGN, 0);
            assert!(plan.offsets[i] + align(buffers[i].bytes) <= plan.arena_bytes);
            for j in 0..i {
                if buffers[i].overlaps(&buffers[j]) {
                    let (a, b) = (plan.offsets[i], plan.offsets[j]);
                    let (sa, sb) = (align(buffers[i].bytes), align(buffers[j].bytes));
                    assert!(a + sa <= b || b + sb <= a, "buffers {i} and {j} overlap");
                }
            }
        }
    }

    #[test]
    fn chain_reuses_memory() {
        // A chain a -> b -> c -> d: each step holds its input and its output.
        let bufs = [
            iv(1000, 0, 1),
            iv(2000, 1, 2),
            iv(1000, 2, 3),
            iv(500, 3, 3),
        ];
        let plan = plan(&bufs);
        check_no_overlap(&bufs, &plan);
        assert_eq!(plan.lower_bound_bytes, 1024 + 2048);
        assert_eq!(plan.arena_bytes, plan.lower_bound_bytes);
        assert_eq!(plan.naive_bytes, 4500);
    }

    #[test]
    fn inclusive_lifetimes_do_not_share() {
        // b is produced at step 1, where a is read for the last time: they must not overlap.
        let bufs = [iv(64, 0, 1), iv(64, 1, 2)];
        let plan = plan(&bufs);
        check_no_overlap(&bufs, &plan);
        assert_eq!(plan.arena_bytes, 128);
    }

    #[test]
    fn residual_block() {
        // x feeds a branch and the final add: x lives across the whole block.
        let bufs = [
            iv(4096, 0, 3),
            iv(4096, 1, 2),
            iv(4096, 2, 3),
            iv(4096, 3, 4),
        ];
        let plan = plan(&bufs);
        check_no_overlap(&bufs, &plan);
        assert_eq!(plan.arena_bytes, plan.lower_bound_bytes);
    }

    #[test]
    fn random_plans_are_valid() {
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..200 {
            let n = (next() % 40) as usize + 1;
            let bufs: Vec<Interval> = (0..n)
                .map(|_| {
                    let first = (next() % 30) as usize;
                    let len = (next() % 8) as usize;
                    iv((next() % 5000) as usize + 1, first, first + len)
                })
                .collect();
            let plan = plan(&bufs);
            check_no_overlap(&bufs, &plan);
            assert!(plan.arena_bytes >= plan.lower_bound_bytes);
        }
    }

    #[test]
    fn empty() {
        let plan = plan(&[]);
        assert_eq!(plan.arena_bytes, 0);
        assert_eq!(plan.lower_bound_bytes, 0);
    }
}
