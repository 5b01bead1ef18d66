//! Bytes to outputs: `[model length: u32 LE][model][input bytes]`, loaded, prepared, filled
//! with the input bytes (any bit pattern, NaN and infinity included) and invoked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (model, inputs) = ferrolite_fuzz::harness::split(data);
    let limits = ferrolite_fuzz::harness::invoke_limits();
    ferrolite_fuzz::harness::run(model.to_vec(), inputs, &limits, 1);
});
