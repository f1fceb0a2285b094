//! The language server's work per keystroke on a 5,000-line policy directory: re-analysis
//! after a change (what precedes publishing diagnostics), hover and completion. The JSON-RPC
//! transport is not included.

use criterion::{criterion_group, criterion_main, Criterion};
use hpl_lsp::features;
use hpl_lsp::workspace::Workspace;
use std::hint::black_box;
use std::path::PathBuf;

fn lsp(c: &mut Criterion) {
    let text = hpl_bench::generated_policy_set(100, 4_600);
    let dir = std::env::temp_dir().join(format!("hpl-bench-lsp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    // One file for the scopes, one per ten policies: a realistic directory.
    let mut parts = text.split("\npolicy ");
    std::fs::write(dir.join("scopes.hpl"), parts.next().expect("scopes")).expect("write");
    let policies: Vec<String> = parts.map(|p| format!("policy {p}")).collect();
    for (i, chunk) in policies.chunks(10).enumerate() {
        std::fs::write(dir.join(format!("p{i:02}.hpl")), chunk.join("\n")).expect("write");
    }
    let lines: usize = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| {
            std::fs::read_to_string(e.expect("e").path())
                .expect("read")
                .lines()
                .count()
        })
        .sum();
    eprintln!(
        "workload: {lines} lines in {} files",
        policies.len().div_ceil(10) + 1
    );

    let edited: PathBuf = dir.join("p03.hpl");
    let original = std::fs::read_to_string(&edited).expect("read");
    let mut ws = Workspace::new(Some(dir.clone()));
    ws.open_document(edited.clone(), original.clone(), None);
    ws.reanalyze(Some(&edited));

    let mut group = c.benchmark_group("lsp");
    group.sample_size(20);
    let mut toggle = false;
    group.bench_function("did_change_to_diagnostics_5000_lines", |b| {
        b.iter(|| {
            toggle = !toggle;
            let text = if toggle {
                format!("{original}\n# edited\n")
            } else {
                original.clone()
            };
            ws.open_document(edited.clone(), text, None);
            ws.reanalyze(Some(&edited));
            let a = ws.analysis.as_ref().expect("analysis");
            black_box(
                a.db.files()
                    .map(|(id, _)| features::diagnostics_of(a, id).len())
                    .sum::<usize>(),
            )
        })
    });
    let id = ws.file(&edited).expect("file");
    let a = ws.analysis.as_ref().expect("analysis");
    let file_text = a.db.get(id).text.clone();
    let at = file_text.find("require brew:").expect("a require") + "require brew:p".len();
    group.bench_function("hover_package", |b| {
        b.iter(|| black_box(features::hover(a, id, at).map(|h| h.0.len())))
    });
    group.bench_function("completion_device_field", |b| {
        b.iter(|| black_box(features::completions(a, "  require brew:x when device.", true).len()))
    });
    group.bench_function("completion_rule_target", |b| {
        b.iter(|| black_box(features::completions(a, "  require ", true).len()))
    });
    group.finish();
    std::fs::remove_dir_all(&dir).ok();
}

criterion_group!(benches, lsp);
criterion_main!(benches);
