//! The compiler per workload size (issue 13): `hpl check` (every stage: parse, resolve,
//! check, conflict analysis) and `hpl build` (the same, then lower, encode, sign), in-process
//! on the side-by-side workloads; the large set at 2×, 4× and 8× for the growth exponent; and
//! the older 10,000-rule set and parse alone, to compare with earlier sessions.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hpl_bench::peers;
use hpl_bench::workload::{generate, LARGE, SIZES};
use hpl_compiler::check::CheckOptions;
use hpl_compiler::source::{FileId, SourceFile};
use std::hint::black_box;
use std::time::Duration;

fn sources(w: &hpl_bench::workload::Workload) -> Vec<SourceFile> {
    w.files
        .iter()
        .map(|(n, t)| SourceFile::new(n.clone(), t.clone()))
        .collect()
}

fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("compiler");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    for size in SIZES {
        let w = generate(size, 13);
        let lines: usize = w.files.iter().map(|(_, t)| t.lines().count()).sum();
        let a = hpl_compiler::analyze_sources(sources(&w), CheckOptions::default());
        eprintln!(
            "{}: {} rules, {lines} lines in {} files, {} diagnostics",
            size.name,
            w.rules,
            w.files.len(),
            a.diagnostics.len()
        );
        drop(a);
        group.bench_function(BenchmarkId::new("check", size.name), |b| {
            b.iter(|| {
                let a = hpl_compiler::analyze_sources(sources(&w), CheckOptions::default());
                black_box(a.diagnostics.len())
            })
        });
        group.bench_function(BenchmarkId::new("build", size.name), |b| {
            b.iter(|| {
                let a = hpl_compiler::analyze_sources(sources(&w), CheckOptions::default());
                black_box(
                    hpl_compiler::build::build_bundle(&a, &peers::build_options(), &[&key])
                        .map(|b| b.len()),
                )
            })
        });
    }
    // Growth: the large set scaled. `check/large` above is the 1× point.
    for factor in [2usize, 4, 8] {
        let w = generate(LARGE.times(factor), 13);
        let lines: usize = w.files.iter().map(|(_, t)| t.lines().count()).sum();
        let a = hpl_compiler::analyze_sources(sources(&w), CheckOptions::default());
        eprintln!(
            "large×{factor}: {} rules, {lines} lines, {} diagnostics",
            w.rules,
            a.diagnostics.len()
        );
        drop(a);
        group.bench_function(BenchmarkId::new("check_large_times", factor), |b| {
            b.iter(|| {
                let a = hpl_compiler::analyze_sources(sources(&w), CheckOptions::default());
                black_box(a.diagnostics.len())
            })
        });
    }
    group.finish();

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
