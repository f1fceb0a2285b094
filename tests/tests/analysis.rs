//! The semantics of the checker and the conflict analysis, case by case: what must be
//! reported and, as important, what must not.

use hpl_compiler::check::CheckOptions;
use hpl_compiler::source::SourceFile;

const SCOPES: &str = "tenant acme\ndepartment eng {\n  team platform\n  team mobile\n}\ndepartment design\nenvironment ci\nenvironment laptop\ndevice_group agents\ndevice_group release\n";

/// The codes reported for the scopes above plus `policies`, in order.
fn codes(policies: &str) -> Vec<&'static str> {
    let text = format!("{SCOPES}{policies}");
    let analysis = hpl_compiler::analyze_sources(
        vec![SourceFile::new("t.hpl", text)],
        CheckOptions::default(),
    );
    analysis
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect()
}

fn policy(name: &str, scope: &str, body: &str) -> String {
    format!("policy {name} version 1 {{\n  scope {scope}\n{body}\n}}\n")
}

#[test]
fn the_stdlib_is_clean_and_has_the_28_managers() {
    let analysis = hpl_compiler::analyze_sources(
        vec![SourceFile::new("t.hpl", "tenant acme\n")],
        CheckOptions::default(),
    );
    assert!(
        analysis.diagnostics.is_empty(),
        "{:?}",
        analysis.diagnostics
    );
    let ids: Vec<&str> = analysis
        .program
        .catalog
        .managers
        .iter()
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(ids.len(), 28);
    for id in [
        "homebrew_formula",
        "homebrew_cask",
        "mise",
        "asdf",
        "rustup",
        "npm",
        "pnpm",
        "yarn",
        "pip",
        "pipx",
        "poetry",
        "rubygems",
        "bundler",
        "cargo",
        "cargo_binstall",
        "mas",
        "sparkle",
        "softwareupdate",
        "macports",
        "nix_darwin",
        "xcode_command_line_tools",
        "rosetta2",
        "firmware_updates",
        "docker_desktop",
        "podman",
        "colima",
        "setapp",
        "parallels_desktop",
    ] {
        assert!(ids.contains(&id), "missing {id}");
    }
    assert_eq!(
        analysis.program.catalog.lookup("brew"),
        analysis.program.catalog.lookup("homebrew_formula")
    );
}

#[test]
fn require_and_deny_under_different_conditions_do_not_conflict() {
    let a = policy(
        "a",
        "team platform",
        "  require brew:x when device.arch == \"arm64\"",
    );
    let b = policy(
        "b",
        "team platform",
        "  deny brew:x when device.arch == \"x86_64\"",
    );
    assert_eq!(codes(&(a + &b)), Vec::<&str>::new());
}

#[test]
fn require_and_deny_under_the_same_condition_conflict() {
    let a = policy(
        "a",
        "team platform",
        "  require brew:x when device.arch == \"arm64\"",
    );
    let b = policy(
        "b",
        "team platform",
        "  deny brew:x when device.arch   ==   \"arm64\"",
    );
    assert_eq!(codes(&(a + &b)), ["HPL0401"]);
}

#[test]
fn a_deny_of_a_range_does_not_contradict_a_require() {
    let a = policy(
        "a",
        "org",
        "  require npm:event-stream\n  deny npm:event-stream = 3.3.6",
    );
    assert_eq!(codes(&a), Vec::<&str>::new());
}

#[test]
fn require_and_deny_on_different_teams_do_not_conflict() {
    let a = policy("a", "team platform", "  require brew:x");
    let b = policy("b", "team mobile", "  deny brew:x");
    assert_eq!(codes(&(a + &b)), Vec::<&str>::new());
}

#[test]
fn an_exact_deny_does_not_shadow_a_glob_allow_and_vice_versa() {
    let a = policy(
        "a",
        "org",
        "  allow npm:*\n  deny npm:left-pad\n  deny brew:*\n  allow brew:git",
    );
    assert_eq!(codes(&a), Vec::<&str>::new());
}

#[test]
fn a_final_glob_deny_forbids_exact_allows_below_it_but_not_above_or_beside() {
    let org = policy("org_allow", "org", "  allow pip:requests");
    let dept = policy("d", "department eng", "  deny! pip:*");
    let team = policy("t", "team platform", "  allow pip:urllib3");
    let other_dept = policy("o", "department design", "  allow pip:flask");
    assert_eq!(codes(&(org + &dept + &team + &other_dept)), ["HPL0404"]);
}

#[test]
fn a_final_deny_of_a_range_accepts_allows_outside_it() {
    let a = policy("a", "org", "  deny! npm:ua-parser-js = 0.7.29");
    let b = policy("b", "team mobile", "  allow npm:ua-parser-js >= 1.0.33");
    let c = policy("c", "team platform", "  allow npm:ua-parser-js ^0.7");
    assert_eq!(codes(&(a + &b + &c)), ["HPL0404"]);
}

#[test]
fn redundancy_needs_containment_and_no_rule_in_between() {
    // Environments do not contain teams: not redundant.
    let a = policy("a", "team mobile", "  require brew:x");
    let b = policy("b", "environment ci", "  require brew:x");
    assert_eq!(codes(&(a + &b)), Vec::<&str>::new());
    // org → team, with a department in between that says otherwise: the team rule restores it.
    let a = policy("a", "org", "  deny brew:telnet");
    let b = policy("b", "department eng", "  allow brew:telnet");
    let c = policy("c", "team platform", "  deny brew:telnet");
    let found = codes(&(a + &b + &c));
    assert!(!found.contains(&"HPL0407"), "{found:?}");
    assert!(found.contains(&"HPL0406"));
    // org → team directly: redundant.
    let a = policy("a", "org", "  deny brew:telnet");
    let c = policy("c", "team platform", "  deny brew:telnet");
    assert_eq!(codes(&(a + &c)), ["HPL0407"]);
}

#[test]
fn pins_are_checked_against_ranges_on_the_same_path_only() {
    let a = policy("a", "team mobile", "  require mise:python >= 3.13");
    let b = policy("b", "team platform", "  pin mise:python 3.12.*");
    assert_eq!(codes(&(a.clone() + &b)), Vec::<&str>::new());
    // The department's range reaches the platform team's pin (and is overridden, a note, by
    // the mobile team's require).
    let c = policy("c", "department eng", "  allow mise:python < 3.12");
    assert_eq!(codes(&(a + &b + &c)), ["HPL0402", "HPL0406"]);
}

#[test]
fn pep440_pins_and_ranges_intersect_exactly() {
    let a = policy("a", "org", "  require pip:numpy >=1.26,<2");
    let b = policy("b", "team platform", "  pin pip:numpy ==1.26.*");
    assert_eq!(codes(&(a.clone() + &b)), Vec::<&str>::new());
    let c = policy("c", "team mobile", "  pin pip:numpy ~=2.1");
    assert_eq!(codes(&(a + &c)), ["HPL0402"]);
}

#[test]
fn set_rules_carry_the_set_and_report_each_member() {
    let text = "set s = [brew:a, brew:b]\n".to_string()
        + &policy("p", "org", "  require s\n  deny brew:b");
    let found = codes(&text);
    assert_eq!(found, ["HPL0401"]);
    let analysis = hpl_compiler::analyze_sources(
        vec![SourceFile::new("t.hpl", format!("{SCOPES}{text}"))],
        CheckOptions::default(),
    );
    let rules: Vec<_> = analysis
        .program
        .rules
        .iter()
        .filter(|r| r.via_set.as_deref() == Some("s"))
        .collect();
    assert_eq!(rules.len(), 2);
}

#[test]
fn windows_across_midnight_and_all_day_are_fine_but_short_ones_warn() {
    let ok = policy(
        "a",
        "org",
        "  window fri-mon 22:00-02:00 \"America/Los_Angeles\"\n  window daily 00:00-24:00 local",
    );
    assert_eq!(codes(&ok), Vec::<&str>::new());
    let short = policy("a", "org", "  window sat 03:00-03:15 \"UTC\"");
    assert_eq!(codes(&short), ["HPL0503"]);
    let text = format!("{SCOPES}{short}");
    let options = CheckOptions {
        check_in_minutes: 10,
    };
    let analysis = hpl_compiler::analyze_sources(vec![SourceFile::new("t.hpl", text)], options);
    assert!(
        analysis.diagnostics.is_empty(),
        "a 15-minute window is fine with a 10-minute check-in"
    );
}

#[test]
fn guards_may_be_stricter_but_never_automatic() {
    let ok = policy(
        "a",
        "org",
        "  guard os_update deny\n  guard firmware confirm\n  guard npm auto",
    );
    assert_eq!(codes(&ok), Vec::<&str>::new());
    let bad = policy("a", "org", "  guard rosetta auto");
    assert_eq!(codes(&bad), ["HPL0409"]);
}

#[test]
fn conditions_use_cel_types() {
    let ok = policy(
        "a",
        "org",
        "  require brew:a when device.groups.exists(g, g.startsWith(\"pilot\")) && size(device.groups) > 1\n  require brew:b when has(device.facts.fleet) && device.facts[\"fleet\"] == \"blue\"\n  require brew:c when version(device.os.version) >= version(\"15.0\") ? true : device.ring in [\"canary\", \"pilot\"]\n  require brew:d when device.groups.map(g, size(g)).all(n, n < 30)",
    );
    assert_eq!(codes(&ok), Vec::<&str>::new());
    let bad = policy(
        "a",
        "org",
        "  require brew:a when device.groups.all(g, g + 1 > 0)",
    );
    assert_eq!(codes(&bad), ["HPL0302"]);
    let bad = policy("a", "org", "  require brew:a when device.os == \"macos\"");
    assert_eq!(codes(&bad), ["HPL0302"]);
}

#[test]
fn package_names_are_compared_as_the_manager_does() {
    // PEP 503: these are one package, so the two rules conflict.
    let a = policy(
        "a",
        "org",
        "  require pip:Django_REST\n  deny pip:django-rest",
    );
    assert_eq!(codes(&a), ["HPL0401"]);
}
