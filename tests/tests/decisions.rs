//! The settled semantics of DESIGN §3, one regression test per defect of issue 8. Each test
//! states a case the runtime used to decide wrongly; the policy sources are inline so each
//! case reads on its own.

use hpl_compiler::build::compile_verified;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_compiler::source::SourceFile;
use hpl_runtime::enforce::{authorize, ActionRequest, Verdict};
use hpl_runtime::eval::{evaluate, Settings};
use hpl_runtime::inventory::Inventory;
use hpl_runtime::load::VerifiedBundle;
use hpl_runtime::record::{Category, ComplianceRecord, Outcome, State};
use serde_json::json;

const NOW: i64 = 1_795_914_000; // 2026-11-29T01:00:00Z

const SCOPES: &str = "tenant acme\ndepartment eng {\n  team web\n  team api\n}\nenvironment laptop\ndevice_group alpha\ndevice_group beta\n";

fn compile(files: &[(&str, &str)]) -> VerifiedBundle {
    let mut sources = vec![SourceFile::new("scopes.hpl", SCOPES.to_string())];
    sources.extend(
        files
            .iter()
            .map(|(name, text)| SourceFile::new(*name, text.to_string())),
    );
    let analysis = hpl_compiler::analyze_sources(sources, CheckOptions::default());
    assert!(
        !analysis.has_errors(),
        "policies must check: {:#?}",
        analysis.diagnostics
    );
    compile_verified(
        &analysis,
        &BuildOptions {
            bundle_version: 1,
            issued_at: NOW,
            expires_at: None,
            root: None,
        },
    )
    .expect("compiles")
}

fn codes(files: &[(&str, &str)]) -> Vec<String> {
    let mut sources = vec![SourceFile::new("scopes.hpl", SCOPES.to_string())];
    sources.extend(
        files
            .iter()
            .map(|(name, text)| SourceFile::new(*name, text.to_string())),
    );
    let analysis = hpl_compiler::analyze_sources(sources, CheckOptions::default());
    analysis
        .diagnostics
        .iter()
        .map(|d| d.code.as_str().to_string())
        .collect()
}

/// A device in `scopes` with `managers` (`[(manager, [(name, version)])]`).
fn device(scopes: serde_json::Value, managers: &[(&str, &[(&str, &str)])]) -> Inventory {
    let managers: Vec<_> = managers
        .iter()
        .map(|(id, packages)| {
            let packages: Vec<_> = packages
                .iter()
                .map(|(n, v)| json!({"name": n, "versions": [v]}))
                .collect();
            json!({"id": id, "packages": packages})
        })
        .collect();
    Inventory::from_json(&json!({
        "schema": "hpl.inventory.v1", "tenant_id": "acme", "device_id": "D1",
        "collected_at": "2026-11-29T00:00:00Z",
        "scopes": scopes,
        "device": {"arch": "arm64", "os": {"name": "macos", "version": "15.3.2"}, "facts": {}},
        "managers": managers,
    }))
    .expect("inventory")
}

fn eval(bundle: &VerifiedBundle, inv: &Inventory) -> ComplianceRecord {
    evaluate(bundle, inv, NOW)
}

fn ask(bundle: &VerifiedBundle, inv: &Inventory, request: serde_json::Value) -> Verdict {
    let request: ActionRequest = serde_json::from_value(request).expect("request");
    authorize(bundle, inv, &request, NOW, &Settings::default()).decision
}

fn result_of(record: &ComplianceRecord, kind: &str, source_prefix: &str) -> Outcome {
    record
        .rules
        .iter()
        .find(|r| r.kind.as_str() == kind && r.rule.source.starts_with(source_prefix))
        .unwrap_or_else(|| panic!("no {kind} rule at {source_prefix}: {:#?}", record.rules))
        .result
}

// 1. A final deny forbids the package whether it is installed or not.
#[test]
fn final_deny_forbids_an_absent_package_and_the_require_is_skipped() {
    let b = compile(&[
        (
            "org.hpl",
            "policy base version 1 {\n  scope org\n  mode enforce\n  require brew:jq\n}\n",
        ),
        (
            "web.hpl",
            "policy web version 1 {\n  scope team web\n  mode enforce\n  deny! brew:jq\n}\n",
        ),
    ]);
    let web = device(
        json!({"team": "web"}),
        &[("homebrew_formula", &[("git", "2.47.1")])],
    );
    let r = eval(&b, &web);
    assert_eq!(r.state, State::Compliant, "{:#?}", r.violations);
    assert!(r.violations.is_empty());
    assert!(r.remediation.is_empty(), "never planned for install");
    assert_eq!(result_of(&r, "require", "org.hpl:4"), Outcome::Skip);
    assert_eq!(result_of(&r, "deny!", "web.hpl:4"), Outcome::Pass);
    // And installing it is denied, so there is no install/uninstall loop.
    assert_eq!(
        ask(
            &b,
            &web,
            json!({"action": "install", "manager": "homebrew_formula", "package": "jq"})
        ),
        Verdict::Deny
    );
    // Installed, it is present_denied (the require is still skipped).
    let installed = device(
        json!({"team": "web"}),
        &[("homebrew_formula", &[("jq", "1.7.1")])],
    );
    let r = eval(&b, &installed);
    assert_eq!(r.violations.len(), 1);
    assert_eq!(r.violations[0].category, Category::PresentDenied);
    assert_eq!(result_of(&r, "require", "org.hpl:4"), Outcome::Skip);
    // A device of another team still gets the require.
    let api = device(
        json!({"team": "api"}),
        &[("homebrew_formula", &[("git", "2.47.1")])],
    );
    let r = eval(&b, &api);
    assert_eq!(r.violations.len(), 1);
    assert_eq!(r.violations[0].category, Category::MissingRequired);
}

// 2. A longer glob prefix is the more specific matcher.
#[test]
fn a_longer_glob_prefix_beats_a_shorter_one_at_one_level() {
    let b = compile(&[(
        "npm.hpl",
        "policy npm version 1 {\n  scope org\n  mode enforce\n  deny npm:*\n  allow npm:@acme/*\n}\n",
    )]);
    let inv = device(
        json!({}),
        &[("npm", &[("@acme/ui", "1.0.0"), ("left-pad", "1.3.0")])],
    );
    let r = eval(&b, &inv);
    let denied: Vec<&str> = r.violations.iter().map(|v| v.package.as_str()).collect();
    assert_eq!(denied, ["left-pad"], "{:#?}", r.violations);
    assert_eq!(
        ask(
            &b,
            &inv,
            json!({"action": "install", "manager": "npm", "package": "@acme/cli"})
        ),
        Verdict::Allow
    );
    assert_eq!(
        ask(
            &b,
            &inv,
            json!({"action": "install", "manager": "npm", "package": "lodash"})
        ),
        Verdict::Deny
    );
    // `hpl check` ranks the same way: the exception at one level is not shadowed (no
    // HPL0405), and a broader deny of a more specific scope that takes it away is noted at
    // both sites (HPL0406).
    let same_level = "policy npm version 1 {\n  scope org\n  deny npm:*\n  allow npm:@acme/*\n}\n";
    assert!(codes(&[("npm.hpl", same_level)]).is_empty());
    let across = "policy npm version 1 {\n  scope org\n  allow npm:@acme/*\n}\npolicy c version 1 {\n  scope device_group alpha\n  deny npm:*\n}\n";
    assert_eq!(codes(&[("npm.hpl", across)]), ["HPL0406"]);
}

// 3. When a deny (either kind) fires, the pin is `skip`.
#[test]
fn a_firing_plain_deny_skips_the_pin() {
    for deny in ["deny", "deny!"] {
        let b = compile(&[(
            "p.hpl",
            &format!("policy p version 1 {{\n  scope org\n  mode enforce\n  {deny} brew:jq\n  pin brew:jq 1.6\n}}\n"),
        )]);
        let inv = device(json!({}), &[("homebrew_formula", &[("jq", "1.7.1")])]);
        let r = eval(&b, &inv);
        let categories: Vec<Category> = r.violations.iter().map(|v| v.category).collect();
        assert_eq!(categories, [Category::PresentDenied], "{deny}");
        assert_eq!(result_of(&r, "pin", "p.hpl:5"), Outcome::Skip, "{deny}");
        assert!(
            r.remediation.iter().all(|s| s.action.as_str() != "pin"),
            "{deny}: uninstall, never pin and uninstall"
        );
    }
}

// 4. Several final denies: most severe, then level, matcher, (policy id, rule position).
#[test]
fn several_final_denies_are_ordered_by_severity_then_policy_id_never_by_file() {
    let zeta = "policy zeta version 1 {\n  scope org\n  mode enforce\n  deny! brew:jq warn\n}\n";
    let alpha = "policy alpha version 1 {\n  scope org\n  mode enforce\n  deny! brew:jq\n}\n";
    let beta = "policy beta version 1 {\n  scope org\n  mode enforce\n  deny! brew:jq\n}\n";
    let inv = device(json!({}), &[("homebrew_formula", &[("jq", "1.7.1")])]);
    for files in [
        [("a.hpl", zeta), ("b.hpl", alpha), ("c.hpl", beta)],
        [("c.hpl", zeta), ("b.hpl", beta), ("a.hpl", alpha)],
        [("a.hpl", beta), ("b.hpl", zeta), ("c.hpl", alpha)],
    ] {
        let r = eval(&compile(&files), &inv);
        assert_eq!(r.violations.len(), 1, "{files:?}");
        let v = &r.violations[0];
        assert_eq!(&*v.rule.policy, "alpha", "{files:?}");
        assert_eq!(v.severity, hpl_runtime::record::Severity::Error);
    }
    // A more specific level beats the policy id among equally severe final denies.
    let team = "policy aaa version 1 {\n  scope org\n  mode enforce\n  deny! brew:jq\n}\npolicy zzz version 1 {\n  scope team web\n  mode enforce\n  deny! brew:jq\n}\n";
    let inv = device(
        json!({"team": "web"}),
        &[("homebrew_formula", &[("jq", "1.7.1")])],
    );
    let r = eval(&compile(&[("t.hpl", team)]), &inv);
    assert_eq!(&*r.violations[0].rule.policy, "zzz");
}

// 5. HPL0404 compares a final deny and an allow only when both can hold on one device.
#[test]
fn final_deny_conflicts_respect_conditions() {
    let exclusive = "policy p version 1 {\n  scope org\n  deny! brew:jq when device.arch == \"arm64\"\n}\npolicy q version 1 {\n  scope team web\n  allow brew:jq when device.arch == \"x86_64\"\n}\n";
    assert!(
        !codes(&[("p.hpl", exclusive)]).contains(&"HPL0404".to_string()),
        "{:?}",
        codes(&[("p.hpl", exclusive)])
    );
    let same = "policy p version 1 {\n  scope org\n  deny! brew:jq when device.arch == \"arm64\"\n}\npolicy q version 1 {\n  scope team web\n  allow brew:jq when device.arch == \"arm64\"\n}\n";
    assert!(codes(&[("p.hpl", same)]).contains(&"HPL0404".to_string()));
    let unconditional = "policy p version 1 {\n  scope org\n  deny! brew:jq\n}\npolicy q version 1 {\n  scope team web\n  allow brew:jq when device.arch == \"arm64\"\n}\n";
    assert!(codes(&[("p.hpl", unconditional)]).contains(&"HPL0404".to_string()));
    // A less specific require beside a device group's deny! is fine.
    let less = "policy p version 1 {\n  scope org\n  require brew:jq\n}\npolicy q version 1 {\n  scope device_group alpha\n  deny! brew:jq\n}\n";
    assert!(!codes(&[("p.hpl", less)]).contains(&"HPL0404".to_string()));
}

// 6. Every action a record emits is one authorize understands.
#[test]
fn the_downgrade_action_of_a_record_is_authorized() {
    let b = compile(&[(
        "p.hpl",
        "policy p version 1 {\n  scope org\n  mode enforce\n  require npm:typescript < 5\n}\n",
    )]);
    let inv = device(json!({}), &[("npm", &[("typescript", "5.6.0")])]);
    let r = eval(&b, &inv);
    assert_eq!(r.violations[0].action.as_str(), "downgrade");
    assert_eq!(r.remediation[0].action.as_str(), "downgrade");
    let to_ok = ask(
        &b,
        &inv,
        json!({"action": "downgrade", "manager": "npm", "package": "typescript", "to": "4.9.5"}),
    );
    assert_eq!(to_ok, Verdict::Allow);
    let to_bad = ask(
        &b,
        &inv,
        json!({"action": "downgrade", "manager": "npm", "package": "typescript", "to": "5.1.0"}),
    );
    assert_eq!(to_bad, Verdict::Deny);
}

// 9. The record's scope is the binding that gave the rule its level.
#[test]
fn origins_name_the_most_specific_binding_of_the_device() {
    let b = compile(&[(
        "p.hpl",
        "policy p version 1 {\n  scope org, team web\n  mode enforce\n  require brew:jq\n}\npolicy g version 1 {\n  scope device_group beta, device_group alpha\n  mode enforce\n  require brew:gh\n}\n",
    )]);
    let inv = device(
        json!({"team": "web", "device_groups": ["beta", "alpha"]}),
        &[("homebrew_formula", &[("git", "2.47.1")])],
    );
    let r = eval(&b, &inv);
    let scopes: Vec<(&str, &str)> = r
        .violations
        .iter()
        .map(|v| (v.package.as_str(), &*v.rule.scope))
        .collect();
    assert_eq!(
        scopes,
        [("gh", "device_group:alpha"), ("jq", "team:web")],
        "{:#?}",
        r.violations
    );
    // One result per rule, not one per binding.
    let jq: Vec<_> = r
        .rules
        .iter()
        .filter(|x| x.target.ends_with(":jq"))
        .collect();
    assert_eq!(jq.len(), 1, "{jq:#?}");
    assert_eq!(&*jq[0].rule.scope, "team:web");
    // A device only at the org gets the org binding.
    let other = device(json!({"team": "api"}), &[("homebrew_formula", &[])]);
    let r = eval(&b, &other);
    assert_eq!(&*r.violations[0].rule.scope, "org:acme");
}

// 7 and 8. Integer literals never saturate and strings never change silently: both are
// compile errors with a help line.
#[test]
fn out_of_range_integers_and_unknown_escapes_are_syntax_errors() {
    let dir = std::env::temp_dir().join(format!("hpl-decisions-literals-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("p.hpl"),
        "tenant acme\npolicy p version 1 {\n  scope org\n  require brew:jq when device.facts[\"n\"] == 9223372036854775808\n  require brew:gh when device.arch == \"\\q\"\n  require brew:git when device.facts[\"n\"] == -9223372036854775808 && device.arch == \"\\u270c\"\n}\n",
    )
    .expect("write");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = hpl_cli::run(
        ["hpl", "check", dir.to_str().expect("utf-8")],
        &mut out,
        &mut err,
    );
    let text = String::from_utf8(out)
        .expect("utf-8")
        .replace(dir.to_str().expect("utf-8"), "<dir>");
    assert_eq!(code, 1, "{text}");
    insta::assert_snapshot!("literal_errors", text);
    std::fs::remove_dir_all(&dir).ok();
}

// Found by the agreement property (tests/tests/agreement.rs), not named by the issue.
#[test]
fn pinning_a_denied_package_and_installing_off_the_pin_are_denied() {
    let b = compile(&[(
        "p.hpl",
        "policy p version 1 {\n  scope org\n  mode enforce\n  deny brew:telnet\n  pin brew:terraform = 1.9.8\n}\n",
    )]);
    let inv = device(json!({}), &[("homebrew_formula", &[("git", "2.47.1")])]);
    let pin_denied =
        json!({"action": "pin", "manager": "homebrew_formula", "package": "telnet", "to": "0.17"});
    assert_eq!(ask(&b, &inv, pin_denied), Verdict::Deny);
    let off_pin = json!({"action": "install", "manager": "homebrew_formula", "package": "terraform", "to": "1.10.0"});
    assert_eq!(ask(&b, &inv, off_pin), Verdict::Deny);
    let on_pin = json!({"action": "install", "manager": "homebrew_formula", "package": "terraform", "to": "1.9.8"});
    assert_eq!(ask(&b, &inv, on_pin), Verdict::Allow);
}

#[test]
fn an_allow_bound_through_a_scope_the_deny_does_not_reach_still_applies() {
    let text = "policy p0 version 1 {\n  scope department eng, org\n  allow brew:c\n}\npolicy p1 version 1 {\n  scope org\n  deny brew:c\n}\n";
    assert!(!codes(&[("p.hpl", text)]).contains(&"HPL0405".to_string()));
    let shadowed = "policy p0 version 1 {\n  scope org\n  allow brew:c\n}\npolicy p1 version 1 {\n  scope org\n  deny brew:c\n}\n";
    assert!(codes(&[("p.hpl", shadowed)]).contains(&"HPL0405".to_string()));
}

// Found by the agreement property: removing a required package that a ranged deny hits would
// make it missing, so the plan leaves the range instead, and `uninstall` is refused.
#[test]
fn a_required_package_in_a_denied_range_is_moved_out_of_it_not_removed() {
    let b = compile(&[(
        "p.hpl",
        "policy p version 1 {\n  scope org\n  mode enforce\n  require npm:colors\n  deny npm:colors = 1.4.1\n}\n",
    )]);
    let inv = device(json!({}), &[("npm", &[("colors", "1.4.1")])]);
    let r = eval(&b, &inv);
    assert_eq!(r.violations.len(), 1);
    assert_eq!(r.violations[0].category, Category::PresentDenied);
    assert_eq!(r.violations[0].action.as_str(), "upgrade");
    let uninstall = json!({"action": "uninstall", "manager": "npm", "package": "colors"});
    assert_eq!(ask(&b, &inv, uninstall), Verdict::Deny);
    let out = json!({"action": "upgrade", "manager": "npm", "package": "colors", "to": "1.4.2"});
    assert_eq!(ask(&b, &inv, out), Verdict::Allow);
    let back_in =
        json!({"action": "install", "manager": "npm", "package": "colors", "to": "1.4.1"});
    assert_eq!(ask(&b, &inv, back_in), Verdict::Deny);
}

// An action that does not name its version is never `allow`ed where a range decides.
#[test]
fn an_unnamed_target_under_a_range_needs_confirmation() {
    let b = compile(&[(
        "p.hpl",
        "policy p version 1 {\n  scope org\n  mode enforce\n  require brew:kubectl >= 1.30\n  allow brew:helm ^3.14\n  require brew:gh >= 2\n}\n",
    )]);
    let inv = device(
        json!({}),
        &[(
            "homebrew_formula",
            &[("kubectl", "1.29.9"), ("helm", "3.15.0"), ("gh", "2.60.0")],
        )],
    );
    for package in ["kubectl", "helm"] {
        let up = json!({"action": "upgrade", "manager": "homebrew_formula", "package": package});
        assert_eq!(ask(&b, &inv, up), Verdict::NeedsConfirmation, "{package}");
    }
    // Upgrading from 2.60 can only stay in `>= 2`: known, allowed.
    let gh = json!({"action": "upgrade", "manager": "homebrew_formula", "package": "gh"});
    assert_eq!(ask(&b, &inv, gh), Verdict::Allow);
    let named = json!({"action": "upgrade", "manager": "homebrew_formula", "package": "kubectl", "to": "1.31.0"});
    assert_eq!(ask(&b, &inv, named), Verdict::Allow);
}

// Cases no test asked until cargo-mutants showed them (issue 9, docs/reliability.md): each
// test names the mutant of `runtime/src/enforce.rs` it kills.

/// `manual` and `install_policy` are not actions the agent asks about: deny (mutant: `||` →
/// `&&` in the first check of `authorize`).
#[test]
fn manual_and_install_policy_requests_are_denied() {
    let b = compile(&[(
        "p.hpl",
        "policy p version 1 {\n  scope org\n  mode enforce\n  allow brew:*\n}\n",
    )]);
    let inv = device(json!({}), &[("homebrew_formula", &[("jq", "1.7")])]);
    for action in ["manual", "install_policy"] {
        let r = json!({"action": action, "manager": "homebrew_formula", "package": "jq"});
        assert_eq!(ask(&b, &inv, r), Verdict::Deny, "{action}");
    }
}

/// A guard applies to its own manager, on devices its policy is bound to, when its condition
/// holds; to nothing else (mutants: each of the three tests in the guard loop of `authorize`).
#[test]
fn a_guard_applies_to_its_manager_where_it_is_bound_and_its_condition_holds() {
    let b = compile(&[(
        "p.hpl",
        "policy everyone version 1 {\n  scope org\n  mode enforce\n  allow brew:*\n  allow npm:*\n}\npolicy web version 1 {\n  scope team web\n  mode enforce\n  guard brew deny\n  guard npm deny when device.ring == \"canary\"\n}\n",
    )]);
    let web = |ring: &str| {
        let mut inv = device(
            json!({"department": "eng", "team": "web"}),
            &[
                ("homebrew_formula", &[("jq", "1.7")]),
                ("npm", &[("left-pad", "1.3.0")]),
            ],
        );
        inv.ring = Some(ring.into());
        inv
    };
    let api = device(
        json!({"department": "eng", "team": "api"}),
        &[
            ("homebrew_formula", &[("jq", "1.7")]),
            ("npm", &[("left-pad", "1.3.0")]),
        ],
    );
    let brew =
        json!({"action": "upgrade", "manager": "homebrew_formula", "package": "jq", "to": "1.8"});
    let npm = json!({"action": "upgrade", "manager": "npm", "package": "left-pad", "to": "1.3.1"});
    // Bound, its manager: denied; another manager's guard does not leak onto it.
    assert_eq!(ask(&b, &web("broad"), brew.clone()), Verdict::Deny);
    assert_eq!(ask(&b, &web("broad"), npm.clone()), Verdict::Allow);
    // The condition decides.
    assert_eq!(ask(&b, &web("canary"), npm.clone()), Verdict::Deny);
    // Not bound to the device: no guard at all.
    assert_eq!(ask(&b, &api, brew), Verdict::Allow);
    assert_eq!(ask(&b, &api, npm), Verdict::Allow);
}
