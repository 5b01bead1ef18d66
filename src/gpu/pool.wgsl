// AVERAGE_POOL_2D and MAX_POOL_2D. The window is clipped to the image, and the average
// divides by the number of pixels inside it (TFLite's rule), never by the full window.
struct Params {
    in_off: u32,
    out_off: u32,
    ih: u32,
    iw: u32,
    c: u32,
    oh: u32,
    ow: u32,
    fh: u32,
    fw: u32,
    sh: u32,
    sw: u32,
    pad_t: u32,
    pad_l: u32,
    is_max: u32,
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
    let c = id % p.c;
    var t = id / p.c;
    let x = t % p.ow;
    t = t / p.ow;
    let y = t % p.oh;
    let b = t / p.oh;
    let oy = i32(y * p.sh) - i32(p.pad_t);
    let ox = i32(x * p.sw) - i32(p.pad_l);
    let y0 = u32(max(oy, 0));
    let y1 = u32(min(oy + i32(p.fh), i32(p.ih)));
    let x0 = u32(max(ox, 0));
    let x1 = u32(min(ox + i32(p.fw), i32(p.iw)));
    var sum = 0.0;
    var best = -3.4028235e38;
    for (var iy = y0; iy < y1; iy = iy + 1u) {
        for (var ix = x0; ix < x1; ix = ix + 1u) {
            let v = arena[p.in_off + ((b * p.ih + iy) * p.iw + ix) * p.c + c];
            sum = sum + v;
            best = max(best, v);
        }
    }
    var r = best;
    if (p.is_max == 0u) {
        r = sum / f32((y1 - y0) * (x1 - x0));
    }
    arena[p.out_off + id] = clamp(r, p.act_min, p.act_max);
}
