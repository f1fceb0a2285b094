//! The compiled path (lowering → bundle → loader/verifier → VM and evaluator) against the
//! reference interpreter over the checked program: random policy sets, scope trees,
//! conditions and inventories must give the same record.

use hpl_compiler::build::compile_verified;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_compiler::source::SourceFile;
use hpl_runtime::inventory::Inventory;
use hpl_tests::gen::{inventory, policy_set};
use hpl_tests::reference;
use proptest::prelude::*;

const NOW: i64 = 1_795_914_000; // 2026-11-29T01:00:00Z

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, max_global_rejects: 100_000, ..ProptestConfig::default() })]

    #[test]
    fn the_compiled_path_and_the_reference_interpreter_agree(policies in policy_set(), inv in inventory()) {
        let analysis = hpl_compiler::analyze_sources(vec![SourceFile::new("p.hpl", policies.clone())], CheckOptions::default());
        prop_assume!(!analysis.has_errors());
        let bundle = compile_verified(&analysis, &BuildOptions { bundle_version: 1, issued_at: NOW, expires_at: None, root: None })
            .map_err(TestCaseError::fail)?;
        let inventory = Inventory::from_json(&inv).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let record = hpl_runtime::eval::evaluate(&bundle, &inventory, NOW);
        let compiled = reference::normalize(&serde_json::to_value(&record).expect("record"));
        let expected = reference::evaluate(&analysis, &inventory, NOW, None);
        prop_assert_eq!(&compiled, &expected, "policies:\n{}\ninventory: {}", policies, inv);
    }
}
