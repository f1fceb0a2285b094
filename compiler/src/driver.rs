//! One analysis for every front door: the CLI and the language server both call
//! [`analyze_sources`] and show the same diagnostics.

use crate::analyze::analyze;
use crate::check::{check, CheckOptions, Checked};
use crate::diagnostics::{self, Diagnostic};
use crate::program::Program;
use crate::resolve::{resolve, ParsedFile};
use crate::source::{FileId, SourceDb, SourceFile, Span};
use crate::syntax::{self, ast};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The stdlib, embedded: the manager catalog and the shipped package sets.
pub const STDLIB: &[(&str, &str)] = &[
    (
        "<stdlib>/managers.hpl",
        include_str!("../../stdlib/managers.hpl"),
    ),
    ("<stdlib>/sets.hpl", include_str!("../../stdlib/sets.hpl")),
];

/// Everything the compiler knows about a policy directory.
#[derive(Debug)]
pub struct Analysis {
    pub db: SourceDb,
    /// Shared with the [`ParseCache`] that may keep them for the next analysis.
    pub files: Vec<(FileId, Arc<ast::File>)>,
    pub program: Program,
    pub checked: Checked,
    /// Sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == diagnostics::Severity::Error)
    }
}

/// Runs every stage on the user's files (the stdlib is added first).
pub fn analyze_sources(user_files: Vec<SourceFile>, options: CheckOptions) -> Analysis {
    match analyze_sources_until(user_files, options, &|| false) {
        Ok(analysis) => analysis,
        Err(Cancelled) => unreachable!("an analysis that is never stopped is never cancelled"),
    }
}

/// An analysis given up because its inputs were already out of date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// [`analyze_sources`], given up as soon as `stop` answers true: the language server asks this
/// between files and between stages, so an analysis of text the user has already changed
/// stops early instead of holding the next one back. `stop` is called from both parse threads.
pub fn analyze_sources_until(
    user_files: Vec<SourceFile>,
    options: CheckOptions,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Analysis, Cancelled> {
    analyze_sources_cached(user_files, options, stop, &mut ParseCache::default())
}

/// Syntax trees kept from one analysis to the next: a file whose name, position among the
/// inputs and text are unchanged is not parsed again (its tree's spans carry its `FileId`,
/// hence the position). The language server keeps one, so an edit re-parses only the edited
/// file; the stdlib is parsed once per process.
#[derive(Debug, Default)]
pub struct ParseCache {
    files: std::collections::HashMap<String, CachedParse>,
    /// How many files the last analysis parsed (the others came from here).
    parsed: usize,
}

#[derive(Debug)]
struct CachedParse {
    id: FileId,
    text: String,
    tree: Arc<ast::File>,
    errors: Vec<Diagnostic>,
}

impl ParseCache {
    /// The files whose trees are kept.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// How many files the last analysis parsed rather than took from the cache.
    pub fn parsed_last(&self) -> usize {
        self.parsed
    }
}

/// [`analyze_sources_until`] with the trees of unchanged files taken from `cache` (and the
/// cache left holding exactly this analysis's files).
pub fn analyze_sources_cached(
    user_files: Vec<SourceFile>,
    options: CheckOptions,
    stop: &(dyn Fn() -> bool + Sync),
    cache: &mut ParseCache,
) -> Result<Analysis, Cancelled> {
    let mut db = SourceDb::default();
    for (name, text) in STDLIB {
        let mut f = SourceFile::new(*name, *text);
        f.is_stdlib = true;
        db.add(f);
    }
    for f in user_files {
        db.add(f);
    }
    let mut diagnostics = Vec::new();
    let mut files = Vec::new();
    let cached = |id: FileId, f: &SourceFile| {
        cache
            .files
            .get(&f.name)
            .filter(|c| c.id == id && c.text == f.text)
    };
    // Files are independent: a big directory is parsed on two threads (results keep file order).
    let all: Vec<(FileId, &SourceFile)> = db
        .files()
        .filter(|(id, f)| cached(*id, f).is_none())
        .collect();
    let total: usize = all.iter().map(|(_, f)| f.text.len()).sum();
    let parse_all =
        |part: &[(FileId, &SourceFile)]| -> Vec<(FileId, Arc<ast::File>, Vec<Diagnostic>)> {
            part.iter()
                .map_while(|(id, f)| {
                    if stop() {
                        return None;
                    }
                    let (tree, errors) = syntax::parse_file(*id, &f.text);
                    Some((*id, Arc::new(tree), errors))
                })
                .collect()
        };
    let parsed = if total >= 64 * 1024
        && all.len() > 1
        && std::thread::available_parallelism().map_or(1, |n| n.get()) > 1
    {
        let (first, second) = all.split_at(all.len() / 2);
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| parse_all(second));
            let mut a = parse_all(first);
            a.extend(handle.join().unwrap_or_else(|_| parse_all(second)));
            a
        })
    } else {
        parse_all(&all)
    };
    // A stopped parse returns fewer files: nothing after it is worth doing.
    if stop() || parsed.len() != all.len() {
        return Err(Cancelled);
    }
    let mut fresh = parsed.into_iter().peekable();
    let mut kept = std::collections::HashMap::new();
    for (id, f) in db.files() {
        let (tree, errors) = match fresh.peek() {
            Some((next, _, _)) if *next == id => {
                let (_, tree, errors) = fresh.next().expect("peeked");
                (tree, errors)
            }
            _ => {
                let c = cached(id, f).expect("a file not parsed now is cached");
                (c.tree.clone(), c.errors.clone())
            }
        };
        diagnostics.extend(errors.iter().cloned());
        files.push((id, tree.clone()));
        kept.insert(
            f.name.clone(),
            CachedParse {
                id,
                text: f.text.clone(),
                tree,
                errors,
            },
        );
    }
    cache.files = kept;
    cache.parsed = all.len();
    let parsed: Vec<ParsedFile<'_>> = files
        .iter()
        .map(|(id, tree)| ParsedFile {
            file: tree,
            is_stdlib: db.get(*id).is_stdlib,
            start: Span::new(*id, 0, 0),
        })
        .collect();
    let (program, errors) = resolve(&parsed);
    diagnostics.extend(errors);
    if stop() {
        return Err(Cancelled);
    }
    let (checked, errors) = check(&program, options);
    diagnostics.extend(errors);
    if stop() {
        return Err(Cancelled);
    }
    diagnostics.extend(analyze(&program, &checked));
    diagnostics::sort(&mut diagnostics);
    Ok(Analysis {
        db,
        files,
        program,
        checked,
        diagnostics,
    })
}

/// An input path that could not be read.
#[derive(Debug)]
pub struct LoadError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read {}: {}", self.path.display(), self.error)
    }
}

/// The largest policy file read (a 10,000-rule policy is about 320 kB).
pub const MAX_SOURCE_BYTES: u64 = 16 * 1024 * 1024;

/// Every `.hpl` file under the given paths (files are taken as they are), in a stable order.
/// Directory links are followed once: a link that leads back to a directory being walked is
/// a cycle, reported as an error rather than walked for ever.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|error| LoadError {
            path: path.clone(),
            error,
        })?;
        if meta.is_dir() {
            let mut walking = Vec::new();
            walk(path, &mut walking, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `walking`: the real paths of the directories from the root down to `dir`.
fn walk(dir: &Path, walking: &mut Vec<PathBuf>, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let real = std::fs::canonicalize(dir).map_err(|error| LoadError {
        path: dir.to_path_buf(),
        error,
    })?;
    if let Some(first) = walking.iter().find(|p| **p == real) {
        return Err(LoadError {
            path: dir.to_path_buf(),
            error: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "a directory link cycle: it leads back to {}",
                    first.display()
                ),
            ),
        });
    }
    walking.push(real);
    let entries = std::fs::read_dir(dir).map_err(|error| LoadError {
        path: dir.to_path_buf(),
        error,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| LoadError {
            path: dir.to_path_buf(),
            error,
        })?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        paths.push(entry.path());
    }
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(&path, walking, out)?;
        } else if path.extension().is_some_and(|e| e == "hpl") {
            out.push(path);
        }
    }
    walking.pop();
    Ok(())
}

/// Reads the files; names are the paths as given (so editors and terminals can open them).
pub fn load_files(paths: &[PathBuf]) -> Result<Vec<SourceFile>, LoadError> {
    collect_files(paths)?
        .into_iter()
        .map(|path| {
            // Only regular files, bounded: a FIFO named `x.hpl` cannot hang the compiler.
            let bytes = std::fs::canonicalize(&path)
                .and_then(|real| hpl_runtime::store::read_regular_file(&real, MAX_SOURCE_BYTES))
                .map_err(|error| LoadError {
                    path: path.clone(),
                    error,
                })?;
            let text = String::from_utf8(bytes).map_err(|e| LoadError {
                path: path.clone(),
                error: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("not UTF-8: {e}"),
                ),
            })?;
            let mut f = SourceFile::new(path.to_string_lossy().replace('\\', "/"), text);
            f.path = Some(path);
            Ok(f)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(third: &str) -> Vec<SourceFile> {
        vec![
            SourceFile::new("a.hpl", "tenant t\ndepartment eng {\n  team web\n}\n"),
            SourceFile::new(
                "b.hpl",
                "policy b version 1 {\n  scope team web\n  require brew:jq\n}\n",
            ),
            SourceFile::new("c.hpl", third),
        ]
    }

    /// The language server's edit loop: only the edited file is parsed again, and the analysis
    /// is the one a fresh, uncached analysis gives.
    #[test]
    fn an_edit_reparses_only_the_edited_file_and_changes_nothing_else() {
        let mut cache = ParseCache::default();
        let one = "policy c version 1 {\n  scope team web\n  deny brew:jq\n}\n";
        let first =
            analyze_sources_cached(sources(one), CheckOptions::default(), &|| false, &mut cache)
                .expect("analysis");
        assert_eq!(cache.parsed_last(), STDLIB.len() + 3);
        let two = "policy c version 1 {\n  scope team web\n  allow brew:jq\n  deny brew:jqq\n}\n";
        let cached =
            analyze_sources_cached(sources(two), CheckOptions::default(), &|| false, &mut cache)
                .expect("analysis");
        assert_eq!(cache.parsed_last(), 1, "only c.hpl");
        let fresh = analyze_sources(sources(two), CheckOptions::default());
        assert_eq!(cached.diagnostics, fresh.diagnostics);
        assert_ne!(cached.diagnostics, first.diagnostics);
        // A file moved to another position among the inputs has other file ids: parsed again.
        let mut moved = sources(two);
        moved.insert(0, SourceFile::new("0.hpl", "# first\n"));
        let again = analyze_sources_cached(
            moved.clone(),
            CheckOptions::default(),
            &|| false,
            &mut cache,
        )
        .expect("analysis");
        assert_eq!(cache.parsed_last(), 4);
        assert_eq!(
            again.diagnostics,
            analyze_sources(moved, CheckOptions::default()).diagnostics
        );
    }
}
