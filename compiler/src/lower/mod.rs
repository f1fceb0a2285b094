//! Stage 5: the checked program becomes a bundle ([`hpl_runtime::bundle::BundleContent`]).
//!
//! Rules are placed per scope binding (one entry per rule and scope, each with its origin), so
//! the runtime only picks the tables of the device's scopes. Conditions become bytecode
//! (`cond`), which the runtime's own verifier then measures (stack bound and cost), so the
//! compiler and the runtime can never disagree on them.
//!
//! Deterministic: tables follow the program's order, which follows the sorted file list, and
//! the string pool is filled in that same order.

mod cond;

use crate::driver::Analysis;
use crate::program::{Mode, Phase, ScopeId};
use crate::source::Span;
use crate::syntax::ast::Level;
use hpl_runtime::bundle::{
    self, BundleContent, ConditionEntry, GuardEntry, ManagerEntry, Manifest, Origin, PolicyEntry,
    RuleEntry, ScopeEntry, ToolchainEntry, WindowEntry,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// What the build adds to the sources.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub bundle_version: u64,
    /// Unix seconds.
    pub issued_at: i64,
    pub expires_at: Option<i64>,
    /// File names in origins are made relative to this directory.
    pub root: Option<std::path::PathBuf>,
}

/// A bug in the compiler: lowering produced something the runtime's verifier rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerError(pub String);

impl std::fmt::Display for LowerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "internal compiler error: {}", self.0)
    }
}

#[derive(Default)]
pub(crate) struct Strings {
    pub(crate) list: Vec<String>,
    index: HashMap<String, u32>,
}

impl Strings {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

use crate::program::{runtime_kind, runtime_level as level};

fn mode(m: Mode) -> bundle::Mode {
    match m {
        Mode::Observe => bundle::Mode::Observe,
        Mode::Assist => bundle::Mode::Assist,
        Mode::Enforce => bundle::Mode::Enforce,
    }
}

/// The hash of the sources that went in: every user file, sorted by name.
pub fn source_hash(analysis: &Analysis, root: Option<&Path>) -> [u8; 32] {
    let mut files: Vec<(String, &str)> = analysis
        .db
        .files()
        .filter(|(_, f)| !f.is_stdlib)
        .map(|(_, f)| (display_name(f, root), f.text.as_str()))
        .collect();
    files.sort();
    let mut h = Sha256::new();
    for (name, text) in files {
        h.update(name.as_bytes());
        h.update([0]);
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().into()
}

fn display_name(f: &crate::source::SourceFile, root: Option<&Path>) -> String {
    match (&f.path, root) {
        (Some(path), Some(root)) => path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_else(|_| f.name.clone()),
        _ => f.name.clone(),
    }
}

/// Compiles one condition on its own: its bytecode and the string table it refers to (for
/// tests that run conditions through the VM directly).
pub fn compile_condition(e: &crate::syntax::ast::Expr) -> (Vec<u8>, Vec<String>) {
    let mut strings = Strings::default();
    let code = cond::CondCompiler::default().compile(e, &mut strings);
    (code, strings.list)
}

/// Lowers a checked program (it must have no errors) to bundle content.
pub fn lower(analysis: &Analysis, options: &BuildOptions) -> Result<BundleContent, LowerError> {
    let p = &analysis.program;
    let mut strings = Strings::default();
    let root = options.root.as_deref();
    let tenant = p.tenant_name().to_string();

    let managers: Vec<ManagerEntry> = p
        .catalog
        .managers
        .iter()
        .map(|m| ManagerEntry {
            id: strings.intern(&m.id),
            scheme: m.scheme,
            capabilities: bundle::Capabilities {
                native_pin: m.capabilities.native_pin,
                downgrade: m.capabilities.downgrade,
                multi_version: m.capabilities.multi_version,
                guarded: m.capabilities.guarded,
            },
            phase: match m.phase {
                Phase::Authoritative => bundle::Phase::Authoritative,
                Phase::Standard => bundle::Phase::Standard,
                Phase::Guarded => bundle::Phase::Guarded,
            },
        })
        .collect();
    let scopes: Vec<ScopeEntry> = p
        .scopes
        .scopes
        .iter()
        .map(|s| ScopeEntry {
            level: level(s.level),
            name: strings.intern(if s.level == Level::Org {
                &tenant
            } else {
                &s.name
            }),
            parent: s.parent.map(|ScopeId(i)| i),
        })
        .collect();
    let policies: Vec<PolicyEntry> = p
        .policies
        .iter()
        .map(|pol| PolicyEntry {
            name: strings.intern(&pol.name.text),
            version: pol.version,
            mode: mode(pol.mode),
        })
        .collect();

    let mut origins: Vec<Origin> = Vec::new();
    let mut origin_index: HashMap<(u32, u32, Span), u32> = HashMap::new();
    let mut file_names: HashMap<u32, u32> = HashMap::new();
    let mut origin = |strings: &mut Strings, policy: u32, scope: u32, span: Span| -> u32 {
        *origin_index
            .entry((policy, scope, span))
            .or_insert_with(|| {
                let file = analysis.db.get(span.file);
                let name = *file_names
                    .entry(span.file.0)
                    .or_insert_with(|| strings.intern(&display_name(file, root)));
                let (line, column) = file.line_col(span.start as usize);
                origins.push(Origin {
                    policy,
                    scope,
                    file: name,
                    line: line as u32,
                    column: column as u32,
                });
                origins.len() as u32 - 1
            })
    };

    let mut compiler = cond::CondCompiler::default();
    let mut conditions: Vec<ConditionEntry> = Vec::new();
    let mut condition_index: HashMap<Span, u32> = HashMap::new();
    let mut condition = |strings: &mut Strings,
                         expr: Option<&crate::syntax::ast::Expr>,
                         origin: u32|
     -> Option<u32> {
        let e = expr?;
        Some(*condition_index.entry(e.span).or_insert_with(|| {
            let code = compiler.compile(e, strings);
            let source = strings.intern(&crate::fmt::expr(e));
            conditions.push(ConditionEntry {
                code,
                max_stack: 0,
                cost: 0,
                source,
                origin,
            });
            conditions.len() as u32 - 1
        }))
    };

    let mut rules: Vec<RuleEntry> = Vec::new();
    let mut scope_rules: Vec<Vec<u32>> = vec![Vec::new(); scopes.len()];
    let mut toolchains = Vec::new();
    let mut windows = Vec::new();
    let mut guards = Vec::new();
    for (pi, pol) in p.policies.iter().enumerate() {
        let pi = pi as u32;
        for &(ScopeId(scope), _) in &pol.scopes {
            for &rid in &pol.rules {
                let r = p.rule(rid);
                let o = origin(&mut strings, pi, scope, r.span);
                let (glob, pattern) = match &r.pattern {
                    crate::program::Pattern::Exact(n) => (false, n.as_str()),
                    crate::program::Pattern::Glob(n) => (true, n.as_str()),
                };
                let entry = RuleEntry {
                    kind: runtime_kind(r.kind),
                    is_final: r.is_final,
                    warn: r.severity == crate::program::RuleSeverity::Warn,
                    manager: u32::from(r.manager.0),
                    glob,
                    pattern: strings.intern(pattern),
                    display: strings.intern(&r.display),
                    constraint: r.constraint.as_ref().map(|c| strings.intern(&c.text)),
                    condition: condition(&mut strings, r.condition.as_ref(), o),
                    because: r.because.as_ref().map(|b| strings.intern(b)),
                    origin: o,
                };
                scope_rules[scope as usize].push(rules.len() as u32);
                rules.push(entry);
            }
            for t in &pol.toolchains {
                let o = origin(&mut strings, pi, scope, t.span);
                toolchains.push(ToolchainEntry {
                    name: strings.intern(&t.name),
                    sources: t.sources.iter().map(|m| u32::from(m.0)).collect(),
                    condition: condition(&mut strings, t.condition.as_ref(), o),
                    origin: o,
                });
            }
            for g in &pol.guards {
                let o = origin(&mut strings, pi, scope, g.span);
                guards.push(GuardEntry {
                    manager: u32::from(g.manager.0),
                    level: match g.level.text.as_str() {
                        "deny" => bundle::GuardLevel::Deny,
                        "auto" => bundle::GuardLevel::Auto,
                        _ => bundle::GuardLevel::Confirm,
                    },
                    condition: condition(&mut strings, g.condition.as_ref(), o),
                    origin: o,
                });
            }
        }
        let first_scope = pol.scopes.first().map_or(0, |&(ScopeId(s), _)| s);
        for (w, spec) in pol.windows.iter().zip(
            analysis
                .checked
                .windows
                .get(pi as usize)
                .into_iter()
                .flatten(),
        ) {
            let span = w.days_span;
            let o = origin(&mut strings, pi, first_scope, span);
            windows.push(WindowEntry {
                policy: pi,
                days: spec
                    .days
                    .iter()
                    .enumerate()
                    .fold(0u8, |acc, (i, &on)| acc | (u8::from(on) << i)),
                start_minute: spec.start_minute,
                end_minute: spec.end_minute,
                zone: spec.zone.as_ref().map(|z| strings.intern(z)),
                condition: condition(&mut strings, w.clauses.when.as_ref(), o),
            });
        }
    }

    // The runtime's verifier measures every condition: the bounds in the bundle are its own.
    let mut cost_bound: u64 = 0;
    for (i, c) in conditions.iter_mut().enumerate() {
        let program = hpl_runtime::vm::verify(&c.code, strings.list.len()).map_err(|e| {
            LowerError(format!(
                "condition {i} (`{}`) fails verification at byte {}: {}",
                strings.list[c.source as usize], e.offset, e.reason
            ))
        })?;
        c.max_stack = program.max_stack();
        c.cost = program.cost();
        cost_bound = cost_bound.saturating_add(program.cost());
    }

    let manifest = Manifest {
        tenant,
        bundle_version: options.bundle_version,
        policies: p
            .policies
            .iter()
            .map(|pol| (pol.name.text.clone(), pol.version))
            .collect(),
        issued_at: options.issued_at,
        expires_at: options.expires_at,
        compiler_version: format!("hpl {}", env!("CARGO_PKG_VERSION")),
        source_hash: source_hash(analysis, root),
    };
    Ok(BundleContent {
        manifest,
        strings: strings.list,
        managers,
        scopes,
        policies,
        origins,
        rules,
        scope_rules,
        conditions,
        toolchains,
        windows,
        guards,
        cost_bound,
    })
}
