// CONV_2D (NHWC input, weights laid out [KH][KW][IC][OCp], OCp = OC rounded up to 4).
// Each invocation computes a tile of 4 output columns x 4 output channels: every weight
// vec4 is used for 4 pixels and every input value for 4 channels.
struct Params {
    in_off: u32,
    w_off: u32,
    bias_off: u32,
    out_off: u32,
    ih: u32,
    iw: u32,
    ic: u32,
    oh: u32,
    ow: u32,
    oc: u32,
    ocp: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    dh: u32,
    dw: u32,
    pad_t: u32,
    pad_l: u32,
    has_bias: u32,
    total: u32,
    act_min: f32,
    act_max: f32,
}

// Input index of a pixel at kernel column kx, clamped into the image, and whether the pixel
// is really inside: a select on it keeps the inner loop free of branches.
struct Tap {
    at: u32,
    ok: bool,
}

fn tap(row: u32, x: u32, kx: u32) -> Tap {
    let ix = i32(x * p.sw + kx * p.dw) - i32(p.pad_l);
    let inside = x < p.ow && ix >= 0 && ix < i32(p.iw);
    let at = p.in_off + (row + u32(clamp(ix, 0, i32(p.iw) - 1))) * p.ic;
    return Tap(at, inside);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= p.total) {
        return;
    }
    let nc = p.ocp / 4u;
    let tiles = (p.ow + 3u) / 4u;
    let c0 = (id % nc) * 4u;
    var t = id / nc;
    let x0 = (t % tiles) * 4u;
    t = t / tiles;
    let y = t % p.oh;
    let b = t / p.oh;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let iy = i32(y * p.sh + ky * p.dh) - i32(p.pad_t);
        if (iy < 0 || iy >= i32(p.ih)) {
            continue;
        }
        let row = (b * p.ih + u32(iy)) * p.iw;
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let t0 = tap(row, x0, kx);
            let t1 = tap(row, x0 + 1u, kx);
            let t2 = tap(row, x0 + 2u, kx);
            let t3 = tap(row, x0 + 3u, kx);
            var wi = p.w_off + (ky * p.kw + kx) * p.ic * p.ocp + c0;
            for (var ci = 0u; ci < p.ic; ci = ci + 1u) {
                let w = weight4(wi);
                acc0 = acc0 + select(0.0, arena[t0.at + ci], t0.ok) * w;
                acc1 = acc1 + select(0.0, arena[t1.at + ci], t1.ok) * w;
                acc2 = acc2 + select(0.0, arena[t2.at + ci], t2.ok) * w;
                acc3 = acc3 + select(0.0, arena[t3.at + ci], t3.ok) * w;
                wi = wi + p.ocp;
            }
        }
    }
    var bias = vec4<f32>(0.0);
    if (p.has_bias != 0u) {
        bias = weight4(p.bias_off + c0);
    }
    store(b, y, x0, c0, acc0 + bias);
    store(b, y, x0 + 1u, c0, acc1 + bias);
    store(b, y, x0 + 2u, c0, acc2 + bias);
    store(b, y, x0 + 3u, c0, acc3 + bias);
}

fn store(b: u32, y: u32, x: u32, c0: u32, acc: vec4<f32>) {
    if (x >= p.ow) {
        return;
    }
    let v = clamp(acc, vec4<f32>(p.act_min), vec4<f32>(p.act_max));
    let o = p.out_off + ((b * p.oh + y) * p.ow + x) * p.oc + c0;
    if (c0 + 4u <= p.oc) {
        arena[o] = v.x;
        arena[o + 1u] = v.y;
        arena[o + 2u] = v.z;
        arena[o + 3u] = v.w;
        return;
    }
    for (var k = 0u; k < 4u; k = k + 1u) {
        if (c0 + k < p.oc) {
            arena[o + k] = v[k];
        }
    }
}
