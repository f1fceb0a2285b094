//! `hpl test`: the example suite, snapshots that never pass silently, review, coverage, and the
//! formats CI reads.

mod common;
use common::hpl;
use std::path::{Path, PathBuf};

/// Runs `hpl` with `input` as the answers to its questions.
fn hpl_answering(args: &[&str], input: &str) -> (i32, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("hpl").chain(args.iter().copied());
    let code = hpl_cli::run_with_input(argv, &mut input.as_bytes(), &mut out, &mut err);
    (
        code,
        String::from_utf8(out).expect("utf-8"),
        String::from_utf8(err).expect("utf-8"),
    )
}

#[test]
fn the_example_suite_passes_with_its_coverage() {
    let (exit, out, err) = hpl(&[
        "test",
        "../examples/acme",
        "--coverage",
        "--min-coverage",
        "90",
    ]);
    assert_eq!(exit, 0, "{out}{err}");
    assert!(out.contains("25 passed; 0 failed"), "{out}");
    insta::assert_snapshot!("acme_test_human", out);
}

#[test]
fn the_example_suite_as_json_and_junit() {
    let (exit, out, _) = hpl(&["test", "../examples/acme", "--format", "json", "--coverage"]);
    assert_eq!(exit, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["schema"], "hpl.test.v1");
    assert_eq!(v["failed"], 0);
    assert_eq!(v["coverage"]["percent"], 99.1);
    insta::assert_json_snapshot!("acme_test_json_coverage", v["coverage"]["policies"]);
    let (exit, out, _) = hpl(&[
        "test",
        "../examples/acme",
        "--format",
        "junit",
        "--filter",
        "precedence",
    ]);
    assert_eq!(exit, 0);
    insta::assert_snapshot!("acme_test_junit", without_times(&out));
}

/// JUnit carries durations; the snapshot does not.
fn without_times(xml: &str) -> String {
    let mut s = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find(" time=\"") {
        s.push_str(&rest[..i]);
        let after = &rest[i + 7..];
        let end = after.find('"').map_or(after.len(), |e| e + 1);
        s.push_str(" time=\"[t]\"");
        rest = &after[end..];
    }
    s.push_str(rest);
    s
}

#[test]
fn coverage_below_the_threshold_fails() {
    let (exit, _, err) = hpl(&["test", "../examples/acme", "--min-coverage", "100"]);
    assert_eq!(exit, 1);
    assert!(
        err.contains("rule coverage 99.1% is below --min-coverage 100%"),
        "{err}"
    );
}

/// A policy directory of its own, in a temporary folder.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("hpl-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tests")).unwrap();
        let f = Fixture { dir };
        f.policy("require brew:git >= 2.40");
        f.write(
            "laptop.json",
            r#"{"schema":"hpl.inventory.v1","tenant_id":"t","device_id":"D1",
               "collected_at":"2026-11-29T01:00:00Z","scopes":{},
               "device":{"arch":"arm64","os":{"name":"macos","version":"15.3"},"facts":{}},
               "managers":[{"id":"homebrew_formula","packages":[
                 {"name":"git","versions":["2.47.1"]},{"name":"telnet","versions":["0.17"]}]}]}"#,
        );
        f.write(
            "tests/laptop.toml",
            r#"[[test]]
name = "the laptop"
inventory = "../laptop.json"
"#,
        );
        f
    }

    fn policy(&self, rule: &str) {
        self.write(
            "policy.hpl",
            &format!(
                "tenant t\n\npolicy base version 1 {{\n  scope org\n  mode enforce\n\n  {rule}\n}}\n"
            ),
        );
    }

    fn write(&self, path: &str, text: &str) {
        let p = self.dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn snap(&self) -> PathBuf {
        self.dir.join("tests/snapshots/laptop__the-laptop.snap")
    }

    fn test(&self, extra: &[&str], input: &str) -> (i32, String, String) {
        let mut args = vec!["test", self.path()];
        args.extend_from_slice(extra);
        let (exit, out, err) = hpl_answering(&args, input);
        (
            exit,
            out.replace(self.path(), "[dir]"),
            err.replace(self.path(), "[dir]"),
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn exists(p: &Path) -> bool {
    p.exists()
}

#[test]
fn a_new_snapshot_fails_until_it_is_accepted_in_review() {
    let f = Fixture::new("review");
    let pending = f.dir.join("tests/snapshots/laptop__the-laptop.snap.new");
    let (exit, out, _) = f.test(&[], "");
    assert_eq!(
        exit, 1,
        "a test without an accepted snapshot never passes: {out}"
    );
    assert!(out.contains("none accepted yet"), "{out}");
    assert!(exists(&pending) && !exists(&f.snap()));
    // Still pending on the second run: nothing was accepted behind the author's back.
    assert_eq!(f.test(&[], "").0, 1);
    let (exit, out, _) = f.test(&["--review"], "a\n");
    assert_eq!(exit, 0, "{out}");
    assert!(out.contains("1 of 1") && out.contains("accepted"), "{out}");
    assert!(exists(&f.snap()) && !exists(&pending));
    assert_eq!(f.test(&[], "").0, 0);
}

#[test]
fn a_changed_result_fails_with_a_readable_diff_and_rejecting_keeps_the_old_snapshot() {
    let f = Fixture::new("diff");
    assert_eq!(f.test(&["--update"], "").0, 0);
    let accepted = std::fs::read_to_string(f.snap()).unwrap();
    f.policy("deny brew:telnet because \"cleartext\"");
    let (exit, out, _) = f.test(&[], "");
    assert_eq!(exit, 1);
    insta::assert_snapshot!("changed_snapshot_diff", out);
    let (exit, out, _) = f.test(&["--review"], "r\n");
    assert_eq!(exit, 1, "a rejected change is a failure: {out}");
    assert_eq!(std::fs::read_to_string(f.snap()).unwrap(), accepted);
    assert!(!exists(
        &f.dir.join("tests/snapshots/laptop__the-laptop.snap.new")
    ));
    // Skipping leaves it pending; end of input stops the review.
    let (exit, out, _) = f.test(&["--review"], "s\n");
    assert_eq!(exit, 1);
    assert!(out.contains("still pending"), "{out}");
    let (exit, _, _) = f.test(&["--update"], "");
    assert_eq!(exit, 0);
    assert_ne!(std::fs::read_to_string(f.snap()).unwrap(), accepted);
}

#[test]
fn expectations_are_checked_exactly_and_reported() {
    let f = Fixture::new("expect");
    f.write(
        "tests/laptop.toml",
        r#"[[test]]
name = "the laptop"
inventory = "../laptop.json"
snapshot = false
set.add = [{ manager = "homebrew_formula", name = "git", versions = ["2.30.0"] }]
expect.state = "compliant"
expect.violations = [{ category = "missing_required", package = "git" }]
[[test.authorize]]
action = "upgrade"
manager = "homebrew_formula"
package = "git"
to = "2.39.0"
expect = "allow"
rule = "base:7"
"#,
    );
    let (exit, out, _) = f.test(&[], "");
    assert_eq!(exit, 1);
    insta::assert_snapshot!("expectation_failures", out);
    let (exit, out, _) = f.test(&["--format", "junit"], "");
    assert_eq!(exit, 1);
    insta::assert_snapshot!("expectation_failures_junit", without_times(&out));
}

#[test]
fn bad_test_files_and_missing_tests_are_usage_errors_with_their_location() {
    let f = Fixture::new("bad");
    f.write(
        "tests/laptop.toml",
        "[[test]]\nname = \"x\"\ninventory = \"../laptop.json\"\nexpect.stat = \"compliant\"\n",
    );
    let (exit, _, err) = f.test(&[], "");
    assert_eq!(exit, 2);
    assert!(err.contains("laptop.toml:4:8"), "{err}");
    assert!(err.contains("unknown field `stat`"), "{err}");
    std::fs::remove_file(f.dir.join("tests/laptop.toml")).unwrap();
    let (exit, _, err) = f.test(&[], "");
    assert_eq!(exit, 2);
    assert!(err.contains("no test files"), "{err}");
    // A policy that does not compile fails its tests (exit 1), with the diagnostics.
    f.write(
        "tests/laptop.toml",
        "[[test]]\nname = \"x\"\ninventory = \"../laptop.json\"\n",
    );
    f.policy("require brw:git");
    let (exit, _, err) = f.test(&[], "");
    assert_eq!(exit, 1);
    assert!(
        err.contains("error[HPL0103]: unknown package manager `brw`"),
        "{err}"
    );
}

#[test]
fn a_removal_that_removes_nothing_fails_the_test() {
    let f = Fixture::new("remove");
    f.write(
        "tests/laptop.toml",
        "[[test]]\nname = \"x\"\ninventory = \"../laptop.json\"\nsnapshot = false\nset.remove = [\"homebrew_formula:gti\"]\n",
    );
    let (exit, out, _) = f.test(&[], "");
    assert_eq!(exit, 1);
    assert!(
        out.contains("the inventory has no package `homebrew_formula:gti`"),
        "{out}"
    );
}

#[test]
fn obsolete_snapshots_are_reported_and_update_removes_them() {
    let f = Fixture::new("obsolete");
    assert_eq!(f.test(&["--update"], "").0, 0);
    f.write(
        "tests/laptop.toml",
        "[[test]]\nname = \"renamed\"\ninventory = \"../laptop.json\"\n",
    );
    let (_, out, _) = f.test(&["--update"], "");
    assert!(!out.contains("obsolete"), "{out}");
    assert!(
        !exists(&f.snap()),
        "--update removes the old name's snapshot"
    );
    f.write("tests/snapshots/laptop__gone.snap", "x");
    let (exit, out, _) = f.test(&[], "");
    assert_eq!(exit, 0, "{out}");
    assert!(out.contains("obsolete snapshots"), "{out}");
    assert!(out.contains("laptop__gone.snap"), "{out}");
}
