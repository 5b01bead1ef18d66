//! Bytes to `Interpreter`: load, then per-op preparation, constant folding and arena planning.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ferrolite_fuzz::harness::limits();
    let _ = ferrolite_fuzz::harness::prepare(data.to_vec(), &limits, 1);
});
