//! The fleet summary: what a report keeps of each compliance record, and the aggregate of a
//! fleet. `hpl report` (on inventories it evaluates) and `hpl-server report` (on the records
//! devices upload) both fold [`DeviceSummary`]s into a [`Fleet`], so the same records give the
//! same numbers.
//!
//! Memory is bounded whatever the fleet's size: counts per state, scope, ring and manager
//! (scopes come from the policy; rings and managers are capped at [`MAX_KEYS`] distinct
//! values, the rest counted as `(other)`), drifts capped the same way, and samples of at most
//! [`SAMPLE`] devices, the smallest ids, so the result does not depend on the order in which
//! the workers finish.

use crate::inventory::Inventory;
use crate::record::{ComplianceRecord, State};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Distinct rings, managers, drifts or rules kept before the rest is counted as `(other)`.
pub const MAX_KEYS: usize = 10_000;
/// Devices named per unknown reason or per unreadable input.
pub const SAMPLE: usize = 10;
/// Drifts and rules listed.
pub const TOP: usize = 20;

/// What the report keeps of one device's evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSummary {
    pub device_id: String,
    pub state: State,
    /// The device's scopes as records name them, most general first.
    pub scopes: Vec<String>,
    pub ring: String,
    /// (category, manager, package, rule source, rule policy)
    pub drifts: Vec<(String, String, String, String, String)>,
    /// (code, message)
    pub unknown: Vec<(String, String)>,
}

impl DeviceSummary {
    pub fn of(inventory: &Inventory, record: &ComplianceRecord, tenant: &str) -> DeviceSummary {
        Self::with(
            record,
            scope_labels(inventory, tenant),
            inventory.ring.clone().unwrap_or_else(|| "(none)".into()),
        )
    }

    /// The summary of a record, with the device's scope labels and ring given.
    pub fn with(record: &ComplianceRecord, scopes: Vec<String>, ring: String) -> DeviceSummary {
        let mut drifts: Vec<_> = record
            .violations
            .iter()
            .map(|v| {
                (
                    v.category.as_str().to_string(),
                    v.manager.to_string(),
                    v.package.clone(),
                    v.rule.source.to_string(),
                    v.rule.policy.to_string(),
                )
            })
            .collect();
        drifts.dedup();
        DeviceSummary {
            device_id: record.device_id.clone(),
            state: record.state,
            scopes,
            ring,
            drifts,
            unknown: record
                .unknown_reasons
                .iter()
                .map(|u| (u.code.as_str().to_string(), u.message.clone()))
                .collect(),
        }
    }
}

/// A device's scopes as records name them (`org:acme`, `team:platform` …), most general
/// first, from its inventory.
pub fn scope_labels(inventory: &Inventory, tenant: &str) -> Vec<String> {
    let s = &inventory.scopes;
    let mut scopes = vec![format!("org:{tenant}")];
    scopes.extend(s.department.iter().map(|d| format!("department:{d}")));
    scopes.extend(s.team.iter().map(|t| format!("team:{t}")));
    scopes.extend(s.environment.iter().map(|e| format!("environment:{e}")));
    scopes.extend(s.device_groups.iter().map(|g| format!("device_group:{g}")));
    scopes
}

impl DeviceSummary {
    /// The summary of a record as JSON (`hpl.record.v1`, as a device uploads it) with the
    /// device's scope labels and ring: what [`DeviceSummary::of`] makes of the record itself.
    /// A record without the fields a summary needs is refused with the field's name.
    pub fn from_record_json(
        record: &serde_json::Value,
        scopes: Vec<String>,
        ring: String,
    ) -> Result<DeviceSummary, String> {
        fn text<'a>(v: &'a serde_json::Value, path: &str) -> Result<&'a str, String> {
            path.split('.')
                .try_fold(v, |v, k| v.get(k))
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| format!("the record has no string `{path}`"))
        }
        if text(record, "schema")? != crate::record::SCHEMA {
            return Err(format!("the record is not {}", crate::record::SCHEMA));
        }
        let state = match text(record, "state")? {
            "compliant" => State::Compliant,
            "warning" => State::Warning,
            "unknown" => State::Unknown,
            "non_compliant" => State::NonCompliant,
            other => return Err(format!("the record's state `{other}` is not a state")),
        };
        let list = |key: &str| -> Result<&Vec<serde_json::Value>, String> {
            record
                .get(key)
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| format!("the record has no list `{key}`"))
        };
        let mut drifts = Vec::new();
        for v in list("violations")? {
            drifts.push((
                text(v, "category")?.to_string(),
                text(v, "manager")?.to_string(),
                text(v, "package")?.to_string(),
                text(v, "rule.source")?.to_string(),
                text(v, "rule.policy")?.to_string(),
            ));
        }
        drifts.dedup();
        let mut unknown = Vec::new();
        for u in list("unknown_reasons")? {
            unknown.push((
                text(u, "code")?.to_string(),
                text(u, "message")?.to_string(),
            ));
        }
        Ok(DeviceSummary {
            device_id: text(record, "device_id")?.to_string(),
            state,
            scopes,
            ring,
            drifts,
            unknown,
        })
    }
}

/// Devices per state.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct StateCounts {
    pub compliant: u64,
    pub warning: u64,
    pub unknown: u64,
    pub non_compliant: u64,
}

impl StateCounts {
    pub fn add(&mut self, s: State) {
        match s {
            State::Compliant => self.compliant += 1,
            State::Warning => self.warning += 1,
            State::Unknown => self.unknown += 1,
            State::NonCompliant => self.non_compliant += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.compliant + self.warning + self.unknown + self.non_compliant
    }

    /// Compliant or warning, in percent of all (0 for an empty fleet).
    pub fn compliant_percent(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            t => (self.compliant + self.warning) as f64 * 100.0 / t as f64,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ManagerCounts {
    /// Devices with at least one violation of this manager.
    pub devices: u64,
    pub violations: u64,
}

/// Devices kept as a sample: the smallest ids.
#[derive(Debug, Clone, Default)]
struct Sample {
    count: u64,
    smallest: BTreeMap<String, String>,
}

impl Sample {
    fn group(&self, code: &str) -> UnknownGroup {
        UnknownGroup {
            code: code.to_string(),
            devices: self.count,
            sample: self
                .smallest
                .iter()
                .map(|(d, m)| Named {
                    device: d.clone(),
                    detail: m.clone(),
                })
                .collect(),
        }
    }

    fn add(&mut self, id: &str, detail: &str) {
        self.count += 1;
        if self.smallest.len() < SAMPLE
            || self
                .smallest
                .last_key_value()
                .is_some_and(|(k, _)| id < k.as_str())
        {
            self.smallest.insert(id.to_string(), detail.to_string());
            if self.smallest.len() > SAMPLE {
                self.smallest.pop_last();
            }
        }
    }
}

/// A counter with at most [`MAX_KEYS`] keys; the rest go to `(other)`.
#[derive(Debug, Clone)]
struct Capped<K, V> {
    map: HashMap<K, V>,
    other: V,
}

impl<K: std::hash::Hash + Eq, V: Default> Default for Capped<K, V> {
    fn default() -> Self {
        Capped {
            map: HashMap::new(),
            other: V::default(),
        }
    }
}

impl<K: std::hash::Hash + Eq, V: Default> Capped<K, V> {
    fn entry(&mut self, k: K) -> &mut V {
        if self.map.len() >= MAX_KEYS && !self.map.contains_key(&k) {
            return &mut self.other;
        }
        self.map.entry(k).or_default()
    }
}

#[derive(Debug, Clone, Default)]
struct DriftCount {
    devices: u64,
    rules: BTreeMap<(String, String), u64>,
}

/// The aggregate of a fleet (one input).
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub states: StateCounts,
    by_scope: BTreeMap<String, StateCounts>,
    by_ring: Capped<String, StateCounts>,
    by_manager: Capped<String, ManagerCounts>,
    drifts: Capped<(String, String, String), DriftCount>,
    rules: Capped<(String, String), u64>,
    unknown: BTreeMap<String, Sample>,
    unreadable: Sample,
}

impl Fleet {
    pub fn add(&mut self, d: &DeviceSummary) {
        self.states.add(d.state);
        for s in &d.scopes {
            if self.by_scope.len() < MAX_KEYS || self.by_scope.contains_key(s) {
                self.by_scope.entry(s.clone()).or_default().add(d.state);
            }
        }
        self.by_ring.entry(d.ring.clone()).add(d.state);
        let mut managers = BTreeSet::new();
        let mut rules = BTreeSet::new();
        for (category, manager, package, source, policy) in &d.drifts {
            let m = self.by_manager.entry(manager.clone());
            m.violations += 1;
            if managers.insert(manager) {
                m.devices += 1;
            }
            let drift = self
                .drifts
                .entry((category.clone(), manager.clone(), package.clone()));
            drift.devices += 1;
            *drift
                .rules
                .entry((policy.clone(), source.clone()))
                .or_default() += 1;
            if rules.insert((policy, source)) {
                *self.rules.entry((policy.clone(), source.clone())) += 1;
            }
        }
        let mut codes = BTreeSet::new();
        for (code, message) in &d.unknown {
            if codes.insert(code) {
                self.unknown
                    .entry(code.clone())
                    .or_default()
                    .add(&d.device_id, message);
            }
        }
    }

    /// An input that could not be read or parsed: counted as `unknown` (fail closed), with
    /// where it came from.
    pub fn add_unreadable(&mut self, source: &str, error: &str) {
        self.states.add(State::Unknown);
        self.unreadable.add(source, error);
    }

    pub fn report(&self) -> FleetReport {
        let mut drifts: Vec<Drift> = self
            .drifts
            .map
            .iter()
            .map(|((category, manager, package), d)| Drift {
                category: category.clone(),
                manager: manager.clone(),
                package: package.clone(),
                devices: d.devices,
                rules: d
                    .rules
                    .iter()
                    .map(|((policy, source), n)| RuleCount {
                        policy: policy.clone(),
                        source: source.clone(),
                        devices: *n,
                    })
                    .collect(),
            })
            .collect();
        drifts.sort_by(|a, b| {
            b.devices.cmp(&a.devices).then_with(|| {
                (&a.category, &a.manager, &a.package).cmp(&(&b.category, &b.manager, &b.package))
            })
        });
        let distinct_drifts = drifts.len() as u64;
        drifts.truncate(TOP);
        let mut rules: Vec<RuleCount> = self
            .rules
            .map
            .iter()
            .map(|((policy, source), n)| RuleCount {
                policy: policy.clone(),
                source: source.clone(),
                devices: *n,
            })
            .collect();
        rules.sort_by(|a, b| {
            b.devices
                .cmp(&a.devices)
                .then_with(|| (&a.policy, &a.source).cmp(&(&b.policy, &b.source)))
        });
        rules.truncate(TOP);
        let mut by_ring: BTreeMap<String, StateCounts> = self
            .by_ring
            .map
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if self.by_ring.other.total() > 0 {
            by_ring.insert("(other)".into(), self.by_ring.other);
        }
        let mut by_manager: BTreeMap<String, ManagerCounts> = self
            .by_manager
            .map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if self.by_manager.other.violations > 0 {
            by_manager.insert("(other)".into(), self.by_manager.other.clone());
        }
        FleetReport {
            devices: self.states.total(),
            states: self.states,
            compliant_percent: (self.states.compliant_percent() * 10.0).round() / 10.0,
            by_scope: self.by_scope.clone(),
            by_ring,
            by_manager,
            distinct_drifts,
            top_drifts: drifts,
            top_rules: rules,
            unknown: self.unknown.iter().map(|(code, s)| s.group(code)).collect(),
            unreadable: self.unreadable.group("unreadable_inventory"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleCount {
    pub policy: String,
    pub source: String,
    pub devices: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub category: String,
    pub manager: String,
    pub package: String,
    pub devices: u64,
    /// The rules behind it, with the devices each decided.
    pub rules: Vec<RuleCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Named {
    pub device: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnknownGroup {
    pub code: String,
    pub devices: u64,
    /// The devices with the smallest ids, with the reason's message.
    pub sample: Vec<Named>,
}

/// The summary of one input, as `--format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub devices: u64,
    pub states: StateCounts,
    /// Compliant or warning, in percent.
    pub compliant_percent: f64,
    pub by_scope: BTreeMap<String, StateCounts>,
    pub by_ring: BTreeMap<String, StateCounts>,
    pub by_manager: BTreeMap<String, ManagerCounts>,
    /// How many distinct (category, manager, package) drifts the fleet has.
    pub distinct_drifts: u64,
    pub top_drifts: Vec<Drift>,
    /// The rules behind the most devices' violations.
    pub top_rules: Vec<RuleCount>,
    pub unknown: Vec<UnknownGroup>,
    /// Inventories that could not be read (counted as unknown).
    pub unreadable: UnknownGroup,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_keep_the_smallest_ids_whatever_the_order() {
        let mut a = Sample::default();
        let mut b = Sample::default();
        let ids: Vec<String> = (0..100).map(|i| format!("D{i:03}")).collect();
        for id in &ids {
            a.add(id, "x");
        }
        for id in ids.iter().rev() {
            b.add(id, "x");
        }
        assert_eq!(a.smallest, b.smallest);
        assert_eq!(a.count, 100);
        assert_eq!(a.smallest.keys().next().map(String::as_str), Some("D000"));
        assert_eq!(a.smallest.len(), SAMPLE);
    }

    #[test]
    fn counters_are_capped() {
        let mut c: Capped<u32, u64> = Capped::default();
        for i in 0..(MAX_KEYS as u32 + 5) {
            *c.entry(i) += 1;
        }
        assert_eq!(c.map.len(), MAX_KEYS);
        assert_eq!(c.other, 5);
    }
}
