//! Shapes of the windowed NHWC kernels (convolution, depthwise convolution, pooling).
//!
//! The interpreter computes output sizes and padding (TFLite's `ComputePaddingHeightWidth`)
//! and fills these structs; [`ConvGeometry::validate`] and [`PoolGeometry::validate`] check
//! that every size product fits in `usize`, so the kernels can index without overflow.

use super::error::QuantError;

/// Geometry of a 2-D convolution or depthwise convolution over NHWC tensors.
///
/// Input `[batches, in_h, in_w, in_c]`, output `[batches, out_h, out_w, out_c]`.
/// Input row of output row `oy` and filter row `ky` is
/// `oy·stride_h − pad_top + ky·dilation_h` (same for columns); taps outside the input are
/// skipped (zero padding in real terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// N.
    pub batches: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Output channels.
    pub out_c: usize,
    /// Filter height.
    pub filter_h: usize,
    /// Filter width.
    pub filter_w: usize,
    /// Vertical stride (> 0).
    pub stride_h: usize,
    /// Horizontal stride (> 0).
    pub stride_w: usize,
    /// Vertical dilation (> 0).
    pub dilation_h: usize,
    /// Horizontal dilation (> 0).
    pub dilation_w: usize,
    /// Rows of padding above the input.
    pub pad_top: usize,
    /// Columns of padding left of the input.
    pub pad_left: usize,
}

/// Product of `dims`, or `None` on overflow.
pub(crate) fn mul_all(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1_usize, |acc, &d| acc.checked_mul(d))
}

impl ConvGeometry {
    /// Checks strides/dilations are non-zero and all buffer sizes (and the largest input
    /// coordinate the window can reach) fit in `usize`.
    pub fn validate(&self) -> Result<(), QuantError> {
        if self.stride_h == 0 || self.stride_w == 0 {
            return Err(QuantError::BadGeometry("zero stride"));
        }
        if self.dilation_h == 0 || self.dilation_w == 0 {
            return Err(QuantError::BadGeometry("zero dilation"));
        }
        let sizes = [
            mul_all(&[self.batches, self.in_h, self.in_w, self.in_c]),
            mul_all(&[self.batches, self.out_h, self.out_w, self.out_c]),
            mul_all(&[self.filter_h, self.filter_w, self.in_c, self.out_c]),
            // Furthest window coordinate: out·stride + filter·dilation.
            self.out_h
                .checked_mul(self.stride_h)
                .and_then(|v| v.checked_add(mul_all(&[self.filter_h, self.dilation_h])?)),
            self.out_w
                .checked_mul(self.stride_w)
                .and_then(|v| v.checked_add(mul_all(&[self.filter_w, self.dilation_w])?)),
        ];
        if sizes.iter().any(Option::is_none) {
            return Err(QuantError::BadGeometry("size overflow"));
        }
        Ok(())
    }

    /// Number of input elements.
    pub fn input_len(&self) -> usize {
        self.batches * self.in_h * self.in_w * self.in_c
    }

    /// Number of output elements.
    pub fn output_len(&self) -> usize {
        self.batches * self.out_h * self.out_w * self.out_c
    }

    /// Input coordinate of output index `o` and tap `k` along one axis, if inside
    /// `[0, size)`.
    #[inline]
    pub(crate) fn tap(
        o: usize,
        stride: usize,
        pad: usize,
        k: usize,
        dil: usize,
        size: usize,
    ) -> Option<usize> {
        let pos = o * stride + k * dil;
        let p = pos.checked_sub(pad)?;
        (p < size).then_some(p)
    }

    /// Whether the whole filter window of output `(oy, ox)` lies inside the input.
    #[inline]
    pub(crate) fn window_inside(&self, oy: usize, ox: usize) -> bool {
        let y0 = oy * self.stride_h;
        let x0 = ox * self.stride_w;
        y0 >= self.pad_top
            && x0 >= self.pad_left
            && y0 - self.pad_top + (self.filter_h.max(1) - 1) * self.dilation_h < self.in_h
            && x0 - self.pad_left + (self.filter_w.max(1) - 1) * self.dilation_w < self.in_w
    }
}

/// Geometry of a 2-D pooling over NHWC tensors (channels are preserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    /// N.
    pub batches: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Channels (input and output).
    pub channels: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Window height.
    pub filter_h: usize,
    /// Window width.
    pub filter_w: usize,
    /// Vertical stride (> 0).
    pub stride_h: usize,
    /// Horizontal stride (> 0).
    pub stride_w: usize,
    /// Rows of padding above the input.
    pub pad_top: usize,
    /// Columns of padding left of the input.
    pub pad_left: usize,
}

impl PoolGeometry {
    /// Checks strides are non-zero and sizes fit in `usize`.
    pub fn validate(&self) -> Result<(), QuantError> {
        if self.stride_h == 0 || self.stride_w == 0 {
            return Err(QuantError::BadGeometry("zero stride"));
        }
        let sizes = [
            mul_all(&[self.batches, self.in_h, self.in_w, self.channels]),
            mul_all(&[self.batches, self.out_h, self.out_w, self.channels]),
            self.out_h
                .checked_mul(self.stride_h)
                .and_then(|v| v.checked_add(self.filter_h)),
            self.out_w
                .checked_mul(self.stride_w)
                .and_then(|v| v.checked_add(self.filter_w)),
        ];
        if sizes.iter().any(Option::is_none) {
            return Err(QuantError::BadGeometry("size overflow"));
        }
        Ok(())
    }

    /// Number of input elements.
    pub fn input_len(&self) -> usize {
        self.batches * self.in_h * self.in_w * self.channels
    }

    /// Number of output elements.
    pub fn output_len(&self) -> usize {
        self.batches * self.out_h * self.out_w * self.channels
    }

    /// The clamped window `[start, end)` along one axis, as TFLite computes it:
    /// `max(0, −origin) .. min(filter, size − origin)`, in input coordinates.
    #[inline]
    pub(crate) fn window(
        o: usize,
        stride: usize,
        pad: usize,
        filter: usize,
        size: usize,
    ) -> (usize, usize) {
        let origin = o * stride; // input coordinate + pad
        let start = origin.max(pad) - pad;
        let end = (origin + filter)
            .min(size.saturating_add(pad))
            .saturating_sub(pad);
        (start, end.max(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_window_matches_tflite_formula() {
        // Compare with the signed formula of the reference kernel for many positions.
        for size in 1..6_usize {
            for filter in 1..5_usize {
                for stride in 1..3_usize {
                    for pad in 0..3_usize {
                        for o in 0..6_usize {
                            let origin = (o * stride) as i64 - pad as i64;
                            let fs = 0.max(-origin);
                            let fe = (filter as i64).min(size as i64 - origin);
                            let (s, e) = PoolGeometry::window(o, stride, pad, filter, size);
                            let want: Vec<i64> = (fs..fe).map(|f| origin + f).collect();
                            let got: Vec<i64> = (s..e).map(|v| v as i64).collect();
                            assert_eq!(
                                got, want,
                                "size {size} f {filter} s {stride} p {pad} o {o}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn conv_taps_and_window_inside() {
        let g = ConvGeometry {
            batches: 1,
            in_h: 5,
            in_w: 5,
            in_c: 1,
            out_h: 5,
            out_w: 5,
            out_c: 1,
            filter_h: 3,
            filter_w: 3,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 1,
            pad_left: 1,
        };
        assert!(g.validate().is_ok());
        assert!(!g.window_inside(0, 2));
        assert!(g.window_inside(1, 1));
        assert!(g.window_inside(3, 3));
        assert!(!g.window_inside(4, 3));
        assert_eq!(ConvGeometry::tap(0, 1, 1, 0, 1, 5), None);
        assert_eq!(ConvGeometry::tap(0, 1, 1, 1, 1, 5), Some(0));
        assert_eq!(ConvGeometry::tap(4, 1, 1, 2, 1, 5), None);
        let bad = ConvGeometry { stride_h: 0, ..g };
        assert!(bad.validate().is_err());
        let huge = ConvGeometry {
            batches: usize::MAX,
            ..g
        };
        assert!(huge.validate().is_err());
    }
}
