//! The device family: `hpl eval`, `authorize`, `snapshot`. Every question goes to the
//! runtime's device facade ([`Device`]); this module only finds the inputs and prints.

use crate::bundle::{analyze_dir, root_of, trusted_keys};
use crate::exit::Exit;
use crate::io::{read_text, Out};
use clap::{Args, Subcommand, ValueEnum};
use hpl_compiler::build::compile_verified;
use hpl_compiler::driver::Analysis;
use hpl_compiler::lower::BuildOptions;
use hpl_runtime::config::ManagedConfig;
use hpl_runtime::device::Device;
use hpl_runtime::inventory::{parse_timestamp, Inventory};
use hpl_runtime::load::{load, TrustedKeys};
use hpl_runtime::record::ComplianceRecord;
use hpl_runtime::store::{install_event, SnapshotStore};
use std::path::{Path, PathBuf};

/// Where the bundle comes from, and the device's managed configuration.
#[derive(Args, Debug)]
pub struct Source {
    /// A signed bundle (with --key or --config).
    #[arg(long, conflicts_with = "policy", required_unless_present_any = ["policy", "store"])]
    pub bundle: Option<PathBuf>,
    /// A trusted public key for --bundle (repeatable).
    #[arg(long = "key", value_name = "KEY.pub")]
    pub keys: Vec<PathBuf>,
    /// Compile this policy directory instead of loading a bundle.
    #[arg(long, value_name = "DIR")]
    pub policy: Option<PathBuf>,
    /// Use the active snapshot of this store (needs --config or --key).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["bundle", "policy"])]
    pub store: Option<PathBuf>,
    /// The device's MDM managed configuration (JSON or plist): trusted keys, tenant, mode
    /// cap, scope hints.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecordFormat {
    Table,
    Json,
}

/// Evaluate a device inventory and print its compliance record.
/// Exit 0 compliant or warning, 3 non_compliant, 4 unknown, 1 error.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub source: Source,
    /// The device inventory (hpl.inventory.v1 JSON).
    #[arg(long, required = true)]
    pub inventory: PathBuf,
    /// Evaluation time (RFC 3339). Default: now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: RecordFormat,
    /// Append audit events (JSON lines) to this file.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

/// May the agent run this action? Prints the decision as JSON.
/// Exit 0 allow, 5 needs_confirmation, 6 deny, 1 error.
#[derive(Args, Debug)]
pub struct AuthorizeArgs {
    #[command(flatten)]
    pub source: Source,
    #[arg(long, required = true)]
    pub inventory: PathBuf,
    /// The action as JSON: {"action":"upgrade","manager":"homebrew_formula","package":"terraform","to":"1.10.0"}
    #[arg(long, required = true, value_name = "JSON")]
    pub action: String,
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Verify a bundle and install it atomically if it is newer than the active one.
    Install(InstallArgs),
    /// Show the active snapshot (exit 0), or say there is none (exit 4).
    Status(StatusArgs),
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// The bundle (optional with --manifest when the store already holds the bundle it names).
    #[arg(required_unless_present = "manifest")]
    pub bundle: Option<PathBuf>,
    /// A ring manifest signed by the distribution role (needs --config with
    /// `distribution_keys`): install the bundle it names, newer or older.
    #[arg(long, value_name = "FILE.hplm")]
    pub manifest: Option<PathBuf>,
    #[arg(long, required = true, value_name = "DIR")]
    pub store: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, value_name = "KEY.pub")]
    pub key: Vec<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    #[arg(long, default_value = "local-device")]
    pub device_id: String,
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long, required = true, value_name = "DIR")]
    pub store: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, value_name = "KEY.pub")]
    pub key: Vec<PathBuf>,
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
}

pub fn snapshot(command: &SnapshotCommand, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    match command {
        SnapshotCommand::Install(args) => snapshot_install(args, out, err),
        SnapshotCommand::Status(args) => snapshot_status(args, out, err),
    }
}

pub(crate) fn parse_time(at: Option<&str>, err: Out<'_>) -> std::io::Result<Option<i64>> {
    match at {
        Some(text) => match parse_timestamp(text) {
            Some(t) => Ok(Some(t)),
            None => {
                writeln!(err, "error: `{text}` is not an RFC 3339 timestamp")?;
                Ok(None)
            }
        },
        None => Ok(Some(jiff::Timestamp::now().as_second())),
    }
}

pub(crate) fn read_config(
    path: Option<&Path>,
    err: Out<'_>,
) -> std::io::Result<Result<Option<ManagedConfig>, ()>> {
    let Some(path) = path else {
        return Ok(Ok(None));
    };
    // Bytes, not text: MDM profiles may be binary property lists.
    let bytes = match hpl_runtime::store::read_regular_file(
        path,
        hpl_runtime::config::MAX_CONFIG_BYTES as u64,
    ) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: cannot read {}: {e}", path.display())?;
            return Ok(Err(()));
        }
    };
    match ManagedConfig::parse_bytes(&bytes) {
        Ok(c) => Ok(Ok(Some(c))),
        Err(e) => {
            writeln!(err, "error: {}: {e}", path.display())?;
            Ok(Err(()))
        }
    }
}

/// The keys to trust: the configuration's, else `--key` files.
fn keys_for(
    config: Option<&ManagedConfig>,
    keys: &[PathBuf],
    err: Out<'_>,
) -> std::io::Result<Option<TrustedKeys>> {
    match config {
        Some(c) => Ok(Some(c.trusted_keys.clone())),
        None if keys.is_empty() => {
            writeln!(err, "error: pass --key (or --config with trusted_keys)")?;
            Ok(None)
        }
        None => trusted_keys(keys, err),
    }
}

/// Opens the device's snapshot store with the configuration's (or `--key`) trust.
fn open_store(
    dir: &Path,
    config: Option<&ManagedConfig>,
    keys: &[PathBuf],
    err: Out<'_>,
) -> std::io::Result<Option<SnapshotStore>> {
    let Some(trusted) = keys_for(config, keys, err)? else {
        return Ok(None);
    };
    match SnapshotStore::open(dir, trusted, config.map(|c| c.tenant_id.clone())) {
        // The distribution role's keys come only from MDM (docs/distribution.md).
        Ok(s) => Ok(Some(match config {
            Some(c) => s.with_distribution_keys(c.distribution_keys.clone()),
            None => s,
        })),
        Err(e) => {
            writeln!(err, "error: cannot open the store {}: {e}", dir.display())?;
            Ok(None)
        }
    }
}

/// The device the command asks: its MDM configuration and its snapshot (from the store, a
/// bundle file, or a policy directory compiled in memory). All device logic is the runtime's
/// [`Device`]; this only finds the inputs.
pub(crate) fn open_device(
    source: &Source,
    config: Option<ManagedConfig>,
    now: i64,
    err: Out<'_>,
) -> std::io::Result<Option<(Device, Option<Analysis>)>> {
    let mut compiled = None;
    let device = if let Some(dir) = &source.store {
        let Some(store) = open_store(dir, config.as_ref(), &source.keys, err)? else {
            return Ok(None);
        };
        Device::from_store(&store, now, config)
    } else if let Some(bundle) = &source.bundle {
        let Some(keys) = keys_for(config.as_ref(), &source.keys, err)? else {
            return Ok(None);
        };
        let bytes = match crate::io::read_bundle(bundle) {
            Ok(b) => b,
            Err(e) => {
                writeln!(err, "error: cannot read {}: {e}", bundle.display())?;
                return Ok(None);
            }
        };
        match load(&bytes, &keys) {
            Ok(b) => Device::with_bundle(b, config),
            Err(e) => {
                writeln!(
                    err,
                    "error: {} rejected ({}): {e}",
                    bundle.display(),
                    e.code()
                )?;
                return Ok(None);
            }
        }
    } else if let Some(dir) = &source.policy {
        let paths = vec![dir.to_path_buf()];
        let Some(analysis) = analyze_dir(&paths, err)? else {
            return Ok(None);
        };
        let options = BuildOptions {
            bundle_version: 0,
            issued_at: now,
            expires_at: None,
            root: root_of(&paths),
        };
        match compile_verified(&analysis, &options) {
            Ok(b) => {
                compiled = Some(analysis);
                Device::with_bundle(b, config)
            }
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(None);
            }
        }
    } else {
        writeln!(err, "error: pass --bundle with --key, --policy, or --store")?;
        return Ok(None);
    };
    Ok(Some((
        device.with_local_zone(jiff::tz::TimeZone::system()),
        compiled,
    )))
}

pub(crate) fn read_inventory(path: &Path, err: Out<'_>) -> std::io::Result<Option<Inventory>> {
    let Some(text) = read_text(path, err)? else {
        return Ok(None);
    };
    match Inventory::from_json_str(&text) {
        Ok(inv) => Ok(Some(inv)),
        Err(e) => {
            writeln!(err, "error: {}: {e}", path.display())?;
            Ok(None)
        }
    }
}

fn append_events(
    path: Option<&Path>,
    events: &[hpl_runtime::events::Event],
    err: Out<'_>,
) -> std::io::Result<bool> {
    let Some(path) = path else { return Ok(true) };
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| hpl_runtime::events::append(&mut f, events));
    if let Err(e) = result {
        writeln!(
            err,
            "error: cannot append events to {}: {e}",
            path.display()
        )?;
        return Ok(false);
    }
    Ok(true)
}

/// What the device commands need: the time, the device (configuration and snapshot), the
/// inventory, and the policy's sources when it was compiled from a directory.
pub(crate) struct Inputs {
    pub now: i64,
    pub device: Device,
    pub inventory: Inventory,
    pub analysis: Option<Analysis>,
}

/// The [`Inputs`]; `None` after saying what could not be read.
pub(crate) fn device_inputs(
    source: &Source,
    inventory: &Path,
    at: Option<&str>,
    err: Out<'_>,
) -> std::io::Result<Option<Inputs>> {
    let Some(now) = parse_time(at, err)? else {
        return Ok(None);
    };
    let Ok(config) = read_config(source.config.as_deref(), err)? else {
        return Ok(None);
    };
    let Some((device, analysis)) = open_device(source, config, now, err)? else {
        return Ok(None);
    };
    let Some(inventory) = read_inventory(inventory, err)? else {
        return Ok(None);
    };
    Ok(Some(Inputs {
        now,
        device,
        inventory,
        analysis,
    }))
}

pub fn eval(args: &EvalArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let (json, events) = (args.format == RecordFormat::Json, args.events.as_deref());
    let Some(Inputs {
        now,
        device,
        inventory: inv,
        ..
    }) = device_inputs(&args.source, &args.inventory, args.at.as_deref(), err)?
    else {
        return Ok(Exit::Failure);
    };
    let record = device.evaluate(&inv, now);
    if !append_events(events, &hpl_runtime::events::from_record(&record, now), err)? {
        return Ok(Exit::Failure);
    }
    if json {
        writeln!(out, "{}", record.to_json_pretty())?;
    } else {
        out.write_all(table(&record).as_bytes())?;
    }
    Ok(Exit::of_state(record.state))
}

pub fn authorize(args: &AuthorizeArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let Some(Inputs {
        now,
        device,
        inventory: inv,
        ..
    }) = device_inputs(&args.source, &args.inventory, args.at.as_deref(), err)?
    else {
        return Ok(Exit::Failure);
    };
    let action = args.action.as_str();
    // A request the runtime cannot read is denied (exit 6), like any other refusal.
    let decision = device.authorize_json(&inv, action, now);
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&decision).unwrap_or_default()
    )?;
    Ok(Exit::of_verdict(decision.decision))
}

pub fn snapshot_install(args: &InstallArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let (bundle, store_dir, config) = (
        args.bundle.as_deref(),
        args.store.as_path(),
        args.config.as_deref(),
    );
    let (keys, events, device_id, at) = (
        &args.key,
        args.events.as_deref(),
        args.device_id.as_str(),
        args.at.as_deref(),
    );
    let Some(now) = parse_time(at, err)? else {
        return Ok(Exit::Failure);
    };
    let Ok(config) = read_config(config, err)? else {
        return Ok(Exit::Failure);
    };
    let tenant = config.as_ref().map(|c| c.tenant_id.clone());
    let Some(store) = open_store(store_dir, config.as_ref(), keys, err)? else {
        return Ok(Exit::Failure);
    };
    let bytes = match bundle.map(crate::io::read_bundle).transpose() {
        Ok(b) => b,
        Err(e) => {
            let shown = bundle.map(|b| b.display().to_string()).unwrap_or_default();
            writeln!(err, "error: cannot read {shown}: {e}")?;
            return Ok(Exit::Failure);
        }
    };
    let result = match (&args.manifest, &bytes) {
        (Some(path), _) => {
            let manifest = match hpl_runtime::store::read_regular_file(path, 64 * 1024) {
                Ok(m) => m,
                Err(e) => {
                    writeln!(err, "error: cannot read {}: {e}", path.display())?;
                    return Ok(Exit::Failure);
                }
            };
            store.install_manifest(&manifest, bytes.as_deref(), now)
        }
        (None, Some(bytes)) => store.install(bytes, now),
        (None, None) => {
            writeln!(err, "error: pass a bundle, or --manifest")?;
            return Ok(Exit::Usage);
        }
    };
    let tenant_id = tenant.unwrap_or_else(|| {
        result
            .as_ref()
            .map(|b| b.content().manifest.tenant.clone())
            .unwrap_or_default()
    });
    let event = install_event(
        &result,
        &tenant_id,
        device_id,
        &format!("install-{now}"),
        now,
    );
    if !append_events(events, &[event], err)? {
        return Ok(Exit::Failure);
    }
    match result {
        Ok(b) => {
            writeln!(
                out,
                "applied: bundle version {} ({})",
                b.content().manifest.bundle_version,
                b.hash_string()
            )?;
            Ok(Exit::Success)
        }
        Err(r) => {
            writeln!(out, "rejected ({}): {r}", r.code())?;
            Ok(Exit::Failure)
        }
    }
}

pub fn snapshot_status(args: &StatusArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let (store_dir, config, keys, at) = (
        args.store.as_path(),
        args.config.as_deref(),
        &args.key,
        args.at.as_deref(),
    );
    let Some(now) = parse_time(at, err)? else {
        return Ok(Exit::Failure);
    };
    let Ok(config) = read_config(config, err)? else {
        return Ok(Exit::Failure);
    };
    let Some(store) = open_store(store_dir, config.as_ref(), keys, err)? else {
        return Ok(Exit::Failure);
    };
    match store.active(now) {
        Some(b) => {
            let m = &b.content().manifest;
            writeln!(
                out,
                "active: tenant {}, bundle version {}, {}",
                m.tenant,
                m.bundle_version,
                b.hash_string()
            )?;
            Ok(Exit::Success)
        }
        None => {
            writeln!(out, "no valid snapshot")?;
            Ok(Exit::Unknown)
        }
    }
}

/// The record for people: state, violations grouped by manager with their origins.
pub fn table(r: &ComplianceRecord) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "device {} ({})  {}",
        r.device_id,
        r.tenant_id,
        r.state.as_str().to_uppercase().replace('_', "-")
    );
    let _ = writeln!(
        w,
        "bundle v{} {}  evaluated {}",
        r.bundle.version, r.bundle.hash, r.evaluated_at
    );
    let _ = writeln!(
        w,
        "policies {}",
        r.policies
            .iter()
            .map(|p| format!("{} v{}", p.id, p.version))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut managers: Vec<&str> = r.violations.iter().map(|v| &*v.manager).collect();
    managers.dedup();
    let mut seen = std::collections::BTreeSet::new();
    managers.retain(|m| seen.insert(*m));
    for m in managers {
        let _ = writeln!(w, "\n{m}");
        for v in r.violations.iter().filter(|v| &*v.manager == m) {
            let mark = if v.severity == hpl_runtime::record::Severity::Error {
                "✗"
            } else {
                "!"
            };
            let category = v.category.as_str();
            let _ = writeln!(
                w,
                "  {mark} {category:<20} {:<24} expected {:<18} found {:<18} {:<9} {} v{} {} {}",
                v.package,
                v.expected,
                v.found.as_deref().unwrap_or("—"),
                v.action,
                v.rule.policy,
                v.rule.policy_version,
                v.rule.scope,
                v.rule.source
            );
        }
    }
    if !r.unknown_reasons.is_empty() {
        let _ = writeln!(w, "\nunknown");
        for u in &r.unknown_reasons {
            let at = u
                .rule
                .as_ref()
                .map(|o| format!("  ({} {})", o.policy, o.source))
                .unwrap_or_default();
            let _ = writeln!(w, "  ? {:<24} {}{at}", u.code, u.message);
        }
    }
    if !r.remediation.is_empty() {
        let _ = writeln!(w, "\nremediation");
        for x in &r.remediation {
            let when = if x.manual {
                format!(
                    "manual: {}",
                    x.note.as_deref().unwrap_or("the manager cannot do it")
                )
            } else if x.automatic {
                "automatic now".to_string()
            } else if let Some(t) = &x.not_before {
                format!("automatic from {t}")
            } else {
                "needs confirmation".to_string()
            };
            let guarded = if x.guarded { ", guarded" } else { "" };
            let to =
                x.to.as_deref()
                    .map(|t| format!(" to {t}"))
                    .unwrap_or_default();
            let _ = writeln!(
                w,
                "  {:<10} {}:{}{to}  ({}, {} phase{guarded}, {when})",
                x.action, x.manager, x.package, x.mode, x.phase
            );
        }
    }
    let errors = r
        .violations
        .iter()
        .filter(|v| v.severity == hpl_runtime::record::Severity::Error)
        .count();
    let _ = writeln!(
        w,
        "\n{} violations ({errors} errors), {} unknown, {} rules evaluated",
        r.violations.len(),
        r.unknown_reasons.len(),
        r.rules.len()
    );
    s
}
