//! npm-style range syntax, shared by every scheme except PEP 440:
//! `^1.2`, `~1.2.3`, `~> 7.1` (RubyGems), `>=2.40 <3`, `>=2.40, <3`, `1.2.x`, `3.12.*`,
//! `1.0 - 1.4` (inclusive hyphen range), alternatives joined by `||`.
//!
//! For SemVer a partial version is a prefix range, as in npm (`1.2` means `1.2.x`). For the
//! dotted schemes a version without a wildcard is exact (`= 2.40` is `2.40.0`), and `2.40.*`
//! is the prefix range.

use super::{
    and_dnf, check_alternatives, Comparator, DottedVersion, Op, RustChannel, Scheme, Version,
    VersionError,
};

pub(super) fn parse_semver(text: &str) -> Result<semver::Version, VersionError> {
    semver::Version::parse(text).map_err(|e| VersionError::new(Scheme::Semver, text, e.to_string()))
}

enum Operand {
    Any,
    /// A prefix range: `1.2.*`, or a partial SemVer version.
    Prefix(Vec<u64>),
    /// One version, with its leading numbers (for `^`, `~` and `~>` bounds), and whether it
    /// is nothing but those numbers.
    Exact(Version, Vec<u64>, bool),
}

pub(super) fn parse_constraint(
    scheme: Scheme,
    text: &str,
) -> Result<Vec<Vec<Comparator>>, VersionError> {
    let err = |reason: &str| VersionError::new(scheme, text, reason);
    let mut alternatives = Vec::new();
    for alternative in text.split("||") {
        let tokens = tokenize(alternative);
        if tokens.is_empty() {
            return Err(err("empty alternative around `||`"));
        }
        let mut dnf: Vec<Vec<Comparator>> = vec![Vec::new()];
        let mut i = 0;
        while i < tokens.len() {
            let part = if i + 2 < tokens.len() && tokens[i + 1] == "-" {
                let lower = operand(scheme, text, &tokens[i])?;
                let upper = operand(scheme, text, &tokens[i + 2])?;
                i += 3;
                hyphen(scheme, text, lower, upper)?
            } else {
                let token = &tokens[i];
                if token == "-" {
                    return Err(err(
                        "a hyphen range needs a version on both sides: `1.0 - 1.4`",
                    ));
                }
                i += 1;
                let op_len = token
                    .find(|c: char| !"=<>!~^".contains(c))
                    .unwrap_or(token.len());
                let (op, rest) = token.split_at(op_len);
                if rest.is_empty() {
                    return Err(err(&format!("`{op}` needs a version after it")));
                }
                comparator(scheme, text, op, operand(scheme, text, rest)?)?
            };
            dnf = and_dnf(scheme, text, dnf, part)?;
        }
        alternatives.extend(dnf);
        check_alternatives(scheme, text, &alternatives)?;
    }
    Ok(alternatives)
}

/// Splits on whitespace and commas, and joins a lone operator to the version after it.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut pending_op = String::new();
    for raw in text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
    {
        if raw != "-" && raw.chars().all(|c| "=<>!~^".contains(c)) {
            pending_op.push_str(raw);
            continue;
        }
        tokens.push(format!("{pending_op}{raw}"));
        pending_op.clear();
    }
    if !pending_op.is_empty() {
        tokens.push(pending_op);
    }
    tokens
}

fn operand(scheme: Scheme, text: &str, token: &str) -> Result<Operand, VersionError> {
    let err = |reason: &str| VersionError::new(scheme, text, reason);
    if matches!(token, "*" | "x" | "X") {
        return Ok(Operand::Any);
    }
    let parts: Vec<&str> = token.split('.').collect();
    let is_wild = |p: &&str| matches!(*p, "*" | "x" | "X");
    if let Some(first_wild) = parts.iter().position(is_wild) {
        if !parts[first_wild..].iter().all(is_wild) {
            return Err(err("a wildcard can only end a version: `1.2.*`"));
        }
        let numbers = numbers(scheme, text, &parts[..first_wild])?;
        return Ok(Operand::Prefix(numbers));
    }
    if parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        let numbers = numbers(scheme, text, &parts)?;
        if scheme == Scheme::Semver && numbers.len() < 3 {
            return Ok(Operand::Prefix(numbers));
        }
    }
    let version = scheme
        .parse_version(token)
        .map_err(|e| VersionError::new(scheme, text, e.reason))?;
    let leading = parts
        .iter()
        .take_while(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|p| p.parse().ok())
        .collect::<Vec<u64>>();
    let plain = leading.len() == parts.len() && scheme != Scheme::Rustup;
    Ok(Operand::Exact(version, leading, plain))
}

fn numbers(scheme: Scheme, text: &str, parts: &[&str]) -> Result<Vec<u64>, VersionError> {
    parts
        .iter()
        .map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(VersionError::new(
                    scheme,
                    text,
                    format!("`{p}` is not a number"),
                ));
            }
            p.parse()
                .map_err(|_| VersionError::new(scheme, text, "number is too large"))
        })
        .collect()
}

/// The release made of `numbers`; as an exclusive upper bound it sorts below its pre-releases.
fn bound(
    scheme: Scheme,
    text: &str,
    numbers: &[u64],
    upper: bool,
) -> Result<Version, VersionError> {
    Ok(match scheme {
        Scheme::Semver => {
            let n = |i: usize| numbers.get(i).copied().unwrap_or(0);
            let mut v = semver::Version::new(n(0), n(1), n(2));
            if upper {
                v.pre = semver::Prerelease::new("0")
                    .map_err(|e| VersionError::new(scheme, text, e.to_string()))?;
            }
            Version::Semver(v)
        }
        Scheme::Rustup => Version::Rustup(RustChannel::Release(if upper {
            DottedVersion::floor_of(numbers)
        } else {
            DottedVersion::from_segments(numbers)
        })),
        Scheme::Pep440 => {
            return Err(VersionError::new(
                scheme,
                text,
                "internal: PEP 440 has its own parser",
            ))
        }
        _ => Version::Dotted(if upper {
            DottedVersion::floor_of(numbers)
        } else {
            DottedVersion::from_segments(numbers)
        }),
    })
}

/// `numbers[..=index]` with the last one incremented.
fn bump(
    scheme: Scheme,
    text: &str,
    numbers: &[u64],
    index: usize,
) -> Result<Vec<u64>, VersionError> {
    let mut out = numbers
        .get(..=index)
        .map(<[u64]>::to_vec)
        .unwrap_or_default();
    match out.last_mut() {
        Some(last) => {
            *last = last
                .checked_add(1)
                .ok_or_else(|| VersionError::new(scheme, text, "number is too large"))?
        }
        None => {
            return Err(VersionError::new(
                scheme,
                text,
                "this operator needs a numbered version",
            ))
        }
    }
    Ok(out)
}

fn upper_for(
    scheme: Scheme,
    text: &str,
    op: &str,
    numbers: &[u64],
) -> Result<Vec<u64>, VersionError> {
    if numbers.is_empty() {
        return Err(VersionError::new(
            scheme,
            text,
            format!("`{op}` needs a numbered version"),
        ));
    }
    let index = match op {
        // ^1.2.3 <2, ^0.2.3 <0.3, ^0.0.3 <0.0.4, ^0.0 <0.1
        "^" => numbers
            .iter()
            .position(|&n| n != 0)
            .unwrap_or(numbers.len() - 1),
        // ~1.2.3 <1.3, ~1.2 <1.3, ~1 <2
        "~" => usize::from(numbers.len() >= 2),
        // ~>1.2.3 <1.3, ~>1.2 <2, ~>1 <2
        _ => numbers.len().saturating_sub(2),
    };
    bump(scheme, text, numbers, index)
}

fn cmp(op: Op, bound: Version) -> Comparator {
    Comparator { op, bound }
}

fn comparator(
    scheme: Scheme,
    text: &str,
    op: &str,
    operand: Operand,
) -> Result<Vec<Vec<Comparator>>, VersionError> {
    let err = |reason: String| VersionError::new(scheme, text, reason);
    if !matches!(
        op,
        "" | "=" | "==" | "!=" | ">" | ">=" | "<" | "<=" | "^" | "~" | "~>"
    ) {
        return Err(err(format!("unknown operator `{op}`")));
    }
    if op == "~>" && scheme != Scheme::RubyGems {
        return Err(err("`~>` is RubyGems syntax; use `~` or `^` here".into()));
    }
    let one = |c: Vec<Comparator>| Ok(vec![c]);
    match operand {
        Operand::Any => match op {
            "" | "=" | "==" | ">=" | "^" | "~" => one(vec![]),
            _ => Err(err(format!("`{op}*` matches nothing"))),
        },
        Operand::Exact(v, numbers, plain) => match op {
            "" | "=" | "==" => one(vec![cmp(Op::Eq, v)]),
            "!=" => one(vec![cmp(Op::Ne, v)]),
            ">" => one(vec![cmp(Op::Gt, v)]),
            ">=" => one(vec![cmp(Op::Ge, v)]),
            // `< 3.12` also excludes the pre-releases of 3.12, as npm does: `3.12.0rc1`
            // is not what anyone means by "below 3.12".
            "<" if plain => one(vec![cmp(Op::Lt, bound(scheme, text, &numbers, true)?)]),
            "<" => one(vec![cmp(Op::Lt, v)]),
            "<=" => one(vec![cmp(Op::Le, v)]),
            _ => {
                let upper = upper_for(scheme, text, op, &numbers)?;
                one(vec![
                    cmp(Op::Ge, v),
                    cmp(Op::Lt, bound(scheme, text, &upper, true)?),
                ])
            }
        },
        Operand::Prefix(numbers) => {
            if numbers.is_empty() {
                return comparator(scheme, text, op, Operand::Any);
            }
            let lo = bound(scheme, text, &numbers, false)?;
            let lo_floor = bound(scheme, text, &numbers, true)?;
            let next = bump(scheme, text, &numbers, numbers.len() - 1)?;
            let hi = bound(scheme, text, &next, true)?;
            match op {
                "" | "=" | "==" => one(vec![cmp(Op::Ge, lo_floor), cmp(Op::Lt, hi)]),
                "!=" => Ok(vec![vec![cmp(Op::Lt, lo_floor)], vec![cmp(Op::Ge, hi)]]),
                ">" => one(vec![cmp(Op::Ge, hi)]),
                ">=" => one(vec![cmp(Op::Ge, lo)]),
                "<" => one(vec![cmp(Op::Lt, lo_floor)]),
                "<=" => one(vec![cmp(Op::Lt, hi)]),
                _ => {
                    let upper = upper_for(scheme, text, op, &numbers)?;
                    one(vec![
                        cmp(Op::Ge, lo),
                        cmp(Op::Lt, bound(scheme, text, &upper, true)?),
                    ])
                }
            }
        }
    }
}

fn hyphen(
    scheme: Scheme,
    text: &str,
    lower: Operand,
    upper: Operand,
) -> Result<Vec<Vec<Comparator>>, VersionError> {
    let mut out = Vec::new();
    match lower {
        Operand::Any => {}
        Operand::Exact(v, _, _) => out.push(cmp(Op::Ge, v)),
        Operand::Prefix(n) => out.push(cmp(Op::Ge, bound(scheme, text, &n, false)?)),
    }
    match upper {
        Operand::Any => {}
        Operand::Exact(v, _, _) => out.push(cmp(Op::Le, v)),
        Operand::Prefix(n) if n.is_empty() => {}
        Operand::Prefix(n) => {
            let next = bump(scheme, text, &n, n.len() - 1)?;
            out.push(cmp(Op::Lt, bound(scheme, text, &next, true)?));
        }
    }
    Ok(vec![out])
}
