// Elementwise ops on one tensor. The quantize step keeps values on the int8/uint8 grid of
// a QUANTIZE output while the delegate computes on dequantized values.
struct Params {
    in_off: u32,
    out_off: u32,
    op: u32,
    total: u32,
    a: f32,
    b: f32,
    c: f32,
    d: f32,
}

const CLAMP: u32 = 0u;
const LOGISTIC: u32 = 1u;
const HARD_SWISH: u32 = 2u;
const TANH: u32 = 3u;
const QUANTIZE: u32 = 4u;

// std::round: halves away from zero (WGSL's round() goes to even).
fn round_away(x: f32) -> f32 {
    return sign(x) * floor(abs(x) + 0.5);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= p.total) {
        return;
    }
    let x = arena[p.in_off + id];
    var r = x;
    switch p.op {
        // a, b: the bounds.
        case CLAMP: { r = clamp(x, p.a, p.b); }
        case LOGISTIC: { r = 1.0 / (1.0 + exp(-x)); }
        case HARD_SWISH: { r = x * clamp(x + 3.0, 0.0, 6.0) / 6.0; }
        // tanh saturates to +-1 in f32 well before 10; clamping avoids exp overflow inside
        // implementations that compute it as a ratio of exponentials.
        case TANH: { r = tanh(clamp(x, -10.0, 10.0)); }
        // a: scale, b: zero point, c and d: the integer range.
        case QUANTIZE: {
            let q = clamp(round_away(x / p.a) + p.b, p.c, p.d);
            r = (q - p.b) * p.a;
        }
        default: { r = x; }
    }
    arena[p.out_off + id] = r;
}
