// PAD and PADV2 (rank <= 4): an output element outside the copied input gets the pad value.
struct Params {
    in_off: u32,
    out_off: u32,
    total: u32,
    o1: u32,
    o2: u32,
    o3: u32,
    i0: u32,
    i1: u32,
    i2: u32,
    i3: u32,
    b0: u32,
    b1: u32,
    b2: u32,
    b3: u32,
    value: f32,
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= p.total) {
        return;
    }
    var t = id;
    let c3 = i32(t % p.o3) - i32(p.b3);
    t = t / p.o3;
    let c2 = i32(t % p.o2) - i32(p.b2);
    t = t / p.o2;
    let c1 = i32(t % p.o1) - i32(p.b1);
    let c0 = i32(t / p.o1) - i32(p.b0);
    let inside = c0 >= 0 && c0 < i32(p.i0) && c1 >= 0 && c1 < i32(p.i1) && c2 >= 0
        && c2 < i32(p.i2) && c3 >= 0 && c3 < i32(p.i3);
    var v = p.value;
    if (inside) {
        let at = ((u32(c0) * p.i1 + u32(c1)) * p.i2 + u32(c2)) * p.i3 + u32(c3);
        v = arena[p.in_off + at];
    }
    arena[p.out_off + id] = v;
}
