//! Version schemes and version constraints, one per kind of package manager.
//!
//! Every manager in the catalog names a [`Scheme`]. A scheme parses installed versions into
//! [`Version`]s and constraint text into a [`Constraint`]: a union of intervals (disjunctive
//! normal form of comparators). The same representation answers both questions hpl asks:
//! "does this installed version satisfy the rule?" (runtime) and "can these two rules ever
//! both hold?" (the compiler's conflict analysis).
//!
//! A comparison between versions of different shapes (the rustup channel `stable` against
//! `1.82`) has no answer: [`Constraint::matches`] returns `None` and the rule is `unknown`,
//! never compliant.

mod dotted;
mod pep;
mod range;
mod rustup;

use std::cmp::Ordering;
use std::fmt;

pub use dotted::DottedVersion;
pub use rustup::RustChannel;

/// How a manager numbers its versions. The discriminant is the scheme's byte in bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Scheme {
    /// SemVer 2.0 with npm-style ranges (npm, pnpm, yarn, cargo).
    Semver = 0,
    /// PEP 440 (pip, pipx, poetry).
    Pep440 = 1,
    /// RubyGems versions, `~>` pessimistic constraints (rubygems, bundler).
    RubyGems = 2,
    /// Homebrew: dotted versions with `_N` revisions and letter suffixes (`1.1.1w`).
    Homebrew = 3,
    /// rustup channels: `stable`, `beta`, `nightly[-DATE]`, `1.82[.0]`.
    Rustup = 4,
    /// macOS product versions: `15`, `15.3`, `15.3.2`.
    MacOs = 5,
    /// Dotted numbers with an optional suffix: the fallback for everything else.
    Dotted = 6,
}

impl Scheme {
    /// The scheme's byte in bundles.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(v: u8) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.as_u8() == v)
    }

    pub const ALL: [Scheme; 7] = [
        Scheme::Semver,
        Scheme::Pep440,
        Scheme::RubyGems,
        Scheme::Homebrew,
        Scheme::Rustup,
        Scheme::MacOs,
        Scheme::Dotted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Semver => "semver",
            Scheme::Pep440 => "pep440",
            Scheme::RubyGems => "rubygems",
            Scheme::Homebrew => "homebrew",
            Scheme::Rustup => "rustup",
            Scheme::MacOs => "macos",
            Scheme::Dotted => "dotted",
        }
    }

    pub fn from_name(name: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.name() == name)
    }

    /// One example of constraint syntax, for help texts.
    pub fn example(self) -> &'static str {
        match self {
            Scheme::Semver => "^1.4, >=2.0.0 <3, 1.2.x, 1.0 - 1.4 || 2.x",
            Scheme::Pep440 => ">=3.11,<3.13, ~=3.12, ==3.12.*",
            Scheme::RubyGems => "~> 7.1, >= 2.5, != 2.6.1",
            Scheme::Homebrew => ">= 2.40, = 1.9.8, 3.12.*, 1.1.1w_1",
            Scheme::Rustup => "stable, nightly-2026-01-01, >= 1.80",
            Scheme::MacOs => ">= 15.3, 15.*",
            Scheme::Dotted => ">= 2.40, ^22, 3.12.*",
        }
    }

    /// Parses an installed or pinned version.
    pub fn parse_version(self, text: &str) -> Result<Version, VersionError> {
        let text = text.trim();
        match self {
            Scheme::Semver => range::parse_semver(text).map(Version::Semver),
            Scheme::Pep440 => pep::parse_version(text).map(Version::Pep440),
            Scheme::Rustup => RustChannel::parse(text).map(Version::Rustup),
            Scheme::RubyGems | Scheme::Homebrew | Scheme::MacOs | Scheme::Dotted => {
                DottedVersion::parse(self, text).map(Version::Dotted)
            }
        }
    }

    /// Parses constraint text such as `^22`, `>=3.11,<3.13` or `stable`.
    pub fn parse_constraint(self, text: &str) -> Result<Constraint, VersionError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(VersionError::new(self, text, "empty version constraint"));
        }
        let alternatives = match self {
            Scheme::Pep440 => pep::parse_constraint(text)?,
            _ => range::parse_constraint(self, text)?,
        };
        Ok(Constraint {
            scheme: self,
            text: text.to_string(),
            alternatives,
        })
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed version of one scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    Semver(semver::Version),
    Pep440(pep440_rs::Version),
    Dotted(DottedVersion),
    Rustup(RustChannel),
}

impl Version {
    /// Orders two versions of the same shape; `None` when they cannot be compared.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        match (self, other) {
            (Version::Semver(a), Version::Semver(b)) => Some(a.cmp(b)),
            (Version::Pep440(a), Version::Pep440(b)) => Some(a.cmp(b)),
            (Version::Dotted(a), Version::Dotted(b)) => Some(a.cmp(b)),
            (Version::Rustup(a), Version::Rustup(b)) => a.compare(b),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Semver(v) => write!(f, "{v}"),
            Version::Pep440(v) => write!(f, "{v}"),
            Version::Dotted(v) => write!(f, "{v}"),
            Version::Rustup(v) => write!(f, "{v}"),
        }
    }
}

/// A comparison operator after desugaring (`^`, `~`, `~>`, wildcards become intervals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
        }
    }
}

/// `version <op> bound`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparator {
    pub op: Op,
    pub bound: Version,
}

impl Comparator {
    fn matches(&self, version: &Version) -> Option<bool> {
        version.compare(&self.bound).map(|ord| self.op.holds(ord))
    }
}

/// A version constraint: satisfied when any alternative's comparators all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    scheme: Scheme,
    text: String,
    alternatives: Vec<Vec<Comparator>>,
}

/// Upper limit on alternatives after desugaring, so a hostile constraint cannot blow up.
const MAX_ALTERNATIVES: usize = 64;

impl Constraint {
    /// The constraint that every version satisfies.
    pub fn any(scheme: Scheme) -> Constraint {
        Constraint {
            scheme,
            text: "*".into(),
            alternatives: vec![Vec::new()],
        }
    }

    /// Exactly one version.
    pub fn exact(scheme: Scheme, version: Version) -> Constraint {
        Constraint {
            scheme,
            text: version.to_string(),
            alternatives: vec![vec![Comparator {
                op: Op::Eq,
                bound: version,
            }]],
        }
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The source text the constraint was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn alternatives(&self) -> &[Vec<Comparator>] {
        &self.alternatives
    }

    /// Whether `version` satisfies the constraint; `None` when it cannot be decided.
    pub fn matches(&self, version: &Version) -> Option<bool> {
        let mut undecided = false;
        for alternative in &self.alternatives {
            let mut all = Some(true);
            for comparator in alternative {
                match comparator.matches(version) {
                    Some(true) => {}
                    Some(false) => {
                        all = Some(false);
                        break;
                    }
                    None => all = None,
                }
            }
            match all {
                Some(true) => return Some(true),
                Some(false) => {}
                None => undecided = true,
            }
        }
        if undecided {
            None
        } else {
            Some(false)
        }
    }

    /// Whether some version could satisfy both constraints. `None` when the question has no
    /// answer (incomparable bounds); `!=` comparators are ignored, so `Some(true)` can be an
    /// over-approximation but `Some(false)` is exact.
    pub fn intersects(&self, other: &Constraint) -> Option<bool> {
        let mut undecided = false;
        for a in &self.alternatives {
            for b in &other.alternatives {
                match conjunction_satisfiable(a.iter().chain(b.iter())) {
                    Some(true) => return Some(true),
                    Some(false) => {}
                    None => undecided = true,
                }
            }
        }
        if undecided {
            None
        } else {
            Some(false)
        }
    }

    /// Whether `version` lies below every alternative (so reaching the range means
    /// upgrading, not downgrading).
    pub fn is_below(&self, version: &Version) -> bool {
        self.alternatives.iter().all(|alt| {
            alt.iter().any(|c| {
                matches!(c.op, Op::Gt | Op::Ge | Op::Eq)
                    && version.compare(&c.bound) == Some(Ordering::Less)
            })
        })
    }

    /// Whether every version above `version` satisfies the constraint: some alternative holds
    /// at `version` and has only lower bounds (so an upgrade from there stays inside).
    pub fn holds_for_all_above(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|alt| {
            alt.iter()
                .all(|c| matches!(c.op, Op::Gt | Op::Ge) && c.matches(version) == Some(true))
        })
    }

    /// Whether some version above `version` might satisfy the constraint: `false` only when
    /// every alternative has an upper bound at or below `version`.
    pub fn may_hold_above(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|alt| {
            !alt.iter().any(|c| {
                matches!(
                    (c.op, version.compare(&c.bound)),
                    (Op::Lt | Op::Eq, Some(Ordering::Greater | Ordering::Equal))
                        | (Op::Le, Some(Ordering::Greater))
                )
            })
        })
    }

    /// Whether every alternative has an upper bound, so versions above the range exist
    /// (leaving a denied range means upgrading; otherwise, downgrading).
    pub fn is_bounded_above(&self) -> bool {
        self.alternatives
            .iter()
            .all(|alt| alt.iter().any(|c| matches!(c.op, Op::Lt | Op::Le | Op::Eq)))
    }

    /// Whether this is the unconstrained `*`.
    pub fn is_any(&self) -> bool {
        self.alternatives.iter().any(|a| a.is_empty())
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Intersects the comparators into one interval and asks whether it is non-empty.
fn conjunction_satisfiable<'a>(comparators: impl Iterator<Item = &'a Comparator>) -> Option<bool> {
    // (bound, inclusive)
    let mut lower: Option<(&Version, bool)> = None;
    let mut upper: Option<(&Version, bool)> = None;
    let mut exact: Option<&Version> = None;
    for c in comparators {
        match c.op {
            Op::Ne => {}
            Op::Eq => {
                if let Some(e) = exact {
                    if e.compare(&c.bound)? != Ordering::Equal {
                        return Some(false);
                    }
                }
                exact = Some(&c.bound);
            }
            Op::Gt | Op::Ge => {
                let inclusive = c.op == Op::Ge;
                lower = Some(match lower {
                    None => (&c.bound, inclusive),
                    Some((b, inc)) => match c.bound.compare(b)? {
                        Ordering::Greater => (&c.bound, inclusive),
                        Ordering::Less => (b, inc),
                        Ordering::Equal => (b, inc && inclusive),
                    },
                });
            }
            Op::Lt | Op::Le => {
                let inclusive = c.op == Op::Le;
                upper = Some(match upper {
                    None => (&c.bound, inclusive),
                    Some((b, inc)) => match c.bound.compare(b)? {
                        Ordering::Less => (&c.bound, inclusive),
                        Ordering::Greater => (b, inc),
                        Ordering::Equal => (b, inc && inclusive),
                    },
                });
            }
        }
    }
    if let Some(e) = exact {
        if let Some((b, inc)) = lower {
            let ord = e.compare(b)?;
            if ord == Ordering::Less || (ord == Ordering::Equal && !inc) {
                return Some(false);
            }
        }
        if let Some((b, inc)) = upper {
            let ord = e.compare(b)?;
            if ord == Ordering::Greater || (ord == Ordering::Equal && !inc) {
                return Some(false);
            }
        }
        return Some(true);
    }
    if let (Some((lo, lo_inc)), Some((hi, hi_inc))) = (lower, upper) {
        return Some(match lo.compare(hi)? {
            Ordering::Less => true,
            Ordering::Equal => lo_inc && hi_inc,
            Ordering::Greater => false,
        });
    }
    Some(true)
}

/// A version or constraint that a scheme cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError {
    pub scheme: Scheme,
    pub input: String,
    pub reason: String,
}

impl VersionError {
    pub(crate) fn new(scheme: Scheme, input: &str, reason: impl Into<String>) -> VersionError {
        VersionError {
            scheme,
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a valid {} version: {}",
            self.input, self.scheme, self.reason
        )
    }
}

impl std::error::Error for VersionError {}

/// Conjunction of two DNFs (cross product), bounded by [`MAX_ALTERNATIVES`].
pub(crate) fn and_dnf(
    scheme: Scheme,
    text: &str,
    left: Vec<Vec<Comparator>>,
    right: Vec<Vec<Comparator>>,
) -> Result<Vec<Vec<Comparator>>, VersionError> {
    if left.len().saturating_mul(right.len()) > MAX_ALTERNATIVES {
        return Err(VersionError::new(scheme, text, "constraint is too complex"));
    }
    let mut out = Vec::with_capacity(left.len() * right.len());
    for l in &left {
        for r in &right {
            let mut both = l.clone();
            both.extend(r.iter().cloned());
            out.push(both);
        }
    }
    Ok(out)
}

pub(crate) fn check_alternatives(
    scheme: Scheme,
    text: &str,
    alternatives: &[Vec<Comparator>],
) -> Result<(), VersionError> {
    if alternatives.len() > MAX_ALTERNATIVES {
        return Err(VersionError::new(scheme, text, "constraint is too complex"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
