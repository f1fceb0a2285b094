//! libFuzzer target `bundle_eval`: the body is `hpl_tests::fuzzing::bundle_eval` (also run by the CI smoke test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hpl_tests::fuzzing::bundle_eval(data));
