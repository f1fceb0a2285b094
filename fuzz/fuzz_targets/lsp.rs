//! libFuzzer target `lsp`: the body is `hpl_tests::fuzzing::lsp` (also run by the CI smoke test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hpl_tests::fuzzing::lsp(data));
