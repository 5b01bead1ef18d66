//! The kernel against a naive f64 LSTM written from the textbook equations, per batch row
//! and time step.

// The naive model indexes like the equations it transcribes.
#![allow(clippy::needless_range_loop)]

use super::*;

/// A small deterministic generator (xorshift) for test data in [-a, a).
struct Gen(u64);
impl Gen {
    fn f(&mut self, a: f32) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
    }
    fn v(&mut self, n: usize, a: f32) -> Vec<f32> {
        (0..n).map(|_| self.f(a)).collect()
    }
}

#[derive(Clone, Copy)]
struct Variant {
    cifg: bool,
    peephole: bool,
    layer_norm: bool,
    projection: bool,
    proj_bias: bool,
    cell_clip: f32,
    proj_clip: f32,
    time_major: bool,
}

const PLAIN: Variant = Variant {
    cifg: false,
    peephole: false,
    layer_norm: false,
    projection: false,
    proj_bias: false,
    cell_clip: 0.0,
    proj_clip: 0.0,
    time_major: false,
};

/// Float weights of every gate, in the naive model's terms.
struct Naive {
    w_x: Vec<Vec<f32>>, // per gate i, f, g, o: [C, I]
    w_h: Vec<Vec<f32>>, // [C, O]
    peep: Vec<Vec<f32>>,
    ln: Vec<Vec<f32>>,
    bias: Vec<Vec<f32>>,
    proj: Vec<f32>,
    proj_bias: Vec<f32>,
}

fn build(v: Variant, s: LstmShape, seed: u64) -> (Lstm, Naive) {
    let mut g = Gen(seed);
    let (ni, nc, no) = (s.n_input, s.n_cell, s.n_output);
    let n = Naive {
        w_x: (0..4).map(|_| g.v(nc * ni, 0.8)).collect(),
        w_h: (0..4).map(|_| g.v(nc * no, 0.8)).collect(),
        peep: (0..4).map(|_| g.v(nc, 0.5)).collect(),
        ln: (0..4).map(|_| g.v(nc, 1.5)).collect(),
        bias: (0..4).map(|_| g.v(nc, 0.5)).collect(),
        proj: g.v(no * nc, 0.8),
        proj_bias: g.v(no, 0.3),
    };
    let gate = |k: usize| Gate {
        input: Matrix::F32(n.w_x[k].clone()),
        recurrent: Matrix::F32(n.w_h[k].clone()),
        peephole: (v.peephole && k != 2).then(|| n.peep[k].clone()),
        layer_norm: v.layer_norm.then(|| n.ln[k].clone()),
        bias: n.bias[k].clone(),
    };
    let lstm = Lstm {
        shape: s,
        input_gate: (!v.cifg).then(|| gate(0)),
        forget_gate: gate(1),
        cell_gate: gate(2),
        output_gate: gate(3),
        projection: v.projection.then(|| Projection {
            weights: Matrix::F32(n.proj.clone()),
            bias: v.proj_bias.then(|| n.proj_bias.clone()),
        }),
        activation: CellActivation::Tanh,
        cell_clip: v.cell_clip,
        proj_clip: v.proj_clip,
        asymmetric_quantize_inputs: false,
    };
    (lstm, n)
}

fn naive(v: Variant, s: LstmShape, n: &Naive, input: &[f32]) -> Vec<f64> {
    let (ni, nc, no) = (s.n_input, s.n_cell, s.n_output);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut out = vec![0.0; s.n_time * s.n_batch * no];
    for b in 0..s.n_batch {
        let mut h = vec![0.0f64; no];
        let mut c = vec![0.0f64; nc];
        for t in 0..s.n_time {
            let row = if v.time_major {
                t * s.n_batch + b
            } else {
                b * s.n_time + t
            };
            let x = &input[row * ni..(row + 1) * ni];
            let pre = |k: usize, cell: &[f64]| -> Vec<f64> {
                let mut z: Vec<f64> = (0..nc)
                    .map(|j| {
                        let mut a = 0.0;
                        for i in 0..ni {
                            a += n.w_x[k][j * ni + i] as f64 * x[i] as f64;
                        }
                        for i in 0..no {
                            a += n.w_h[k][j * no + i] as f64 * h[i];
                        }
                        if v.peephole && k != 2 {
                            a += n.peep[k][j] as f64 * cell[j];
                        }
                        a
                    })
                    .collect();
                if v.layer_norm {
                    let m = z.iter().sum::<f64>() / nc as f64;
                    let var = z.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / nc as f64;
                    for (j, a) in z.iter_mut().enumerate() {
                        *a = (*a - m) / (var + 1e-8).sqrt() * n.ln[k][j] as f64;
                    }
                }
                for (j, a) in z.iter_mut().enumerate() {
                    *a += n.bias[k][j] as f64;
                }
                z
            };
            let f: Vec<f64> = pre(1, &c).into_iter().map(sig).collect();
            let i: Vec<f64> = if v.cifg {
                f.iter().map(|f| 1.0 - f).collect()
            } else {
                pre(0, &c).into_iter().map(sig).collect()
            };
            let gg: Vec<f64> = pre(2, &c).into_iter().map(f64::tanh).collect();
            for j in 0..nc {
                c[j] = f[j] * c[j] + i[j] * gg[j];
                if v.cell_clip > 0.0 {
                    c[j] = c[j].clamp(-v.cell_clip as f64, v.cell_clip as f64);
                }
            }
            let o: Vec<f64> = pre(3, &c).into_iter().map(sig).collect();
            let hid: Vec<f64> = (0..nc).map(|j| o[j] * c[j].tanh()).collect();
            if v.projection {
                for k in 0..no {
                    let mut a = if v.proj_bias {
                        n.proj_bias[k] as f64
                    } else {
                        0.0
                    };
                    for j in 0..nc {
                        a += n.proj[k * nc + j] as f64 * hid[j];
                    }
                    if v.proj_clip > 0.0 {
                        a = a.clamp(-v.proj_clip as f64, v.proj_clip as f64);
                    }
                    h[k] = a;
                }
            } else {
                h.copy_from_slice(&hid);
            }
            out[row * no..(row + 1) * no].copy_from_slice(&h);
        }
    }
    out
}

fn run(lstm: &Lstm, input: &[f32]) -> Vec<f32> {
    let s = lstm.shape;
    let mut out = vec![0.0; s.n_time * s.n_batch * s.n_output];
    let mut h = vec![0.0; s.n_batch * s.n_output];
    let mut c = vec![0.0; s.n_batch * s.n_cell];
    let (nf, nq, nz) = lstm.scratch_len();
    let (mut f, mut q, mut z) = (vec![0.0; nf], vec![0; nq], vec![0; nz]);
    lstm.run(
        input,
        &mut out,
        &mut h,
        &mut c,
        LstmScratch {
            f32s: &mut f,
            i8s: &mut q,
            i32s: &mut z,
        },
    )
    .unwrap();
    out
}

fn check(v: Variant) {
    let no = if v.projection { 3 } else { 5 };
    let s = LstmShape {
        n_batch: 2,
        n_time: 4,
        n_input: 3,
        n_cell: 5,
        n_output: no,
        time_major: v.time_major,
    };
    let (lstm, n) = build(v, s, 0x1234_5678);
    lstm.validate().unwrap();
    let input = Gen(99).v(s.n_time * s.n_batch * s.n_input, 1.0);
    let got = run(&lstm, &input);
    let want = naive(v, s, &n, &input);
    for (a, b) in got.iter().zip(&want) {
        assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn float_variants_match_naive() {
    check(PLAIN);
    check(Variant {
        time_major: true,
        ..PLAIN
    });
    check(Variant {
        cifg: true,
        ..PLAIN
    });
    check(Variant {
        peephole: true,
        ..PLAIN
    });
    check(Variant {
        cifg: true,
        peephole: true,
        ..PLAIN
    });
    check(Variant {
        layer_norm: true,
        ..PLAIN
    });
    check(Variant {
        layer_norm: true,
        cifg: true,
        peephole: true,
        ..PLAIN
    });
    check(Variant {
        projection: true,
        ..PLAIN
    });
    check(Variant {
        projection: true,
        proj_bias: true,
        proj_clip: 0.3,
        cell_clip: 0.5,
        ..PLAIN
    });
}

/// Int8 weights: the kernel quantizes operands on the fly, so it lands within a few
/// quantization steps of the float LSTM on the dequantized weights; and it is exact
/// against a by-hand quantized product for one gate.
#[test]
fn hybrid_close_to_float() {
    for asym in [false, true] {
        let s = LstmShape {
            n_batch: 2,
            n_time: 3,
            n_input: 4,
            n_cell: 3,
            n_output: 3,
            time_major: false,
        };
        let (mut lstm, _) = build(PLAIN, s, 7);
        let quant = |m: &mut Matrix, rows: usize| {
            let Matrix::F32(w) = m else { unreachable!() };
            let max = w.iter().fold(0.0f32, |a, x| a.max(x.abs()));
            let scale = max / 127.0;
            let q: Vec<i8> = w.iter().map(|x| (x / scale).round() as i8).collect();
            *w = q.iter().map(|&v| v as f32 * scale).collect();
            Matrix::int8(q, rows, scale)
        };
        let mut float = lstm.clone();
        for (g, fg) in [
            (
                lstm.input_gate.as_mut().unwrap(),
                float.input_gate.as_mut().unwrap(),
            ),
            (&mut lstm.forget_gate, &mut float.forget_gate),
            (&mut lstm.cell_gate, &mut float.cell_gate),
            (&mut lstm.output_gate, &mut float.output_gate),
        ] {
            g.input = quant(&mut fg.input, 3);
            g.recurrent = quant(&mut fg.recurrent, 3);
        }
        lstm.asymmetric_quantize_inputs = asym;
        lstm.validate().unwrap();
        assert!(lstm.is_hybrid());
        let input = Gen(5).v(s.n_time * s.n_batch * s.n_input, 1.0);
        let got = run(&lstm, &input);
        let want = run(&float, &input);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 0.05, "{a} vs {b}");
            assert!(
                a != b || *a == 0.0 || asym,
                "hybrid should differ from float"
            );
        }
    }
}

#[test]
fn quantized_matvec_by_hand() {
    // w = [[1, -2], [3, 4]] (scale 0.5), x = [0.5, -1.0]: symmetric scale 1/127,
    // q = [64, -127] (0.5·127 = 63.5 rounds away from zero).
    let m = Matrix::int8(vec![1, -2, 3, 4], 2, 0.5);
    let rows = Rows {
        f: &[0.5, -1.0],
        q: &[64, -127],
        scale: &[1.0 / 127.0],
        zero_point: &[0],
    };
    let mut acc = [1.0f32, 0.0];
    m.accumulate(&rows, 2, 2, &mut acc);
    let s = 0.5f32 * (1.0 / 127.0);
    assert_eq!(acc, [1.0 + 318.0 * s, -316.0 * s]);
    let mut q = [0i8; 2];
    assert_eq!(quantize_symmetric(&[0.5, -1.0], &mut q), 1.0 / 127.0);
    assert_eq!(q, [64, -127]);
}

/// Activation NONE with an all-zero input step: REF leaves the cell gate at its bias and
/// multiplies the output gate with the cell gate instead of the cell state (see
/// `zero_input_identity_quirk`). Expected values follow those rules by hand.
#[test]
fn identity_activation_zero_input_follows_reference() {
    let s = LstmShape {
        n_batch: 1,
        n_time: 2,
        n_input: 2,
        n_cell: 2,
        n_output: 2,
        time_major: true,
    };
    let (mut lstm, n) = build(PLAIN, s, 3);
    lstm.activation = CellActivation::None;
    let out = run(&lstm, &[0.0; 4]);
    let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
    let (mut h, mut c) = ([0.0f32; 2], [0.0f32; 2]);
    let mut want = Vec::new();
    for _ in 0..2 {
        let pre =
            |k: usize, j: usize| n.bias[k][j] + n.w_h[k][j * 2] * h[0] + n.w_h[k][j * 2 + 1] * h[1];
        let mut next = [0.0f32; 2];
        for j in 0..2 {
            let g = n.bias[2][j];
            c[j] = sig(pre(1, j)) * c[j] + g * sig(pre(0, j));
            next[j] = sig(pre(3, j)) * g;
        }
        h = next;
        want.extend_from_slice(&h);
    }
    for (a, b) in out.iter().zip(&want) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}
