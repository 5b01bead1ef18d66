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
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let iy = i32(y * p.sh + ky * p.dh) - i32(p.pad_t);
        if (iy < 0 || iy >= i32(p.ih)) {
            continue;
        }
        let row = (b * p.ih + u32(iy)) * p.iw;
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            // Base input index of each of the 4 pixels, and whether it is inside the image.
            var base = array<u32, 4>(0u, 0u, 0u, 0u);
            var valid = array<bool, 4>(false, false, false, false);
            for (var j = 0u; j < 4u; j = j + 1u) {
                let ix = i32((x0 + j) * p.sw + kx * p.dw) - i32(p.pad_l);
                if (x0 + j < p.ow && ix >= 0 && ix < i32(p.iw)) {
                    valid[j] = true;
                    base[j] = p.in_off + (row + u32(ix)) * p.ic;
                }
            }
            var wi = p.w_off + (ky * p.kw + kx) * p.ic * p.ocp + c0;
            for (var ci = 0u; ci < p.ic; ci = ci + 1u) {
                let w = weight4(wi);
                for (var j = 0u; j < 4u; j = j + 1u) {
                    if (valid[j]) {
                        acc[j] = acc[j] + arena[base[j] + ci] * w;
                    }
                }
                wi = wi + p.ocp;
            }
        }
    }
    var bias = vec4<f32>(0.0);
    if (p.has_bias != 0u) {
        bias = weight4(p.bias_off + c0);
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        let x = x0 + j;
        if (x >= p.ow) {
            break;
        }
        let v = clamp(acc[j] + bias, vec4<f32>(p.act_min), vec4<f32>(p.act_max));
        let o = p.out_off + ((b * p.oh + y) * p.ow + x) * p.oc;
        for (var k = 0u; k < 4u; k = k + 1u) {
            if (c0 + k < p.oc) {
                arena[o + c0 + k] = v[k];
            }
        }
    }
}
