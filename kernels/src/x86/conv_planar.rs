//! AVX2 + FMA tile of the planar float convolution (see `crate::conv_planar`): 16 output
//! pixels of one row (two vectors) × `OCT` output channels, 2·`OCT` accumulators. Per filter
//! tap and input channel: two loads of 16 neighbouring input values, one broadcast weight per
//! channel, two multiply-adds per channel.

use std::arch::x86_64::*;

use super::first_lanes;
use crate::activation::Clamp;

/// Geometry of one tile's reads: the planar input at the tile's first window (channel 0, the
/// window's top-left value), and the filter.
pub(crate) struct Tile {
    /// Input at channel 0, the window's first row and column `x0` of the padded planar band.
    pub src: *const f32,
    /// Floats between input channels (one padded row of one channel).
    pub plane: usize,
    /// Floats between padded input rows (all channels of a row).
    pub row: usize,
    pub in_c: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    /// Weights `[ic][kh][kw][8]` (lanes past the output channels are zero).
    pub w: *const f32,
    /// Bias of the 8 channel slots.
    pub bias: *const f32,
}

/// Computes the tile and writes `clamp(sum + bias)` of channel slot `o` (< `OCT`) for pixel
/// `i` (< 16) to `out[o][i]`.
///
/// # Safety
/// AVX2 and FMA available; `t.src + c·plane + dy·row + dx` readable for 16 floats for every
/// `c < in_c`, `dy < kernel_h`, `dx < kernel_w`; `t.w` readable for
/// `in_c·kernel_h·kernel_w·8` floats and `t.bias` for 8.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn tile<const OCT: usize>(t: &Tile, clamp: Clamp, out: &mut [[f32; 16]; OCT]) {
    let mut acc = [[_mm256_setzero_ps(); 2]; OCT];
    let mut w = t.w;
    for c in 0..t.in_c {
        for dy in 0..t.kernel_h {
            let src = t.src.add(c * t.plane + dy * t.row);
            for dx in 0..t.kernel_w {
                let x0 = _mm256_loadu_ps(src.add(dx));
                let x1 = _mm256_loadu_ps(src.add(dx + 8));
                for (o, a) in acc.iter_mut().enumerate() {
                    let wv = _mm256_broadcast_ss(&*w.add(o));
                    a[0] = _mm256_fmadd_ps(wv, x0, a[0]);
                    a[1] = _mm256_fmadd_ps(wv, x1, a[1]);
                }
                w = w.add(8);
            }
        }
    }
    let (lo, hi) = (_mm256_set1_ps(clamp.min), _mm256_set1_ps(clamp.max));
    for (o, (a, dst)) in acc.iter().zip(out.iter_mut()).enumerate() {
        let b = _mm256_broadcast_ss(&*t.bias.add(o));
        for (v, half) in a.iter().enumerate() {
            // Operand order as `Clamp::apply`: a NaN sum stays NaN.
            let y = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_add_ps(*half, b)));
            _mm256_storeu_ps(dst.as_mut_ptr().add(8 * v), y);
        }
    }
}

/// Copies one NHWC input row (`w` pixels of `c` channels at `src`) into `c` plane rows:
/// channel `ch` of pixel `x` goes to `dst + ch·plane + x`. Blocks of 8 pixels × 8 channels
/// are transposed in registers (masked loads for a channel tail); pixels past the last whole
/// block go through `tail`.
///
/// # Safety
/// AVX2 available; `src` readable for `w·c` floats; `dst + ch·plane + x` writable for every
/// `ch < c`, `x < w`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn transpose_row(
    src: *const f32,
    w: usize,
    c: usize,
    dst: *mut f32,
    plane: usize,
    tail: impl Fn(usize),
) {
    let mut x0 = 0;
    while x0 + 8 <= w {
        let mut c0 = 0;
        while c0 < c {
            let n = (c - c0).min(8);
            let m = first_lanes(n);
            let r: [__m256; 8] =
                std::array::from_fn(|i| _mm256_maskload_ps(src.add((x0 + i) * c + c0), m));
            let t = transpose8(r);
            for (j, v) in t.iter().enumerate().take(n) {
                _mm256_storeu_ps(dst.add((c0 + j) * plane + x0), *v);
            }
            c0 += 8;
        }
        x0 += 8;
    }
    for x in x0..w {
        tail(x);
    }
}

/// Row `j` of the result is lane `j` of every input vector.
#[inline(always)]
unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xee>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xee>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xee>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xee>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ]
}
