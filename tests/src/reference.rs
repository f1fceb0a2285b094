//! A deliberately plain evaluator, straight over the compiler's checked program and the
//! conditions' syntax trees. It shares no code with the lowering, the bundle or the VM — only
//! the data types of the inventory and the record, and the version schemes — so that a
//! differential test can hold the two implementations of DESIGN §3 against each other.
//! Slow on purpose: every question is answered by scanning every rule.

use hpl_compiler::program::{PackageRule, Pattern, Program, RuleSeverity, ScopeId};
use hpl_compiler::syntax::ast::{BinaryOp, Expr, ExprKind, Level, RuleKind, UnaryOp};
use hpl_compiler::Analysis;
use hpl_runtime::inventory::{Inventory, Package};
use hpl_runtime::package::normalize_name;
use hpl_runtime::record::*;
use hpl_runtime::version::{DottedVersion, Scheme, Version};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// A value of the reference's condition evaluator; `Err` is CEL's error value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    Version(DottedVersion),
    List(Vec<Val>),
    Map(BTreeMap<String, Val>),
}

type R = Result<Val, ()>;

fn from_json(v: &Json) -> Val {
    match v {
        Json::Null => Val::Null,
        Json::Bool(b) => Val::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map_or_else(|| Val::Double(n.as_f64().unwrap_or(f64::NAN)), Val::Int),
        Json::String(s) => Val::Str(s.clone()),
        Json::Array(a) => Val::List(a.iter().map(from_json).collect()),
        Json::Object(o) => Val::Map(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}

fn runtime_value_to_json(v: &hpl_runtime::vm::Value) -> Json {
    use hpl_runtime::vm::Value as V;
    match v {
        V::Null => Json::Null,
        V::Bool(b) => json!(b),
        V::Int(i) => json!(i),
        V::Double(d) => json!(d),
        V::Str(s) => json!(s.as_ref()),
        V::List(l) => Json::Array(l.iter().map(runtime_value_to_json).collect()),
        V::Map(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), runtime_value_to_json(v)))
                .collect(),
        ),
        V::Version(v) => json!(v.to_string()),
        V::Error(_) => Json::Null,
    }
}

struct Device {
    fields: BTreeMap<&'static str, Val>,
}

fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Int(x), Val::Double(y)) | (Val::Double(y), Val::Int(x)) => (*x as f64) == *y,
        (Val::List(x), Val::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Val::Map(x), Val::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// CEL semantics for the supported subset, over the syntax tree.
fn eval(e: &Expr, d: &Device, locals: &mut Vec<(String, Val)>) -> R {
    match &e.kind {
        ExprKind::Bool(b) => Ok(Val::Bool(*b)),
        ExprKind::Int(i) => Ok(Val::Int(*i)),
        ExprKind::Str(s) => Ok(Val::Str(s.clone())),
        ExprKind::Null => Ok(Val::Null),
        ExprKind::List(items) => items
            .iter()
            .map(|i| eval(i, d, locals))
            .collect::<Result<Vec<_>, _>>()
            .map(Val::List),
        ExprKind::Var(name) => locals
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or(()),
        ExprKind::Member(base, field) => {
            if let Some(path) = device_path(e, locals) {
                if let Some(v) = d.fields.get(path.as_str()) {
                    return Ok(v.clone());
                }
            }
            match eval(base, d, locals)? {
                Val::Map(m) => m.get(&field.text).cloned().ok_or(()),
                _ => Err(()),
            }
        }
        ExprKind::Index(base, index) => match (eval(base, d, locals)?, eval(index, d, locals)?) {
            (Val::List(l), Val::Int(i)) => usize::try_from(i)
                .ok()
                .and_then(|i| l.get(i).cloned())
                .ok_or(()),
            (Val::Map(m), Val::Str(k)) => m.get(&k).cloned().ok_or(()),
            _ => Err(()),
        },
        ExprKind::Unary(UnaryOp::Not, x) => match eval(x, d, locals)? {
            Val::Bool(b) => Ok(Val::Bool(!b)),
            _ => Err(()),
        },
        ExprKind::Unary(UnaryOp::Neg, x) => match eval(x, d, locals)? {
            Val::Int(i) => i.checked_neg().map(Val::Int).ok_or(()),
            _ => Err(()),
        },
        ExprKind::Binary(BinaryOp::And, a, b) => {
            let (a, b) = (eval(a, d, locals), eval(b, d, locals));
            match (a, b) {
                (Ok(Val::Bool(false)), _) | (_, Ok(Val::Bool(false))) => Ok(Val::Bool(false)),
                (Ok(Val::Bool(true)), Ok(Val::Bool(true))) => Ok(Val::Bool(true)),
                _ => Err(()),
            }
        }
        ExprKind::Binary(BinaryOp::Or, a, b) => {
            let (a, b) = (eval(a, d, locals), eval(b, d, locals));
            match (a, b) {
                (Ok(Val::Bool(true)), _) | (_, Ok(Val::Bool(true))) => Ok(Val::Bool(true)),
                (Ok(Val::Bool(false)), Ok(Val::Bool(false))) => Ok(Val::Bool(false)),
                _ => Err(()),
            }
        }
        ExprKind::Binary(op, a, b) => {
            let (a, b) = (eval(a, d, locals)?, eval(b, d, locals)?);
            binary(*op, a, b)
        }
        ExprKind::Cond(c, a, b) => match eval(c, d, locals)? {
            Val::Bool(true) => eval(a, d, locals),
            Val::Bool(false) => eval(b, d, locals),
            _ => Err(()),
        },
        ExprKind::Call {
            receiver,
            function,
            args,
        } => call(receiver.as_deref(), &function.text, args, d, locals),
    }
}

fn device_path(e: &Expr, locals: &[(String, Val)]) -> Option<String> {
    match &e.kind {
        ExprKind::Var(v) if v == "device" && !locals.iter().any(|(n, _)| n == "device") => {
            Some(String::new())
        }
        ExprKind::Member(b, f) => device_path(b, locals).map(|p| {
            if p.is_empty() {
                f.text.clone()
            } else {
                format!("{p}.{}", f.text)
            }
        }),
        _ => None,
    }
}

fn binary(op: BinaryOp, a: Val, b: Val) -> R {
    use std::cmp::Ordering;
    let ord = |a: &Val, b: &Val| -> Result<Ordering, ()> {
        match (a, b) {
            (Val::Int(x), Val::Int(y)) => Ok(x.cmp(y)),
            (Val::Str(x), Val::Str(y)) => Ok(x.cmp(y)),
            (Val::Bool(x), Val::Bool(y)) => Ok(x.cmp(y)),
            (Val::Version(x), Val::Version(y)) => Ok(x.cmp(y)),
            (Val::Double(x), Val::Double(y)) => x.partial_cmp(y).ok_or(()),
            _ => Err(()),
        }
    };
    Ok(match op {
        BinaryOp::Eq => Val::Bool(same(&a, &b)),
        BinaryOp::Ne => Val::Bool(!same(&a, &b)),
        BinaryOp::Lt => Val::Bool(ord(&a, &b)? == Ordering::Less),
        BinaryOp::Le => Val::Bool(ord(&a, &b)? != Ordering::Greater),
        BinaryOp::Gt => Val::Bool(ord(&a, &b)? == Ordering::Greater),
        BinaryOp::Ge => Val::Bool(ord(&a, &b)? != Ordering::Less),
        BinaryOp::In => match (&a, &b) {
            (_, Val::List(l)) => Val::Bool(l.iter().any(|x| same(x, &a))),
            (Val::Str(k), Val::Map(m)) => Val::Bool(m.contains_key(k)),
            _ => return Err(()),
        },
        BinaryOp::Add => match (a, b) {
            (Val::Int(x), Val::Int(y)) => Val::Int(x.checked_add(y).ok_or(())?),
            (Val::Str(x), Val::Str(y)) => Val::Str(x + &y),
            (Val::List(mut x), Val::List(y)) => {
                x.extend(y);
                Val::List(x)
            }
            _ => return Err(()),
        },
        _ => match (a, b) {
            (Val::Int(x), Val::Int(y)) => Val::Int(
                match op {
                    BinaryOp::Sub => x.checked_sub(y),
                    BinaryOp::Mul => x.checked_mul(y),
                    BinaryOp::Div => x.checked_div(y),
                    _ => x.checked_rem(y),
                }
                .ok_or(())?,
            ),
            _ => return Err(()),
        },
    })
}

fn call(
    receiver: Option<&Expr>,
    name: &str,
    args: &[Expr],
    d: &Device,
    locals: &mut Vec<(String, Val)>,
) -> R {
    match (receiver, name, args) {
        (None, "has", [arg]) => match &arg.kind {
            ExprKind::Member(base, field) => {
                if device_path(arg, locals).is_some_and(|p| d.fields.contains_key(p.as_str())) {
                    return Ok(Val::Bool(true));
                }
                match eval(base, d, locals)? {
                    Val::Map(m) => Ok(Val::Bool(m.contains_key(&field.text))),
                    _ => Err(()),
                }
            }
            _ => Ok(Val::Bool(false)),
        },
        (None, "size", [x]) | (Some(x), "size", []) => match eval(x, d, locals)? {
            Val::Str(s) => Ok(Val::Int(s.chars().count() as i64)),
            Val::List(l) => Ok(Val::Int(l.len() as i64)),
            Val::Map(m) => Ok(Val::Int(m.len() as i64)),
            _ => Err(()),
        },
        (None, "version", [x]) => match eval(x, d, locals)? {
            Val::Str(s) => DottedVersion::parse(Scheme::Dotted, &s)
                .map(Val::Version)
                .map_err(|_| ()),
            _ => Err(()),
        },
        (None, "string", [x]) => match eval(x, d, locals)? {
            Val::Str(s) => Ok(Val::Str(s)),
            Val::Int(i) => Ok(Val::Str(i.to_string())),
            Val::Bool(b) => Ok(Val::Str(b.to_string())),
            Val::Version(v) => Ok(Val::Str(v.to_string())),
            _ => Err(()),
        },
        (None, "int", [x]) => match eval(x, d, locals)? {
            Val::Int(i) => Ok(Val::Int(i)),
            Val::Str(s) => s.parse().map(Val::Int).map_err(|_| ()),
            _ => Err(()),
        },
        (Some(r), "startsWith" | "endsWith" | "contains", [a]) => {
            match (eval(r, d, locals)?, eval(a, d, locals)?) {
                (Val::Str(s), Val::Str(t)) => Ok(Val::Bool(match name {
                    "startsWith" => s.starts_with(&t),
                    "endsWith" => s.ends_with(&t),
                    _ => s.contains(&t),
                })),
                _ => Err(()),
            }
        }
        (Some(r), "all" | "exists" | "exists_one" | "filter" | "map", [var, body]) => {
            let ExprKind::Var(var) = &var.kind else {
                return Err(());
            };
            let items = match eval(r, d, locals)? {
                Val::List(l) => l,
                Val::Map(m) => m.keys().map(|k| Val::Str(k.clone())).collect(),
                _ => return Err(()),
            };
            let mut results = Vec::new();
            for item in &items {
                locals.push((var.clone(), item.clone()));
                let v = eval(body, d, locals);
                locals.pop();
                results.push(v);
            }
            let bools = || {
                results.iter().map(|r| match r {
                    Ok(Val::Bool(b)) => Ok(*b),
                    _ => Err(()),
                })
            };
            match name {
                "all" => {
                    if bools().any(|b| b == Ok(false)) {
                        Ok(Val::Bool(false))
                    } else if bools().all(|b| b.is_ok()) {
                        Ok(Val::Bool(true))
                    } else {
                        Err(())
                    }
                }
                "exists" => {
                    if bools().any(|b| b == Ok(true)) {
                        Ok(Val::Bool(true))
                    } else if bools().all(|b| b.is_ok()) {
                        Ok(Val::Bool(false))
                    } else {
                        Err(())
                    }
                }
                "exists_one" => {
                    let all: Result<Vec<bool>, ()> = bools().collect();
                    Ok(Val::Bool(all?.iter().filter(|b| **b).count() == 1))
                }
                "filter" => {
                    let all: Result<Vec<bool>, ()> = bools().collect();
                    Ok(Val::List(
                        items
                            .iter()
                            .zip(all?)
                            .filter(|(_, keep)| *keep)
                            .map(|(i, _)| i.clone())
                            .collect(),
                    ))
                }
                _ => results
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map(Val::List),
            }
        }
        _ => Err(()),
    }
}

/// One rule bound to one of its policy's scopes.
#[derive(Clone, Copy)]
struct Placement<'p> {
    rule: &'p PackageRule,
    scope: ScopeId,
}

/// A rule result: origin, kind, target, outcome, note.
type RuleRow = (Json, &'static str, String, Outcome, Option<String>);

pub struct Reference<'a> {
    now: i64,
    analysis: &'a Analysis,
    inventory: &'a Inventory,
    device: Device,
    path: Vec<ScopeId>,
    unknown: Vec<Json>,
    violations: Vec<Json>,
    remediation: Vec<Json>,
    /// By (policy index, rule id): bundle order.
    results: BTreeMap<(u32, u32), RuleRow>,
    toolchain_results: Vec<RuleRow>,
    /// Conditions already evaluated, by the span of their text: each reports an error once.
    conditions: BTreeMap<(u32, u32), Option<bool>>,
}
fn outcome_rank(o: Outcome) -> u8 {
    match o {
        Outcome::Skip => 0,
        Outcome::Pass => 1,
        Outcome::Warn => 2,
        Outcome::Unknown => 3,
        Outcome::Fail => 4,
    }
}

/// Evaluates with the reference semantics; returns the record in normalized form (see
/// [`normalize`]).
pub fn evaluate(
    analysis: &Analysis,
    inventory: &Inventory,
    now: i64,
    expires_at: Option<i64>,
) -> Json {
    let p = &analysis.program;
    let mut path = vec![ScopeTree_ORG];
    let mut unknown = Vec::new();
    let s = &inventory.scopes;
    let named = |level: Level, name: &Option<String>, unknown: &mut Vec<Json>| -> Option<ScopeId> {
        let name = name.as_ref()?;
        let found = p
            .scopes
            .scopes
            .iter()
            .position(|x| x.level == level && &x.name == name)
            .map(|i| ScopeId(i as u32));
        if found.is_none() {
            unknown.push(json!({"code": "unknown_scope"}));
        }
        found
    };
    if let Some(d) = named(Level::Department, &s.department, &mut unknown) {
        path.push(d);
    }
    if let Some(t) = named(Level::Team, &s.team, &mut unknown) {
        path.push(t);
        if let Some(parent) = p.scopes.get(t).parent {
            path.push(parent);
        }
    }
    if let Some(e) = named(Level::Environment, &s.environment, &mut unknown) {
        path.push(e);
    }
    for g in &s.device_groups {
        if let Some(g) = named(Level::DeviceGroup, &Some(g.clone()), &mut unknown) {
            path.push(g);
        }
    }
    let scope_name = |level: Level| -> String {
        path.iter()
            .map(|&i| p.scopes.get(i))
            .find(|x| x.level == level)
            .map_or(String::new(), |x| x.name.clone())
    };
    let mut fields = BTreeMap::new();
    fields.insert("id", Val::Str(inventory.device_id.clone()));
    fields.insert("tenant", Val::Str(inventory.tenant_id.clone()));
    fields.insert("arch", Val::Str(inventory.device.arch.clone()));
    fields.insert("os.name", Val::Str(inventory.device.os_name.clone()));
    fields.insert("os.version", Val::Str(inventory.device.os_version.clone()));
    fields.insert("ring", Val::Str(inventory.ring.clone().unwrap_or_default()));
    fields.insert(
        "department",
        Val::Str(
            inventory
                .scopes
                .department
                .clone()
                .unwrap_or_else(|| scope_name(Level::Department)),
        ),
    );
    fields.insert(
        "team",
        Val::Str(inventory.scopes.team.clone().unwrap_or_default()),
    );
    fields.insert(
        "environment",
        Val::Str(inventory.scopes.environment.clone().unwrap_or_default()),
    );
    fields.insert(
        "groups",
        Val::List(
            inventory
                .scopes
                .device_groups
                .iter()
                .map(|g| Val::Str(g.clone()))
                .collect(),
        ),
    );
    fields.insert(
        "facts",
        Val::Map(
            inventory
                .device
                .facts
                .iter()
                .map(|(k, v)| (k.clone(), from_json(&runtime_value_to_json(v))))
                .collect(),
        ),
    );
    let mut r = Reference {
        now,
        analysis,
        inventory,
        device: Device { fields },
        path,
        unknown,
        violations: vec![],
        remediation: vec![],
        results: BTreeMap::new(),
        toolchain_results: Vec::new(),
        conditions: BTreeMap::new(),
    };
    if inventory.tenant_id != p.tenant_name() {
        r.unknown.push(json!({"code": "tenant_mismatch"}));
    }
    if expires_at.is_some_and(|e| now >= e) {
        r.unknown.push(json!({"code": "bundle_expired"}));
    }
    if now.saturating_sub(inventory.collected_at) > 7 * 24 * 3600 {
        r.unknown.push(json!({"code": "stale_inventory"}));
    }
    if inventory.collected_at.saturating_sub(now) > 300 {
        r.unknown.push(json!({"code": "future_inventory"}));
    }
    r.run();
    r.finish()
}

#[allow(non_upper_case_globals)]
const ScopeTree_ORG: ScopeId = ScopeId(0);

impl<'a> Reference<'a> {
    fn p(&self) -> &'a Program {
        &self.analysis.program
    }

    /// Of a policy's scopes, the one that binds it on this device: the most specific level
    /// the device is in, and between device groups the name that sorts first.
    fn binding(&self, scopes: &[(ScopeId, hpl_compiler::source::Span)]) -> Option<ScopeId> {
        let p = self.p();
        let mut best: Option<ScopeId> = None;
        for &(scope, _) in scopes {
            if !self.path.contains(&scope) {
                continue;
            }
            best = match best {
                None => Some(scope),
                Some(b) => {
                    let (sb, sc) = (p.scopes.get(b), p.scopes.get(scope));
                    let better = level_rank(sc.level) > level_rank(sb.level)
                        || (sc.level == sb.level && sc.name.as_bytes() < sb.name.as_bytes());
                    Some(if better { scope } else { b })
                }
            };
        }
        best
    }

    /// Every rule that applies through the device's scopes, once, through its binding.
    fn placements(&self) -> Vec<Placement<'a>> {
        let p = self.p();
        let mut out = Vec::new();
        for policy in &p.policies {
            if let Some(scope) = self.binding(&policy.scopes) {
                for &id in &policy.rules {
                    out.push(Placement {
                        rule: p.rule(id),
                        scope,
                    });
                }
            }
        }
        out
    }

    fn origin(&self, rule_span: hpl_compiler::source::Span, policy: u32, scope: ScopeId) -> Json {
        let p = self.p();
        let pol = &p.policies[policy as usize];
        let file = self.analysis.db.get(rule_span.file);
        let (line, col) = file.line_col(rule_span.start as usize);
        let s = p.scopes.get(scope);
        json!({
            "policy": pol.name.text,
            "policy_version": pol.version,
            "scope": if s.level == Level::Org { format!("org:{}", p.tenant_name()) } else { format!("{}:{}", s.level.keyword(), s.name) },
            "source": format!("{}:{line}:{col}", file.name),
        })
    }

    fn result(&mut self, pl: &Placement<'a>, o: Outcome) {
        self.result_noted(pl, o, None);
    }

    /// The worst outcome wins; at the same outcome the first note stays.
    fn result_noted(&mut self, pl: &Placement<'a>, o: Outcome, note: Option<String>) {
        let key = (pl.rule.policy.0, pl.rule.id.0);
        let origin = self.origin(pl.rule.span, pl.rule.policy.0, pl.scope);
        let kind = if pl.rule.is_final {
            "deny!"
        } else {
            pl.rule.kind.keyword()
        };
        let entry = self.results.entry(key).or_insert((
            origin,
            kind,
            pl.rule.display.clone(),
            Outcome::Skip,
            None,
        ));
        if outcome_rank(o) > outcome_rank(entry.3) {
            entry.3 = o;
            entry.4 = note;
        } else if outcome_rank(o) == outcome_rank(entry.3) && entry.4.is_none() {
            entry.4 = note;
        }
    }

    fn level(&self, scope: ScopeId) -> Level {
        self.p().scopes.get(scope).level
    }

    fn applies(&mut self, pl: &Placement<'a>) -> Option<bool> {
        let Some(cond) = &pl.rule.condition else {
            return Some(true);
        };
        let key = (cond.span.file.0, cond.span.start);
        if let Some(known) = self.conditions.get(&key) {
            return *known;
        }
        let value = match eval(cond, &self.device, &mut Vec::new()) {
            Ok(Val::Bool(b)) => Some(b),
            _ => {
                let origin = self.origin(pl.rule.span, pl.rule.policy.0, pl.scope);
                self.unknown
                    .push(json!({"code": "condition_error", "rule": origin}));
                None
            }
        };
        self.conditions.insert(key, value);
        value
    }

    fn run(&mut self) {
        let placements = self.placements();
        for pl in &placements {
            self.result(pl, Outcome::Skip);
        }
        let p = self.p();
        for (mi, manager) in p.catalog.managers.iter().enumerate() {
            let scheme = manager.scheme;
            let inv = self.inventory.managers.iter().find(|m| m.id == manager.id);
            let mut packages: BTreeMap<String, Option<&Package>> = BTreeMap::new();
            if let Some(inv) = inv {
                for pkg in &inv.packages {
                    packages.insert(normalize_name(scheme, &pkg.name), Some(pkg));
                }
            }
            for pl in &placements {
                if usize::from(pl.rule.manager.0) == mi {
                    if let Pattern::Exact(n) = &pl.rule.pattern {
                        packages.entry(n.clone()).or_insert(None);
                    }
                }
            }
            for (name, pkg) in packages {
                let mut applicable = Vec::new();
                // Exact names first, then globs, each in program order (conditions report
                // their errors in the order they are first asked).
                let matching: Vec<Placement<'a>> = placements
                    .iter()
                    .filter(|pl| {
                        usize::from(pl.rule.manager.0) == mi
                            && pl.rule.pattern.matches(&name)
                            && pl.rule.pattern.is_exact()
                    })
                    .chain(placements.iter().filter(|pl| {
                        usize::from(pl.rule.manager.0) == mi
                            && pl.rule.pattern.matches(&name)
                            && !pl.rule.pattern.is_exact()
                    }))
                    .copied()
                    .collect();
                for pl in matching {
                    match self.applies(&pl) {
                        Some(true) => applicable.push(pl),
                        Some(false) => {}
                        None => self.result(&pl, Outcome::Unknown),
                    }
                }
                self.package(&manager.id, scheme, &name, pkg, inv.is_some(), applicable);
            }
        }
        self.toolchains();
    }

    fn constraint(&self, rule: &PackageRule) -> Option<&'a hpl_runtime::version::Constraint> {
        self.analysis
            .checked
            .constraints
            .get(rule.id.0 as usize)
            .and_then(Option::as_ref)
    }

    fn unknown_at(&mut self, code: &str, manager: &str, package: &str, pl: &Placement<'a>) {
        let origin = self.origin(pl.rule.span, pl.rule.policy.0, pl.scope);
        self.unknown
            .push(json!({"code": code, "manager": manager, "package": package, "rule": origin}));
        self.result(pl, Outcome::Unknown);
    }

    #[allow(clippy::too_many_arguments)]
    fn violation(
        &mut self,
        pl: &Placement<'a>,
        category: &str,
        manager: &str,
        package: &str,
        expected: String,
        found: Option<String>,
        action: &str,
        guarded: bool,
    ) {
        let warn = pl.rule.severity == RuleSeverity::Warn;
        let origin = self.origin(pl.rule.span, pl.rule.policy.0, pl.scope);
        let mut v = json!({"category": category, "severity": if warn { "warning" } else { "error" }, "manager": manager,
            "package": package, "expected": expected, "found": found, "action": action, "rule": origin});
        if let Some(b) = &pl.rule.because {
            v["reason"] = json!(b);
        }
        self.violations.push(v.clone());
        let policy = &self.p().policies[pl.rule.policy.0 as usize];
        let mode_name = match policy.mode {
            hpl_compiler::program::Mode::Observe => None,
            hpl_compiler::program::Mode::Assist => Some("assist"),
            hpl_compiler::program::Mode::Enforce => Some("enforce"),
        };
        if let Some(mode_name) = mode_name {
            let m = self
                .p()
                .catalog
                .managers
                .iter()
                .find(|x| x.id == manager)
                .expect("manager");
            let manual = action == "downgrade" && !m.capabilities.downgrade;
            let phase = match m.phase {
                hpl_compiler::program::Phase::Authoritative => "authoritative",
                hpl_compiler::program::Phase::Standard => "standard",
                hpl_compiler::program::Phase::Guarded => "guarded",
            };
            // Enforce: automatic when no window applies or one is open now, else scheduled.
            let (mut automatic, mut not_before) = (false, None);
            if mode_name == "enforce" && !guarded && !manual {
                let now = jiff::Timestamp::from_second(self.now).expect("now");
                let windows: Vec<hpl_runtime::window::UpgradeWindow> = policy
                    .windows
                    .iter()
                    .zip(
                        self.analysis
                            .checked
                            .windows
                            .get(pl.rule.policy.0 as usize)
                            .into_iter()
                            .flatten(),
                    )
                    .filter(|(w, _)| match &w.clauses.when {
                        None => true,
                        Some(c) => {
                            matches!(eval(c, &self.device, &mut Vec::new()), Ok(Val::Bool(true)))
                        }
                    })
                    .map(|(_, spec)| hpl_runtime::window::UpgradeWindow {
                        days: spec
                            .days
                            .iter()
                            .enumerate()
                            .fold(0u8, |acc, (i, &on)| acc | (u8::from(on) << i)),
                        start_minute: spec.start_minute,
                        end_minute: spec.end_minute,
                        zone: spec.zone.as_ref().map_or(jiff::tz::TimeZone::UTC, |z| {
                            jiff::tz::TimeZone::get(z).expect("zone")
                        }),
                    })
                    .collect();
                if windows.is_empty() || windows.iter().any(|w| w.is_open(now)) {
                    automatic = true;
                } else {
                    not_before = windows
                        .iter()
                        .filter_map(|w| w.next_open(now))
                        .min()
                        .map(|t| t.to_string());
                }
            }
            let mut r = json!({"action": action, "manager": manager, "package": package, "mode": mode_name,
                "needs_confirmation": !automatic && not_before.is_none(), "guarded": guarded, "not_before": not_before,
                "phase": phase, "automatic": automatic, "manual": manual});
            if manual {
                r["note"] = json!(format!("{manager} cannot downgrade: uninstall {package} and install a version in `{}` by hand", v["expected"].as_str().unwrap_or("")));
            }
            if matches!(category, "version_out_of_range" | "pin_mismatch")
                || (category == "missing_required" && v["expected"] != "present")
            {
                r["to"] = v["expected"].clone();
            }
            if action == "pin" {
                r["pin"] = json!(if m.capabilities.native_pin {
                    "native"
                } else {
                    "virtual"
                });
            }
            self.remediation.push(r);
        }
        self.result(pl, if warn { Outcome::Warn } else { Outcome::Fail });
    }

    fn package(
        &mut self,
        manager: &str,
        scheme: Scheme,
        name: &str,
        pkg: Option<&Package>,
        inventoried: bool,
        applicable: Vec<Placement<'a>>,
    ) {
        if applicable.is_empty() {
            return;
        }
        let guarded = self
            .p()
            .catalog
            .managers
            .iter()
            .find(|m| m.id == manager)
            .is_some_and(|m| m.capabilities.guarded);
        let shown = pkg.map_or(name.to_string(), |p| p.name.clone());
        let found = pkg.map(|p| p.versions.join(", "));
        let (mut pins, rules): (Vec<_>, Vec<_>) = applicable
            .into_iter()
            .partition(|pl| pl.rule.kind == RuleKind::Pin);
        let mut versions: Option<Vec<Version>> = None;
        // An unreadable version: the rules that need it are unknown, but they stay in the
        // contest, so a less specific plain rule never decides in their place.
        let mut unreadable = false;
        if let Some(pkg) = pkg {
            let parsed: Result<Vec<Version>, String> = pkg
                .versions
                .iter()
                .map(|v| scheme.parse_version(v).map_err(|e| e.to_string()))
                .collect();
            match parsed {
                Ok(v) => versions = Some(v),
                Err(_) => {
                    for pl in rules.iter().chain(pins.iter()).copied().collect::<Vec<_>>() {
                        if pl.rule.constraint.is_some() || pl.rule.kind == RuleKind::Pin {
                            self.unknown_at("unparseable_version", manager, &shown, &pl);
                        }
                    }
                    unreadable = true;
                    pins.clear();
                }
            }
        }
        let current = versions.as_ref().and_then(|vs| {
            let mut best: Option<&Version> = None;
            for v in vs {
                if best.is_none_or(|b| v.compare(b) == Some(std::cmp::Ordering::Greater)) {
                    best = Some(v);
                }
            }
            best
        });
        // A deny's range holds an installed version?
        let in_range = |this: &Self, pl: &Placement<'a>| -> Option<bool> {
            let Some(c) = this.constraint(pl.rule) else {
                return Some(true);
            };
            let vs = versions.as_ref()?;
            let answers: Vec<Option<bool>> = vs.iter().map(|v| c.matches(v)).collect();
            if answers.contains(&Some(true)) {
                Some(true)
            } else if answers.contains(&None) {
                None
            } else {
                Some(false)
            }
        };
        let denied_text = |pl: &Placement<'a>| {
            pl.rule
                .constraint
                .as_ref()
                .map_or("absent".to_string(), |c| format!("not {}", c.text))
        };
        let p = self.p();
        // How specifically a rule names the package: exact, then the longer glob prefix.
        let matcher = |pl: &Placement<'_>| match &pl.rule.pattern {
            Pattern::Exact(_) => (1usize, 0usize),
            Pattern::Glob(prefix) => (0, prefix.len()),
        };
        let tie = |pl: &Placement<'_>| {
            (
                p.policies[pl.rule.policy.0 as usize].name.text.clone(),
                pl.rule.span.start,
                pl.rule.id.0,
            )
        };
        let note_for = |this: &Self, what: &str, pl: &Placement<'a>| {
            let o = this.origin(pl.rule.span, pl.rule.policy.0, pl.scope);
            format!(
                "{what} `{}` of policy `{}` at {} ({})",
                pl.rule.display,
                o["policy"].as_str().unwrap_or(""),
                o["scope"].as_str().unwrap_or(""),
                o["source"].as_str().unwrap_or("")
            )
        };

        // 1. Final denies, most severe first, then level, matcher, policy id and position.
        let mut finals: Vec<Placement<'a>> = rules
            .iter()
            .copied()
            .filter(|pl| pl.rule.is_final)
            .collect();
        finals.sort_by(|a, b| {
            let warn = |pl: &Placement<'_>| pl.rule.severity == RuleSeverity::Warn;
            warn(a)
                .cmp(&warn(b))
                .then(level_rank(self.level(b.scope)).cmp(&level_rank(self.level(a.scope))))
                .then(matcher(b).cmp(&matcher(a)))
                .then(tie(a).cmp(&tie(b)))
        });
        let mut undecided: Vec<Placement<'a>> = Vec::new();
        let mut passed: Vec<Placement<'a>> = Vec::new();
        let mut deciding_final = None;
        for pl in &finals {
            if pl.rule.constraint.is_none() {
                deciding_final = Some(*pl);
                break;
            }
            if pkg.is_none() {
                passed.push(*pl);
                continue;
            }
            match in_range(self, pl) {
                Some(true) => {
                    deciding_final = Some(*pl);
                    break;
                }
                Some(false) => passed.push(*pl),
                None => undecided.push(*pl),
            }
        }
        // 2. Otherwise level, matcher, deny > require > allow, policy id and position; a
        //    ranged deny only when a version is in its range.
        let mut winner = None;
        if deciding_final.is_none() {
            let mut others: Vec<Placement<'a>> = rules
                .iter()
                .copied()
                .filter(|pl| !pl.rule.is_final)
                .collect();
            let rank = |k: RuleKind| match k {
                RuleKind::Deny => 0,
                RuleKind::Require => 1,
                _ => 2,
            };
            others.sort_by(|a, b| {
                level_rank(self.level(b.scope))
                    .cmp(&level_rank(self.level(a.scope)))
                    .then(matcher(b).cmp(&matcher(a)))
                    .then(rank(a.rule.kind).cmp(&rank(b.rule.kind)))
                    .then(tie(a).cmp(&tie(b)))
            });
            for pl in &others {
                if pl.rule.kind == RuleKind::Deny && pl.rule.constraint.is_some() {
                    if pkg.is_none() {
                        continue;
                    }
                    match in_range(self, pl) {
                        Some(true) => {}
                        Some(false) => continue,
                        None => {
                            undecided.push(*pl);
                            continue;
                        }
                    }
                }
                winner = Some(*pl);
                break;
            }
        }
        for pl in &undecided {
            if !unreadable {
                self.unknown_at("incomparable_version", manager, &shown, pl);
            }
        }
        for pl in &passed {
            self.result(pl, Outcome::Pass);
        }
        // Once a denied, installed package is gone, is it required? Then it leaves the
        // range instead (up when versions above the range exist), never gets removed.
        let resolve = |this: &Self, deny: &Placement<'a>| -> &'static str {
            if deny.rule.constraint.is_none() {
                return "uninstall";
            }
            let mut absent: Vec<Placement<'a>> = rules
                .iter()
                .copied()
                .filter(|pl| pl.rule.constraint.is_none() || pl.rule.kind != RuleKind::Deny)
                .collect();
            let rank = |k: RuleKind| match k {
                RuleKind::Deny => 0,
                RuleKind::Require => 1,
                _ => 2,
            };
            absent.sort_by(|a, b| {
                b.rule
                    .is_final
                    .cmp(&a.rule.is_final)
                    .then(level_rank(this.level(b.scope)).cmp(&level_rank(this.level(a.scope))))
                    .then(matcher(b).cmp(&matcher(a)))
                    .then(rank(a.rule.kind).cmp(&rank(b.rule.kind)))
                    .then(tie(a).cmp(&tie(b)))
            });
            let required = absent
                .first()
                .is_some_and(|pl| pl.rule.kind == RuleKind::Require);
            if !required {
                "uninstall"
            } else if this
                .constraint(deny.rule)
                .is_some_and(|c| c.is_bounded_above())
            {
                "upgrade"
            } else {
                "downgrade"
            }
        };
        if let Some(f) = deciding_final {
            if pkg.is_some() {
                let action = resolve(self, &f);
                self.violation(
                    &f,
                    "present_denied",
                    manager,
                    &shown,
                    denied_text(&f),
                    found.clone(),
                    action,
                    guarded,
                );
            } else {
                self.result(&f, Outcome::Pass);
            }
            let note = note_for(self, "forbidden by final deny", &f);
            for pl in rules.iter().chain(pins.iter()) {
                let same = pl.rule.id == f.rule.id;
                let was_passed = passed.iter().any(|x| x.rule.id == pl.rule.id);
                if !same && !was_passed {
                    self.result_noted(pl, Outcome::Skip, Some(note.clone()));
                }
            }
            return;
        }
        if let Some(w) = winner {
            match w.rule.kind {
                RuleKind::Deny => {
                    if pkg.is_some() {
                        let action = resolve(self, &w);
                        self.violation(
                            &w,
                            "present_denied",
                            manager,
                            &shown,
                            denied_text(&w),
                            found.clone(),
                            action,
                            guarded,
                        );
                        // Remove, never pin and remove: the pin is not checked.
                        let note = note_for(self, "denied by", &w);
                        for pin in &pins {
                            self.result_noted(pin, Outcome::Skip, Some(note.clone()));
                        }
                        return;
                    }
                    self.result(&w, Outcome::Pass);
                }
                RuleKind::Require | RuleKind::Allow if pkg.is_none() => {
                    if w.rule.kind == RuleKind::Allow {
                        self.result(&w, Outcome::Pass);
                    } else if !inventoried {
                        self.unknown_at("manager_not_inventoried", manager, &shown, &w);
                    } else {
                        let expected = w
                            .rule
                            .constraint
                            .as_ref()
                            .map_or("present".to_string(), |c| c.text.clone());
                        self.violation(
                            &w,
                            "missing_required",
                            manager,
                            &shown,
                            expected,
                            None,
                            "install",
                            guarded,
                        );
                    }
                }
                RuleKind::Require | RuleKind::Allow => match (self.constraint(w.rule), current) {
                    (None, _) => self.result(&w, Outcome::Pass),
                    (Some(_), None) if unreadable => {} // said above
                    (Some(_), None) => self.unknown_at("unparseable_version", manager, &shown, &w),
                    (Some(c), Some(cur)) => match c.matches(cur) {
                        Some(true) => self.result(&w, Outcome::Pass),
                        Some(false) => {
                            let action = if c.is_below(cur) {
                                "upgrade"
                            } else {
                                "downgrade"
                            };
                            let text = w
                                .rule
                                .constraint
                                .as_ref()
                                .map(|c| c.text.clone())
                                .unwrap_or_default();
                            self.violation(
                                &w,
                                "version_out_of_range",
                                manager,
                                &shown,
                                text,
                                Some(cur.to_string()),
                                action,
                                guarded,
                            );
                        }
                        None => self.unknown_at("incomparable_version", manager, &shown, &w),
                    },
                },
                RuleKind::Pin => {}
            }
        }
        // 3. Pins: the most specific (level, then policy id and position).
        pins.sort_by(|a, b| {
            level_rank(self.level(b.scope))
                .cmp(&level_rank(self.level(a.scope)))
                .then(tie(a).cmp(&tie(b)))
        });
        if let (Some(pin), Some(_)) = (pins.first().copied(), pkg) {
            match (current, self.constraint(pin.rule)) {
                (Some(cur), Some(c)) => match c.matches(cur) {
                    Some(true) => self.result(&pin, Outcome::Pass),
                    Some(false) => {
                        let text = pin
                            .rule
                            .constraint
                            .as_ref()
                            .map(|c| c.text.clone())
                            .unwrap_or_default();
                        self.violation(
                            &pin,
                            "pin_mismatch",
                            manager,
                            &shown,
                            text,
                            Some(cur.to_string()),
                            "pin",
                            guarded,
                        );
                    }
                    None => self.unknown_at("incomparable_version", manager, &shown, &pin),
                },
                (None, _) if versions.is_some() => {
                    self.unknown_at("unparseable_version", manager, &shown, &pin)
                }
                _ => {}
            }
        }
    }

    fn toolchains(&mut self) {
        let p = self.p();
        for (pi, policy) in p.policies.iter().enumerate() {
            let Some(scope) = self.binding(&policy.scopes) else {
                continue;
            };
            for t in &policy.toolchains {
                let origin = self.origin(t.span, pi as u32, scope);
                let applies = match &t.condition {
                    None => Some(true),
                    Some(c) => match eval(c, &self.device, &mut Vec::new()) {
                        Ok(Val::Bool(b)) => Some(b),
                        _ => None,
                    },
                };
                let outcome = match applies {
                    Some(false) => Outcome::Skip,
                    None => {
                        self.unknown
                            .push(json!({"code": "condition_error", "rule": origin.clone()}));
                        Outcome::Unknown
                    }
                    Some(true) => {
                        let allowed: Vec<&str> = t
                            .sources
                            .iter()
                            .map(|m| p.catalog.get(*m).id.as_str())
                            .collect();
                        let mut o = Outcome::Pass;
                        for found in self
                            .inventory
                            .toolchains
                            .iter()
                            .filter(|x| x.name == t.name)
                        {
                            if !allowed.contains(&found.source.as_str()) {
                                o = Outcome::Fail;
                                let what = match (&found.version, &found.path) {
                                    (Some(v), Some(pa)) => format!("{} {v} at {pa}", found.source),
                                    (Some(v), None) => format!("{} {v}", found.source),
                                    (None, Some(pa)) => format!("{} at {pa}", found.source),
                                    (None, None) => found.source.clone(),
                                };
                                self.violations.push(json!({"category": "unmanaged_toolchain", "severity": "error",
                                    "manager": found.source, "package": t.name, "expected": format!("from {}", allowed.join(", ")),
                                    "found": what, "action": "manual", "rule": origin.clone()}));
                            }
                        }
                        o
                    }
                };
                self.toolchain_results
                    .push((origin, "toolchain", t.name.clone(), outcome, None));
            }
        }
    }

    fn finish(mut self) -> Json {
        let state = if self.violations.iter().any(|v| v["severity"] == "error") {
            "non_compliant"
        } else if !self.unknown.is_empty() {
            "unknown"
        } else if !self.violations.is_empty() {
            "warning"
        } else {
            "compliant"
        };
        // The plan runs authoritative managers first, then standard, then guarded.
        let phase = |r: &Json| match r["phase"].as_str() {
            Some("authoritative") => 0,
            Some("standard") => 1,
            _ => 2,
        };
        self.remediation.sort_by_key(phase);
        let rules: Vec<Json> = self
            .results
            .into_values()
            .chain(self.toolchain_results)
            .map(|(origin, kind, target, o, note)| {
                let mut row = json!({"rule": origin, "kind": kind, "target": target, "result": o});
                if let Some(note) = note {
                    row["note"] = json!(note);
                }
                row
            })
            .collect();
        normalize(
            &json!({"state": state, "unknown_reasons": self.unknown, "violations": self.violations,
            "remediation": self.remediation, "rules": rules}),
        )
    }
}

fn level_rank(l: Level) -> u8 {
    match l {
        Level::Org => 0,
        Level::Department => 1,
        Level::Team => 2,
        Level::Environment => 3,
        Level::DeviceGroup => 4,
    }
}

/// The parts of a record both evaluators must agree on, in the record's own order and with
/// every duplicate: state, violations, remediation and rule results exactly; unknown reasons by
/// code, package and the rule's policy and source (their wording is not semantics).
pub fn normalize(record: &Json) -> Json {
    let unknown: Vec<Json> = record["unknown_reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|u| json!({"code": u["code"], "package": u.get("package"), "policy": u["rule"].get("policy"), "source": u["rule"].get("source")}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "state": record["state"],
        "unknown_reasons": unknown,
        "violations": record["violations"],
        "remediation": record["remediation"],
        "rules": record["rules"],
    })
}
