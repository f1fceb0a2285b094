//! What a change does: winners per scope path, and with a fleet's inventories, which devices
//! change state or violations (the rollout impact preview).

use hpl_runtime::device::Device;
use hpl_runtime::inventory::Inventory;
use hpl_runtime::load::VerifiedBundle;
use hpl_runtime::record::ComplianceRecord;
use hpl_runtime::summary::SAMPLE;
use hpl_runtime::vocab::Level;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The most scope paths winners are compared on.
pub const MAX_PATHS: usize = 2_000;

/// A device's place: the scopes an inventory can name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScopePath {
    pub department: Option<String>,
    pub team: Option<String>,
    pub environment: Option<String>,
    pub group: Option<String>,
}

impl ScopePath {
    pub fn label(&self, tenant: &str) -> String {
        let mut parts = vec![format!("org:{tenant}")];
        parts.extend(self.department.iter().map(|d| format!("department:{d}")));
        parts.extend(self.team.iter().map(|t| format!("team:{t}")));
        parts.extend(self.environment.iter().map(|e| format!("environment:{e}")));
        parts.extend(self.group.iter().map(|g| format!("device_group:{g}")));
        parts.join(" › ")
    }
}

/// Every scope path of the two bundles: (department, team) or department alone or neither,
/// times an environment or none, times one device group or none.
pub fn scope_paths(bundles: [&VerifiedBundle; 2]) -> Vec<ScopePath> {
    let mut places: BTreeSet<(Option<String>, Option<String>)> = BTreeSet::new();
    let mut envs: BTreeSet<Option<String>> = BTreeSet::from([None]);
    let mut groups: BTreeSet<Option<String>> = BTreeSet::from([None]);
    places.insert((None, None));
    for b in bundles {
        let c = b.content();
        for s in &c.scopes {
            let name = c.str(s.name).to_string();
            match s.level {
                Level::Department => {
                    places.insert((Some(name), None));
                }
                Level::Team => {
                    let dept = s
                        .parent
                        .map(|p| c.str(c.scopes[p as usize].name).to_string());
                    places.insert((dept, Some(name)));
                }
                Level::Environment => {
                    envs.insert(Some(name));
                }
                Level::DeviceGroup => {
                    groups.insert(Some(name));
                }
                Level::Org => {}
            }
        }
    }
    let mut out = Vec::new();
    for (department, team) in &places {
        for environment in &envs {
            for group in &groups {
                out.push(ScopePath {
                    department: department.clone(),
                    team: team.clone(),
                    environment: environment.clone(),
                    group: group.clone(),
                });
                if out.len() >= MAX_PATHS {
                    return out;
                }
            }
        }
    }
    out
}

/// A device of that scope path with nothing installed and no facts.
pub fn synthetic_device(tenant: &str, path: &ScopePath, now: i64) -> Option<Inventory> {
    let json = serde_json::json!({
        "schema": "hpl.inventory.v1",
        "tenant_id": tenant,
        "device_id": "hpl-diff",
        "collected_at": hpl_runtime::eval::timestamp(now),
        "scopes": {
            "department": path.department,
            "team": path.team,
            "environment": path.environment,
            "device_groups": path.group.iter().collect::<Vec<_>>(),
        },
        "device": { "arch": "arm64", "os": { "name": "macos", "version": "15.0" }, "facts": {} },
        "managers": [],
    });
    Inventory::from_json(&json).ok()
}

/// The deciding rule of a package on a device, as the diff compares it: what it says and
/// where it is bound, not the line it is on.
#[derive(Debug, Clone, Serialize)]
pub struct Winner {
    /// `require git >= 2.40 (baseline, org:acme)`
    pub rule: String,
    pub source: String,
}

impl PartialEq for Winner {
    fn eq(&self, other: &Self) -> bool {
        self.rule == other.rule
    }
}

impl Eq for Winner {}

impl PartialOrd for Winner {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Winner {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rule.cmp(&other.rule)
    }
}

pub fn winner(
    bundle: &VerifiedBundle,
    inventory: &Inventory,
    now: i64,
    manager: &str,
    package: &str,
) -> Option<Winner> {
    let (t, _) = hpl_runtime::trace::trace(
        bundle,
        inventory,
        now,
        &Default::default(),
        manager,
        package,
    )
    .ok()?;
    let d = t.decider()?;
    let mut rule = format!("{} {}", d.kind.as_str(), d.target);
    if let Some(c) = &d.constraint {
        rule.push_str(&format!(" {c}"));
    }
    if let Some(c) = &d.condition {
        rule.push_str(&format!(" when {}", c.source));
    }
    rule.push_str(&format!(" ({}, {})", d.rule.policy, d.rule.scope));
    Some(Winner {
        rule,
        source: d.rule.source.to_string(),
    })
}

/// A package whose deciding rule changed on some scope paths.
#[derive(Debug, Clone, Serialize)]
pub struct WinnerChange {
    pub package: String,
    pub old: Option<Winner>,
    pub new: Option<Winner>,
    pub paths: u64,
    /// The first scope paths, most general first.
    pub sample: Vec<String>,
}

/// What of a record a device change is made of: the state, the violations and the plan, not
/// where the rules sit in their files (that is the policy diff's business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: String,
    pub violations: BTreeSet<String>,
    pub unknown: BTreeSet<String>,
    pub remediation: BTreeSet<String>,
}

impl Outcome {
    pub fn of(r: &ComplianceRecord) -> Outcome {
        Outcome {
            state: r.state.as_str().to_string(),
            violations: r
                .violations
                .iter()
                .map(|v| {
                    format!(
                        "{} {}:{} (expected {}, found {})",
                        v.category.as_str(),
                        v.manager,
                        v.package,
                        v.expected,
                        v.found.as_deref().unwrap_or("nothing")
                    )
                })
                .collect(),
            unknown: r
                .unknown_reasons
                .iter()
                .map(|u| format!("{}: {}", u.code, u.message))
                .collect(),
            remediation: r
                .remediation
                .iter()
                .map(|x| {
                    format!(
                        "{} {}:{}{} ({}{})",
                        x.action,
                        x.manager,
                        x.package,
                        x.to.as_deref()
                            .map(|t| format!(" to {t}"))
                            .unwrap_or_default(),
                        x.mode,
                        if x.automatic { ", automatic" } else { "" }
                    )
                })
                .collect(),
        }
    }
}

/// One device's change.
pub struct DeviceChange {
    pub device_id: String,
    pub scopes: Vec<String>,
    pub ring: String,
    pub old: Outcome,
    pub new: Outcome,
}

/// The device of one inventory, evaluated on both sides; `None` when nothing changes.
pub fn compare(
    old: &Device,
    new: &Device,
    inventory: &Inventory,
    at: i64,
    tenant: &str,
) -> Option<DeviceChange> {
    let (a, b) = (
        Outcome::of(&old.evaluate(inventory, at)),
        Outcome::of(&new.evaluate(inventory, at)),
    );
    if a == b {
        return None;
    }
    let scopes = crate::fleet::scope_labels(inventory, tenant);
    Some(DeviceChange {
        device_id: inventory.device_id.clone(),
        scopes,
        ring: inventory.ring.clone().unwrap_or_else(|| "(none)".into()),
        old: a,
        new: b,
    })
}

/// A kind of change and the devices it happens to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Affected {
    pub devices: u64,
    /// The smallest device ids.
    pub sample: Vec<String>,
}

impl Affected {
    fn add(&mut self, id: &str) {
        self.devices += 1;
        if self.sample.len() < SAMPLE || self.sample.last().is_some_and(|l| id < l.as_str()) {
            let at = self.sample.partition_point(|x| x.as_str() < id);
            self.sample.insert(at, id.to_string());
            self.sample.truncate(SAMPLE);
        }
    }
}

/// The rollout impact preview over a fleet (bounded like the report: counts and samples).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Impact {
    pub devices: u64,
    pub changed: u64,
    pub unreadable: u64,
    /// `compliant → non_compliant` → devices
    pub states: BTreeMap<String, Affected>,
    /// `+ present_denied homebrew_formula:telnet …` (new) and `- …` (gone) → devices
    pub violations: BTreeMap<String, Affected>,
    pub remediation: BTreeMap<String, Affected>,
    /// Changed devices per scope and per ring.
    pub by_scope: BTreeMap<String, u64>,
    pub by_ring: BTreeMap<String, u64>,
}

impl Impact {
    pub fn add(&mut self, change: Option<&DeviceChange>) {
        self.devices += 1;
        let Some(c) = change else { return };
        self.changed += 1;
        if c.old.state != c.new.state {
            self.states
                .entry(format!("{} → {}", c.old.state, c.new.state))
                .or_default()
                .add(&c.device_id);
        }
        let capped = |map: &mut BTreeMap<String, Affected>, key: String| {
            if map.len() < hpl_runtime::summary::MAX_KEYS || map.contains_key(&key) {
                map.entry(key).or_default().add(&c.device_id);
            }
        };
        for v in c.new.violations.difference(&c.old.violations) {
            capped(&mut self.violations, format!("+ {v}"));
        }
        for v in c.old.violations.difference(&c.new.violations) {
            capped(&mut self.violations, format!("- {v}"));
        }
        for x in c.new.remediation.difference(&c.old.remediation) {
            capped(&mut self.remediation, format!("+ {x}"));
        }
        for x in c.old.remediation.difference(&c.new.remediation) {
            capped(&mut self.remediation, format!("- {x}"));
        }
        for s in &c.scopes {
            if self.by_scope.len() < hpl_runtime::summary::MAX_KEYS || self.by_scope.contains_key(s)
            {
                *self.by_scope.entry(s.clone()).or_default() += 1;
            }
        }
        if self.by_ring.len() < hpl_runtime::summary::MAX_KEYS || self.by_ring.contains_key(&c.ring)
        {
            *self.by_ring.entry(c.ring.clone()).or_default() += 1;
        }
    }
}
