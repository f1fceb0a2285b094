//! libFuzzer target `authorize`: the body is `hpl_tests::fuzzing::authorize` (also run by the CI smoke test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hpl_tests::fuzzing::authorize(data));
