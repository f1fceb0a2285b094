//! Authorization: before each mutating action the agent asks whether it may run it.
//!
//! The answer is `allow`, `needs_confirmation` or `deny`, with the reason and the deciding
//! rule's origin. What the policy forbids is denied in `enforce`, needs the user's
//! confirmation in `assist`, and is allowed (and reported) in `observe`. Guarded managers
//! always need confirmation, and a `guard … deny` forbids them outright. Read-only actions are
//! always allowed. A final deny of a package that is installed blocks every upgrade of its
//! manager until the package is removed.

use crate::bundle::{GuardLevel, Mode, RuleKind};
use crate::eval::{Evaluator, Settings};
use crate::inventory::{Inventory, Package};
use crate::load::VerifiedBundle;
use crate::package::{canonical_request, canonical_version, normalize_name};
use crate::precedence;
use crate::record::RuleOrigin;
pub use crate::vocab::Action;
use crate::vocab::Step;
use serde::{Deserialize, Serialize};

/// What the agent wants to do (`hpl authorize --action '<json>'`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ActionRequest {
    /// install, uninstall, upgrade, downgrade, upgrade-all, pin, unpin; or a read-only action:
    /// detect, refresh, search, list, info, outdated.
    pub action: Action,
    pub manager: String,
    #[serde(default)]
    pub package: Option<String>,
    /// The version the action would install (install, upgrade, downgrade, pin).
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

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::NeedsConfirmation => "needs_confirmation",
            Verdict::Deny => "deny",
        }
    }
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
    pub step: Step,
    pub decision: Verdict,
    pub reason: String,
    pub rule: Option<RuleOrigin>,
}

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
    if request.action.is_read_only() {
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
    /// The policy cannot tell (the request names no version where a range decides): the user
    /// must confirm, in every mode that blocks; never `allow` in enforce.
    confirm_only: bool,
}

impl Objection {
    fn new(reason: String, rule: u32) -> Option<Objection> {
        Some(Objection {
            reason,
            rule,
            confirm_only: false,
        })
    }

    fn unverifiable(reason: String, rule: u32) -> Option<Objection> {
        Some(Objection {
            reason,
            rule,
            confirm_only: true,
        })
    }
}

/// Decides whether the agent may run `request` on this device now.
pub fn authorize(
    bundle: &VerifiedBundle,
    inventory: &Inventory,
    request: &ActionRequest,
    now: i64,
    settings: &Settings,
) -> Decision {
    let action = request.action;
    if action.is_read_only() {
        return decision(Verdict::Allow, "read-only actions are always allowed", None);
    }
    if action == Action::Manual || action == Action::InstallPolicy {
        return decision(
            Verdict::Deny,
            format!("`{action}` is not an action the agent asks about"),
            None,
        );
    }
    let c = bundle.content();
    // No valid snapshot is no valid snapshot, whoever asks (the device facade checks this and
    // the MDM tenant first; a caller of this function directly gets the same answer).
    let cap_or_enforce = settings.mode_cap.unwrap_or(Mode::Enforce);
    if let Some(expires) = c.manifest.expires_at {
        if now >= expires {
            return authorize_without_snapshot(
                request,
                cap_or_enforce,
                &format!("the bundle expired at {}", crate::eval::timestamp(expires)),
            );
        }
    }
    if inventory.tenant_id != c.manifest.tenant {
        return authorize_without_snapshot(
            request,
            cap_or_enforce,
            &format!(
                "the inventory is for tenant `{}`, the bundle for `{}`",
                inventory.tenant_id, c.manifest.tenant
            ),
        );
    }
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
    if manager.capabilities.guarded || crate::floor::is_guarded(c.str(manager.id)) {
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
        if g.manager != m
            || !e.guard_bound(g.origin)
            || e.applies(g.condition, g.origin) != Some(true)
        {
            continue;
        }
        let origin = e.origin_of(g.origin);
        match g.level {
            GuardLevel::Deny => {
                return decision(
                    Verdict::Deny,
                    format!(
                        "`guard {} deny`: the policy forbids this action",
                        request.manager
                    ),
                    Some(origin),
                )
            }
            GuardLevel::Confirm if floor.decision < Verdict::NeedsConfirmation => {
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
    if action == Action::UpgradeAll {
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
    // Decide on the manager's canonical name (tap prefixes, extras, `@version`, PEP 503); a
    // name that cannot be made canonical is refused, never allowed.
    let requested = match canonical_request(&request.manager, scheme, package) {
        Ok(r) => r,
        Err(why) => return refuse(&e, format!("cannot read the package name: {why}")),
    };
    let to = match (requested.version.as_deref(), request.to.as_deref()) {
        (Some(v), Some(t)) if canonical_version(v) != canonical_version(t) => {
            return refuse(
                &e,
                format!("the package names version `{v}` but `to` is `{t}`"),
            )
        }
        (Some(v), _) => Some(v),
        (None, t) => t,
    };
    let name = requested.name;
    let installed = inventoried.and_then(|x| {
        x.packages
            .iter()
            .find(|p| normalize_name(scheme, &p.name) == name)
    });
    let objection = objection(&mut e, m, &name, installed, action, to);
    // An installed, finally denied package blocks upgrades of its manager — except the
    // upgrade of a finally denied package itself: moving it out of its range resolves it (the
    // objection above still checks where the upgrade lands).
    let resolves_final_deny = installed.is_some_and(|p| {
        let (rules, _) = e.applicable(m, &name);
        e.decision(&rules, Some(p), None).final_deny.is_some()
    });
    let blocker = if action == Action::Upgrade && !resolves_final_deny {
        blocking_final_deny(&mut e, m, inventoried, Some(&name))
    } else {
        None
    };
    combine(&e, floor, objection.or(blocker))
}

/// A request the runtime cannot read: denied if any policy on the device could enforce,
/// otherwise sent for confirmation; never allowed.
fn refuse(e: &Evaluator<'_>, reason: String) -> Decision {
    let strictest = e
        .content()
        .policies
        .iter()
        .map(|p| e.effective_mode(p.mode))
        .max()
        .unwrap_or(Mode::Enforce);
    let verdict = if strictest == Mode::Enforce {
        Verdict::Deny
    } else {
        Verdict::NeedsConfirmation
    };
    decision(verdict, reason, None)
}

/// The mode of the objecting rule's policy turns an objection into a verdict.
fn combine(e: &Evaluator<'_>, floor: Decision, objection: Option<Objection>) -> Decision {
    let Some(o) = objection else { return floor };
    let c = e.content();
    let rule = &c.rules[o.rule as usize];
    let mode = e.effective_mode(c.policies[c.origins[rule.origin as usize].policy as usize].mode);
    let origin = Some(e.origin_of(rule.origin));
    match mode {
        Mode::Enforce if o.confirm_only => decision(
            Verdict::NeedsConfirmation,
            format!("{} (the user confirms the version)", o.reason),
            origin,
        ),
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

/// What the policy says against doing `action` to the package, if anything. The precedence
/// decision is the one evaluation would make on the state the action leaves: the target
/// version installed, the package absent after an uninstall, or an unknown version when the
/// request names none.
fn objection(
    e: &mut Evaluator<'_>,
    m: u32,
    name: &str,
    installed: Option<&Package>,
    action: Action,
    to: Option<&str>,
) -> Option<Objection> {
    let c = e.content();
    let scheme = e.bundle().scheme(m);
    // Versions as managers accept them (`v1.29.0`, `=3.3.6`) are read as the plain version.
    let target = to.and_then(|v| scheme.parse_version(canonical_version(v)).ok());
    let unreadable = to.filter(|_| target.is_none());
    let (rules, pins) = e.applicable(m, name);
    let constraint_text = |r: u32| c.rules[r as usize].constraint.map_or("", |x| c.str(x));
    let b = e.bundle();
    let in_range = |r: u32| -> Option<bool> {
        let constraint = b.constraint(r)?;
        target.as_ref().and_then(|v| constraint.matches(v))
    };
    let installs_version = matches!(
        action,
        Action::Install | Action::Upgrade | Action::Downgrade
    );
    let unknown_version = installs_version && target.is_none();
    let to_text = to.unwrap_or("an unnamed version");
    // An upgrade without a version only goes up from the installed one: ranges that cannot
    // be reached (or left) from there are known; everything else is unknown.
    let scheme = b.scheme(m);
    let current = installed.and_then(|p| {
        p.versions
            .iter()
            .filter_map(|v| scheme.parse_version(v).ok())
            .reduce(|a, x| {
                if x.compare(&a) == Some(std::cmp::Ordering::Greater) {
                    x
                } else {
                    a
                }
            })
    });
    let upward_from = if action == Action::Upgrade {
        current.as_ref()
    } else {
        None
    };
    let d = if action == Action::Uninstall {
        e.decision(&rules, None, None)
    } else if unknown_version {
        e.decide_with(&rules, true, |r| match (upward_from, b.constraint(r)) {
            (Some(cur), Some(con)) if !con.may_hold_above(cur) => precedence::Fires::No,
            _ => precedence::Fires::Unknown,
        })
    } else {
        e.decision(&rules, installed, target.as_ref())
    };
    if let Some(f) = d.final_deny {
        let r = rules[f];
        if action.installs() {
            let what = match c.rules[r as usize].constraint {
                None => String::new(),
                Some(_) => format!(" {}", constraint_text(r)),
            };
            return Objection::new(format!("`{name}`{what} is finally denied"), r);
        }
        // Removing or unpinning a forbidden package is what the policy wants.
        return None;
    }
    // A range decides, and the request does not say which version it installs.
    if unknown_version {
        if let Some(&i) = d.undecided.first() {
            let r = rules[i];
            let range = constraint_text(r);
            return match unreadable {
                Some(v) => Objection::new(
                    format!("`{v}` is not a version {scheme} can read, and `{name}` is denied in `{range}`"),
                    r,
                ),
                None => Objection::unverifiable(
                    format!("`{name}` is denied in `{range}` and the request names no version (`to`)"),
                    r,
                ),
            };
        }
    }
    let winner = d.winner.map(|i| rules[i]);
    if let Some(w) = winner {
        let rule = &c.rules[w as usize];
        match rule.kind {
            // Pinning a denied package holds what should be removed.
            RuleKind::Deny if installs_version || action == Action::Pin => {
                return Objection::new(format!("`{name}` is denied: no {action}"), w);
            }
            RuleKind::Require | RuleKind::Allow
                if installs_version
                    && unknown_version
                    && b.constraint(w).is_some_and(|con| {
                        !upward_from.is_some_and(|cur| con.holds_for_all_above(cur))
                    }) =>
            {
                let range = constraint_text(w);
                return match unreadable {
                    Some(v) => Objection::new(
                        format!("`{v}` is not a version {scheme} can read, and `{name}` must be in `{range}`"),
                        w,
                    ),
                    None => Objection::unverifiable(
                        format!("`{name}` must be in `{range}` and the request names no version (`to`)"),
                        w,
                    ),
                };
            }
            RuleKind::Require | RuleKind::Allow
                if installs_version && rule.constraint.is_some() && in_range(w) == Some(false) =>
            {
                return Objection::new(
                    format!("{to_text} is outside the range `{}`", constraint_text(w)),
                    w,
                );
            }
            RuleKind::Require if action == Action::Uninstall => {
                return Objection::new(format!("`{name}` is required"), w);
            }
            _ => {}
        }
    }
    if let Some(&pin) = pins.first() {
        match action {
            Action::Unpin => {
                return Objection::new(
                    format!("`{name}` is pinned to `{}` by policy", constraint_text(pin)),
                    pin,
                )
            }
            // Installing an absent package without a version: the agent installs the pinned
            // one (the plan's `to`); any other version moves it off its pin.
            Action::Install if installed.is_none() && to.is_none() => {}
            Action::Upgrade | Action::Downgrade | Action::Install | Action::Pin => {
                let con = b.constraint(pin);
                let holds = match (&target, con) {
                    (Some(v), Some(con)) => con.matches(v) == Some(true),
                    _ => false,
                };
                // An upgrade without a version stays on a pin it cannot leave (`>= 1.2` from
                // 1.5); otherwise the user confirms the version it reaches.
                let stays = unknown_version
                    && unreadable.is_none()
                    && upward_from
                        .zip(con)
                        .is_some_and(|(cur, con)| con.holds_for_all_above(cur));
                let pinning_installed = action == Action::Pin && to.is_none();
                if !(holds || stays || pinning_installed) {
                    if unknown_version && unreadable.is_none() {
                        return Objection::unverifiable(
                            format!(
                                "`{name}` is pinned to `{}` and the request names no version (`to`)",
                                constraint_text(pin)
                            ),
                            pin,
                        );
                    }
                    return Objection::new(format!("pinned to `{}`", constraint_text(pin)), pin);
                }
            }
            _ => {}
        }
    }
    if action == Action::Pin {
        if let Some(w) = winner {
            let rule = &c.rules[w as usize];
            if matches!(rule.kind, RuleKind::Require | RuleKind::Allow)
                && rule.constraint.is_some()
                && in_range(w) == Some(false)
            {
                return Objection::new(
                    format!("{to_text} is outside the range `{}`", constraint_text(w)),
                    w,
                );
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
    except: Option<&str>,
) -> Option<Objection> {
    let inv = inventoried?;
    let scheme = e.bundle().scheme(m);
    for p in &inv.packages {
        let name = normalize_name(scheme, &p.name);
        if except == Some(name.as_str()) {
            continue;
        }
        let (rules, _) = e.applicable(m, &name);
        if let Some(f) = e.decision(&rules, Some(p), None).final_deny {
            return Objection::new(
                format!(
                    "upgrades are blocked until the denied package `{}` is removed",
                    p.name
                ),
                rules[f],
            );
        }
    }
    None
}

/// Each package's verdict is the one `upgrade` of it gets (pinned packages are skipped); the
/// overall verdict is the strictest of them.
fn upgrade_all(e: &mut Evaluator<'_>, m: u32, packages: &[Package], floor: Decision) -> Decision {
    let inventoried = e
        .inventory()
        .managers
        .iter()
        .find(|x| x.packages.as_ptr() == packages.as_ptr());
    if let Some(block) = blocking_final_deny(e, m, inventoried, None) {
        return combine(e, floor, Some(block));
    }
    let scheme = e.bundle().scheme(m);
    let mut out = Vec::new();
    for p in packages {
        let name = normalize_name(scheme, &p.name);
        let (_, pins) = e.applicable(m, &name);
        if let Some(&pin) = pins.first() {
            let c = e.content();
            let constraint = c.rules[pin as usize].constraint.map_or("", |x| c.str(x));
            out.push(PackageDecision {
                package: p.name.clone(),
                step: Step::Skip,
                decision: Verdict::Allow,
                reason: format!("pinned to `{constraint}`"),
                rule: Some(e.origin_of(c.rules[pin as usize].origin)),
            });
        } else if p.pinned {
            out.push(PackageDecision {
                package: p.name.clone(),
                step: Step::Skip,
                decision: Verdict::Allow,
                reason: "pinned on the device".into(),
                rule: None,
            });
        } else {
            let o = objection(e, m, &name, Some(p), Action::Upgrade, None);
            let d = combine(e, floor.clone(), o);
            out.push(PackageDecision {
                package: p.name.clone(),
                step: Step::Upgrade,
                decision: d.decision,
                reason: d.reason,
                rule: d.rule,
            });
        }
    }
    let skipped = out.iter().filter(|p| p.step == Step::Skip).count();
    let strictest = out
        .iter()
        .filter(|p| p.step == Step::Upgrade)
        .map(|p| p.decision)
        .chain(std::iter::once(floor.decision))
        .max()
        .unwrap_or(floor.decision);
    let held = out
        .iter()
        .filter(|p| p.step == Step::Upgrade && p.decision > Verdict::Allow)
        .count();
    let mut reason = format!(
        "{} packages to upgrade, {skipped} pinned and skipped",
        out.len() - skipped
    );
    if held > 0 {
        reason.push_str(&format!("; {held} not allowed as they are"));
    }
    Decision {
        decision: strictest,
        reason,
        rule: floor.rule,
        packages: out,
    }
}
