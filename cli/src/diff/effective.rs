//! The effective policy of a bundle as comparable entries, and their diff.
//!
//! An entry is one thing a device can be held to: a rule bound to a scope, a toolchain rule,
//! a policy's mode and version, an upgrade window, a guard, a declared scope. Its key says
//! which thing it is (policy, scope, what it names); its fields say how. Two bundles with the
//! same entries decide every device alike.

use hpl_runtime::bundle::BundleContent;
use hpl_runtime::eval::origin_of;
use hpl_runtime::load::VerifiedBundle;
use serde::Serialize;
use std::collections::BTreeMap;

/// What an entry is, for grouping: `rule`, `toolchain`, `policy`, `window`, `guard`, `scope`.
pub type Key = (String, String, String, String, u32);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// `rule`, `toolchain`, `policy`, `window`, `guard`, `scope`
    pub what: &'static str,
    pub policy: String,
    /// `org:acme`, `team:platform`
    pub scope: String,
    /// The rule as written: `require homebrew_formula:git`, `window mon-fri 01:00-05:00`.
    pub item: String,
    /// How it is: constraint, condition, severity, reason, position …
    pub fields: BTreeMap<&'static str, String>,
    /// `platform.hpl:6:3`
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(skip)]
    pub(crate) manager: Option<String>,
    #[serde(skip)]
    pub(crate) pattern: Option<(String, bool)>,
}

fn days(bits: u8) -> String {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, d)| *d)
        .collect::<Vec<_>>()
        .join(",")
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn condition(c: &BundleContent, k: Option<u32>) -> Option<String> {
    k.map(|k| c.str(c.conditions[k as usize].source).to_string())
}

/// Every entry of the bundle, keyed; entries with one key are numbered in order.
pub fn entries(bundle: &VerifiedBundle) -> BTreeMap<Key, Entry> {
    let c = bundle.content();
    let mut out: BTreeMap<Key, Entry> = BTreeMap::new();
    let mut push = |e: Entry| {
        let mut n = 0;
        loop {
            let key = (
                e.what.to_string(),
                e.policy.clone(),
                e.scope.clone(),
                e.item.clone(),
                n,
            );
            if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(key) {
                slot.insert(e);
                return;
            }
            n += 1;
        }
    };
    for s in &c.scopes {
        let name = match s.level {
            hpl_runtime::vocab::Level::Org => c.manifest.tenant.clone(),
            _ => c.str(s.name).to_string(),
        };
        let mut fields = BTreeMap::new();
        if let Some(p) = s.parent {
            fields.insert("department", c.str(c.scopes[p as usize].name).to_string());
        }
        push(Entry {
            what: "scope",
            policy: String::new(),
            scope: format!("{}:{name}", s.level),
            item: format!("{} {name}", s.level),
            fields,
            source: String::new(),
            manager: None,
            pattern: None,
        });
    }
    for p in &c.policies {
        let mut fields = BTreeMap::new();
        fields.insert("mode", p.mode.as_str().to_string());
        fields.insert("version", p.version.to_string());
        push(Entry {
            what: "policy",
            policy: c.str(p.name).to_string(),
            scope: String::new(),
            item: format!("policy {}", c.str(p.name)),
            fields,
            source: String::new(),
            manager: None,
            pattern: None,
        });
    }
    // Two rules tie only when they name the same packages the same way (same manager and
    // pattern) in one policy: then the earlier decides (DESIGN §3). A rule's place among
    // those is its `order`; its line is not compared, so moving lines changes nothing.
    type Ranked = ((u32, u32, u32, bool), (u32, u32), usize);
    let mut ranked: Vec<Ranked> = c
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let o = &c.origins[r.origin as usize];
            (
                (o.policy, r.manager, r.pattern, r.glob),
                (o.line, o.column),
                i,
            )
        })
        .collect();
    ranked.sort();
    let mut rank = vec![0usize; c.rules.len()];
    for (k, &(group, place, i)) in ranked.iter().enumerate() {
        rank[i] = match k.checked_sub(1).map(|j| ranked[j]) {
            Some((g, p, j)) if g == group => rank[j] + usize::from(p != place),
            _ => 0,
        };
    }
    for (i, r) in c.rules.iter().enumerate() {
        let o = origin_of(c, r.origin);
        let manager = c.str(c.managers[r.manager as usize].id).to_string();
        let kind = hpl_runtime::vocab::RecordRuleKind::of(r.kind, r.is_final).as_str();
        let mut fields = BTreeMap::new();
        if let Some(k) = r.constraint {
            fields.insert("version", c.str(k).to_string());
        }
        if let Some(w) = condition(c, r.condition) {
            fields.insert("when", w);
        }
        if r.warn {
            fields.insert("severity", "warn".into());
        }
        if let Some(b) = r.because {
            fields.insert("because", c.str(b).to_string());
        }
        if rank[i] > 0 {
            // Only a rule that a same-named rule of its policy comes before has an order.
            fields.insert("order", format!("{}", rank[i] + 1));
        }
        push(Entry {
            what: "rule",
            policy: o.policy.to_string(),
            scope: o.scope.to_string(),
            item: format!("{kind} {}", c.str(r.display)),
            fields,
            source: o.source.to_string(),
            manager: Some(manager),
            pattern: Some((c.str(r.pattern).to_string(), r.glob)),
        });
    }
    for t in &c.toolchains {
        let o = origin_of(c, t.origin);
        let mut fields = BTreeMap::new();
        fields.insert(
            "from",
            t.sources
                .iter()
                .map(|&m| c.str(c.managers[m as usize].id).to_string())
                .collect::<Vec<_>>()
                .join(", "),
        );
        if let Some(w) = condition(c, t.condition) {
            fields.insert("when", w);
        }
        push(Entry {
            what: "toolchain",
            policy: o.policy.to_string(),
            scope: o.scope.to_string(),
            item: format!("toolchain {}", c.str(t.name)),
            fields,
            source: o.source.to_string(),
            manager: None,
            pattern: None,
        });
    }
    for w in &c.windows {
        let policy = c.str(c.policies[w.policy as usize].name).to_string();
        let mut fields = BTreeMap::new();
        if let Some(cond) = condition(c, w.condition) {
            fields.insert("when", cond);
        }
        let zone = w.zone.map_or("local".to_string(), |z| c.str(z).to_string());
        push(Entry {
            what: "window",
            policy,
            scope: String::new(),
            item: format!(
                "window {} {}-{} {zone}",
                days(w.days),
                hhmm(w.start_minute),
                hhmm(w.end_minute)
            ),
            fields,
            source: String::new(),
            manager: None,
            pattern: None,
        });
    }
    for g in &c.guards {
        let o = origin_of(c, g.origin);
        let mut fields = BTreeMap::new();
        fields.insert("level", g.level.as_str().to_string());
        if let Some(cond) = condition(c, g.condition) {
            fields.insert("when", cond);
        }
        push(Entry {
            what: "guard",
            policy: o.policy.to_string(),
            scope: o.scope.to_string(),
            item: format!("guard {}", c.str(c.managers[g.manager as usize].id)),
            fields,
            source: o.source.to_string(),
            manager: None,
            pattern: None,
        });
    }
    out
}

/// One difference between the two effective policies.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Added {
        #[serde(flatten)]
        entry: Entry,
    },
    Removed {
        #[serde(flatten)]
        entry: Entry,
    },
    Changed {
        #[serde(flatten)]
        entry: Entry,
        /// field → (old, new); an absent field is `null`.
        changes: BTreeMap<&'static str, (Option<String>, Option<String>)>,
    },
}

impl Change {
    pub fn entry(&self) -> &Entry {
        match self {
            Change::Added { entry } | Change::Removed { entry } | Change::Changed { entry, .. } => {
                entry
            }
        }
    }
}

/// The changes from `old` to `new`, in key order (by kind of entry, policy, scope, item).
pub fn diff(old: &BTreeMap<Key, Entry>, new: &BTreeMap<Key, Entry>) -> Vec<Change> {
    let mut out = Vec::new();
    for (k, o) in old {
        match new.get(k) {
            None => out.push(Change::Removed { entry: o.clone() }),
            Some(n) if n.fields != o.fields => {
                let mut changes = BTreeMap::new();
                for f in o.fields.keys().chain(n.fields.keys()) {
                    let (a, b) = (o.fields.get(f), n.fields.get(f));
                    if a != b {
                        changes.insert(*f, (a.cloned(), b.cloned()));
                    }
                }
                out.push(Change::Changed {
                    entry: n.clone(),
                    changes,
                });
            }
            Some(_) => {}
        }
    }
    for (k, n) in new {
        if !old.contains_key(k) {
            out.push(Change::Added { entry: n.clone() });
        }
    }
    out.sort_by(|a, b| {
        let (x, y) = (a.entry(), b.entry());
        (x.what, &x.policy, &x.scope, &x.item).cmp(&(y.what, &y.policy, &y.scope, &y.item))
    });
    out
}
