//! The language features, as plain functions of the analysis.

use hpl_compiler::diagnostics::{Code, Diagnostic, Severity};
use hpl_compiler::driver::Analysis;
use hpl_compiler::program::{runtime_level, ScopeId};
use hpl_compiler::source::{FileId, Span};
use hpl_compiler::syntax::ast::{self, Expr, ExprKind, Item, Level, StmtKind, Target};
use hpl_compiler::syntax::keywords::{self, Role, KEYWORDS};
use hpl_runtime::facts;
use hpl_runtime::precedence;

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
    // A link editors open: `[baseline.hpl:7:3](file:///…/baseline.hpl#L7)`.
    match &f.path {
        Some(path) if path.is_absolute() => {
            format!("[{name}:{line}:{col}](file://{}#L{line})", path.display())
        }
        _ => format!("{name}:{line}:{col}"),
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
            let mut rules: Vec<(hpl_runtime::vocab::Level, String)> = Vec::new();
            let named = package_rules(a, manager, &name);
            for &rid in &named {
                let rule = p.rule(rid);
                let policy = p.policy(rule.policy);
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
                        runtime_level(p.scopes.get(scope).level),
                        format!(
                            "- **{kind}**{constraint}{glob}{cond} at `{}` — policy `{}` v{} ({})",
                            p.scopes.describe(scope),
                            policy.name.text,
                            policy.version,
                            location(a, rule.span)
                        ),
                    ));
                }
            }
            rules.sort_by_key(|x| std::cmp::Reverse(x.0));
            let decisions = effective_decisions(a, &named);
            lines.push(format!(
                "**{}:{}** — {} rule(s), most specific first\n",
                p.catalog.get(manager).id,
                r.package.text,
                rules.len()
            ));
            lines.push("A final deny decides first; otherwise the most specific level wins; at one level an exact name beats a glob and a longer glob prefix a shorter one, then deny beats require beats allow.\n".into());
            lines.extend(rules.into_iter().map(|(_, l)| l));
            if !decisions.is_empty() {
                lines.push("\n**Which rule wins** (unconditional rules; on devices in…)\n".into());
                lines.extend(decisions);
            }
            let needle = format!(":{}`", r.package.text);
            let overrides: Vec<String> = a
                .diagnostics
                .iter()
                .filter(|d| d.code == Code::Overridden && d.message.contains(&needle))
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
        Hit::Manager(n) => Some(p.catalog.get(p.catalog.lookup(&n.text)?).span),
        Hit::Package(r) => Some(p.catalog.get(p.catalog.lookup(&r.manager.text)?).span),
        Hit::Field(..) => None,
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
    if let Some(i) = before.find(" when ") {
        let cond = &before[i + 6..];
        let last = cond
            .rsplit(|c: char| c.is_whitespace() || "()!&|,".contains(c))
            .next()
            .unwrap_or("");
        if !last.contains('.') {
            out.push((
                "device".to_string(),
                "variable",
                "the device's facts".to_string(),
            ));
            for f in ["size", "has", "version", "string", "int"] {
                out.push((f.to_string(), "function", "function".to_string()));
            }
            return out;
        }
        if let Some(method_prefix) = last.rsplit_once('.').map(|(_, m)| m) {
            let _ = method_prefix;
            for m in [
                "startsWith",
                "endsWith",
                "contains",
                "size",
                "all",
                "exists",
                "exists_one",
                "filter",
                "map",
            ] {
                out.push((m.to_string(), "function", "method".to_string()));
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
            let keywords: Vec<&str> = if in_policy {
                keywords::statements().collect()
            } else {
                keywords::items().collect()
            };
            out.extend(keywords.iter().map(|k| {
                let doc = keywords::get(k).map_or("", |k| k.doc);
                (k.to_string(), "keyword", doc.to_string())
            }));
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
        ([rule], true) | ([rule, _], false) if is_rule_keyword(rule) => {
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
                if ends_with_space && words.len() >= 2 && is_rule_keyword(words[0]) {
                    out.extend(
                        KEYWORDS
                            .iter()
                            .filter(|k| k.role == Role::Clause)
                            .map(|k| (k.text.to_string(), "keyword", k.doc.to_string())),
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
    file_diagnostics(a, file).iter().collect()
}

/// The file's diagnostics as a slice of the analysis's: they are sorted by file
/// (`diagnostics::sort`), so two binary searches find them, instead of a pass over every
/// diagnostic of the directory per file (which grew with files × diagnostics).
pub fn file_diagnostics(a: &Analysis, file: FileId) -> &[Diagnostic] {
    let all = &a.diagnostics;
    let start = all.partition_point(|d| d.primary.span.file < file);
    let end = start + all[start..].partition_point(|d| d.primary.span.file == file);
    &all[start..end]
}

/// Code lenses: "overridden …" on rules that a more specific scope overrides.
pub fn override_lenses(a: &Analysis, file: FileId) -> Vec<(Span, String)> {
    file_diagnostics(a, file)
        .iter()
        .filter(|d| d.code == Code::Overridden)
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

/// Token types of the semantic-tokens legend, in order.
pub const TOKEN_TYPES: &[&str] = &[
    "keyword", "string", "comment", "number", "type", "variable", "operator", "function",
];

/// `require`, `allow`, `deny`, `deny!`, `pin`.
fn is_rule_keyword(word: &str) -> bool {
    keywords::get(word).is_some_and(|k| k.role == Role::Rule)
}

/// Semantic tokens: (line, start column in UTF-16, length in UTF-16, type index), in order.
/// A lexical pass: it works on text that does not parse.
pub fn semantic_tokens(text: &str) -> Vec<(u32, u32, u32, u32)> {
    let mut out = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        let col = |byte: usize| {
            line[..byte]
                .chars()
                .map(|c| c.len_utf16() as u32)
                .sum::<u32>()
        };
        let len = |a: usize, b: usize| {
            line[a..b]
                .chars()
                .map(|c| c.len_utf16() as u32)
                .sum::<u32>()
        };
        let mut i = 0;
        while i < chars.len() {
            let (start, c) = chars[i];
            if c == '#' {
                out.push((line_no as u32, col(start), len(start, line.len()), 2));
                break;
            }
            if c == '"' {
                let mut j = i + 1;
                while j < chars.len() && chars[j].1 != '"' {
                    if chars[j].1 == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                let end = chars.get(j).map_or(line.len(), |(b, ch)| b + ch.len_utf8());
                out.push((line_no as u32, col(start), len(start, end), 1));
                i = j + 1;
                continue;
            }
            if c.is_ascii_alphanumeric() || c == '_' {
                let mut j = i;
                while j < chars.len()
                    && (chars[j].1.is_ascii_alphanumeric() || "_-@/.+*:!".contains(chars[j].1))
                {
                    j += 1;
                }
                let end = chars.get(j).map_or(line.len(), |(b, _)| *b);
                let word = &line[start..end];
                let kind = if word.contains(':') {
                    Some(4)
                } else if keywords::is_keyword(word)
                    || keywords::is_keyword(word.trim_end_matches('!'))
                {
                    Some(0)
                } else if word.starts_with("device") {
                    Some(5)
                } else if word.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    Some(3)
                } else if chars.get(j).is_some_and(|(_, c)| *c == '(') {
                    Some(7)
                } else {
                    None
                };
                if let Some(k) = kind {
                    out.push((line_no as u32, col(start), len(start, end), k));
                }
                i = j;
                continue;
            }
            if "=<>!&|^~".contains(c) {
                out.push((line_no as u32, col(start), c.len_utf16() as u32, 6));
            }
            i += 1;
        }
    }
    out
}

/// Workspace symbols: policies, scopes and sets whose name contains `query`.
pub fn workspace_symbols(a: &Analysis, query: &str) -> Vec<(String, &'static str, Span)> {
    let p = &a.program;
    let q = query.to_ascii_lowercase();
    let mut out = Vec::new();
    for policy in &p.policies {
        out.push((
            format!("policy {}", policy.name.text),
            "policy",
            policy.name.span,
        ));
    }
    for s in &p.scopes.scopes {
        if let Some(span) = s.span {
            out.push((format!("{} {}", s.level.keyword(), s.name), "scope", span));
        }
    }
    for set in &p.sets {
        if !a.db.get(set.name.span.file).is_stdlib {
            out.push((format!("set {}", set.name.text), "set", set.name.span));
        }
    }
    out.retain(|(name, _, _)| name.to_ascii_lowercase().contains(&q));
    out
}

/// Quick fixes that remove a rule: redundant rules, allows a final deny forbids, allows a
/// deny at equal specificity shadows. Returns the byte range of the whole statement line(s).
pub fn removable_rule(a: &Analysis, d: &Diagnostic) -> Option<(usize, usize, String)> {
    let title = match d.code {
        Code::RedundantRule => "remove the redundant rule",
        Code::FinalDenyOverridden => "remove the rule that the final deny forbids",
        Code::AllowShadowedByDeny => "remove the allow that never applies",
        _ => return None,
    };
    let text = &a.db.get(d.primary.span.file).text;
    let start = text[..d.primary.span.start as usize]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let end = text[d.primary.span.end as usize..]
        .find('\n')
        .map_or(text.len(), |i| d.primary.span.end as usize + i + 1);
    Some((start, end, title.to_string()))
}

/// The rule that decides `manager:name` on a device whose most specific scope is `target`
/// (its path: the scope, its department, the organisation), with the scope it applies
/// through: the runtime's precedence module decides, as on a device. Conditional rules are
/// left out (they depend on the device), and so are ranged denies (they decide only for
/// versions in their range) and pins (their own dimension).
pub fn winner_at(
    a: &Analysis,
    manager: hpl_compiler::program::ManagerId,
    name: &str,
    target: ScopeId,
) -> Option<(hpl_compiler::program::RuleId, ScopeId)> {
    winner_among(a, &package_rules(a, manager, name), target)
}

/// Every rule of the directory that names the package (exactly or by a glob), with its
/// policy: what hover and [`winner_at`] look at. Found once per hover, not once per scope.
fn package_rules(
    a: &Analysis,
    manager: hpl_compiler::program::ManagerId,
    name: &str,
) -> Vec<hpl_compiler::program::RuleId> {
    let p = &a.program;
    p.policies
        .iter()
        .flat_map(|policy| policy.rules.iter().copied())
        .filter(|&rid| {
            let rule = p.rule(rid);
            rule.manager == manager && rule.pattern.matches(name)
        })
        .collect()
}

/// [`winner_at`] among `rules` (the package's, from [`package_rules`]).
fn winner_among(
    a: &Analysis,
    rules: &[hpl_compiler::program::RuleId],
    target: ScopeId,
) -> Option<(hpl_compiler::program::RuleId, ScopeId)> {
    let p = &a.program;
    // One entry per rule: the most specific of its bindings on the path.
    let mut placed: Vec<(hpl_compiler::program::RuleId, ScopeId)> = Vec::new();
    for &rid in rules {
        let rule = p.rule(rid);
        let policy = p.policy(rule.policy);
        if rule.condition.is_some()
            || rule.kind == ast::RuleKind::Pin
            || (rule.kind == ast::RuleKind::Deny && rule.constraint.is_some())
        {
            continue;
        }
        let best = policy
            .scopes
            .iter()
            .map(|&(scope, _)| scope)
            .filter(|&scope| p.scopes.contains(scope, target))
            .min_by(|&x, &y| {
                precedence::binding_order(
                    (runtime_level(p.scopes.get(x).level), &p.scopes.get(x).name),
                    (runtime_level(p.scopes.get(y).level), &p.scopes.get(y).name),
                )
            });
        if let Some(scope) = best {
            placed.push((rid, scope));
        }
    }
    let candidates: Vec<_> = placed
        .iter()
        .map(|&(rid, scope)| p.rule(rid).candidate(p, scope))
        .collect();
    precedence::decide(&candidates, true, |_| precedence::Fires::No)
        .decider()
        .map(|i| placed[i])
}

/// For every scope where the package is touched: the rule that decides on a device whose most
/// specific scope is that one ([`winner_at`]) and what it overrides.
fn effective_decisions(a: &Analysis, rules: &[hpl_compiler::program::RuleId]) -> Vec<String> {
    let p = &a.program;
    let mut placements = Vec::new();
    for &rid in rules {
        let rule = p.rule(rid);
        if rule.condition.is_none() && rule.kind != ast::RuleKind::Pin {
            for &(scope, _) in &p.policy(rule.policy).scopes {
                placements.push((rule, scope));
            }
        }
    }
    let mut scopes: Vec<ScopeId> = placements.iter().map(|(_, s)| *s).collect();
    scopes.sort();
    scopes.dedup();
    let mut out = Vec::new();
    for target in scopes {
        let Some((rid, scope)) = winner_among(a, rules, target) else {
            continue;
        };
        let rule = p.rule(rid);
        let policy = p.policy(rule.policy);
        let kind = if rule.is_final {
            "deny!"
        } else {
            rule.kind.keyword()
        };
        let overridden: Vec<String> = placements
            .iter()
            .filter(|(_, s)| p.scopes.contains(*s, target))
            .filter(|(r, s)| r.id != rule.id && (r.kind != rule.kind || *s != scope))
            .map(|(r, s)| format!("{} at `{}`", r.kind.keyword(), p.scopes.describe(*s)))
            .collect();
        let over = if overridden.is_empty() {
            String::new()
        } else {
            format!("; overrides {}", overridden.join(", "))
        };
        out.push(format!(
            "- `{}`: **{kind}** from policy `{}` at `{}` ({}){over}",
            p.scopes.describe(target),
            policy.name.text,
            p.scopes.describe(scope),
            location(a, rule.span)
        ));
    }
    out
}
