//! Stage 3: checks what names alone cannot: version constraints against each manager's
//! scheme, `when` conditions against the device-facts schema, upgrade windows and guards.
//! Produces the typed values later stages use ([`Checked`]).

mod expr;
mod windows;

pub use expr::{type_of, Ty};
pub use windows::{WindowSpec, DAY_NAMES};

use crate::diagnostics::{Code, Diagnostic};
use crate::program::{PolicyId, Program};
use crate::syntax::ast;
use hpl_runtime::version::Constraint;
use std::collections::HashSet;

/// Settings that change what is worth a warning.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// The agent's check-in interval, in minutes: a shorter upgrade window is a warning.
    pub check_in_minutes: u32,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            check_in_minutes: 60,
        }
    }
}

/// What the checker computed, indexed like the program.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Per rule (by `RuleId`): the parsed constraint, `None` when absent or invalid.
    pub constraints: Vec<Option<Constraint>>,
    /// Per policy: its windows that are valid.
    pub windows: Vec<Vec<WindowSpec>>,
}

pub fn check(program: &Program, options: CheckOptions) -> (Checked, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let mut checked = Checked::default();

    // Versions. A constraint shared by the members of a set is reported once per scheme.
    let mut reported = HashSet::new();
    for rule in &program.rules {
        let manager = program.catalog.get(rule.manager);
        let parsed =
            rule.constraint
                .as_ref()
                .and_then(|c| match manager.scheme.parse_constraint(&c.text) {
                    Ok(parsed) => Some(parsed),
                    Err(e) => {
                        if reported.insert((c.span, manager.scheme)) {
                            diagnostics.push(
                                Diagnostic::new(
                                    Code::InvalidConstraint,
                                    format!(
                                        "invalid version constraint `{}` for {}",
                                        c.text, manager.id
                                    ),
                                    c.span,
                                    e.reason.clone(),
                                )
                                .note(format!(
                                    "{} uses the {} version scheme",
                                    manager.id, manager.scheme
                                ))
                                .help(format!(
                                    "{} constraints look like: {}",
                                    manager.scheme,
                                    manager.scheme.example()
                                )),
                            );
                        }
                        None
                    }
                });
        checked.constraints.push(parsed);
    }

    // Conditions.
    let mut seen_conditions = HashSet::new();
    // (cost, span) of every condition the runtime's verifier accepts, for the bundle's ceiling.
    let mut costs: Vec<(u64, crate::source::Span)> = Vec::new();
    let mut check_condition = |e: &ast::Expr, diagnostics: &mut Vec<Diagnostic>| {
        if seen_conditions.insert(e.span) {
            let before = diagnostics.len();
            expr::check_condition(e, diagnostics);
            if diagnostics.len() == before {
                // Every limit the verifier enforces is a diagnostic here, with the span: it
                // runs the very verifier devices run on the code the build would emit.
                let (code, strings) = crate::lower::compile_condition(e);
                match hpl_runtime::vm::verify(&code, strings.len()) {
                    Ok(program) => costs.push((program.cost(), e.span)),
                    Err(err) => diagnostics.push(
                        Diagnostic::new(
                            Code::ConditionTooComplex,
                            format!("the runtime would refuse this condition: {}", err.reason),
                            e.span,
                            "beyond a runtime limit",
                        )
                        .note(format!(
                            "a condition may execute at most {} instructions, list macros counted for {} elements each",
                            hpl_runtime::vm::MAX_CONDITION_COST,
                            hpl_runtime::vm::MAX_COLLECTION
                        ))
                        .help("nest fewer list macros, or split the condition"),
                    ),
                }
            }
        }
    };
    for rule in &program.rules {
        if let Some(c) = &rule.condition {
            check_condition(c, &mut diagnostics);
        }
    }
    for (index, policy) in program.policies.iter().enumerate() {
        for t in &policy.toolchains {
            if let Some(c) = &t.condition {
                check_condition(c, &mut diagnostics);
            }
        }
        for g in &policy.guards {
            if let Some(c) = &g.condition {
                check_condition(c, &mut diagnostics);
            }
            windows::check_guard(program, g, &mut diagnostics);
        }
        let mut specs = Vec::new();
        for w in &policy.windows {
            if let Some(c) = &w.clauses.when {
                check_condition(c, &mut diagnostics);
            }
            if let Some(spec) = windows::check_window(w, options, &mut diagnostics) {
                specs.push(spec);
            }
        }
        let _ = PolicyId(index as u32);
        checked.windows.push(specs);
    }
    let total: u64 = costs.iter().map(|(c, _)| *c).fold(0, u64::saturating_add);
    if total > hpl_runtime::vm::MAX_TOTAL_COST {
        if let Some(&(cost, span)) = costs.iter().max_by_key(|(c, _)| *c) {
            diagnostics.push(
                Diagnostic::new(
                    Code::ConditionTooComplex,
                    format!(
                        "the conditions together may execute {total} instructions per evaluation, above the ceiling {}",
                        hpl_runtime::vm::MAX_TOTAL_COST
                    ),
                    span,
                    format!("the costliest condition ({cost})"),
                )
                .help("simplify the costliest conditions, or share one condition between rules"),
            );
        }
    }
    (checked, diagnostics)
}
