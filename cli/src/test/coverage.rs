//! Rule coverage of a test run: for every rule of the policy (a source rule bound to several
//! scopes counts once), whether a test exercised it.
//!
//! - **exercised**: some test's record shows it checked (`pass`, `warn`, `fail`, `unknown`), or
//!   it decided an authorization;
//! - **applicable only**: it was bound to some test's device, but always `skip` (its condition
//!   was false, or another rule decided);
//! - **never applicable**: no test's device is in its scope.

use super::snapshot::Asked;
use hpl_runtime::load::VerifiedBundle;
use hpl_runtime::record::{ComplianceRecord, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Covered {
    NeverApplicable,
    ApplicableOnly,
    Exercised,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleCoverage {
    pub policy: String,
    /// `platform.hpl:14:3`
    pub source: String,
    /// `require homebrew_formula:terraform`
    pub rule: String,
    pub covered: Covered,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub rules: usize,
    pub exercised: usize,
    pub applicable_only: usize,
    pub never_applicable: usize,
}

impl Counts {
    /// Exercised rules in percent of all (100 when there are none).
    pub fn percent(&self) -> f64 {
        if self.rules == 0 {
            100.0
        } else {
            self.exercised as f64 * 100.0 / self.rules as f64
        }
    }

    fn add(&mut self, c: Covered) {
        self.rules += 1;
        match c {
            Covered::Exercised => self.exercised += 1,
            Covered::ApplicableOnly => self.applicable_only += 1,
            Covered::NeverApplicable => self.never_applicable += 1,
        }
    }
}

/// Per rule, keyed by (policy, source).
#[derive(Debug, Default)]
pub struct Coverage {
    rules: BTreeMap<(String, String), RuleCoverage>,
}

impl Coverage {
    /// Every rule and toolchain rule of the policy, not yet covered.
    pub fn add_policy(&mut self, bundle: &VerifiedBundle) {
        let c = bundle.content();
        let entries = c
            .rules
            .iter()
            .map(|r| {
                (
                    r.origin,
                    format!(
                        "{} {}{}",
                        hpl_runtime::vocab::RecordRuleKind::of(r.kind, r.is_final).as_str(),
                        c.str(r.display),
                        r.constraint
                            .map(|k| format!(" {}", c.str(k)))
                            .unwrap_or_default()
                    ),
                )
            })
            .chain(
                c.toolchains
                    .iter()
                    .map(|t| (t.origin, format!("toolchain {}", c.str(t.name)))),
            );
        for (origin, rule) in entries {
            let o = hpl_runtime::eval::origin_of(c, origin);
            self.rules
                .entry((o.policy.to_string(), o.source.to_string()))
                .or_insert(RuleCoverage {
                    policy: o.policy.to_string(),
                    source: o.source.to_string(),
                    rule,
                    covered: Covered::NeverApplicable,
                });
        }
    }

    fn mark(&mut self, policy: &str, source: &str, covered: Covered) {
        if let Some(r) = self
            .rules
            .get_mut(&(policy.to_string(), source.to_string()))
        {
            r.covered = r.covered.max(covered);
        }
    }

    /// What one test's record and answers exercised.
    pub fn record(&mut self, record: &ComplianceRecord, asked: &[Asked]) {
        for r in &record.rules {
            let covered = if r.result == Outcome::Skip {
                Covered::ApplicableOnly
            } else {
                Covered::Exercised
            };
            self.mark(&r.rule.policy, &r.rule.source, covered);
        }
        for v in &record.violations {
            self.mark(&v.rule.policy, &v.rule.source, Covered::Exercised);
        }
        for a in asked {
            let rules = a
                .decision
                .rule
                .iter()
                .chain(a.decision.packages.iter().filter_map(|p| p.rule.as_ref()));
            for o in rules {
                self.mark(&o.policy, &o.source, Covered::Exercised);
            }
        }
    }

    pub fn rules(&self) -> impl Iterator<Item = &RuleCoverage> {
        self.rules.values()
    }

    pub fn per_policy(&self) -> BTreeMap<&str, Counts> {
        let mut m: BTreeMap<&str, Counts> = BTreeMap::new();
        for r in self.rules.values() {
            m.entry(r.policy.as_str()).or_default().add(r.covered);
        }
        m
    }

    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for r in self.rules.values() {
            t.add(r.covered);
        }
        t
    }
}
