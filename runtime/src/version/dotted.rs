//! Dotted-numeric versions: Homebrew, RubyGems, macOS and the generic fallback.

use super::{Scheme, VersionError};
use std::cmp::Ordering;
use std::fmt;

/// `15.3.2`, `2.47.1_1` (Homebrew revision), `1.1.1w` (Homebrew letter release),
/// `7.1.0.beta1` (RubyGems pre-release), `3.12.0rc1`.
///
/// Missing trailing segments count as zero: `2.40` equals `2.40.0`.
#[derive(Debug, Clone)]
pub struct DottedVersion {
    segments: Vec<u64>,
    /// Sorts before the release: `1.2.0.beta1 < 1.2.0`.
    pre: Option<String>,
    /// Sorts after the release: Homebrew's `1.1.1w > 1.1.1`.
    post: Option<String>,
    /// Homebrew's `_N` rebuild counter.
    revision: u64,
    text: String,
}

impl DottedVersion {
    /// A release version from numeric segments (used for range bounds).
    pub fn from_segments(segments: &[u64]) -> DottedVersion {
        let text = segments
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".");
        DottedVersion {
            segments: segments.to_vec(),
            pre: None,
            post: None,
            revision: 0,
            text,
        }
    }

    /// The lowest version with these numeric segments (below every pre-release of it), used
    /// as an exclusive upper bound: `< 2.0` must exclude `2.0.beta1` too.
    pub fn floor_of(segments: &[u64]) -> DottedVersion {
        let mut v = DottedVersion::from_segments(segments);
        v.pre = Some(String::new());
        v
    }

    pub fn segments(&self) -> &[u64] {
        &self.segments
    }

    pub fn parse(scheme: Scheme, text: &str) -> Result<DottedVersion, VersionError> {
        let err = |reason: &str| VersionError::new(scheme, text, reason);
        if text.is_empty() {
            return Err(err("empty version"));
        }
        let mut rest = text;
        if scheme == Scheme::Dotted {
            rest = rest.strip_prefix('v').unwrap_or(rest);
        }
        let mut revision = 0;
        if scheme == Scheme::Homebrew {
            if let Some((head, rev)) = rest.rsplit_once('_') {
                if !rev.is_empty() && rev.bytes().all(|b| b.is_ascii_digit()) {
                    revision = rev.parse().map_err(|_| err("revision is too large"))?;
                    rest = head;
                }
            }
        }
        let mut segments = Vec::new();
        let bytes = rest.as_bytes();
        let mut i = 0;
        loop {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                if segments.is_empty() {
                    return Err(err("a version starts with a number"));
                }
                return Err(err("expected a number after `.`"));
            }
            let segment = rest[start..i]
                .parse::<u64>()
                .map_err(|_| err("number is too large"))?;
            segments.push(segment);
            if segments.len() > 16 {
                return Err(err("too many segments"));
            }
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                i += 1;
                continue;
            }
            break;
        }
        let suffix = &rest[i..];
        let (mut pre, mut post) = (None, None);
        if !suffix.is_empty() {
            let valid = suffix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'+');
            if !valid {
                return Err(err("unexpected character"));
            }
            match scheme {
                Scheme::MacOs => return Err(err("a macOS version has only numbers, like 15.3.2")),
                // `1.1.1w`, `9.9p1`: a letter straight after the number is a later release.
                Scheme::Homebrew if suffix.as_bytes()[0].is_ascii_alphabetic() => {
                    post = Some(suffix.to_string())
                }
                _ => {
                    let trimmed = suffix.trim_start_matches(['.', '-']);
                    if trimmed.is_empty() {
                        return Err(err("expected a pre-release name after the separator"));
                    }
                    pre = Some(trimmed.to_string());
                }
            }
        }
        if scheme == Scheme::MacOs && segments.len() > 3 {
            return Err(err("a macOS version has at most three numbers"));
        }
        Ok(DottedVersion {
            segments,
            pre,
            post,
            revision,
            text: text.to_string(),
        })
    }
}

/// Compares `rc10` and `rc9` as a person would: digit runs by value.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let la = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let lb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (trim_zeros(&a[..la]), trim_zeros(&b[..lb]));
                let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[la..];
                b = &b[lb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

impl Ord for DottedVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.segments.len().max(other.segments.len());
        for i in 0..len {
            let a = self.segments.get(i).copied().unwrap_or(0);
            let b = other.segments.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => {}
                ord => return ord,
            }
        }
        let pre = match (&self.pre, &other.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => natural_cmp(a, b),
        };
        let post = match (&self.post, &other.post) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => natural_cmp(a, b),
        };
        pre.then(post).then(self.revision.cmp(&other.revision))
    }
}

impl PartialOrd for DottedVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DottedVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DottedVersion {}

impl fmt::Display for DottedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
