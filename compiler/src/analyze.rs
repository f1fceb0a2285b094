//! Stage 4: conflict analysis across all scopes.
//!
//! Rules are grouped by package (manager and pattern); within a group every pair of rules
//! whose scopes can meet on one device is compared. Each finding names both rules and their
//! scopes: an error or warning at one, a note pointing at the other.
//!
//! Rules of different but nested patterns (`deny npm:*` and `allow npm:@acme/*`, or a glob and
//! a name under it) are compared too: where both apply, the runtime's precedence module
//! (`hpl_runtime::precedence`, which evaluation and authorization use) says which one wins,
//! and the loser gets a note. No ordering of rules is written here.
//!
//! Conditional rules (`when`) are compared only with rules under the same condition: two
//! rules under different conditions may never apply to the same device, and hpl does not
//! report conflicts it cannot prove. An unconditional final deny covers every condition.

use crate::check::Checked;
use crate::diagnostics::{Code, Diagnostic};
use crate::program::{PackageRule, Pattern, Program, RuleId, ScopeId, ScopeTree};
use crate::syntax::ast::{Expr, ExprKind, Level, RuleKind};
use hpl_runtime::precedence;
use std::cmp::Ordering;
use std::collections::HashMap;

/// A rule bound to one of its policy's scopes.
#[derive(Debug, Clone, Copy)]
struct Placement {
    rule: RuleId,
    scope: ScopeId,
}

pub fn analyze(program: &Program, checked: &Checked) -> Vec<Diagnostic> {
    let mut groups: HashMap<(u16, &Pattern), Vec<Placement>> = HashMap::new();
    let mut final_denies = Vec::new();
    for policy in &program.policies {
        for &rule in &policy.rules {
            let r = program.rule(rule);
            for &(scope, _) in &policy.scopes {
                let placement = Placement { rule, scope };
                groups
                    .entry((r.manager.0, &r.pattern))
                    .or_default()
                    .push(placement);
                if r.is_final {
                    final_denies.push(placement);
                }
            }
        }
    }
    let mut a = Analyzer {
        program,
        checked,
        diagnostics: Vec::new(),
        group: Vec::new(),
    };
    let mut keys: Vec<_> = groups.keys().copied().collect();
    keys.sort_by(|x, y| (x.0, pattern_key(x.1)).cmp(&(y.0, pattern_key(y.1))));
    for key in &keys {
        a.group(&groups[key]);
    }
    // Nested patterns: a glob and every other pattern of its manager inside it.
    for glob in keys.iter().filter(|k| !k.1.is_exact()) {
        for key in &keys {
            if key.0 != glob.0 || key.1 == glob.1 || !key.1.within(glob.1) {
                continue;
            }
            for &general in &groups[glob] {
                for &specific in &groups[key] {
                    a.nested_pair(general, specific);
                }
            }
        }
    }
    // A final deny of a glob also forbids allows of the names it covers.
    for deny in &final_denies {
        let d = program.rule(deny.rule);
        if d.pattern.is_exact() {
            continue;
        }
        for key in &keys {
            if key.0 != d.manager.0 || key.1 == &d.pattern || !key.1.within(&d.pattern) {
                continue;
            }
            for other in &groups[key] {
                a.final_deny_pair(*deny, *other);
            }
        }
    }
    a.diagnostics
}

fn pattern_key(p: &Pattern) -> (u8, &str) {
    match p {
        Pattern::Exact(n) => (0, n),
        Pattern::Glob(n) => (1, n),
    }
}

/// Structural equality of conditions, ignoring where they are written.
pub fn same_expr(a: &Expr, b: &Expr) -> bool {
    use ExprKind as K;
    match (&a.kind, &b.kind) {
        (K::Bool(x), K::Bool(y)) => x == y,
        (K::Int(x), K::Int(y)) => x == y,
        (K::Str(x), K::Str(y)) => x == y,
        (K::Null, K::Null) => true,
        (K::Var(x), K::Var(y)) => x == y,
        (K::List(x), K::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_expr(a, b))
        }
        (K::Member(x, f), K::Member(y, g)) => f.text == g.text && same_expr(x, y),
        (K::Index(x, i), K::Index(y, j)) => same_expr(x, y) && same_expr(i, j),
        (K::Unary(o, x), K::Unary(p, y)) => o == p && same_expr(x, y),
        (K::Binary(o, x1, x2), K::Binary(p, y1, y2)) => {
            o == p && same_expr(x1, y1) && same_expr(x2, y2)
        }
        (K::Cond(x1, x2, x3), K::Cond(y1, y2, y3)) => {
            same_expr(x1, y1) && same_expr(x2, y2) && same_expr(x3, y3)
        }
        (
            K::Call {
                receiver: r1,
                function: f1,
                args: a1,
            },
            K::Call {
                receiver: r2,
                function: f2,
                args: a2,
            },
        ) => {
            f1.text == f2.text
                && a1.len() == a2.len()
                && a1.iter().zip(a2).all(|(a, b)| same_expr(a, b))
                && match (r1, r2) {
                    (None, None) => true,
                    (Some(x), Some(y)) => same_expr(x, y),
                    _ => false,
                }
        }
        _ => false,
    }
}

fn same_condition(a: &PackageRule, b: &PackageRule) -> bool {
    match (&a.condition, &b.condition) {
        (None, None) => true,
        (Some(x), Some(y)) => same_expr(x, y),
        _ => false,
    }
}

struct Analyzer<'p> {
    program: &'p Program,
    checked: &'p Checked,
    diagnostics: Vec<Diagnostic>,
    /// The placements of the package being analyzed.
    group: Vec<Placement>,
}

impl Analyzer<'_> {
    fn level(&self, scope: ScopeId) -> Level {
        self.program.scopes.get(scope).level
    }

    fn tree(&self) -> &ScopeTree {
        &self.program.scopes
    }

    /// `policy baseline (org)`: how a rule is named in a related label.
    fn origin(&self, p: Placement) -> String {
        let r = self.program.rule(p.rule);
        let policy = self.program.policy(r.policy);
        let via = r
            .via_set
            .as_ref()
            .map(|s| format!(", via set `{s}`"))
            .unwrap_or_default();
        format!(
            "policy `{}` at {}{via}",
            policy.name.text,
            self.tree().describe(p.scope)
        )
    }

    fn constraint_text(&self, r: &PackageRule) -> String {
        r.constraint
            .as_ref()
            .map(|c| normalize_ws(&c.text))
            .unwrap_or_default()
    }

    fn parsed(&self, r: &PackageRule) -> Option<&hpl_runtime::version::Constraint> {
        self.checked
            .constraints
            .get(r.id.0 as usize)
            .and_then(Option::as_ref)
    }

    /// `Some(false)` only when the two constraints provably share no version.
    fn overlap(&self, a: &PackageRule, b: &PackageRule) -> Option<bool> {
        match (self.parsed(a), self.parsed(b)) {
            (Some(x), Some(y)) => x.intersects(y),
            _ => Some(true),
        }
    }

    /// The scopes a rule's policy is bound to.
    fn bindings(&self, rule: RuleId) -> impl Iterator<Item = ScopeId> + '_ {
        let policy = self.program.policy(self.program.rule(rule).policy);
        policy.scopes.iter().map(|&(scope, _)| scope)
    }

    /// Whether `a` wins over `b` on a device where both apply (DESIGN §3, asked of the
    /// runtime's precedence module).
    fn beats(&self, a: Placement, b: Placement) -> bool {
        let (ra, rb) = (self.program.rule(a.rule), self.program.rule(b.rule));
        precedence::rule_order(
            &ra.candidate(self.program, a.scope),
            &rb.candidate(self.program, b.scope),
        ) == Ordering::Less
    }

    /// A glob rule (`general`) and a rule of a pattern inside it (`specific`): where both apply,
    /// precedence picks one; a rule that a more specific scope overrides gets a note at its
    /// site and the winner's. Final denies and pins are compared elsewhere; ranged denies never win
    /// outright, so nothing is provable about them.
    fn nested_pair(&mut self, general: Placement, specific: Placement) {
        let (g, s) = (
            self.program.rule(general.rule),
            self.program.rule(specific.rule),
        );
        if g.id == s.id
            || g.kind == s.kind
            || g.is_final
            || s.is_final
            || matches!(g.kind, RuleKind::Pin)
            || matches!(s.kind, RuleKind::Pin)
            || (g.kind == RuleKind::Deny && g.constraint.is_some())
            || (s.kind == RuleKind::Deny && s.constraint.is_some())
            || !same_condition(g, s)
            || !self.tree().compatible(general.scope, specific.scope)
        {
            return;
        }
        // A narrower rule that wins is the exception its author wrote on purpose (`deny npm:*`
        // with `allow npm:@acme/*`, or an org-wide allow with a team's deny of one name). The
        // surprise worth a note is the other way round: a broader rule of a more specific
        // scope that takes a narrower one's effect away (an org `allow npm:@acme/*` under a
        // contractors' `deny npm:*`). Only opposite verdicts (a deny against an allow or a
        // require) are worth it.
        if self.beats(specific, general)
            || !(g.kind == RuleKind::Deny || s.kind == RuleKind::Deny)
            || g.condition.is_some()
            || self.level(general.scope) <= self.level(specific.scope)
        {
            return;
        }
        let (winner, loser) = (general, specific);
        let (w, l) = (g, s);
        let article = if w.kind == RuleKind::Allow { "an" } else { "a" };
        self.diagnostics.push(
            Diagnostic::new(
                Code::Overridden,
                format!(
                    "`{} {}` is overridden by {article} `{} {}` on devices in {}",
                    l.kind.keyword(),
                    l.display,
                    w.kind.keyword(),
                    w.display,
                    self.tree().describe(winner.scope)
                ),
                l.span,
                format!("overridden here ({})", self.origin(loser)),
            )
            .related(
                w.span,
                format!("wins: {} (the more specific scope)", self.origin(winner)),
            ),
        );
    }

    fn group(&mut self, placements: &[Placement]) {
        self.group.clear();
        self.group.extend_from_slice(placements);
        for (i, &a) in placements.iter().enumerate() {
            for &b in &placements[i + 1..] {
                if a.rule == b.rule || !self.tree().compatible(a.scope, b.scope) {
                    continue;
                }
                let (ra, rb) = (self.program.rule(a.rule), self.program.rule(b.rule));
                // Order each pair: `first` is the less specific (or, at one level, earlier) rule.
                let (first, second) =
                    if (self.level(a.scope), ra.span) <= (self.level(b.scope), rb.span) {
                        (a, b)
                    } else {
                        (b, a)
                    };
                self.pair(first, second);
            }
        }
    }

    fn pair(&mut self, first: Placement, second: Placement) {
        let (r1, r2) = (
            self.program.rule(first.rule),
            self.program.rule(second.rule),
        );
        let same_scope = first.scope == second.scope;
        let same_cond = same_condition(r1, r2);

        if r1.is_final || r2.is_final {
            let (deny, other) = if r1.is_final {
                (first, second)
            } else {
                (second, first)
            };
            self.final_deny_pair(deny, other);
            if r1.is_final && r2.is_final {
                self.redundant(first, second);
            }
            return;
        }
        if !same_cond {
            return;
        }
        use RuleKind::*;
        match (r1.kind, r2.kind) {
            (Pin, Pin) => self.pins(first, second),
            (Pin, Require | Allow) => self.pin_range(first, second),
            (Require | Allow, Pin) => self.pin_range(second, first),
            (Pin, _) | (_, Pin) => {}
            (k1, k2) if k1 == k2 => self.redundant(first, second),
            (Require, Deny) | (Deny, Require) if same_scope => {
                let (req, deny) = if r1.kind == Require {
                    (first, second)
                } else {
                    (second, first)
                };
                let d = self.program.rule(deny.rule);
                if d.constraint.is_none() && self.beats(deny, req) {
                    self.report_pair(
                        Code::RequireDenyConflict,
                        second,
                        first,
                        format!(
                            "`{}` is both required and denied at {}",
                            r1.display,
                            self.tree().describe(first.scope)
                        ),
                        "deny wins at equal level, so the requirement can never be met",
                        "remove one of the rules, or bind one to the scope it is meant for",
                    );
                }
            }
            (Allow, Deny) | (Deny, Allow) if same_scope => {
                let (allow, deny) = if r1.kind == Allow {
                    (first, second)
                } else {
                    (second, first)
                };
                let d = self.program.rule(deny.rule);
                // "Never applies" must hold through every binding of the allow's policy: one
                // bound through a scope the deny does not reach still applies there.
                let everywhere = self
                    .bindings(allow.rule)
                    .all(|scope| self.bindings(deny.rule).any(|s| s == scope));
                if d.constraint.is_none() && self.beats(deny, allow) && everywhere {
                    let diagnostic = Diagnostic::new(
                        Code::AllowShadowedByDeny,
                        format!("this allow of `{}` never applies", r1.display),
                        self.program.rule(allow.rule).span,
                        "never applies",
                    )
                    .related(d.span, format!("denied by {}; deny wins at equal specificity", self.origin(deny)))
                    .help("remove one of them; to allow the package for some devices, bind the allow to a more specific scope");
                    self.diagnostics.push(diagnostic);
                }
            }
            _ if self.level(second.scope) > self.level(first.scope) => {
                self.overridden(first, second)
            }
            _ => {}
        }
    }

    fn report_pair(
        &mut self,
        code: Code,
        at: Placement,
        other: Placement,
        message: String,
        label: &str,
        help: &str,
    ) {
        let (r_at, r_other) = (self.program.rule(at.rule), self.program.rule(other.rule));
        self.diagnostics.push(
            Diagnostic::new(
                code,
                message,
                r_at.span,
                format!("{label} ({})", self.origin(at)),
            )
            .related(
                r_other.span,
                format!("conflicts with {}", self.origin(other)),
            )
            .help(help),
        );
    }

    fn final_deny_pair(&mut self, deny: Placement, other: Placement) {
        let (d, o) = (self.program.rule(deny.rule), self.program.rule(other.rule));
        if !matches!(o.kind, RuleKind::Allow | RuleKind::Require) || !o.pattern.within(&d.pattern) {
            return;
        }
        // An unconditional deny! covers every device; a conditional one only provably meets
        // a rule under the same condition (DESIGN §3, "Compile time mirrors this").
        if d.condition.is_some() && !same_condition(d, o) {
            return;
        }
        let at_or_below = deny.scope == other.scope
            || (self.tree().compatible(deny.scope, other.scope)
                && self.level(other.scope) >= self.level(deny.scope));
        if !at_or_below {
            return;
        }
        // A deny! of a range only conflicts with allows that reach into the range.
        if d.constraint.is_some() && o.constraint.is_some() && self.overlap(d, o) == Some(false) {
            return;
        }
        let range = d
            .constraint
            .as_ref()
            .map(|c| format!(" {}", normalize_ws(&c.text)))
            .unwrap_or_default();
        self.diagnostics.push(
            Diagnostic::new(
                Code::FinalDenyOverridden,
                format!(
                    "`{}` is {} despite the final `deny! {}{range}`",
                    o.display,
                    if o.kind == RuleKind::Allow {
                        "allowed"
                    } else {
                        "required"
                    },
                    d.display
                ),
                o.span,
                format!("{} here ({})", o.kind.keyword(), self.origin(other)),
            )
            .related(d.span, format!("final deny in {}", self.origin(deny)))
            .note("a final deny decides before every other rule, at every scope")
            .help(if d.constraint.is_some() {
                "remove this rule, or give it a version range outside the denied one"
            } else {
                "remove this rule"
            }),
        );
    }

    fn pins(&mut self, first: Placement, second: Placement) {
        let (r1, r2) = (
            self.program.rule(first.rule),
            self.program.rule(second.rule),
        );
        let (t1, t2) = (self.constraint_text(r1), self.constraint_text(r2));
        if first.scope == second.scope {
            if t1 == t2 {
                self.redundant(first, second);
            } else {
                self.report_pair(
                    Code::ConflictingPins,
                    second,
                    first,
                    format!(
                        "`{}` is pinned to both `{t1}` and `{t2}` at {}",
                        r1.display,
                        self.tree().describe(first.scope)
                    ),
                    "second pin",
                    "keep one pin",
                );
            }
            return;
        }
        let (l1, l2) = (self.level(first.scope), self.level(second.scope));
        if l1 == Level::DeviceGroup && l2 == Level::DeviceGroup && t1 != t2 {
            self.diagnostics.push(
                Diagnostic::new(
                    Code::GroupPinsDiffer,
                    format!(
                        "device groups pin `{}` differently: `{t2}` and `{t1}`",
                        r1.display
                    ),
                    r2.span,
                    format!("pinned to `{t2}` ({})", self.origin(second)),
                )
                .related(
                    r1.span,
                    format!("pinned to `{t1}` ({})", self.origin(first)),
                )
                .note("a device in both groups gets only one of the pins")
                .help("pin the same version in both groups, or make the groups disjoint"),
            );
        } else if l2 > l1 {
            if t1 == t2 {
                self.redundant(first, second);
            } else {
                self.overridden(first, second);
            }
        }
    }

    fn pin_range(&mut self, pin: Placement, range: Placement) {
        let (p, r) = (self.program.rule(pin.rule), self.program.rule(range.rule));
        if r.constraint.is_none() || self.overlap(p, r) != Some(false) {
            return;
        }
        self.diagnostics.push(
            Diagnostic::new(
                Code::PinOutsideRange,
                format!(
                    "pin of `{}` to `{}` is outside the range `{}` {} at {}",
                    p.display,
                    self.constraint_text(p),
                    self.constraint_text(r),
                    if r.kind == RuleKind::Require {
                        "required"
                    } else {
                        "allowed"
                    },
                    self.tree().describe(range.scope),
                ),
                p.span,
                format!("pinned here ({})", self.origin(pin)),
            )
            .related(r.span, format!("range set by {}", self.origin(range)))
            .note("the two rules apply to the same devices, and no version satisfies both")
            .help("move the pin into the range, or change the range on that scope"),
        );
    }

    fn redundant(&mut self, first: Placement, second: Placement) {
        let (r1, r2) = (
            self.program.rule(first.rule),
            self.program.rule(second.rule),
        );
        let same = r1.kind == r2.kind
            && r1.is_final == r2.is_final
            && r1.severity == r2.severity
            && self.constraint_text(r1) == self.constraint_text(r2)
            && same_condition(r1, r2);
        if !same {
            if self.level(second.scope) > self.level(first.scope) && same_condition(r1, r2) {
                self.overridden(first, second);
            }
            return;
        }
        // Redundant only when every device of the second rule's scope already gets the first.
        if !self.tree().contains(first.scope, second.scope) {
            return;
        }
        // Not redundant when a rule between the two levels says something else.
        if self.level(second.scope) > self.level(first.scope) && self.interrupted(first, second) {
            return;
        }
        let where_ = if first.scope == second.scope {
            format!("at {}", self.tree().describe(first.scope))
        } else {
            format!("already at {}", self.tree().describe(first.scope))
        };
        self.diagnostics.push(
            Diagnostic::new(
                Code::RedundantRule,
                format!(
                    "redundant `{}` of `{}`: said {where_}",
                    r2.kind.keyword(),
                    r2.display
                ),
                r2.span,
                format!("repeats the rule of {}", self.origin(first)),
            )
            .related(r1.span, format!("first said by {}", self.origin(first)))
            .help("remove the repeated rule"),
        );
    }

    /// Whether a rule on a scope strictly between `first` and `second` (on the second's path)
    /// says something different for the package, so that `second` restores `first`'s effect.
    fn interrupted(&self, first: Placement, second: Placement) -> bool {
        let r1 = self.program.rule(first.rule);
        let (lo, hi) = (self.level(first.scope), self.level(second.scope));
        // Only rules of the same package can interrupt: those are the current group.
        self.group.iter().any(|p| {
            let l = self.level(p.scope);
            let r = self.program.rule(p.rule);
            l > lo
                && l < hi
                && self.tree().compatible(p.scope, second.scope)
                && (r.kind != r1.kind || self.constraint_text(r) != self.constraint_text(r1))
        })
    }

    fn overridden(&mut self, general: Placement, specific: Placement) {
        let (g, s) = (
            self.program.rule(general.rule),
            self.program.rule(specific.rule),
        );
        if s.condition.is_some() {
            return;
        }
        let what = match (g.kind, s.kind) {
            (a, b) if a == b => format!("`{} {}` is overridden", s.kind.keyword(), s.display),
            _ => {
                let article = if s.kind == RuleKind::Allow { "an" } else { "a" };
                format!(
                    "`{} {}` is overridden by {article} `{}`",
                    g.kind.keyword(),
                    g.display,
                    s.kind.keyword()
                )
            }
        };
        self.diagnostics.push(
            Diagnostic::new(
                Code::Overridden,
                format!(
                    "{what} for devices in {}",
                    self.tree().describe(specific.scope)
                ),
                g.span,
                format!("general rule ({})", self.origin(general)),
            )
            .related(s.span, format!("overridden by {}", self.origin(specific))),
        );
    }
}

fn normalize_ws(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
