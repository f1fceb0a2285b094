//! `hpl why`: the decision trace of one package on one device.
//!
//! The trace is the runtime's ([`hpl_runtime::trace`], recorded by the evaluation as it
//! decides); this module finds the inputs, splits each `when` into its clauses (each one
//! compiled and run on the same VM, against the same device facts), and prints.

use crate::device::{device_inputs, Inputs, Source};
use crate::exit::Exit;
use crate::io::Out;
use clap::{Args, ValueEnum};
use hpl_compiler::driver::Analysis;
use hpl_compiler::source::FileId;
use hpl_compiler::syntax::ast::{BinaryOp, Expr, ExprKind};
use hpl_runtime::record::RuleOrigin;
use hpl_runtime::trace::{Applicability, ConditionValue, Role, Trace, TracedRule};
use hpl_runtime::vm::Value;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum WhyFormat {
    Human,
    Json,
}

/// Why is this package decided as it is on this device? Every rule that names it, which
/// apply, which precedence step chose the winner, the pin, the violation and the plan step.
#[derive(Args, Debug)]
pub struct WhyArgs {
    /// MANAGER:NAME (`homebrew_formula:terraform`, `brew:terraform`); a bare NAME when only
    /// one manager of the inventory lists it.
    pub package: String,
    #[command(flatten)]
    pub source: Source,
    /// The device inventory (hpl.inventory.v1 JSON).
    #[arg(long, required = true)]
    pub inventory: PathBuf,
    /// Also authorize this action and show the reasoning, e.g.
    /// {"action":"upgrade","manager":"homebrew_formula","package":"terraform","to":"1.10.0"}
    #[arg(long, value_name = "JSON")]
    pub action: Option<String>,
    /// Evaluation time (RFC 3339). Default: now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: WhyFormat,
}

/// One clause of a `when` and its value.
#[derive(Debug, Clone, Serialize)]
pub struct Clause {
    pub source: String,
    pub value: String,
}

#[derive(Serialize)]
struct WhyJson<'a> {
    schema: &'static str,
    device_id: &'a str,
    #[serde(flatten)]
    trace: &'a Trace,
    /// Per rule (same order as `rules`): the clauses of its `when`.
    clauses: Vec<Vec<Clause>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<&'a hpl_runtime::enforce::Decision>,
}

pub fn why(args: &WhyArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let Some(Inputs {
        now,
        device,
        inventory,
        analysis,
    }) = device_inputs(&args.source, &args.inventory, args.at.as_deref(), err)?
    else {
        return Ok(Exit::Failure);
    };
    let Some((manager, name)) = split_package(&args.package, &inventory, err)? else {
        return Ok(Exit::Usage);
    };
    let (trace, _record) = match device.trace(&inventory, now, &manager, &name) {
        Ok(t) => t,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(Exit::Failure);
        }
    };
    let authorization = args
        .action
        .as_deref()
        .map(|a| device.authorize_json(&inventory, a, now));
    let clauses: Vec<Vec<Clause>> = trace.rules.iter().map(|r| clauses(&trace, r)).collect();
    match args.format {
        WhyFormat::Json => {
            let json = WhyJson {
                schema: "hpl.why.v1",
                device_id: &inventory.device_id,
                trace: &trace,
                clauses,
                authorization: authorization.as_ref(),
            };
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            )?;
        }
        WhyFormat::Human => {
            let text = human(
                &trace,
                &inventory.device_id,
                &clauses,
                authorization.as_ref(),
                analysis.as_ref(),
            );
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(Exit::Success)
}

/// `MANAGER:NAME` with the manager's alias resolved by the catalog; a bare name is looked up
/// in the inventory.
fn split_package(
    text: &str,
    inventory: &hpl_runtime::inventory::Inventory,
    err: Out<'_>,
) -> std::io::Result<Option<(String, String)>> {
    let catalog = catalog();
    if let Some((m, n)) = text.split_once(':') {
        let Some(id) = catalog.lookup(m) else {
            let names: Vec<&str> = catalog.names().collect();
            let hint = hpl_compiler::suggest::did_you_mean(m, names)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            writeln!(err, "error: unknown manager `{m}`{hint}")?;
            return Ok(None);
        };
        return Ok(Some((catalog.get(id).id.clone(), n.to_string())));
    }
    let listing: Vec<&str> = inventory
        .managers
        .iter()
        .filter(|m| m.packages.iter().any(|p| p.name == text))
        .map(|m| m.id.as_str())
        .collect();
    match listing.as_slice() {
        [one] => Ok(Some((one.to_string(), text.to_string()))),
        [] => {
            writeln!(
                err,
                "error: the inventory lists no package `{text}`; name its manager: MANAGER:{text}"
            )?;
            Ok(None)
        }
        many => {
            writeln!(
                err,
                "error: `{text}` is listed by several managers ({}); name one: {}:{text}",
                many.join(", "),
                many[0]
            )?;
            Ok(None)
        }
    }
}

/// The manager catalog (the compiler's stdlib), for ids and aliases.
fn catalog() -> hpl_compiler::program::Catalog {
    hpl_compiler::driver::analyze_sources(Vec::new(), Default::default())
        .program
        .catalog
}

/// The top-level clauses of a rule's `when` (split at `&&` and `||`), each compiled and run on
/// the runtime's VM against this device. Empty when the rule has no condition or it was not
/// evaluated.
fn clauses(trace: &Trace, rule: &TracedRule) -> Vec<Clause> {
    let Some(condition) = &rule.condition else {
        return Vec::new();
    };
    if condition.value == ConditionValue::NotEvaluated {
        return Vec::new();
    }
    let Ok(expr) = hpl_compiler::syntax::parse_expr(FileId(0), &condition.source) else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    split(&expr, &mut parts);
    if parts.len() < 2 {
        return Vec::new();
    }
    parts
        .into_iter()
        .map(|e| {
            let source = condition
                .source
                .get(e.span.range())
                .unwrap_or("")
                .trim()
                .to_string();
            let (code, strings) = hpl_compiler::lower::compile_condition(e);
            let value = match hpl_runtime::vm::verify(&code, strings.len()) {
                Ok(program) => show(&trace.evaluate_clause(&program, &strings)),
                Err(e) => format!("(not evaluated: {e:?})"),
            };
            Clause { source, value }
        })
        .collect()
}

fn split<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Binary(BinaryOp::And | BinaryOp::Or, l, r) => {
            split(l, out);
            split(r, out);
        }
        _ => out.push(e),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Str(s) => format!("{s:?}"),
        Value::Version(v) => v.to_string(),
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k:?}: {}", show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Error(e) => format!("error: {}", e.as_str()),
    }
}

/// The line of source a rule comes from, when the policy was compiled from a directory.
fn snippet(analysis: Option<&Analysis>, origin: &RuleOrigin) -> Option<(usize, String)> {
    let analysis = analysis?;
    let mut parts = origin.source.rsplitn(3, ':');
    let (_col, line, file) = (parts.next()?, parts.next()?, parts.next()?);
    let line: usize = line.parse().ok()?;
    let (_, f) = analysis.db.files().find(|(_, f)| {
        // Origins name files relative to the policy directory; the sources, as given.
        !f.is_stdlib
            && (f.name == file || f.name.strip_suffix(file).is_some_and(|p| p.ends_with('/')))
    })?;
    let text = f.text.lines().nth(line.checked_sub(1)?)?;
    Some((line, text.trim_end().to_string()))
}

/// `require terraform >= 1.5`: the rule as written, without its manager (the trace is of one).
fn describe(rule: &TracedRule) -> String {
    let mut s = format!("{} {}", rule.kind.as_str(), rule.target);
    if let Some(c) = &rule.constraint {
        let _ = write!(s, " {c}");
    }
    s
}

fn role_text(rule: &TracedRule) -> String {
    match (&rule.applicability, &rule.role) {
        (_, Some(Role::Decides)) => "decides".into(),
        (_, Some(Role::OutOfRange)) => "out of range".into(),
        (_, Some(Role::Incomparable)) => "incomparable".into(),
        (_, Some(Role::Outranked { by })) => format!("outranked ({})", by.as_str()),
        (_, Some(Role::PinHolds)) => "holds".into(),
        (_, Some(Role::PinOutranked { by })) => format!("outranked ({})", by.as_str()),
        (_, Some(Role::PinSkipped)) => "set aside".into(),
        (_, Some(Role::NotAsked)) => "not asked".into(),
        (Applicability::Yes, None) => "applies".into(),
        (Applicability::NotInScope, _) => "not in scope".into(),
        (Applicability::OtherBinding { .. }, _) => "other binding".into(),
        (Applicability::ConditionFalse, _) => "when false".into(),
        (Applicability::ConditionUnknown, _) => "when unknown".into(),
        (Applicability::VersionUnreadable, _) => "version unreadable".into(),
    }
}

fn explain_role(rule: &TracedRule, decider: Option<&TracedRule>) -> Option<String> {
    let d = decider.map(|d| format!("{} ({})", describe(d), d.rule.source));
    Some(match (&rule.applicability, &rule.role) {
        (_, Some(Role::Outranked { by })) => {
            let d = d?;
            match by {
                hpl_runtime::precedence::DecidedBy::FinalDeny => {
                    format!("a final deny decides first: {d}")
                }
                hpl_runtime::precedence::DecidedBy::Severity => {
                    format!("an error-severity final deny comes before a `warn` one: {d}")
                }
                hpl_runtime::precedence::DecidedBy::Level => {
                    format!("a more specific scope decides: {d}")
                }
                hpl_runtime::precedence::DecidedBy::Matcher => {
                    format!("a more specific name decides: {d}")
                }
                hpl_runtime::precedence::DecidedBy::Kind => {
                    format!("at equal level and matcher, deny > require > allow: {d}")
                }
                hpl_runtime::precedence::DecidedBy::Tie => {
                    format!("tie broken by (policy id, position): {d}")
                }
            }
        }
        (_, Some(Role::PinOutranked { by })) => {
            format!("a more specific pin holds ({})", by.as_str())
        }
        (_, Some(Role::PinSkipped)) => "a deny decides: remove, never pin and remove".into(),
        (_, Some(Role::OutOfRange)) => "the installed version is not in its range".into(),
        (_, Some(Role::Incomparable)) => {
            "the version cannot be compared with its range: unknown".into()
        }
        (_, Some(Role::NotAsked)) => "nothing to decide: the package is not installed".into(),
        (Applicability::OtherBinding { scope }, _) => {
            format!("the rule applies through its more specific binding at {scope}")
        }
        (Applicability::VersionUnreadable, _) => {
            "it needs the installed version, which cannot be read".into()
        }
        _ => return None,
    })
}

/// The trace for people: what decided, each rule with its standing, the pin, the violation
/// and the plan step.
pub fn human(
    trace: &Trace,
    device_id: &str,
    clauses: &[Vec<Clause>],
    authorization: Option<&hpl_runtime::enforce::Decision>,
    analysis: Option<&Analysis>,
) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "{}:{} on {device_id}  ({})",
        trace.manager,
        trace.package,
        trace.scopes.join(" › ")
    );
    let installed = match &trace.installed {
        Some(v) => format!("installed {}", v.join(", ")),
        None if trace.manager_inventoried => "not installed".into(),
        None => format!("{} is not in the inventory", trace.manager),
    };
    let _ = writeln!(w, "{installed}; device {}", trace.state.as_str());
    if let Some(v) = &trace.unreadable_version {
        let _ = writeln!(w, "the installed version cannot be read: {v}");
    }
    let decider = trace.decider();
    match decider {
        Some(d) => {
            let _ = writeln!(
                w,
                "\ndecided by {} ({}, {} v{}, {})",
                describe(d),
                d.rule.source,
                d.rule.policy,
                d.rule.policy_version,
                d.rule.scope,
            );
        }
        None if trace.rules.is_empty() => {
            let _ = writeln!(w, "\nno rule names this package: nothing to decide");
        }
        None => {
            let _ = writeln!(w, "\nno rule decides this package on this device");
        }
    }
    type Keep = fn(&TracedRule) -> bool;
    let sections: [(&str, Keep); 3] = [
        ("rules that apply, in precedence order", |r| {
            r.applicability == Applicability::Yes
                && !matches!(
                    r.role,
                    Some(Role::PinHolds | Role::PinOutranked { .. } | Role::PinSkipped)
                )
        }),
        ("pins", |r| {
            matches!(
                r.role,
                Some(Role::PinHolds | Role::PinOutranked { .. } | Role::PinSkipped)
            )
        }),
        ("rules that do not apply here", |r| {
            r.applicability != Applicability::Yes
        }),
    ];
    for (title, keep) in sections {
        let rules: Vec<(usize, &TracedRule)> = trace
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| keep(r))
            .collect();
        if rules.is_empty() {
            continue;
        }
        let _ = writeln!(w, "\n{title}");
        for (i, r) in rules {
            let mark = match r.role {
                Some(Role::Decides | Role::PinHolds) => "→",
                _ if r.applicability == Applicability::Yes => "·",
                _ => "-",
            };
            let _ = writeln!(
                w,
                "  {mark} {:<18} {:<28} {}  ({} v{}, {})",
                role_text(r),
                describe(r),
                r.rule.source,
                r.rule.policy,
                r.rule.policy_version,
                r.rule.scope,
            );
            if let Some((line, text)) = snippet(analysis, &r.rule) {
                let _ = writeln!(w, "    {line:>5} │ {}", text.trim_start());
            }
            if let Some(c) = &r.condition {
                let value = match &c.value {
                    ConditionValue::True => "true".to_string(),
                    ConditionValue::False => "false".to_string(),
                    ConditionValue::Error(e) => format!("error: {e}"),
                    ConditionValue::NotEvaluated => "not evaluated".to_string(),
                };
                let _ = writeln!(w, "          when {} = {value}", c.source);
                for clause in &clauses[i] {
                    let _ = writeln!(w, "            {} = {}", clause.source, clause.value);
                }
            }
            if let Some(because) = &r.because {
                let _ = writeln!(w, "          because {because:?}");
            }
            if let Some(why) = explain_role(r, decider) {
                let _ = writeln!(w, "          {why}");
            }
            if let Some(note) = &r.note {
                let _ = writeln!(w, "          note: {note}");
            }
        }
    }
    if !trace.violations.is_empty() {
        let _ = writeln!(w, "\nviolation");
        for v in &trace.violations {
            let category = v.category.as_str();
            let _ = writeln!(
                w,
                "  {} {category}: expected {}, found {}  → {}  ({})",
                if v.severity == hpl_runtime::record::Severity::Error {
                    "✗"
                } else {
                    "!"
                },
                v.expected,
                v.found.as_deref().unwrap_or("nothing"),
                v.action,
                v.rule.source
            );
        }
    }
    if !trace.remediation.is_empty() {
        let _ = writeln!(w, "\nremediation");
        for x in &trace.remediation {
            let to =
                x.to.as_deref()
                    .map(|t| format!(" to {t}"))
                    .unwrap_or_default();
            let when = if x.manual {
                "manual".to_string()
            } else if x.automatic {
                "automatic now".to_string()
            } else if let Some(t) = &x.not_before {
                format!("automatic from {t}")
            } else {
                "needs confirmation".to_string()
            };
            let _ = writeln!(
                w,
                "  {} {}:{}{to}  ({}, {when})",
                x.action, x.manager, x.package, x.mode
            );
        }
    }
    if !trace.unknown_reasons.is_empty() {
        let _ = writeln!(w, "\nunknown");
        for u in &trace.unknown_reasons {
            let _ = writeln!(w, "  ? {}: {}", u.code, u.message);
        }
    }
    if let Some(a) = authorization {
        let _ = writeln!(w, "\nauthorization: {}", a.decision.as_str());
        let _ = writeln!(w, "  {}", a.reason);
        if let Some(r) = &a.rule {
            let _ = writeln!(
                w,
                "  rule: {} v{}, {}, {}",
                r.policy, r.policy_version, r.scope, r.source
            );
            if let Some((line, text)) = snippet(analysis, r) {
                let _ = writeln!(w, "      {line:>4} │ {}", text.trim_start());
            }
        }
        for p in &a.packages {
            let _ = writeln!(
                w,
                "  {} {}: {} — {}",
                p.step.as_str(),
                p.package,
                p.decision.as_str(),
                p.reason
            );
        }
    }
    s
}
