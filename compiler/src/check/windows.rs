//! Upgrade windows and guards.

use super::CheckOptions;
use crate::diagnostics::{Code, Diagnostic};
use crate::program::{Guard, Program};
use crate::suggest::did_you_mean;
use crate::syntax::ast;

pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_WORDS: [&str; 10] = [
    "mon", "tue", "wed", "thu", "fri", "sat", "sun", "daily", "weekdays", "weekends",
];

/// A checked window: weekdays (Monday first), a half-open range of minutes after midnight
/// (`end <= start` crosses midnight; `end` may be 1440, midnight at the end of the day), and an IANA zone (`None`: the device's local zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    pub days: [bool; 7],
    pub start_minute: u16,
    pub end_minute: u16,
    pub zone: Option<String>,
}

impl WindowSpec {
    /// How long the window stays open each time it opens, in minutes.
    pub fn duration_minutes(&self) -> u32 {
        let (s, e) = (u32::from(self.start_minute), u32::from(self.end_minute));
        if e > s {
            e - s
        } else {
            1440 - s + e
        }
    }
}

fn day_index(name: &ast::Name, diagnostics: &mut Vec<Diagnostic>) -> Option<usize> {
    let found = DAY_NAMES.iter().position(|d| *d == name.text);
    if found.is_none() {
        let mut d = Diagnostic::new(
            Code::InvalidValue,
            format!("`{}` is not a day", name.text),
            name.span,
            "expected mon, tue, wed, thu, fri, sat, sun, daily, weekdays or weekends",
        );
        d = d.did_you_mean(name.span, &name.text, DAY_WORDS);
        diagnostics.push(d);
    }
    found
}

fn minutes(time: &ast::Name, allow_24: bool, diagnostics: &mut Vec<Diagnostic>) -> Option<u16> {
    let (h, m) = time.text.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let valid = (h < 24 && m < 60) || (allow_24 && h == 24 && m == 0);
    if !valid {
        diagnostics.push(
            Diagnostic::new(
                Code::InvalidWindow,
                format!("`{}` is not a time of day", time.text),
                time.span,
                "invalid time",
            )
            .help("use 24-hour times from 00:00 to 24:00, e.g. 01:00-05:00"),
        );
        return None;
    }
    Some(h * 60 + m)
}

pub(super) fn check_window(
    w: &ast::Window,
    options: CheckOptions,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<WindowSpec> {
    let mut days = [false; 7];
    let mut ok = true;
    for span in &w.days {
        match (span.first.text.as_str(), &span.last) {
            ("daily", None) => days = [true; 7],
            ("weekdays", None) => (0..5).for_each(|d| days[d] = true),
            ("weekends", None) => (5..7).for_each(|d| days[d] = true),
            (_, last) => {
                let first = day_index(&span.first, diagnostics);
                let last = match last {
                    Some(l) => day_index(l, diagnostics),
                    None => first,
                };
                match (first, last) {
                    (Some(a), Some(b)) => {
                        // `fri-mon` wraps around the weekend.
                        let mut d = a;
                        loop {
                            days[d] = true;
                            if d == b {
                                break;
                            }
                            d = (d + 1) % 7;
                        }
                    }
                    _ => ok = false,
                }
            }
        }
    }
    let start = minutes(&w.start, false, diagnostics);
    let end = minutes(&w.end, true, diagnostics);
    let zone = match &w.zone {
        None => None,
        Some((name, span)) => {
            if jiff::tz::TimeZone::get(name).is_err() {
                let mut d = Diagnostic::new(
                    Code::UnknownTimeZone,
                    format!("unknown time zone \"{name}\""),
                    *span,
                    "not an IANA time zone",
                );
                let names = jiff::tz::db()
                    .available()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>();
                if let Some(s) = did_you_mean(name, names.iter().map(String::as_str)) {
                    d = d.help(format!("did you mean \"{s}\"?")).suggest(
                        *span,
                        format!("\"{s}\""),
                        format!("replace with \"{s}\""),
                    );
                } else {
                    d = d.help("use an IANA name such as \"Europe/Berlin\" or \"UTC\", or `local`");
                }
                diagnostics.push(d);
                ok = false;
            }
            Some(name.clone())
        }
    };
    let (Some(start), Some(end)) = (start, end) else {
        return None;
    };
    if !ok {
        return None;
    }
    let spec = WindowSpec {
        days,
        start_minute: start,
        end_minute: end % 1440,
        zone,
    };
    let span = w.start.span.to(w.end.span);
    if start == end {
        diagnostics.push(
            Diagnostic::new(
                Code::WindowNeverOpens,
                "this upgrade window never opens",
                span,
                "starts and ends at the same time",
            )
            .help("windows are half-open [start, end): give it a duration, e.g. 01:00-05:00"),
        );
    } else if spec.duration_minutes() < options.check_in_minutes {
        diagnostics.push(
            Diagnostic::new(
                Code::WindowTooShort,
                format!(
                    "this upgrade window is open {} minutes, shorter than the {}-minute check-in interval",
                    spec.duration_minutes(),
                    options.check_in_minutes
                ),
                span,
                "too short",
            )
            .note("an agent may not check in while the window is open, so remediation may never run")
            .help(format!("make the window at least {} minutes long", options.check_in_minutes)),
        );
    }
    Some(spec)
}

pub(super) fn check_guard(program: &Program, g: &Guard, diagnostics: &mut Vec<Diagnostic>) {
    let manager = program.catalog.get(g.manager);
    match g.level.text.as_str() {
        "confirm" | "deny" => {}
        "auto" if manager.capabilities.guarded => diagnostics.push(
            Diagnostic::new(
                Code::GuardAutomatic,
                format!(
                    "`{}` is a guarded action and cannot be made automatic",
                    manager.id
                ),
                g.level.span,
                "`auto` lowers the safety floor",
            )
            .note("guarded actions always need explicit confirmation, in every mode")
            .help("use `confirm` (the floor) or `deny` (stricter)")
            .suggest(g.level.span, "confirm", "replace with `confirm`"),
        ),
        "auto" => {}
        other => {
            let mut d = Diagnostic::new(
                Code::InvalidValue,
                format!("unknown guard level `{other}`"),
                g.level.span,
                "expected confirm, deny or auto",
            );
            d = d.did_you_mean(g.level.span, other, ["confirm", "deny", "auto"]);
            diagnostics.push(d);
        }
    }
}
