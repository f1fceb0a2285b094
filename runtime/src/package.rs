//! Package identity: how names compare within one manager.

use crate::version::Scheme;

/// The name under which a package is compared. Python distributions compare by their
/// PEP 503 normalized name (`Django`, `django_` and `django-` are one package); every other
/// manager compares names exactly, except that Homebrew names are case-insensitive.
pub fn normalize_name(scheme: Scheme, name: &str) -> String {
    match scheme {
        Scheme::Pep440 => {
            let mut out = String::with_capacity(name.len());
            let mut last_dash = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    if !last_dash {
                        out.push('-');
                    }
                    last_dash = true;
                } else {
                    out.push(c.to_ascii_lowercase());
                    last_dash = false;
                }
            }
            out
        }
        Scheme::Homebrew => name.to_ascii_lowercase(),
        _ => name.to_string(),
    }
}

/// [`normalize_name`] without allocating when the name is already in normal form.
pub fn normalize_name_cow(scheme: Scheme, name: &str) -> std::borrow::Cow<'_, str> {
    let unchanged = match scheme {
        Scheme::Pep440 => {
            !name
                .bytes()
                .any(|b| b.is_ascii_uppercase() || b == b'_' || b == b'.')
                && !name.contains("--")
        }
        Scheme::Homebrew => !name.bytes().any(|b| b.is_ascii_uppercase()),
        _ => true,
    };
    if unchanged {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(normalize_name(scheme, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503_and_homebrew_names() {
        assert_eq!(
            normalize_name(Scheme::Pep440, "Django_REST.framework"),
            "django-rest-framework"
        );
        assert_eq!(normalize_name(Scheme::Pep440, "a--b"), "a-b");
        assert_eq!(
            normalize_name(Scheme::Homebrew, "Python@3.12"),
            "python@3.12"
        );
        assert_eq!(normalize_name(Scheme::Semver, "@Types/Node"), "@Types/Node");
        for (scheme, name) in [
            (Scheme::Pep440, "a--b"),
            (Scheme::Pep440, "Django"),
            (Scheme::Pep440, "ok-name"),
            (Scheme::Homebrew, "Git"),
        ] {
            assert_eq!(
                normalize_name_cow(scheme, name),
                normalize_name(scheme, name)
            );
        }
    }
}

/// A package as an action request names it, in its manager's canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// The normalized name rules are matched against.
    pub name: String,
    /// A version the name carried (`event-stream@3.3.6`, `ctx==0.1.2`, `node@22`).
    pub version: Option<String>,
}

/// Puts a requested package name in its manager's canonical form: Homebrew's official tap
/// prefixes (`homebrew/core/`, `homebrew/cask/`) go, Python extras (`ctx[extra]`) go and an
/// exact `==` specifier becomes the version, npm's and cargo's `name@version` and mise's
/// `tool@version` split, and the name is normalized as rules are ([`normalize_name`]).
/// A name that cannot be put in canonical form — a third-party tap, a version range, markers,
/// spaces or control characters, an empty name — is an error that says why: the caller
/// refuses the action, never allows it.
pub fn canonical_request(manager: &str, scheme: Scheme, raw: &str) -> Result<Requested, String> {
    if raw.is_empty() {
        return Err("the package name is empty".into());
    }
    if let Some(c) = raw.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{}` contains {c:?}: not a package name",
            raw.escape_debug()
        ));
    }
    let homebrew = matches!(manager, "homebrew_formula" | "homebrew_cask");
    let (name, version) = if homebrew {
        let lower = raw.to_ascii_lowercase();
        let official = if manager == "homebrew_cask" {
            "homebrew/cask/"
        } else {
            "homebrew/core/"
        };
        let bare = lower.strip_prefix(official).unwrap_or(&lower);
        if bare.contains('/') {
            return Err(format!(
                "`{raw}` is from a third-party tap, not the package the policy names"
            ));
        }
        // `python@3.12` is a formula of its own: the `@` is part of the name.
        (bare.to_string(), None)
    } else if scheme == Scheme::Pep440 {
        pep508_name(raw)?
    } else {
        split_at_version(raw)?
    };
    if name.is_empty() {
        return Err(format!("`{raw}` names no package"));
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(
            c,
            '=' | '<' | '>' | '!' | '~' | '^' | '*' | ';' | ',' | '[' | ']'
        )
    }) {
        return Err(format!(
            "`{raw}` contains `{c}`: a range or specifier, not a package name"
        ));
    }
    if let Some(v) = &version {
        if v.contains(['<', '>', '~', '^', '*', '|', ',', ';', '!']) {
            return Err(format!(
                "`{raw}` carries the range `{v}`: name one version with `to`"
            ));
        }
    }
    Ok(Requested {
        name: normalize_name(scheme, &name),
        version,
    })
}

/// `name[extras]==version` (PEP 508, the forms pip accepts on its command line).
fn pep508_name(raw: &str) -> Result<(String, Option<String>), String> {
    let end = raw
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(raw.len());
    let (name, mut rest) = raw.split_at(end);
    if rest.starts_with('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| format!("`{raw}`: unclosed extras"))?;
        rest = &rest[close + 1..];
    }
    if rest.is_empty() {
        return Ok((name.to_string(), None));
    }
    match rest.strip_prefix("==") {
        Some(v)
            if !v.is_empty()
                && !v.contains(|c: char| {
                    matches!(c, '=' | '<' | '>' | '!' | '~' | ',' | ';' | '*')
                }) =>
        {
            Ok((name.to_string(), Some(v.to_string())))
        }
        _ => Err(format!(
            "`{raw}` carries `{rest}`: name one version with `to`, not a specifier"
        )),
    }
}

/// `name@version` and `@scope/name@version`.
fn split_at_version(raw: &str) -> Result<(String, Option<String>), String> {
    let search_from = usize::from(raw.starts_with('@'));
    match raw[search_from..].rfind('@') {
        Some(i) => {
            let (name, version) = raw.split_at(search_from + i);
            let version = &version[1..];
            if version.is_empty() {
                return Err(format!("`{raw}` ends with `@` but names no version"));
            }
            Ok((name.to_string(), Some(version.to_string())))
        }
        None => Ok((raw.to_string(), None)),
    }
}

/// The spellings of a version that managers accept besides the plain one: a leading `v`
/// (`v1.29.0`) and an exact-match `=` or `==` (`=3.3.6`). Anything else is left for the scheme
/// to read (or refuse).
pub fn canonical_version(text: &str) -> &str {
    let t = text.trim();
    let t = t
        .strip_prefix("==")
        .or_else(|| t.strip_prefix('='))
        .unwrap_or(t);
    match t.strip_prefix(['v', 'V']) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => t,
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;

    fn ok(manager: &str, scheme: Scheme, raw: &str) -> (String, Option<String>) {
        let r = canonical_request(manager, scheme, raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        (r.name, r.version)
    }

    #[test]
    fn requests_are_put_in_canonical_form() {
        let brew = |raw| ok("homebrew_formula", Scheme::Homebrew, raw);
        assert_eq!(
            brew("homebrew/core/john-jumbo"),
            ("john-jumbo".into(), None)
        );
        assert_eq!(brew("Homebrew/Core/Terraform"), ("terraform".into(), None));
        assert_eq!(brew("python@3.12"), ("python@3.12".into(), None));
        let cask = ok("homebrew_cask", Scheme::Homebrew, "homebrew/cask/docker");
        assert_eq!(cask, ("docker".into(), None));
        let pip = |raw| ok("pip", Scheme::Pep440, raw);
        assert_eq!(pip("ctx[extra]"), ("ctx".into(), None));
        assert_eq!(pip("ctx==0.1.2"), ("ctx".into(), Some("0.1.2".into())));
        assert_eq!(
            pip("Django_REST[a,b]==3.15"),
            ("django-rest".into(), Some("3.15".into()))
        );
        let npm = |raw| ok("npm", Scheme::Semver, raw);
        assert_eq!(
            npm("event-stream@3.3.6"),
            ("event-stream".into(), Some("3.3.6".into()))
        );
        assert_eq!(
            npm("@acme/ui@1.0.0"),
            ("@acme/ui".into(), Some("1.0.0".into()))
        );
        assert_eq!(npm("@acme/ui"), ("@acme/ui".into(), None));
        assert_eq!(
            ok("mise", Scheme::Dotted, "node@22"),
            ("node".into(), Some("22".into()))
        );
    }

    #[test]
    fn names_that_cannot_be_made_canonical_are_refused() {
        for (manager, scheme, raw) in [
            ("homebrew_formula", Scheme::Homebrew, "evil/tap/john-jumbo"),
            ("homebrew_cask", Scheme::Homebrew, "homebrew/core/docker"),
            ("pip", Scheme::Pep440, "ctx>=0.1"),
            ("pip", Scheme::Pep440, "ctx; python_version<'3'"),
            ("pip", Scheme::Pep440, "ctx[extra"),
            ("npm", Scheme::Semver, "left-pad@"),
            ("npm", Scheme::Semver, "left pad"),
            ("npm", Scheme::Semver, ""),
            ("npm", Scheme::Semver, "a\u{0}b"),
            ("npm", Scheme::Semver, "colors@>=1.4"),
        ] {
            assert!(canonical_request(manager, scheme, raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn versions_managers_accept_are_normalized() {
        assert_eq!(canonical_version("v1.29.0"), "1.29.0");
        assert_eq!(canonical_version("=3.3.6"), "3.3.6");
        assert_eq!(canonical_version("==3.3.6"), "3.3.6");
        assert_eq!(canonical_version("latest"), "latest");
        assert_eq!(canonical_version("vim"), "vim");
    }
}
