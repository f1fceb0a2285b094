//! The author family: `hpl check`, `fmt`, `explain`.

use crate::exit::Exit;
use crate::io::Out;
use clap::{Args, ValueEnum};
use hpl_compiler::check::CheckOptions;
use hpl_compiler::diagnostics::{render, Code, Severity};
use hpl_compiler::driver::{analyze_sources, load_files};
use hpl_compiler::fmt::format_source;
use hpl_compiler::source::{SourceDb, SourceFile};
use std::path::PathBuf;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Sarif,
}

/// Parse, resolve, type-check and analyze a policy directory; print diagnostics.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Policy files or directories (every .hpl file below them is compiled together).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Treat warnings as errors (exit 1 when there are any).
    #[arg(long)]
    pub deny_warnings: bool,
    /// The agent's check-in interval in minutes; shorter upgrade windows are a warning.
    #[arg(long, default_value_t = 60, value_name = "MINUTES")]
    pub check_in_interval: u32,
}

/// Format policy files in the canonical layout.
#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Files or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Change nothing; list the files that would change and exit 1 if there are any.
    #[arg(long)]
    pub check: bool,
}

/// Print the long explanation of a diagnostic code, with an example and the fix.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// A code such as HPL0401; without one, list every code.
    pub code: Option<String>,
}

pub fn check(args: &CheckArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let (paths, format, deny_warnings) = (&args.paths, args.format, args.deny_warnings);
    let options = CheckOptions {
        check_in_minutes: args.check_in_interval,
    };
    let files = match load_files(paths) {
        Ok(files) => files,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(Exit::Usage);
        }
    };
    if files.is_empty() {
        writeln!(
            err,
            "error: no .hpl files found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        return Ok(Exit::Usage);
    }
    let analysis = analyze_sources(files, options);
    let diagnostics = &analysis.diagnostics;
    match format {
        Format::Human => out.write_all(render::human(&analysis.db, diagnostics).as_bytes())?,
        Format::Json => writeln!(out, "{}", pretty(&render::json(&analysis.db, diagnostics)))?,
        Format::Sarif => writeln!(out, "{}", pretty(&render::sarif(&analysis.db, diagnostics)))?,
    }
    let errors = diagnostics.iter().any(|d| d.severity == Severity::Error);
    let warnings = diagnostics.iter().any(|d| d.severity == Severity::Warning);
    Ok(if errors || (deny_warnings && warnings) {
        Exit::Failure
    } else {
        Exit::Success
    })
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

pub fn fmt(args: &FmtArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let (paths, check) = (&args.paths, args.check);
    let files = match load_files(paths) {
        Ok(files) => files,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(Exit::Usage);
        }
    };
    let mut changed = 0;
    let mut failed = false;
    for file in files {
        match format_source(&file.text) {
            Ok(formatted) if formatted == file.text => {}
            Ok(formatted) => {
                changed += 1;
                if check {
                    writeln!(out, "{}", file.name)?;
                } else if let Some(path) = &file.path {
                    if let Err(e) = std::fs::write(path, formatted) {
                        writeln!(err, "error: cannot write {}: {e}", path.display())?;
                        return Ok(Exit::Usage);
                    }
                    writeln!(out, "formatted {}", file.name)?;
                }
            }
            Err(diagnostics) => {
                failed = true;
                let mut db = SourceDb::default();
                let id = db.add(SourceFile::new(file.name.clone(), file.text.clone()));
                let diagnostics: Vec<_> = diagnostics
                    .into_iter()
                    .map(|mut d| {
                        d.primary.span.file = id;
                        for r in &mut d.related {
                            r.span.file = id;
                        }
                        d.suggestion = None;
                        d
                    })
                    .collect();
                writeln!(
                    err,
                    "error: {} has syntax errors and was not formatted",
                    file.name
                )?;
                err.write_all(render::human(&db, &diagnostics).as_bytes())?;
            }
        }
    }
    if check && changed > 0 {
        writeln!(
            err,
            "{changed} file{} would be reformatted",
            if changed == 1 { "" } else { "s" }
        )?;
    }
    Ok(if failed || (check && changed > 0) {
        Exit::Failure
    } else {
        Exit::Success
    })
}

pub fn explain(args: &ExplainArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let Some(text) = args.code.as_deref() else {
        for c in Code::ALL {
            writeln!(
                out,
                "{}  {:<8} {}",
                c.as_str(),
                c.severity().as_str(),
                c.title()
            )?;
        }
        return Ok(Exit::Success);
    };
    match Code::parse(text) {
        Some(c) => {
            writeln!(
                out,
                "{} ({}): {}\n",
                c.as_str(),
                c.severity().as_str(),
                c.title()
            )?;
            writeln!(out, "{}", c.explanation())?;
            Ok(Exit::Success)
        }
        None => {
            let mut message = format!("error: unknown code `{text}`");
            let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
            if let Some(s) = hpl_compiler::suggest::did_you_mean(&text.to_ascii_uppercase(), codes)
            {
                message.push_str(&format!("; did you mean {s}?"));
            }
            writeln!(err, "{message}\nrun `hpl explain` to list every code")?;
            Ok(Exit::Usage)
        }
    }
}
