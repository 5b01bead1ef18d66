// One input of CONCATENATION copied into its slice of the output: the tensors are seen as
// [outer, axis * inner], and this input starts `offset` elements into each output row.
struct Params {
    in_off: u32,
    out_off: u32,
    in_row: u32,
    out_row: u32,
    offset: u32,
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
    let o = id / p.in_row;
    let r = id % p.in_row;
    let v = arena[p.in_off + id];
    arena[p.out_off + o * p.out_row + p.offset + r] = clamp(v, p.act_min, p.act_max);
}
