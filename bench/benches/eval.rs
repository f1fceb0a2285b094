//! The runtime on a realistic device: 1,000 installed packages against a bundle of 2,000 rules
//! over 50 scopes. Measures `evaluate` (the hot path on every check-in), `load` (signature
//! and verifier, once per bundle) and parsing the inventory JSON.

use criterion::{criterion_group, criterion_main, Criterion};
use hpl_compiler::build::{build_bundle, compile_verified};
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_compiler::source::SourceFile;
use hpl_runtime::inventory::Inventory;
use hpl_runtime::load::{load, TrustedKeys};
use std::hint::black_box;

const NOW: i64 = 1_795_914_000;

fn eval(c: &mut Criterion) {
    let policies = hpl_bench::generated_policy_set(50, 2_000);
    let analysis = hpl_compiler::analyze_sources(
        vec![SourceFile::new("bench.hpl", policies)],
        CheckOptions::default(),
    );
    assert!(!analysis.has_errors(), "the workload must compile");
    let options = BuildOptions {
        bundle_version: 1,
        issued_at: NOW,
        expires_at: None,
        root: None,
    };
    let bundle = compile_verified(&analysis, &options).expect("bundle");
    let inventory_json = hpl_bench::generated_inventory(1_000);
    let inventory = Inventory::from_json_str(&inventory_json).expect("inventory");
    let record = hpl_runtime::eval::evaluate(&bundle, &inventory, NOW);
    eprintln!(
        "workload: {} rules in the bundle, {} bound to the device, {} violations, state {:?}",
        bundle.content().rules.len(),
        record.rules.len(),
        record.violations.len(),
        record.state
    );

    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let bytes = build_bundle(&analysis, &options, &[&key]).expect("bytes");
    let mut keys = TrustedKeys::new();
    keys.add(key.verifying_key().as_bytes()).expect("key");

    let mut group = c.benchmark_group("runtime");
    group.bench_function("evaluate_1000_packages_2000_rules_50_scopes", |b| {
        b.iter(|| {
            black_box(
                hpl_runtime::eval::evaluate(&bundle, &inventory, NOW)
                    .violations
                    .len(),
            )
        })
    });
    group.bench_function("load_and_verify_2000_rule_bundle", |b| {
        b.iter(|| black_box(load(&bytes, &keys).map(|v| v.content().rules.len())))
    });
    group.bench_function("parse_inventory_1000_packages", |b| {
        b.iter(|| black_box(Inventory::from_json_str(&inventory_json).map(|i| i.managers.len())))
    });
    group.finish();
}

criterion_group!(benches, eval);
criterion_main!(benches);
