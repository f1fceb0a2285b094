//! A short smoke run of every fuzz target in each CI run (the long runs are `fuzz/run.sh`,
//! recorded in docs/reliability.md): the seed corpus, then generated and mutated inputs.

use hpl_tests::fuzzing::TARGETS;
use proptest::prelude::*;
use std::path::Path;

/// The seed corpus: every example and fixture file, the frozen bundle, the example devices.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in [
        "../examples/acme",
        "fixtures",
        "../examples/devices",
        "fixtures/bundles",
        "fixtures/lsp",
        "../examples/acme/tests",
    ] {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for p in paths {
            out.push(std::fs::read(&p).expect("read"));
        }
    }
    out.push(br#"{"action":"install","manager":"homebrew_formula","package":"homebrew/core/john-jumbo"}"#.to_vec());
    out.push(br#"{"tenant_id":"acme","trusted_keys":[{"public_key":"hpl-ed25519-public:ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"}]}"#.to_vec());
    out
}

#[test]
fn every_target_runs_its_seed_corpus() {
    assert!(Path::new("fixtures/bundles/acme-format1.hplb").exists());
    let seeds = seeds();
    for (name, target) in TARGETS {
        for seed in &seeds {
            target(seed);
        }
        eprintln!("{name}: {} seeds", seeds.len());
    }
}

/// The language server target really holds a session: the seed's requests are answered from
/// its edits, and its diagnostics are published.
#[test]
fn the_lsp_target_answers_the_seed_session() {
    let seed = std::fs::read("fixtures/lsp/session.jsonl").expect("seed");
    let frames = hpl_tests::fuzzing::lsp_session(&seed);
    let answer = |id: i64| {
        frames
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no answer to {id}: {frames:#?}"))
    };
    for id in (0..=11).chain([999999]) {
        assert!(answer(id).get("error").is_none(), "{}", answer(id));
    }
    let hover = answer(1)["result"]["contents"]["value"]
        .as_str()
        .unwrap_or_default();
    assert!(hover.contains("mise"), "{hover}");
    assert!(answer(11)["result"]["contents"]["value"]
        .as_str()
        .is_some_and(|t| t.contains("jq")));
    assert!(frames
        .iter()
        .any(|f| f["method"] == "textDocument/publishDiagnostics"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_target_survives_mutated_seeds(
        which in 0usize..32,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let seeds = seeds();
        let mut data = seeds[which % seeds.len()].clone();
        for (at, byte) in &edits {
            if !data.is_empty() {
                let i = at.index(data.len());
                data[i] = *byte;
            }
        }
        data.truncate(cut.index(data.len() + 1));
        for (_, target) in TARGETS {
            target(&data);
        }
    }
}

/// The `policy_test` target gets past parsing on its seeds: the example suite's files are
/// read as the command reads them, and their overrides apply.
#[test]
fn the_policy_test_target_reads_the_example_suite() {
    let text = std::fs::read_to_string("../examples/acme/tests/scopes.toml").expect("seed");
    let file = hpl_cli::test::spec::parse(&text, "scopes.toml").expect("parses");
    assert_eq!(file.tests.len(), 9);
    let base = serde_json::json!({"managers": [{"id": "homebrew_formula", "packages": []}]});
    let applied = file
        .tests
        .iter()
        .filter_map(|t| t.set.as_ref())
        .filter(|s| s.remove.is_empty());
    for set in applied {
        hpl_cli::test::spec::apply(base.clone(), set).expect("overrides apply");
    }
}
