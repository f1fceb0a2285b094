//! `hpl diff`: what a policy change changes — the effective policy's entries (rules per scope,
//! toolchains, modes, windows, guards, scopes), the winners that change per scope path, and
//! with a fleet's inventories, which devices change state or violations.
//!
//! Both sides become verified bundles first (a policy directory compiled in memory, a git
//! revision of one, or a signed bundle), so every comparison is of what devices would load,
//! and every decision is the runtime's.

pub mod effective;
pub mod impact;
mod render;

use crate::bundle::trusted_keys;
use crate::device::parse_time;
use crate::exit::Exit;
use crate::io::Out;
use clap::{Args, ValueEnum};
use hpl_compiler::build::compile_verified;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::diagnostics::render as diagnostics;
use hpl_compiler::driver::{analyze_sources, load_files};
use hpl_compiler::lower::BuildOptions;
use hpl_compiler::source::SourceFile;
use hpl_runtime::device::Device;
use hpl_runtime::inventory::Inventory;
use hpl_runtime::load::VerifiedBundle;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Human,
    Json,
    Markdown,
}

/// The semantic diff of two policies: entries added, removed or changed per scope, winners
/// that change, and with --inventories the devices whose state or violations change.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// OLD and NEW: policy directories or bundles (.hplb, with --key). With --git, one policy
    /// directory inside a git work tree (default: the current directory).
    pub sides: Vec<PathBuf>,
    /// Compare two revisions of one policy directory: OLD..NEW (e.g. main..HEAD).
    #[arg(long, value_name = "OLD..NEW")]
    pub git: Option<String>,
    /// Trusted public keys for bundle sides (repeatable).
    #[arg(long = "key", value_name = "KEY.pub")]
    pub keys: Vec<PathBuf>,
    /// A fleet's inventories (a directory or a JSON-lines file): preview which devices change.
    #[arg(long, value_name = "DIR|FILE.jsonl")]
    pub inventories: Option<PathBuf>,
    /// Evaluation time (RFC 3339). Default: now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: DiffFormat,
    /// Exit 1 when anything changes (like `git diff --exit-code`).
    #[arg(long)]
    pub exit_code: bool,
    /// Worker threads for --inventories (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

/// The whole diff, as `--format json` prints it.
#[derive(Debug, Serialize)]
pub struct Diff {
    pub schema: &'static str,
    pub old: String,
    pub new: String,
    pub changes: Vec<effective::Change>,
    pub winners: Vec<impact::WinnerChange>,
    /// Scope paths the winners were compared on.
    pub scope_paths: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<impact::Impact>,
    pub tenant_id: String,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.winners.is_empty()
            && self.impact.as_ref().is_none_or(|i| i.changed == 0)
    }
}

/// One side: a label and its bundle.
struct Side {
    label: String,
    bundle: VerifiedBundle,
}

fn compile_files(
    files: Vec<SourceFile>,
    label: &str,
    err: Out<'_>,
) -> std::io::Result<Option<VerifiedBundle>> {
    if files.is_empty() {
        writeln!(err, "error: {label}: no .hpl files")?;
        return Ok(None);
    }
    let analysis = analyze_sources(files, CheckOptions::default());
    if analysis.has_errors() {
        err.write_all(diagnostics::human(&analysis.db, &analysis.diagnostics).as_bytes())?;
        writeln!(err, "error: {label} has errors")?;
        return Ok(None);
    }
    let options = BuildOptions {
        bundle_version: 0,
        issued_at: 0,
        expires_at: None,
        root: None,
    };
    match compile_verified(&analysis, &options) {
        Ok(b) => Ok(Some(b)),
        Err(e) => {
            writeln!(err, "error: {label}: {e}")?;
            Ok(None)
        }
    }
}

/// A policy directory, with file names relative to it (as a build names them).
fn dir_side(dir: &Path, err: Out<'_>) -> std::io::Result<Option<Side>> {
    let files = match load_files(&[dir.to_path_buf()]) {
        Ok(f) => f,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(None);
        }
    };
    let files = files
        .into_iter()
        .map(|f| {
            let name = f
                .path
                .as_deref()
                .and_then(|p| p.strip_prefix(dir).ok())
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or(f.name.clone());
            SourceFile::new(name, f.text)
        })
        .collect();
    let label = dir.display().to_string();
    Ok(compile_files(files, &label, err)?.map(|bundle| Side { label, bundle }))
}

fn bundle_side(path: &Path, keys: &[PathBuf], err: Out<'_>) -> std::io::Result<Option<Side>> {
    if keys.is_empty() {
        writeln!(
            err,
            "error: {} is a bundle: pass --key with its public key",
            path.display()
        )?;
        return Ok(None);
    }
    let Some(trusted) = trusted_keys(keys, err)? else {
        return Ok(None);
    };
    let bytes = match crate::io::read_bundle(path) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: cannot read {}: {e}", path.display())?;
            return Ok(None);
        }
    };
    match hpl_runtime::load::load(&bytes, &trusted) {
        Ok(bundle) => Ok(Some(Side {
            label: path.display().to_string(),
            bundle,
        })),
        Err(e) => {
            writeln!(
                err,
                "error: {} rejected ({}): {e}",
                path.display(),
                e.code()
            )?;
            Ok(None)
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// The policy directory `dir` as it is at revision `rev`, read from git (no checkout).
fn git_side(dir: &Path, rev: &str, err: Out<'_>) -> std::io::Result<Option<Side>> {
    let read = || -> Result<Vec<SourceFile>, String> {
        let prefix = String::from_utf8_lossy(&git(dir, &["rev-parse", "--show-prefix"])?)
            .trim()
            .to_string();
        let listing = git(
            dir,
            &[
                "ls-tree",
                "-r",
                "-z",
                "--name-only",
                "--full-tree",
                rev,
                "--",
                &prefix,
            ],
        )?;
        let mut files = Vec::new();
        for path in listing.split(|&b| b == 0).filter(|p| !p.is_empty()) {
            let path = String::from_utf8_lossy(path).to_string();
            if !path.ends_with(".hpl") {
                continue;
            }
            let text = git(dir, &["show", &format!("{rev}:{path}")])?;
            if text.len() as u64 > crate::io::MAX_TEXT_BYTES {
                return Err(format!("{rev}:{path} is larger than 64 MiB"));
            }
            let text = String::from_utf8(text).map_err(|e| format!("{rev}:{path}: {e}"))?;
            let name = path.strip_prefix(&prefix).unwrap_or(&path).to_string();
            files.push(SourceFile::new(name, text));
        }
        Ok(files)
    };
    let files = match read() {
        Ok(f) => f,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(None);
        }
    };
    let label = format!("{}@{rev}", dir.display());
    Ok(compile_files(files, &label, err)?.map(|bundle| Side { label, bundle }))
}

fn side(path: &Path, keys: &[PathBuf], err: Out<'_>) -> std::io::Result<Option<Side>> {
    if path.is_dir() {
        dir_side(path, err)
    } else {
        bundle_side(path, keys, err)
    }
}

/// The packages a change can move: every exact name of the changed rules, and for a changed
/// glob every exact name it covers in either bundle plus one name no rule names.
fn affected_packages(
    changes: &[effective::Change],
    old: &BTreeMap<effective::Key, effective::Entry>,
    new: &BTreeMap<effective::Key, effective::Entry>,
) -> BTreeSet<(String, String)> {
    let mut exact: BTreeSet<(String, String)> = BTreeSet::new();
    for e in old.values().chain(new.values()) {
        if let (Some(m), Some((p, false))) = (&e.manager, &e.pattern) {
            exact.insert((m.clone(), p.clone()));
        }
    }
    let mut out = BTreeSet::new();
    for c in changes {
        let e = c.entry();
        let (Some(m), Some((pattern, glob))) = (&e.manager, &e.pattern) else {
            continue;
        };
        if *glob {
            for (em, name) in &exact {
                if em == m && name.starts_with(pattern.as_str()) {
                    out.insert((em.clone(), name.clone()));
                }
            }
            out.insert((m.clone(), format!("{pattern}{ANY}")));
        } else {
            out.insert((m.clone(), pattern.clone()));
        }
    }
    out
}

/// The name that stands for "any package no rule names" under a glob.
const ANY: &str = "hpl-diff-any-other";

fn winners(
    old: &VerifiedBundle,
    new: &VerifiedBundle,
    packages: &BTreeSet<(String, String)>,
    now: i64,
) -> (Vec<impact::WinnerChange>, usize) {
    let tenant = new.content().manifest.tenant.clone();
    let paths = impact::scope_paths([old, new]);
    type Pair = (String, Option<impact::Winner>, Option<impact::Winner>);
    let mut grouped: BTreeMap<Pair, (u64, Vec<String>)> = BTreeMap::new();
    for path in &paths {
        let Some(inv) = impact::synthetic_device(&tenant, path, now) else {
            continue;
        };
        for (manager, name) in packages {
            let a = impact::winner(old, &inv, now, manager, name);
            let b = impact::winner(new, &inv, now, manager, name);
            if a != b {
                let package = format!("{manager}:{}", name.replace(ANY, "*"));
                let slot = grouped.entry((package, a, b)).or_default();
                slot.0 += 1;
                if slot.1.len() < 5 {
                    slot.1.push(path.label(&tenant));
                }
            }
        }
    }
    let changes = grouped
        .into_iter()
        .map(
            |((package, old, new), (paths, sample))| impact::WinnerChange {
                package,
                old,
                new,
                paths,
                sample,
            },
        )
        .collect();
    (changes, paths.len())
}

pub fn diff(
    args: &DiffArgs,
    show_progress: bool,
    out: Out<'_>,
    err: Out<'_>,
) -> std::io::Result<Exit> {
    let Some(now) = parse_time(args.at.as_deref(), err)? else {
        return Ok(Exit::Usage);
    };
    let sides = match (&args.git, args.sides.as_slice()) {
        (Some(range), rest) if rest.len() <= 1 => {
            let Some((a, b)) = range.split_once("..") else {
                writeln!(err, "error: --git takes OLD..NEW, e.g. main..HEAD")?;
                return Ok(Exit::Usage);
            };
            let dir = rest.first().cloned().unwrap_or_else(|| PathBuf::from("."));
            let b = if b.is_empty() { "HEAD" } else { b };
            (git_side(&dir, a, err)?, git_side(&dir, b, err)?)
        }
        (None, [a, b]) => (side(a, &args.keys, err)?, side(b, &args.keys, err)?),
        _ => {
            writeln!(
                err,
                "error: pass OLD and NEW (policy directories or bundles), or --git OLD..NEW [DIR]"
            )?;
            return Ok(Exit::Usage);
        }
    };
    let (Some(old), Some(new)) = sides else {
        return Ok(Exit::Failure);
    };
    let (old_entries, new_entries) = (
        effective::entries(&old.bundle),
        effective::entries(&new.bundle),
    );
    let changes = effective::diff(&old_entries, &new_entries);
    let packages = affected_packages(&changes, &old_entries, &new_entries);
    let (winners, scope_paths) = winners(&old.bundle, &new.bundle, &packages, now);
    let tenant = new.bundle.content().manifest.tenant.clone();
    let impact = match &args.inventories {
        None => None,
        Some(path) => {
            let old_device = Device::with_bundle(old.bundle.clone(), None);
            let new_device = Device::with_bundle(new.bundle.clone(), None);
            let jobs = args
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
                .clamp(1, 256);
            let mut impact = impact::Impact::default();
            let progress: Option<&mut dyn std::io::Write> =
                if show_progress { Some(&mut *err) } else { None };
            let result = crate::fleet::par_fold(
                path,
                jobs,
                progress,
                |item| match item {
                    crate::fleet::Item::Text { text, .. } => {
                        match Inventory::from_json_str(&text) {
                            Ok(inv) => Ok(impact::compare(
                                &old_device,
                                &new_device,
                                &inv,
                                now,
                                &tenant,
                            )),
                            Err(_) => Err(()),
                        }
                    }
                    crate::fleet::Item::Unreadable { .. } => Err(()),
                },
                |r| match r {
                    Ok(change) => impact.add(change.as_ref()),
                    Err(()) => impact.unreadable += 1,
                },
            );
            if let Err(e) = result {
                writeln!(err, "error: {e}")?;
                return Ok(Exit::Usage);
            }
            Some(impact)
        }
    };
    let d = Diff {
        schema: "hpl.diff.v1",
        old: old.label,
        new: new.label,
        changes,
        winners,
        scope_paths,
        impact,
        tenant_id: tenant,
    };
    match args.format {
        DiffFormat::Human => out.write_all(render::human(&d).as_bytes())?,
        DiffFormat::Markdown => out.write_all(render::markdown(&d).as_bytes())?,
        DiffFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&d).unwrap_or_default()
        )?,
    }
    Ok(if args.exit_code && !d.is_empty() {
        Exit::Failure
    } else {
        Exit::Success
    })
}
