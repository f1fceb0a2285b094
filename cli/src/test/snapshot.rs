//! Snapshots of test results: the record and the authorization answers as stable, readable
//! text, stored in `tests/snapshots/`, compared line by line, reviewed like `cargo insta`.
//!
//! Stable: nothing that changes with an unrelated edit is in it (no bundle hash or version);
//! everything that decides the device is (state, every violation with its rule, unknown
//! reasons, the plan, every rule's result, every authorization answer).

use hpl_runtime::enforce::Decision;
use hpl_runtime::record::{ComplianceRecord, RuleOrigin, Severity};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One authorization asked by a test, with its answer.
pub struct Asked {
    pub request: String,
    pub decision: Decision,
}

fn origin(o: &RuleOrigin) -> String {
    format!(
        "{} v{} {} {}",
        o.policy, o.policy_version, o.scope, o.source
    )
}

/// The snapshot text of a test's result.
pub fn render(test: &str, record: &ComplianceRecord, asked: &[Asked]) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "test: {test}");
    let _ = writeln!(
        w,
        "device: {} ({}) at {}",
        record.device_id, record.tenant_id, record.evaluated_at
    );
    let _ = writeln!(
        w,
        "policies: {}",
        record
            .policies
            .iter()
            .map(|p| format!("{} v{}", p.id, p.version))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(w, "state: {}", record.state.as_str());
    if !record.violations.is_empty() {
        let _ = writeln!(w, "\nviolations:");
        for v in &record.violations {
            let mark = if v.severity == Severity::Error {
                "error"
            } else {
                "warn "
            };
            let _ = writeln!(
                w,
                "  {mark} {} {}:{} expected {} found {} -> {}",
                v.category.as_str(),
                v.manager,
                v.package,
                v.expected,
                v.found.as_deref().unwrap_or("nothing"),
                v.action
            );
            let _ = writeln!(w, "        by {}", origin(&v.rule));
            if let Some(reason) = &v.reason {
                let _ = writeln!(w, "        because {reason:?}");
            }
        }
    }
    if !record.unknown_reasons.is_empty() {
        let _ = writeln!(w, "\nunknown:");
        for u in &record.unknown_reasons {
            let _ = writeln!(w, "  {}: {}", u.code, u.message);
            if let Some(r) = &u.rule {
                let _ = writeln!(w, "        by {}", origin(r));
            }
        }
    }
    if !record.remediation.is_empty() {
        let _ = writeln!(w, "\nremediation:");
        for x in &record.remediation {
            let to =
                x.to.as_deref()
                    .map(|t| format!(" to {t}"))
                    .unwrap_or_default();
            let mut how = vec![x.mode.as_str().to_string(), format!("{} phase", x.phase)];
            if x.guarded {
                how.push("guarded".into());
            }
            if x.manual {
                how.push("manual".into());
            } else if x.automatic {
                how.push("automatic".into());
            } else if x.needs_confirmation {
                how.push("needs confirmation".into());
            }
            if let Some(t) = &x.not_before {
                how.push(format!("not before {t}"));
            }
            if let Some(p) = x.pin {
                how.push(format!("{} pin", p.as_str()));
            }
            let _ = writeln!(
                w,
                "  {} {}:{}{to} ({})",
                x.action,
                x.manager,
                x.package,
                how.join(", ")
            );
            if let Some(note) = &x.note {
                let _ = writeln!(w, "        note: {note}");
            }
        }
    }
    if !record.rules.is_empty() {
        let _ = writeln!(w, "\nrules:");
        for r in &record.rules {
            let _ = writeln!(
                w,
                "  {:<7} {} {}  {}",
                r.result.as_str(),
                r.kind.as_str(),
                r.target,
                r.rule.source
            );
            if let Some(note) = &r.note {
                let _ = writeln!(w, "          note: {note}");
            }
        }
    }
    if !asked.is_empty() {
        let _ = writeln!(w, "\nauthorize:");
        for a in asked {
            let _ = writeln!(w, "  {}", a.request);
            let _ = writeln!(
                w,
                "    -> {}: {}",
                a.decision.decision.as_str(),
                a.decision.reason
            );
            if let Some(r) = &a.decision.rule {
                let _ = writeln!(w, "       by {}", origin(r));
            }
            for p in &a.decision.packages {
                let _ = writeln!(
                    w,
                    "       {} {}: {} ({})",
                    p.step.as_str(),
                    p.package,
                    p.decision.as_str(),
                    p.reason
                );
            }
        }
    }
    s
}

/// The header every snapshot file starts with; the comparison ignores it.
const HEADER: &str =
    "# hpl test snapshot: review changes with `hpl test --review` (or `--update`)\n";

/// Where a test's snapshot lives: `<dir>/tests/snapshots/<file stem>__<test slug>.snap`.
pub fn path(policy_dir: &Path, test_file: &Path, test: &str) -> PathBuf {
    let stem = test_file
        .strip_prefix(policy_dir.join("tests"))
        .unwrap_or(test_file)
        .with_extension("")
        .to_string_lossy()
        .replace(['/', '\\'], "__");
    policy_dir
        .join("tests")
        .join("snapshots")
        .join(format!("{stem}__{}.snap", slug(test)))
}

/// A file-name-safe form of a test name: lower case, `-` between words.
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    while s.ends_with('-') {
        s.pop();
    }
    if s.is_empty() {
        s.push_str("test");
    }
    s
}

/// The pending file of a snapshot: the new result waiting for review.
pub fn pending(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

/// The accepted text (without the header), if there is one.
pub fn read(path: &Path) -> Option<String> {
    let bytes = hpl_runtime::store::read_regular_file(path, crate::io::MAX_TEXT_BYTES).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    Some(text.strip_prefix(HEADER).unwrap_or(&text).to_string())
}

pub fn write(path: &Path, body: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, format!("{HEADER}{body}"))
}

/// A unified diff of the accepted snapshot and the new result, for people.
pub fn diff(old: &str, new: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut s = String::new();
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        let _ = write!(s, "{hunk}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("Platform laptop: drifts from pins!"),
            "platform-laptop-drifts-from-pins"
        );
        assert_eq!(slug("***"), "test");
    }

    #[test]
    fn the_diff_shows_removed_and_added_lines() {
        let d = diff("state: compliant\na\n", "state: warning\na\n");
        assert!(d.contains("-state: compliant"), "{d}");
        assert!(d.contains("+state: warning"), "{d}");
    }
}
