//! `hpl diff` for people (terminal) and for pull requests (markdown).

use super::effective::Change;
use super::impact::Affected;
use super::Diff;
use std::collections::BTreeMap;
use std::fmt::Write as _;

fn fields(c: &Change) -> String {
    match c {
        Change::Added { entry } | Change::Removed { entry } => entry
            .fields
            .iter()
            .filter(|(k, _)| **k != "order")
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        Change::Changed { changes, .. } => changes
            .iter()
            .map(|(k, (a, b))| {
                format!(
                    "{k}: {} → {}",
                    a.as_deref().unwrap_or("—"),
                    b.as_deref().unwrap_or("—")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn mark(c: &Change) -> &'static str {
    match c {
        Change::Added { .. } => "+",
        Change::Removed { .. } => "-",
        Change::Changed { .. } => "~",
    }
}

/// Changes grouped by where they apply: the scope (or the policy, for policy-wide entries).
fn grouped(d: &Diff) -> BTreeMap<(u8, String), Vec<&Change>> {
    let mut g: BTreeMap<(u8, String), Vec<&Change>> = BTreeMap::new();
    for c in &d.changes {
        let e = c.entry();
        let key = match e.what {
            "scope" => (0, "scopes".to_string()),
            "policy" | "window" => (1, format!("policy {}", e.policy)),
            _ => (
                2 + crate::report::html::scope_order(&e.scope).0,
                format!("{} (policy {})", e.scope, e.policy),
            ),
        };
        g.entry(key).or_default().push(c);
    }
    g
}

fn affected_lines(title: &str, map: &BTreeMap<String, Affected>, md: bool, w: &mut String) {
    if map.is_empty() {
        return;
    }
    let _ = writeln!(w, "{}{title}", if md { "\n**" } else { "\n  " });
    if md {
        w.truncate(w.trim_end().len());
        w.push_str("**\n\n| change | devices | for example |\n|---|---:|---|\n");
    }
    let mut rows: Vec<(&String, &Affected)> = map.iter().collect();
    rows.sort_by(|a, b| b.1.devices.cmp(&a.1.devices).then_with(|| a.0.cmp(b.0)));
    for (k, a) in rows.into_iter().take(30) {
        if md {
            let _ = writeln!(
                w,
                "| `{}` | {} | {} |",
                k.replace('|', "\\|"),
                a.devices,
                a.sample.join(", ")
            );
        } else {
            let _ = writeln!(
                w,
                "    {:>6}  {k}   e.g. {}",
                a.devices,
                a.sample.join(", ")
            );
        }
    }
}

pub fn human(d: &Diff) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "hpl diff {} → {}", d.old, d.new);
    if d.is_empty() {
        let _ = writeln!(w, "\nno change: the effective policy is the same");
        if let Some(i) = &d.impact {
            let _ = writeln!(w, "{} devices evaluated, none changes", i.devices);
        }
        return s;
    }
    if d.changes.is_empty() {
        let _ = writeln!(w, "\nthe effective policy is the same");
    }
    for ((_, title), changes) in grouped(d) {
        let _ = writeln!(w, "\n{title}");
        for c in changes {
            let e = c.entry();
            let at = if e.source.is_empty() {
                String::new()
            } else {
                format!("  ({})", e.source)
            };
            let _ = writeln!(w, "  {} {}{at}", mark(c), e.item);
            let f = fields(c);
            if !f.is_empty() {
                let _ = writeln!(w, "      {f}");
            }
        }
    }
    if !d.winners.is_empty() {
        let _ = writeln!(
            w,
            "\nwinners that change ({} scope paths compared; a device with nothing installed and no facts)",
            d.scope_paths
        );
        for c in &d.winners {
            let show = |x: &Option<super::impact::Winner>| {
                x.as_ref().map_or("no rule".to_string(), |w| {
                    format!("{} {}", w.rule, w.source)
                })
            };
            let _ = writeln!(w, "  {} on {} scope paths", c.package, c.paths);
            let _ = writeln!(w, "      was: {}", show(&c.old));
            let _ = writeln!(w, "      now: {}", show(&c.new));
            let _ = writeln!(w, "      e.g. {}", c.sample.join("; "));
        }
    }
    if let Some(i) = &d.impact {
        let _ = writeln!(
            w,
            "\nimpact: {} of {} devices change{}",
            i.changed,
            i.devices,
            if i.unreadable > 0 {
                format!(" ({} inventories could not be read)", i.unreadable)
            } else {
                String::new()
            }
        );
        affected_lines("state", &i.states, false, w);
        affected_lines("violations", &i.violations, false, w);
        affected_lines("remediation", &i.remediation, false, w);
        if !i.by_ring.is_empty() {
            let _ = writeln!(w, "\n  by ring");
            for (r, n) in &i.by_ring {
                let _ = writeln!(w, "    {n:>6}  {r}");
            }
        }
        if !i.by_scope.is_empty() {
            let _ = writeln!(w, "\n  by scope");
            let mut scopes: Vec<_> = i.by_scope.iter().collect();
            scopes.sort_by(|a, b| {
                crate::report::html::scope_order(a.0).cmp(&crate::report::html::scope_order(b.0))
            });
            for (sc, n) in scopes {
                let _ = writeln!(w, "    {n:>6}  {sc}");
            }
        }
    }
    s
}

/// For a pull-request comment.
pub fn markdown(d: &Diff) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "### hpl diff: `{}` → `{}`\n", d.old, d.new);
    if d.is_empty() {
        let _ = writeln!(w, "No change: the effective policy is the same.");
        if let Some(i) = &d.impact {
            let _ = writeln!(w, "\n{} devices evaluated, none changes.", i.devices);
        }
        return s;
    }
    if let Some(i) = &d.impact {
        let _ = writeln!(
            w,
            "**{} of {} devices change** ({:.1}%).\n",
            i.changed,
            i.devices,
            if i.devices == 0 {
                0.0
            } else {
                i.changed as f64 * 100.0 / i.devices as f64
            }
        );
    }
    let _ = writeln!(
        w,
        "{} change{} to the effective policy.\n",
        d.changes.len(),
        if d.changes.len() == 1 { "" } else { "s" }
    );
    if !d.changes.is_empty() {
        let _ = writeln!(w, "| | where | what | how |\n|---|---|---|---|");
        for ((_, title), changes) in grouped(d) {
            for c in changes {
                let e = c.entry();
                let src = if e.source.is_empty() {
                    String::new()
                } else {
                    format!(" `{}`", e.source)
                };
                let _ = writeln!(
                    w,
                    "| {} | {} | `{}`{src} | {} |",
                    match c {
                        Change::Added { .. } => "added",
                        Change::Removed { .. } => "removed",
                        Change::Changed { .. } => "changed",
                    },
                    title,
                    e.item.replace('|', "\\|"),
                    fields(c).replace('|', "\\|")
                );
            }
        }
    }
    if !d.winners.is_empty() {
        let _ = writeln!(
            w,
            "\n**Winners that change** ({} scope paths compared)\n\n| package | was | now | scope paths |\n|---|---|---|---:|",
            d.scope_paths
        );
        for c in &d.winners {
            let show = |x: &Option<super::impact::Winner>| {
                x.as_ref().map_or("no rule".to_string(), |w| {
                    format!("`{}`", w.rule.replace('|', "\\|"))
                })
            };
            let _ = writeln!(
                w,
                "| `{}` | {} | {} | {} |",
                c.package,
                show(&c.old),
                show(&c.new),
                c.paths
            );
        }
    }
    if let Some(i) = &d.impact {
        affected_lines("State changes", &i.states, true, w);
        affected_lines("Violations", &i.violations, true, w);
        if !i.by_ring.is_empty() {
            let _ = writeln!(
                w,
                "\n**By ring**\n\n| ring | devices that change |\n|---|---:|"
            );
            for (r, n) in &i.by_ring {
                let _ = writeln!(w, "| {r} | {n} |");
            }
        }
    }
    s
}
