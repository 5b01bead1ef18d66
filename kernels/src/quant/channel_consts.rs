//! The per-channel requantization constants of the packed int8 convolution kernels (int16
//! and `sdot` convolutions, integer Winograd, depthwise). Each kernel stores them in its own
//! lane order, padded to whole blocks, and hands its microkernels a [`Requant`] view.

use super::conv::ConvQuant;

/// Bias, multiplier and the shift amounts of [`shift_amounts`], one per lane; lanes without
/// a channel are zero.
#[derive(Debug, Clone)]
pub(crate) struct ChannelConsts {
    pub bias: Vec<i32>,
    mult: Vec<i32>,
    left: Vec<i32>,
    right: Vec<i32>,
}

impl ChannelConsts {
    /// `lanes` empty lanes.
    pub(crate) fn zeros(lanes: usize) -> Self {
        ChannelConsts {
            bias: vec![0; lanes],
            mult: vec![0; lanes],
            left: vec![0; lanes],
            right: vec![0; lanes],
        }
    }

    /// Channel `c` of `q` in lane `c` for `c < out_c`, with its bias (or 0).
    pub(crate) fn in_order(
        q: &ConvQuant,
        out_c: usize,
        lanes: usize,
        bias: Option<&[i32]>,
    ) -> Self {
        let mut k = Self::zeros(lanes);
        for c in 0..out_c {
            k.set(c, q, c, bias.map_or(0, |b| b[c]));
        }
        k
    }

    /// Lane `at` requantizes channel `ch` of `q`, after adding `bias`.
    pub(crate) fn set(&mut self, at: usize, q: &ConvQuant, ch: usize, bias: i32) {
        self.bias[at] = bias;
        self.mult[at] = q.multipliers[ch];
        (self.left[at], self.right[at]) = shift_amounts(q.shifts[ch]);
    }

    pub(crate) fn byte_size(&self) -> usize {
        (self.bias.len() + self.mult.len() + self.left.len() + self.right.len()) * 4
    }

    /// What a job carries: these lanes with the output offset and clamp of `q`.
    pub(crate) fn view<'a>(&'a self, q: &ConvQuant) -> Requant<'a> {
        Requant {
            bias: &self.bias,
            mult: &self.mult,
            left: &self.left,
            right: &self.right,
            out_offset: q.output_offset,
            act_min: q.act_min,
            act_max: q.act_max,
        }
    }
}

/// The requantization a microkernel applies: per-lane bias, multiplier and shifts (as
/// [`ChannelConsts`] stores them), then the output offset and the activation clamp.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Requant<'a> {
    pub bias: &'a [i32],
    pub mult: &'a [i32],
    pub left: &'a [i32],
    pub right: &'a [i32],
    pub out_offset: i32,
    pub act_min: i32,
    pub act_max: i32,
}

impl Requant<'_> {
    /// No constants: for a kernel whose epilogue does not requantize (the hybrid one).
    pub(crate) fn unused() -> Requant<'static> {
        Requant {
            bias: &[],
            mult: &[],
            left: &[],
            right: &[],
            out_offset: 0,
            act_min: 0,
            act_max: 0,
        }
    }
}

/// The left and right shifts the scalar requantization applies for `shift`:
/// `x·2^left` wraps, so `left` is taken mod 32; the rounding division clamps to 0..=31.
pub(crate) fn shift_amounts(shift: i32) -> (i32, i32) {
    let left = (shift.max(0) as u32 & 31) as i32;
    let right = shift.saturating_neg().clamp(0, 31);
    (left, right)
}
