//! `hpl why`: the trace agrees with the record, and reads well.

mod common;
use common::hpl;
use hpl_runtime::eval::{deciding_rule, Settings};
use hpl_runtime::inventory::Inventory;
use hpl_runtime::precedence::DecidedBy;
use hpl_runtime::trace::{trace, Role};

fn devices() -> Vec<(String, Inventory)> {
    let mut paths: Vec<_> = std::fs::read_dir("../examples/devices")
        .expect("examples/devices")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            (
                p.file_stem().unwrap().to_string_lossy().to_string(),
                Inventory::from_json_str(&text).expect("inventory"),
            )
        })
        .collect()
}

/// For every package of every example device (and every package a rule names), the trace's
/// deciding rule is the one the evaluation decides with, every violation of the package
/// comes from the decider or the pin the trace shows, and every rule that lost names the step
/// that put the decider ahead.
#[test]
fn the_traced_winner_is_the_records_deciding_rule_for_every_example_package() {
    let bundle = hpl_tests::fuzzing::acme();
    let c = bundle.content();
    let at = hpl_runtime::inventory::parse_timestamp("2026-11-29T02:00:00Z").unwrap();
    let mut traced = 0;
    for (name, inv) in devices() {
        let mut packages: Vec<(String, String)> = inv
            .managers
            .iter()
            .flat_map(|m| m.packages.iter().map(|p| (m.id.clone(), p.name.clone())))
            .collect();
        for r in &c.rules {
            if !r.glob {
                packages.push((
                    c.str(c.managers[r.manager as usize].id).to_string(),
                    c.str(r.pattern).to_string(),
                ));
            }
        }
        packages.sort();
        packages.dedup();
        for (manager, package) in packages {
            let Ok((t, record)) = trace(bundle, &inv, at, &Settings::default(), &manager, &package)
            else {
                continue;
            };
            traced += 1;
            let expected = deciding_rule(bundle, &inv, at, &manager, &package);
            assert_eq!(
                t.decider().map(|d| d.rule.clone()),
                expected,
                "{name}: {manager}:{package}"
            );
            assert_eq!(
                record,
                hpl_runtime::eval::evaluate(bundle, &inv, at),
                "tracing changes nothing in the record ({name})"
            );
            for v in &t.violations {
                let from_pin = t.pin.map(|p| &t.rules[p].rule) == Some(&v.rule);
                assert!(
                    t.decider().map(|d| &d.rule) == Some(&v.rule) || from_pin,
                    "{name}: {manager}:{package}: the violation's rule {:?} is neither the \
                     decider nor the pin",
                    v.rule
                );
            }
            for r in &t.rules {
                if let Some(Role::Outranked { by }) = &r.role {
                    assert!(t.decider.is_some(), "outranked by nothing: {r:?}");
                    if r.kind == hpl_runtime::vocab::RecordRuleKind::FinalDeny {
                        assert_ne!(*by, DecidedBy::Kind, "final denies are not ranked by kind");
                    }
                }
            }
        }
    }
    assert!(traced > 300, "only {traced} packages traced");
}

fn why(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["why"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--policy",
        "../examples/acme",
        "--at",
        "2026-11-29T02:00:00Z",
    ]);
    hpl(&all)
}

#[test]
fn why_shows_the_decider_the_pin_the_violation_and_the_plan() {
    let (exit, out, err) = why(&[
        "brew:terraform",
        "--inventory",
        "../examples/devices/platform-noncompliant.json",
        "--action",
        r#"{"action":"upgrade","manager":"homebrew_formula","package":"terraform","to":"1.10.1"}"#,
    ]);
    assert_eq!(exit, 0, "{err}");
    insta::assert_snapshot!("why_terraform_platform", out);
}

#[test]
fn why_shows_each_clause_of_a_condition_that_is_false() {
    let (exit, out, err) = why(&[
        "homebrew_formula:opentofu",
        "--inventory",
        "../examples/devices/platform-noncompliant.json",
    ]);
    assert_eq!(exit, 0, "{err}");
    assert!(
        out.contains("\"iac-next\" in device.groups = false"),
        "{out}"
    );
    insta::assert_snapshot!("why_opentofu_platform", out);
}

#[test]
fn why_names_a_final_deny_out_of_range_and_the_glob_that_decides() {
    let (exit, out, err) = why(&[
        "npm:event-stream",
        "--inventory",
        "../examples/devices/web-observe.json",
    ]);
    assert_eq!(exit, 0, "{err}");
    insta::assert_snapshot!("why_event_stream_web", out);
}

#[test]
fn why_json_is_the_trace() {
    let (exit, out, err) = why(&[
        "python",
        "--inventory",
        "../examples/devices/data-stale.json",
        "--format",
        "json",
    ]);
    assert_eq!(exit, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["schema"], "hpl.why.v1");
    assert_eq!(v["manager"], "mise");
    insta::assert_json_snapshot!("why_python_data_json", v);
}

#[test]
fn why_refuses_what_it_cannot_trace_with_the_reason() {
    let inv = [
        "--inventory",
        "../examples/devices/platform-noncompliant.json",
    ];
    let (exit, _, err) = why(&[&["homebrew_formla:git"][..], &inv[..]].concat());
    assert_eq!(exit, 2);
    assert!(err.contains("did you mean `homebrew_formula`?"), "{err}");
    let (exit, _, err) = why(&[&["no-such-tool"][..], &inv[..]].concat());
    assert_eq!(exit, 2);
    assert!(err.contains("MANAGER:no-such-tool"), "{err}");
    // A rule that names nothing installed: a trace that says so, not an error.
    let (exit, out, _) = why(&[&["brew:no-such-tool"][..], &inv[..]].concat());
    assert_eq!(exit, 0);
    assert!(out.contains("decided by allow *"), "{out}");
}

#[test]
fn the_traced_step_is_the_one_that_separates_two_rules() {
    use hpl_runtime::precedence::{decided_by, Candidate, Matcher};
    use hpl_runtime::vocab::{Level, RuleKind};
    let base = Candidate {
        kind: RuleKind::Allow,
        is_final: false,
        warn: false,
        ranged: false,
        level: Level::Org,
        matcher: Matcher::glob(""),
        policy: "b",
        position: (1, 1, 0),
    };
    let team = Candidate {
        level: Level::Team,
        ..base
    };
    let exact = Candidate {
        matcher: Matcher::Exact,
        ..base
    };
    let deny = Candidate {
        kind: RuleKind::Deny,
        ..base
    };
    let final_deny = Candidate {
        is_final: true,
        ..deny
    };
    let other_policy = Candidate {
        policy: "c",
        ..base
    };
    assert_eq!(decided_by(&team, &exact), DecidedBy::Level);
    assert_eq!(decided_by(&exact, &base), DecidedBy::Matcher);
    assert_eq!(decided_by(&deny, &base), DecidedBy::Kind);
    assert_eq!(decided_by(&final_deny, &team), DecidedBy::FinalDeny);
    assert_eq!(decided_by(&base, &other_policy), DecidedBy::Tie);
    let warn_final = Candidate {
        warn: true,
        level: Level::Team,
        ..final_deny
    };
    assert_eq!(decided_by(&final_deny, &warn_final), DecidedBy::Severity);
}

/// From a signed bundle the trace is the same, without source lines (a bundle keeps origins,
/// not sources).
#[test]
fn why_on_a_bundle_decides_alike() {
    let dir = std::env::temp_dir().join(format!("hpl-why-bundle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("k").to_str().unwrap().to_string();
    let bundle = dir.join("acme.hplb").to_str().unwrap().to_string();
    assert_eq!(hpl(&["keygen", "--out", &key]).0, 0);
    let (exit, _, err) = hpl(&[
        "build",
        "../examples/acme",
        "-o",
        &bundle,
        "--sign-key",
        &key,
        "--issued-at",
        "2026-11-29T00:00:00Z",
    ]);
    assert_eq!(exit, 0, "{err}");
    let args = [
        "brew:terraform",
        "--inventory",
        "../examples/devices/platform-noncompliant.json",
        "--format",
        "json",
    ];
    let mut with_bundle = vec!["why"];
    with_bundle.extend_from_slice(&args);
    with_bundle.extend_from_slice(&["--at", "2026-11-29T02:00:00Z"]);
    let public = format!("{key}.pub");
    with_bundle.extend_from_slice(&["--bundle", &bundle, "--key", &public]);
    let (exit, out, err) = hpl(&with_bundle);
    assert_eq!(exit, 0, "{err}");
    let from_bundle: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (_, out, _) = why(&args);
    let from_policy: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(from_bundle["rules"], from_policy["rules"]);
    assert_eq!(from_bundle["decider"], from_policy["decider"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
