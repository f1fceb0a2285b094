//! `hpl check` on a generated policy set of 10,000 rules over 200 scopes: every stage
//! (parse, resolve, check, conflict analysis) in one measurement, and parse alone.

use criterion::{criterion_group, criterion_main, Criterion};
use hpl_compiler::check::CheckOptions;
use hpl_compiler::source::{FileId, SourceFile};
use std::hint::black_box;

fn check(c: &mut Criterion) {
    let text = hpl_bench::generated_policy_set(200, 10_000);
    let mut group = c.benchmark_group("check");
    group.sample_size(20);
    group.bench_function("10k_rules_200_scopes", |b| {
        b.iter(|| {
            let analysis = hpl_compiler::analyze_sources(
                vec![SourceFile::new("bench.hpl", text.clone())],
                CheckOptions::default(),
            );
            black_box(analysis.diagnostics.len())
        })
    });
    group.bench_function("parse_only_10k_rules", |b| {
        b.iter(|| {
            black_box(
                hpl_compiler::syntax::parse_file(FileId(0), &text)
                    .0
                    .items
                    .len(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
