//! Every front door answers from one precedence: evaluation, authorization, the conflict
//! analysis and the language server's hover must agree on generated policies.
//!
//! - In enforce mode, an action `authorize` allows never creates or worsens a violation of
//!   the package it acts on: the inventory after the action evaluates to no violation of that
//!   package that the record before did not have (installing a denied package, uninstalling a
//!   required one, moving a pinned package off its pin, leaving a range are all caught).
//! - Every remediation step of a record is an action `authorize` reads and allows or sends for
//!   confirmation; a final-denied package is never planned for install.
//! - For unconditional policies, the rule that decides a package on a device whose most
//!   specific scope is S is the same for `hpl eval` (the one rule whose result is not `skip`),
//!   the hover (`hpl_lsp::features::winner_at`), `hpl authorize` (the rule it names when it
//!   objects) and `hpl check` (an allow HPL0405 says never applies never decides).

use hpl_compiler::build::compile_verified;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_compiler::source::SourceFile;
use hpl_runtime::enforce::{authorize, ActionRequest, Verdict};
use hpl_runtime::eval::{evaluate, Settings};
use hpl_runtime::inventory::Inventory;
use hpl_runtime::record::{ComplianceRecord, Outcome, RuleOrigin};
use hpl_runtime::vocab::{Action, RecordRuleKind};
use hpl_tests::gen::{inventory, policy_set, rule_spec, rule_text, SCOPES, SCOPE_REFS};
use proptest::prelude::*;
use serde_json::{json, Value as Json};

const NOW: i64 = 1_795_914_000; // 2026-11-29T01:00:00Z
const MANAGERS: [(&str, &str); 3] = [("brew", "homebrew_formula"), ("npm", "npm"), ("pip", "pip")];
const NAMES: [&str; 5] = ["a", "b", "c", "a2", "ab"];
const TARGETS: [&str; 4] = ["1.0.0", "1.5.0", "2.0.0", "3.1.0"];

fn compile(text: &str) -> Option<(hpl_compiler::Analysis, hpl_runtime::load::VerifiedBundle)> {
    let analysis = hpl_compiler::analyze_sources(
        vec![SourceFile::new("p.hpl", text.to_string())],
        CheckOptions::default(),
    );
    if analysis.has_errors() {
        return None;
    }
    let bundle = compile_verified(
        &analysis,
        &BuildOptions {
            bundle_version: 1,
            issued_at: NOW,
            expires_at: None,
            root: None,
        },
    )
    .expect("a checked program compiles");
    Some((analysis, bundle))
}

/// The violations of one package, as (category, rule source): what "worse" is measured in.
fn violations_of(r: &ComplianceRecord, manager: &str, name: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r
        .violations
        .iter()
        .filter(|v| *v.manager == *manager && v.package == name)
        .map(|v| (format!("{:?}", v.category), v.rule.source.to_string()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The inventory after the agent ran `action` on `name` (to `to`).
fn after(inv: &Json, manager: &str, name: &str, action: Action, to: Option<&str>) -> Json {
    let mut inv = inv.clone();
    let managers = inv["managers"].as_array_mut().expect("managers");
    if !managers.iter().any(|m| m["id"] == manager) {
        managers.push(json!({"id": manager, "packages": []}));
    }
    let m = managers
        .iter_mut()
        .find(|m| m["id"] == manager)
        .expect("manager");
    let packages = m["packages"].as_array_mut().expect("packages");
    packages.retain(|p| p["name"] != name);
    if action != Action::Uninstall {
        packages.push(json!({"name": name, "versions": [to.expect("a target")]}));
    }
    inv
}

fn enforce_only(policies: String) -> String {
    policies
        .replace("mode observe", "mode enforce")
        .replace("mode assist", "mode enforce")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, max_global_rejects: 100_000, ..ProptestConfig::default() })]

    #[test]
    fn an_allowed_action_never_creates_or_worsens_a_violation(policies in policy_set().prop_map(enforce_only), inv in inventory()) {
        let Some((_, bundle)) = compile(&policies) else { return Err(TestCaseError::reject("errors")) };
        let inventory = Inventory::from_json(&inv).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let before = evaluate(&bundle, &inventory, NOW);
        let settings = Settings::default();
        for (_, manager) in MANAGERS {
            for name in NAMES {
                let was = violations_of(&before, manager, name);
                let installed = inventory
                    .managers
                    .iter()
                    .find(|m| m.id == manager)
                    .is_some_and(|m| m.packages.iter().any(|p| p.name == name));
                let mut actions: Vec<(Action, Option<&str>)> = vec![(Action::Uninstall, None)];
                for to in TARGETS {
                    actions.push((if installed { Action::Upgrade } else { Action::Install }, Some(to)));
                    actions.push((Action::Pin, Some(to)));
                    if installed {
                        actions.push((Action::Downgrade, Some(to)));
                    }
                }
                for (action, to) in actions {
                    if action == Action::Uninstall && !installed {
                        continue;
                    }
                    let request = ActionRequest {
                        action,
                        manager: manager.into(),
                        package: Some(name.into()),
                        to: to.map(str::to_string),
                    };
                    let decision = authorize(&bundle, &inventory, &request, NOW, &settings);
                    if decision.decision != Verdict::Allow {
                        continue;
                    }
                    let next = Inventory::from_json(&after(&inv, manager, name, action, to)).expect("inventory");
                    let now = violations_of(&evaluate(&bundle, &next, NOW), manager, name);
                    let new: Vec<_> = now.iter().filter(|v| !was.contains(v)).collect();
                    prop_assert!(
                        new.is_empty(),
                        "{action} {manager}:{name} {to:?} was allowed ({}) but creates {new:?}\npolicies:\n{policies}\ninventory: {inv}",
                        decision.reason
                    );
                }
            }
        }
        // Every remediation step is an action authorize reads and does not deny.
        for step in &before.remediation {
            let request = ActionRequest {
                action: step.action,
                manager: step.manager.clone(),
                package: Some(step.package.clone()),
                to: None,
            };
            let decision = authorize(&bundle, &inventory, &request, NOW, &settings);
            prop_assert!(
                decision.decision != Verdict::Deny,
                "the plan's {} of {}:{} is denied: {}\npolicies:\n{policies}\ninventory: {inv}",
                step.action, step.manager, step.package, decision.reason
            );
        }
        // A final-denied package is never planned for install.
        for step in before.remediation.iter().filter(|s| s.action == Action::Install) {
            let decider = hpl_runtime::eval::deciding_rule(&bundle, &inventory, NOW, &step.manager, &step.package);
            let kind = decider.and_then(|d| before.rules.iter().find(|r| r.rule == d).map(|r| r.kind));
            prop_assert!(kind != Some(RecordRuleKind::FinalDeny), "{}:{} is planned for install under a final deny", step.manager, step.package);
        }
    }
}

/// Policies without conditions and without ranged denies: the rules the hover can rank.
fn unconditional_policies() -> impl Strategy<Value = String> {
    let rule = rule_spec().prop_map(|mut r| {
        r.condition = None;
        if r.kind == 2 || r.kind == 3 {
            r.constraint = None;
        }
        r
    });
    prop::collection::vec(
        (
            prop::collection::vec(0usize..SCOPE_REFS.len(), 1..3),
            prop::collection::vec(rule, 1..8),
        ),
        1..6,
    )
    .prop_map(|policies| {
        let mut s = SCOPES.to_string();
        for (i, (scopes, rules)) in policies.iter().enumerate() {
            let mut refs: Vec<&str> = scopes.iter().map(|&x| SCOPE_REFS[x]).collect();
            refs.sort_unstable();
            refs.dedup();
            s.push_str(&format!(
                "policy p{i} version 1 {{\n  scope {}\n  mode enforce\n",
                refs.join(", ")
            ));
            for r in rules {
                s.push_str(&format!("  {}\n", rule_text(r)));
            }
            s.push_str("}\n");
        }
        s
    })
}

/// An inventory whose device is exactly in `scope` (and what it implies), with `name` of
/// `manager` installed at 1.5.0.
fn device_in(
    analysis: &hpl_compiler::Analysis,
    scope: hpl_compiler::program::ScopeId,
    manager: &str,
    name: &str,
) -> Inventory {
    use hpl_compiler::syntax::ast::Level;
    let s = analysis.program.scopes.get(scope);
    let (mut dept, mut team, mut env, mut groups) = (None, None, None, Vec::new());
    match s.level {
        Level::Org => {}
        Level::Department => dept = Some(s.name.clone()),
        Level::Team => team = Some(s.name.clone()),
        Level::Environment => env = Some(s.name.clone()),
        Level::DeviceGroup => groups.push(s.name.clone()),
    }
    Inventory::from_json(&json!({
        "schema": "hpl.inventory.v1", "tenant_id": "t", "device_id": "D",
        "collected_at": "2026-11-29T00:00:00Z",
        "scopes": {"department": dept, "team": team, "environment": env, "device_groups": groups},
        "device": {"arch": "arm64", "os": {"name": "macos", "version": "15.3.2"}, "facts": {}},
        "managers": [{"id": manager, "packages": [{"name": name, "versions": ["1.5.0"]}]}],
    }))
    .expect("inventory")
}

fn same_rule(a: &RuleOrigin, policy: &str, source: &str) -> bool {
    *a.policy == *policy && *a.source == *source
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, max_global_rejects: 100_000, ..ProptestConfig::default() })]

    #[test]
    fn eval_authorize_check_and_hover_name_the_same_winner(policies in unconditional_policies()) {
        let Some((analysis, bundle)) = compile(&policies) else { return Err(TestCaseError::reject("errors")) };
        let p = &analysis.program;
        let never_applies: Vec<(u32, u32)> = analysis
            .diagnostics
            .iter()
            .filter(|d| d.code.as_str() == "HPL0405")
            .map(|d| (d.primary.span.file.0, d.primary.span.start))
            .collect();
        for (i, _) in p.scopes.scopes.iter().enumerate() {
            let scope = hpl_compiler::program::ScopeId(i as u32);
            for (written, manager) in MANAGERS {
                let Some(mid) = p.catalog.lookup(written) else { continue };
                for name in NAMES {
                    let hover = hpl_lsp::features::winner_at(&analysis, mid, name, scope).map(|(rid, _)| {
                        let rule = p.rule(rid);
                        let file = analysis.db.get(rule.span.file);
                        let (line, col) = file.line_col(rule.span.start as usize);
                        (p.policy(rule.policy).name.text.clone(), format!("{}:{line}:{col}", file.name), rule.span)
                    });
                    let inv = device_in(&analysis, scope, manager, name);
                    let decider = hpl_runtime::eval::deciding_rule(&bundle, &inv, NOW, manager, name);
                    // The record agrees: the deciding rule has a result, and it is not `skip`.
                    let record = evaluate(&bundle, &inv, NOW);
                    if let Some(d) = &decider {
                        let row = record.rules.iter().find(|r| &r.rule == d && r.target.starts_with(&format!("{manager}:")));
                        prop_assert!(row.is_some_and(|r| r.result != Outcome::Skip), "{d:?} decides but its result is {row:?}\n{policies}");
                    }
                    match &hover {
                        None => prop_assert!(decider.is_none(), "hover: none, eval: {decider:?}\n{policies}"),
                        Some((policy, source, span)) => {
                            let Some(decider) = &decider else {
                                return Err(TestCaseError::fail(format!("hover {policy} {source}, eval: none\n{policies}")));
                            };
                            prop_assert!(same_rule(decider, policy, source), "hover {policy} {source}, eval {decider:?} at {}\n{policies}", p.scopes.describe(scope));
                            prop_assert!(!never_applies.contains(&(span.file.0, span.start)), "HPL0405 says {source} never applies, but it decides\n{policies}");
                            // authorize names the same rule when it objects.
                            let kind = record.rules.iter().find(|r| &r.rule == decider).map(|r| r.kind);
                            let action = match kind {
                                Some(RecordRuleKind::Deny | RecordRuleKind::FinalDeny) => Some(Action::Install),
                                Some(RecordRuleKind::Require) => Some(Action::Uninstall),
                                _ => None,
                            };
                            if let Some(action) = action {
                                let request = ActionRequest { action, manager: manager.into(), package: Some(name.into()), to: Some("1.5.0".into()) };
                                let d = authorize(&bundle, &inv, &request, NOW, &Settings::default());
                                prop_assert_eq!(d.decision, Verdict::Deny, "{} {:?}\n{}", action, d, policies);
                                let rule = d.rule.expect("the objecting rule");
                                prop_assert!(same_rule(&rule, policy, source), "authorize names {rule:?}, hover {policy} {source}\n{policies}");
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Found by the property above (a proptest case): a department `require brew:a >= 1.2` and an
/// org `deny brew:*`, with `a` installed at an unreadable version. The evaluation used to drop
/// the require (it needs the version) and let the less specific deny decide, planning an
/// uninstall that authorization denies (`a` is required). Now the more specific require stays
/// the decider: the package is `unknown` (unparseable version) and nothing is planned.
#[test]
fn an_unreadable_version_does_not_let_a_less_specific_deny_decide() {
    let policies = "tenant t\ndepartment d1 {\n  team t1\n}\npolicy p0 version 1 {\n  scope department d1\n  mode enforce\n  require brew:a >= 1.2\n}\npolicy p1 version 2 {\n  scope org\n  mode enforce\n  deny brew:*\n}\n";
    let (_, bundle) = compile(policies).expect("compiles");
    let inv = json!({"schema": "hpl.inventory.v1", "tenant_id": "t", "device_id": "D",
        "collected_at": "2026-11-29T00:00:00Z",
        "scopes": {"department": null, "team": "t1", "environment": null, "device_groups": []},
        "device": {"arch": "arm64", "os": {"name": "macos", "version": "15.3.2"}, "facts": {}},
        "managers": [{"id": "homebrew_formula", "packages": [{"name": "a", "versions": ["latest"]}]}],
        "toolchains": []});
    let inventory = Inventory::from_json(&inv).unwrap();
    let record = evaluate(&bundle, &inventory, NOW);
    assert!(record.remediation.is_empty(), "{:?}", record.remediation);
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    assert_eq!(record.unknown_reasons.len(), 1);
    assert_eq!(
        record.unknown_reasons[0].code.as_str(),
        "unparseable_version"
    );
    assert_eq!(
        record.unknown_reasons[0].rule.as_ref().unwrap().policy,
        "p0".into()
    );
    let uninstall = ActionRequest {
        action: Action::Uninstall,
        manager: "homebrew_formula".into(),
        package: Some("a".into()),
        to: None,
    };
    let decision = authorize(&bundle, &inventory, &uninstall, NOW, &Settings::default());
    assert_eq!(decision.decision, Verdict::Deny);
}
