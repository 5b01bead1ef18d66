//! Structure-aware: the input picks a fixture and edits its fields (indices, shapes, dtypes,
//! options, buffers, opcodes, quantization, subgraphs); the edited model is re-encoded, then
//! loaded, prepared and invoked with the remaining bytes as input data.
#![no_main]

use arbitrary::Unstructured;
use ferrolite_fuzz::{desc::ModelDesc, harness, mutate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(fixture) = u.choose(mutate::FIXTURES) else {
        return;
    };
    let Some(mut desc) = ModelDesc::decode(fixture) else {
        return;
    };
    if mutate::mutate(&mut u, &mut desc, 6).is_err() {
        return;
    }
    let bytes = desc.encode();
    let rest = u.take_rest();
    harness::run(bytes, rest, &harness::invoke_limits(), 1);
});
