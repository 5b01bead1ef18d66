// Elementwise ops on two tensors with broadcasting (rank <= 4): each operand has its own
// strides, 0 along the axes it is broadcast on.
struct Params {
    a_off: u32,
    b_off: u32,
    out_off: u32,
    op: u32,
    total: u32,
    d1: u32,
    d2: u32,
    d3: u32,
    as0: u32,
    as1: u32,
    as2: u32,
    as3: u32,
    bs0: u32,
    bs1: u32,
    bs2: u32,
    bs3: u32,
    act_min: f32,
    act_max: f32,
}

const ADD: u32 = 0u;
const MUL: u32 = 1u;
const SUB: u32 = 2u;
const DIV: u32 = 3u;
const PRELU: u32 = 4u;
const MAXIMUM: u32 = 5u;
const MINIMUM: u32 = 6u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= p.total) {
        return;
    }
    let c3 = id % p.d3;
    var t = id / p.d3;
    let c2 = t % p.d2;
    t = t / p.d2;
    let c1 = t % p.d1;
    let c0 = t / p.d1;
    let a = arena[p.a_off + c0 * p.as0 + c1 * p.as1 + c2 * p.as2 + c3 * p.as3];
    let b = arena[p.b_off + c0 * p.bs0 + c1 * p.bs1 + c2 * p.bs2 + c3 * p.bs3];
    var r = 0.0;
    switch p.op {
        case ADD: { r = a + b; }
        case MUL: { r = a * b; }
        case SUB: { r = a - b; }
        case DIV: { r = a / b; }
        case PRELU: { r = select(a * b, a, a >= 0.0); }
        case MAXIMUM: { r = max(a, b); }
        case MINIMUM: { r = min(a, b); }
        default: { r = a; }
    }
    arena[p.out_off + id] = clamp(r, p.act_min, p.act_max);
}
