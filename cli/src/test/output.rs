//! `hpl test` output: for people, as JSON (`hpl.test.v1`), as JUnit XML for CI test reports.

use super::coverage::Covered;
use super::{Run, SnapshotState, TestResult};
use std::fmt::Write as _;

fn status(r: &TestResult) -> &'static str {
    if r.passed {
        "ok"
    } else {
        "FAILED"
    }
}

fn snapshot_line(r: &TestResult) -> Option<String> {
    let path = r.snapshot_path.as_deref().unwrap_or("");
    match r.snapshot {
        SnapshotState::New => Some(format!(
            "snapshot: none accepted yet; the result waits in {path}.new \
             (hpl test --review, or --update)"
        )),
        SnapshotState::Changed => Some(format!(
            "snapshot: the result differs from {path}; the new one waits in {path}.new"
        )),
        SnapshotState::Rejected => Some(format!("snapshot: rejected; {path} stays")),
        SnapshotState::Accepted => Some(format!("snapshot: accepted into {path}")),
        SnapshotState::Matches | SnapshotState::Off => None,
    }
}

pub fn human(run: &Run, coverage: bool) -> String {
    let mut s = String::new();
    let w = &mut s;
    let n = run.results.len();
    let _ = writeln!(w, "running {n} test{}", if n == 1 { "" } else { "s" });
    for r in &run.results {
        let _ = writeln!(w, "test {} › {} ... {}", r.file, r.name, status(r));
    }
    let failed: Vec<&TestResult> = run.results.iter().filter(|r| !r.passed).collect();
    let accepted: Vec<&TestResult> = run
        .results
        .iter()
        .filter(|r| r.snapshot == SnapshotState::Accepted)
        .collect();
    for r in &accepted {
        let _ = writeln!(w, "{}", snapshot_line(r).unwrap_or_default());
    }
    if !failed.is_empty() {
        let _ = writeln!(w, "\nfailures:");
        for r in &failed {
            let _ = writeln!(w, "\n---- {} › {} ----", r.file, r.name);
            for f in &r.failures {
                let _ = writeln!(w, "  {f}");
            }
            if let Some(line) = snapshot_line(r) {
                let _ = writeln!(w, "  {line}");
            }
            if let Some(d) = &r.diff {
                let _ = writeln!(w, "  --- accepted\n  +++ new");
                for line in d.lines() {
                    let _ = writeln!(w, "  {line}");
                }
            }
            if let Some(n) = &r.new_snapshot {
                for line in n.lines() {
                    let _ = writeln!(w, "  +{line}");
                }
            }
        }
    }
    if !run.obsolete.is_empty() {
        let _ = writeln!(
            w,
            "\nobsolete snapshots (no test writes them; `hpl test --update` removes them):"
        );
        for p in &run.obsolete {
            let _ = writeln!(w, "  {}", p.display());
        }
    }
    if coverage {
        let _ = writeln!(w);
        w.push_str(&coverage_table(run));
    }
    let passed = run.results.len() - failed.len();
    let _ = writeln!(
        w,
        "\ntest result: {}. {passed} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len()
    );
    s
}

fn coverage_table(run: &Run) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "rule coverage (exercised: some test's record checked it)"
    );
    let _ = writeln!(
        w,
        "  {:<16} {:>6} {:>10} {:>16} {:>17} {:>9}",
        "policy", "rules", "exercised", "applicable only", "never applicable", "coverage"
    );
    for (policy, c) in run.coverage.per_policy() {
        let _ = writeln!(
            w,
            "  {policy:<16} {:>6} {:>10} {:>16} {:>17} {:>8.1}%",
            c.rules,
            c.exercised,
            c.applicable_only,
            c.never_applicable,
            c.percent()
        );
    }
    let t = run.coverage.total();
    let _ = writeln!(
        w,
        "  {:<16} {:>6} {:>10} {:>16} {:>17} {:>8.1}%",
        "total",
        t.rules,
        t.exercised,
        t.applicable_only,
        t.never_applicable,
        t.percent()
    );
    let missed: Vec<_> = run
        .coverage
        .rules()
        .filter(|r| r.covered != Covered::Exercised)
        .collect();
    if !missed.is_empty() {
        let _ = writeln!(w, "\nnot exercised:");
        for r in missed {
            let why = match r.covered {
                Covered::ApplicableOnly => "applicable, never decided",
                _ => "never applicable",
            };
            let _ = writeln!(w, "  {:<24} {:<44} {why}", r.source, r.rule);
        }
    }
    s
}

pub fn json(run: &Run, coverage: bool) -> String {
    let failed = run.results.iter().filter(|r| !r.passed).count();
    let mut v = serde_json::json!({
        "schema": "hpl.test.v1",
        "passed": run.results.len() - failed,
        "failed": failed,
        "tests": run.results,
        "obsolete_snapshots": run.obsolete.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    });
    if coverage {
        v["coverage"] = serde_json::json!({
            "total": run.coverage.total(),
            "percent": (run.coverage.total().percent() * 10.0).round() / 10.0,
            "policies": run.coverage.per_policy(),
            "rules": run.coverage.rules().collect::<Vec<_>>(),
        });
    }
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

pub fn junit(run: &Run) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("hpl test");
    let mut files: Vec<&str> = run.results.iter().map(|r| r.file.as_str()).collect();
    files.dedup();
    for file in files {
        let mut suite = TestSuite::new(file);
        for r in run.results.iter().filter(|r| r.file == file) {
            let status = if r.passed {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let mut lines: Vec<String> = r.failures.clone();
                lines.extend(snapshot_line(r));
                s.set_message(lines.first().cloned().unwrap_or_default());
                let mut description = lines.join("\n");
                if let Some(d) = &r.diff {
                    description.push_str("\n--- accepted\n+++ new\n");
                    description.push_str(d);
                }
                s.set_description(description);
                s
            };
            let mut case = TestCase::new(r.name.as_str(), status);
            case.set_classname(file);
            case.set_time(std::time::Duration::from_secs_f64(r.seconds));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().unwrap_or_default()
}
