//! Generators shared by the property tests: policy sets over one scope tree, and device
//! inventories over the same names. Deterministic shapes, random combinations.

use proptest::prelude::*;
use serde_json::json;

pub const SCOPES: &str = "tenant t\ndepartment d1 {\n  team t1\n  team t2\n}\ndepartment d2 {\n  team t3\n}\nenvironment e1\nenvironment e2\ndevice_group g1\ndevice_group g2\n";
pub const SCOPE_REFS: &[&str] = &[
    "org",
    "department d1",
    "department d2",
    "team t1",
    "team t2",
    "team t3",
    "environment e1",
    "environment e2",
    "device_group g1",
    "device_group g2",
];
pub const CONDITIONS: &[&str] = &[
    "device.arch == \"arm64\"",
    "device.ring in [\"canary\", \"pilot\"]",
    "device.facts[\"x\"] == 1",
    "size(device.groups) > 0 && device.team != \"t1\"",
    "device.groups.exists(g, g.startsWith(\"g1\"))",
    "!(device.facts[\"x\"] > 2) || device.arch == \"x86_64\"",
    "device.facts.y == \"on\"",
    "version(device.os.version) >= version(\"15.0\")",
    "device.groups.all(g, g != \"g2\") ? device.department == \"d1\" : device.environment == \"e2\"",
    "int(device.facts[\"x\"]) * 2 == 4",
];

#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub kind: usize,
    pub manager: usize,
    pub package: usize,
    pub constraint: Option<usize>,
    pub condition: Option<usize>,
    pub warn: bool,
}

pub fn rule_text(r: &RuleSpec) -> String {
    let kinds = ["require", "allow", "deny", "deny!", "pin"];
    let managers = ["brew", "npm", "pip"];
    let kind = kinds[r.kind];
    let glob_ok = matches!(kind, "allow" | "deny" | "deny!");
    let packages = ["a", "b", "c", "*", "a*"];
    let package = if glob_ok {
        packages[r.package % 5]
    } else {
        packages[r.package % 3]
    };
    let constraints: [&[&str]; 3] = [
        &[">= 1.2", "< 2", "= 1.5.0", "1.*", ">= 1.0 < 1.5 || >= 3"],
        &["^1.2", "<2.0.0", "=1.5.0", "1.x", ">=1.0.0 <1.5.0 || >=3"],
        &[">=1.2", "<2", "==1.5.0", "==1.*", ">=1.0,<1.5"],
    ];
    let constraint = match (kind, r.constraint) {
        ("pin", c) => Some(constraints[r.manager][c.unwrap_or(0) % 5]),
        (_, Some(c)) => Some(constraints[r.manager][c % 5]),
        _ => None,
    };
    let mut s = format!("{kind} {}:{package}", managers[r.manager]);
    if let Some(c) = constraint {
        s.push(' ');
        s.push_str(c);
    }
    if let Some(c) = r.condition {
        s.push_str(" when ");
        s.push_str(CONDITIONS[c % CONDITIONS.len()]);
    }
    if r.warn {
        s.push_str(" warn");
    }
    s
}

pub fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (
        0usize..5,
        prop_oneof![3 => 0usize..1, 1 => 0usize..3],
        0usize..5,
        prop::option::of(0usize..5),
        prop::option::weighted(0.3, 0usize..10),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(kind, manager, package, constraint, condition, warn)| RuleSpec {
                kind: if kind == 3 && package % 2 == 0 {
                    2
                } else {
                    kind
                },
                manager,
                package,
                constraint,
                condition,
                warn,
            },
        )
}

pub fn policy_set() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (prop::collection::vec(prop_oneof![3 => 0usize..1, 2 => 1usize..2, 2 => 3usize..4, 2 => 8usize..9, 1 => 0usize..10], 1..3), 0usize..3, prop::collection::vec(rule_spec(), 1..9), prop::option::weighted(0.3, 0usize..10), prop::option::weighted(0.5, 0usize..4)),
        1..6,
    )
    .prop_map(|policies| {
        let mut s = SCOPES.to_string();
        for (i, (scopes, mode, rules, toolchain_cond, window)) in policies.iter().enumerate() {
            let mut refs: Vec<&str> = scopes.iter().map(|&x| SCOPE_REFS[x]).collect();
            refs.dedup();
            s.push_str(&format!("policy p{i} version {} {{\n  scope {}\n  mode {}\n", i + 1, refs.join(", "), ["observe", "assist", "enforce"][*mode]));
            for r in rules {
                s.push_str(&format!("  {}\n", rule_text(r)));
            }
            if let Some(w) = window {
                let windows = ["window mon-fri 01:00-05:00 \"Europe/Berlin\"", "window sat,sun 22:00-02:00 \"UTC\"", "window daily 00:00-24:00 \"UTC\"", "window wed 12:00-14:00 \"America/Los_Angeles\" when device.arch == \"arm64\""];
                s.push_str(&format!("  {}\n", windows[w % windows.len()]));
            }
            if let Some(c) = toolchain_cond {
                s.push_str(&format!("  toolchain python from mise when {}\n", CONDITIONS[c % CONDITIONS.len()]));
            }
            s.push_str("}\n");
        }
        s
    })
}

pub fn inventory() -> impl Strategy<Value = serde_json::Value> {
    let version = prop::sample::select(vec![
        "1.0.0",
        "1.2.0",
        "1.5.0",
        "1.9.9",
        "2.0.0",
        "3.1.0",
        "0.9",
        "latest",
        "1.5.0-rc.1",
    ]);
    let package = (
        prop::sample::select(vec!["a", "b", "c", "a2", "ab"]),
        prop::collection::vec(version, 0..3),
    );
    let manager = (
        prop::sample::select(vec!["homebrew_formula", "npm", "pip"]),
        prop::collection::vec(package, 0..5),
    );
    (
        prop::option::of(prop::sample::select(vec!["d1", "d2", "dx"])),
        prop::option::of(prop::sample::select(vec!["t1", "t2", "t3"])),
        prop::option::of(prop::sample::select(vec!["e1", "e2"])),
        prop::collection::vec(prop::sample::select(vec!["g1", "g2", "g9"]), 0..3),
        prop::sample::select(vec!["arm64", "x86_64"]),
        prop::sample::select(vec!["canary", "pilot", "broad"]),
        prop::sample::select(vec!["15.3.2", "14.7", "not-a-version"]),
        prop::option::of(prop_oneof![Just(json!(1)), Just(json!(2)), Just(json!("2")), Just(json!(true))]),
        prop::option::of(prop::sample::select(vec!["on", "off"])),
        prop::collection::vec(manager, 0..4),
        prop::option::of(prop::sample::select(vec!["mise", "unmanaged", "homebrew_formula"])),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(dept, team, env, groups, arch, ring, os, x, y, managers, toolchain, stale)| {
            let mut facts = serde_json::Map::new();
            if let Some(x) = x {
                facts.insert("x".into(), x);
            }
            if let Some(y) = y {
                facts.insert("y".into(), json!(y));
            }
            let mut seen = std::collections::BTreeSet::new();
            let managers: Vec<serde_json::Value> = managers
                .into_iter()
                .filter(|(id, _)| seen.insert(*id))
                .map(|(id, packages)| {
                    let mut names = std::collections::BTreeSet::new();
                    let packages: Vec<serde_json::Value> = packages
                        .into_iter()
                        .filter(|(n, _)| names.insert(*n))
                        .map(|(n, v)| json!({"name": n, "versions": v}))
                        .collect();
                    json!({"id": id, "packages": packages})
                })
                .collect();
            let toolchains: Vec<serde_json::Value> = toolchain.map(|s| json!({"name": "python", "version": "3.9.6", "source": s})).into_iter().collect();
            json!({
                "schema": "hpl.inventory.v1", "tenant_id": "t", "device_id": "D",
                "collected_at": if stale { "2026-11-01T00:00:00Z" } else { "2026-11-29T00:00:00Z" },
                "scopes": {"department": dept, "team": team, "environment": env, "device_groups": groups},
                "ring": ring,
                "device": {"arch": arch, "os": {"name": "macos", "version": os}, "facts": facts},
                "managers": managers, "toolchains": toolchains,
            })
        })
}
