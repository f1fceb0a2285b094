//! `hpl report`: a fleet's compliance from its inventories.
//!
//! The inventories are streamed (a directory's files, or a JSON-lines file, one at a time)
//! to one worker per core; each worker parses and evaluates with the runtime's [`Device`] and
//! sends back a [`summary::DeviceSummary`], which the main thread folds into a bounded
//! [`summary::Fleet`]. Nothing holds the inventories or the records: memory does not grow
//! with the fleet. Several `--inventories` are several reports of one fleet over time: the
//! last is the report, all of them the trend.

pub mod html;
pub use hpl_runtime::summary;

use crate::device::{open_device, parse_time, read_config, Source};
use crate::exit::Exit;
use crate::fleet::Item;
use crate::io::Out;
use clap::{Args, ValueEnum};
use hpl_runtime::device::Device;
use hpl_runtime::inventory::Inventory;
use serde::Serialize;
use std::path::{Path, PathBuf};
use summary::{DeviceSummary, Fleet, FleetReport};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Human,
    Json,
}

/// Evaluate a fleet's inventories and summarise its compliance: by state, scope, ring and
/// manager, the most common drifts and the rules behind them, the devices with unknown state.
#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub source: Source,
    /// A directory of inventory files (*.json, *.jsonl) or a JSON-lines file. Repeat it for
    /// reports of the same fleet over time, oldest first: the last is the report, all of
    /// them the trend.
    #[arg(long = "inventories", required = true, value_name = "DIR|FILE.jsonl")]
    pub inventories: Vec<PathBuf>,
    /// Evaluation time of the last input (RFC 3339). Default: now. Earlier inputs are
    /// evaluated as each device stood when it reported (at its `collected_at`).
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Also write a self-contained HTML report with charts.
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: ReportFormat,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

/// One input's report, with where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct InputReport {
    pub source: String,
    /// RFC 3339, or `collected_at` for inputs evaluated as the devices reported.
    pub evaluated_at: String,
    #[serde(flatten)]
    pub fleet: FleetReport,
}

/// A point of the trend.
#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    pub source: String,
    pub devices: u64,
    pub compliant_percent: f64,
    pub states: summary::StateCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub tenant_id: String,
    pub bundle: hpl_runtime::record::BundleRef,
    #[serde(flatten)]
    pub last: InputReport,
    pub trend: Vec<TrendPoint>,
}

/// What a worker sends back.
enum Evaluated {
    Device(Box<DeviceSummary>),
    Unreadable { source: String, error: String },
}

fn evaluate(device: &Device, tenant: &str, item: Item, at: Option<i64>) -> Evaluated {
    match item {
        Item::Unreadable { source, error } => Evaluated::Unreadable { source, error },
        Item::Text { source, text } => match Inventory::from_json_str(&text) {
            Err(e) => Evaluated::Unreadable {
                source,
                error: e.to_string(),
            },
            Ok(inv) => {
                let record = device.evaluate(&inv, at.unwrap_or(inv.collected_at));
                Evaluated::Device(Box::new(DeviceSummary::of(&inv, &record, tenant)))
            }
        },
    }
}

/// Evaluates one input on `jobs` workers; the progress line goes to `progress` when given.
fn evaluate_input(
    device: &Device,
    tenant: &str,
    path: &Path,
    at: Option<i64>,
    jobs: usize,
    progress: Option<&mut dyn std::io::Write>,
) -> Result<Fleet, String> {
    let mut fleet = Fleet::default();
    crate::fleet::par_fold(
        path,
        jobs,
        progress,
        |item| evaluate(device, tenant, item, at),
        |e| match e {
            Evaluated::Device(d) => fleet.add(&d),
            Evaluated::Unreadable { source, error } => fleet.add_unreadable(&source, &error),
        },
    )?;
    Ok(fleet)
}

pub fn report(
    args: &ReportArgs,
    progress: bool,
    out: Out<'_>,
    err: Out<'_>,
) -> std::io::Result<Exit> {
    let Some(now) = parse_time(args.at.as_deref(), err)? else {
        return Ok(Exit::Usage);
    };
    let Ok(config) = read_config(args.source.config.as_deref(), err)? else {
        return Ok(Exit::Failure);
    };
    let Some((device, _)) = open_device(&args.source, config, now, err)? else {
        return Ok(Exit::Failure);
    };
    // The snapshot is checked once (tenant, expiry) through the facade, like each device's.
    let (tenant, bundle) = match device.snapshot_at(now) {
        Ok(b) => (
            b.content().manifest.tenant.clone(),
            hpl_runtime::record::BundleRef {
                version: b.content().manifest.bundle_version,
                hash: b.hash_string(),
            },
        ),
        Err(e) => {
            writeln!(err, "error: no valid snapshot: {e}")?;
            return Ok(Exit::Failure);
        }
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .clamp(1, 256);
    let mut inputs = Vec::new();
    let count = args.inventories.len();
    for (i, path) in args.inventories.iter().enumerate() {
        let last = i + 1 == count;
        let at = last.then_some(now);
        let line: Option<&mut dyn std::io::Write> = if progress { Some(&mut *err) } else { None };
        match evaluate_input(&device, &tenant, path, at, jobs, line) {
            Ok(fleet) => inputs.push(InputReport {
                source: path.display().to_string(),
                evaluated_at: if last {
                    hpl_runtime::eval::timestamp(now)
                } else {
                    "collected_at".into()
                },
                fleet: fleet.report(),
            }),
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(Exit::Usage);
            }
        }
    }
    let trend = inputs
        .iter()
        .map(|r| TrendPoint {
            source: r.source.clone(),
            devices: r.fleet.devices,
            compliant_percent: r.fleet.compliant_percent,
            states: r.fleet.states,
        })
        .collect();
    let Some(last) = inputs.pop() else {
        return Ok(Exit::Usage);
    };
    let report = Report {
        schema: "hpl.report.v1",
        tenant_id: tenant,
        bundle,
        last,
        trend,
    };
    if let Some(path) = &args.html {
        if let Err(e) = std::fs::write(path, html::render(&report)) {
            writeln!(err, "error: cannot write {}: {e}", path.display())?;
            return Ok(Exit::Usage);
        }
    }
    match args.format {
        ReportFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        )?,
        ReportFormat::Human => out.write_all(human(&report).as_bytes())?,
    }
    Ok(Exit::Success)
}

fn bar(part: u64, total: u64, width: usize) -> String {
    let n = if total == 0 {
        0
    } else {
        ((part as f64 / total as f64) * width as f64).round() as usize
    };
    "█".repeat(n.min(width))
}

/// The report for people.
pub fn human(r: &Report) -> String {
    use std::fmt::Write as _;
    let f = &r.last.fleet;
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "fleet {} · {} devices · bundle v{} · evaluated {}",
        r.tenant_id, f.devices, r.bundle.version, r.last.evaluated_at
    );
    let _ = writeln!(w, "compliant or warning: {:.1}%\n", f.compliant_percent);
    let st = f.states;
    for (name, n) in [
        ("compliant", st.compliant),
        ("warning", st.warning),
        ("unknown", st.unknown),
        ("non_compliant", st.non_compliant),
    ] {
        let _ = writeln!(w, "  {name:<14} {n:>8}  {}", bar(n, f.devices, 40));
    }
    let _ = writeln!(w, "\nby scope");
    let _ = writeln!(
        w,
        "  {:<32} {:>8} {:>9} {:>8} {:>8} {:>14}",
        "scope", "devices", "compliant", "warning", "unknown", "non_compliant"
    );
    let mut scopes: Vec<(&String, &summary::StateCounts)> = f.by_scope.iter().collect();
    scopes.sort_by(|a, b| html::scope_order(a.0).cmp(&html::scope_order(b.0)));
    for (scope, c) in scopes {
        let _ = writeln!(
            w,
            "  {scope:<32} {:>8} {:>9} {:>8} {:>8} {:>14}",
            c.total(),
            c.compliant,
            c.warning,
            c.unknown,
            c.non_compliant
        );
    }
    let _ = writeln!(w, "\nby ring");
    for (ring, c) in &f.by_ring {
        let _ = writeln!(
            w,
            "  {ring:<32} {:>8} devices, {:>5.1}% compliant or warning",
            c.total(),
            c.compliant_percent()
        );
    }
    let _ = writeln!(w, "\nby manager (devices with violations, violations)");
    for (m, c) in &f.by_manager {
        let _ = writeln!(w, "  {m:<32} {:>8} {:>8}", c.devices, c.violations);
    }
    if !f.top_drifts.is_empty() {
        let _ = writeln!(w, "\nmost common drifts ({} distinct)", f.distinct_drifts);
        for d in &f.top_drifts {
            let rules: Vec<String> = d
                .rules
                .iter()
                .map(|r| format!("{} {}", r.policy, r.source))
                .collect();
            let _ = writeln!(
                w,
                "  {:>8}  {:<20} {}:{}  ← {}",
                d.devices,
                d.category,
                d.manager,
                d.package,
                rules.join(", ")
            );
        }
    }
    if !f.top_rules.is_empty() {
        let _ = writeln!(w, "\nrules behind the most violations (devices)");
        for r in &f.top_rules {
            let _ = writeln!(w, "  {:>8}  {} {}", r.devices, r.policy, r.source);
        }
    }
    if !f.unknown.is_empty() || f.unreadable.devices > 0 {
        let _ = writeln!(w, "\nunknown state, and why");
        for u in f
            .unknown
            .iter()
            .chain((f.unreadable.devices > 0).then_some(&f.unreadable))
        {
            let _ = writeln!(w, "  {:>8}  {}", u.devices, u.code);
            for d in &u.sample {
                let _ = writeln!(w, "            {}: {}", d.device, d.detail);
            }
        }
    }
    if r.trend.len() > 1 {
        let _ = writeln!(w, "\ntrend (compliant or warning)");
        for t in &r.trend {
            let _ = writeln!(
                w,
                "  {:<40} {:>8} devices {:>6.1}%  {}",
                t.source,
                t.devices,
                t.compliant_percent,
                bar((t.compliant_percent * 10.0) as u64, 1000, 30)
            );
        }
    }
    s
}
