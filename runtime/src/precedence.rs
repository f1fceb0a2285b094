//! Who wins: the one implementation of DESIGN §3's precedence.
//!
//! Evaluation, authorization, the compiler's conflict analysis and the language server's hover
//! all ask this module; none of them orders rules on its own. (The test suite's reference
//! interpreter is written separately, on purpose, and must not call it.)
//!
//! The decision for one package on one device, from the rules that apply there:
//!
//! 1. **Final denies first.** An un-ranged `deny!` forbids the package, installed or not. A
//!    ranged one decides when the installed version (or the version an action would reach) is
//!    in its range. Among final denies that decide: the most severe (error over warn), then the
//!    most specific level, then the more specific matcher, then the lowest (policy id, rule
//!    position).
//! 2. **Otherwise** the most specific level; at equal level the more specific matcher (an exact
//!    name beats any glob, a longer glob prefix beats a shorter one); then deny, require, allow;
//!    then the lowest (policy id, rule position).
//! 3. **Ranged denies** decide only when a version is in their range; otherwise they drop out
//!    and the next rule in that order decides.
//!
//! Pins are their own dimension: the most specific pin wins (level, matcher, then the tie).
//! None of these orders ever looks at file names or declaration order across policies.

use crate::vocab::{Level, RuleKind};
use std::cmp::Ordering;

/// How specifically a rule names its package: an exact name beats any glob; between globs, a
/// longer prefix (`npm:@acme/*`) beats a shorter one (`npm:*`). `Ord`: more specific is greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Matcher {
    /// A glob: the length in bytes of its prefix (the normalized name before `*`).
    Glob {
        prefix_len: usize,
    },
    Exact,
}

impl Matcher {
    pub fn glob(prefix: &str) -> Matcher {
        Matcher::Glob {
            prefix_len: prefix.len(),
        }
    }
}

impl Ord for Matcher {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Matcher::Exact, Matcher::Exact) => Ordering::Equal,
            (Matcher::Exact, Matcher::Glob { .. }) => Ordering::Greater,
            (Matcher::Glob { .. }, Matcher::Exact) => Ordering::Less,
            (Matcher::Glob { prefix_len: a }, Matcher::Glob { prefix_len: b }) => a.cmp(b),
        }
    }
}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Where a rule stands in its policy: the last tie-breaker, after the policy id. Line and
/// column of the statement, then the order within it (a set expands to several rules).
pub type Position = (u32, u32, u32);

/// What precedence needs to know of one applicable rule. Callers build it from whatever
/// they hold (a bundle entry, the compiler's program); `policy` is the policy id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub kind: RuleKind,
    /// A `deny!` (only a deny can be final; the verifier and the resolver make sure).
    pub is_final: bool,
    /// Violations are warnings (`warn`).
    pub warn: bool,
    /// The rule has a version range.
    pub ranged: bool,
    /// The level of the scope binding through which the rule applies.
    pub level: Level,
    pub matcher: Matcher,
    pub policy: &'a str,
    pub position: Position,
}

impl Candidate<'_> {
    /// A final deny (a `deny!`).
    pub fn is_final_deny(&self) -> bool {
        self.is_final && self.kind == RuleKind::Deny
    }

    fn tie(&self) -> (&str, Position) {
        (self.policy, self.position)
    }
}

fn kind_rank(kind: RuleKind) -> u8 {
    match kind {
        RuleKind::Deny => 0,
        RuleKind::Require => 1,
        RuleKind::Allow => 2,
        RuleKind::Pin => 3,
    }
}

/// The step of the order that put one rule ahead of another: what `hpl why` says for each
/// rule that did not decide. The orders below are defined by these steps, so the trace and
/// the decision cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// A final deny decides before every other rule.
    FinalDeny,
    /// Between final denies: error severity before `warn`.
    Severity,
    /// The more specific scope level.
    Level,
    /// The more specific matcher (exact, then the longer glob prefix).
    Matcher,
    /// deny, then require, then allow.
    Kind,
    /// The lowest (policy id, rule position).
    Tie,
}

impl DecidedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::FinalDeny => "final deny",
            DecidedBy::Severity => "severity",
            DecidedBy::Level => "level",
            DecidedBy::Matcher => "matcher",
            DecidedBy::Kind => "kind",
            DecidedBy::Tie => "tie",
        }
    }
}

fn step(by: DecidedBy, order: Ordering) -> Option<(DecidedBy, Ordering)> {
    (order != Ordering::Equal).then_some((by, order))
}

/// Between final denies: which step orders `a` and `b`, and how (`Less`: `a` first).
pub fn final_step(a: &Candidate<'_>, b: &Candidate<'_>) -> (DecidedBy, Ordering) {
    step(DecidedBy::Severity, a.warn.cmp(&b.warn))
        .or_else(|| step(DecidedBy::Level, b.level.cmp(&a.level)))
        .or_else(|| step(DecidedBy::Matcher, b.matcher.cmp(&a.matcher)))
        .unwrap_or_else(|| (DecidedBy::Tie, a.tie().cmp(&b.tie())))
}

/// Between other package rules: which step orders `a` and `b`, and how.
pub fn rule_step(a: &Candidate<'_>, b: &Candidate<'_>) -> (DecidedBy, Ordering) {
    step(DecidedBy::Level, b.level.cmp(&a.level))
        .or_else(|| step(DecidedBy::Matcher, b.matcher.cmp(&a.matcher)))
        .or_else(|| step(DecidedBy::Kind, kind_rank(a.kind).cmp(&kind_rank(b.kind))))
        .unwrap_or_else(|| (DecidedBy::Tie, a.tie().cmp(&b.tie())))
}

/// Between pins: which step orders `a` and `b`, and how.
pub fn pin_step(a: &Candidate<'_>, b: &Candidate<'_>) -> (DecidedBy, Ordering) {
    step(DecidedBy::Level, b.level.cmp(&a.level))
        .or_else(|| step(DecidedBy::Matcher, b.matcher.cmp(&a.matcher)))
        .unwrap_or_else(|| (DecidedBy::Tie, a.tie().cmp(&b.tie())))
}

/// Why `winner` decided rather than `other` (both applicable package rules): the step of
/// the order that separates them.
pub fn decided_by(winner: &Candidate<'_>, other: &Candidate<'_>) -> DecidedBy {
    match (winner.is_final_deny(), other.is_final_deny()) {
        (true, false) => DecidedBy::FinalDeny,
        (true, true) => final_step(winner, other).0,
        _ => rule_step(winner, other).0,
    }
}

/// Among final denies: `Less` when `a` decides before `b`.
pub fn final_order(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    final_step(a, b).1
}

/// Among the other package rules: `Less` when `a` wins over `b` (when both apply and `a`, if a
/// ranged deny, fires).
pub fn rule_order(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    rule_step(a, b).1
}

/// Among pins: `Less` when `a` wins over `b`.
pub fn pin_order(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    pin_step(a, b).1
}

/// Whether a ranged deny's range holds the version in question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fires {
    Yes,
    No,
    /// The version cannot be compared with the range: the rule is `unknown`, and it does not
    /// decide.
    Unknown,
}

impl From<Option<bool>> for Fires {
    fn from(v: Option<bool>) -> Fires {
        match v {
            Some(true) => Fires::Yes,
            Some(false) => Fires::No,
            None => Fires::Unknown,
        }
    }
}

/// The decision for one package, as indices into the candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// A final deny decided: everything else is `skip` ("forbidden by final deny"), the pin
    /// included.
    pub final_deny: Option<usize>,
    /// Otherwise the deciding rule, if any applies.
    pub winner: Option<usize>,
    /// Ranged denies whose range could not be compared with the version (`unknown`).
    pub undecided: Vec<usize>,
    /// The final denies before the decider (or all, when none decided) that did not decide:
    /// they `pass`.
    pub passed_finals: Vec<usize>,
}

impl Decision {
    /// The rule that decides the package, final or not.
    pub fn decider(&self) -> Option<usize> {
        self.final_deny.or(self.winner)
    }
}

/// Decides one package. `candidates` are the applicable package rules (pins are ignored
/// here; see [`pin`]). `present` says whether a version is installed (or, for authorization,
/// would be); `fires(i)` is asked only for ranged denies and only when `present`.
pub fn decide(
    candidates: &[Candidate<'_>],
    present: bool,
    mut fires: impl FnMut(usize) -> Fires,
) -> Decision {
    let mut d = Decision::default();
    let mut finals: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].is_final_deny())
        .collect();
    finals.sort_by(|&a, &b| final_order(&candidates[a], &candidates[b]));
    for &i in &finals {
        let c = &candidates[i];
        let decides = if !c.ranged {
            true
        } else if !present {
            false
        } else {
            match fires(i) {
                Fires::Yes => true,
                Fires::No => false,
                Fires::Unknown => {
                    d.undecided.push(i);
                    continue;
                }
            }
        };
        if decides {
            // The finals after the decider are never asked: they are `skip`, like the rest.
            d.final_deny = Some(i);
            return d;
        }
        d.passed_finals.push(i);
    }
    let mut others: Vec<usize> = (0..candidates.len())
        .filter(|&i| !candidates[i].is_final_deny() && candidates[i].kind != RuleKind::Pin)
        .collect();
    others.sort_by(|&a, &b| rule_order(&candidates[a], &candidates[b]));
    for i in others {
        let c = &candidates[i];
        if c.kind == RuleKind::Deny && c.ranged {
            if !present {
                continue;
            }
            match fires(i) {
                Fires::Yes => {}
                Fires::No => continue,
                Fires::Unknown => {
                    d.undecided.push(i);
                    continue;
                }
            }
        }
        d.winner = Some(i);
        break;
    }
    d
}

/// The pin that holds the package: the most specific of the applicable pins.
pub fn pin(candidates: &[Candidate<'_>]) -> Option<usize> {
    (0..candidates.len())
        .filter(|&i| candidates[i].kind == RuleKind::Pin)
        .min_by(|&a, &b| pin_order(&candidates[a], &candidates[b]))
}

/// Of several bindings of one rule on a device, the one that gives the rule its level: the
/// most specific level, and between device groups the first group name in byte order.
/// `Less` when `a` is the binding to keep.
pub fn binding_order(a: (Level, &str), b: (Level, &str)) -> Ordering {
    b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(kind: RuleKind, level: Level, matcher: Matcher, policy: &str) -> Candidate<'_> {
        Candidate {
            kind,
            is_final: false,
            warn: false,
            ranged: false,
            level,
            matcher,
            policy,
            position: (1, 1, 0),
        }
    }

    #[test]
    fn matchers_order_exact_then_longer_prefixes() {
        assert!(Matcher::Exact > Matcher::glob("@acme/"));
        assert!(Matcher::glob("@acme/") > Matcher::glob(""));
        assert_eq!(Matcher::glob("ab"), Matcher::glob("cd"));
    }

    /// A pin is never the deciding rule, however specific (cargo-mutants: `&&` → `||` in
    /// the filter of `decide` let a team's pin win over the org's deny).
    #[test]
    fn a_pin_never_decides_however_specific() {
        let rules = [
            c(RuleKind::Deny, Level::Org, Matcher::glob(""), "p"),
            c(RuleKind::Pin, Level::Team, Matcher::Exact, "p"),
        ];
        let d = decide(&rules, true, |_| Fires::No);
        assert_eq!(d.winner, Some(0));
        assert_eq!(pin(&rules), Some(1));
    }

    #[test]
    fn longer_glob_beats_shorter_at_one_level() {
        let rules = [
            c(RuleKind::Deny, Level::Org, Matcher::glob(""), "p"),
            c(RuleKind::Allow, Level::Org, Matcher::glob("@acme/"), "p"),
        ];
        assert_eq!(decide(&rules, true, |_| Fires::No).winner, Some(1));
    }

    #[test]
    fn level_beats_matcher_and_matcher_beats_kind() {
        let rules = [
            c(RuleKind::Allow, Level::Team, Matcher::glob(""), "p"),
            c(RuleKind::Deny, Level::Org, Matcher::Exact, "p"),
        ];
        assert_eq!(decide(&rules, true, |_| Fires::No).winner, Some(0));
        let rules = [
            c(RuleKind::Deny, Level::Org, Matcher::glob(""), "p"),
            c(RuleKind::Allow, Level::Org, Matcher::Exact, "p"),
        ];
        assert_eq!(decide(&rules, true, |_| Fires::No).winner, Some(1));
    }

    #[test]
    fn unranged_final_deny_decides_when_absent() {
        let mut deny = c(RuleKind::Deny, Level::Team, Matcher::Exact, "web");
        deny.is_final = true;
        let rules = [
            c(
                RuleKind::Require,
                Level::DeviceGroup,
                Matcher::Exact,
                "base",
            ),
            deny,
        ];
        let d = decide(&rules, false, |_| unreachable!("no range to ask about"));
        assert_eq!(d.final_deny, Some(1));
        assert_eq!(d.winner, None);
    }

    #[test]
    fn final_denies_order_by_severity_level_matcher_then_policy() {
        let mut a = c(RuleKind::Deny, Level::DeviceGroup, Matcher::Exact, "a");
        a.is_final = true;
        a.warn = true;
        let mut b = c(RuleKind::Deny, Level::Org, Matcher::glob(""), "z");
        b.is_final = true;
        assert_eq!(decide(&[a, b], true, |_| Fires::Yes).final_deny, Some(1));
        let mut y = b;
        y.policy = "y";
        assert_eq!(decide(&[b, y], true, |_| Fires::Yes).final_deny, Some(1));
    }

    #[test]
    fn ranged_denies_decide_only_when_they_fire() {
        let mut ranged = c(RuleKind::Deny, Level::Team, Matcher::Exact, "p");
        ranged.ranged = true;
        let allow = c(RuleKind::Allow, Level::Org, Matcher::Exact, "p");
        assert_eq!(
            decide(&[ranged, allow], true, |_| Fires::No).winner,
            Some(1)
        );
        assert_eq!(
            decide(&[ranged, allow], true, |_| Fires::Yes).winner,
            Some(0)
        );
        let d = decide(&[ranged, allow], true, |_| Fires::Unknown);
        assert_eq!((d.winner, d.undecided), (Some(1), vec![0]));
        assert_eq!(
            decide(&[ranged, allow], false, |_| Fires::Yes).winner,
            Some(1)
        );
    }

    #[test]
    fn device_groups_bind_by_byte_order() {
        assert_eq!(
            binding_order((Level::DeviceGroup, "alpha"), (Level::DeviceGroup, "beta")),
            Ordering::Less
        );
        assert_eq!(
            binding_order((Level::Org, ""), (Level::Team, "web")),
            Ordering::Greater
        );
    }
}
