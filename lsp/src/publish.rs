//! From an analysis to `publishDiagnostics`: the compiler's diagnostics of each file as LSP
//! diagnostics, and only the files whose diagnostics (or document version) changed since the
//! last publication.
//!
//! Issue 13 measured this path growing with files × diagnostics: every position was found by
//! scanning its file from the start, every file filtered every diagnostic of the directory, and
//! every file's diagnostics were sent again after each edit. Now each file's diagnostics are a
//! slice found by binary search, positions come from a [`LineIndex`] per file, and a file whose
//! diagnostics are what the editor already shows is not sent again.

use crate::features;
use crate::position::LineIndex;
use crate::workspace::Workspace;
use hpl_compiler::diagnostics::Severity;
use hpl_compiler::source::FileId;
use hpl_compiler::Analysis;
use std::collections::{BTreeMap, HashMap};
use tower_lsp_server::ls_types::{
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Range,
    Uri,
};

/// One `publishDiagnostics` notification: the document, its diagnostics, the version of the
/// open document they are of.
pub type Batch = (Uri, Vec<Diagnostic>, Option<i32>);

/// What the editor was last sent, per document.
pub type Shown = BTreeMap<Uri, (Option<i32>, Vec<Diagnostic>)>;

/// The notifications that bring the editor up to date with the installed analysis; nothing
/// when it was already published. Records what it returns as shown.
pub fn pending(ws: &mut Workspace) -> Vec<Batch> {
    let Some(a) = ws.analysis.as_ref() else {
        return Vec::new();
    };
    if ws.published == ws.analyzed {
        return Vec::new();
    }
    ws.published = ws.analyzed;
    let mut now: Vec<Batch> = Vec::new();
    for (path, doc) in &ws.open {
        let Some(reason) = doc.refusal() else {
            continue;
        };
        let Some(uri) = Uri::from_file_path(path) else {
            continue;
        };
        let diagnostic = Diagnostic {
            range: Range::default(),
            severity: Some(DiagnosticSeverity::WARNING),
            source: Some("hpl".into()),
            message: reason,
            ..Default::default()
        };
        now.push((uri, vec![diagnostic], doc.version));
    }
    let mut lines = Lines::new(a);
    for (id, file) in a.db.files() {
        if file.is_stdlib {
            continue;
        }
        let Some(path) = file.path.as_deref() else {
            continue;
        };
        let Some(uri) = Uri::from_file_path(path) else {
            continue;
        };
        let version = ws.open.get(path).and_then(|d| d.version);
        now.push((uri, file_diagnostics(a, id, &mut lines), version));
    }
    let mut out = Vec::new();
    let mut shown = Shown::new();
    for (uri, diagnostics, version) in now {
        let same = ws
            .shown
            .get(&uri)
            .is_some_and(|(v, d)| *v == version && *d == diagnostics);
        if !same {
            out.push((uri.clone(), diagnostics.clone(), version));
        }
        shown.insert(uri, (version, diagnostics));
    }
    // A file that had diagnostics and is no longer analysed (an unsaved document that was
    // closed, a file deleted) gets an empty set: the editor must not keep stale ones.
    for gone in ws.shown.keys().filter(|u| !shown.contains_key(*u)) {
        out.push((gone.clone(), Vec::new(), None));
    }
    ws.shown = shown;
    out
}

/// Line indices of the analysis's files, made when first needed (a related site may be in
/// any file).
pub struct Lines<'a> {
    a: &'a Analysis,
    index: HashMap<FileId, LineIndex<'a>>,
}

impl<'a> Lines<'a> {
    pub fn new(a: &'a Analysis) -> Lines<'a> {
        Lines {
            a,
            index: HashMap::new(),
        }
    }

    pub fn range(&mut self, file: FileId, start: u32, end: u32) -> Range {
        let a = self.a;
        self.index
            .entry(file)
            .or_insert_with(|| LineIndex::of(a.db.get(file)))
            .range(start as usize, end as usize)
    }
}

/// The compiler's diagnostics of one file as LSP diagnostics.
pub fn file_diagnostics(a: &Analysis, id: FileId, lines: &mut Lines<'_>) -> Vec<Diagnostic> {
    features::file_diagnostics(a, id)
        .iter()
        .map(|d| {
            let related = d
                .related
                .iter()
                .filter_map(|r| {
                    let f = a.db.get(r.span.file);
                    Some(DiagnosticRelatedInformation {
                        location: Location::new(
                            Uri::from_file_path(f.path.as_deref()?)?,
                            lines.range(r.span.file, r.span.start, r.span.end),
                        ),
                        message: r.message.clone(),
                    })
                })
                .collect::<Vec<_>>();
            let mut message = d.message.clone();
            for note in &d.notes {
                message.push_str("\nnote: ");
                message.push_str(note);
            }
            if let Some(help) = &d.help {
                message.push_str("\nhelp: ");
                message.push_str(help);
            }
            Diagnostic {
                range: lines.range(id, d.primary.span.start, d.primary.span.end),
                severity: Some(match d.severity {
                    Severity::Error => DiagnosticSeverity::ERROR,
                    Severity::Warning => DiagnosticSeverity::WARNING,
                    Severity::Note => DiagnosticSeverity::HINT,
                }),
                code: Some(NumberOrString::String(d.code.as_str().to_string())),
                source: Some("hpl".into()),
                message,
                related_information: if related.is_empty() {
                    None
                } else {
                    Some(related)
                },
                data: d.suggestion.as_ref().map(|s| {
                    serde_json::json!({ "replacement": s.replacement, "title": s.message,
                        "range": lines.range(s.span.file, s.span.start, s.span.end) })
                }),
                ..Default::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: after an edit, only the edited file (and files whose diagnostics changed) is
    /// sent again; before, every file of the directory was, with every diagnostic.
    #[test]
    fn an_edit_sends_only_what_changed() {
        let dir = std::env::temp_dir().join(format!("hpl-lsp-publish-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("scopes.hpl"),
            "tenant t\ndepartment eng {\n  team web\n}\n",
        )
        .expect("write");
        for i in 0..5 {
            std::fs::write(
                dir.join(format!("p{i}.hpl")),
                format!("policy p{i} version 1 {{\n  scope team web\n  require brew:jq{i}\n  require brew:jq{i}\n}}\n"),
            )
            .expect("write");
        }
        let edited = dir.join("p2.hpl");
        let text = std::fs::read_to_string(&edited).expect("read");
        let mut ws = Workspace::new(Some(dir.clone()));
        ws.open_document(edited.clone(), text.clone(), Some(1));
        ws.reanalyze(Some(&edited));
        let first = pending(&mut ws);
        assert_eq!(first.len(), 6, "every file once at the start");
        assert!(pending(&mut ws).is_empty(), "nothing new, nothing sent");

        // A comment: the edited file is sent (its version changed), the others are not.
        ws.open_document(edited.clone(), format!("# note\n{text}"), Some(2));
        ws.reanalyze(Some(&edited));
        let sent = pending(&mut ws);
        let names: Vec<String> = sent.iter().map(|(u, _, _)| u.path().to_string()).collect();
        assert_eq!(sent.len(), 1, "{names:?}");
        assert!(names[0].ends_with("p2.hpl"));
        assert_eq!(sent[0].2, Some(2));
        // Its diagnostic moved one line down with the text.
        let line = |b: &Batch| b.1[0].range.start.line;
        let before = first
            .iter()
            .find(|b| b.0 == sent[0].0)
            .expect("p2 at first");
        assert_eq!(line(&sent[0]), line(before) + 1);

        // A file deleted from disk and not open: sent once, empty.
        std::fs::remove_file(dir.join("p4.hpl")).expect("remove");
        ws.reanalyze(Some(&edited));
        let sent = pending(&mut ws);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].0.path().to_string().ends_with("p4.hpl") && sent[0].1.is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
