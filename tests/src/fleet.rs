//! A generated fleet for `hpl report`'s tests and benchmarks: the example devices, varied.
//!
//! Device `i` starts from example `i mod 11`, gets its own id, a ring, sometimes a different
//! team or device group, a few drifts (a required package removed, a denied one installed, a
//! version moved) and filler packages up to the size asked for. Deterministic: the same
//! arguments give the same bytes.

use serde_json::{json, Value};
use std::io::Write;

/// The example inventories, as JSON.
pub fn templates() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/devices");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/devices")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json"))
        .collect()
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const RINGS: [&str; 3] = ["canary", "pilot", "broad"];
const TEAMS: [(&str, &str); 4] = [
    ("engineering", "platform"),
    ("engineering", "web"),
    ("design", "brand"),
    ("security", "appsec"),
];

/// Device `i` of a fleet whose devices have about `packages` packages (at least the template's).
pub fn device(templates: &[Value], i: usize, packages: usize) -> Value {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64).wrapping_mul(0x1000_0000_01b3));
    let mut d = templates[i % templates.len()].clone();
    d["device_id"] = json!(format!("GEN{i:06}"));
    d["collected_at"] = json!("2026-11-29T01:00:00Z");
    d["ring"] = json!(RINGS[i % 3]);
    if rng.below(5) == 0 {
        let (dept, team) = TEAMS[rng.below(TEAMS.len() as u64) as usize];
        d["scopes"]["department"] = json!(dept);
        d["scopes"]["team"] = json!(team);
    }
    if rng.below(10) == 0 {
        d["scopes"]["device_groups"] = json!(["contractors"]);
    }
    let managers = d["managers"].as_array_mut().expect("managers");
    // Drifts: drop a package, install a denied one, move a version.
    if rng.below(4) == 0 {
        let m = rng.below(managers.len() as u64) as usize;
        if let Some(p) = managers[m]["packages"].as_array_mut() {
            if !p.is_empty() {
                let k = rng.below(p.len() as u64) as usize;
                p.remove(k);
            }
        }
    }
    if rng.below(6) == 0 {
        if let Some(brew) = managers.iter_mut().find(|m| m["id"] == "homebrew_formula") {
            if let Some(p) = brew["packages"].as_array_mut() {
                p.push(json!({"name": "telnet", "versions": ["0.17"]}));
            }
        }
    }
    if rng.below(8) == 0 {
        if let Some(npm) = managers.iter_mut().find(|m| m["id"] == "npm") {
            if let Some(p) = npm["packages"].as_array_mut() {
                p.push(json!({"name": "event-stream", "versions": ["3.3.6"]}));
            }
        }
    }
    let have: usize = managers
        .iter()
        .map(|m| m["packages"].as_array().map_or(0, Vec::len))
        .sum();
    if packages > have {
        let extra = packages - have;
        let npm = match managers.iter().position(|m| m["id"] == "npm") {
            Some(k) => k,
            None => {
                managers.push(json!({"id": "npm", "packages": []}));
                managers.len() - 1
            }
        };
        if let Some(p) = managers[npm]["packages"].as_array_mut() {
            for k in 0..extra {
                p.push(json!({
                    "name": format!("filler-{k}"),
                    "versions": [format!("1.{}.{}", k % 17, rng.below(9))],
                }));
            }
        }
    }
    d
}

/// Writes `n` devices as JSON lines.
pub fn write_jsonl(mut w: impl Write, n: usize, packages: usize) -> std::io::Result<()> {
    let templates = templates();
    for i in 0..n {
        serde_json::to_writer(&mut w, &device(&templates, i, packages))?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes `n` devices with between `min` and `max` packages each (spread evenly), as JSON
/// lines: the benchmark's fleet.
pub fn write_jsonl_sized(
    mut w: impl Write,
    n: usize,
    min: usize,
    max: usize,
) -> std::io::Result<()> {
    let templates = templates();
    let span = max.saturating_sub(min) + 1;
    for i in 0..n {
        let packages = min + (i.wrapping_mul(7919) % span);
        serde_json::to_writer(&mut w, &device(&templates, i, packages))?;
        w.write_all(b"\n")?;
    }
    Ok(())
}
