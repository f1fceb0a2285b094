//! The one did-you-mean helper that every resolver uses.

/// The closest candidate to `wanted`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wanted_lower = wanted.to_ascii_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for candidate in candidates {
        if candidate == wanted {
            continue;
        }
        let candidate_lower = candidate.to_ascii_lowercase();
        let score = if candidate_lower == wanted_lower {
            1.0
        } else {
            strsim::jaro_winkler(&wanted_lower, &candidate_lower)
        };
        let distance = strsim::levenshtein(&wanted_lower, &candidate_lower);
        let plausible = score >= 0.85 || distance <= (wanted.len().max(3) / 3);
        if plausible && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn finds_typos_and_ignores_strangers() {
        let names = ["platform", "mobile", "build_agents"];
        assert_eq!(did_you_mean("platfrom", names), Some("platform"));
        assert_eq!(did_you_mean("Mobile", names), Some("mobile"));
        assert_eq!(did_you_mean("xyz", names), None);
        assert_eq!(
            did_you_mean("homebrw", ["homebrew_formula", "homebrew", "npm"]),
            Some("homebrew")
        );
    }
}
