//! rustup toolchain channels.

use super::{DottedVersion, Scheme, VersionError};
use std::cmp::Ordering;
use std::fmt;

/// A rustup toolchain: a named channel (optionally dated) or a numbered release.
/// A host triple suffix (`stable-aarch64-apple-darwin`) is accepted and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RustChannel {
    Stable,
    Beta(Option<Date>),
    Nightly(Option<Date>),
    Release(DottedVersion),
}

/// A channel date, `YYYY-MM-DD`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl RustChannel {
    pub fn parse(text: &str) -> Result<RustChannel, VersionError> {
        let err = |reason: &str| VersionError::new(Scheme::Rustup, text, reason);
        if text.is_empty() {
            return Err(err("empty toolchain"));
        }
        if text.as_bytes()[0].is_ascii_digit() {
            let numeric_end = text
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(text.len());
            let (number, rest) = text.split_at(numeric_end);
            if !rest.is_empty() && !is_host_suffix(rest) {
                return Err(err("expected a release like 1.82 or 1.82.0"));
            }
            let v = DottedVersion::parse(Scheme::Dotted, number)?;
            if v.segments().len() > 3 {
                return Err(err("a Rust release has at most three numbers"));
            }
            return Ok(RustChannel::Release(v));
        }
        let (name, rest) = match text.find('-') {
            Some(i) => (&text[..i], &text[i..]),
            None => (text, ""),
        };
        let (date, rest) = parse_date_prefix(rest);
        if !rest.is_empty() && !is_host_suffix(rest) {
            return Err(err(
                "expected stable, beta, nightly, a dated channel or a release",
            ));
        }
        match (name, date) {
            ("stable", None) => Ok(RustChannel::Stable),
            ("stable", Some(_)) => Err(err("stable has no dated builds; use a release like 1.82")),
            ("beta", d) => Ok(RustChannel::Beta(d)),
            ("nightly", d) => Ok(RustChannel::Nightly(d)),
            _ => Err(err(
                "expected stable, beta, nightly, a dated channel or a release",
            )),
        }
    }

    /// Releases order by number, dated channels of one name by date; anything else has no order.
    pub fn compare(&self, other: &RustChannel) -> Option<Ordering> {
        match (self, other) {
            (RustChannel::Stable, RustChannel::Stable) => Some(Ordering::Equal),
            (RustChannel::Release(a), RustChannel::Release(b)) => Some(a.cmp(b)),
            (RustChannel::Beta(a), RustChannel::Beta(b))
            | (RustChannel::Nightly(a), RustChannel::Nightly(b)) => match (a, b) {
                (Some(a), Some(b)) => Some(a.cmp(b)),
                (None, None) => Some(Ordering::Equal),
                _ => None,
            },
            _ => None,
        }
    }
}

fn is_host_suffix(rest: &str) -> bool {
    // `-aarch64-apple-darwin`
    rest.len() > 1
        && rest.starts_with('-')
        && rest[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads `-YYYY-MM-DD` at the start of `rest`.
fn parse_date_prefix(rest: &str) -> (Option<Date>, &str) {
    let b = rest.as_bytes();
    if b.len() < 11 || b[0] != b'-' || b[5] != b'-' || b[8] != b'-' {
        return (None, rest);
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u16> {
        let s = rest.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    match (digits(1..5), digits(6..8), digits(9..11)) {
        (Some(year), Some(month), Some(day))
            if (1..=12).contains(&month) && (1..=31).contains(&day) =>
        {
            (
                Some(Date {
                    year,
                    month: month as u8,
                    day: day as u8,
                }),
                &rest[11..],
            )
        }
        _ => (None, rest),
    }
}

impl fmt::Display for RustChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dated = |f: &mut fmt::Formatter<'_>, name: &str, d: &Option<Date>| match d {
            Some(d) => write!(f, "{name}-{:04}-{:02}-{:02}", d.year, d.month, d.day),
            None => f.write_str(name),
        };
        match self {
            RustChannel::Stable => f.write_str("stable"),
            RustChannel::Beta(d) => dated(f, "beta", d),
            RustChannel::Nightly(d) => dated(f, "nightly", d),
            RustChannel::Release(v) => write!(f, "{v}"),
        }
    }
}
