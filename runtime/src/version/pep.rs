//! PEP 440 versions and specifiers, read by `pep440_rs`.
//!
//! Specifiers become intervals so the compiler can intersect them: `~=3.12` is
//! `>=3.12, <4.dev0`, `==3.12.*` is `>=3.12.dev0, <3.13.dev0`. A bare version or
//! wildcard (`3.12.*`, as policy authors write pins) means `==`.

use super::{and_dnf, check_alternatives, Comparator, Op, Scheme, Version, VersionError};
use pep440_rs::{Operator, VersionSpecifiers};
use std::str::FromStr;

pub(super) fn parse_version(text: &str) -> Result<pep440_rs::Version, VersionError> {
    pep440_rs::Version::from_str(text)
        .map_err(|e| VersionError::new(Scheme::Pep440, text, e.to_string()))
}

pub(super) fn parse_constraint(text: &str) -> Result<Vec<Vec<Comparator>>, VersionError> {
    // pep440_rs renders the input under its message; the diagnostic already shows it.
    let err = |reason: String| {
        let first = reason
            .lines()
            .next()
            .unwrap_or("")
            .trim_end_matches(':')
            .to_string();
        VersionError::new(Scheme::Pep440, text, first)
    };
    let mut alternatives = Vec::new();
    for alternative in text.split("||") {
        let alternative = alternative.trim();
        let starts_bare = alternative.starts_with(|c: char| c.is_ascii_digit());
        let normalized = if starts_bare {
            format!("=={alternative}")
        } else {
            alternative.to_string()
        };
        let specifiers =
            VersionSpecifiers::from_str(&normalized).map_err(|e| err(e.to_string()))?;
        if specifiers.is_empty() {
            return Err(err("empty alternative".into()));
        }
        let mut dnf: Vec<Vec<Comparator>> = vec![Vec::new()];
        for specifier in specifiers.iter() {
            let v = specifier.version().clone();
            let c = |op: Op, bound: pep440_rs::Version| Comparator {
                op,
                bound: Version::Pep440(bound),
            };
            let part = match specifier.operator() {
                Operator::Equal | Operator::ExactEqual => vec![vec![c(Op::Eq, v)]],
                Operator::NotEqual => vec![vec![c(Op::Ne, v)]],
                Operator::LessThan => vec![vec![c(Op::Lt, v)]],
                Operator::LessThanEqual => vec![vec![c(Op::Le, v)]],
                Operator::GreaterThan => vec![vec![c(Op::Gt, v)]],
                Operator::GreaterThanEqual => vec![vec![c(Op::Ge, v)]],
                Operator::EqualStar => {
                    let (lo, hi) = prefix_bounds(text, &v, v.release().len())?;
                    vec![vec![c(Op::Ge, lo), c(Op::Lt, hi)]]
                }
                Operator::NotEqualStar => {
                    let (lo, hi) = prefix_bounds(text, &v, v.release().len())?;
                    vec![vec![c(Op::Lt, lo)], vec![c(Op::Ge, hi)]]
                }
                Operator::TildeEqual => {
                    // ~=3.12.1 is >=3.12.1, ==3.12.*
                    let (_, hi) = prefix_bounds(text, &v, v.release().len().saturating_sub(1))?;
                    vec![vec![c(Op::Ge, v), c(Op::Lt, hi)]]
                }
            };
            dnf = and_dnf(Scheme::Pep440, text, dnf, part)?;
        }
        alternatives.extend(dnf);
        check_alternatives(Scheme::Pep440, text, &alternatives)?;
    }
    Ok(alternatives)
}

/// `[X.Y.dev0, X.(Y+1).dev0)` for the first `len` release numbers of `v`.
fn prefix_bounds(
    text: &str,
    v: &pep440_rs::Version,
    len: usize,
) -> Result<(pep440_rs::Version, pep440_rs::Version), VersionError> {
    let release: Vec<u64> = v.release().iter().take(len.max(1)).copied().collect();
    let mut next = release.clone();
    if let Some(last) = next.last_mut() {
        *last = last
            .checked_add(1)
            .ok_or_else(|| VersionError::new(Scheme::Pep440, text, "number is too large"))?;
    }
    let lo = pep440_rs::Version::new(release)
        .with_epoch(v.epoch())
        .with_dev(Some(0));
    let hi = pep440_rs::Version::new(next)
        .with_epoch(v.epoch())
        .with_dev(Some(0));
    Ok((lo, hi))
}
