//! libFuzzer target `policy_test`: the body is `hpl_tests::fuzzing::policy_test` (also run by the CI smoke test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hpl_tests::fuzzing::policy_test(data));
