//! Criterion benchmarks of the float kernels, in every tier this CPU runs.
//!
//! Throughput is counted in floating-point operations (2 per multiply-add), so criterion's
//! "elem/s" reads as FLOP/s. Shapes are layers of the benchmark models: ResNet18-224,
//! MobileNetV2-224 and the CIFAR ResNet18 with pruned (odd) channel counts.
//!
//! ```sh
//! cargo bench --bench kernels                 # everything
//! cargo bench --bench kernels -- conv/avx2    # a filter
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrolite_kernels::activation::Clamp;
use ferrolite_kernels::conv::{self, ConvParams, PackedConv};
use ferrolite_kernels::depthwise::{self, DepthwiseParams};
use ferrolite_kernels::gemm::{self, PackedB};
use ferrolite_kernels::isa::Isa;

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

criterion_group!(benches, bench_gemm, bench_conv, bench_depthwise);
criterion_main!(benches);
