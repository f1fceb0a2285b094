//! Workloads for the benchmarks (the benchmarks themselves are in benches/).

use std::fmt::Write;

pub mod lsp_client;
pub mod peers;
pub mod workload;

/// A synthetic policy directory: `departments × teams_per_department` teams, environments
/// and device groups making `scopes` scopes in all, and `rules` rules spread over one
/// policy per scope, drawn from a pool of packages so that packages recur across scopes
/// (which is what the conflict analysis has to compare).
pub fn generated_policy_set(scopes: usize, rules: usize) -> String {
    let departments = (scopes / 10).max(1);
    let teams_per_department = 5;
    let environments = (scopes / 7).max(1);
    let used = 1 + departments + departments * teams_per_department + environments;
    let groups = scopes.saturating_sub(used).max(1);
    let mut s = String::from("tenant bench\n\n");
    let mut scope_refs = vec!["org".to_string()];
    for d in 0..departments {
        let _ = writeln!(s, "department d{d} {{");
        scope_refs.push(format!("department d{d}"));
        for t in 0..teams_per_department {
            let _ = writeln!(s, "  team d{d}t{t}");
            scope_refs.push(format!("team d{d}t{t}"));
        }
        s.push_str("}\n");
    }
    for e in 0..environments {
        let _ = writeln!(s, "environment e{e}");
        scope_refs.push(format!("environment e{e}"));
    }
    for g in 0..groups {
        let _ = writeln!(s, "device_group g{g}");
        scope_refs.push(format!("device_group g{g}"));
    }
    let managers = ["brew", "npm", "pip", "cargo", "mise", "cask", "rubygems"];
    let per_policy = rules.div_ceil(scope_refs.len());
    let packages = (rules / 5).max(1);
    let mut n = 0;
    for (i, scope) in scope_refs.iter().enumerate() {
        let _ = writeln!(
            s,
            "\npolicy p{i} version 1 {{\n  scope {scope}\n  mode assist"
        );
        for j in 0..per_policy {
            if n == rules {
                break;
            }
            let pkg = (i * 7919 + j * 104_729) % packages;
            let manager = managers[pkg % managers.len()];
            let line = match (i + j) % 10 {
                0..=3 => format!("require {manager}:pkg{pkg}"),
                4 => format!("require {manager}:pkg{pkg} >= 1.{}", j % 9),
                5 | 6 => format!("allow {manager}:pkg{pkg}"),
                7 => format!("deny {manager}:pkg{pkg} because \"generated\""),
                8 => format!("pin {manager}:pkg{pkg} 1.{}.*", j % 5),
                _ => format!("require {manager}:pkg{pkg} when device.arch == \"arm64\" && device.ring != \"canary\""),
            };
            let _ = writeln!(s, "  {line}");
            n += 1;
        }
        s.push_str("}\n");
    }
    s
}

/// An inventory for [`generated_policy_set`]: a device in the first department, team,
/// environment and device group, with `packages` installed packages spread over the seven
/// managers the policies use (some of them the policies' packages, at varied versions).
pub fn generated_inventory(packages: usize) -> String {
    let managers = [
        "homebrew_formula",
        "npm",
        "pip",
        "cargo",
        "mise",
        "homebrew_cask",
        "rubygems",
    ];
    let mut per_manager: Vec<Vec<String>> = vec![Vec::new(); managers.len()];
    for i in 0..packages {
        let m = i % managers.len();
        // The first 400 numbers are the policies' packages (`pkg{n}` with n % 7 == manager).
        let name = if i < 400 {
            format!("pkg{i}")
        } else {
            format!("extra{i}")
        };
        let version = format!("1.{}.{}", i % 7, i % 3);
        per_manager[m].push(format!(
            "{{\"name\":\"{name}\",\"versions\":[\"{version}\"]}}"
        ));
    }
    let managers_json: Vec<String> = managers
        .iter()
        .zip(&per_manager)
        .map(|(id, pkgs)| format!("{{\"id\":\"{id}\",\"packages\":[{}]}}", pkgs.join(",")))
        .collect();
    format!(
        "{{\"schema\":\"hpl.inventory.v1\",\"tenant_id\":\"bench\",\"device_id\":\"BENCH1\",\"collected_at\":\"2026-11-29T01:00:00Z\",\
\"scopes\":{{\"department\":\"d0\",\"team\":\"d0t0\",\"environment\":\"e0\",\"device_groups\":[\"g0\",\"g1\"]}},\"ring\":\"pilot\",\
\"device\":{{\"arch\":\"arm64\",\"os\":{{\"name\":\"macos\",\"version\":\"15.3\"}},\"facts\":{{}}}},\"managers\":[{}]}}",
        managers_json.join(",")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_workload_has_the_requested_size() {
        let text = super::generated_policy_set(200, 10_000);
        let rules = text
            .lines()
            .filter(|l| {
                ["require ", "allow ", "deny ", "pin "]
                    .iter()
                    .any(|k| l.trim_start().starts_with(k))
            })
            .count();
        assert_eq!(rules, 10_000);
        let scopes = text
            .lines()
            .filter(|l| {
                ["team ", "department ", "environment ", "device_group "]
                    .iter()
                    .any(|k| l.trim_start().starts_with(k))
            })
            .count()
            + 1;
        assert_eq!(scopes, 200);
    }
}
