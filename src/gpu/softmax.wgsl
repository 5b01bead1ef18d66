// SOFTMAX over the last axis: exp((x - max) * beta) / sum. One invocation per row.
struct Params {
    in_off: u32,
    out_off: u32,
    rows: u32,
    depth: u32,
    beta: f32,
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = linear_id(gid, nwg);
    if (row >= p.rows) {
        return;
    }
    let i0 = p.in_off + row * p.depth;
    let o0 = p.out_off + row * p.depth;
    var m = -3.4028235e38;
    for (var i = 0u; i < p.depth; i = i + 1u) {
        m = max(m, arena[i0 + i]);
    }
    var sum = 0.0;
    for (var i = 0u; i < p.depth; i = i + 1u) {
        let e = exp((arena[i0 + i] - m) * p.beta);
        arena[o0 + i] = e;
        sum = sum + e;
    }
    for (var i = 0u; i < p.depth; i = i + 1u) {
        arena[o0 + i] = arena[o0 + i] / sum;
    }
}
