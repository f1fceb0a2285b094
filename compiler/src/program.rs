//! The resolved program: every name bound, every rule placed in its policy, with its origin.
//! Built by [`crate::resolve`], read by [`crate::check`] and [`crate::analyze`].

use crate::source::Span;
use crate::syntax::ast::{self, Level, RuleKind};
use hpl_runtime::precedence::{Candidate, Matcher};
use hpl_runtime::version::Scheme;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ManagerId(pub u16);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

#[derive(Debug, Clone)]
pub struct Scope {
    pub level: Level,
    pub name: String,
    /// The department of a team.
    pub parent: Option<ScopeId>,
    /// Where it is declared; `None` for `org`.
    pub span: Option<Span>,
}

/// The organisation's scopes. `ScopeId(0)` is always the organisation itself.
#[derive(Debug, Clone)]
pub struct ScopeTree {
    pub scopes: Vec<Scope>,
    pub by_name: HashMap<String, ScopeId>,
}

impl ScopeTree {
    pub const ORG: ScopeId = ScopeId(0);

    pub fn get(&self, id: ScopeId) -> &Scope {
        &self.scopes[id.0 as usize]
    }

    /// `org:acme`, `team:platform`: how scopes are named in records and messages.
    pub fn display(&self, id: ScopeId, tenant: &str) -> String {
        let s = self.get(id);
        match s.level {
            Level::Org => format!("org:{tenant}"),
            level => format!("{}:{}", level.keyword(), s.name),
        }
    }

    /// `team platform`: as written in source.
    pub fn describe(&self, id: ScopeId) -> String {
        let s = self.get(id);
        match s.level {
            Level::Org => "org".into(),
            level => format!("{} {}", level.keyword(), s.name),
        }
    }

    /// The department a scope lies in, if it lies in one.
    pub fn department_of(&self, id: ScopeId) -> Option<ScopeId> {
        let s = self.get(id);
        match s.level {
            Level::Department => Some(id),
            Level::Team => s.parent,
            _ => None,
        }
    }

    /// Whether every device in `inner` is also in `outer`: the organisation contains
    /// everything, a department its teams, and every scope itself.
    pub fn contains(&self, outer: ScopeId, inner: ScopeId) -> bool {
        outer == inner
            || outer == Self::ORG
            || (self.get(outer).level == Level::Department && self.get(inner).parent == Some(outer))
    }

    /// Whether one device can be in both scopes at once (they lie on one scope path).
    /// A device has at most one department, one team (in its department) and one
    /// environment, and any number of device groups.
    pub fn compatible(&self, a: ScopeId, b: ScopeId) -> bool {
        if a == b {
            return true;
        }
        let (sa, sb) = (self.get(a), self.get(b));
        match (sa.level, sb.level) {
            (Level::Org, _) | (_, Level::Org) => true,
            (Level::DeviceGroup, _) | (_, Level::DeviceGroup) => true,
            (Level::Environment, Level::Environment) => false,
            (Level::Environment, _) | (_, Level::Environment) => true,
            // department/team combinations: same department
            _ => {
                self.department_of(a) == self.department_of(b)
                    && !(sa.level == Level::Team && sb.level == Level::Team)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Authoritative,
    Standard,
    Guarded,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub native_pin: bool,
    pub downgrade: bool,
    pub multi_version: bool,
    pub guarded: bool,
}

#[derive(Debug, Clone)]
pub struct Manager {
    pub id: String,
    pub title: String,
    pub aliases: Vec<String>,
    pub scheme: Scheme,
    pub capabilities: Capabilities,
    pub phase: Phase,
    pub span: Span,
}

/// The package-manager catalog (from stdlib/managers.hpl).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub managers: Vec<Manager>,
    /// Ids and aliases.
    pub by_name: HashMap<String, ManagerId>,
}

impl Catalog {
    pub fn get(&self, id: ManagerId) -> &Manager {
        &self.managers[id.0 as usize]
    }

    pub fn lookup(&self, name: &str) -> Option<ManagerId> {
        self.by_name.get(name).copied()
    }

    /// Every id and alias, for suggestions and completion.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.managers.iter().flat_map(|m| {
            std::iter::once(m.id.as_str()).chain(m.aliases.iter().map(String::as_str))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Observe,
    Assist,
    Enforce,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "observe" => Some(Mode::Observe),
            "assist" => Some(Mode::Assist),
            "enforce" => Some(Mode::Enforce),
            _ => None,
        }
    }
}

/// Which packages a rule is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// One package, by normalized name.
    Exact(String),
    /// `prefix*`: every package whose normalized name starts with `prefix` (`*` alone: all).
    Glob(String),
}

impl Pattern {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(n) => n == name,
            Pattern::Glob(prefix) => name.starts_with(prefix.as_str()),
        }
    }

    /// Whether every package this pattern matches, `other` matches too.
    pub fn within(&self, other: &Pattern) -> bool {
        match (self, other) {
            (_, Pattern::Glob(p)) => match self {
                Pattern::Exact(n) => n.starts_with(p.as_str()),
                Pattern::Glob(q) => q.starts_with(p.as_str()),
            },
            (Pattern::Exact(a), Pattern::Exact(b)) => a == b,
            (Pattern::Glob(_), Pattern::Exact(_)) => false,
        }
    }

    pub fn is_exact(&self) -> bool {
        matches!(self, Pattern::Exact(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSeverity {
    Error,
    Warn,
}

/// One package rule after set expansion: `require core_cli` becomes one rule per member,
/// each remembering the set it came from.
#[derive(Debug, Clone)]
pub struct PackageRule {
    pub id: RuleId,
    pub policy: PolicyId,
    pub kind: RuleKind,
    pub is_final: bool,
    pub manager: ManagerId,
    pub pattern: Pattern,
    /// The package as written (before normalization), for messages.
    pub display: String,
    pub constraint: Option<ast::Constraint>,
    pub condition: Option<ast::Expr>,
    pub because: Option<String>,
    pub severity: RuleSeverity,
    /// The whole statement.
    pub span: Span,
    /// The package reference (inside the set declaration when expanded from a set).
    pub target_span: Span,
    pub via_set: Option<String>,
}

impl PackageRule {
    /// The rule as the runtime's precedence module sees it, bound through `scope`: the one
    /// conversion the analysis and the language server use to ask "who wins".
    pub fn candidate<'a>(&self, program: &'a Program, scope: ScopeId) -> Candidate<'a> {
        Candidate {
            kind: runtime_kind(self.kind),
            is_final: self.is_final,
            warn: self.severity == RuleSeverity::Warn,
            ranged: self.constraint.is_some(),
            level: runtime_level(program.scopes.get(scope).level),
            matcher: match &self.pattern {
                Pattern::Exact(_) => Matcher::Exact,
                Pattern::Glob(prefix) => Matcher::glob(prefix),
            },
            policy: &program.policy(self.policy).name.text,
            // A policy is one file, so the byte offset orders its statements as line and
            // column do in the bundle; the rule id orders the members of one set.
            position: (self.span.start, 0, self.id.0),
        }
    }
}

/// The runtime's name of a scope level (bundle, records, precedence).
pub fn runtime_level(l: Level) -> hpl_runtime::vocab::Level {
    use hpl_runtime::vocab::Level as R;
    match l {
        Level::Org => R::Org,
        Level::Department => R::Department,
        Level::Team => R::Team,
        Level::Environment => R::Environment,
        Level::DeviceGroup => R::DeviceGroup,
    }
}

/// The runtime's name of a rule kind.
pub fn runtime_kind(k: RuleKind) -> hpl_runtime::vocab::RuleKind {
    use hpl_runtime::vocab::RuleKind as R;
    match k {
        RuleKind::Require => R::Require,
        RuleKind::Allow => R::Allow,
        RuleKind::Deny => R::Deny,
        RuleKind::Pin => R::Pin,
    }
}

#[derive(Debug, Clone)]
pub struct Toolchain {
    pub name: String,
    pub sources: Vec<ManagerId>,
    pub condition: Option<ast::Expr>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Guard {
    pub manager: ManagerId,
    pub level: ast::Name,
    pub condition: Option<ast::Expr>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: ast::Name,
    pub version: u64,
    pub mode: Mode,
    pub mode_span: Option<Span>,
    pub scopes: Vec<(ScopeId, Span)>,
    pub rules: Vec<RuleId>,
    pub toolchains: Vec<Toolchain>,
    pub windows: Vec<ast::Window>,
    pub guards: Vec<Guard>,
    pub span: Span,
    pub header_span: Span,
}

/// A resolved set member: manager, pattern, the package as written, and where.
pub type SetMember = (ManagerId, Pattern, String, Span);

#[derive(Debug, Clone)]
pub struct PackageSet {
    pub name: ast::Name,
    /// Resolved members (manager, pattern, display, span of the member).
    pub members: Vec<SetMember>,
    pub span: Span,
}

/// The whole resolved policy directory.
#[derive(Debug, Clone)]
pub struct Program {
    pub tenant: Option<ast::Name>,
    pub scopes: ScopeTree,
    pub catalog: Catalog,
    pub sets: Vec<PackageSet>,
    pub set_by_name: HashMap<String, usize>,
    pub policies: Vec<Policy>,
    pub rules: Vec<PackageRule>,
}

impl Program {
    pub fn rule(&self, id: RuleId) -> &PackageRule {
        &self.rules[id.0 as usize]
    }

    pub fn policy(&self, id: PolicyId) -> &Policy {
        &self.policies[id.0 as usize]
    }

    pub fn tenant_name(&self) -> &str {
        self.tenant.as_ref().map_or("tenant", |t| t.text.as_str())
    }
}
