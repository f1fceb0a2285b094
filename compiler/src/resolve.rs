//! Stage 2: binds every name. Scopes, sets, managers and policies are declared once;
//! references to them are checked with a did-you-mean suggestion; package sets are expanded
//! into one rule per member, each keeping the set it came from.

use crate::diagnostics::{Code, Diagnostic};
use crate::program::*;
use crate::source::Span;
use crate::syntax::ast::{self, Item, Level, RuleKind, StmtKind, Target};
use hpl_runtime::package::normalize_name;
use hpl_runtime::version::Scheme;
use std::collections::HashMap;

/// A parsed file, as the resolver sees it.
pub struct ParsedFile<'a> {
    pub file: &'a ast::File,
    pub is_stdlib: bool,
    /// Start of the file, for diagnostics that belong to no construct.
    pub start: Span,
}

pub fn resolve(files: &[ParsedFile<'_>]) -> (Program, Vec<Diagnostic>) {
    let mut r = Resolver {
        diagnostics: Vec::new(),
    };
    let catalog = r.catalog(files);
    let (tenant, scopes) = r.scopes(files);
    let mut program = Program {
        tenant,
        scopes,
        catalog,
        sets: Vec::new(),
        set_by_name: HashMap::new(),
        policies: Vec::new(),
        rules: Vec::new(),
    };
    r.sets(files, &mut program);
    r.policies(files, &mut program);
    (program, r.diagnostics)
}

struct Resolver {
    diagnostics: Vec<Diagnostic>,
}

fn duplicate(kind: &str, name: &ast::Name, first: Span) -> Diagnostic {
    Diagnostic::new(
        Code::DuplicateDeclaration,
        format!("{kind} `{}` is declared twice", name.text),
        name.span,
        "declared again here",
    )
    .related(first, "first declared here")
    .help("remove or rename one of the declarations")
}

impl Resolver {
    fn catalog(&mut self, files: &[ParsedFile<'_>]) -> Catalog {
        let mut catalog = Catalog::default();
        for f in files {
            for item in &f.file.items {
                let Item::Manager(m) = item else { continue };
                if !f.is_stdlib {
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::Syntax,
                            "managers are declared only in the stdlib catalog",
                            m.name.span,
                            "not allowed in a policy directory",
                        )
                        .help("refer to managers by their catalog id or alias, e.g. `brew:git`"),
                    );
                    continue;
                }
                let id = ManagerId(catalog.managers.len() as u16);
                let scheme = m
                    .scheme
                    .as_ref()
                    .and_then(|s| Scheme::from_name(&s.text))
                    .unwrap_or(Scheme::Dotted);
                let has = |c: &str| m.capabilities.iter().any(|n| n.text == c);
                let capabilities = Capabilities {
                    native_pin: has("native_pin"),
                    downgrade: has("downgrade"),
                    multi_version: has("multi_version"),
                    guarded: has("guarded"),
                };
                let phase = match m.phase.as_ref().map(|p| p.text.as_str()) {
                    Some("authoritative") => Phase::Authoritative,
                    Some("guarded") => Phase::Guarded,
                    _ => Phase::Standard,
                };
                for name in std::iter::once(&m.name).chain(&m.aliases) {
                    if catalog.by_name.insert(name.text.clone(), id).is_some() {
                        self.diagnostics.push(duplicate("manager", name, m.span));
                    }
                }
                catalog.managers.push(Manager {
                    id: m.name.text.clone(),
                    title: m.title.clone().unwrap_or_else(|| m.name.text.clone()),
                    aliases: m.aliases.iter().map(|a| a.text.clone()).collect(),
                    scheme,
                    capabilities,
                    phase,
                    span: m.span,
                });
            }
        }
        catalog
    }

    fn scopes(&mut self, files: &[ParsedFile<'_>]) -> (Option<ast::Name>, ScopeTree) {
        let mut tree = ScopeTree {
            scopes: vec![Scope {
                level: Level::Org,
                name: "org".into(),
                parent: None,
                span: None,
            }],
            by_name: HashMap::new(),
        };
        let mut tenant: Option<ast::Name> = None;
        let declare = |r: &mut Resolver,
                       tree: &mut ScopeTree,
                       level: Level,
                       name: &ast::Name,
                       parent: Option<ScopeId>| {
            if name.text == "org" {
                r.diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateDeclaration,
                        "`org` is the organisation itself",
                        name.span,
                        "reserved name",
                    )
                    .help("choose another name"),
                );
                return None;
            }
            if let Some(&existing) = tree.by_name.get(&name.text) {
                let first = tree.get(existing).span.unwrap_or(name.span);
                let kind = level.keyword();
                r.diagnostics.push(duplicate(kind, name, first));
                return None;
            }
            let id = ScopeId(tree.scopes.len() as u32);
            tree.scopes.push(Scope {
                level,
                name: name.text.clone(),
                parent,
                span: Some(name.span),
            });
            tree.by_name.insert(name.text.clone(), id);
            Some(id)
        };
        let mut any_user_file = None;
        for f in files {
            if !f.is_stdlib && any_user_file.is_none() {
                any_user_file = Some(f.start);
            }
            for item in &f.file.items {
                match item {
                    Item::Tenant(name, _) => match &tenant {
                        Some(first) => self.diagnostics.push(duplicate("tenant", name, first.span)),
                        None => tenant = Some(name.clone()),
                    },
                    Item::Department(d) => {
                        if let Some(dept) =
                            declare(self, &mut tree, Level::Department, &d.name, None)
                        {
                            for team in &d.teams {
                                declare(self, &mut tree, Level::Team, team, Some(dept));
                            }
                        }
                    }
                    Item::Environment(name, _) => {
                        declare(self, &mut tree, Level::Environment, name, None);
                    }
                    Item::DeviceGroup(name, _) => {
                        declare(self, &mut tree, Level::DeviceGroup, name, None);
                    }
                    _ => {}
                }
            }
        }
        if tenant.is_none() {
            if let Some(start) = any_user_file {
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::MissingTenant,
                        "no `tenant` is declared",
                        start,
                        "in this policy directory",
                    )
                    .help("add `tenant NAME` to one file, conventionally scopes.hpl"),
                );
            }
        }
        (tenant, tree)
    }

    /// Resolves `manager:name` to a manager and a pattern.
    fn package(
        &mut self,
        program: &Program,
        p: &ast::PackageRef,
    ) -> Option<(ManagerId, Pattern, String)> {
        let manager = self.manager_name(program, &p.manager)?;
        let scheme = program.catalog.get(manager).scheme;
        let name = &p.package.text;
        let pattern = match name.find('*') {
            None => Pattern::Exact(normalize_name(scheme, name)),
            Some(i) if i == name.len() - 1 => Pattern::Glob(normalize_name(scheme, &name[..i])),
            Some(_) => {
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidTarget,
                        format!("`{name}` is not a valid package pattern"),
                        p.package.span,
                        "`*` only at the end",
                    )
                    .help("a glob matches a name prefix: `npm:*`, `npm:@types/*`"),
                );
                return None;
            }
        };
        Some((
            manager,
            pattern,
            format!("{}:{}", program.catalog.get(manager).id, name),
        ))
    }

    fn sets(&mut self, files: &[ParsedFile<'_>], program: &mut Program) {
        // Declare first, so sets may refer to sets declared later or in other files.
        let mut decls: Vec<&ast::SetDecl> = Vec::new();
        for f in files {
            for item in &f.file.items {
                if let Item::Set(s) = item {
                    if let Some(&i) = program.set_by_name.get(&s.name.text) {
                        self.diagnostics
                            .push(duplicate("set", &s.name, decls[i].name.span));
                        continue;
                    }
                    program.set_by_name.insert(s.name.text.clone(), decls.len());
                    decls.push(s);
                }
            }
        }
        let mut resolved: Vec<Option<Vec<SetMember>>> = vec![None; decls.len()];
        for i in 0..decls.len() {
            let mut visiting = Vec::new();
            self.expand_set(program, &decls, i, &mut resolved, &mut visiting);
        }
        for (decl, members) in decls.iter().zip(resolved) {
            let members = members.unwrap_or_default();
            if decl.members.is_empty() {
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::EmptySet,
                        format!("set `{}` is empty", decl.name.text),
                        decl.span,
                        "no members",
                    )
                    .help("add packages, e.g. `[brew:git, brew:jq]`, or remove the set"),
                );
            }
            program.sets.push(PackageSet {
                name: decl.name.clone(),
                members,
                span: decl.span,
            });
        }
    }

    fn expand_set(
        &mut self,
        program: &Program,
        decls: &[&ast::SetDecl],
        index: usize,
        resolved: &mut Vec<Option<Vec<SetMember>>>,
        visiting: &mut Vec<usize>,
    ) -> Vec<SetMember> {
        if let Some(done) = &resolved[index] {
            return done.clone();
        }
        if visiting.contains(&index) {
            let decl = decls[index];
            self.diagnostics.push(
                Diagnostic::new(
                    Code::UnknownSet,
                    format!("set `{}` contains itself", decl.name.text),
                    decl.name.span,
                    "cycle through this set",
                )
                .help("remove the reference that closes the cycle"),
            );
            return Vec::new();
        }
        visiting.push(index);
        let mut out = Vec::new();
        for member in &decls[index].members {
            match member {
                Target::Package(p) => {
                    if let Some((m, pattern, display)) = self.package(program, p) {
                        out.push((m, pattern, display, p.span));
                    }
                }
                Target::Set(name) => match program.set_by_name.get(&name.text) {
                    Some(&j) => out.extend(self.expand_set(program, decls, j, resolved, visiting)),
                    None => self.unknown_set(program, name),
                },
            }
        }
        visiting.pop();
        resolved[index] = Some(out.clone());
        out
    }

    fn unknown_set(&mut self, program: &Program, name: &ast::Name) {
        let mut d = Diagnostic::new(
            Code::UnknownSet,
            format!("unknown package set `{}`", name.text),
            name.span,
            "no set with this name",
        );
        d = d.did_you_mean_or(
            name.span,
            &name.text,
            program.set_by_name.keys().map(String::as_str),
            "a package is written `manager:name`; a bare name refers to a set",
        );
        self.diagnostics.push(d);
    }

    fn scope_ref(&mut self, program: &Program, r: &ast::ScopeRef) -> Option<ScopeId> {
        let Some(name) = &r.name else {
            return Some(ScopeTree::ORG);
        };
        match program.scopes.by_name.get(&name.text) {
            Some(&id) if program.scopes.get(id).level == r.level => Some(id),
            Some(&id) => {
                let actual = program.scopes.get(id).level.keyword();
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::UnknownScope,
                        format!("`{}` is a {actual}, not a {}", name.text, r.level.keyword()),
                        r.span,
                        format!("no {} named `{}`", r.level.keyword(), name.text),
                    )
                    .help(format!("write `{actual} {}`", name.text))
                    .suggest(
                        r.span,
                        format!("{actual} {}", name.text),
                        format!("replace with `{actual} {}`", name.text),
                    ),
                );
                None
            }
            None => {
                let candidates = program
                    .scopes
                    .scopes
                    .iter()
                    .filter(|s| s.level == r.level)
                    .map(|s| s.name.as_str());
                let mut d = Diagnostic::new(
                    Code::UnknownScope,
                    format!("unknown {} `{}`", r.level.keyword(), name.text),
                    name.span,
                    "not declared",
                );
                d = d.did_you_mean_or(
                    name.span,
                    &name.text,
                    candidates,
                    format!("declare it, e.g. `{} {}`", r.level.keyword(), name.text),
                );
                self.diagnostics.push(d);
                None
            }
        }
    }

    fn policies(&mut self, files: &[ParsedFile<'_>], program: &mut Program) {
        let mut by_name: HashMap<String, Span> = HashMap::new();
        for f in files {
            for item in &f.file.items {
                let Item::Policy(p) = item else { continue };
                if let Some(first) = by_name.get(&p.name.text) {
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::DuplicatePolicy,
                            format!("policy `{}` is declared twice", p.name.text),
                            p.name.span,
                            "second policy with this id",
                        )
                        .related(*first, "first declared here")
                        .help("policy ids must be unique across the directory: rename one, or merge them and bump the version"),
                    );
                    continue;
                }
                by_name.insert(p.name.text.clone(), p.name.span);
                self.policy(program, p);
            }
        }
    }

    fn policy(&mut self, program: &mut Program, p: &ast::Policy) {
        let id = PolicyId(program.policies.len() as u32);
        let mut policy = Policy {
            name: p.name.clone(),
            version: p.version,
            mode: Mode::Observe,
            mode_span: None,
            scopes: Vec::new(),
            rules: Vec::new(),
            toolchains: Vec::new(),
            windows: Vec::new(),
            guards: Vec::new(),
            span: p.span,
            header_span: p.header_span,
        };
        let mut saw_scope = false;
        for stmt in &p.stmts {
            match &stmt.kind {
                StmtKind::Scope(refs) => {
                    saw_scope = true;
                    for r in refs {
                        if let Some(scope) = self.scope_ref(program, r) {
                            if policy.scopes.iter().all(|(s, _)| *s != scope) {
                                policy.scopes.push((scope, r.span));
                            }
                        }
                    }
                }
                StmtKind::Mode(name) => {
                    if let Some(first) = policy.mode_span {
                        self.diagnostics.push(
                            Diagnostic::new(
                                Code::DuplicateSetting,
                                "`mode` is given twice",
                                stmt.span,
                                "second `mode`",
                            )
                            .related(first, "first given here")
                            .help("a policy has one mode; keep one line"),
                        );
                        continue;
                    }
                    policy.mode_span = Some(stmt.span);
                    match Mode::parse(&name.text) {
                        Some(mode) => policy.mode = mode,
                        None => {
                            let mut d = Diagnostic::new(
                                Code::InvalidValue,
                                format!("unknown mode `{}`", name.text),
                                name.span,
                                "expected observe, assist or enforce",
                            );
                            d = d.did_you_mean(
                                name.span,
                                &name.text,
                                ["observe", "assist", "enforce"],
                            );
                            self.diagnostics.push(d);
                        }
                    }
                }
                StmtKind::Rule(rule) => self.rule(program, &mut policy, id, rule, stmt.span),
                StmtKind::Toolchain(t) => {
                    let sources = t
                        .sources
                        .iter()
                        .filter_map(|s| self.manager_name(program, s))
                        .collect();
                    policy.toolchains.push(Toolchain {
                        name: t.name.text.clone(),
                        sources,
                        condition: t.clauses.when.clone(),
                        span: stmt.span,
                    });
                }
                StmtKind::Window(w) => policy.windows.push(w.clone()),
                StmtKind::Guard(g) => match program.catalog.lookup(&g.target.text) {
                    Some(manager) => policy.guards.push(Guard {
                        manager,
                        level: g.level.clone(),
                        condition: g.clauses.when.clone(),
                        span: stmt.span,
                    }),
                    None => {
                        let guarded: Vec<&str> = program
                            .catalog
                            .managers
                            .iter()
                            .filter(|m| m.capabilities.guarded)
                            .flat_map(|m| {
                                std::iter::once(m.id.as_str())
                                    .chain(m.aliases.iter().map(String::as_str))
                            })
                            .collect();
                        let mut d = Diagnostic::new(
                            Code::UnknownGuardTarget,
                            format!("unknown guard target `{}`", g.target.text),
                            g.target.span,
                            "not a guarded action or manager",
                        );
                        d = d.did_you_mean_or(
                            g.target.span,
                            &g.target.text,
                            guarded.iter().copied().chain(program.catalog.names()),
                            "guarded actions: os_update, xcode_clt, firmware, rosetta",
                        );
                        self.diagnostics.push(d);
                    }
                },
            }
        }
        if !saw_scope {
            self.diagnostics.push(
                Diagnostic::new(
                    Code::PolicyWithoutScope,
                    format!("policy `{}` has no scope", p.name.text),
                    p.name.span,
                    "applies to no device",
                )
                .help("add a scope line, e.g. `scope org` or `scope team platform`"),
            );
        }
        program.policies.push(policy);
    }

    /// Looks a manager id or alias up; unknown ones are reported with a suggestion.
    fn manager_name(&mut self, program: &Program, name: &ast::Name) -> Option<ManagerId> {
        let found = program.catalog.lookup(&name.text);
        if found.is_none() {
            let mut d = Diagnostic::new(
                Code::UnknownManager,
                format!("unknown package manager `{}`", name.text),
                name.span,
                "not in the manager catalog",
            );
            d = d.did_you_mean_or(
                name.span,
                &name.text,
                program.catalog.names(),
                "managers are listed in docs/language.md (Managers), e.g. brew, npm, pip, mise",
            );
            self.diagnostics.push(d);
        }
        found
    }

    fn rule(
        &mut self,
        program: &mut Program,
        policy: &mut Policy,
        id: PolicyId,
        rule: &ast::Rule,
        span: Span,
    ) {
        let targets: Vec<(ManagerId, Pattern, String, Span, Option<String>)> = match &rule.target {
            Target::Package(p) => match self.package(program, p) {
                Some((m, pattern, display)) => vec![(m, pattern, display, p.span, None)],
                None => return,
            },
            Target::Set(name) => match program.set_by_name.get(&name.text) {
                Some(&i) => {
                    let set = &program.sets[i];
                    set.members
                        .iter()
                        .map(|(m, pattern, display, span)| {
                            (
                                *m,
                                pattern.clone(),
                                display.clone(),
                                *span,
                                Some(set.name.text.clone()),
                            )
                        })
                        .collect()
                }
                None => {
                    self.unknown_set(program, name);
                    return;
                }
            },
        };
        for (manager, pattern, display, target_span, via_set) in targets {
            if matches!(rule.kind, RuleKind::Require | RuleKind::Pin) && !pattern.is_exact() {
                let mut d = Diagnostic::new(
                    Code::InvalidTarget,
                    format!("`{}` needs an exact package, not the pattern `{display}`", rule.kind.keyword()),
                    target_span,
                    "a glob",
                )
                .help("name the packages one by one (a set of exact packages is fine); globs work with allow and deny");
                if via_set.is_some() {
                    d = d.related(rule.target.span(), "the set is used here");
                }
                self.diagnostics.push(d);
                continue;
            }
            let rule_id = RuleId(program.rules.len() as u32);
            program.rules.push(PackageRule {
                id: rule_id,
                policy: id,
                kind: rule.kind,
                is_final: rule.is_final,
                manager,
                pattern,
                display,
                constraint: rule.constraint.clone(),
                condition: rule.clauses.when.clone(),
                because: rule.clauses.because.as_ref().map(|(s, _)| s.clone()),
                severity: if rule.clauses.warn.is_some() {
                    RuleSeverity::Warn
                } else {
                    RuleSeverity::Error
                },
                span,
                target_span,
                via_set,
            });
            policy.rules.push(rule_id);
        }
    }
}
