// MEAN over any set of axes of a tensor of rank <= 4 (shape padded in front with 1s).
// One invocation per output element sums its reduced elements in order, then divides.
struct Params {
    in_off: u32,
    out_off: u32,
    d0: u32,
    d1: u32,
    d2: u32,
    d3: u32,
    // Bit i set: axis i is reduced.
    mask: u32,
    count: u32,
    total: u32,
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= p.total) {
        return;
    }
    var dims = array<u32, 4>(p.d0, p.d1, p.d2, p.d3);
    var coord = array<u32, 4>(0u, 0u, 0u, 0u);
    var o = id;
    for (var i = 3; i >= 0; i = i - 1) {
        if ((p.mask & (1u << u32(i))) == 0u) {
            coord[i] = o % dims[i];
            o = o / dims[i];
        }
    }
    var sum = 0.0;
    for (var r = 0u; r < p.count; r = r + 1u) {
        var q = r;
        for (var i = 3; i >= 0; i = i - 1) {
            if ((p.mask & (1u << u32(i))) != 0u) {
                coord[i] = q % dims[i];
                q = q / dims[i];
            }
        }
        let at = ((coord[0] * dims[1] + coord[1]) * dims[2] + coord[2]) * dims[3] + coord[3];
        sum = sum + arena[p.in_off + at];
    }
    arena[p.out_off + id] = sum / f32(p.count);
}
