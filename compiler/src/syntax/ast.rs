//! The syntax tree. Every node carries its [`Span`] (which includes its file), so every
//! later stage can point at the source.

use crate::source::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// A comment, kept for the formatter and the language server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// The text after `#`, without the newline.
    pub text: String,
    pub span: Span,
    /// Whether code precedes the comment on its line (`require x  # why`).
    pub trailing: bool,
}

#[derive(Debug, Clone, Default)]
pub struct File {
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Tenant(Name, Span),
    Department(Department),
    Environment(Name, Span),
    DeviceGroup(Name, Span),
    Set(SetDecl),
    Policy(Policy),
    Manager(ManagerDecl),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Tenant(_, s) | Item::Environment(_, s) | Item::DeviceGroup(_, s) => *s,
            Item::Department(d) => d.span,
            Item::Set(s) => s.span,
            Item::Policy(p) => p.span,
            Item::Manager(m) => m.span,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Department {
    pub name: Name,
    pub teams: Vec<Name>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SetDecl {
    pub name: Name,
    pub members: Vec<Target>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManagerDecl {
    pub name: Name,
    pub title: Option<String>,
    pub aliases: Vec<Name>,
    pub scheme: Option<Name>,
    pub capabilities: Vec<Name>,
    pub phase: Option<Name>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: Name,
    pub version: u64,
    pub version_span: Span,
    pub stmts: Vec<Stmt>,
    /// From `policy` to the closing `}` (or to the last statement when it is missing).
    pub span: Span,
    pub header_span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    Scope(Vec<ScopeRef>),
    Mode(Name),
    Rule(Rule),
    Toolchain(Toolchain),
    Window(Window),
    Guard(Guard),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Org,
    Department,
    Team,
    Environment,
    DeviceGroup,
}

impl Level {
    pub fn keyword(self) -> &'static str {
        match self {
            Level::Org => "org",
            Level::Department => "department",
            Level::Team => "team",
            Level::Environment => "environment",
            Level::DeviceGroup => "device_group",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScopeRef {
    pub level: Level,
    /// `None` for `org`.
    pub name: Option<Name>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKind {
    Require,
    Allow,
    Deny,
    Pin,
}

impl RuleKind {
    pub fn keyword(self) -> &'static str {
        match self {
            RuleKind::Require => "require",
            RuleKind::Allow => "allow",
            RuleKind::Deny => "deny",
            RuleKind::Pin => "pin",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub kind: RuleKind,
    /// `deny!`
    pub is_final: bool,
    pub target: Target,
    pub constraint: Option<Constraint>,
    pub clauses: Clauses,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Package(PackageRef),
    Set(Name),
}

impl Target {
    pub fn span(&self) -> Span {
        match self {
            Target::Package(p) => p.span,
            Target::Set(n) => n.span,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PackageRef {
    pub manager: Name,
    pub package: Name,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Clauses {
    pub when: Option<Expr>,
    pub because: Option<(String, Span)>,
    pub warn: Option<Span>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Toolchain {
    pub name: Name,
    pub sources: Vec<Name>,
    pub clauses: Clauses,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub days: Vec<DaySpan>,
    pub days_span: Span,
    pub start: Name,
    pub end: Name,
    /// `None` for `local`.
    pub zone: Option<(String, Span)>,
    pub zone_span: Span,
    pub clauses: Clauses,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DaySpan {
    pub first: Name,
    pub last: Option<Name>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    pub target: Name,
    pub level: Name,
    pub clauses: Clauses,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    /// Binding strength, as in CEL: `||` < `&&` < relations < `+ -` < `* / %`.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge
            | BinaryOp::In => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 5,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Bool(bool),
    Int(i64),
    Str(String),
    Null,
    List(Vec<Expr>),
    Var(String),
    /// `e.field`
    Member(Box<Expr>, Name),
    /// `e[index]`
    Index(Box<Expr>, Box<Expr>),
    /// `f(args)` or `receiver.f(args)`
    Call {
        receiver: Option<Box<Expr>>,
        function: Name,
        args: Vec<Expr>,
    },
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `c ? a : b`
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}
