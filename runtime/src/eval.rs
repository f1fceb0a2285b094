//! Evaluation: a verified bundle and a device inventory make a compliance record.
//!
//! The semantics are DESIGN §3. For each package the rules that apply are those bound to the
//! device's scopes whose condition holds; a rule bound through several of the device's scopes
//! applies once, through the most specific binding. Who wins is [`crate::precedence`]'s
//! answer (final denies first, installed or not; then level, matcher, kind, policy id); this
//! module turns the decision into rule results, violations and the plan.
//! A version the scheme cannot read, a condition that errs, a manager the inventory does not
//! list for a required package: the rule is `unknown`, never compliant.

use crate::bundle::{self, Level, Mode, RuleEntry, RuleKind};
use crate::facts::{DeviceFact, DEVICE_FIELDS};
use crate::inventory::{Inventory, Package};
use crate::load::VerifiedBundle;
use crate::package::normalize_name_cow;
use crate::precedence;
use crate::record::*;
use crate::version::Version;
use crate::vm::{self, DeviceEnv, Value};
use crate::vocab::{Action, PinKind, RecordRuleKind, RecordSchema, UnknownCode};
use crate::window::UpgradeWindow;
use std::sync::Arc;

/// An inventory older than this (relative to the evaluation time) makes the record unknown.
pub const STALE_AFTER_SECONDS: i64 = 7 * 24 * 3600;
/// How far in the future an inventory may be dated (clocks of the agent and the runtime may
/// disagree a little); beyond it the record is unknown: a future date never counts as fresh.
pub const CLOCK_SKEW_SECONDS: i64 = 5 * 60;

/// Evaluates `inventory` against `bundle` at `now` (Unix seconds).
pub fn evaluate(bundle: &VerifiedBundle, inventory: &Inventory, now: i64) -> ComplianceRecord {
    evaluate_with(bundle, inventory, now, &Settings::default())
}

/// Device settings that come from MDM (see [`crate::config`]): the mode cap and the zone of
/// windows declared `local`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode_cap: Option<Mode>,
    pub local_zone: jiff::tz::TimeZone,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode_cap: None,
            local_zone: jiff::tz::TimeZone::UTC,
        }
    }
}

/// [`evaluate`] with the device's settings.
pub fn evaluate_with(
    bundle: &VerifiedBundle,
    inventory: &Inventory,
    now: i64,
    settings: &Settings,
) -> ComplianceRecord {
    let mut e = Evaluator::new(bundle, inventory, now, settings);
    e.run();
    e.finish()
}

/// The rule that decides `manager:package` on this device (a final deny, or the winner of
/// DESIGN §3's order), with the installed versions; `None` when no rule applies. The same
/// decision the record is made of, for one package: what `hpl why` traces and what the
/// agreement tests hold the hover and `authorize` against.
pub fn deciding_rule(
    bundle: &VerifiedBundle,
    inventory: &Inventory,
    now: i64,
    manager: &str,
    package: &str,
) -> Option<RuleOrigin> {
    let c = bundle.content();
    let m = c.managers.iter().position(|x| c.str(x.id) == manager)? as u32;
    let settings = Settings::default();
    let mut e = Evaluator::new(bundle, inventory, now, &settings);
    let scheme = bundle.scheme(m);
    let name = crate::package::normalize_name(scheme, package);
    let installed = inventory
        .managers
        .iter()
        .find(|x| x.id == manager)
        .and_then(|x| {
            x.packages
                .iter()
                .find(|p| crate::package::normalize_name(scheme, &p.name) == name)
        });
    let (rules, _) = e.applicable(m, &name);
    let d = e.decision(&rules, installed, None);
    d.decider()
        .map(|i| origin_of(c, c.rules[rules[i] as usize].origin))
}

/// Formats Unix seconds as RFC 3339 UTC.
pub fn timestamp(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map_or_else(|_| seconds.to_string(), |t| t.to_string())
}

pub(crate) struct Evaluator<'a> {
    b: &'a VerifiedBundle,
    c: &'a bundle::BundleContent,
    inv: &'a Inventory,
    now: i64,
    /// Per scope: the device is in it.
    in_path: Vec<bool>,
    /// Per rule entry: it is the binding through which its rule applies to this device (the
    /// device is in its scope, and no other binding of the same rule is more specific).
    rule_bound: Vec<bool>,
    /// The same for toolchain entries.
    toolchain_bound: Vec<bool>,
    env: DeviceEnv,
    /// Per condition: its value, once computed.
    conditions: Vec<Option<Value>>,
    /// The rule entries bound to the device, ascending (the record's order).
    bound: Vec<u32>,
    /// Reused by every package (see [`Evaluator::package`]).
    rules_buffer: Vec<u32>,
    pins_buffer: Vec<u32>,
    /// Per entry of `bound`: its result (and a note).
    results: Vec<(Outcome, Option<String>)>,
    toolchain_results: Vec<Option<Outcome>>,
    unknown: Vec<UnknownReason>,
    violations: Vec<Pending>,
    pub(crate) settings: &'a Settings,
    /// The package `hpl why` asks about: what [`Evaluator::package`] decided for it, recorded
    /// as it decides (see [`crate::trace`]).
    pub(crate) capture: Option<Capture>,
}

/// What the evaluation of one package decided, kept for its trace: the same values the
/// record is made of, not a second derivation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Capture {
    pub(crate) manager: u32,
    pub(crate) name: String,
    /// The evaluation reached the package (some rule names it).
    pub(crate) reached: bool,
    /// The applicable package rules and pins (conditions hold, bound to the device).
    pub(crate) rules: Vec<u32>,
    pub(crate) pins: Vec<u32>,
    /// An installed version the scheme cannot read: rules that need it were set aside.
    pub(crate) unreadable: Option<String>,
    /// The rules precedence was asked about, after any were set aside.
    pub(crate) decided_among: Vec<u32>,
    pub(crate) decision: Option<precedence::Decision>,
    /// The pin that holds the package, when one was considered.
    pub(crate) pin: Option<u32>,
}

/// The installed versions as records show them ("found"), written only when a violation or an
/// unknown reason needs them: most packages that rules name are fine, and joining their
/// versions was an allocation per package.
#[derive(Clone, Copy)]
struct Found<'a>(Option<&'a Package>);

impl Found<'_> {
    fn text(self) -> Option<String> {
        self.0.map(|p| p.versions.join(", "))
    }
}

/// A violation with what the plan needs to know about it.
#[derive(Debug, Clone)]
struct Pending {
    violation: Violation,
    mode: Mode,
    /// The manager, for package violations (toolchain violations have no manager to act on).
    manager: Option<u32>,
    policy: u32,
}

fn rank(o: Outcome) -> u8 {
    match o {
        Outcome::Skip => 0,
        Outcome::Pass => 1,
        Outcome::Warn => 2,
        Outcome::Unknown => 3,
        Outcome::Fail => 4,
    }
}

/// The rule entries bound to the device: as a flag per entry, and as an ascending list. Made
/// from the device's scopes' own entries ([`VerifiedBundle`]'s per-scope index), then, for
/// rules bound through several of those scopes, only the binding [`chosen_bindings`] would
/// choose; the flags are one zeroed allocation, so nothing here walks the other scopes' rules.
fn bound_rules(b: &VerifiedBundle, in_path: &[bool]) -> (Vec<bool>, Vec<u32>) {
    let c = b.content();
    let mut flags = vec![false; c.rules.len()];
    let mut list: Vec<u32> = Vec::new();
    for (scope, rules) in b.rules_by_scope.iter().enumerate() {
        if in_path.get(scope).copied().unwrap_or(false) {
            list.extend_from_slice(rules);
        }
    }
    list.sort_unstable();
    let mut groups: Vec<u32> = Vec::new();
    for &r in &list {
        flags[r as usize] = true;
        if let Some(g) = b.group_of[r as usize] {
            groups.push(g);
        }
    }
    groups.sort_unstable();
    groups.dedup();
    for g in groups {
        keep_one_binding(c, &b.rule_groups[g as usize], &mut flags, |i| {
            c.rules[i as usize].origin
        });
    }
    list.retain(|&r| flags[r as usize]);
    (flags, list)
}

/// Per entry: whether it is the binding of its source rule that applies on this device. Of
/// several bindings of one rule the device is in, the most specific wins; between device
/// groups the first group name in byte order (DESIGN §3). `groups` lists the entries that are
/// one rule (only rules bound more than once); every other entry applies when the device is
/// in its scope.
fn chosen_bindings(
    c: &bundle::BundleContent,
    in_path: &[bool],
    origins: impl Iterator<Item = u32>,
    groups: &[Vec<u32>],
) -> Vec<bool> {
    let origins: Vec<u32> = origins.collect();
    let mut bound: Vec<bool> = origins
        .iter()
        .map(|&o| {
            in_path
                .get(c.origins[o as usize].scope as usize)
                .copied()
                .unwrap_or(false)
        })
        .collect();
    for group in groups {
        keep_one_binding(c, group, &mut bound, |i| origins[i as usize]);
    }
    bound
}

/// Of the entries of one source rule that are bound (`flags`), keeps only the binding that
/// gives the rule its level (DESIGN §3: the most specific; between device groups the first
/// name in byte order).
fn keep_one_binding(
    c: &bundle::BundleContent,
    group: &[u32],
    flags: &mut [bool],
    origin: impl Fn(u32) -> u32,
) {
    let scope_of = |i: u32| &c.scopes[c.origins[origin(i) as usize].scope as usize];
    let best = group
        .iter()
        .copied()
        .filter(|&i| flags[i as usize])
        .min_by(|&a, &b| {
            let (sa, sb) = (scope_of(a), scope_of(b));
            precedence::binding_order((sa.level, c.str(sa.name)), (sb.level, c.str(sb.name)))
        });
    for &i in group {
        flags[i as usize] = Some(i) == best;
    }
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        b: &'a VerifiedBundle,
        inv: &'a Inventory,
        now: i64,
        settings: &'a Settings,
    ) -> Evaluator<'a> {
        let c = b.content();
        let mut in_path = vec![false; c.scopes.len()];
        in_path[0] = true;
        let mut unknown = Vec::new();
        let find = |level: Level, name: &str, unknown: &mut Vec<UnknownReason>| -> Option<usize> {
            let found = c
                .scopes
                .iter()
                .position(|s| s.level == level && c.str(s.name) == name);
            if found.is_none() {
                unknown.push(UnknownReason {
                    code: UnknownCode::UnknownScope,
                    message: format!(
                        "the inventory names {level} `{name}`, which the policy does not declare"
                    ),
                    manager: None,
                    package: None,
                    rule: None,
                });
            }
            found
        };
        let s = &inv.scopes;
        if let Some(d) = &s.department {
            if let Some(i) = find(Level::Department, d, &mut unknown) {
                in_path[i] = true;
            }
        }
        if let Some(t) = &s.team {
            if let Some(i) = find(Level::Team, t, &mut unknown) {
                in_path[i] = true;
                // A team implies its department.
                if let Some(parent) = c.scopes[i].parent {
                    if let Some(p) = in_path.get_mut(parent as usize) {
                        *p = true;
                    }
                }
            }
        }
        if let Some(env) = &s.environment {
            if let Some(i) = find(Level::Environment, env, &mut unknown) {
                in_path[i] = true;
            }
        }
        for g in &s.device_groups {
            if let Some(i) = find(Level::DeviceGroup, g, &mut unknown) {
                in_path[i] = true;
            }
        }
        let env = device_env(inv, c, &in_path);
        let (rule_bound, bound) = bound_rules(b, &in_path);
        let toolchain_bound = chosen_bindings(
            c,
            &in_path,
            c.toolchains.iter().map(|t| t.origin),
            &b.toolchain_groups,
        );
        Evaluator {
            b,
            c,
            inv,
            now,
            in_path,
            rule_bound,
            toolchain_bound,
            env,
            conditions: vec![None; c.conditions.len()],
            results: vec![(Outcome::Skip, None); bound.len()],
            bound,
            rules_buffer: Vec::new(),
            pins_buffer: Vec::new(),
            toolchain_results: vec![None; c.toolchains.len()],
            unknown,
            violations: Vec::new(),
            settings,
            capture: None,
        }
    }

    fn origin(&self, origin: u32) -> RuleOrigin {
        self.b.origin(origin)
    }

    fn rule_mode(&self, rule: &RuleEntry) -> Mode {
        self.c.policies[self.c.origins[rule.origin as usize].policy as usize].mode
    }

    /// The rule as precedence sees it.
    pub(crate) fn candidate(&self, r: u32) -> precedence::Candidate<'a> {
        let c = self.c;
        let rule = &c.rules[r as usize];
        let o = &c.origins[rule.origin as usize];
        precedence::Candidate {
            kind: rule.kind,
            is_final: rule.is_final,
            warn: rule.warn,
            ranged: rule.constraint.is_some(),
            level: c.scopes[o.scope as usize].level,
            matcher: if rule.glob {
                precedence::Matcher::glob(c.str(rule.pattern))
            } else {
                precedence::Matcher::Exact
            },
            policy: c.str(c.policies[o.policy as usize].name),
            // The first entry of the source rule orders the rules of one statement.
            position: (
                o.line,
                o.column,
                self.b.source_rule.get(r as usize).copied().unwrap_or(r),
            ),
        }
    }

    /// Whether this rule entry is the binding through which its rule applies to the device.
    fn rule_is_bound(&self, r: u32) -> bool {
        self.rule_bound.get(r as usize).copied().unwrap_or(false)
    }

    /// Whether the device is in the scope of this origin (for guards, which are not deduplicated:
    /// any binding of a guard counts).
    fn scope_is_bound(&self, origin: u32) -> bool {
        let scope = self.c.origins[origin as usize].scope as usize;
        self.in_path.get(scope).copied().unwrap_or(false)
    }

    fn set_result(&mut self, rule: u32, outcome: Outcome) {
        self.set_result_with(rule, outcome, None);
    }

    /// The position of a bound rule entry in `bound` (and `results`).
    fn slot(&self, rule: u32) -> Option<usize> {
        if !self.rule_is_bound(rule) {
            return None;
        }
        self.bound.binary_search(&rule).ok()
    }

    /// Only rules bound to the device have results (every rule evaluated is one: candidates
    /// are filtered by [`Self::rule_is_bound`]).
    fn set_result_with(&mut self, rule: u32, outcome: Outcome, note: Option<String>) {
        let Some(i) = self.slot(rule) else {
            return;
        };
        let prev = &mut self.results[i];
        // The worst outcome wins; at equal rank the first note that explains it. Every bound
        // rule starts as `skip` with no note, which any result replaces.
        let keep = rank(prev.0) > rank(outcome)
            || (rank(prev.0) == rank(outcome) && (prev.1.is_some() || note.is_none()));
        if !keep {
            *prev = (outcome, note);
        }
    }

    /// Whether the condition holds: `Some(true)` applies, `Some(false)` skips, `None` unknown.
    fn condition(&mut self, condition: Option<u32>, origin: u32) -> Option<bool> {
        let Some(condition) = condition else {
            return Some(true);
        };
        let i = condition as usize;
        if self.conditions.get(i).is_some_and(Option::is_none) {
            let value = match self.b.program(condition) {
                Some(p) => vm::run(p, &self.b.shared_strings(), &self.env),
                None => Value::Error(vm::EvalError::Malformed),
            };
            let source = self.c.str(self.c.conditions[i].source);
            let problem = match &value {
                Value::Error(err) => Some(format!(
                    "the condition `{source}` could not be evaluated: {}",
                    err.as_str()
                )),
                Value::Bool(_) => None,
                _ => Some(format!("the condition `{source}` is not a bool")),
            };
            if let Some(message) = problem {
                let rule = self.origin(origin);
                self.unknown.push(UnknownReason {
                    code: UnknownCode::ConditionError,
                    message,
                    manager: None,
                    package: None,
                    rule: Some(rule),
                });
            }
            self.conditions[i] = Some(value);
        }
        match self.conditions.get(i).and_then(Option::as_ref) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub(crate) fn run(&mut self) {
        let c = self.c;
        if self.inv.tenant_id != c.manifest.tenant {
            self.unknown.push(UnknownReason {
                code: UnknownCode::TenantMismatch,
                message: format!(
                    "the inventory is for tenant `{}`, the bundle for `{}`",
                    self.inv.tenant_id, c.manifest.tenant
                ),
                manager: None,
                package: None,
                rule: None,
            });
        }
        if let Some(expires) = c.manifest.expires_at {
            if self.now >= expires {
                self.unknown.push(UnknownReason {
                    code: UnknownCode::BundleExpired,
                    message: format!("the bundle expired at {}", timestamp(expires)),
                    manager: None,
                    package: None,
                    rule: None,
                });
            }
        }
        if self.now.saturating_sub(self.inv.collected_at) > STALE_AFTER_SECONDS {
            self.unknown.push(UnknownReason {
                code: UnknownCode::StaleInventory,
                message: format!(
                    "the inventory was collected at {}, more than 7 days before the evaluation",
                    timestamp(self.inv.collected_at)
                ),
                manager: None,
                package: None,
                rule: None,
            });
        }
        if self.inv.collected_at.saturating_sub(self.now) > CLOCK_SKEW_SECONDS {
            self.unknown.push(UnknownReason {
                code: UnknownCode::FutureInventory,
                message: format!(
                    "the inventory is dated {}, after the evaluation at {}: a clock is wrong",
                    timestamp(self.inv.collected_at),
                    timestamp(self.now)
                ),
                manager: None,
                package: None,
                rule: None,
            });
        }
        // Every rule bound to the device's scopes starts as `skip` (see `Evaluator::new`).
        for m in 0..c.managers.len() {
            self.manager(m as u32);
        }
        self.toolchains();
    }

    /// The glob rules of a manager that apply through the device's bindings.
    fn bound_globs(&self, m: u32) -> Vec<u32> {
        self.b.glob_index[m as usize]
            .iter()
            .copied()
            .filter(|&r| self.rule_is_bound(r))
            .collect()
    }

    fn manager(&mut self, m: u32) {
        let c = self.c;
        let scheme = self.b.scheme(m);
        let id = c.str(c.managers[m as usize].id);
        let inventoried = self.inv.managers.iter().find(|x| x.id == id);
        // The glob rules of this manager bound to the device: usually a handful.
        let globs = self.bound_globs(m);
        // Installed packages by normalized name (borrowed when normalizing changes nothing),
        // merged in name order with the named packages that are not installed.
        let mut installed: Vec<(std::borrow::Cow<'_, str>, &Package)> = inventoried
            .map(|inv| {
                inv.packages
                    .iter()
                    .map(|p| (normalize_name_cow(scheme, &p.name), p))
                    .collect()
            })
            .unwrap_or_default();
        installed.sort_by(|a, b| a.0.cmp(&b.0));
        let exact = &self.b.exact_index[m as usize];
        // The named packages that are not installed, from the device's own rules only.
        let mut absent: Vec<&str> = self
            .bound
            .iter()
            .map(|&r| &c.rules[r as usize])
            .filter(|r| r.manager == m && !r.glob)
            .map(|r| c.str(r.pattern))
            .filter(|name| {
                installed
                    .binary_search_by(|(n, _)| n.as_ref().cmp(name))
                    .is_err()
            })
            .collect();
        absent.sort_unstable();
        absent.dedup();
        let (mut i, mut j) = (0, 0);
        while i < installed.len() || j < absent.len() {
            let take_installed =
                j >= absent.len() || (i < installed.len() && installed[i].0.as_ref() < absent[j]);
            if take_installed {
                let (name, package) = &installed[i];
                i += 1;
                // Installed packages no rule mentions are the common case: no work, no allocation.
                let mentioned = exact.contains_key(name.as_ref())
                    || globs
                        .iter()
                        .any(|&r| name.starts_with(c.str(c.rules[r as usize].pattern)));
                if mentioned {
                    self.package(m, name, Some(package), true, &globs);
                }
            } else {
                let name = absent[j];
                j += 1;
                self.package(m, name, None, inventoried.is_some(), &globs);
            }
        }
    }

    /// The applicable rules for one package, split into package rules and pins.
    fn candidates(
        &mut self,
        m: u32,
        name: &str,
        globs: &[u32],
        rules: &mut Vec<u32>,
        pins: &mut Vec<u32>,
    ) {
        let c = self.c;
        rules.clear();
        pins.clear();
        let exact = self.b.exact_index[m as usize]
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for &r in exact.iter().chain(globs.iter()) {
            let rule = &c.rules[r as usize];
            if rule.glob && !name.starts_with(c.str(rule.pattern)) {
                continue;
            }
            if !self.rule_is_bound(r) {
                continue;
            }
            match self.condition(rule.condition, rule.origin) {
                Some(true) if rule.kind == RuleKind::Pin => pins.push(r),
                Some(true) => rules.push(r),
                Some(false) => {}
                None => self.set_result(r, Outcome::Unknown),
            }
        }
    }

    fn parse_versions(&self, m: u32, package: &Package) -> Result<Vec<Version>, String> {
        let scheme = self.b.scheme(m);
        let mut out = Vec::new();
        for v in &package.versions {
            match scheme.parse_version(v) {
                Ok(parsed) => out.push(parsed),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(out)
    }

    fn unknown_for(&mut self, code: UnknownCode, message: String, m: u32, name: &str, rule: u32) {
        let origin = self.origin(self.c.rules[rule as usize].origin);
        self.unknown.push(UnknownReason {
            code,
            message,
            manager: Some(self.c.str(self.c.managers[m as usize].id).to_string()),
            package: Some(name.to_string()),
            rule: Some(origin),
        });
        self.set_result(rule, Outcome::Unknown);
    }

    #[allow(clippy::too_many_arguments)]
    fn violate(
        &mut self,
        rule: u32,
        category: Category,
        m: u32,
        name: &str,
        expected: String,
        found: Option<String>,
        action: Action,
    ) {
        let r = &self.c.rules[rule as usize];
        let severity = if r.warn {
            Severity::Warning
        } else {
            Severity::Error
        };
        let v = Violation {
            category,
            severity,
            manager: self.b.manager_id(m),
            package: name.to_string(),
            expected,
            found,
            action,
            rule: self.origin(r.origin),
            reason: r.because.map(|b| self.c.str(b).to_string()),
        };
        let mode = self.rule_mode(r);
        let policy = self.c.origins[r.origin as usize].policy;
        self.violations.push(Pending {
            violation: v,
            mode,
            manager: Some(m),
            policy,
        });
        self.set_result(
            rule,
            if severity == Severity::Warning {
                Outcome::Warn
            } else {
                Outcome::Fail
            },
        );
    }

    /// "forbidden by final deny …" / "denied by …": why a rule that applies was not checked.
    fn skipped_by(&self, decider: u32, what: &str) -> String {
        let rule = &self.c.rules[decider as usize];
        let o = self.origin(rule.origin);
        format!(
            "{what} `{}` of policy `{}` at {} ({})",
            self.c.str(rule.display),
            o.policy,
            o.scope,
            o.source
        )
    }

    fn incomparable(&mut self, r: u32, m: u32, display: &str, found: Found<'_>) {
        let c = self.c;
        let constraint = c.rules[r as usize].constraint.map_or("", |x| c.str(x));
        self.unknown_for(
            UnknownCode::IncomparableVersion,
            format!(
                "cannot compare {} with {constraint}",
                found.text().unwrap_or_default()
            ),
            m,
            display,
            r,
        );
    }

    /// One package: its applicable rules are collected into buffers the evaluator keeps
    /// from one package to the next (two allocations per package fewer), then decided.
    fn package(
        &mut self,
        m: u32,
        name: &str,
        package: Option<&Package>,
        inventoried: bool,
        globs: &[u32],
    ) {
        let (mut rules, mut pins) = (
            std::mem::take(&mut self.rules_buffer),
            std::mem::take(&mut self.pins_buffer),
        );
        self.candidates(m, name, globs, &mut rules, &mut pins);
        self.decide_package(m, name, package, inventoried, &rules, &mut pins);
        self.rules_buffer = rules;
        self.pins_buffer = pins;
    }

    fn decide_package(
        &mut self,
        m: u32,
        name: &str,
        package: Option<&Package>,
        inventoried: bool,
        rules: &[u32],
        pins: &mut Vec<u32>,
    ) {
        let traced = self
            .capture
            .as_ref()
            .is_some_and(|t| t.manager == m && t.name == name);
        if traced {
            if let Some(t) = self.capture.as_mut() {
                t.reached = true;
                t.rules = rules.to_vec();
                t.pins = pins.clone();
            }
        }
        if rules.is_empty() && pins.is_empty() {
            return;
        }
        let c = self.c;
        let display: &str = package.map_or(name, |p| p.name.as_str());
        let mut unreadable = false;
        let versions = match package.map(|p| self.parse_versions(m, p)) {
            Some(Ok(v)) => Some(v),
            Some(Err(msg)) => {
                // Every rule that needs the version is unknown. They stay candidates: one that
                // outranks the plain rules leaves the package undecided (unknown), so a less
                // specific plain deny never decides in its place — that would plan an
                // uninstall the more specific rule forbids. A plain rule above them decides.
                unreadable = true;
                for &r in rules.iter().chain(pins.iter()) {
                    let rule = &c.rules[r as usize];
                    if rule.constraint.is_some() || rule.kind == RuleKind::Pin {
                        self.unknown_for(
                            UnknownCode::UnparseableVersion,
                            msg.clone(),
                            m,
                            display,
                            r,
                        );
                    }
                }
                pins.clear();
                None
            }
            None => None,
        };
        let found = Found(package);
        let current = versions.as_ref().and_then(|v| {
            v.iter().fold(None::<&Version>, |best, x| match best {
                Some(b) if x.compare(b) != Some(std::cmp::Ordering::Greater) => Some(b),
                _ => Some(x),
            })
        });

        let candidates: Vec<precedence::Candidate<'_>> =
            rules.iter().map(|&r| self.candidate(r)).collect();
        let decision = precedence::decide(&candidates, package.is_some(), |i| {
            self.in_denied_range(rules[i], versions.as_deref()).into()
        });
        if traced {
            let unreadable = match package.map(|p| self.parse_versions(m, p)) {
                Some(Err(msg)) => Some(msg),
                _ => None,
            };
            if let Some(t) = self.capture.as_mut() {
                t.unreadable = unreadable;
                t.decided_among = rules.to_vec();
                t.decision = Some(decision.clone());
            }
        }
        for &i in &decision.undecided {
            // An unreadable version is already the reason (`unparseable_version`).
            if !unreadable {
                self.incomparable(rules[i], m, display, found);
            }
        }
        for &i in &decision.passed_finals {
            self.set_result(rules[i], Outcome::Pass);
        }

        // 1. A final deny decided: the package is forbidden, installed or not.
        if let Some(f) = decision.final_deny {
            let r = rules[f];
            if package.is_some() {
                self.forbid_installed(r, m, display, found, rules, &candidates);
            } else {
                self.set_result(r, Outcome::Pass);
            }
            let note = self.skipped_by(r, "forbidden by final deny");
            for &other in rules.iter().chain(pins.iter()) {
                if other != r && !decision.passed_finals.iter().any(|&i| rules[i] == other) {
                    self.set_result_with(other, Outcome::Skip, Some(note.clone()));
                }
            }
            return;
        }

        // 2. The winner among the others. When it needs the version and the version cannot
        // be read, it is unknown (said above) and nothing else decides.
        let mut denied = false;
        if let Some(w) = decision.winner {
            let w = rules[w];
            if unreadable && c.rules[w as usize].constraint.is_some() {
                return;
            }
            denied = c.rules[w as usize].kind == RuleKind::Deny && package.is_some();
            if denied {
                self.forbid_installed(w, m, display, found, rules, &candidates);
            } else {
                self.decide(w, m, display, package, current, inventoried);
            }
        }

        // 3. Pins: the most specific wins; a deny that fires makes it `skip` (remove, never
        // pin and remove).
        if denied {
            if let Some(w) = decision.winner {
                let note = self.skipped_by(rules[w], "denied by");
                for &p in pins.iter() {
                    self.set_result_with(p, Outcome::Skip, Some(note.clone()));
                }
            }
            return;
        }
        let pin_candidates: Vec<precedence::Candidate<'_>> =
            pins.iter().map(|&r| self.candidate(r)).collect();
        let Some(pin) = precedence::pin(&pin_candidates).map(|i| pins[i]) else {
            return;
        };
        if traced {
            if let Some(t) = self.capture.as_mut() {
                t.pin = Some(pin);
            }
        }
        if package.is_none() {
            return;
        }
        match (current, self.b.constraint(pin)) {
            (Some(cur), Some(con)) => match con.matches(cur) {
                Some(true) => self.set_result(pin, Outcome::Pass),
                Some(false) => {
                    let expected = c.rules[pin as usize]
                        .constraint
                        .map_or("", |x| c.str(x))
                        .to_string();
                    self.violate(
                        pin,
                        Category::PinMismatch,
                        m,
                        display,
                        expected,
                        Some(cur.to_string()),
                        Action::Pin,
                    );
                }
                None => self.unknown_for(
                    UnknownCode::IncomparableVersion,
                    format!("cannot compare {cur} with the pin {con}"),
                    m,
                    display,
                    pin,
                ),
            },
            (None, _) if versions.is_some() => self.unknown_for(
                UnknownCode::UnparseableVersion,
                "no installed version is reported".into(),
                m,
                display,
                pin,
            ),
            _ => {}
        }
    }

    /// The deny `r` forbids the installed package: `present_denied`, resolved as
    /// [`Self::leave_or_remove`] says.
    fn forbid_installed(
        &mut self,
        r: u32,
        m: u32,
        display: &str,
        found: Found<'_>,
        rules: &[u32],
        candidates: &[precedence::Candidate<'_>],
    ) {
        let expected = self.denied_expectation(r);
        let action = self.leave_or_remove(r, rules, candidates);
        self.violate(
            r,
            Category::PresentDenied,
            m,
            display,
            expected,
            found.text(),
            action,
        );
    }

    /// How to resolve an installed package that the deny `r` forbids: uninstall it, unless the
    /// deny has a range and the package is required once it is gone (the require would decide):
    /// then move out of the range, up when versions above it exist, else down.
    fn leave_or_remove(
        &self,
        r: u32,
        rules: &[u32],
        candidates: &[precedence::Candidate<'_>],
    ) -> Action {
        let Some(constraint) = self.b.constraint(r) else {
            return Action::Uninstall;
        };
        let absent = precedence::decide(candidates, false, |_| precedence::Fires::No);
        let required = absent
            .decider()
            .is_some_and(|i| self.c.rules[rules[i] as usize].kind == RuleKind::Require);
        match (required, constraint.is_bounded_above()) {
            (false, _) => Action::Uninstall,
            (true, true) => Action::Upgrade,
            (true, false) => Action::Downgrade,
        }
    }

    fn denied_expectation(&self, r: u32) -> String {
        match self.c.rules[r as usize].constraint {
            None => "absent".into(),
            Some(constraint) => format!("not {}", self.c.str(constraint)),
        }
    }

    /// Whether an installed version lies in the deny's range (`Some(true)` when it has none).
    fn in_denied_range(&self, r: u32, versions: Option<&[Version]>) -> Option<bool> {
        let Some(constraint) = self.b.constraint(r) else {
            return Some(true);
        };
        let versions = versions?;
        let mut undecided = false;
        for v in versions {
            match constraint.matches(v) {
                Some(true) => return Some(true),
                Some(false) => {}
                None => undecided = true,
            }
        }
        if undecided {
            None
        } else {
            Some(false)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn decide(
        &mut self,
        w: u32,
        m: u32,
        display: &str,
        package: Option<&Package>,
        current: Option<&Version>,
        inventoried: bool,
    ) {
        let c = self.c;
        let rule = &c.rules[w as usize];
        match rule.kind {
            // An installed denied package is decided by `forbid_installed`; absent, the deny holds.
            RuleKind::Deny => self.set_result(w, Outcome::Pass),
            RuleKind::Require | RuleKind::Allow => {
                let Some(_) = package else {
                    if rule.kind == RuleKind::Require {
                        if !inventoried {
                            let id = c.str(c.managers[m as usize].id);
                            self.unknown_for(
                                UnknownCode::ManagerNotInventoried,
                                format!(
                                    "the inventory does not list {id}, so `{display}` cannot be checked"
                                ),
                                m,
                                display,
                                w,
                            );
                        } else {
                            let expected = rule
                                .constraint
                                .map_or_else(|| "present".to_string(), |x| c.str(x).to_string());
                            self.violate(
                                w,
                                Category::MissingRequired,
                                m,
                                display,
                                expected,
                                None,
                                Action::Install,
                            );
                        }
                    } else {
                        self.set_result(w, Outcome::Pass);
                    }
                    return;
                };
                let Some(constraint) = self.b.constraint(w) else {
                    self.set_result(w, Outcome::Pass);
                    return;
                };
                let Some(cur) = current else {
                    self.unknown_for(
                        UnknownCode::UnparseableVersion,
                        "no installed version is reported".into(),
                        m,
                        display,
                        w,
                    );
                    return;
                };
                match constraint.matches(cur) {
                    Some(true) => self.set_result(w, Outcome::Pass),
                    Some(false) => {
                        let action = if constraint.is_below(cur) {
                            Action::Upgrade
                        } else {
                            Action::Downgrade
                        };
                        self.violate(
                            w,
                            Category::VersionOutOfRange,
                            m,
                            display,
                            rule.constraint.map_or("", |x| c.str(x)).to_string(),
                            Some(cur.to_string()),
                            action,
                        );
                    }
                    None => self.unknown_for(
                        UnknownCode::IncomparableVersion,
                        format!("cannot compare {cur} with {constraint}"),
                        m,
                        display,
                        w,
                    ),
                }
            }
            RuleKind::Pin => {}
        }
    }

    fn toolchains(&mut self) {
        let c = self.c;
        for (i, t) in c.toolchains.iter().enumerate() {
            if !self.toolchain_bound.get(i).copied().unwrap_or(false) {
                continue;
            }
            self.toolchain_results[i] = Some(Outcome::Skip);
            match self.condition(t.condition, t.origin) {
                Some(true) => {}
                Some(false) => continue,
                None => {
                    self.toolchain_results[i] = Some(Outcome::Unknown);
                    continue;
                }
            }
            let name = c.str(t.name);
            let allowed: Vec<&str> = t
                .sources
                .iter()
                .map(|&s| c.str(c.managers[s as usize].id))
                .collect();
            let mut outcome = Outcome::Pass;
            for found in self.inv.toolchains.iter().filter(|x| x.name == name) {
                if allowed.contains(&found.source.as_str()) {
                    continue;
                }
                outcome = Outcome::Fail;
                let what = match (&found.version, &found.path) {
                    (Some(v), Some(p)) => format!("{} {v} at {p}", found.source),
                    (Some(v), None) => format!("{} {v}", found.source),
                    (None, Some(p)) => format!("{} at {p}", found.source),
                    (None, None) => found.source.clone(),
                };
                let v = Violation {
                    category: Category::UnmanagedToolchain,
                    severity: Severity::Error,
                    manager: found.source.as_str().into(),
                    package: name.to_string(),
                    expected: format!("from {}", allowed.join(", ")),
                    found: Some(what),
                    action: Action::Manual,
                    rule: self.origin(t.origin),
                    reason: None,
                };
                let policy = c.origins[t.origin as usize].policy;
                let mode = c.policies[policy as usize].mode;
                self.violations.push(Pending {
                    violation: v,
                    mode,
                    manager: None,
                    policy,
                });
            }
            self.toolchain_results[i] = Some(outcome);
        }
    }

    pub(crate) fn content(&self) -> &'a bundle::BundleContent {
        self.c
    }

    pub(crate) fn bundle(&self) -> &'a VerifiedBundle {
        self.b
    }

    pub(crate) fn inventory(&self) -> &'a Inventory {
        self.inv
    }

    /// The value of a condition, if the evaluation computed it.
    pub(crate) fn condition_value(&self, condition: u32) -> Option<Value> {
        self.conditions.get(condition as usize).cloned().flatten()
    }

    /// The value of a condition, computing it now (and noting an error as unknown, which is
    /// why [`crate::trace`] asks a separate evaluator).
    pub(crate) fn condition_value_now(&mut self, condition: u32, origin: u32) -> Option<Value> {
        self.condition(Some(condition), origin);
        self.condition_value(condition)
    }

    /// Whether the device is in the scope of this origin.
    pub(crate) fn in_scope(&self, origin: u32) -> bool {
        self.scope_is_bound(origin)
    }

    /// Whether the rule entry is the binding through which its rule applies to the device.
    pub(crate) fn is_bound(&self, r: u32) -> bool {
        self.rule_is_bound(r)
    }

    /// The rule's result so far, with its note.
    pub(crate) fn result_of(&self, r: u32) -> (Option<Outcome>, Option<String>) {
        match self.slot(r).map(|i| self.results[i].clone()) {
            Some((o, n)) => (Some(o), n),
            None => (None, None),
        }
    }

    /// Which scopes the device is in.
    pub(crate) fn in_path_of(&self) -> Vec<bool> {
        self.in_path.clone()
    }

    /// The device's scopes, most general first, as records name them (`org:acme`).
    pub(crate) fn device_scopes(&self) -> Vec<String> {
        let c = self.c;
        let mut scopes: Vec<(Level, String)> = c
            .scopes
            .iter()
            .enumerate()
            .filter(|(i, _)| self.in_path.get(*i).copied().unwrap_or(false))
            .map(|(_, s)| {
                let name = match s.level {
                    Level::Org => c.manifest.tenant.as_str(),
                    _ => c.str(s.name),
                };
                (s.level, format!("{}:{name}", s.level))
            })
            .collect();
        scopes.sort();
        scopes.into_iter().map(|(_, s)| s).collect()
    }

    /// The record (the evaluation must have run).
    pub(crate) fn finish_record(self) -> ComplianceRecord {
        self.finish()
    }

    /// Whether a guard (by its origin) applies through one of the device's scopes.
    pub(crate) fn guard_bound(&self, origin: u32) -> bool {
        self.scope_is_bound(origin)
    }

    pub(crate) fn applies(&mut self, condition: Option<u32>, origin: u32) -> Option<bool> {
        self.condition(condition, origin)
    }

    pub(crate) fn origin_of(&self, origin: u32) -> RuleOrigin {
        self.origin(origin)
    }

    /// The rules that apply to a package on this device: (package rules, pins with the
    /// winning pin first).
    pub(crate) fn applicable(&mut self, m: u32, name: &str) -> (Vec<u32>, Vec<u32>) {
        let globs = self.bound_globs(m);
        let (mut rules, mut pins) = (Vec::new(), Vec::new());
        self.candidates(m, name, &globs, &mut rules, &mut pins);
        let pin_candidates: Vec<precedence::Candidate<'_>> =
            pins.iter().map(|&r| self.candidate(r)).collect();
        if let Some(first) = precedence::pin(&pin_candidates) {
            pins.swap(0, first);
        }
        (rules, pins)
    }

    /// The precedence decision for a package, as if `target` were installed (or with the
    /// installed versions when `target` is `None`). `Fires::Unknown` for a ranged deny the
    /// version cannot be compared with.
    pub(crate) fn decision(
        &self,
        rules: &[u32],
        installed: Option<&Package>,
        target: Option<&Version>,
    ) -> precedence::Decision {
        let present = target.is_some() || installed.is_some();
        self.decide_with(rules, present, |r| match (target, installed) {
            (Some(v), _) => self.b.constraint(r).and_then(|con| con.matches(v)).into(),
            (None, Some(p)) => self.denied_range_hit(r, p).into(),
            (None, None) => precedence::Fires::No,
        })
    }

    /// The precedence decision with `fires` answering for each ranged deny (by rule index).
    pub(crate) fn decide_with(
        &self,
        rules: &[u32],
        present: bool,
        fires: impl Fn(u32) -> precedence::Fires,
    ) -> precedence::Decision {
        let candidates: Vec<precedence::Candidate<'_>> =
            rules.iter().map(|&r| self.candidate(r)).collect();
        precedence::decide(&candidates, present, |i| fires(rules[i]))
    }

    /// Whether an installed version is in the deny's range; `None` when none is, but one the
    /// scheme cannot read might be.
    pub(crate) fn denied_range_hit(&self, r: u32, package: &Package) -> Option<bool> {
        let scheme = self.b.scheme(self.c.rules[r as usize].manager);
        let mut unreadable = false;
        let versions: Vec<Version> = package
            .versions
            .iter()
            .filter_map(|v| {
                let parsed = scheme.parse_version(v).ok();
                unreadable |= parsed.is_none();
                parsed
            })
            .collect();
        match self.in_denied_range(r, Some(&versions)) {
            Some(false) if unreadable => None,
            hit => hit,
        }
    }

    /// The effective mode of a policy on this device: MDM may cap it, never raise it.
    pub(crate) fn effective_mode(&self, mode: Mode) -> Mode {
        match self.settings.mode_cap {
            Some(cap) if cap < mode => cap,
            _ => mode,
        }
    }

    /// The policy's upgrade windows that apply to this device.
    fn windows(&mut self, policy: u32) -> Vec<UpgradeWindow> {
        let c = self.c;
        let mut out = Vec::new();
        for w in c.windows.iter().filter(|w| w.policy == policy) {
            if let Some(condition) = w.condition {
                let cond_origin = c.conditions.get(condition as usize).map_or(0, |x| x.origin);
                if self.condition(Some(condition), cond_origin) != Some(true) {
                    continue;
                }
            }
            let zone = match w.zone {
                None => self.settings.local_zone.clone(),
                Some(zone) => {
                    jiff::tz::TimeZone::get(c.str(zone)).unwrap_or(jiff::tz::TimeZone::UTC)
                }
            };
            out.push(UpgradeWindow {
                days: w.days,
                start_minute: w.start_minute,
                end_minute: w.end_minute,
                zone,
            });
        }
        out
    }

    /// The remediation plan: per mode, windows, manager capabilities; in authority-phase order.
    fn plan(&mut self) -> Vec<Remediation> {
        let c = self.c;
        let now = jiff::Timestamp::from_second(self.now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let violations: Vec<Pending> = self.violations.clone();
        let mut plan = Vec::new();
        for p in &violations {
            let v = &p.violation;
            let Some(manager) = p.manager.and_then(|m| c.managers.get(m as usize)) else {
                continue;
            };
            let mode = self.effective_mode(p.mode);
            if mode == Mode::Observe {
                continue;
            }
            let guarded = manager.capabilities.guarded;
            let mut manual = false;
            let mut note = None;
            if v.action == Action::Downgrade && !manager.capabilities.downgrade {
                manual = true;
                note = Some(format!(
                    "{} cannot downgrade: uninstall {} and install a version in `{}` by hand",
                    v.manager, v.package, v.expected
                ));
            }
            let pin = (v.action == Action::Pin).then_some(if manager.capabilities.native_pin {
                PinKind::Native
            } else {
                PinKind::Virtual
            });
            let mut automatic = false;
            let mut not_before = None;
            if mode == Mode::Enforce && !guarded && !manual {
                let windows = self.windows(p.policy);
                if windows.is_empty() || windows.iter().any(|w| w.is_open(now)) {
                    automatic = true;
                } else {
                    not_before = windows
                        .iter()
                        .filter_map(|w| w.next_open(now))
                        .min()
                        .map(|t| timestamp(t.as_second()));
                }
            }
            let to = match v.category {
                Category::VersionOutOfRange | Category::PinMismatch => Some(v.expected.clone()),
                Category::MissingRequired if v.expected != "present" => Some(v.expected.clone()),
                _ => None,
            };
            plan.push(Remediation {
                action: v.action,
                manager: v.manager.to_string(),
                package: v.package.clone(),
                mode,
                needs_confirmation: !automatic && not_before.is_none(),
                guarded,
                not_before,
                phase: manager.phase,
                automatic,
                manual,
                note,
                to,
                pin,
            });
        }
        // Helm's authority phases: authoritative managers first, then standard, then guarded.
        plan.sort_by_key(|r| r.phase);
        plan
    }

    fn finish(mut self) -> ComplianceRecord {
        let c = self.c;
        let remediation = self.plan();
        let violations: Vec<Violation> = self.violations.into_iter().map(|p| p.violation).collect();
        let state = if violations.iter().any(|v| v.severity == Severity::Error) {
            State::NonCompliant
        } else if !self.unknown.is_empty() {
            State::Unknown
        } else if !violations.is_empty() {
            State::Warning
        } else {
            State::Compliant
        };
        let mut rules = Vec::with_capacity(self.bound.len());
        for (&i, (result, note)) in self.bound.iter().zip(std::mem::take(&mut self.results)) {
            let r = &c.rules[i as usize];
            rules.push(RuleResult {
                rule: self.b.origin(r.origin),
                kind: RecordRuleKind::of(r.kind, r.is_final),
                target: self.b.rule_target(i),
                result,
                note,
            });
        }
        for (i, t) in c.toolchains.iter().enumerate() {
            let Some(result) = self.toolchain_results[i] else {
                continue;
            };
            rules.push(RuleResult {
                rule: self.b.origin(t.origin),
                kind: RecordRuleKind::Toolchain,
                target: c.str(t.name).into(),
                result,
                note: None,
            });
        }
        ComplianceRecord {
            schema: RecordSchema::V1,
            tenant_id: self.inv.tenant_id.clone(),
            device_id: self.inv.device_id.clone(),
            evaluated_at: timestamp(self.now),
            bundle: BundleRef {
                version: c.manifest.bundle_version,
                hash: self.b.hash_string(),
            },
            policies: c
                .manifest
                .policies
                .iter()
                .map(|(id, version)| PolicyRef {
                    id: id.clone(),
                    version: *version,
                })
                .collect(),
            state,
            unknown_reasons: self.unknown,
            violations,
            remediation,
            rules,
        }
    }
}

/// The origin of a rule or toolchain entry as records name it.
pub fn origin_of(c: &bundle::BundleContent, origin: u32) -> RuleOrigin {
    let o = &c.origins[origin as usize];
    let policy = &c.policies[o.policy as usize];
    let scope = &c.scopes[o.scope as usize];
    RuleOrigin {
        policy: c.str(policy.name).into(),
        policy_version: policy.version,
        scope: match scope.level {
            Level::Org => format!("org:{}", c.manifest.tenant),
            level => format!("{level}:{}", c.str(scope.name)),
        }
        .into(),
        source: format!("{}:{}:{}", c.str(o.file), o.line, o.column).into(),
    }
}

/// The values conditions read, indexed by [`DeviceFact`] (`facts::DEVICE_FIELDS` order).
pub fn device_env(inv: &Inventory, c: &bundle::BundleContent, in_path: &[bool]) -> DeviceEnv {
    let scope_name = |level: Level| -> Value {
        c.scopes
            .iter()
            .enumerate()
            .find(|(i, s)| s.level == level && in_path.get(*i).copied().unwrap_or(false))
            .map_or(Value::str(""), |(_, s)| Value::str(c.str(s.name)))
    };
    let fields = DEVICE_FIELDS
        .iter()
        .map(|f| match f.fact {
            DeviceFact::Id => Value::str(&inv.device_id),
            DeviceFact::Tenant => Value::str(&inv.tenant_id),
            DeviceFact::Arch => Value::str(&inv.device.arch),
            DeviceFact::OsName => Value::str(&inv.device.os_name),
            DeviceFact::OsVersion => Value::str(&inv.device.os_version),
            DeviceFact::Ring => Value::str(inv.ring.as_deref().unwrap_or("")),
            DeviceFact::Department => inv
                .scopes
                .department
                .as_deref()
                .map_or_else(|| scope_name(Level::Department), Value::str),
            DeviceFact::Team => Value::str(inv.scopes.team.as_deref().unwrap_or("")),
            DeviceFact::Environment => Value::str(inv.scopes.environment.as_deref().unwrap_or("")),
            DeviceFact::Groups => Value::List(Arc::new(
                inv.scopes
                    .device_groups
                    .iter()
                    .map(|g| Value::str(g))
                    .collect(),
            )),
            DeviceFact::Facts => Value::Map(Arc::new(inv.device.facts.clone())),
        })
        .collect();
    DeviceEnv { fields }
}

/// The record when there is no valid snapshot to evaluate against: `unknown`, with the reason
/// `no_valid_snapshot`. Nothing waits for a control plane.
pub fn no_snapshot_record(inventory: &Inventory, now: i64, context: &str) -> ComplianceRecord {
    ComplianceRecord {
        schema: RecordSchema::V1,
        tenant_id: inventory.tenant_id.clone(),
        device_id: inventory.device_id.clone(),
        evaluated_at: timestamp(now),
        bundle: BundleRef {
            version: 0,
            hash: format!("sha256:{}", "0".repeat(64)),
        },
        policies: Vec::new(),
        state: State::Unknown,
        unknown_reasons: vec![UnknownReason {
            code: UnknownCode::NoValidSnapshot,
            message: format!("no valid policy snapshot: {context}"),
            manager: None,
            package: None,
            rule: None,
        }],
        violations: Vec::new(),
        remediation: Vec::new(),
        rules: Vec::new(),
    }
}
