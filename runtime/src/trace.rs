//! The decision trace of one package on one device (`hpl why`).
//!
//! A trace is recorded by the evaluation itself: [`crate::eval`] runs as it always does with a
//! [`Capture`] set for the package, and keeps what it decided (the applicable rules, the
//! precedence decision, the pin) as it decides. This module only adds what the record does not
//! say: the rules that did not apply and why, and for each applicable rule that lost, the step
//! of DESIGN §3's order that put the decider ahead ([`precedence::decided_by`]). Nothing here
//! orders rules on its own.

use crate::eval::{device_env, Capture, Evaluator, Settings};
use crate::inventory::Inventory;
use crate::load::VerifiedBundle;
use crate::precedence::{self, DecidedBy};
use crate::record::{
    ComplianceRecord, Outcome, Remediation, RuleOrigin, State, UnknownReason, Violation,
};
use crate::vm::{self, DeviceEnv, Program, Value};
use crate::vocab::{Level, RecordRuleKind, RuleKind};
use serde::Serialize;

/// Why `hpl why` was asked about a package it cannot trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceError {
    /// The bundle declares no such manager.
    UnknownManager { manager: String, known: Vec<String> },
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::UnknownManager { manager, .. } => {
                write!(f, "the policy has no manager `{manager}`")
            }
        }
    }
}

/// Whether a rule that names the package applies on this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "applies")]
pub enum Applicability {
    /// In the device's scopes, its condition holds (or it has none).
    Yes,
    /// The device is not in the rule's scope.
    NotInScope,
    /// The rule is bound more than once; it applies through a more specific binding (`scope`).
    OtherBinding { scope: String },
    /// Its `when` is false.
    ConditionFalse,
    /// Its `when` could not be evaluated: the rule is `unknown`, it does not apply.
    ConditionUnknown,
    /// It needs the installed version, which the manager's scheme cannot read.
    VersionUnreadable,
}

/// What an applicable rule did in the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum Role {
    /// It decides the package.
    Decides,
    /// A ranged deny (final or not) whose range does not hold the version: it drops out.
    OutOfRange,
    /// A ranged deny whose range cannot be compared with the version: `unknown`.
    Incomparable,
    /// A rule the decider comes before; `by` is the step of the order that separates them.
    Outranked { by: DecidedBy },
    /// The pin that holds the package.
    PinHolds,
    /// A pin a more specific pin comes before.
    PinOutranked { by: DecidedBy },
    /// A pin set aside because a deny decides (remove, never pin and remove).
    PinSkipped,
    /// Applicable, but precedence was never asked (the package is not installed and only a
    /// ranged deny names it, for instance).
    NotAsked,
}

/// A `when` condition and its value on this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionTrace {
    pub source: String,
    pub value: ConditionValue,
}

/// The value of a `when` on this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionValue {
    True,
    False,
    /// It could not be evaluated (an error value, or not a bool): the rule is `unknown`.
    Error(String),
    /// Not evaluated: the rule is not bound to the device.
    NotEvaluated,
}

impl ConditionValue {
    fn of(value: Option<&Value>) -> ConditionValue {
        match value {
            Some(Value::Bool(true)) => ConditionValue::True,
            Some(Value::Bool(false)) => ConditionValue::False,
            Some(Value::Error(err)) => ConditionValue::Error(err.as_str().to_string()),
            Some(_) => ConditionValue::Error("not a bool".to_string()),
            None => ConditionValue::NotEvaluated,
        }
    }
}

/// One rule that names the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TracedRule {
    pub rule: RuleOrigin,
    pub kind: RecordRuleKind,
    /// The package as written, without its manager: `git`, `@acme/*`.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionTrace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
    /// The level of the binding through which it would apply.
    pub level: Level,
    #[serde(flatten)]
    pub applicability: Applicability,
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub role: Option<Role>,
    /// Its result in the record, over every package it names (`None` when it is not bound
    /// to the device).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_result: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The decision trace of one package on one device.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub manager: String,
    /// The package's normalized name.
    pub package: String,
    /// Installed versions; `None` when the inventory does not list the package.
    pub installed: Option<Vec<String>>,
    /// The manager is in the inventory (a required package it does not list is `unknown`).
    pub manager_inventoried: bool,
    /// The device's scopes, most general first: `org:acme`, `department:engineering` …
    pub scopes: Vec<String>,
    /// Every rule of the bundle that names the package (exact or glob), in decision order:
    /// the applicable ones first, as precedence ranks them, then the others.
    pub rules: Vec<TracedRule>,
    /// Index into `rules` of the deciding rule.
    pub decider: Option<usize>,
    /// Index into `rules` of the pin that holds the package.
    pub pin: Option<usize>,
    /// The installed version the scheme cannot read, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable_version: Option<String>,
    /// The record's violations, plan steps and unknown reasons for this package.
    pub violations: Vec<Violation>,
    pub remediation: Vec<Remediation>,
    pub unknown_reasons: Vec<UnknownReason>,
    /// The device's state (of the whole record).
    pub state: State,
    #[serde(skip)]
    env: DeviceEnv,
}

impl Trace {
    /// The deciding rule, if any.
    pub fn decider(&self) -> Option<&TracedRule> {
        self.decider.and_then(|i| self.rules.get(i))
    }

    /// Runs a (verified) condition program against this device's facts: for `hpl why` to show
    /// the value of each clause of a `when`, with the same VM and the same facts as the rule.
    pub fn evaluate_clause(&self, program: &Program, strings: &[String]) -> Value {
        vm::run(program, strings, &self.env)
    }
}

/// The trace of `manager:package` on this device, with the record it belongs to.
pub fn trace(
    bundle: &VerifiedBundle,
    inventory: &Inventory,
    now: i64,
    settings: &Settings,
    manager: &str,
    package: &str,
) -> Result<(Trace, ComplianceRecord), TraceError> {
    let c = bundle.content();
    let Some(m) = c.managers.iter().position(|x| c.str(x.id) == manager) else {
        return Err(TraceError::UnknownManager {
            manager: manager.to_string(),
            known: c.managers.iter().map(|x| c.str(x.id).to_string()).collect(),
        });
    };
    let m = m as u32;
    let scheme = bundle.scheme(m);
    let name = crate::package::normalize_name(scheme, package);
    let mut probe = Evaluator::new(bundle, inventory, now, settings);
    let mut e = Evaluator::new(bundle, inventory, now, settings);
    e.capture = Some(Capture {
        manager: m,
        name: name.clone(),
        ..Capture::default()
    });
    e.run();
    let mut capture = e.capture.take().unwrap_or_default();
    if !capture.reached {
        // Nothing the evaluation had to check (only globs name a package that is not
        // installed): the decision is still the one precedence gives the applicable rules,
        // asked the way `authorize` asks it, on the probe so the record stays the evaluation's.
        let (rules, pins) = probe.applicable(m, &name);
        capture.decision = Some(probe.decision(&rules, None, None));
        capture.decided_among = rules.clone();
        capture.rules = rules;
        capture.pins = pins;
    }
    let inventoried = inventory.managers.iter().find(|x| x.id == manager);
    let installed = inventoried.and_then(|x| {
        x.packages
            .iter()
            .find(|p| crate::package::normalize_name(scheme, &p.name) == name)
    });

    // Every entry that names the package, with how it stands on this device.
    let mut rules: Vec<(u32, TracedRule)> = Vec::new();
    for (i, r) in c.rules.iter().enumerate() {
        let i = i as u32;
        if r.manager != m {
            continue;
        }
        let pattern = c.str(r.pattern);
        let names = if r.glob {
            name.starts_with(pattern)
        } else {
            name == pattern
        };
        if !names {
            continue;
        }
        let candidate = e.candidate(i);
        let origin = e.origin_of(r.origin);
        let bound = e.is_bound(i);
        let condition = r.condition.map(|k| {
            // The evaluation's own value; a bound rule it had no reason to ask about (a glob
            // for a package that is not installed) is asked on a separate evaluator, so that
            // the record stays exactly the evaluation's.
            let value = match e.condition_value(k) {
                Some(v) => Some(v),
                None if bound => probe.condition_value_now(k, r.origin),
                None => None,
            };
            ConditionTrace {
                source: c.str(c.conditions[k as usize].source).to_string(),
                value: ConditionValue::of(value.as_ref()),
            }
        });
        let applicability = if capture.rules.contains(&i) || capture.pins.contains(&i) {
            if capture.unreadable.is_some() && !capture.decided_among.contains(&i) {
                Applicability::VersionUnreadable
            } else {
                Applicability::Yes
            }
        } else if !e.in_scope(r.origin) {
            Applicability::NotInScope
        } else if !bound {
            Applicability::OtherBinding {
                scope: bundle
                    .rule_groups
                    .iter()
                    .find(|g| g.contains(&i))
                    .and_then(|g| g.iter().copied().find(|&j| e.is_bound(j)))
                    .map(|j| e.origin_of(c.rules[j as usize].origin).scope.to_string())
                    .unwrap_or_default(),
            }
        } else {
            match condition.as_ref().map(|k| &k.value) {
                Some(ConditionValue::False) => Applicability::ConditionFalse,
                Some(ConditionValue::Error(_) | ConditionValue::NotEvaluated) => {
                    Applicability::ConditionUnknown
                }
                // Bound and its condition holds, but the evaluation had nothing to decide: a
                // glob for a package that is not installed.
                _ => Applicability::Yes,
            }
        };
        let (result, note) = e.result_of(i);
        rules.push((
            i,
            TracedRule {
                rule: origin,
                kind: RecordRuleKind::of(r.kind, r.is_final),
                target: {
                    let display = c.str(r.display);
                    display
                        .strip_prefix(manager)
                        .and_then(|d| d.strip_prefix(':'))
                        .unwrap_or(display)
                        .to_string()
                },
                constraint: r.constraint.map(|k| c.str(k).to_string()),
                condition,
                because: r.because.map(|k| c.str(k).to_string()),
                level: candidate.level,
                applicability,
                role: None,
                record_result: result,
                note,
            },
        ));
    }

    // Roles, from the decision the evaluation made.
    let decision = capture.decision.clone().unwrap_or_default();
    let among = &capture.decided_among;
    let decider = decision.decider().map(|k| among[k]);
    let denied =
        decider.is_some_and(|d| c.rules[d as usize].kind == RuleKind::Deny) && installed.is_some();
    for (i, t) in rules.iter_mut() {
        if t.applicability != Applicability::Yes {
            continue;
        }
        let pos = among.iter().position(|x| x == i);
        let is_pin = c.rules[*i as usize].kind == RuleKind::Pin;
        t.role = Some(if is_pin {
            if decision.final_deny.is_some() || denied {
                Role::PinSkipped
            } else if capture.pin == Some(*i) {
                Role::PinHolds
            } else if let Some(p) = capture.pin {
                Role::PinOutranked {
                    by: precedence::pin_step(&e.candidate(p), &e.candidate(*i)).0,
                }
            } else {
                Role::NotAsked
            }
        } else if Some(*i) == decider {
            Role::Decides
        } else if pos.is_some_and(|k| decision.undecided.contains(&k)) {
            Role::Incomparable
        } else if pos.is_some_and(|k| decision.passed_finals.contains(&k))
            || (c.rules[*i as usize].constraint.is_some()
                && c.rules[*i as usize].kind == RuleKind::Deny
                && !c.rules[*i as usize].is_final
                && decider.is_none_or(|d| {
                    !e.candidate(d).is_final_deny()
                        && precedence::rule_order(&e.candidate(*i), &e.candidate(d)).is_lt()
                }))
        {
            // A ranged deny that would have come first: it dropped out because its range
            // does not hold the version (or nothing is installed).
            Role::OutOfRange
        } else if let Some(d) = decider {
            Role::Outranked {
                by: precedence::decided_by(&e.candidate(d), &e.candidate(*i)),
            }
        } else {
            Role::NotAsked
        });
    }

    // Decision order: the decider, the rules it outranked as precedence ranks them, then
    // the pins, then what did not apply.
    let rank = |t: &TracedRule| -> u8 {
        match (&t.applicability, &t.role) {
            (_, Some(Role::Decides)) => 0,
            (Applicability::Yes, Some(Role::PinHolds)) => 2,
            (Applicability::Yes, Some(Role::PinOutranked { .. } | Role::PinSkipped)) => 3,
            (Applicability::Yes, _) => 1,
            _ => 4,
        }
    };
    rules.sort_by(|(a, ta), (b, tb)| {
        rank(ta).cmp(&rank(tb)).then_with(|| {
            let (ca, cb) = (e.candidate(*a), e.candidate(*b));
            match (ca.is_final_deny(), cb.is_final_deny()) {
                (true, false) => std::cmp::Ordering::Less,
                (false, true) => std::cmp::Ordering::Greater,
                (true, true) => precedence::final_order(&ca, &cb),
                (false, false) => precedence::rule_order(&ca, &cb),
            }
        })
    });
    let decider_at = rules.iter().position(|(i, _)| Some(*i) == decider);
    let pin_at = rules
        .iter()
        .position(|(_, t)| t.role == Some(Role::PinHolds));
    let scopes = e.device_scopes();
    let env = device_env(inventory, c, &e.in_path_of());
    let record = e.finish_record();
    let display = installed.map_or(name.as_str(), |p| p.name.as_str());
    let concerns = |mgr: &str, pkg: &str| {
        mgr == manager && (pkg == display || crate::package::normalize_name(scheme, pkg) == name)
    };
    let trace = Trace {
        manager: manager.to_string(),
        package: name.clone(),
        installed: installed.map(|p| p.versions.clone()),
        manager_inventoried: inventoried.is_some(),
        scopes,
        rules: rules.into_iter().map(|(_, t)| t).collect(),
        decider: decider_at,
        pin: pin_at,
        unreadable_version: capture.unreadable,
        violations: record
            .violations
            .iter()
            .filter(|v| concerns(&v.manager, &v.package))
            .cloned()
            .collect(),
        remediation: record
            .remediation
            .iter()
            .filter(|x| concerns(&x.manager, &x.package))
            .cloned()
            .collect(),
        unknown_reasons: record
            .unknown_reasons
            .iter()
            .filter(|u| match (&u.manager, &u.package) {
                (Some(mg), Some(p)) => concerns(mg, p),
                (None, None) => true,
                _ => false,
            })
            .cloned()
            .collect(),
        state: record.state,
        env,
    };
    Ok((trace, record))
}
