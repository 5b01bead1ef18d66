//! DENSIFY: where each stored value of a sparse tensor goes in the dense one.
//!
//! The format is TFLite's (`sparsity_format_converter.cc`): the tensor's dimensions, some of
//! them split into blocks, are stored in `traversal_order`; each stored dimension is dense
//! (every index present) or CSR (for each position of the parent dimension, a segment of
//! present indices). Walking the levels outermost first visits the stored values in order.
//!
//! The walk is the reference's, with every index checked: a file whose indices point outside
//! the shape, whose segments go backwards, or which has fewer values than it addresses is
//! refused instead of writing out of bounds. Segment ranges past the end of their arrays are
//! skipped, as the reference does.

/// One stored dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level<'a> {
    /// Indices `0..size`.
    Dense(usize),
    /// For parent position `p`: `indices[segments[p]..segments[p + 1]]`.
    Sparse {
        segments: &'a [usize],
        indices: &'a [usize],
    },
}

/// A sparse tensor's layout.
#[derive(Debug, Clone, Copy)]
pub struct SparseFormat<'a> {
    /// Stored dimensions, outermost first: `0..rank` are the tensor's, `rank + j` the inner
    /// dimension of block `j`.
    pub traversal_order: &'a [usize],
    /// For block `j`, the tensor dimension it divides.
    pub block_map: &'a [usize],
    /// One per stored dimension, in traversal order.
    pub levels: &'a [Level<'a>],
}

/// Why a sparse layout was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DensifyError {
    /// Traversal order, block map and levels are inconsistent with the shape.
    BadLayout(&'static str),
    /// A stored index lies outside its dimension.
    IndexOutOfRange,
    /// Segments decrease.
    BadSegments,
    /// The layout addresses more values than the buffer holds.
    TooFewValues,
}

impl core::fmt::Display for DensifyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DensifyError::BadLayout(w) => write!(f, "bad sparse layout: {w}"),
            DensifyError::IndexOutOfRange => f.write_str("a sparse index lies outside the shape"),
            DensifyError::BadSegments => f.write_str("sparse segments are not increasing"),
            DensifyError::TooFewValues => {
                f.write_str("the sparse layout addresses more values than are stored")
            }
        }
    }
}

struct Walk<'a, F> {
    shape: &'a [usize],
    f: &'a SparseFormat<'a>,
    /// Size of each stored dimension (blocked size, or block size).
    bounds: Vec<usize>,
    block_size: Vec<usize>,
    idx: Vec<usize>,
    orig: Vec<usize>,
    next_value: usize,
    values: usize,
    place: F,
}

impl<F: FnMut(usize, usize)> Walk<'_, F> {
    fn leaf(&mut self) -> Result<(), DensifyError> {
        let rank = self.shape.len();
        for i in 0..rank {
            self.orig[self.f.traversal_order[i]] = self.idx[i];
        }
        for i in rank..self.idx.len() {
            let j = self.f.traversal_order[i] - rank;
            let d = self.f.block_map[j];
            self.orig[d] = self.orig[d] * self.block_size[j] + self.idx[i];
        }
        let mut flat = 0usize;
        for (&o, &n) in self.orig.iter().zip(self.shape) {
            if o >= n {
                return Err(DensifyError::IndexOutOfRange);
            }
            flat = flat * n + o;
        }
        if self.next_value >= self.values {
            return Err(DensifyError::TooFewValues);
        }
        (self.place)(self.next_value, flat);
        self.next_value += 1;
        Ok(())
    }

    fn level(&mut self, level: usize, parent: usize) -> Result<(), DensifyError> {
        if level == self.idx.len() {
            return self.leaf();
        }
        let bound = self.bounds[level];
        match self.f.levels[level] {
            Level::Dense(n) => {
                for i in 0..n {
                    self.idx[level] = i;
                    let p = parent
                        .checked_mul(n)
                        .and_then(|p| p.checked_add(i))
                        .ok_or(DensifyError::BadLayout("positions overflow"))?;
                    self.level(level + 1, p)?;
                }
            }
            Level::Sparse { segments, indices } => {
                let (Some(&lo), Some(&hi)) = (segments.get(parent), segments.get(parent + 1))
                else {
                    return Ok(());
                };
                for (i, &index) in indices.iter().enumerate().take(hi).skip(lo) {
                    if index >= bound {
                        return Err(DensifyError::IndexOutOfRange);
                    }
                    self.idx[level] = index;
                    self.level(level + 1, i)?;
                }
            }
        }
        Ok(())
    }
}

/// Calls `place(k, flat)` for stored value `k` (of `values`), `flat` being its position in
/// the dense tensor of `shape`. Positions never placed are zero in the dense tensor.
pub fn densify_positions(
    shape: &[usize],
    f: &SparseFormat<'_>,
    values: usize,
    place: impl FnMut(usize, usize),
) -> Result<(), DensifyError> {
    let rank = shape.len();
    let total = f.traversal_order.len();
    if f.levels.len() != total || total < rank || f.block_map.len() != total - rank {
        return Err(DensifyError::BadLayout(
            "traversal order, block map and levels disagree",
        ));
    }
    // The tensor's own dimensions come first, then the blocks', each exactly once.
    let mut seen = vec![false; total];
    for (i, &d) in f.traversal_order.iter().enumerate() {
        if d >= total || seen[d] || (i < rank) != (d < rank) {
            return Err(DensifyError::BadLayout(
                "traversal order is not a permutation",
            ));
        }
        seen[d] = true;
    }
    if f.block_map.windows(2).any(|w| w[0] >= w[1]) || f.block_map.iter().any(|&d| d >= rank) {
        return Err(DensifyError::BadLayout("block map"));
    }
    // Block sizes come from the dense size of each block's stored dimension.
    let mut block_size = Vec::with_capacity(f.block_map.len());
    for j in 0..f.block_map.len() {
        let level = f
            .traversal_order
            .get(rank + j)
            .and_then(|&d| f.levels.get(d))
            .ok_or(DensifyError::BadLayout("block level"))?;
        match *level {
            Level::Dense(n) if n > 0 => block_size.push(n),
            _ => {
                return Err(DensifyError::BadLayout(
                    "blocks must be dense and non-empty",
                ))
            }
        }
    }
    let mut blocked = shape.to_vec();
    for (j, &d) in f.block_map.iter().enumerate() {
        blocked[d] = shape[d] / block_size[j];
    }
    let mut bounds = Vec::with_capacity(total);
    for (i, &d) in f.traversal_order.iter().enumerate() {
        let bound = if d < rank {
            blocked[d]
        } else {
            block_size[d - rank]
        };
        match f.levels[i] {
            Level::Dense(n) if n > bound => return Err(DensifyError::IndexOutOfRange),
            Level::Sparse { segments, .. } if segments.windows(2).any(|w| w[0] > w[1]) => {
                return Err(DensifyError::BadSegments)
            }
            _ => {}
        }
        bounds.push(bound);
    }
    let mut walk = Walk {
        shape,
        f,
        bounds,
        block_size,
        idx: vec![0; total],
        orig: vec![0; rank],
        next_value: 0,
        values,
        place,
    };
    walk.level(0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_of(shape: &[usize], f: &SparseFormat<'_>, values: &[i32]) -> Vec<i32> {
        let mut out = vec![0; shape.iter().product()];
        densify_positions(shape, f, values.len(), |k, flat| out[flat] = values[k]).unwrap();
        out
    }

    #[test]
    fn csr_matrix() {
        // [[0, 1, 0], [0, 0, 0], [2, 0, 3]] stored row-major as CSR.
        let levels = [
            Level::Dense(3),
            Level::Sparse {
                segments: &[0, 1, 1, 3],
                indices: &[1, 0, 2],
            },
        ];
        let f = SparseFormat {
            traversal_order: &[0, 1],
            block_map: &[],
            levels: &levels,
        };
        assert_eq!(
            dense_of(&[3, 3], &f, &[1, 2, 3]),
            [0, 1, 0, 0, 0, 0, 2, 0, 3]
        );
        // Column-major traversal of the same values.
        let f2 = SparseFormat {
            traversal_order: &[1, 0],
            ..f
        };
        assert_eq!(
            dense_of(&[3, 3], &f2, &[1, 2, 3]),
            [0, 0, 2, 1, 0, 0, 0, 0, 3]
        );
    }

    #[test]
    fn blocked() {
        // A 4x4 matrix in 2x2 blocks; only blocks (0,1) and (1,0) are present.
        let levels = [
            Level::Dense(2),
            Level::Sparse {
                segments: &[0, 1, 2],
                indices: &[1, 0],
            },
            Level::Dense(2),
            Level::Dense(2),
        ];
        let f = SparseFormat {
            traversal_order: &[0, 1, 2, 3],
            block_map: &[0, 1],
            levels: &levels,
        };
        let values: Vec<i32> = (1..=8).collect();
        assert_eq!(
            dense_of(&[4, 4], &f, &values),
            [0, 0, 1, 2, 0, 0, 3, 4, 5, 6, 0, 0, 7, 8, 0, 0]
        );
    }

    #[test]
    fn hostile_layouts_are_refused() {
        let bad_index = [
            Level::Dense(2),
            Level::Sparse {
                segments: &[0, 1, 2],
                indices: &[0, 9],
            },
        ];
        let f = SparseFormat {
            traversal_order: &[0, 1],
            block_map: &[],
            levels: &bad_index,
        };
        let r = densify_positions(&[2, 3], &f, 2, |_, _| {});
        assert_eq!(r, Err(DensifyError::IndexOutOfRange));
        let ok = [
            Level::Dense(2),
            Level::Sparse {
                segments: &[0, 1, 2],
                indices: &[0, 2],
            },
        ];
        let f = SparseFormat { levels: &ok, ..f };
        let r = densify_positions(&[2, 3], &f, 1, |_, _| {});
        assert_eq!(r, Err(DensifyError::TooFewValues));
        let backwards = [
            Level::Dense(2),
            Level::Sparse {
                segments: &[0, 2, 1],
                indices: &[0, 2],
            },
        ];
        let f = SparseFormat {
            levels: &backwards,
            ..f
        };
        let r = densify_positions(&[2, 3], &f, 2, |_, _| {});
        assert_eq!(r, Err(DensifyError::BadSegments));
        let f = SparseFormat {
            traversal_order: &[0, 0],
            ..f
        };
        assert!(densify_positions(&[2, 3], &f, 2, |_, _| {}).is_err());
        let too_big = [Level::Dense(5), Level::Dense(3)];
        let f = SparseFormat {
            traversal_order: &[0, 1],
            block_map: &[],
            levels: &too_big,
        };
        assert!(densify_positions(&[2, 3], &f, 15, |_, _| {}).is_err());
    }
}
