// DEPTHWISE_CONV_2D: output channel c reads input channel c / multiplier; weights stay in
// the file's [1][KH][KW][OC] layout. One invocation per output element.
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
    mult: u32,
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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= p.total) {
        return;
    }
    let c = id % p.oc;
    var t = id / p.oc;
    let x = t % p.ow;
    t = t / p.ow;
    let y = t % p.oh;
    let b = t / p.oh;
    let ci = c / p.mult;
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let iy = i32(y * p.sh + ky * p.dh) - i32(p.pad_t);
        if (iy < 0 || iy >= i32(p.ih)) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let ix = i32(x * p.sw + kx * p.dw) - i32(p.pad_l);
            if (ix < 0 || ix >= i32(p.iw)) {
                continue;
            }
            let v = arena[p.in_off + ((b * p.ih + u32(iy)) * p.iw + u32(ix)) * p.ic + ci];
            acc = acc + v * weights[p.w_off + (ky * p.kw + kx) * p.oc + c];
        }
    }
    if (p.has_bias != 0u) {
        acc = acc + weights[p.bias_off + c];
    }
    arena[p.out_off + id] = clamp(acc, p.act_min, p.act_max);
}
