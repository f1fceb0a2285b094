//! The language server per keystroke (issue 13). Workload: the bench generator's 400-scope
//! set (`generated_policy_set(400, 18_000)`: 20,441 lines, 3,547 diagnostics) as a directory
//! of 1, 6 or 21 files, one of them open and edited.
//!
//! - in-process: what runs between a `didChange` and the `publishDiagnostics` it causes — the
//!   edit, the analysis (unchanged files' trees reused), the LSP diagnostics of the files
//!   whose diagnostics changed ([`hpl_lsp::publish::pending`]); hover and completion;
//! - over stdio: the released `hpl-lsp` binary driven as an editor drives it (full-text
//!   `didChange`, then wait for that document's `publishDiagnostics` of the new version), with
//!   `debounceMs: 0`. Build it first: `cargo build --release -p hpl-lsp`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hpl_bench::lsp_client::Editor;
use hpl_lsp::features;
use hpl_lsp::workspace::Workspace;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes the set as `files` files (one for the scopes, the policies in equal chunks).
fn write_set(dir: &Path, files: usize) -> (PathBuf, usize) {
    let text = hpl_bench::generated_policy_set(400, 18_000);
    std::fs::create_dir_all(dir).expect("dir");
    if files == 1 {
        std::fs::write(dir.join("all.hpl"), &text).expect("write");
        return (dir.join("all.hpl"), text.lines().count());
    }
    let mut parts = text.split("\npolicy ");
    std::fs::write(dir.join("scopes.hpl"), parts.next().expect("scopes")).expect("write");
    let policies: Vec<String> = parts.map(|p| format!("policy {p}")).collect();
    let per = policies.len().div_ceil(files - 1);
    for (i, chunk) in policies.chunks(per).enumerate() {
        std::fs::write(dir.join(format!("p{i:02}.hpl")), chunk.join("\n")).expect("write");
    }
    (dir.join("p00.hpl"), text.lines().count())
}

fn lsp(c: &mut Criterion) {
    let mut group = c.benchmark_group("lsp");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(8));
    for files in [1usize, 6, 21] {
        let dir =
            std::env::temp_dir().join(format!("hpl-bench-lsp-{}-{files}", std::process::id()));
        let (edited, lines) = write_set(&dir, files);
        let original = std::fs::read_to_string(&edited).expect("read");
        let mut ws = Workspace::new(Some(dir.clone()));
        ws.open_document(edited.clone(), original.clone(), Some(1));
        ws.reanalyze(Some(&edited));
        let first = hpl_lsp::publish::pending(&mut ws);
        let diagnostics: usize = first.iter().map(|(_, d, _)| d.len()).sum();
        eprintln!("in-process: {lines} lines in {files} files, {diagnostics} diagnostics");
        // The edit: a line added, then removed again.
        let edit = |version: i32| {
            if version % 2 == 0 {
                format!("{original}\n# edited\n")
            } else {
                original.clone()
            }
        };
        let mut version = 1;
        group.bench_function(BenchmarkId::new("did_change_to_diagnostics", files), |b| {
            b.iter(|| {
                version += 1;
                ws.open_document(edited.clone(), edit(version), Some(version));
                ws.reanalyze(Some(&edited));
                let sent = hpl_lsp::publish::pending(&mut ws);
                assert!(!sent.is_empty(), "the edited document is published");
                black_box(sent.len())
            })
        });
        if files == 21 {
            let id = ws.file(&edited).expect("file");
            let a = ws.analysis.as_ref().expect("analysis");
            let file_text = a.db.get(id).text.clone();
            let at = file_text.find("require brew:").expect("a require") + "require brew:p".len();
            group.bench_function("hover_package", |b| {
                b.iter(|| black_box(features::hover(a, id, at).map(|h| h.0.len())))
            });
            group.bench_function("completion_device_field", |b| {
                b.iter(|| {
                    black_box(features::completions(a, "  require brew:x when device.", true).len())
                })
            });
        }
        drop(ws);

        let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/hpl-lsp");
        if server.exists() {
            let mut editor = Editor::start(&server, &dir);
            editor.open(&edited, &original);
            editor.wait_for_diagnostics(&edited, 1);
            let mut version = 1;
            group.bench_function(
                BenchmarkId::new("stdio_did_change_to_diagnostics", files),
                |b| {
                    b.iter(|| {
                        version += 1;
                        editor.change(&edited, version, &edit(version));
                        black_box(editor.wait_for_diagnostics(&edited, version))
                    })
                },
            );
            editor.stop();
        } else {
            panic!(
                "{} is missing: `cargo build --release -p hpl-lsp` first (the stdio rows need it)",
                server.display()
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    group.finish();
}

criterion_group!(benches, lsp);
criterion_main!(benches);
