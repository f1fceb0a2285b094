//! `hpl test`: policy tests beside the policies (docs/testing.md).
//!
//! Each test evaluates a device with the runtime's own [`Device`] (the agent's entry point)
//! against the policy directory compiled in memory, checks its expectations, and compares the
//! whole result with its accepted snapshot. Coverage counts, for every rule of the policy,
//! whether some test's record shows it decided, only applicable, or never applicable.

pub mod coverage;
mod output;
pub mod snapshot;
pub mod spec;

use crate::exit::Exit;
use crate::io::Out;
use clap::{Args, ValueEnum};
use hpl_compiler::build::compile_verified;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::diagnostics::render;
use hpl_compiler::driver::{analyze_sources, load_files};
use hpl_compiler::lower::BuildOptions;
use hpl_runtime::config::ManagedConfig;
use hpl_runtime::device::Device;
use hpl_runtime::inventory::{parse_timestamp, Inventory};
use hpl_runtime::load::{TrustedKeys, VerifiedBundle};
use hpl_runtime::record::ComplianceRecord;
use hpl_runtime::vocab::Mode;
use serde::Serialize;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    Human,
    Json,
    Junit,
}

/// Run the policy tests under each directory's `tests/`: expectations and snapshots.
/// Exit 0 all pass, 1 any failure, 2 usage or I/O.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Policy directories (default: the current one); tests are read from DIR/tests.
    pub dirs: Vec<PathBuf>,
    /// Accept every new or changed snapshot (write it as the reference).
    #[arg(long, conflicts_with = "review")]
    pub update: bool,
    /// Walk through each new or changed snapshot: accept, reject or skip.
    #[arg(long)]
    pub review: bool,
    /// Run only the tests whose `file › name` contains PATTERN.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: TestFormat,
    /// Report which rules no test exercised, per policy and in total.
    #[arg(long)]
    pub coverage: bool,
    /// Fail (exit 1) when the rule coverage is below PCT percent; implies --coverage.
    #[arg(long, value_name = "PCT")]
    pub min_coverage: Option<f64>,
}

/// What became of a test's snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotState {
    /// The result equals the accepted snapshot.
    Matches,
    /// No snapshot accepted yet: the result waits in `.snap.new`.
    New,
    /// The result differs from the accepted snapshot: it waits in `.snap.new`.
    Changed,
    /// Written as the reference (`--update`, or accepted in `--review`).
    Accepted,
    /// Rejected in `--review`: the accepted snapshot stays, the test fails.
    Rejected,
    /// The test has `snapshot = false`.
    Off,
}

/// The result of one test.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// The test file, as given.
    pub file: String,
    pub name: String,
    pub passed: bool,
    /// Why it failed, one line each (expectations, inputs).
    pub failures: Vec<String>,
    pub snapshot: SnapshotState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_path: Option<String>,
    /// For a changed snapshot: the unified diff (accepted → new).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// For a new snapshot: its text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_snapshot: Option<String>,
    #[serde(skip)]
    pub seconds: f64,
}

impl TestResult {
    fn fail_snapshot(&self) -> bool {
        matches!(
            self.snapshot,
            SnapshotState::New | SnapshotState::Changed | SnapshotState::Rejected
        )
    }

    fn settle(&mut self) {
        self.passed = self.failures.is_empty() && !self.fail_snapshot();
    }
}

/// Everything one run found.
pub struct Run {
    pub results: Vec<TestResult>,
    pub coverage: coverage::Coverage,
    /// Snapshot files no test has (left by a renamed or removed test).
    pub obsolete: Vec<PathBuf>,
}

pub fn test(
    args: &TestArgs,
    input: &mut dyn BufRead,
    out: Out<'_>,
    err: Out<'_>,
) -> std::io::Result<Exit> {
    let dirs = if args.dirs.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.dirs.clone()
    };
    let mut run = Run {
        results: Vec::new(),
        coverage: coverage::Coverage::default(),
        obsolete: Vec::new(),
    };
    let mut broken_policy = false;
    for dir in &dirs {
        match run_dir(dir, args, &mut run, err)? {
            DirOutcome::Ran => {}
            DirOutcome::PolicyErrors => broken_policy = true,
            DirOutcome::Usage => return Ok(Exit::Usage),
        }
    }
    if args.review {
        review(&mut run.results, input, out)?;
    }
    let wants_coverage = args.coverage || args.min_coverage.is_some();
    match args.format {
        TestFormat::Human => out.write_all(output::human(&run, wants_coverage).as_bytes())?,
        TestFormat::Json => writeln!(out, "{}", output::json(&run, wants_coverage))?,
        TestFormat::Junit => out.write_all(output::junit(&run).as_bytes())?,
    }
    let mut exit = if broken_policy || run.results.iter().any(|r| !r.passed) {
        Exit::Failure
    } else {
        Exit::Success
    };
    if let Some(min) = args.min_coverage {
        let total = run.coverage.total().percent();
        if total + 1e-9 < min {
            writeln!(
                err,
                "error: rule coverage {total:.1}% is below --min-coverage {min}%"
            )?;
            exit = Exit::Failure;
        }
    }
    Ok(exit)
}

enum DirOutcome {
    Ran,
    PolicyErrors,
    Usage,
}

/// The policy of `dir`, compiled in memory: no signature, no expiry (tests pick their time).
fn compile(dir: &Path, err: Out<'_>) -> std::io::Result<Result<VerifiedBundle, DirOutcome>> {
    let files = match load_files(&[dir.to_path_buf()]) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            writeln!(err, "error: no .hpl files found in {}", dir.display())?;
            return Ok(Err(DirOutcome::Usage));
        }
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(Err(DirOutcome::Usage));
        }
    };
    let analysis = analyze_sources(files, CheckOptions::default());
    if analysis.has_errors() {
        err.write_all(render::human(&analysis.db, &analysis.diagnostics).as_bytes())?;
        writeln!(
            err,
            "error: the policy in {} has errors; its tests cannot run",
            dir.display()
        )?;
        return Ok(Err(DirOutcome::PolicyErrors));
    }
    let options = BuildOptions {
        bundle_version: 0,
        issued_at: 0,
        expires_at: None,
        root: Some(dir.to_path_buf()),
    };
    match compile_verified(&analysis, &options) {
        Ok(b) => Ok(Ok(b)),
        Err(e) => {
            writeln!(err, "error: {e}")?;
            Ok(Err(DirOutcome::PolicyErrors))
        }
    }
}

fn run_dir(
    dir: &Path,
    args: &TestArgs,
    run: &mut Run,
    err: Out<'_>,
) -> std::io::Result<DirOutcome> {
    let files = match spec::discover(dir) {
        Ok(f) => f,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(DirOutcome::Usage);
        }
    };
    if files.is_empty() {
        writeln!(
            err,
            "error: no test files (*.toml) under {}",
            dir.join("tests").display()
        )?;
        return Ok(DirOutcome::Usage);
    }
    // Read every test file first: a malformed one stops the run before anything is written.
    let mut specs = Vec::new();
    for f in &files {
        match spec::read(f) {
            Ok(s) => specs.push((f.clone(), s)),
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(DirOutcome::Usage);
            }
        }
    }
    let bundle = match compile(dir, err)? {
        Ok(b) => b,
        Err(outcome) => return Ok(outcome),
    };
    run.coverage.add_policy(&bundle);
    let mut expected_snapshots = std::collections::BTreeSet::new();
    for (file, tests) in &specs {
        let mut names = std::collections::BTreeSet::new();
        for t in &tests.tests {
            let label = format!("{} › {}", file.display(), t.name);
            let path = snapshot::path(dir, file, &t.name);
            expected_snapshots.insert(path.clone());
            if !names.insert(snapshot::slug(&t.name)) {
                writeln!(
                    err,
                    "error: {}: two tests named `{}` (names must differ in letters or digits)",
                    file.display(),
                    t.name
                )?;
                return Ok(DirOutcome::Usage);
            }
            if args.filter.as_deref().is_some_and(|p| !label.contains(p)) {
                continue;
            }
            let result = run_one(file, t, &bundle, &path, args.update, &mut run.coverage);
            run.results.push(result);
        }
    }
    // Snapshots that no test writes any more: reported, removed by --update. Pending results
    // of tests that pass again are removed as they are compared (see `compare`).
    if args.filter.is_none() {
        if let Ok(entries) = std::fs::read_dir(dir.join("tests").join("snapshots")) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.to_string_lossy();
                    (name.ends_with(".snap") && !expected_snapshots.contains(p))
                        || (name.ends_with(".snap.new")
                            && !expected_snapshots.contains(&p.with_extension("")))
                })
                .collect();
            found.sort();
            for p in found {
                if args.update {
                    std::fs::remove_file(&p)?;
                } else {
                    run.obsolete.push(p);
                }
            }
        }
    }
    Ok(DirOutcome::Ran)
}

/// The MDM configuration of a test: a file, or the inline settings on top of a configuration
/// for the bundle's tenant.
fn managed_config(
    file: &Path,
    spec: Option<&spec::MdmSpec>,
    tenant: &str,
) -> Result<Option<ManagedConfig>, String> {
    match spec {
        None => Ok(None),
        Some(spec::MdmSpec::File(path)) => {
            let path = relative(file, path);
            let bytes = hpl_runtime::store::read_regular_file(
                &path,
                hpl_runtime::config::MAX_CONFIG_BYTES as u64,
            )
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            ManagedConfig::parse_bytes(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display()))
        }
        Some(spec::MdmSpec::Inline(m)) => {
            let mode_cap = match m.mode_cap.as_deref() {
                None => None,
                Some(text) => Some(Mode::from_name(text).ok_or_else(|| {
                    format!("mdm.mode_cap: `{text}` is not observe, assist or enforce")
                })?),
            };
            Ok(Some(ManagedConfig {
                tenant_id: tenant.to_string(),
                trusted_keys: TrustedKeys::new(),
                key_ids: Vec::new(),
                distribution_keys: TrustedKeys::new(),
                mode_cap,
                device_groups: m.device_groups.clone(),
                check_in_interval_minutes: 60,
            }))
        }
    }
}

fn relative(file: &Path, path: &str) -> PathBuf {
    file.parent().unwrap_or(Path::new(".")).join(path)
}

/// The device's record and the answers to the test's actions, or why the test cannot run.
fn evaluate(
    file: &Path,
    t: &spec::TestSpec,
    bundle: &VerifiedBundle,
) -> Result<(ComplianceRecord, Vec<snapshot::Asked>), String> {
    let json = spec::inventory_json(&relative(file, &t.inventory), t.set.as_ref())?;
    let inventory = Inventory::from_json(&json).map_err(|e| format!("{}: {e}", t.inventory))?;
    let at = match &t.at {
        Some(text) => parse_timestamp(text)
            .ok_or_else(|| format!("at: `{text}` is not an RFC 3339 timestamp"))?,
        None => inventory.collected_at,
    };
    let tenant = &bundle.content().manifest.tenant;
    let config = managed_config(file, t.mdm.as_ref(), tenant)?;
    let device = Device::with_bundle(bundle.clone(), config);
    let record = device.evaluate(&inventory, at);
    let asked = t
        .authorize
        .iter()
        .map(|a| {
            let request = a.request().to_string();
            snapshot::Asked {
                decision: device.authorize_json(&inventory, &request, at),
                request,
            }
        })
        .collect();
    Ok((record, asked))
}

fn run_one(
    file: &Path,
    t: &spec::TestSpec,
    bundle: &VerifiedBundle,
    snapshot_path: &Path,
    update: bool,
    coverage: &mut coverage::Coverage,
) -> TestResult {
    let started = std::time::Instant::now();
    let mut result = TestResult {
        file: file.display().to_string(),
        name: t.name.clone(),
        passed: false,
        failures: Vec::new(),
        snapshot: SnapshotState::Off,
        snapshot_path: None,
        diff: None,
        new_snapshot: None,
        seconds: 0.0,
    };
    match evaluate(file, t, bundle) {
        Err(e) => result.failures.push(e),
        Ok((record, asked)) => {
            coverage.record(&record, &asked);
            result.failures = check(t, &record, &asked);
            if t.snapshot.unwrap_or(true) {
                let body = snapshot::render(&t.name, &record, &asked);
                compare(&mut result, snapshot_path, &body, update);
            }
        }
    }
    result.settle();
    result.seconds = started.elapsed().as_secs_f64();
    result
}

/// Compares the result with the accepted snapshot; a new or changed result is written to the
/// pending `.snap.new` (or accepted at once with `--update`).
fn compare(result: &mut TestResult, path: &Path, body: &str, update: bool) {
    result.snapshot_path = Some(path.display().to_string());
    let pending = snapshot::pending(path);
    let accepted = snapshot::read(path);
    if accepted.as_deref() == Some(body) {
        result.snapshot = SnapshotState::Matches;
        let _ = std::fs::remove_file(&pending);
        return;
    }
    if update {
        match snapshot::write(path, body) {
            Ok(()) => {
                result.snapshot = SnapshotState::Accepted;
                let _ = std::fs::remove_file(&pending);
            }
            Err(e) => result
                .failures
                .push(format!("cannot write {}: {e}", path.display())),
        }
        return;
    }
    match &accepted {
        Some(old) => {
            result.snapshot = SnapshotState::Changed;
            result.diff = Some(snapshot::diff(old, body));
        }
        None => {
            result.snapshot = SnapshotState::New;
            result.new_snapshot = Some(body.to_string());
        }
    }
    if let Err(e) = snapshot::write(&pending, body) {
        result
            .failures
            .push(format!("cannot write {}: {e}", pending.display()));
    }
}

/// The expectations the test states, each checked exactly.
fn check(t: &spec::TestSpec, record: &ComplianceRecord, asked: &[snapshot::Asked]) -> Vec<String> {
    let mut failures = Vec::new();
    let Some(expect) = &t.expect else {
        check_authorizations(t, asked, &mut failures);
        return failures;
    };
    if let Some(state) = &expect.state {
        if record.state.as_str() != state {
            failures.push(format!(
                "state: expected {state}, got {}",
                record.state.as_str()
            ));
        }
    }
    if let Some(want) = &expect.violations {
        let mut unmatched: Vec<&hpl_runtime::record::Violation> =
            record.violations.iter().collect();
        for w in want {
            let found = unmatched.iter().position(|v| {
                category_name(v) == w.category
                    && v.package == w.package
                    && w.manager.as_deref().is_none_or(|m| *m == *v.manager)
                    && w.rule
                        .as_deref()
                        .is_none_or(|r| spec::names_rule(r, &v.rule))
            });
            match found {
                Some(i) => {
                    unmatched.remove(i);
                }
                None => failures.push(format!(
                    "violations: expected {} of {}{}, not in the record",
                    w.category,
                    w.package,
                    w.rule
                        .as_deref()
                        .map(|r| format!(" by {r}"))
                        .unwrap_or_default()
                )),
            }
        }
        for v in unmatched {
            failures.push(format!(
                "violations: unexpected {} of {}:{} by {} ({})",
                category_name(v),
                v.manager,
                v.package,
                v.rule.policy,
                v.rule.source
            ));
        }
    }
    if let Some(want) = &expect.remediation {
        let mut unmatched: Vec<&hpl_runtime::record::Remediation> =
            record.remediation.iter().collect();
        for w in want {
            let found = unmatched.iter().position(|x| {
                x.action.as_str() == w.action
                    && x.package == w.package
                    && w.manager.as_deref().is_none_or(|m| m == x.manager)
            });
            match found {
                Some(i) => {
                    unmatched.remove(i);
                }
                None => failures.push(format!(
                    "remediation: expected {} {}, not in the plan",
                    w.action, w.package
                )),
            }
        }
        for x in unmatched {
            failures.push(format!(
                "remediation: unexpected {} {}:{}",
                x.action, x.manager, x.package
            ));
        }
    }
    if let Some(want) = &expect.unknown {
        let mut got: Vec<String> = record
            .unknown_reasons
            .iter()
            .map(|u| u.code.as_str().to_string())
            .collect();
        got.sort();
        got.dedup();
        let mut want = want.clone();
        want.sort();
        want.dedup();
        if got != want {
            failures.push(format!(
                "unknown: expected [{}], got [{}]",
                want.join(", "),
                got.join(", ")
            ));
        }
    }
    check_authorizations(t, asked, &mut failures);
    failures
}

fn check_authorizations(t: &spec::TestSpec, asked: &[snapshot::Asked], failures: &mut Vec<String>) {
    for (a, got) in t.authorize.iter().zip(asked) {
        if let Some(want) = &a.expect {
            if got.decision.decision.as_str() != want {
                failures.push(format!(
                    "authorize {}: expected {want}, got {} ({})",
                    got.request,
                    got.decision.decision.as_str(),
                    got.decision.reason
                ));
            }
        }
        if let Some(want) = &a.rule {
            let named = got
                .decision
                .rule
                .as_ref()
                .is_some_and(|o| spec::names_rule(want, o));
            if !named {
                failures.push(format!(
                    "authorize {}: expected the rule {want}, got {}",
                    got.request,
                    got.decision
                        .rule
                        .as_ref()
                        .map_or("none".to_string(), |o| o.source.to_string())
                ));
            }
        }
    }
}

fn category_name(v: &hpl_runtime::record::Violation) -> &'static str {
    v.category.as_str()
}

/// `--review`: for each new or changed snapshot, show it and ask.
fn review(
    results: &mut [TestResult],
    input: &mut dyn BufRead,
    out: Out<'_>,
) -> std::io::Result<()> {
    let pending: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.snapshot, SnapshotState::New | SnapshotState::Changed))
        .map(|(i, _)| i)
        .collect();
    let total = pending.len();
    for (n, i) in pending.into_iter().enumerate() {
        let r = &mut results[i];
        let Some(path) = r.snapshot_path.clone().map(PathBuf::from) else {
            continue;
        };
        writeln!(out, "\n── {} of {total}: {} › {}", n + 1, r.file, r.name)?;
        match r.snapshot {
            SnapshotState::New => {
                writeln!(out, "new snapshot {}:", path.display())?;
                for line in r.new_snapshot.as_deref().unwrap_or("").lines() {
                    writeln!(out, "+{line}")?;
                }
            }
            _ => {
                writeln!(out, "changed snapshot {}:", path.display())?;
                out.write_all(r.diff.as_deref().unwrap_or("").as_bytes())?;
            }
        }
        write!(out, "accept (a), reject (r), skip (s)? ")?;
        out.flush()?;
        let mut answer = String::new();
        if input.read_line(&mut answer)? == 0 {
            writeln!(out, "\nno answer: the rest stay pending")?;
            break;
        }
        let pending = snapshot::pending(&path);
        match answer.trim() {
            "a" | "accept" => {
                let body = snapshot::read(&pending).unwrap_or_default();
                snapshot::write(&path, &body)?;
                let _ = std::fs::remove_file(&pending);
                r.snapshot = SnapshotState::Accepted;
                writeln!(out, "accepted")?;
            }
            "r" | "reject" => {
                let _ = std::fs::remove_file(&pending);
                r.snapshot = SnapshotState::Rejected;
                writeln!(out, "rejected")?;
            }
            _ => writeln!(out, "skipped: still pending")?,
        }
        r.settle();
    }
    Ok(())
}
