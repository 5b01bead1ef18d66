// C[m, n] = act(sum_k A[m, k] * B[k, n] + bias[n]): FULLY_CONNECTED and 1x1 CONV_2D.
// A is an activation (row-major M x K); B is K x Np in the constant buffer, Np = N rounded up
// to 4 with zero columns, so that each invocation reads one vec4 of B per k and computes a
// 4 x 4 block of C (4 rows reuse each B load, 4 columns reuse each A load).
struct Params {
    a_off: u32,
    b_off: u32,
    bias_off: u32,
    c_off: u32,
    m: u32,
    k: u32,
    n: u32,
    np: u32,
    has_bias: u32,
    total: u32,
    act_min: f32,
    act_max: f32,
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= p.total) {
        return;
    }
    let nc = p.np / 4u;
    let c0 = (id % nc) * 4u;
    let r0 = (id / nc) * 4u;
    // Rows past M read the last row again (in range) and are not stored.
    let last = p.m - 1u;
    let a0 = p.a_off + min(r0, last) * p.k;
    let a1 = p.a_off + min(r0 + 1u, last) * p.k;
    let a2 = p.a_off + min(r0 + 2u, last) * p.k;
    let a3 = p.a_off + min(r0 + 3u, last) * p.k;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var wi = p.b_off + c0;
    for (var k = 0u; k < p.k; k = k + 1u) {
        let w = weight4(wi);
        acc0 = acc0 + arena[a0 + k] * w;
        acc1 = acc1 + arena[a1 + k] * w;
        acc2 = acc2 + arena[a2 + k] * w;
        acc3 = acc3 + arena[a3 + k] * w;
        wi = wi + p.np;
    }
    var bias = vec4<f32>(0.0);
    if (p.has_bias != 0u) {
        bias = weight4(p.bias_off + c0);
    }
    store(r0, c0, acc0 + bias);
    store(r0 + 1u, c0, acc1 + bias);
    store(r0 + 2u, c0, acc2 + bias);
    store(r0 + 3u, c0, acc3 + bias);
}

fn store(r: u32, c0: u32, acc: vec4<f32>) {
    if (r >= p.m) {
        return;
    }
    let v = clamp(acc, vec4<f32>(p.act_min), vec4<f32>(p.act_max));
    let o = p.c_off + r * p.n + c0;
    if (c0 + 4u <= p.n) {
        arena[o] = v.x;
        arena[o + 1u] = v.y;
        arena[o + 2u] = v.z;
        arena[o + 3u] = v.w;
        return;
    }
    for (var k = 0u; k < 4u; k = k + 1u) {
        if (c0 + k < p.n) {
            arena[o + k] = v[k];
        }
    }
}
