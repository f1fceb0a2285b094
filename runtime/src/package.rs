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
