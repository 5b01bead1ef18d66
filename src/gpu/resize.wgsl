// RESIZE_BILINEAR (float kernel of TFLite): source coordinate (y + 0.5) * scale - 0.5 with
// half-pixel centers, else y * scale; its floor (at least 0) and ceiling (at most size - 1)
// are the two taps, weighted by the distance from the floor.
struct Params {
    in_off: u32,
    out_off: u32,
    ih: u32,
    iw: u32,
    c: u32,
    oh: u32,
    ow: u32,
    half_pixel: u32,
    total: u32,
    scale_y: f32,
    scale_x: f32,
}

fn source(o: u32, size: u32, scale: f32) -> vec3<f32> {
    var s = f32(o) * scale;
    if (p.half_pixel != 0u) {
        s = (f32(o) + 0.5) * scale - 0.5;
    }
    let lo = max(floor(s), 0.0);
    let hi = min(ceil(s), f32(size) - 1.0);
    return vec3<f32>(lo, max(hi, 0.0), s - lo);
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
    let sy = source(y, p.ih, p.scale_y);
    let sx = source(x, p.iw, p.scale_x);
    let y0 = u32(sy.x);
    let y1 = u32(sy.y);
    let x0 = u32(sx.x);
    let x1 = u32(sx.y);
    let dy = sy.z;
    let dx = sx.z;
    let base = p.in_off + b * p.ih * p.iw * p.c + c;
    let a00 = arena[base + (y0 * p.iw + x0) * p.c];
    let a10 = arena[base + (y1 * p.iw + x0) * p.c];
    let a01 = arena[base + (y0 * p.iw + x1) * p.c];
    let a11 = arena[base + (y1 * p.iw + x1) * p.c];
    arena[p.out_off + id] = a00 * (1.0 - dy) * (1.0 - dx) + a10 * dy * (1.0 - dx)
        + a01 * (1.0 - dy) * dx + a11 * dy * dx;
}
