//! Authorization: before each mutating action the agent asks whether it may run it.
//!
//! The answer is `allow`, `needs_confirmation` or `deny`, with the reason and the deciding
//! rule's origin. What the policy forbids is denied in `enforce`, needs the user's
//! confirmation in `assist`, and is allowed (and reported) in `observe`. Guarded managers
//! always need confirmation, and a `guard … deny` forbids them outright. Read-only actions are
//! always allowed. A final deny of a package that is installed blocks every upgrade of its
//! manager until the package is removed.

use crate::bundle::{self, Mode, RuleKind, CAP_GUARDED};
use crate::eval::{Evaluator, Settings};
use crate::inventory::{Inventory, Package};
use crate::load::VerifiedBundle;
use crate::package::normalize_name;
use crate::record::RuleOrigin;
use serde::{Deserialize, Serialize};

/// What the agent wants to do (`hpl authorize --action '<json>'`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ActionRequest {
    /// install, uninstall, upgrade, upgrade-all, pin, unpin; or a read-only action: detect,
    /// refresh, search, list, info, outdated.
    pub action: String,
    pub manager: String,
    #[serde(default)]
    pub package: Option<String>,
    /// The version the action would install (install, upgrade, pin).
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    NeedsConfirmation,
    Deny,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Decision {
    pub decision: Verdict,
    pub reason: String,
    pub rule: Option<RuleOrigin>,
    /// For `upgrade-all`: the verdict for each installed package of the manager.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PackageDecision>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PackageDecision {
    pub package: String,
    /// `upgrade`, or `skip` (pinned or otherwise held).
    pub step: &'static str,
    pub decision: Verdict,
    pub reason: String,
    pub rule: Option<RuleOrigin>,
}

pub const READ_ONLY: &[&str] = &["detect", "refresh", "search", "list", "info", "outdated"];
pub const MUTATING: &[&str] = &[
    "install",
    "uninstall",
    "upgrade",
    "upgrade-all",
    "pin",
    "unpin",
];

fn decision(decision: Verdict, reason: impl Into<String>, rule: Option<RuleOrigin>) -> Decision {
    Decision {
        decision,
        reason: reason.into(),
        rule,
        packages: Vec::new(),
    }
}

/// When there is no valid snapshot: read-only actions run; mutating ones are denied in
/// `enforce` (and need confirmation otherwise), with the explicit error `no_valid_snapshot`.
pub fn authorize_without_snapshot(request: &ActionRequest, mode: Mode, context: &str) -> Decision {
    if READ_ONLY.contains(&request.action.as_str()) {
        return decision(Verdict::Allow, "read-only actions are always allowed", None);
    }
    let verdict = if mode == Mode::Enforce {
        Verdict::Deny
    } else {
        Verdict::NeedsConfirmation
    };
    decision(verdict, format!("no_valid_snapshot: {context}"), None)
}

/// A policy's objection to an action, before the mode decides what it means.
struct Objection {
    reason: String,
    rule: u32,
}

/// Decides whether the agent may run `request` on this device now.
pub fn authorize(
    bundle: &VerifiedBundle,
    inventory: &Inventory,
    request: &ActionRequest,
    now: i64,
    settings: &Settings,
) -> Decision {
    let action = request.action.as_str();
    if READ_ONLY.contains(&action) {
        return decision(Verdict::Allow, "read-only actions are always allowed", None);
    }
    if !MUTATING.contains(&action) {
        return decision(
            Verdict::Deny,
            format!(
                "unknown action `{action}`; expected one of {}",
                MUTATING.join(", ")
            ),
            None,
        );
    }
    let c = bundle.content();
    let Some(m) = c
        .managers
        .iter()
        .position(|x| c.str(x.id) == request.manager)
    else {
        return decision(
            Verdict::Deny,
            format!("unknown manager `{}`", request.manager),
            None,
        );
    };
    let m = m as u32;
    let mut e = Evaluator::new(bundle, inventory, now, settings);
    // The guard floor and the policy's guards for this manager.
    let manager = &c.managers[m as usize];
    let mut floor = decision(Verdict::Allow, "allowed by policy", None);
    if manager.capabilities & CAP_GUARDED != 0 {
        floor = decision(
            Verdict::NeedsConfirmation,
            format!(
                "{} is a guarded action: it always needs confirmation",
                request.manager
            ),
            None,
        );
    }
    for g in &c.guards {
        if g.manager != m || !e.bound(g.origin) || e.applies(g.condition, g.origin) != Some(true) {
            continue;
        }
        let origin = e.origin_of(g.origin);
        match g.level {
            1 => {
                return decision(
                    Verdict::Deny,
                    format!(
                        "`guard {} deny`: the policy forbids this action",
                        request.manager
                    ),
                    Some(origin),
                )
            }
            0 if floor.decision < Verdict::NeedsConfirmation => {
                floor = decision(
                    Verdict::NeedsConfirmation,
                    format!("`guard {} confirm`", request.manager),
                    Some(origin),
                );
            }
            _ => {}
        }
    }
    let inventoried = inventory.managers.iter().find(|x| x.id == request.manager);
    if action == "upgrade-all" {
        return upgrade_all(
            &mut e,
            m,
            inventoried.map(|x| x.packages.as_slice()).unwrap_or(&[]),
            floor,
        );
    }
    let Some(package) = &request.package else {
        return decision(Verdict::Deny, format!("`{action}` needs a package"), None);
    };
    let scheme = bundle.scheme(m);
    let name = normalize_name(scheme, package);
    let installed = inventoried.and_then(|x| {
        x.packages
            .iter()
            .find(|p| normalize_name(scheme, &p.name) == name)
    });
    let objection = objection(&mut e, m, &name, installed, action, request.to.as_deref());
    let blocker = if action == "upgrade" {
        blocking_final_deny(&mut e, m, inventoried)
    } else {
        None
    };
    combine(&e, floor, objection.or(blocker))
}

/// The mode of the objecting rule's policy turns an objection into a verdict.
fn combine(e: &Evaluator<'_>, floor: Decision, objection: Option<Objection>) -> Decision {
    let Some(o) = objection else { return floor };
    let c = e.content();
    let rule = &c.rules[o.rule as usize];
    let mode = e.effective_mode(c.policies[c.origins[rule.origin as usize].policy as usize].mode);
    let origin = Some(e.origin_of(rule.origin));
    match mode {
        Mode::Enforce => decision(Verdict::Deny, o.reason, origin),
        Mode::Assist => decision(
            Verdict::NeedsConfirmation,
            format!("{} (assist mode: the user decides)", o.reason),
            origin,
        ),
        Mode::Observe => {
            let mut d = decision(
                floor.decision,
                format!("{} (observe mode: reported, not blocked)", o.reason),
                origin,
            );
            d.packages = floor.packages;
            d
        }
    }
}

/// What the policy says against doing `action` to the package, if anything.
fn objection(
    e: &mut Evaluator<'_>,
    m: u32,
    name: &str,
    installed: Option<&Package>,
    action: &str,
    to: Option<&str>,
) -> Option<Objection> {
    let c = e.content();
    let scheme = e.bundle().scheme(m);
    let target = to.and_then(|v| scheme.parse_version(v).ok());
    let (rules, pins) = e.applicable(m, name);
    let constraint_text = |r: u32| c.str(c.rules[r as usize].constraint).to_string();
    let b = e.bundle();
    let in_range = |r: u32| -> Option<bool> {
        let constraint = b.constraint(r)?;
        target.as_ref().and_then(|v| constraint.matches(v))
    };
    let installs = matches!(action, "install" | "upgrade" | "pin");
    if installs {
        // Final denies: of the package, or of the version it would reach.
        for &r in &rules {
            let rule = &c.rules[r as usize];
            if rule.is_final && (rule.constraint == bundle::NONE || in_range(r) == Some(true)) {
                let what = if rule.constraint == bundle::NONE {
                    String::new()
                } else {
                    format!(" {}", constraint_text(r))
                };
                return Some(Objection {
                    reason: format!("`{name}`{what} is finally denied"),
                    rule: r,
                });
            }
        }
    }
    let winner = e.winner(&rules, installed, target.as_ref());
    match (action, winner) {
        ("install" | "upgrade", Some(w)) => {
            let rule = &c.rules[w as usize];
            match rule.kind {
                RuleKind::Deny => {
                    return Some(Objection {
                        reason: format!("installing `{name}` is denied"),
                        rule: w,
                    });
                }
                RuleKind::Require | RuleKind::Allow
                    if rule.constraint != bundle::NONE && in_range(w) == Some(false) =>
                {
                    return Some(Objection {
                        reason: format!(
                            "{} is outside the range `{}`",
                            to.unwrap_or("?"),
                            constraint_text(w)
                        ),
                        rule: w,
                    });
                }
                _ => {}
            }
        }
        ("uninstall", Some(w)) if c.rules[w as usize].kind == RuleKind::Require => {
            return Some(Objection {
                reason: format!("`{name}` is required"),
                rule: w,
            });
        }
        _ => {}
    }
    if let Some(&pin) = pins.first() {
        match action {
            "unpin" => {
                return Some(Objection {
                    reason: format!("`{name}` is pinned to `{}` by policy", constraint_text(pin)),
                    rule: pin,
                })
            }
            "upgrade" | "install" | "pin" if installed.is_some() || action != "install" => {
                let holds = match (&target, b.constraint(pin)) {
                    (Some(v), Some(con)) => con.matches(v) == Some(true),
                    _ => false,
                };
                if !(holds || (action == "pin" && to.is_none())) {
                    return Some(Objection {
                        reason: format!("pinned to `{}`", constraint_text(pin)),
                        rule: pin,
                    });
                }
            }
            _ => {}
        }
    }
    if action == "pin" {
        if let Some(w) = winner {
            let rule = &c.rules[w as usize];
            if matches!(rule.kind, RuleKind::Require | RuleKind::Allow)
                && rule.constraint != bundle::NONE
                && in_range(w) == Some(false)
            {
                return Some(Objection {
                    reason: format!(
                        "{} is outside the range `{}`",
                        to.unwrap_or("?"),
                        constraint_text(w)
                    ),
                    rule: w,
                });
            }
        }
    }
    None
}

/// A final deny whose package is installed blocks upgrades of its manager until resolved.
fn blocking_final_deny(
    e: &mut Evaluator<'_>,
    m: u32,
    inventoried: Option<&crate::inventory::ManagerInventory>,
) -> Option<Objection> {
    let inv = inventoried?;
    let scheme = e.bundle().scheme(m);
    for p in &inv.packages {
        let name = normalize_name(scheme, &p.name);
        let (rules, _) = e.applicable(m, &name);
        for r in rules {
            if e.content().rules[r as usize].is_final && e.denied_range_hit(r, p) == Some(true) {
                return Some(Objection {
                    reason: format!(
                        "upgrades are blocked until the denied package `{}` is removed",
                        p.name
                    ),
                    rule: r,
                });
            }
        }
    }
    None
}

fn upgrade_all(e: &mut Evaluator<'_>, m: u32, packages: &[Package], floor: Decision) -> Decision {
    let inventoried = e
        .inventory()
        .managers
        .iter()
        .find(|x| x.packages.as_ptr() == packages.as_ptr());
    if let Some(block) = blocking_final_deny(e, m, inventoried) {
        return combine(e, floor, Some(block));
    }
    let scheme = e.bundle().scheme(m);
    let mut out = Vec::new();
    for p in packages {
        let name = normalize_name(scheme, &p.name);
        let (_, pins) = e.applicable(m, &name);
        if let Some(&pin) = pins.first() {
            let c = e.content();
            out.push(PackageDecision {
                package: p.name.clone(),
                step: "skip",
                decision: Verdict::Allow,
                reason: format!("pinned to `{}`", c.str(c.rules[pin as usize].constraint)),
                rule: Some(e.origin_of(c.rules[pin as usize].origin)),
            });
        } else if p.pinned {
            out.push(PackageDecision {
                package: p.name.clone(),
                step: "skip",
                decision: Verdict::Allow,
                reason: "pinned on the device".into(),
                rule: None,
            });
        } else {
            out.push(PackageDecision {
                package: p.name.clone(),
                step: "upgrade",
                decision: floor.decision,
                reason: floor.reason.clone(),
                rule: floor.rule.clone(),
            });
        }
    }
    let skipped = out.iter().filter(|p| p.step == "skip").count();
    Decision {
        decision: floor.decision,
        reason: format!(
            "{} packages to upgrade, {skipped} pinned and skipped",
            out.len() - skipped
        ),
        rule: floor.rule,
        packages: out,
    }
}
