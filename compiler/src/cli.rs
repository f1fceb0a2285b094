//! The `hpl` command line. `run` takes the arguments and the output streams, so tests run
//! the real CLI in-process.
//!
//! Exit codes: 0 success, 1 findings (errors, or warnings with `--deny-warnings`; files that
//! `fmt --check` would change), 2 usage or I/O errors.

use crate::check::CheckOptions;
use crate::diagnostics::{render, Code, Severity};
use crate::driver::{analyze_sources, load_files};
use crate::fmt::format_source;
use crate::source::{SourceDb, SourceFile};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

#[path = "cli_bundle.rs"]
mod bundle_cmd;

#[derive(Parser, Debug)]
#[command(
    name = "hpl",
    version,
    about = "The hpl policy toolchain for Helm developer-environment fleets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
    Sarif,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse, resolve, type-check and analyze a policy directory; print diagnostics.
    Check {
        /// Policy files or directories (every .hpl file below them is compiled together).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Treat warnings as errors (exit 1 when there are any).
        #[arg(long)]
        deny_warnings: bool,
        /// The agent's check-in interval in minutes; shorter upgrade windows are a warning.
        #[arg(long, default_value_t = 60, value_name = "MINUTES")]
        check_in_interval: u32,
    },
    /// Format policy files in the canonical layout.
    Fmt {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Change nothing; list the files that would change and exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Print the long explanation of a diagnostic code, with an example and the fix.
    Explain {
        /// A code such as HPL0401; without one, list every code.
        code: Option<String>,
    },
    /// Generate an ed25519 signing key: writes KEY and KEY.pub.
    Keygen {
        #[arg(long, value_name = "KEY")]
        out: PathBuf,
    },
    /// Compile a policy directory to a signed bundle.
    Build {
        /// The policy directory (or files).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The bundle file to write.
        #[arg(short, long, value_name = "OUT.hplb")]
        out: PathBuf,
        /// Sign with this key (repeat for several signatures).
        #[arg(long, value_name = "KEY")]
        sign_key: Vec<PathBuf>,
        /// The bundle's version; devices only move forward.
        #[arg(long, default_value_t = 1)]
        bundle_version: u64,
        /// Expiry relative to the issue time: 30d, 12h, 90m.
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        /// Issue time (RFC 3339). Default: $SOURCE_DATE_EPOCH, else now.
        #[arg(long, value_name = "RFC3339")]
        issued_at: Option<String>,
    },
    /// Check a bundle's signature and run the verifier. Exit 0 valid, 1 invalid.
    Verify {
        bundle: PathBuf,
        /// A trusted public key (repeatable).
        #[arg(long, required = true, value_name = "KEY.pub")]
        key: Vec<PathBuf>,
    },
    /// Show a bundle's manifest and tables.
    Inspect {
        bundle: PathBuf,
        /// Also disassemble every condition, with its source and origin.
        #[arg(long)]
        disasm: bool,
    },
    /// Evaluate a device inventory and print its compliance record.
    /// Exit 0 compliant or warning, 3 non_compliant, 4 unknown, 1 error.
    Eval {
        /// A signed bundle (with --key).
        #[arg(long, conflicts_with = "policy", required_unless_present_any = ["policy", "store"])]
        bundle: Option<PathBuf>,
        /// A trusted public key for --bundle (repeatable).
        #[arg(long, value_name = "KEY.pub")]
        key: Vec<PathBuf>,
        /// Compile this policy directory instead of loading a bundle.
        #[arg(long, value_name = "DIR")]
        policy: Option<PathBuf>,
        /// The device inventory (hpl.inventory.v1 JSON).
        #[arg(long, required = true)]
        inventory: PathBuf,
        /// Evaluation time (RFC 3339). Default: now.
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: RecordFormat,
        /// Append audit events (JSON lines) to this file.
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        /// The device's MDM managed configuration (JSON or plist): trusted keys, mode cap,
        /// scope hints.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Evaluate against the active snapshot of this store (needs --config or --key).
        #[arg(long, value_name = "DIR", conflicts_with_all = ["bundle", "policy"])]
        store: Option<PathBuf>,
    },
    /// May the agent run this action? Prints the decision as JSON.
    /// Exit 0 allow, 5 needs_confirmation, 6 deny, 1 error.
    Authorize {
        #[arg(long, conflicts_with = "policy")]
        bundle: Option<PathBuf>,
        #[arg(long, value_name = "KEY.pub")]
        key: Vec<PathBuf>,
        #[arg(long, value_name = "DIR")]
        policy: Option<PathBuf>,
        #[arg(long, value_name = "DIR", conflicts_with_all = ["bundle", "policy"])]
        store: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, required = true)]
        inventory: PathBuf,
        /// The action as JSON: {"action":"upgrade","manager":"homebrew_formula","package":"terraform","to":"1.10.0"}
        #[arg(long, required = true, value_name = "JSON")]
        action: String,
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
    },
    /// The offline snapshot store on a device.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
}

#[derive(Subcommand, Debug)]
enum SnapshotCommand {
    /// Verify a bundle and install it atomically if it is newer than the active one.
    Install {
        bundle: PathBuf,
        #[arg(long, required = true, value_name = "DIR")]
        store: PathBuf,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, value_name = "KEY.pub")]
        key: Vec<PathBuf>,
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        #[arg(long, default_value = "local-device")]
        device_id: String,
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
    },
    /// Show the active snapshot (exit 0), or say there is none (exit 4).
    Status {
        #[arg(long, required = true, value_name = "DIR")]
        store: PathBuf,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, value_name = "KEY.pub")]
        key: Vec<PathBuf>,
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum RecordFormat {
    Table,
    Json,
}

/// Runs the CLI; returns the process exit code.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let text = e.render().to_string();
            let _ = if e.use_stderr() {
                err.write_all(text.as_bytes())
            } else {
                out.write_all(text.as_bytes())
            };
            return code;
        }
    };
    let result = match cli.command {
        Command::Check {
            paths,
            format,
            deny_warnings,
            check_in_interval,
        } => check(
            &paths,
            format,
            deny_warnings,
            CheckOptions {
                check_in_minutes: check_in_interval,
            },
            out,
            err,
        ),
        Command::Fmt { paths, check } => fmt(&paths, check, out, err),
        Command::Explain { code } => explain(code.as_deref(), out, err),
        Command::Keygen { out: path } => bundle_cmd::keygen(&path, out, err),
        Command::Build {
            paths,
            out: path,
            sign_key,
            bundle_version,
            expires_in,
            issued_at,
        } => bundle_cmd::build(
            &paths,
            &path,
            &sign_key,
            bundle_version,
            expires_in.as_deref(),
            issued_at.as_deref(),
            out,
            err,
        ),
        Command::Verify { bundle, key } => bundle_cmd::verify(&bundle, &key, out, err),
        Command::Inspect { bundle, disasm } => bundle_cmd::inspect(&bundle, disasm, out, err),
        Command::Eval {
            bundle,
            key,
            policy,
            inventory,
            at,
            format,
            events,
            config,
            store,
        } => bundle_cmd::eval(
            &bundle_cmd::Source {
                bundle,
                keys: key,
                policy,
                store,
                config,
            },
            &inventory,
            at.as_deref(),
            format == RecordFormat::Json,
            events.as_deref(),
            out,
            err,
        ),
        Command::Authorize {
            bundle,
            key,
            policy,
            store,
            config,
            inventory,
            action,
            at,
        } => bundle_cmd::authorize(
            &bundle_cmd::Source {
                bundle,
                keys: key,
                policy,
                store,
                config,
            },
            &inventory,
            &action,
            at.as_deref(),
            out,
            err,
        ),
        Command::Snapshot { command } => match command {
            SnapshotCommand::Install {
                bundle,
                store,
                config,
                key,
                events,
                device_id,
                at,
            } => bundle_cmd::snapshot_install(
                &bundle,
                &store,
                config.as_deref(),
                &key,
                events.as_deref(),
                &device_id,
                at.as_deref(),
                out,
                err,
            ),
            SnapshotCommand::Status {
                store,
                config,
                key,
                at,
            } => bundle_cmd::snapshot_status(
                &store,
                config.as_deref(),
                &key,
                at.as_deref(),
                out,
                err,
            ),
        },
    };
    result.unwrap_or_else(|e| {
        let _ = writeln!(err, "error: cannot write output: {e}");
        2
    })
}

fn check(
    paths: &[PathBuf],
    format: Format,
    deny_warnings: bool,
    options: CheckOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<i32> {
    let files = match load_files(paths) {
        Ok(files) => files,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(2);
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
        return Ok(2);
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
        1
    } else {
        0
    })
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn fmt(
    paths: &[PathBuf],
    check: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<i32> {
    let files = match load_files(paths) {
        Ok(files) => files,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(2);
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
                        return Ok(2);
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
        1
    } else {
        0
    })
}

fn explain(code: Option<&str>, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<i32> {
    let Some(text) = code else {
        for c in Code::ALL {
            writeln!(
                out,
                "{}  {:<8} {}",
                c.as_str(),
                c.severity().as_str(),
                c.title()
            )?;
        }
        return Ok(0);
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
            Ok(0)
        }
        None => {
            let mut message = format!("error: unknown code `{text}`");
            let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
            if let Some(s) = crate::suggest::did_you_mean(&text.to_ascii_uppercase(), codes) {
                message.push_str(&format!("; did you mean {s}?"));
            }
            writeln!(err, "{message}\nrun `hpl explain` to list every code")?;
            Ok(2)
        }
    }
}
