//! Table-driven tests with version strings as the managers really print them.

use super::*;

fn matches(scheme: Scheme, constraint: &str, version: &str) -> Option<bool> {
    let c = scheme
        .parse_constraint(constraint)
        .unwrap_or_else(|e| panic!("{constraint}: {e}"));
    let v = scheme
        .parse_version(version)
        .unwrap_or_else(|e| panic!("{version}: {e}"));
    c.matches(&v)
}

#[test]
fn semver_npm_ranges() {
    use Scheme::Semver as S;
    let table = [
        ("^22", "22.11.0", true),
        ("^22", "23.0.0", false),
        ("^22", "23.0.0-rc.1", false),
        ("^0.2.3", "0.2.9", true),
        ("^0.2.3", "0.3.0", false),
        ("^0.0.3", "0.0.4", false),
        ("~1.2.3", "1.2.9", true),
        ("~1.2.3", "1.3.0", false),
        ("1.2.x", "1.2.7", true),
        ("1.2", "1.3.0", false),
        (">=2.0.0 <3", "2.5.1", true),
        (">=2.0.0, <3", "3.0.0", false),
        ("1.0 - 1.4", "1.4.9", true),
        ("1.0 - 1.4", "1.5.0", false),
        ("1.0.0 - 1.4.0", "1.4.0", true),
        ("<1 || >=3", "2.0.0", false),
        ("<2.0.0", "2.0.0-rc.1", false),
        ("<2.0.0", "1.9.9", true),
        ("<1 || >=3", "3.1.0", true),
        ("= 3.3.6", "3.3.6", true),
        ("!= 3.3.6", "3.3.6", false),
        ("*", "0.0.1", true),
    ];
    for (c, v, want) in table {
        assert_eq!(matches(S, c, v), Some(want), "{c} vs {v}");
    }
}

#[test]
fn pep440_specifiers() {
    use Scheme::Pep440 as P;
    let table = [
        (">=3.11,<3.13", "3.12.4", true),
        (">=3.11,<3.13", "3.13.0", false),
        ("~=3.12", "3.99", true),
        ("~=3.12.1", "3.13.0", false),
        ("==3.12.*", "3.12.11", true),
        ("3.12.*", "3.13.0", false),
        ("!=2.31.0", "2.31.0", false),
        ("==2.31.0", "2.31.0", true),
        (">=1.26", "2.0.0rc1", true),
        ("<2 || >=3", "2.5", false),
    ];
    for (c, v, want) in table {
        assert_eq!(matches(P, c, v), Some(want), "{c} vs {v}");
    }
}

#[test]
fn homebrew_versions() {
    use Scheme::Homebrew as H;
    let table = [
        (">= 2.40", "2.47.1", true),
        (">= 2.40", "2.39.5", false),
        ("= 1.9.8", "1.9.8", true),
        ("= 1.9.8", "1.9.8_1", false),
        (">= 1.9.8", "1.9.8_1", true),
        (">= 1.1.1", "1.1.1w", true),
        ("< 1.1.1w", "1.1.1v", true),
        ("3.12.*", "3.12.4_1", true),
        ("3.12.*", "3.13.0", false),
        ("^22", "22.11.0", true),
        ("2.40", "2.40.0", true),
    ];
    for (c, v, want) in table {
        assert_eq!(matches(H, c, v), Some(want), "{c} vs {v}");
    }
}

#[test]
fn rubygems_pessimistic() {
    use Scheme::RubyGems as R;
    let table = [
        ("~> 7.1", "7.9.0", true),
        ("~> 7.1", "8.0.0", false),
        ("~> 7.1.2", "7.1.9", true),
        ("~> 7.1.2", "7.2.0", false),
        (">= 2.5", "2.5.0.beta1", false),
        (">= 2.5.0.beta1", "2.5.0", true),
        ("!= 2.6.1", "2.6.1", false),
    ];
    for (c, v, want) in table {
        assert_eq!(matches(R, c, v), Some(want), "{c} vs {v}");
    }
}

#[test]
fn macos_versions() {
    use Scheme::MacOs as M;
    assert_eq!(matches(M, ">= 15.3", "15.3.2"), Some(true));
    assert_eq!(matches(M, ">= 15.3", "14.7.4"), Some(false));
    assert_eq!(matches(M, "15.*", "15.0"), Some(true));
    assert!(M.parse_version("15.3.2 (24D81)").is_err());
    assert!(M.parse_version("15.3.2.1").is_err());
    assert!(M.parse_version("sequoia").is_err());
}

#[test]
fn rustup_channels() {
    use Scheme::Rustup as R;
    assert_eq!(
        matches(R, "stable", "stable-aarch64-apple-darwin"),
        Some(true)
    );
    assert_eq!(matches(R, ">= 1.80", "1.82.0"), Some(true));
    assert_eq!(matches(R, ">= 1.80", "1.79"), Some(false));
    assert_eq!(
        matches(R, ">= nightly-2026-01-01", "nightly-2026-03-04"),
        Some(true)
    );
    // `stable` has no number: the question has no answer, so the rule is unknown.
    assert_eq!(matches(R, ">= 1.80", "stable"), None);
    assert!(R.parse_version("stable-2026-01-01").is_err());
    assert!(R.parse_version("weekly").is_err());
}

#[test]
fn dotted_fallback() {
    use Scheme::Dotted as D;
    assert_eq!(matches(D, "^22", "22.11.0"), Some(true));
    assert_eq!(matches(D, "^22", "v22.11.0"), Some(true));
    assert_eq!(matches(D, ">= 3.12", "3.12.0rc1"), Some(false));
    assert_eq!(matches(D, "3.12.*", "3.12.0rc1"), Some(true));
    assert_eq!(matches(D, "< 3.12", "3.12.0rc1"), Some(false));
    assert_eq!(matches(D, "< 3.12", "3.11.9"), Some(true));
}

#[test]
fn bad_constraints_are_errors_not_panics() {
    for scheme in Scheme::ALL {
        for bad in [
            "",
            "||",
            ">=",
            "^",
            "1.*.2",
            "~> 1",
            ">=x.y",
            "- 1.2",
            "<*",
            "99999999999999999999999",
        ] {
            let _ = scheme.parse_constraint(bad);
        }
        for bad in ["", ".", "1..2", "abc", "1.2.3_", "_1"] {
            let _ = scheme.parse_version(bad);
        }
    }
    assert!(Scheme::Semver.parse_constraint("~> 1.2").is_err());
    assert!(Scheme::Homebrew.parse_constraint("1.*.2").is_err());
    assert!(Scheme::Semver
        .parse_constraint("^999999999999999999999")
        .is_err());
}

#[test]
fn intersection() {
    let c = |s: Scheme, t: &str| s.parse_constraint(t).unwrap();
    let dotted = Scheme::Dotted;
    assert_eq!(
        c(dotted, "3.12.*").intersects(&c(dotted, ">= 3.13")),
        Some(false)
    );
    assert_eq!(
        c(dotted, "3.12.*").intersects(&c(dotted, ">= 3.11")),
        Some(true)
    );
    assert_eq!(
        c(dotted, "= 1.9.8").intersects(&c(dotted, "^1.10")),
        Some(false)
    );
    assert_eq!(
        c(dotted, "= 1.9.8").intersects(&c(dotted, "< 1.9.8 || > 1.9.8")),
        Some(false)
    );
    let pep = Scheme::Pep440;
    assert_eq!(
        c(pep, "==3.12.*").intersects(&c(pep, "~=3.11.0")),
        Some(false)
    );
    assert_eq!(
        c(pep, "3.12.*").intersects(&c(pep, ">=3.11,<3.13")),
        Some(true)
    );
    let semver = Scheme::Semver;
    assert_eq!(c(semver, "^22").intersects(&c(semver, ">=23")), Some(false));
    assert_eq!(c(semver, "*").intersects(&c(semver, "=3.3.6")), Some(true));
}

/// What an upgrade from a version can reach: used by authorization when a request names no
/// target version.
#[test]
fn ranges_above_a_version() {
    let c = |s: Scheme, t: &str| s.parse_constraint(t).unwrap();
    let d = Scheme::Dotted;
    let ver = |s: &str| d.parse_version(s).expect("version");
    assert!(c(d, ">= 2").holds_for_all_above(&ver("2.60.0")));
    assert!(!c(d, ">= 1.30").holds_for_all_above(&ver("1.29.9")));
    assert!(!c(d, "^3.14").holds_for_all_above(&ver("3.15.0")));
    assert!(c(d, "< 1 || >= 3").holds_for_all_above(&ver("3.1")));
    assert!(!c(d, ">= 1.0 < 1.5 || >= 3").holds_for_all_above(&ver("1.2")));
    assert!(!c(d, "< 1.0").may_hold_above(&ver("2.0")));
    assert!(!c(d, "= 1.4.1").may_hold_above(&ver("1.4.1")));
    assert!(c(d, "= 1.4.1").may_hold_above(&ver("1.4.0")));
    assert!(c(d, "< 0.17").may_hold_above(&ver("0.16.0")));
    assert!(c(d, "< 1 || >= 3").may_hold_above(&ver("2")));
    assert!(c(d, "1.2.*").is_bounded_above());
    assert!(!c(d, ">= 3").is_bounded_above());
}
