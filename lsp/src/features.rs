//! The language features, as plain functions of the analysis.

use hpl_compiler::diagnostics::{Code, Diagnostic, Severity};
use hpl_compiler::driver::Analysis;
use hpl_compiler::program::{Pattern, ScopeId};
use hpl_compiler::source::{FileId, Span};
use hpl_compiler::syntax::ast::{self, Expr, ExprKind, Item, Level, StmtKind, Target};
use hpl_runtime::facts;

/// What is under the cursor.
#[derive(Debug, Clone)]
pub enum Hit<'a> {
    Package(&'a ast::PackageRef),
    Manager(&'a ast::Name),
    SetRef(&'a ast::Name),
    SetDecl(&'a ast::Name),
    ScopeRef(&'a ast::ScopeRef),
    ScopeDecl(Level, &'a ast::Name),
    Field(String, Span),
    Policy(&'a ast::Name),
}

fn inside(span: Span, offset: usize) -> bool {
    (span.start as usize) <= offset && offset <= span.end as usize
}

fn device_path(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Var(v) if v == "device" => Some(String::new()),
        ExprKind::Member(b, f) => device_path(b).map(|p| {
            if p.is_empty() {
                f.text.clone()
            } else {
                format!("{p}.{}", f.text)
            }
        }),
        _ => None,
    }
}

fn expr_hit(e: &Expr, offset: usize) -> Option<Hit<'_>> {
    if !inside(e.span, offset) {
        return None;
    }
    let children: Vec<&Expr> = match &e.kind {
        ExprKind::List(items) => items.iter().collect(),
        ExprKind::Member(b, _) => vec![b],
        ExprKind::Index(a, b) => vec![a, b],
        ExprKind::Call { receiver, args, .. } => {
            receiver.iter().map(|r| &**r).chain(args.iter()).collect()
        }
        ExprKind::Unary(_, a) => vec![a],
        ExprKind::Binary(_, a, b) => vec![a, b],
        ExprKind::Cond(a, b, c) => vec![a, b, c],
        _ => vec![],
    };
    if let ExprKind::Member(_, f) = &e.kind {
        if inside(f.span, offset) {
            if let Some(path) = device_path(e) {
                return Some(Hit::Field(path, e.span));
            }
        }
    }
    children.into_iter().find_map(|c| expr_hit(c, offset))
}

fn clauses_hit(c: &ast::Clauses, offset: usize) -> Option<Hit<'_>> {
    c.when.as_ref().and_then(|e| expr_hit(e, offset))
}

fn target_hit(t: &Target, offset: usize) -> Option<Hit<'_>> {
    match t {
        Target::Package(p) if inside(p.manager.span, offset) => Some(Hit::Manager(&p.manager)),
        Target::Package(p) if inside(p.span, offset) => Some(Hit::Package(p)),
        Target::Set(n) if inside(n.span, offset) => Some(Hit::SetRef(n)),
        _ => None,
    }
}

/// The innermost interesting node at `offset`.
pub fn hit_at(file: &ast::File, offset: usize) -> Option<Hit<'_>> {
    for item in &file.items {
        if !inside(item.span(), offset) {
            continue;
        }
        match item {
            Item::Department(d) => {
                if inside(d.name.span, offset) {
                    return Some(Hit::ScopeDecl(Level::Department, &d.name));
                }
                return d
                    .teams
                    .iter()
                    .find(|t| inside(t.span, offset))
                    .map(|t| Hit::ScopeDecl(Level::Team, t));
            }
            Item::Environment(n, _) if inside(n.span, offset) => {
                return Some(Hit::ScopeDecl(Level::Environment, n))
            }
            Item::DeviceGroup(n, _) if inside(n.span, offset) => {
                return Some(Hit::ScopeDecl(Level::DeviceGroup, n))
            }
            Item::Set(s) => {
                if inside(s.name.span, offset) {
                    return Some(Hit::SetDecl(&s.name));
                }
                return s.members.iter().find_map(|m| target_hit(m, offset));
            }
            Item::Policy(p) => {
                if inside(p.name.span, offset) {
                    return Some(Hit::Policy(&p.name));
                }
                if let Some(stmt) = p.stmts.iter().find(|s| inside(s.span, offset)) {
                    return match &stmt.kind {
                        StmtKind::Scope(refs) => refs
                            .iter()
                            .find(|r| inside(r.span, offset))
                            .map(Hit::ScopeRef),
                        StmtKind::Rule(r) => target_hit(&r.target, offset)
                            .or_else(|| clauses_hit(&r.clauses, offset)),
                        StmtKind::Toolchain(t) => t
                            .sources
                            .iter()
                            .find(|s| inside(s.span, offset))
                            .map(Hit::Manager)
                            .or_else(|| clauses_hit(&t.clauses, offset)),
                        StmtKind::Guard(g) if inside(g.target.span, offset) => {
                            Some(Hit::Manager(&g.target))
                        }
                        StmtKind::Guard(g) => clauses_hit(&g.clauses, offset),
                        StmtKind::Window(w) => clauses_hit(&w.clauses, offset),
                        StmtKind::Mode(_) => None,
                    };
                }
            }
            _ => {}
        }
    }
    None
}

fn location(a: &Analysis, span: Span) -> String {
    let f = a.db.get(span.file);
    let (line, col) = f.line_col(span.start as usize);
    let name = f
        .path
        .as_ref()
        .and_then(|p| p.file_name())
        .map_or(f.name.clone(), |n| n.to_string_lossy().into_owned());
    format!("{name}:{line}:{col}")
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

/// Hover text (Markdown) for what is under the cursor.
pub fn hover(a: &Analysis, file: FileId, offset: usize) -> Option<(String, Span)> {
    let tree = &a.files.iter().find(|(id, _)| *id == file)?.1;
    let p = &a.program;
    match hit_at(tree, offset)? {
        Hit::Package(r) => {
            let manager = p.catalog.lookup(&r.manager.text)?;
            let scheme = p.catalog.get(manager).scheme;
            let name = hpl_runtime::package::normalize_name(scheme, &r.package.text);
            let mut lines = Vec::new();
            let mut rules: Vec<(u8, String)> = Vec::new();
            for policy in &p.policies {
                for &rid in &policy.rules {
                    let rule = p.rule(rid);
                    if rule.manager != manager
                        || !(rule.pattern == Pattern::Exact(name.clone())
                            || rule.pattern.matches(&name))
                    {
                        continue;
                    }
                    for &(scope, _) in &policy.scopes {
                        let kind = if rule.is_final {
                            "deny!"
                        } else {
                            rule.kind.keyword()
                        };
                        let constraint = rule
                            .constraint
                            .as_ref()
                            .map(|c| format!(" `{}`", c.text))
                            .unwrap_or_default();
                        let cond = if rule.condition.is_some() {
                            " (conditional)"
                        } else {
                            ""
                        };
                        let glob = if rule.pattern.is_exact() {
                            String::new()
                        } else {
                            format!(" via `{}`", rule.display)
                        };
                        rules.push((
                            level_rank(p.scopes.get(scope).level),
                            format!("- **{kind}**{constraint}{glob}{cond} at `{}` — policy `{}` v{} ({})", p.scopes.describe(scope), policy.name.text, policy.version, location(a, rule.span)),
                        ));
                    }
                }
            }
            rules.sort_by_key(|x| std::cmp::Reverse(x.0));
            lines.push(format!(
                "**{}:{}** — {} rule(s), most specific first\n",
                p.catalog.get(manager).id,
                r.package.text,
                rules.len()
            ));
            lines.push("The most specific level wins; at one level an exact name beats a glob, then deny beats require beats allow; a final deny decides first.\n".into());
            lines.extend(rules.into_iter().map(|(_, l)| l));
            let overrides: Vec<String> = a
                .diagnostics
                .iter()
                .filter(|d| {
                    d.code == Code::Overridden
                        && d.message.contains(&format!(":{}`", r.package.text))
                })
                .map(|d| format!("- {}", d.message))
                .collect();
            if !overrides.is_empty() {
                lines.push("\n**Overrides**".into());
                lines.extend(overrides);
            }
            Some((lines.join("\n"), r.span))
        }
        Hit::Manager(n) => {
            let m = p.catalog.get(p.catalog.lookup(&n.text)?);
            let caps = [
                ("native pin", m.capabilities.native_pin),
                ("downgrade", m.capabilities.downgrade),
                ("several versions", m.capabilities.multi_version),
                ("guarded", m.capabilities.guarded),
            ]
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ");
            let aliases = if m.aliases.is_empty() {
                String::new()
            } else {
                format!("\n\naliases: {}", m.aliases.join(", "))
            };
            Some((
                format!(
                    "**{}** (`{}`)\n\nversion scheme: `{}` — e.g. {}\n\ncapabilities: {}{aliases}",
                    m.title,
                    m.id,
                    m.scheme,
                    m.scheme.example(),
                    if caps.is_empty() { "none" } else { &caps }
                ),
                n.span,
            ))
        }
        Hit::SetRef(n) | Hit::SetDecl(n) => {
            let set = &p.sets[*p.set_by_name.get(&n.text)?];
            let members: Vec<String> = set
                .members
                .iter()
                .map(|(_, _, d, _)| format!("`{d}`"))
                .collect();
            Some((
                format!(
                    "**set {}** — {} members\n\n{}",
                    n.text,
                    members.len(),
                    members.join(", ")
                ),
                n.span,
            ))
        }
        Hit::ScopeRef(r) => {
            let id = match &r.name {
                None => ScopeId(0),
                Some(n) => *p.scopes.by_name.get(&n.text)?,
            };
            Some((scope_text(a, id), r.span))
        }
        Hit::ScopeDecl(_, n) => Some((scope_text(a, *p.scopes.by_name.get(&n.text)?), n.span)),
        Hit::Field(path, span) => {
            let f = facts::field(&path)?;
            Some((
                format!("`device.{path}`: **{}**\n\n{}", (f.ty)(), f.doc),
                span,
            ))
        }
        Hit::Policy(n) => {
            let policy = p.policies.iter().find(|x| x.name.text == n.text)?;
            let scopes: Vec<String> = policy
                .scopes
                .iter()
                .map(|(s, _)| format!("`{}`", p.scopes.describe(*s)))
                .collect();
            Some((
                format!(
                    "**policy {}** v{} — mode `{:?}`, {} rules, bound to {}",
                    n.text,
                    policy.version,
                    policy.mode,
                    policy.rules.len(),
                    scopes.join(", ")
                )
                .replace("`Observe`", "`observe`")
                .replace("`Assist`", "`assist`")
                .replace("`Enforce`", "`enforce`"),
                n.span,
            ))
        }
    }
}

fn scope_text(a: &Analysis, id: ScopeId) -> String {
    let p = &a.program;
    let s = p.scopes.get(id);
    let mut out = format!("**{}** ({})", p.scopes.describe(id), s.level.keyword());
    if let Some(parent) = s.parent {
        out.push_str(&format!("\n\nin {}", p.scopes.describe(parent)));
    }
    let children: Vec<String> = p
        .scopes
        .scopes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.parent == Some(id))
        .map(|(_, c)| format!("`{}`", c.name))
        .collect();
    if !children.is_empty() {
        out.push_str(&format!("\n\nteams: {}", children.join(", ")));
    }
    let policies: Vec<String> = p
        .policies
        .iter()
        .filter(|pol| pol.scopes.iter().any(|(sc, _)| *sc == id))
        .map(|pol| format!("`{}` v{}", pol.name.text, pol.version))
        .collect();
    out.push_str(&format!(
        "\n\npolicies bound here: {}",
        if policies.is_empty() {
            "none".into()
        } else {
            policies.join(", ")
        }
    ));
    out
}

/// Where the name under the cursor is declared.
pub fn definition(a: &Analysis, file: FileId, offset: usize) -> Option<Span> {
    let tree = &a.files.iter().find(|(id, _)| *id == file)?.1;
    let p = &a.program;
    match hit_at(tree, offset)? {
        Hit::ScopeRef(r) => {
            p.scopes
                .get(*p.scopes.by_name.get(&r.name.as_ref()?.text)?)
                .span
        }
        Hit::ScopeDecl(_, n) => Some(n.span),
        Hit::SetRef(n) | Hit::SetDecl(n) => Some(p.sets[*p.set_by_name.get(&n.text)?].name.span),
        Hit::Policy(n) => Some(n.span),
        _ => None,
    }
}

/// Every mention of the scope or set under the cursor (declaration included).
pub fn references(a: &Analysis, file: FileId, offset: usize) -> Vec<Span> {
    let Some(tree) = a.files.iter().find(|(id, _)| *id == file).map(|(_, t)| t) else {
        return vec![];
    };
    let (is_scope, name) = match hit_at(tree, offset) {
        Some(Hit::ScopeRef(ast::ScopeRef { name: Some(n), .. })) | Some(Hit::ScopeDecl(_, n)) => {
            (true, n.text.clone())
        }
        Some(Hit::SetRef(n)) | Some(Hit::SetDecl(n)) => (false, n.text.clone()),
        _ => return vec![],
    };
    let mut out = Vec::new();
    for (id, f) in &a.files {
        if a.db.get(*id).is_stdlib {
            continue;
        }
        for item in &f.items {
            match item {
                Item::Department(d) if is_scope => {
                    out.extend(
                        std::iter::once(&d.name)
                            .chain(&d.teams)
                            .filter(|n| n.text == name)
                            .map(|n| n.span),
                    );
                }
                Item::Environment(n, _) | Item::DeviceGroup(n, _) if is_scope && n.text == name => {
                    out.push(n.span)
                }
                Item::Set(s) if !is_scope => {
                    if s.name.text == name {
                        out.push(s.name.span);
                    }
                    out.extend(s.members.iter().filter_map(|m| match m {
                        Target::Set(n) if n.text == name => Some(n.span),
                        _ => None,
                    }));
                }
                Item::Policy(p) => {
                    for stmt in &p.stmts {
                        match &stmt.kind {
                            StmtKind::Scope(refs) if is_scope => out.extend(
                                refs.iter()
                                    .filter_map(|r| r.name.as_ref())
                                    .filter(|n| n.text == name)
                                    .map(|n| n.span),
                            ),
                            StmtKind::Rule(r) if !is_scope => {
                                if let Target::Set(n) = &r.target {
                                    if n.text == name {
                                        out.push(n.span);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Completion candidates: (label, kind, detail). `before` is the line up to the cursor.
pub fn completions(
    a: &Analysis,
    before: &str,
    in_policy: bool,
) -> Vec<(String, &'static str, String)> {
    let p = &a.program;
    let trimmed = before.trim_start();
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    let ends_with_space = before.ends_with(' ');
    let mut out = Vec::new();
    // Inside a condition: device fields.
    if let Some(i) = before.rfind("device.") {
        let path = &before[i + "device.".len()..];
        if !path.contains(' ') {
            let prefix = path.rsplit_once('.').map_or("", |(p, _)| p);
            let mut seen = std::collections::BTreeSet::new();
            for f in facts::DEVICE_FIELDS {
                let rest = if prefix.is_empty() {
                    Some(f.path)
                } else {
                    f.path.strip_prefix(&format!("{prefix}."))
                };
                if let Some(rest) = rest {
                    let head = rest.split('.').next().unwrap_or(rest);
                    if seen.insert(head.to_string()) {
                        let detail = if head == rest {
                            format!("{} — {}", (f.ty)(), f.doc)
                        } else {
                            "object".into()
                        };
                        out.push((head.to_string(), "field", detail));
                    }
                }
            }
            return out;
        }
    }
    if words.first() == Some(&"window") && before.matches('"').count() % 2 == 1 {
        let typed = before.rsplit('"').next().unwrap_or("");
        for name in jiff::tz::db().available() {
            let name = name.to_string();
            if name.starts_with(typed) {
                out.push((name, "value", "time zone".into()));
            }
            if out.len() >= 200 {
                break;
            }
        }
        return out;
    }
    match (words.as_slice(), ends_with_space) {
        ([], _) | ([_], false) => {
            let keywords: &[&str] = if in_policy {
                hpl_compiler::syntax::chunk::STMT_KEYWORDS
            } else {
                hpl_compiler::syntax::chunk::ITEM_KEYWORDS
            };
            out.extend(
                keywords
                    .iter()
                    .map(|k| (k.to_string(), "keyword", String::new())),
            );
        }
        (["scope", ..], true) | (["scope", .., _], false) => {
            let last_level = words
                .iter()
                .rev()
                .find_map(|w| match w.trim_end_matches(',') {
                    "department" => Some(Level::Department),
                    "team" => Some(Level::Team),
                    "environment" => Some(Level::Environment),
                    "device_group" => Some(Level::DeviceGroup),
                    _ => None,
                });
            let after_level = words.last().is_some_and(|w| {
                matches!(*w, "department" | "team" | "environment" | "device_group")
            }) && ends_with_space;
            match (last_level, after_level) {
                (Some(level), true) => out.extend(
                    p.scopes
                        .scopes
                        .iter()
                        .filter(|s| s.level == level)
                        .map(|s| (s.name.clone(), "scope", level.keyword().to_string())),
                ),
                _ => out.extend(
                    ["org", "department", "team", "environment", "device_group"]
                        .iter()
                        .map(|k| (k.to_string(), "keyword", "scope level".into())),
                ),
            }
        }
        (["mode"], true) => out.extend(
            ["observe", "assist", "enforce"]
                .iter()
                .map(|m| (m.to_string(), "value", "mode".into())),
        ),
        (["guard"], true) => out.extend(
            p.catalog
                .managers
                .iter()
                .filter(|m| m.capabilities.guarded)
                .flat_map(|m| std::iter::once(m.id.clone()).chain(m.aliases.clone()))
                .map(|n| (n, "manager", "guarded".into())),
        ),
        (["guard", _], true) => out.extend(
            ["confirm", "deny", "auto"]
                .iter()
                .map(|m| (m.to_string(), "value", "guard level".into())),
        ),
        (["toolchain", _, "from", ..], true) => out.extend(
            p.catalog
                .names()
                .map(|n| (n.to_string(), "manager", String::new())),
        ),
        (["require" | "allow" | "deny" | "deny!" | "pin"], true)
        | (["require" | "allow" | "deny" | "deny!" | "pin", _], false) => {
            out.extend(p.catalog.managers.iter().flat_map(|m| {
                std::iter::once(m.id.clone())
                    .chain(m.aliases.clone())
                    .map(move |n| (format!("{n}:"), "manager", m.title.clone()))
            }));
            out.extend(p.sets.iter().map(|s| {
                (
                    s.name.text.clone(),
                    "set",
                    format!("{} members", s.members.len()),
                )
            }));
        }
        _ => {
            if let Some(last) = words.last() {
                if ends_with_space
                    && words.len() >= 2
                    && ["require", "allow", "deny", "deny!", "pin"].contains(&words[0])
                {
                    out.extend(
                        ["when", "because", "warn"]
                            .iter()
                            .map(|k| (k.to_string(), "keyword", "clause".into())),
                    );
                }
                let _ = last;
            }
        }
    }
    out
}

/// Diagnostics of one file.
pub fn diagnostics_of(a: &Analysis, file: FileId) -> Vec<&Diagnostic> {
    a.diagnostics
        .iter()
        .filter(|d| d.primary.span.file == file)
        .collect()
}

/// Code lenses: "overridden …" on rules that a more specific scope overrides.
pub fn override_lenses(a: &Analysis, file: FileId) -> Vec<(Span, String)> {
    a.diagnostics
        .iter()
        .filter(|d| d.code == Code::Overridden && d.primary.span.file == file)
        .map(|d| {
            let scope = d.message.rsplit(" for devices in ").next().unwrap_or("");
            let title = match d.related.first() {
                Some(r) => r.message.clone(),
                None => format!("overridden in {scope}"),
            };
            (d.primary.span, title)
        })
        .collect()
}

pub fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Error => 1,
        Severity::Warning => 2,
        Severity::Note => 3,
    }
}
