//! libFuzzer target `bundle_load`: the body is `hpl_tests::fuzzing::bundle_load` (also run by the CI smoke test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hpl_tests::fuzzing::bundle_load(data));
