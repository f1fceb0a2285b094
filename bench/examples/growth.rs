//! How `hpl check`'s work grows with the large workload scaled: rules, diagnostics, and the
//! time of each stage (one run each; criterion's `compiler/check_large_times` has the
//! figures). `cargo run --release -p hpl-bench --example growth -- 1 2 4 8`.

use hpl_bench::workload::{generate, LARGE};
use hpl_compiler::check::{check, CheckOptions};
use hpl_compiler::resolve::{resolve, ParsedFile};
use hpl_compiler::source::Span;
use std::time::Instant;

fn main() {
    let factors: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    for factor in if factors.is_empty() {
        vec![1, 2, 4]
    } else {
        factors
    } {
        let w = generate(LARGE.times(factor), 13);
        let t = Instant::now();
        let trees: Vec<_> = w
            .files
            .iter()
            .enumerate()
            .map(|(i, (_, text))| {
                hpl_compiler::syntax::parse_file(hpl_compiler::source::FileId(i as u32 + 2), text).0
            })
            .collect();
        let stdlib: Vec<_> = hpl_compiler::driver::STDLIB
            .iter()
            .enumerate()
            .map(|(i, (_, s))| {
                hpl_compiler::syntax::parse_file(hpl_compiler::source::FileId(i as u32), s).0
            })
            .collect();
        let parse = t.elapsed();
        let files: Vec<ParsedFile<'_>> = stdlib
            .iter()
            .enumerate()
            .map(|(i, f)| ParsedFile {
                file: f,
                is_stdlib: true,
                start: Span::new(hpl_compiler::source::FileId(i as u32), 0, 0),
            })
            .chain(trees.iter().enumerate().map(|(i, f)| ParsedFile {
                file: f,
                is_stdlib: false,
                start: Span::new(hpl_compiler::source::FileId(i as u32 + 2), 0, 0),
            }))
            .collect();
        let t = Instant::now();
        let (program, _) = resolve(&files);
        let resolve_time = t.elapsed();
        let t = Instant::now();
        let (checked, _) = check(&program, CheckOptions::default());
        let check_time = t.elapsed();
        let t = Instant::now();
        let diagnostics = hpl_compiler::analyze::analyze(&program, &checked);
        let analyze_time = t.elapsed();
        println!(
            "×{factor}: {} rules, {} conflict-analysis diagnostics; parse {parse:.1?}, resolve {resolve_time:.1?}, check {check_time:.1?}, conflict analysis {analyze_time:.1?}",
            w.rules,
            diagnostics.len()
        );
    }
}
