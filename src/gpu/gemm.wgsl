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
    let lo = vec4<f32>(p.act_min);
    let hi = vec4<f32>(p.act_max);
    var rows = array<vec4<f32>, 4>(
        clamp(acc0 + bias, lo, hi),
        clamp(acc1 + bias, lo, hi),
        clamp(acc2 + bias, lo, hi),
        clamp(acc3 + bias, lo, hi),
    );
    for (var r = 0u; r < 4u; r = r + 1u) {
        if (r0 + r >= p.m) {
            break;
        }
        let base = p.c_off + (r0 + r) * p.n;
        let v = rows[r];
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (c0 + j < p.n) {
                arena[base + c0 + j] = v[j];
            }
        }
    }
}
