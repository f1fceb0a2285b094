//! The server's state without the protocol: open documents over the files on disk, and the
//! compiler's analysis of the whole policy directory (the same `analyze_sources` as
//! `hpl check`). Every feature is a function of an [`Analysis`], a file and an offset.

use hpl_compiler::check::CheckOptions;
use hpl_compiler::driver::{collect_files, Analysis};
use hpl_compiler::source::{FileId, SourceFile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct Workspace {
    /// The policy directory (the editor's workspace folder).
    pub root: Option<PathBuf>,
    /// Open documents: their text overrides the disk.
    pub open: BTreeMap<PathBuf, String>,
    pub analysis: Option<Analysis>,
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

    /// The directory whose `.hpl` files are compiled together with `file`.
    fn directory_of(&self, file: &Path) -> Option<PathBuf> {
        match &self.root {
            Some(root) if file.starts_with(root) => Some(root.clone()),
            _ => file.parent().map(Path::to_path_buf),
        }
    }

    /// Re-runs the analysis of the directory of `file` (or of the root).
    pub fn reanalyze(&mut self, file: Option<&Path>) {
        let dir = file
            .and_then(|f| self.directory_of(f))
            .or_else(|| self.root.clone());
        let mut paths: Vec<PathBuf> = dir
            .map(|d| collect_files(&[d]).unwrap_or_default())
            .unwrap_or_default();
        for p in self.open.keys() {
            let in_dir = file
                .and_then(|f| self.directory_of(f))
                .is_none_or(|d| p.starts_with(&d));
            if in_dir && !paths.contains(p) {
                paths.push(p.clone());
            }
        }
        paths.sort();
        let mut files: Vec<SourceFile> = Vec::with_capacity(paths.len());
        for p in &paths {
            let file = (|| {
                let text = match self.open.get(p) {
                    Some(t) => t.clone(),
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
        // The analysis never panics on any text; if a bug made it, keep the server alive.
        let result = std::panic::catch_unwind(|| {
            hpl_compiler::analyze_sources(files, CheckOptions::default())
        });
        if let Ok(analysis) = result {
            self.analysis = Some(analysis);
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
