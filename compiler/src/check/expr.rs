//! Type checking of `when` conditions against the device-facts schema. The rules follow CEL:
//! bool, int, string, list, map; `dyn` for entries of `device.facts`; plus a `version` type
//! made with `version("…")`.

use crate::diagnostics::{Code, Diagnostic};
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use hpl_runtime::facts::{self, FactType};

/// The type of a condition expression. `Object` is the `device` record or one of its
/// sub-objects (`device.os`), which are not values on their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    Value(FactType),
    Object(String),
}

fn v(t: FactType) -> Ty {
    Ty::Value(t)
}

impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ty::Value(t) => write!(f, "{t}"),
            Ty::Object(p) if p.is_empty() => f.write_str("the device record"),
            Ty::Object(p) => write!(f, "the object device.{p}"),
        }
    }
}

pub const FUNCTIONS: &[&str] = &["size", "has", "version", "string", "int"];
pub const METHODS: &[&str] = &[
    "startsWith",
    "endsWith",
    "contains",
    "size",
    "all",
    "exists",
    "exists_one",
    "filter",
    "map",
];

struct Checker<'d> {
    diagnostics: &'d mut Vec<Diagnostic>,
    /// Macro variables in scope, innermost last.
    locals: Vec<(String, FactType)>,
}

/// Checks a `when` condition: it must type-check and be a bool.
pub fn check_condition(e: &Expr, diagnostics: &mut Vec<Diagnostic>) {
    let before = diagnostics.len();
    let ty = type_of(e, diagnostics);
    if diagnostics.len() == before {
        match ty {
            Some(Ty::Value(FactType::Bool | FactType::Dyn)) | None => {}
            Some(other) => diagnostics.push(
                Diagnostic::new(
                    Code::ConditionNotBool,
                    format!("a `when` condition must be a bool, found {other}"),
                    e.span,
                    "not a bool",
                )
                .help("compare it, e.g. `device.arch == \"arm64\"`"),
            ),
        }
    }
}

/// The type of an expression, or `None` after reporting an error in it.
pub fn type_of(e: &Expr, diagnostics: &mut Vec<Diagnostic>) -> Option<Ty> {
    Checker {
        diagnostics,
        locals: Vec::new(),
    }
    .ty(e)
}

fn compatible(a: &FactType, b: &FactType) -> bool {
    match (a, b) {
        (FactType::Dyn, _) | (_, FactType::Dyn) => true,
        (FactType::Null, _) | (_, FactType::Null) => true,
        (FactType::List(x), FactType::List(y)) | (FactType::Map(x), FactType::Map(y)) => {
            compatible(x, y)
        }
        _ => a == b,
    }
}

impl Checker<'_> {
    fn mismatch(&mut self, message: String, e: &Expr, label: &str, help: &str) -> Option<Ty> {
        self.diagnostics
            .push(Diagnostic::new(Code::TypeMismatch, message, e.span, label).help(help));
        None
    }

    fn value(&mut self, e: &Expr) -> Option<FactType> {
        match self.ty(e)? {
            Ty::Value(t) => Some(t),
            Ty::Object(path) => {
                let fields: Vec<&str> = facts::DEVICE_FIELDS
                    .iter()
                    .filter_map(|f| {
                        f.path
                            .strip_prefix(path.as_str())
                            .map(|r| r.trim_start_matches('.'))
                    })
                    .collect();
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        format!("{} is not a value", Ty::Object(path.clone())),
                        e.span,
                        "an object",
                    )
                    .help(format!("read one of its fields: {}", fields.join(", "))),
                );
                None
            }
        }
    }

    fn ty(&mut self, e: &Expr) -> Option<Ty> {
        match &e.kind {
            ExprKind::Bool(_) => Some(v(FactType::Bool)),
            ExprKind::Int(_) => Some(v(FactType::Int)),
            ExprKind::Str(_) => Some(v(FactType::String)),
            ExprKind::Null => Some(v(FactType::Null)),
            ExprKind::List(items) => {
                let mut elem: Option<FactType> = None;
                let mut failed = false;
                for item in items {
                    match self.value(item) {
                        Some(t) => {
                            elem = Some(match elem {
                                None => t,
                                Some(prev) if prev == t => prev,
                                Some(_) => FactType::Dyn,
                            })
                        }
                        None => failed = true,
                    }
                }
                if failed {
                    return None;
                }
                Some(v(FactType::List(Box::new(elem.unwrap_or(FactType::Dyn)))))
            }
            ExprKind::Var(name) => {
                if let Some((_, t)) = self.locals.iter().rev().find(|(n, _)| n == name) {
                    return Some(v(t.clone()));
                }
                if name == "device" {
                    return Some(Ty::Object(String::new()));
                }
                let locals: Vec<&str> = self
                    .locals
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .chain(["device"])
                    .collect();
                let mut d = Diagnostic::new(
                    Code::UnknownField,
                    format!("unknown name `{name}`"),
                    e.span,
                    "not defined",
                );
                d = d.did_you_mean_or(
                    e.span,
                    name,
                    locals.iter().copied(),
                    "conditions read the device's facts through `device`, e.g. `device.arch`",
                );
                self.diagnostics.push(d);
                None
            }
            ExprKind::Member(base, field) => match self.ty(base)? {
                Ty::Object(prefix) => {
                    let path = if prefix.is_empty() {
                        field.text.clone()
                    } else {
                        format!("{prefix}.{}", field.text)
                    };
                    if let Some(f) = facts::field(&path) {
                        return Some(v((f.ty)()));
                    }
                    if facts::DEVICE_OBJECTS.contains(&path.as_str()) {
                        return Some(Ty::Object(path));
                    }
                    let siblings: Vec<String> = facts::DEVICE_FIELDS
                        .iter()
                        .map(|f| f.path)
                        .chain(facts::DEVICE_OBJECTS.iter().copied())
                        .filter_map(|p| {
                            let rest = if prefix.is_empty() {
                                Some(p)
                            } else {
                                p.strip_prefix(&format!("{prefix}."))
                            }?;
                            Some(rest.split('.').next().unwrap_or(rest).to_string())
                        })
                        .collect();
                    let owner = if prefix.is_empty() {
                        "device".to_string()
                    } else {
                        format!("device.{prefix}")
                    };
                    let mut d = Diagnostic::new(
                        Code::UnknownField,
                        format!("`{owner}` has no field `{}`", field.text),
                        field.span,
                        "unknown field",
                    );
                    let mut names = siblings.clone();
                    names.sort();
                    names.dedup();
                    d = d.did_you_mean_or(
                        field.span,
                        &field.text,
                        siblings.iter().map(String::as_str),
                        format!("the fields of `{owner}` are: {}; free-form facts are read with device.facts[\"name\"]", names.join(", ")),
                    );
                    self.diagnostics.push(d);
                    None
                }
                Ty::Value(FactType::Map(t)) => Some(v(*t)),
                Ty::Value(FactType::Dyn) => Some(v(FactType::Dyn)),
                Ty::Value(other) => self.mismatch(
                    format!("{other} has no fields"),
                    base,
                    "not a map",
                    "fields can be read from device, device.os and maps such as device.facts",
                ),
            },
            ExprKind::Index(base, index) => {
                let base_ty = self.value(base)?;
                let index_ty = self.value(index)?;
                match base_ty {
                    FactType::List(t) if compatible(&index_ty, &FactType::Int) => Some(v(*t)),
                    FactType::Map(t) if compatible(&index_ty, &FactType::String) => Some(v(*t)),
                    FactType::Dyn => Some(v(FactType::Dyn)),
                    FactType::List(_) | FactType::Map(_) => self.mismatch(
                        format!("cannot index {base_ty} with {index_ty}"),
                        index,
                        "wrong index type",
                        "lists take an int index, maps a string key",
                    ),
                    other => self.mismatch(
                        format!("{other} cannot be indexed"),
                        base,
                        "not a list or map",
                        "only lists and maps can be indexed",
                    ),
                }
            }
            ExprKind::Unary(op, operand) => {
                let t = self.value(operand)?;
                let (want, name) = match op {
                    UnaryOp::Not => (FactType::Bool, "!"),
                    UnaryOp::Neg => (FactType::Int, "-"),
                };
                if compatible(&t, &want) {
                    Some(v(want))
                } else {
                    self.mismatch(
                        format!("`{name}` needs {want}, found {t}"),
                        operand,
                        "wrong type",
                        "check the operand's type",
                    )
                }
            }
            ExprKind::Binary(op, l, r) => {
                let (lt, rt) = (self.value(l), self.value(r));
                let (lt, rt) = (lt?, rt?);
                self.binary(*op, e, &lt, &rt)
            }
            ExprKind::Cond(c, a, b) => {
                let ct = self.value(c)?;
                if !compatible(&ct, &FactType::Bool) {
                    return self.mismatch(
                        format!("the condition of `?:` must be a bool, found {ct}"),
                        c,
                        "not a bool",
                        "compare it first",
                    );
                }
                let (at, bt) = (self.value(a)?, self.value(b)?);
                if !compatible(&at, &bt) {
                    return self.mismatch(
                        format!("the branches of `?:` differ: {at} and {bt}"),
                        e,
                        "branches differ",
                        "give both branches the same type",
                    );
                }
                Some(v(if at == FactType::Dyn { bt } else { at }))
            }
            ExprKind::Call {
                receiver,
                function,
                args,
            } => self.call(e, receiver.as_deref(), function, args),
        }
    }

    fn binary(&mut self, op: BinaryOp, e: &Expr, lt: &FactType, rt: &FactType) -> Option<Ty> {
        use FactType as F;
        let sym = op.symbol();
        let fail = |this: &mut Self, help: &str| {
            this.mismatch(
                format!("`{sym}` cannot combine {lt} and {rt}"),
                e,
                "mismatched types",
                help,
            )
        };
        match op {
            BinaryOp::And | BinaryOp::Or => {
                if compatible(lt, &F::Bool) && compatible(rt, &F::Bool) {
                    Some(v(F::Bool))
                } else {
                    fail(self, "`&&` and `||` take bools")
                }
            }
            BinaryOp::Eq | BinaryOp::Ne => {
                if compatible(lt, rt) {
                    Some(v(F::Bool))
                } else {
                    fail(
                        self,
                        "compare values of the same type; versions with version(\"..\")",
                    )
                }
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let ordered =
                    |t: &F| matches!(t, F::Bool | F::Int | F::String | F::Version | F::Dyn);
                if ordered(lt) && ordered(rt) && compatible(lt, rt) && *lt != F::Null {
                    Some(v(F::Bool))
                } else {
                    fail(self, "order ints, strings or versions of one kind; e.g. version(device.os.version) >= version(\"15.0\")")
                }
            }
            BinaryOp::In => match rt {
                F::List(t) if compatible(lt, t) => Some(v(F::Bool)),
                F::Map(_) if compatible(lt, &F::String) => Some(v(F::Bool)),
                F::Dyn => Some(v(F::Bool)),
                _ => fail(self, "`in` looks for a value in a list, or a key in a map"),
            },
            BinaryOp::Add => match (lt, rt) {
                (F::Int, F::Int) => Some(v(F::Int)),
                (F::String, F::String) => Some(v(F::String)),
                (F::List(a), F::List(b)) if compatible(a, b) => Some(v(lt.clone())),
                (F::Dyn, t) | (t, F::Dyn) => Some(v(t.clone())),
                _ => fail(self, "`+` adds ints, joins strings or concatenates lists"),
            },
            _ => {
                if compatible(lt, &F::Int) && compatible(rt, &F::Int) {
                    Some(v(F::Int))
                } else {
                    fail(self, "arithmetic takes ints")
                }
            }
        }
    }

    fn arity(&mut self, e: &Expr, name: &str, want: usize, got: usize) -> bool {
        if want != got {
            self.diagnostics.push(
                Diagnostic::new(
                    Code::WrongArity,
                    format!(
                        "`{name}` takes {want} argument{}, found {got}",
                        if want == 1 { "" } else { "s" }
                    ),
                    e.span,
                    "wrong number of arguments",
                )
                .help("see docs/language.md, Conditions"),
            );
            return false;
        }
        true
    }

    fn call(
        &mut self,
        e: &Expr,
        receiver: Option<&Expr>,
        function: &crate::syntax::ast::Name,
        args: &[Expr],
    ) -> Option<Ty> {
        use FactType as F;
        let name = function.text.as_str();
        match receiver {
            None => match name {
                "size" => {
                    if !self.arity(e, name, 1, args.len()) {
                        return None;
                    }
                    let t = self.value(&args[0])?;
                    match t {
                        F::String | F::List(_) | F::Map(_) | F::Dyn => Some(v(F::Int)),
                        other => self.mismatch(
                            format!("size() needs a string, list or map, found {other}"),
                            &args[0],
                            "no size",
                            "size() counts characters, elements or entries",
                        ),
                    }
                }
                "has" => {
                    if !self.arity(e, name, 1, args.len()) {
                        return None;
                    }
                    if !matches!(args[0].kind, ExprKind::Member(..)) {
                        return self.mismatch(
                            "has() takes a field selection such as device.facts.fleet".into(),
                            &args[0],
                            "not a field selection",
                            "write has(map.field)",
                        );
                    }
                    if let ExprKind::Member(base, _) = &args[0].kind {
                        self.ty(base)?;
                    }
                    Some(v(F::Bool))
                }
                "version" | "string" | "int" => {
                    if !self.arity(e, name, 1, args.len()) {
                        return None;
                    }
                    let t = self.value(&args[0])?;
                    let (ok, out) = match name {
                        "version" => (compatible(&t, &F::String), F::Version),
                        "string" => (
                            matches!(t, F::String | F::Int | F::Bool | F::Version | F::Dyn),
                            F::String,
                        ),
                        _ => (matches!(t, F::String | F::Int | F::Dyn), F::Int),
                    };
                    if ok {
                        Some(v(out))
                    } else {
                        self.mismatch(
                            format!("{name}() cannot convert {t}"),
                            &args[0],
                            "cannot convert",
                            "check the argument's type",
                        )
                    }
                }
                _ => self.unknown_function(function, FUNCTIONS),
            },
            Some(recv) => {
                let rt = self.value(recv)?;
                match name {
                    "startsWith" | "endsWith" | "contains" => {
                        if !self.arity(e, name, 1, args.len()) {
                            return None;
                        }
                        let at = self.value(&args[0])?;
                        if compatible(&rt, &F::String) && compatible(&at, &F::String) {
                            Some(v(F::Bool))
                        } else {
                            self.mismatch(
                                format!("`{name}` works on strings, found {rt} and {at}"),
                                e,
                                "not strings",
                                "use it as \"text\".startsWith(\"t\")",
                            )
                        }
                    }
                    "size" => {
                        if !self.arity(e, name, 0, args.len()) {
                            return None;
                        }
                        match rt {
                            F::String | F::List(_) | F::Map(_) | F::Dyn => Some(v(F::Int)),
                            other => self.mismatch(
                                format!("{other} has no size"),
                                recv,
                                "no size",
                                "size() counts characters, elements or entries",
                            ),
                        }
                    }
                    "all" | "exists" | "exists_one" | "filter" | "map" => {
                        if !self.arity(e, name, 2, args.len()) {
                            return None;
                        }
                        let ExprKind::Var(var) = &args[0].kind else {
                            return self.mismatch(
                                format!("the first argument of `{name}` names a variable"),
                                &args[0],
                                "not a name",
                                "write list.all(x, x != \"\")",
                            );
                        };
                        let elem = match rt {
                            F::List(t) => *t,
                            F::Map(_) => F::String,
                            F::Dyn => F::Dyn,
                            other => {
                                return self.mismatch(
                                    format!("`{name}` works on lists and maps, found {other}"),
                                    recv,
                                    "not a list or map",
                                    "macros iterate over lists (or map keys)",
                                )
                            }
                        };
                        // The runtime's verifier refuses deeper macro nesting: say so here,
                        // with the span, rather than fail at `hpl build`.
                        if self.locals.len() >= hpl_runtime::vm::MAX_MACRO_DEPTH {
                            self.diagnostics.push(
                                Diagnostic::new(
                                    Code::ConditionTooComplex,
                                    format!(
                                        "list macros nest at most {} deep",
                                        hpl_runtime::vm::MAX_MACRO_DEPTH
                                    ),
                                    e.span,
                                    "one macro too many",
                                )
                                .help("split the condition, or use fewer nested macros"),
                            );
                            return None;
                        }
                        self.locals.push((var.clone(), elem));
                        let body = self.value(&args[1]);
                        self.locals.pop();
                        let body = body?;
                        match name {
                            "map" => Some(v(F::List(Box::new(body)))),
                            _ if !compatible(&body, &F::Bool) => self.mismatch(
                                format!("the predicate of `{name}` must be a bool, found {body}"),
                                &args[1],
                                "not a bool",
                                "the second argument is a condition on the variable",
                            ),
                            "filter" => Some(v(match self.value(recv)? {
                                F::Map(_) => F::List(Box::new(F::String)),
                                t => t,
                            })),
                            _ => Some(v(F::Bool)),
                        }
                    }
                    _ => self.unknown_function(function, METHODS),
                }
            }
        }
    }

    fn unknown_function(
        &mut self,
        function: &crate::syntax::ast::Name,
        candidates: &[&str],
    ) -> Option<Ty> {
        let mut d = Diagnostic::new(
            Code::UnknownFunction,
            format!("unknown function `{}`", function.text),
            function.span,
            "not provided",
        );
        let all: Vec<&str> = FUNCTIONS.iter().chain(METHODS).copied().collect();
        d = d.did_you_mean_or(
            function.span,
            &function.text,
            candidates.iter().copied().chain(all.iter().copied()),
            format!(
                "functions: {}; methods: {}",
                FUNCTIONS.join(", "),
                METHODS.join(", ")
            ),
        );
        self.diagnostics.push(d);
        None
    }
}
