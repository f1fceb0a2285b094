//! The server's state without the protocol: open documents over the files on disk, and the
//! compiler's analysis of the whole policy directory (the same `analyze_sources` as
//! `hpl check`). Every feature is a function of an [`Analysis`], a file and an offset.
//!
//! Changes and analyses are decoupled: an edit only changes a document and bumps the
//! [`generation`](Workspace::generation); an analysis is made from a snapshot of the inputs
//! ([`Workspace::inputs`]) without holding the workspace and installed only if nothing newer
//! was installed meanwhile ([`Workspace::install`]). That is what lets the server coalesce a
//! burst of changes into one analysis (see `lib.rs`).

use crate::position::offset;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::driver::{collect_files, Analysis};
use hpl_compiler::source::{FileId, SourceFile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tower_lsp_server::ls_types::TextDocumentContentChangeEvent;

/// The largest document the server analyses. A policy file of 10,000 rules is about 320 kB;
/// analysing costs about 46 times the text in memory (a 4 MiB file of 84,000 rules: 192 MB
/// peak for `hpl check`), and the server briefly holds two analyses, so 4 MiB keeps it under
/// half a gigabyte. Larger documents are kept (so edits that shrink them again
/// work) but not analysed: they get one diagnostic that says so, and `hpl check` still reads
/// them (up to its own 16 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// The largest document the server keeps at all (the size of one message). Incremental
/// edits that grow a document past it drop its text until the editor sends it whole again.
pub const MAX_HELD_BYTES: usize = crate::transport::MAX_MESSAGE_BYTES;

/// An open document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    pub text: String,
    /// The editor's version of the text, sent back with its diagnostics.
    pub version: Option<i32>,
    /// The text grew past [`MAX_HELD_BYTES`] and was dropped; later incremental edits are
    /// ignored until the whole text comes again (a full change, or close and reopen).
    pub dropped: bool,
}

impl Document {
    pub fn new(text: String, version: Option<i32>) -> Document {
        if text.len() > MAX_HELD_BYTES {
            return Document {
                text: String::new(),
                version,
                dropped: true,
            };
        }
        Document {
            text,
            version,
            dropped: false,
        }
    }

    /// Why this document is not analysed, if it is not.
    pub fn refusal(&self) -> Option<String> {
        if self.dropped {
            return Some(format!(
                "this document grew past {} MiB and hpl-lsp no longer holds its text: close and reopen it (`hpl check` reads it from disk)",
                MAX_HELD_BYTES >> 20
            ));
        }
        (self.text.len() > MAX_DOCUMENT_BYTES).then(|| {
            format!(
                "this document is {} bytes; hpl-lsp analyses documents up to {} MiB ({} bytes), so it shows no diagnostics for it (`hpl check` reads files up to 16 MiB)",
                self.text.len(),
                MAX_DOCUMENT_BYTES >> 20,
                MAX_DOCUMENT_BYTES
            )
        })
    }

    /// Applies the editor's changes in order. A range that does not fit the text is ignored
    /// (the editor and the server disagree; the next full change repairs it).
    pub fn apply(&mut self, version: i32, changes: Vec<TextDocumentContentChangeEvent>) {
        self.version = Some(version);
        for change in changes {
            match change.range {
                Some(_) if self.dropped => {}
                Some(r) => {
                    let (start, end) = (offset(&self.text, r.start), offset(&self.text, r.end));
                    if start <= end && end <= self.text.len() {
                        if self.text.len() - (end - start) + change.text.len() > MAX_HELD_BYTES {
                            self.text = String::new();
                            self.dropped = true;
                        } else {
                            self.text.replace_range(start..end, &change.text);
                        }
                    }
                }
                None => *self = Document::new(change.text, Some(version)),
            }
        }
    }
}

#[derive(Default)]
pub struct Workspace {
    /// The policy directory (the editor's workspace folder).
    pub root: Option<PathBuf>,
    /// Open documents: their text overrides the disk.
    pub open: BTreeMap<PathBuf, Document>,
    pub analysis: Option<Analysis>,
    /// The generation of the inputs `analysis` was made from.
    pub analyzed: u64,
    /// The generation whose diagnostics were last published.
    pub published: u64,
    /// The documents that diagnostics were last published for.
    pub shown: crate::publish::Shown,
    /// Bumped by every change to the inputs; shared so that a running analysis can see, without
    /// the workspace, that its inputs are out of date.
    generation: Arc<AtomicU64>,
    /// The file whose directory is analysed: the last one opened, changed or closed.
    focus: Option<PathBuf>,
    /// The syntax trees of the last analysis: an edit re-parses only the edited file. Shared
    /// with the analysis job, which runs without the workspace.
    pub parses: Arc<std::sync::Mutex<hpl_compiler::ParseCache>>,
    /// Files on disk, read once and re-read only when their modification time changes.
    disk: BTreeMap<PathBuf, (Option<std::time::SystemTime>, String)>,
}

impl Workspace {
    pub fn new(root: Option<PathBuf>) -> Workspace {
        Workspace {
            root,
            ..Workspace::default()
        }
    }

    /// The counter of changes to the inputs.
    pub fn generation(&self) -> Arc<AtomicU64> {
        self.generation.clone()
    }

    /// Marks the inputs changed, with `path` as the file in focus.
    pub fn touch(&mut self, path: &Path) {
        self.focus = Some(path.to_path_buf());
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn open_document(&mut self, path: PathBuf, text: String, version: Option<i32>) {
        self.touch(&path);
        self.open.insert(path, Document::new(text, version));
    }

    /// Applies changes to an open document (one the editor did not open starts empty).
    pub fn change_document(
        &mut self,
        path: PathBuf,
        version: i32,
        changes: Vec<TextDocumentContentChangeEvent>,
    ) {
        self.touch(&path);
        self.open.entry(path).or_default().apply(version, changes);
    }

    pub fn close_document(&mut self, path: &Path) {
        self.touch(path);
        self.open.remove(path);
    }

    /// The directory whose `.hpl` files are compiled together with `file`, and whether its
    /// subdirectories are too. The workspace folder is the policy directory and is read whole,
    /// as `hpl check` reads it; a file outside it (or with no folder open) is compiled with the
    /// `.hpl` files beside it only: opening `~/notes.hpl` must not walk the whole home.
    fn directory_of(&self, file: &Path) -> Option<(PathBuf, bool)> {
        match &self.root {
            Some(root) if file.starts_with(root) => Some((root.clone(), true)),
            _ => file.parent().map(|p| (p.to_path_buf(), false)),
        }
    }

    /// A snapshot of what the next analysis reads: the files of the directory in focus (or of
    /// the root), open documents over the disk, and the generation it stands for. A document
    /// that is not analysed ([`Document::refusal`]) is left out entirely: its older copy on
    /// disk must not stand in for it.
    pub fn inputs(&mut self) -> (u64, Vec<SourceFile>) {
        let generation = self.generation.load(Ordering::SeqCst);
        let focus = self.focus.clone();
        let dir = focus
            .as_deref()
            .and_then(|f| self.directory_of(f))
            .or_else(|| self.root.clone().map(|r| (r, true)));
        let mut paths: Vec<PathBuf> = match &dir {
            Some((d, true)) => collect_files(std::slice::from_ref(d)).unwrap_or_default(),
            Some((d, false)) => siblings(d),
            None => Vec::new(),
        };
        for p in self.open.keys() {
            let in_dir = dir.as_ref().is_none_or(|(d, deep)| {
                if *deep {
                    p.starts_with(d)
                } else {
                    p.parent() == Some(d.as_path())
                }
            });
            if in_dir && !paths.contains(p) {
                paths.push(p.clone());
            }
        }
        paths.sort();
        let mut files: Vec<SourceFile> = Vec::with_capacity(paths.len());
        for p in &paths {
            let file = (|| {
                let text = match self.open.get(p) {
                    Some(doc) if doc.refusal().is_some() => return None,
                    Some(doc) => doc.text.clone(),
                    None => {
                        let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok();
                        match self.disk.get(p) {
                            Some((m, t)) if *m == modified && modified.is_some() => t.clone(),
                            _ => {
                                // Regular files only, bounded: a FIFO cannot hang the server.
                                let real = std::fs::canonicalize(p).ok()?;
                                let bytes = hpl_runtime::store::read_regular_file(
                                    &real,
                                    hpl_compiler::driver::MAX_SOURCE_BYTES,
                                )
                                .ok()?;
                                let t = String::from_utf8(bytes).ok()?;
                                self.disk.insert(p.clone(), (modified, t.clone()));
                                t
                            }
                        }
                    }
                };
                let mut f = SourceFile::new(p.to_string_lossy().into_owned(), text);
                f.path = Some(p.clone());
                Some(f)
            })();
            files.extend(file);
        }
        (generation, files)
    }

    /// Installs an analysis of the inputs of `generation`, unless a newer one is installed.
    /// Answers whether it was.
    pub fn install(&mut self, generation: u64, analysis: Analysis) -> bool {
        if self.analysis.is_some() && generation <= self.analyzed {
            return false;
        }
        // Dropping an analysis of a large directory takes milliseconds (every tree, rule and
        // diagnostic): not on the way to the diagnostics.
        if let Some(old) = self.analysis.replace(analysis) {
            std::thread::spawn(move || drop(old));
        }
        self.analyzed = generation;
        true
    }

    /// Whether the installed analysis is of the current inputs.
    pub fn is_current(&self) -> bool {
        self.analysis.is_some() && self.analyzed == self.generation.load(Ordering::SeqCst)
    }

    /// Re-runs the analysis here and now (`file`, if given, is the file in focus). The server
    /// analyses off its request path instead; this is for benchmarks and tests.
    pub fn reanalyze(&mut self, file: Option<&Path>) {
        if let Some(f) = file {
            self.touch(f);
        }
        let (generation, files) = self.inputs();
        // The analysis never panics on any text; if a bug made it, keep the server alive.
        let parses = self.parses.clone();
        let result = std::panic::catch_unwind(move || {
            let mut cache = parses.lock().unwrap_or_else(|p| p.into_inner());
            hpl_compiler::analyze_sources_cached(
                files,
                CheckOptions::default(),
                &|| false,
                &mut cache,
            )
        });
        if let Ok(Ok(analysis)) = result {
            self.install(generation, analysis);
        }
    }

    /// The file id of a path in the current analysis.
    pub fn file(&self, path: &Path) -> Option<FileId> {
        let a = self.analysis.as_ref()?;
        a.db.files()
            .find(|(_, f)| f.path.as_deref() == Some(path))
            .map(|(id, _)| id)
    }
}

/// The `.hpl` files directly in `dir` (not in its subdirectories).
fn siblings(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "hpl") && !p.is_dir())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_lsp_server::ls_types::{Position, Range};

    fn edit(line: u32, character: u32, text: &str) -> TextDocumentContentChangeEvent {
        let at = Position { line, character };
        TextDocumentContentChangeEvent {
            range: Some(Range { start: at, end: at }),
            range_length: None,
            text: text.into(),
        }
    }

    #[test]
    fn an_older_analysis_never_replaces_a_newer_one() {
        let dir = std::env::temp_dir().join(format!("hpl-lsp-ws-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("a.hpl");
        let mut ws = Workspace::new(Some(dir.clone()));
        ws.open_document(file.clone(), "policy a version 1 {\n}\n".into(), Some(1));
        let (old, old_inputs) = ws.inputs();
        ws.change_document(file.clone(), 2, vec![edit(1, 0, "  require brew:jq\n")]);
        let (new, new_inputs) = ws.inputs();
        assert!(new > old);
        let analyse = |files| hpl_compiler::analyze_sources(files, CheckOptions::default());
        assert!(ws.install(new, analyse(new_inputs)));
        assert!(ws.is_current());
        assert!(
            !ws.install(old, analyse(old_inputs)),
            "a stale analysis was installed"
        );
        let a = ws.analysis.as_ref().expect("analysis");
        let id = ws.file(&file).expect("file");
        assert!(a.db.get(id).text.contains("brew:jq"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_file_outside_the_workspace_folder_is_compiled_with_its_siblings_only() {
        let dir = std::env::temp_dir().join(format!("hpl-lsp-loose-{}", std::process::id()));
        let deep = dir.join("deeper");
        std::fs::create_dir_all(&deep).expect("dir");
        std::fs::write(dir.join("b.hpl"), "policy b version 1 {\n}\n").expect("write");
        std::fs::write(deep.join("c.hpl"), "policy c version 1 {\n}\n").expect("write");
        let file = dir.join("a.hpl");
        let mut ws = Workspace::new(None);
        ws.open_document(file.clone(), "policy a version 1 {\n}\n".into(), Some(1));
        let (_, inputs) = ws.inputs();
        let names: Vec<String> = inputs
            .iter()
            .filter_map(|f| Some(f.path.as_ref()?.file_name()?.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, ["a.hpl", "b.hpl"]);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_document_over_the_limit_is_left_out_and_its_disk_copy_is_not_read() {
        let dir = std::env::temp_dir().join(format!("hpl-lsp-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("big.hpl");
        std::fs::write(&file, "policy old version 1 {\n  require brew:jq\n}\n").expect("write");
        let mut ws = Workspace::new(Some(dir.clone()));
        let big = format!(
            "policy big version 1 {{\n}}\n{}",
            "#\n".repeat(MAX_DOCUMENT_BYTES)
        );
        ws.open_document(file.clone(), big, Some(1));
        let reason = ws.open[&file].refusal().expect("refused");
        assert!(reason.contains("up to 4 MiB"), "{reason}");
        let (_, inputs) = ws.inputs();
        assert!(inputs.iter().all(|f| f.path.as_deref() != Some(&file)));
        // Shrinking it again (an edit that deletes) brings it back.
        ws.change_document(
            file.clone(),
            2,
            vec![TextDocumentContentChangeEvent {
                range: None,
                range_length: None,
                text: "policy small version 1 {\n}\n".into(),
            }],
        );
        assert_eq!(ws.open[&file].refusal(), None);
        let (_, inputs) = ws.inputs();
        assert!(inputs.iter().any(|f| f.text.contains("policy small")));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn edits_that_grow_a_document_past_what_is_held_drop_it_until_it_comes_whole() {
        let mut doc = Document::new("x".repeat(MAX_HELD_BYTES - 1), Some(1));
        assert!(!doc.dropped);
        doc.apply(2, vec![edit(0, 0, "ab")]);
        assert!(doc.dropped && doc.text.is_empty());
        assert!(doc.refusal().expect("refused").contains("close and reopen"));
        doc.apply(3, vec![edit(0, 0, "policy")]);
        assert!(doc.text.is_empty(), "an incremental edit of a dropped text");
        doc.apply(
            4,
            vec![TextDocumentContentChangeEvent {
                range: None,
                range_length: None,
                text: "policy a version 1 {\n}\n".into(),
            }],
        );
        assert!(!doc.dropped && doc.version == Some(4));
    }
}
