// Bindings every ferrolite compute shader shares: one activation arena (all tensors of a
// partition, planned like the CPU arena), one buffer of constants (weights and biases,
// laid out at compile time), and the dispatch's parameters. Offsets count f32 elements.
@group(0) @binding(0) var<storage, read_write> arena: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// Dispatches spread over x and y to stay under the per-dimension workgroup limit; this is
// the invocation's position in the flat range.
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}

fn weight4(i: u32) -> vec4<f32> {
    return vec4<f32>(weights[i], weights[i + 1u], weights[i + 2u], weights[i + 3u]);
}
