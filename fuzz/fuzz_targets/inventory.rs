//! libFuzzer target `inventory`: the body is `hpl_tests::fuzzing::inventory` (also run by the CI smoke test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hpl_tests::fuzzing::inventory(data));
