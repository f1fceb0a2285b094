//! The side-by-side workloads (issue 13): one seeded generator writes the same job three ways —
//! an hpl policy directory, an equivalent Rego policy with its data document, and the device's
//! inventory (which is also Rego's `input`) — at three sizes.
//!
//! The Rego is written as a good Rego author would write it for this job: the rules are
//! precomputed per scope and indexed by package (`data.bench.scopes[scope].exact[key]`) and
//! by manager for globs, so a device only looks at its own scopes' entries; nothing is
//! re-derived per device except what depends on the device (its scopes and conditions).
//! [`crate::peers`] checks that both report the same violations before anything is timed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// A workload size (issue 13: small, medium, large).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub name: &'static str,
    pub rules: usize,
    pub scopes: usize,
    /// Installed packages on the device.
    pub packages: usize,
}

pub const SMALL: Size = Size {
    name: "small",
    rules: 50,
    scopes: 10,
    packages: 100,
};
pub const MEDIUM: Size = Size {
    name: "medium",
    rules: 2_000,
    scopes: 50,
    packages: 1_000,
};
pub const LARGE: Size = Size {
    name: "large",
    rules: 20_000,
    scopes: 500,
    packages: 5_000,
};
pub const SIZES: [Size; 3] = [SMALL, MEDIUM, LARGE];

impl Size {
    /// `factor` times this size in rules, scopes and packages (the linearity measurements).
    pub fn times(self, factor: usize) -> Size {
        Size {
            name: self.name,
            rules: self.rules * factor,
            scopes: self.scopes * factor,
            packages: self.packages * factor,
        }
    }
}

/// The eight managers, as `(hpl name, inventory id)`.
pub const MANAGERS: [(&str, &str); 8] = [
    ("brew", "homebrew_formula"),
    ("npm", "npm"),
    ("pip", "pip"),
    ("cargo", "cargo"),
    ("mise", "mise"),
    ("cask", "homebrew_cask"),
    ("rubygems", "rubygems"),
    ("pipx", "pipx"),
];

/// The conditions rules use, as hpl (which is also CEL) and as the body of a Rego rule. The
/// generated device (arm64, ring pilot, groups g0 g1 g2) makes c0, c1 and c3 hold.
pub const CONDITIONS: [(&str, &[&str]); 4] = [
    (
        "device.arch == \"arm64\" && device.ring != \"canary\"",
        &["input.device.arch == \"arm64\"; input.ring != \"canary\""],
    ),
    (
        "\"g2\" in device.groups",
        &["\"g2\" in input.scopes.device_groups"],
    ),
    (
        "device.ring == \"canary\" || device.arch == \"x86_64\"",
        &[
            "input.ring == \"canary\"",
            "input.device.arch == \"x86_64\"",
        ],
    ),
    (
        "size(device.groups) > 2",
        &["count(input.scopes.device_groups) > 2"],
    ),
];

/// Glob prefixes of several lengths over the `tool…` names.
const GLOB_PREFIXES: [&str; 5] = ["t", "to", "tool", "tool1", "tool12"];

/// The generated job.
#[derive(Debug, Clone)]
pub struct Workload {
    pub size: Size,
    /// `(file name, text)`: one file for the scopes, one per ten policies.
    pub files: Vec<(String, String)>,
    /// The Rego policy (`package hpl`, query `data.hpl.violations`).
    pub rego: String,
    /// The Rego data document (`{"bench": {"scopes": …}}`).
    pub rego_data: String,
    /// The device's inventory (`hpl.inventory.v1`), which is also Rego's input.
    pub inventory: String,
    /// The rule count actually written (each policy names a package at most once).
    pub rules: usize,
}

impl Workload {
    /// All files as one text (for `analyze_sources` on one file).
    pub fn joined(&self) -> String {
        self.files
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A small deterministic generator (SplitMix64): the workloads are the same on every machine
/// and in every run, without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Require,
    Allow,
    Deny,
    FinalDeny,
    Pin,
}

impl Kind {
    fn rego(self) -> &'static str {
        match self {
            Kind::Require => "require",
            Kind::Allow => "allow",
            Kind::Deny => "deny",
            Kind::FinalDeny => "deny!",
            Kind::Pin => "pin",
        }
    }
    /// Deny beats require beats allow (DESIGN §3, step 2).
    fn rank(self) -> u32 {
        match self {
            Kind::Deny | Kind::FinalDeny => 2,
            Kind::Require => 1,
            Kind::Allow | Kind::Pin => 0,
        }
    }
}

/// One generated rule, written to both languages from this one description.
struct Rule {
    kind: Kind,
    manager: usize,
    /// The exact name, or the glob's prefix.
    name: String,
    glob: bool,
    /// `>= 1.K` for require and allow, `< 1.K` for deny; `1.K.*` for a pin.
    minor: Option<u32>,
    cond: Option<usize>,
}

impl Rule {
    fn hpl(&self) -> String {
        let m = MANAGERS[self.manager].0;
        let target = if self.glob {
            format!("{m}:{}*", self.name)
        } else {
            format!("{m}:{}", self.name)
        };
        let mut s = match (self.kind, self.minor) {
            (Kind::Require, Some(k)) => format!("require {target} >= 1.{k}"),
            (Kind::Require, None) => format!("require {target}"),
            (Kind::Allow, Some(k)) => format!("allow {target} >= 1.{k}"),
            (Kind::Allow, None) => format!("allow {target}"),
            (Kind::Deny, Some(k)) => format!("deny {target} < 1.{k}"),
            (Kind::Deny, None) => format!("deny {target}"),
            (Kind::FinalDeny, _) => format!("deny! {target}"),
            (Kind::Pin, k) => format!("pin {target} 1.{}.*", k.unwrap_or(0)),
        };
        if let Some(c) = self.cond {
            let _ = write!(s, " when {}", CONDITIONS[c].0);
        }
        if matches!(self.kind, Kind::Deny | Kind::FinalDeny) {
            s.push_str(" because \"generated\"");
        }
        s
    }
}

/// Scope names by level: org, departments, teams, environments, device groups.
struct Scopes {
    /// `(hpl reference, rego key, level)`
    all: Vec<(String, String, u32)>,
    declarations: String,
}

fn scopes(count: usize) -> Scopes {
    let departments = (count / 10).max(1);
    let teams = 3;
    let environments = (count / 10).max(1);
    let groups = count
        .saturating_sub(1 + departments * (1 + teams) + environments)
        .max(3);
    let mut all = vec![("org".to_string(), "org".to_string(), 0)];
    let mut declarations = String::from("tenant bench\n\n");
    for d in 0..departments {
        let _ = writeln!(declarations, "department d{d} {{");
        all.push((format!("department d{d}"), format!("department:d{d}"), 1));
        for t in 0..teams {
            let _ = writeln!(declarations, "  team d{d}t{t}");
            all.push((format!("team d{d}t{t}"), format!("team:d{d}t{t}"), 2));
        }
        declarations.push_str("}\n");
    }
    for e in 0..environments {
        let _ = writeln!(declarations, "environment e{e}");
        all.push((format!("environment e{e}"), format!("environment:e{e}"), 3));
    }
    for g in 0..groups {
        let _ = writeln!(declarations, "device_group g{g}");
        all.push((
            format!("device_group g{g}"),
            format!("device_group:g{g}"),
            4,
        ));
    }
    Scopes { all, declarations }
}

/// Generates the workload for `size` from `seed`.
pub fn generate(size: Size, seed: u64) -> Workload {
    let mut rng = Rng::new(seed);
    let scopes = scopes(size.scopes);
    // The package pool: each `pkg{n}` belongs to manager n % 8, so a name is one package.
    let pool = (size.rules / 4).max(24);
    let malicious = (size.rules / 40).max(8);
    let per_policy = size.rules.div_ceil(scopes.all.len());

    let mut policies: Vec<String> = Vec::new();
    // rego: scope key → (exact: key → [rule json], globs: manager id → [rule json])
    type Index = (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>);
    let mut index: BTreeMap<String, Index> = BTreeMap::new();
    let mut written = 0;
    for (i, (scope, key, level)) in scopes.all.iter().enumerate() {
        let policy = format!("p{i:04}");
        let mut text = format!("policy {policy} version 1 {{\n  scope {scope}\n  mode assist\n");
        let mut rules: Vec<Rule> = Vec::new();
        if *level == 0 {
            // The organisation allows each manager, as real baselines do.
            for m in 0..MANAGERS.len() {
                rules.push(Rule {
                    kind: Kind::Allow,
                    manager: m,
                    name: String::new(),
                    glob: true,
                    minor: None,
                    cond: None,
                });
            }
        }
        let mut named: BTreeSet<(String, usize, bool)> = BTreeSet::new();
        let target = rules.len() + per_policy;
        let mut attempts = 0;
        while rules.len() < target && attempts < per_policy * 4 {
            attempts += 1;
            if written + rules.len() >= size.rules {
                break;
            }
            let roll = rng.below(100);
            let n = rng.below(pool);
            // Ranges stay below the pins (1.8.* and 1.9.*): a pin outside a required range is
            // a compile error (HPL0306), and the workload must compile.
            let minor = Some(rng.below(8) as u32);
            let cond = if rng.below(8) == 0 {
                Some(rng.below(CONDITIONS.len()))
            } else {
                None
            };
            let exact = |kind, minor, cond| Rule {
                kind,
                manager: n % MANAGERS.len(),
                name: format!("pkg{n}"),
                glob: false,
                minor,
                cond,
            };
            let rule = match roll {
                0..=19 => exact(Kind::Require, None, cond),
                20..=29 => exact(Kind::Require, minor, cond),
                30..=39 => exact(Kind::Allow, None, cond),
                40..=44 => exact(Kind::Allow, minor, cond),
                45..=54 => exact(Kind::Deny, None, cond),
                55..=61 => exact(Kind::Deny, minor, cond),
                62..=73 => exact(Kind::Pin, Some(8 + rng.below(2) as u32), cond),
                74..=87 => Rule {
                    kind: if roll <= 81 { Kind::Deny } else { Kind::Allow },
                    manager: rng.below(MANAGERS.len()),
                    name: GLOB_PREFIXES[rng.below(GLOB_PREFIXES.len())].to_string(),
                    glob: true,
                    minor: None,
                    cond,
                },
                88..=95 => {
                    let k = rng.below(malicious);
                    Rule {
                        kind: Kind::FinalDeny,
                        manager: k % MANAGERS.len(),
                        name: format!("mal{k}"),
                        glob: false,
                        minor: None,
                        cond,
                    }
                }
                _ => Rule {
                    kind: Kind::FinalDeny,
                    manager: rng.below(MANAGERS.len()),
                    name: format!("mal{}", rng.below(10)),
                    glob: true,
                    minor: None,
                    cond,
                },
            };
            // A policy names a package (or glob) once per dimension.
            if !named.insert((rule.name.clone(), rule.manager, rule.kind == Kind::Pin)) {
                continue;
            }
            rules.push(rule);
        }
        for (pos, rule) in rules.iter().enumerate() {
            let _ = writeln!(text, "  {}", rule.hpl());
            let (exact, globs) = index.entry(key.clone()).or_default();
            let m = MANAGERS[rule.manager].1;
            let spec = if rule.glob {
                rule.name.len()
            } else {
                1_000_000
            };
            let mut json = format!(
                "{{\"kind\":\"{}\",\"rank\":{},\"level\":{level},\"spec\":{spec},\"policy\":\"{policy}\",\"pos\":{pos},\"m\":\"{m}\",\"n\":\"{}\"",
                rule.kind.rego(),
                rule.kind.rank(),
                rule.name
            );
            if let Some(c) = rule.cond {
                let _ = write!(json, ",\"cond\":\"c{c}\"");
            }
            match (rule.kind, rule.minor) {
                (Kind::Pin, k) => {
                    let _ = write!(json, ",\"pin\":\"1.{}.\"", k.unwrap_or(0));
                }
                (Kind::Deny, Some(k)) => {
                    let _ = write!(json, ",\"range\":[\"lt\",\"1.{k}.0\"]");
                }
                (Kind::Require | Kind::Allow, Some(k)) => {
                    let _ = write!(json, ",\"range\":[\"ge\",\"1.{k}.0\"]");
                }
                _ => {}
            }
            json.push('}');
            if rule.glob {
                json.insert_str(1, &format!("\"prefix\":\"{}\",", rule.name));
                globs.entry(m.to_string()).or_default().push(json);
            } else {
                exact
                    .entry(format!("{m}:{}", rule.name))
                    .or_default()
                    .push(json);
            }
        }
        written += rules.len();
        text.push_str("}\n");
        policies.push(text);
    }

    let mut files = vec![("scopes.hpl".to_string(), scopes.declarations.clone())];
    for (i, chunk) in policies.chunks(10).enumerate() {
        files.push((format!("p{i:03}.hpl"), chunk.join("\n")));
    }

    let mut data = String::from("{\"bench\":{\"scopes\":{");
    for (i, (key, (exact, globs))) in index.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        let _ = write!(data, "\"{key}\":{{\"exact\":{{");
        for (j, (k, rules)) in exact.iter().enumerate() {
            if j > 0 {
                data.push(',');
            }
            let _ = write!(data, "\"{k}\":[{}]", rules.join(","));
        }
        data.push_str("},\"globs\":{");
        for (j, (m, rules)) in globs.iter().enumerate() {
            if j > 0 {
                data.push(',');
            }
            let _ = write!(data, "\"{m}\":[{}]", rules.join(","));
        }
        data.push_str("}}");
    }
    data.push_str("}}}");

    Workload {
        size,
        files,
        rego: rego_policy(),
        rego_data: data,
        inventory: inventory(size.packages, pool, malicious, &mut rng),
        rules: written,
    }
}

/// The device: department d0, team d0t0, environment e0, groups g0 g1 g2, arm64, ring pilot;
/// `packages` installed over the eight managers: about 40 % the policies' packages, 5 %
/// finally denied names, 15 % names the globs match, the rest unnamed.
fn inventory(packages: usize, pool: usize, malicious: usize, rng: &mut Rng) -> String {
    let mut per_manager: Vec<BTreeMap<String, String>> = vec![BTreeMap::new(); MANAGERS.len()];
    let mut attempts = 0;
    let mut count = 0;
    while count < packages && attempts < packages * 20 {
        attempts += 1;
        let roll = rng.below(100);
        let (manager, name) = match roll {
            0..=39 => {
                let n = rng.below(pool);
                (n % MANAGERS.len(), format!("pkg{n}"))
            }
            40..=44 => {
                let k = rng.below(malicious);
                if rng.below(2) == 0 {
                    (k % MANAGERS.len(), format!("mal{k}"))
                } else {
                    (rng.below(MANAGERS.len()), format!("mal{k}x"))
                }
            }
            45..=59 => (rng.below(MANAGERS.len()), format!("tool{}", rng.below(400))),
            _ => (
                rng.below(MANAGERS.len()),
                format!("extra{}", rng.below(packages * 4)),
            ),
        };
        let version = format!("1.{}.{}", rng.below(10), rng.below(5));
        if per_manager[manager].insert(name, version).is_none() {
            count += 1;
        }
    }
    let managers_json: Vec<String> = MANAGERS
        .iter()
        .zip(&per_manager)
        .map(|((_, id), pkgs)| {
            let list: Vec<String> = pkgs
                .iter()
                .map(|(n, v)| format!("{{\"name\":\"{n}\",\"versions\":[\"{v}\"]}}"))
                .collect();
            format!("{{\"id\":\"{id}\",\"packages\":[{}]}}", list.join(","))
        })
        .collect();
    format!(
        "{{\"schema\":\"hpl.inventory.v1\",\"tenant_id\":\"bench\",\"device_id\":\"BENCH1\",\"collected_at\":\"2026-11-29T01:00:00Z\",\
\"scopes\":{{\"department\":\"d0\",\"team\":\"d0t0\",\"environment\":\"e0\",\"device_groups\":[\"g0\",\"g1\",\"g2\"]}},\"ring\":\"pilot\",\
\"device\":{{\"arch\":\"arm64\",\"os\":{{\"name\":\"macos\",\"version\":\"15.3\"}},\"facts\":{{}}}},\"managers\":[{}]}}",
        managers_json.join(",")
    )
}

/// The Rego side: DESIGN §3's decision, written once over the precomputed per-scope index.
/// Sorting `[-level, -matcher, -kind rank, policy, position]` and taking the first is "most
/// specific level, then matcher, then deny > require > allow, then the lowest (policy,
/// position)".
const REGO: &str = r#"package hpl

import rego.v1

scopes := array.concat(
	[
		"org",
		concat(":", ["department", input.scopes.department]),
		concat(":", ["team", input.scopes.team]),
		concat(":", ["environment", input.scopes.environment]),
	],
	[concat(":", ["device_group", g]) | some g in input.scopes.device_groups],
)

index := [data.bench.scopes[s] | some s in scopes; data.bench.scopes[s]]

CONDITIONS

applies(r) if not r.cond

applies(r) if cond[r.cond]

installed[k] := v if {
	some m in input.managers
	some p in m.packages
	k := concat(":", [m.id, p.name])
	v := p.versions[0]
}

required contains k if {
	some ix in index
	some k, rs in ix.exact
	some r in rs
	r.kind == "require"
	applies(r)
}

candidates(k, m, n) := array.concat(
	[r | some ix in index; some r in ix.exact[k]; applies(r)],
	[r | some ix in index; some r in ix.globs[m]; startswith(n, r.prefix); applies(r)],
)

in_range(r, v) if not r.range

in_range(r, v) if {
	r.range[0] == "ge"
	semver.compare(v, r.range[1]) >= 0
}

in_range(r, v) if {
	r.range[0] == "lt"
	semver.compare(v, r.range[1]) < 0
}

first(rs) := rs[i] if {
	keys := sort([[0 - r.level, 0 - r.spec, 0 - r.rank, r.policy, r.pos, j] | some j, r in rs])
	i := keys[0][5]
}

# Installed packages.
decision[k] := d if {
	some k, v in installed
	[m, n] := split(k, ":")
	cs := candidates(k, m, n)
	finals := [r | some r in cs; r.kind == "deny!"]
	d := decide_installed(cs, finals, v)
}

decide_installed(cs, finals, v) := {"fires": true, "rule": first(finals), "category": "present_denied"} if count(finals) > 0

decide_installed(cs, finals, v) := d if {
	count(finals) == 0
	live := array.concat([r | some r in cs; r.kind in {"require", "allow"}], [r | some r in cs; r.kind == "deny"; in_range(r, v)])
	d := outcome(first(live), v)
}

outcome(w, v) := {"fires": true, "rule": w, "category": "present_denied"} if w.kind == "deny"

outcome(w, v) := {"fires": false, "rule": w, "category": "version_out_of_range"} if {
	w.kind != "deny"
	not in_range(w, v)
}

outcome(w, v) := {"fires": false} if {
	w.kind != "deny"
	in_range(w, v)
}

violations contains {"category": d.category, "manager": m, "package": n, "policy": d.rule.policy} if {
	some k, d in decision
	d.category
	[m, n] := split(k, ":")
}

violations contains {"category": "pin_mismatch", "manager": m, "package": n, "policy": p.policy} if {
	some k, v in installed
	not decision[k].fires
	[m, n] := split(k, ":")
	pins := [r | some r in candidates(k, m, n); r.kind == "pin"]
	count(pins) > 0
	p := first(pins)
	not startswith(v, p.pin)
}

# Required packages that are not installed: ranged denies drop out (nothing installed is in
# their range), a final deny forbids the package (absent is compliant).
violations contains {"category": "missing_required", "manager": m, "package": n, "policy": w.policy} if {
	some k in required
	not installed[k]
	[m, n] := split(k, ":")
	cs := candidates(k, m, n)
	count([r | some r in cs; r.kind == "deny!"]) == 0
	live := array.concat([r | some r in cs; r.kind in {"require", "allow"}], [r | some r in cs; r.kind == "deny"; not r.range])
	w := first(live)
	w.kind == "require"
}
"#;

/// The Rego policy text with its conditions filled in.
pub fn rego_policy() -> String {
    let mut conds = String::new();
    for (i, (_, bodies)) in CONDITIONS.iter().enumerate() {
        for body in bodies.iter() {
            let _ = writeln!(
                conds,
                "cond contains \"c{i}\" if {{\n\t{}\n}}\n",
                body.replace("; ", "\n\t")
            );
        }
    }
    REGO.replace("CONDITIONS", conds.trim_end())
}
