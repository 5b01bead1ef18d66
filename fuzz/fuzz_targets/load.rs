//! Bytes to `Model`: the flatbuffer verifier and every load-time check.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ferrolite_fuzz::harness::load(data.to_vec(), &ferrolite_fuzz::harness::limits());
});
