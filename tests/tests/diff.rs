//! `hpl diff`: the semantic diff on the examples (human, JSON, markdown), across git
//! revisions, and a property: when the diff finds no change, no device's record changes; the
//! impact counts exactly the devices whose outcome changes.

mod common;
use common::hpl;
use hpl_cli::diff::{effective, impact};
use hpl_compiler::build::compile_verified;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_compiler::source::SourceFile;
use hpl_runtime::device::Device;
use hpl_runtime::inventory::Inventory;
use proptest::prelude::*;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

const AT: &str = "2026-11-29T02:00:00Z";
const NOW: i64 = 1_795_914_000; // 2026-11-29T01:00:00Z

/// examples/acme copied (without its tests), with `edit` applied to its files.
fn edited_copy(name: &str, edit: &[(&str, &str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hpl-diff-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir("../examples/acme").unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "hpl") {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    for (file, from, to) in edit {
        let p = dir.join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{file} has no `{from}`");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    }
    dir
}

const EDITS: &[(&str, &str, &str)] = &[
    (
        "platform.hpl",
        "require brew:kubectl >= 1.30",
        "require brew:kubectl >= 1.31",
    ),
    ("platform.hpl", "mode enforce", "mode assist"),
    (
        "security.hpl",
        "  deny brew:hashcat because \"only on the lab machines\"\n",
        "",
    ),
    (
        "groups.hpl",
        "  allow npm:typescript\n",
        "  allow npm:typescript\n  allow npm:@acme/*\n",
    ),
];

fn diff(args: &[&str], new: &Path) -> (i32, String) {
    let mut all = vec![
        "diff",
        "../examples/acme",
        new.to_str().unwrap(),
        "--at",
        AT,
    ];
    all.extend_from_slice(args);
    let (exit, out, err) = hpl(&all);
    assert!(err.is_empty(), "{err}");
    (exit, out.replace(new.to_str().unwrap(), "[new]"))
}

#[test]
fn the_diff_of_an_edited_organisation_names_each_change_and_its_impact() {
    let new = edited_copy("edits", EDITS);
    let (exit, out) = diff(&["--inventories", "../examples/devices"], &new);
    assert_eq!(exit, 0);
    insta::assert_snapshot!("diff_human", out);
    let (_, md) = diff(
        &[
            "--inventories",
            "../examples/devices",
            "--format",
            "markdown",
        ],
        &new,
    );
    insta::assert_snapshot!("diff_markdown", md);
    let (_, json) = diff(&["--format", "json"], &new);
    let v: Json = serde_json::from_str(&json).unwrap();
    assert_eq!(v["schema"], "hpl.diff.v1");
    insta::assert_json_snapshot!("diff_json_changes", v["changes"]);
    // --exit-code: 1 when something changes.
    assert_eq!(diff(&["--exit-code"], &new).0, 1);
    std::fs::remove_dir_all(&new).unwrap();
}

#[test]
fn moving_lines_and_comments_is_no_change() {
    let new = edited_copy(
        "moves",
        &[
            (
                "baseline.hpl",
                "policy baseline",
                "\n\n# a comment that moves every line\npolicy baseline",
            ),
            (
                "web.hpl",
                "  require brew:watchman\n  require cask:firefox\n",
                "  require cask:firefox\n  require brew:watchman\n",
            ),
        ],
    );
    let (exit, out) = diff(
        &["--exit-code", "--inventories", "../examples/devices"],
        &new,
    );
    assert_eq!(exit, 0, "{out}");
    assert!(
        out.contains("no change: the effective policy is the same"),
        "{out}"
    );
    assert!(out.contains("11 devices evaluated, none changes"), "{out}");
    std::fs::remove_dir_all(&new).unwrap();
}

/// Two rules for one package in one policy: the earlier decides, so swapping them is a change.
#[test]
fn reordering_rules_that_tie_is_a_change() {
    let new = edited_copy(
        "ties",
        &[(
            "baseline.hpl",
            "  require core_cli\n  require brew:git >= 2.40\n",
            "  require brew:git >= 2.40\n  require core_cli\n",
        )],
    );
    let (_, out) = diff(&[], &new);
    assert!(out.contains("version: — → >= 2.40"), "{out}");
    assert!(
        out.contains("homebrew_formula:git on 240 scope paths"),
        "the winner changes everywhere: {out}"
    );
    std::fs::remove_dir_all(&new).unwrap();
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        status.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn two_git_revisions_of_a_policy_directory() {
    let repo = std::env::temp_dir().join(format!("hpl-diff-git-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&repo);
    let policies = repo.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let original = edited_copy("git-src", &[]);
    for entry in std::fs::read_dir(&original).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, policies.join(p.file_name().unwrap())).unwrap();
    }
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    let p = policies.join("platform.hpl");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text.replace("require brew:k9s", "require brew:k9s >= 0.32"),
    )
    .unwrap();
    git(&repo, &["commit", "-q", "-am", "two"]);
    // The work tree changes after the commit: the diff reads the revisions, not the files.
    std::fs::write(&p, "not a policy").unwrap();
    let dir = policies.to_str().unwrap();
    let (exit, out, err) = hpl(&[
        "diff",
        "--git",
        "HEAD~1..HEAD",
        dir,
        "--at",
        AT,
        "--format",
        "json",
    ]);
    assert_eq!(exit, 0, "{err}");
    let v: Json = serde_json::from_str(&out).unwrap();
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{out}");
    assert_eq!(changes[0]["item"], "require homebrew_formula:k9s");
    assert_eq!(changes[0]["source"], "platform.hpl:10:3");
    assert_eq!(changes[0]["changes"]["version"][1], ">= 0.32");
    let (exit, _, err) = hpl(&["diff", "--git", "HEAD~1..nope", dir]);
    assert_eq!(exit, 1);
    assert!(err.contains("nope"), "{err}");
    std::fs::remove_dir_all(&repo).unwrap();
    std::fs::remove_dir_all(&original).unwrap();
}

fn compile(text: &str) -> Option<hpl_runtime::load::VerifiedBundle> {
    let analysis = hpl_compiler::analyze_sources(
        vec![SourceFile::new("p.hpl", text.to_string())],
        CheckOptions::default(),
    );
    if analysis.has_errors() {
        return None;
    }
    compile_verified(
        &analysis,
        &BuildOptions {
            bundle_version: 1,
            issued_at: NOW,
            expires_at: None,
            root: None,
        },
    )
    .ok()
}

/// A record without what does not describe the device: the bundle's identity, the time, and
/// where rules sit in their files; rule results in a stable order.
fn normalized(r: &hpl_runtime::record::ComplianceRecord) -> Json {
    /// `p.hpl:12:3` in a note or message → `p.hpl:_`.
    fn unplaced(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("p.hpl:") {
            out.push_str(&rest[..i + 6]);
            out.push('_');
            rest = rest[i + 6..].trim_start_matches(|c: char| c.is_ascii_digit() || c == ':');
        }
        out.push_str(rest);
        out
    }
    fn strip(v: &mut Json) {
        match v {
            Json::String(s) => *s = unplaced(s),
            Json::Object(m) => {
                m.remove("source");
                for x in m.values_mut() {
                    strip(x);
                }
            }
            Json::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(r).unwrap();
    let m = v.as_object_mut().unwrap();
    m.remove("bundle");
    m.remove("evaluated_at");
    strip(&mut v);
    if let Some(rules) = v["rules"].as_array_mut() {
        rules.sort_by_key(|r| r.to_string());
    }
    v
}

/// How the second policy set is made from the first.
fn mutate(text: &str, how: usize, pick: usize, replacement: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let rules: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            l.starts_with("  ")
                && ["require ", "allow ", "deny ", "deny! ", "pin "]
                    .iter()
                    .any(|k| t.starts_with(k))
        })
        .map(|(i, _)| i)
        .collect();
    if rules.is_empty() {
        return text.to_string();
    }
    let at = rules[pick % rules.len()];
    match how {
        // Nothing, or only comments and blank lines: never a change.
        0 => {}
        1 => lines.insert(at, "  # moved\n".to_string()),
        // Swap with the next rule line (a change only when the two tie).
        2 => {
            if let Some(&next) = rules.iter().find(|&&r| r > at) {
                lines.swap(at, next);
            }
        }
        3 => {
            lines.remove(at);
        }
        // Only a number in the rule moves: its version range or its condition.
        4 => {
            let line = &lines[at];
            if let Some(i) = line.find(|c: char| c.is_ascii_digit()) {
                let d = line.as_bytes()[i] - b'0';
                let mut l = line.clone();
                l.replace_range(i..=i, &((d + 1) % 10).to_string());
                lines[at] = l;
            }
        }
        _ => lines[at] = format!("  {replacement}"),
    }
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn no_change_in_the_diff_means_no_change_on_any_device(
        text in hpl_tests::gen::policy_set(),
        how in 0usize..7,
        pick in 0usize..64,
        replacement in hpl_tests::gen::rule_spec(),
        devices in prop::collection::vec(hpl_tests::gen::inventory(), 30),
    ) {
        let other = mutate(&text, how, pick, &hpl_tests::gen::rule_text(&replacement));
        let (Some(old), Some(new)) = (compile(&text), compile(&other)) else {
            return Ok(());
        };
        let changes = effective::diff(&effective::entries(&old), &effective::entries(&new));
        if how <= 1 {
            prop_assert!(changes.is_empty(), "comments changed the policy: {changes:?}");
        }
        let (a, b) = (Device::with_bundle(old, None), Device::with_bundle(new, None));
        let mut differing = 0;
        let mut outcome_changes = 0;
        for (i, json) in devices.iter().enumerate() {
            let mut json = json.clone();
            json["device_id"] = Json::from(format!("D{i}"));
            let inv = Inventory::from_json(&json).unwrap();
            let (ra, rb) = (a.evaluate(&inv, NOW), b.evaluate(&inv, NOW));
            if normalized(&ra) != normalized(&rb) {
                differing += 1;
                prop_assert!(
                    !changes.is_empty(),
                    "the diff says nothing changed, but device {i}'s record did:\n{}\n---\n{}",
                    text, other
                );
            }
            let mut fleet = impact::Impact::default();
            fleet.add(impact::compare(&a, &b, &inv, NOW, "t").as_ref());
            if impact::Outcome::of(&ra) != impact::Outcome::of(&rb) {
                outcome_changes += 1;
                prop_assert_eq!(fleet.changed, 1);
            } else {
                prop_assert_eq!(fleet.changed, 0);
            }
        }
        prop_assert!(outcome_changes <= differing);
    }
}

/// Two signed bundles (what the control plane would roll out) diff like their sources.
#[test]
fn two_signed_bundles_diff_like_their_sources() {
    let dir = std::env::temp_dir().join(format!("hpl-diff-signed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (key, pubkey) = (dir.join("k"), dir.join("k.pub"));
    assert_eq!(hpl(&["keygen", "--out", &s(&key)]).0, 0);
    let new = edited_copy("bundles", EDITS);
    let (a, b) = (dir.join("old.hplb"), dir.join("new.hplb"));
    for (src, out) in [("../examples/acme".to_string(), &a), (s(&new), &b)] {
        let (exit, _, err) = hpl(&[
            "build",
            &src,
            "-o",
            &s(out),
            "--sign-key",
            &s(&key),
            "--issued-at",
            AT,
        ]);
        assert_eq!(exit, 0, "{err}");
    }
    let from_bundles = hpl(&[
        "diff",
        &s(&a),
        &s(&b),
        "--key",
        &s(&pubkey),
        "--at",
        AT,
        "--format",
        "json",
    ]);
    assert_eq!(from_bundles.0, 0, "{}", from_bundles.2);
    let from_sources = hpl(&[
        "diff",
        "../examples/acme",
        &s(&new),
        "--at",
        AT,
        "--format",
        "json",
    ]);
    let changes = |out: &str| serde_json::from_str::<Json>(out).unwrap()["changes"].clone();
    assert_eq!(changes(&from_bundles.1), changes(&from_sources.1));
    // Without the key a bundle is not read.
    let (exit, _, err) = hpl(&["diff", &s(&a), &s(&b)]);
    assert_eq!(exit, 1);
    assert!(err.contains("pass --key"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&new).unwrap();
}
