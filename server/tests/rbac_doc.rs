//! docs/rbac.md is the permission matrix and the endpoint table the server enforces: its
//! matrix equals `rbac::grants`, and its endpoint list equals `http::ENDPOINTS`.

use hpl_server::http::{Access, ENDPOINTS};
use hpl_server::rbac::{grants, Permission, Role};

fn doc() -> String {
    std::fs::read_to_string("../docs/rbac.md").unwrap()
}

#[test]
fn the_documented_matrix_is_the_one_enforced() {
    let text = doc();
    let mut seen = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() != 7 {
            continue;
        }
        let name = cells[0].trim_matches('`');
        let permission = Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .unwrap_or_else(|| panic!("`{name}` in docs/rbac.md is not a permission"));
        for (role, cell) in Role::ALL.into_iter().zip(&cells[2..]) {
            assert_eq!(
                grants(role, permission),
                *cell == "✓",
                "docs/rbac.md says {role} {} {permission}",
                if *cell == "✓" { "has" } else { "lacks" }
            );
        }
        seen.push(permission);
    }
    assert_eq!(seen, Permission::ALL, "every permission, in order");
}

#[test]
fn the_documented_endpoints_are_the_routed_ones_with_their_permissions() {
    let text = doc();
    let mut documented: Vec<(String, String)> = text
        .lines()
        .filter(|l| {
            l.starts_with("| `GET ") || l.starts_with("| `P") || l.starts_with("| `DELETE ")
        })
        .filter(|l| !l.contains(" /console"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].trim_matches('`').to_string(), cells[1].to_string())
        })
        .collect();
    let mut table: Vec<(String, String)> = ENDPOINTS
        .iter()
        .map(|e| {
            let needs = match e.access {
                Access::Operator(p) => format!("`{p}`"),
                Access::Device => "a device (signed request; enrollment token)".into(),
                Access::Authenticated => "any operator".into(),
                Access::Public => "anyone".into(),
            };
            (format!("{} {}", e.method, e.path), needs)
        })
        .collect();
    documented.sort();
    table.sort();
    assert_eq!(documented, table);
}

#[test]
fn the_documented_console_pages_are_the_guarded_ones() {
    let text = doc();
    let mut documented: Vec<(String, String)> = text
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains(" /console"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].trim_matches('`').to_string(), cells[1].to_string())
        })
        .collect();
    let mut table: Vec<(String, String)> = hpl_server::console::PAGES
        .iter()
        .map(|p| {
            let needs = p.needs.map_or("anyone".to_string(), |p| format!("`{p}`"));
            (format!("{} {}", p.method, p.path), needs)
        })
        .collect();
    documented.sort();
    table.sort();
    assert_eq!(documented, table);
}
