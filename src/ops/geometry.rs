//! Window geometry shared by convolution and pooling: TFLite's padding rule.

use crate::options::Padding;

/// Output size and leading padding of one spatial dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Axis {
    pub out: usize,
    pub pad_before: usize,
}

/// SAME: `out = ceil(in / stride)`; VALID: `out = (in − effective + stride) / stride` (0 when the
/// window does not fit). Total padding is whatever makes the last window end at the edge;
/// the odd pixel goes after (bottom/right), as in TFLite.
pub(crate) fn axis(
    padding: Padding,
    input: usize,
    filter: usize,
    stride: usize,
    dilation: usize,
) -> Option<Axis> {
    let effective = filter
        .checked_sub(1)?
        .checked_mul(dilation)?
        .checked_add(1)?;
    if stride == 0 {
        return None;
    }
    let out = match padding {
        Padding::Same => input.div_ceil(stride),
        Padding::Valid => (input + stride).saturating_sub(effective) / stride,
    };
    let needed = out
        .saturating_sub(1)
        .checked_mul(stride)?
        .checked_add(effective)?;
    let total = needed.saturating_sub(input);
    Some(Axis {
        out,
        pad_before: total / 2,
    })
}

/// Converts a stride, dilation or filter size read from the file: at least 1.
pub(crate) fn positive(v: i32) -> Option<usize> {
    (v >= 1).then_some(v as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_and_valid() {
        // 7 wide, 3 tap, stride 2: SAME gives 4 outputs with 1 pixel of padding on each side.
        assert_eq!(
            axis(Padding::Same, 7, 3, 2, 1),
            Some(Axis {
                out: 4,
                pad_before: 1
            })
        );
        assert_eq!(
            axis(Padding::Valid, 7, 3, 2, 1),
            Some(Axis {
                out: 3,
                pad_before: 0
            })
        );
        // Even total: 6 wide, 3 tap, stride 2, SAME: 3 outputs, total padding 1 -> 0 before.
        assert_eq!(
            axis(Padding::Same, 6, 3, 2, 1),
            Some(Axis {
                out: 3,
                pad_before: 0
            })
        );
        // Dilation 2 makes a 3-tap filter span 5.
        assert_eq!(
            axis(Padding::Same, 5, 3, 1, 2),
            Some(Axis {
                out: 5,
                pad_before: 2
            })
        );
        assert_eq!(
            axis(Padding::Valid, 5, 3, 1, 2),
            Some(Axis {
                out: 1,
                pad_before: 0
            })
        );
        // Window larger than the input under VALID.
        assert_eq!(
            axis(Padding::Valid, 2, 3, 1, 1),
            Some(Axis {
                out: 0,
                pad_before: 0
            })
        );
        assert_eq!(axis(Padding::Same, 2, 3, 0, 1), None);
    }
}
