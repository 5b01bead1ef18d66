//! Criterion benchmarks of the float and int8 kernels, in every tier this CPU runs, beside
//! the machine's peak.
//!
//! Throughput is counted in operations, 2 per multiply-add, so criterion's "elem/s" reads as
//! FLOP/s for the float groups and OP/s for the int8 ones (`conv_i8`, `depthwise_i8`). The
//! `peak` group times the instruction each tier's kernels are built on, in registers with no
//! memory traffic, in the same unit: `fma_f32` (AVX2 `vfmadd`, NEON `fmla`, 8 or 4 lanes)
//! for the float kernels, `madd_i16` (AVX2 `vpmaddwd` plus the `vpaddd` that accumulates it,
//! 16 multiply-adds per pair; NEON `smlal`) for the int8 ones. A kernel's share of the peak
//! is its figure over the peak's. Shapes are layers of the benchmark models: ResNet18-224,
//! MobileNetV2-224 and the CIFAR ResNet18 with pruned (odd) channel counts.
//!
//! ```sh
//! cargo bench --bench kernels                 # everything
//! cargo bench --bench kernels -- conv/avx2    # a filter
//! cargo bench --bench kernels -- peak         # the machine's peak
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrolite_kernels::activation::Clamp;
use ferrolite_kernels::conv::{self, ConvParams, PackedConv};
use ferrolite_kernels::depthwise::{self, DepthwiseParams};
use ferrolite_kernels::gemm::{self, PackedB};
use ferrolite_kernels::isa::Isa;
use ferrolite_kernels::quant::conv::ConvQuant;
use ferrolite_kernels::quant::conv_packed::PackedConvI8;
use ferrolite_kernels::quant::depthwise_packed::PackedDepthwiseI8;
use ferrolite_kernels::quant::{ConvGeometry, FusedActivation, QuantParams};

/// Deterministic data in [-1, 1): the values do not matter for speed, only that they are
/// ordinary floats (no denormals).
fn data(len: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn bench_gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm");
    g.sample_size(20);
    // (name, M, K, N): a 3×3 ResNet layer as a GEMM, a pointwise MobileNet expansion, the
    // deepest ResNet layer, and FULLY_CONNECTED with one row.
    let shapes = [
        ("resnet_l1_3136x576x64", 3136, 576, 64),
        ("mnv2_expand_3136x24x144", 3136, 24, 144),
        ("resnet_l4_49x4608x512", 49, 4608, 512),
        ("fc_1x512x1000", 1, 512, 1000),
    ];
    for isa in Isa::available() {
        for &(name, m, k, n) in &shapes {
            let a = data(m * k, 1);
            let w = data(n * k, 2);
            let bias = data(n, 3);
            let packed = PackedB::from_transposed(&w, n, k, isa);
            let mut out = vec![0.0; m * n];
            g.throughput(Throughput::Elements(2 * (m * n * k) as u64));
            g.bench_function(BenchmarkId::new(isa.name(), name), |bch| {
                bch.iter(|| {
                    gemm::gemm_f32(
                        black_box(&a),
                        k,
                        m,
                        &packed,
                        Some(&bias),
                        Clamp::RELU,
                        &mut out,
                        1,
                    )
                })
            });
        }
    }
    g.finish();
}

#[allow(clippy::too_many_arguments)]
fn conv_params(
    hw: usize,
    in_c: usize,
    out_c: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
) -> ConvParams {
    let out = (hw + 2 * pad - kernel) / stride + 1;
    ConvParams {
        batch: 1,
        in_h: hw,
        in_w: hw,
        in_c,
        out_h: out,
        out_w: out,
        out_c,
        kernel_h: kernel,
        kernel_w: kernel,
        stride_h: stride,
        stride_w: stride,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: pad,
        pad_left: pad,
        clamp: Clamp::RELU,
    }
}

fn bench_conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv");
    g.sample_size(20);
    let shapes = [
        (
            "resnet_conv1_7x7s2_224x3to64",
            conv_params(224, 3, 64, 7, 2, 3),
        ),
        ("resnet_3x3_56x64to64", conv_params(56, 64, 64, 3, 1, 1)),
        ("resnet_3x3_7x512to512", conv_params(7, 512, 512, 3, 1, 1)),
        ("resnet_1x1s2_56x64to128", conv_params(56, 64, 128, 1, 2, 0)),
        ("cifar_3x3_32x15to6", conv_params(32, 15, 6, 3, 1, 1)),
        ("cifar_3x3_16x20to26", conv_params(16, 20, 26, 3, 1, 1)),
    ];
    for isa in Isa::available() {
        for (name, p) in &shapes {
            let x = data(p.input_len(), 4);
            let w = data(p.out_c * p.kernel_h * p.kernel_w * p.in_c, 5);
            let bias = data(p.out_c, 6);
            let packed = PackedConv::new(p, &w, isa);
            let mut out = vec![0.0; p.output_len()];
            let len = packed.scratch_len(1);
            let mut floats = vec![0.0f32; len.floats];
            let mut offsets = vec![0usize; len.offsets];
            g.throughput(Throughput::Elements(2 * p.macs() as u64));
            g.bench_function(BenchmarkId::new(isa.name(), name), |bch| {
                bch.iter(|| {
                    conv::conv2d_f32(
                        p,
                        black_box(&x),
                        &packed,
                        Some(&bias),
                        &mut out,
                        &mut floats,
                        &mut offsets,
                        1,
                        None,
                    )
                })
            });
        }
    }
    g.finish();
}

fn dw_params(hw: usize, c: usize, kernel: usize, stride: usize) -> DepthwiseParams {
    let pad = (kernel - 1) / 2;
    let out = (hw + 2 * pad - kernel) / stride + 1;
    DepthwiseParams {
        batch: 1,
        in_h: hw,
        in_w: hw,
        in_c: c,
        depth_multiplier: 1,
        out_h: out,
        out_w: out,
        kernel_h: kernel,
        kernel_w: kernel,
        stride_h: stride,
        stride_w: stride,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: pad,
        pad_left: pad,
        clamp: Clamp::RELU6,
    }
}

fn bench_depthwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("depthwise");
    g.sample_size(20);
    let shapes = [
        ("mnv2_3x3s2_112x96", dw_params(112, 96, 3, 2)),
        ("mnv2_3x3s1_56x144", dw_params(56, 144, 3, 1)),
        ("mnv2_3x3s1_14x576", dw_params(14, 576, 3, 1)),
        ("mnv2_3x3s1_7x960", dw_params(7, 960, 3, 1)),
        ("5x5s1_28x96", dw_params(28, 96, 5, 1)),
    ];
    for isa in Isa::available() {
        for (name, p) in &shapes {
            let x = data(p.input_len(), 7);
            let w = data(p.filter_len(), 8);
            let bias = data(p.out_c(), 9);
            let packed = depthwise::PackedDepthwise::new(p, &w, Some(&bias), isa);
            let mut out = vec![0.0; p.output_len()];
            let macs = p.output_len() * p.kernel_h * p.kernel_w;
            g.throughput(Throughput::Elements(2 * macs as u64));
            g.bench_function(BenchmarkId::new(isa.name(), name), |bch| {
                bch.iter(|| depthwise::depthwise_conv2d_f32(p, black_box(&x), &packed, &mut out, 1))
            });
        }
    }
    g.finish();
}

/// int8 data over the whole range, from the same generator as [`data`].
fn data_i8(len: usize, seed: u32) -> Vec<i8> {
    data(len, seed)
        .into_iter()
        .map(|x| (x * 127.5) as i8)
        .collect()
}

/// An int8 layer's geometry: `hw × hw × in_c` to `out_c` channels, square `kernel`, SAME-style
/// padding `pad`.
fn geometry_i8(
    hw: usize,
    in_c: usize,
    out_c: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
) -> ConvGeometry {
    let p = conv_params(hw, in_c, out_c, kernel, stride, pad);
    ConvGeometry {
        batches: 1,
        in_h: p.in_h,
        in_w: p.in_w,
        in_c,
        out_h: p.out_h,
        out_w: p.out_w,
        out_c,
        filter_h: kernel,
        filter_w: kernel,
        stride_h: stride,
        stride_w: stride,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: pad,
        pad_left: pad,
    }
}

/// Per-channel quantization of an int8 layer with `out_c` channels, scales typical of a
/// converted model (requantization multipliers well below 1).
fn quant_i8(out_c: usize) -> ConvQuant {
    let scales: Vec<f32> = (0..out_c).map(|c| 0.002 + 0.0001 * c as f32).collect();
    ConvQuant::new_i8(
        QuantParams::new(0.02, -3),
        &scales,
        QuantParams::new(0.05, -128),
        FusedActivation::Relu6,
        out_c,
    )
    .expect("valid quantization")
}

fn bench_conv_i8(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv_i8");
    g.sample_size(20);
    // ResNet18's stem (rows mode) and a 3×3 layer (exact Winograd on AVX2), a MobileNetV2
    // pointwise expansion, CIFAR layers with few channels (rows mode).
    let shapes = [
        (
            "resnet_conv1_7x7s2_224x3to64",
            geometry_i8(224, 3, 64, 7, 2, 3),
        ),
        ("resnet_3x3_56x64to64", geometry_i8(56, 64, 64, 3, 1, 1)),
        ("mnv2_1x1_56x24to144", geometry_i8(56, 24, 144, 1, 1, 0)),
        ("cifar_3x3_32x15to6", geometry_i8(32, 15, 6, 3, 1, 1)),
        ("cifar_3x3_32x8to15", geometry_i8(32, 8, 15, 3, 1, 1)),
    ];
    for isa in Isa::available() {
        for (name, geo) in &shapes {
            let x = data_i8(geo.input_len(), 10);
            let w = data_i8(geo.out_c * geo.filter_h * geo.filter_w * geo.in_c, 11);
            let bias: Vec<i32> = (0..geo.out_c as i32).map(|c| 100 * c - 700).collect();
            let packed = PackedConvI8::new(geo, quant_i8(geo.out_c), &w, Some(&bias), isa, 1)
                .expect("valid layer");
            let mut out = vec![0_i8; geo.output_len()];
            let mut scratch = vec![0_i16; packed.scratch_len()];
            let macs = geo.output_len() * geo.filter_h * geo.filter_w * geo.in_c;
            g.throughput(Throughput::Elements(2 * macs as u64));
            g.bench_function(BenchmarkId::new(isa.name(), name), |bch| {
                bch.iter(|| {
                    packed
                        .run(black_box(&x), &mut out, &mut scratch, 1)
                        .expect("sizes match")
                })
            });
        }
    }
    g.finish();
}

fn bench_depthwise_i8(c: &mut Criterion) {
    let mut g = c.benchmark_group("depthwise_i8");
    g.sample_size(20);
    let shapes = [
        ("mnv2_3x3s2_112x96", geometry_i8(112, 96, 96, 3, 2, 1)),
        ("mnv2_3x3s1_56x144", geometry_i8(56, 144, 144, 3, 1, 1)),
        ("mnv2_3x3s1_14x576", geometry_i8(14, 576, 576, 3, 1, 1)),
    ];
    for isa in Isa::available() {
        for (name, geo) in &shapes {
            let x = data_i8(geo.input_len(), 12);
            let w = data_i8(geo.filter_h * geo.filter_w * geo.out_c, 13);
            let packed = PackedDepthwiseI8::new(geo, quant_i8(geo.out_c), &w, None, isa)
                .expect("valid layer");
            let mut out = vec![0_i8; geo.output_len()];
            let mut scratch = vec![0_i16; packed.scratch_len()];
            let macs = geo.output_len() * geo.filter_h * geo.filter_w;
            g.throughput(Throughput::Elements(2 * macs as u64));
            g.bench_function(BenchmarkId::new(isa.name(), name), |bch| {
                bch.iter(|| {
                    packed
                        .run(black_box(&x), &mut out, &mut scratch, 1)
                        .expect("sizes match")
                })
            });
        }
    }
    g.finish();
}

/// Iterations of the peak loops per criterion iteration.
const PEAK_STEPS: usize = 1 << 16;

/// The in-register peak loops: twelve independent accumulators (enough to hide the
/// instructions' latency at two a cycle), nothing read from memory.
#[cfg(target_arch = "x86_64")]
mod peak {
    use std::arch::x86_64::*;

    /// Operations per step: 12 `vfmadd` of 8 lanes, 2 each.
    pub const FMA_OPS: usize = 12 * 8 * 2;
    /// Operations per step: 12 `vpmaddwd` of 16 multiply-adds, 2 each.
    pub const MADD_OPS: usize = 12 * 16 * 2;

    /// # Safety
    /// AVX2 and FMA must be available.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma_f32(steps: usize, x: f32) -> f32 {
        let mut acc = [_mm256_setzero_ps(); 12];
        // One product for all twelve: an FMA rounds once, so the compiler cannot share it.
        let (a, b) = (_mm256_set1_ps(x), _mm256_set1_ps(0.999));
        for _ in 0..steps {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(a, b, *v);
            }
        }
        let mut lanes = [0.0f32; 8];
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
        // SAFETY: `lanes` holds 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        lanes.iter().sum()
    }

    /// # Safety
    /// AVX2 must be available.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn madd_i16(steps: usize, x: i16) -> i32 {
        let mut acc = [_mm256_setzero_si256(); 12];
        let mut a = _mm256_set1_epi16(x);
        let one = _mm256_set1_epi16(1);
        // Twelve different weights (as a kernel's twelve accumulators have) and a changing
        // input, so every product is computed every step.
        let b: [__m256i; 12] = std::array::from_fn(|j| _mm256_set1_epi16(3 + j as i16));
        for _ in 0..steps {
            a = _mm256_add_epi16(a, one);
            for (v, b) in acc.iter_mut().zip(&b) {
                *v = _mm256_add_epi32(*v, _mm256_madd_epi16(a, *b));
            }
        }
        let sum = acc
            .iter()
            .fold(_mm256_setzero_si256(), |s, &v| _mm256_add_epi32(s, v));
        _mm256_extract_epi32::<0>(sum)
    }

    pub fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    pub fn fma(steps: usize, x: f32) -> f32 {
        // SAFETY: called only where `available()` holds.
        unsafe { fma_f32(steps, x) }
    }

    pub fn madd(steps: usize, x: i16) -> i32 {
        // SAFETY: as above.
        unsafe { madd_i16(steps, x) }
    }
}

#[cfg(target_arch = "aarch64")]
mod peak {
    use std::arch::aarch64::*;

    /// Operations per step: 12 `fmla` of 4 lanes, 2 each.
    pub const FMA_OPS: usize = 12 * 4 * 2;
    /// Operations per step: 12 `smlal` of 4 multiply-adds, 2 each.
    pub const MADD_OPS: usize = 12 * 4 * 2;

    pub fn available() -> bool {
        true
    }

    pub fn fma(steps: usize, x: f32) -> f32 {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe {
            let mut acc = [vdupq_n_f32(0.0); 12];
            // As on x86: one product for all twelve fused multiply-adds.
            let (a, b) = (vdupq_n_f32(x), vdupq_n_f32(0.999));
            for _ in 0..steps {
                for v in acc.iter_mut() {
                    *v = vfmaq_f32(*v, a, b);
                }
            }
            acc.iter().map(|&v| vaddvq_f32(v)).sum()
        }
    }

    pub fn madd(steps: usize, x: i16) -> i32 {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe {
            let mut acc = [vdupq_n_s32(0); 12];
            let mut a = vdup_n_s16(x);
            let one = vdup_n_s16(1);
            let b: [int16x4_t; 12] = std::array::from_fn(|j| vdup_n_s16(3 + j as i16));
            for _ in 0..steps {
                a = vadd_s16(a, one);
                for (v, b) in acc.iter_mut().zip(&b) {
                    *v = vmlal_s16(*v, a, *b);
                }
            }
            acc.iter().map(|&v| vaddvq_s32(v)).sum()
        }
    }
}

fn bench_peak(c: &mut Criterion) {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if peak::available() {
        let mut g = c.benchmark_group("peak");
        g.sample_size(20);
        g.throughput(Throughput::Elements((PEAK_STEPS * peak::FMA_OPS) as u64));
        g.bench_function("fma_f32", |bch| {
            bch.iter(|| peak::fma(black_box(PEAK_STEPS), black_box(0.5)))
        });
        g.throughput(Throughput::Elements((PEAK_STEPS * peak::MADD_OPS) as u64));
        g.bench_function("madd_i16", |bch| {
            bch.iter(|| peak::madd(black_box(PEAK_STEPS), black_box(1)))
        });
        g.finish();
    }
    let _ = c;
}

criterion_group!(
    benches,
    bench_peak,
    bench_gemm,
    bench_conv,
    bench_depthwise,
    bench_conv_i8,
    bench_depthwise_i8
);
criterion_main!(benches);
