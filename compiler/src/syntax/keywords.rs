//! The keywords of the language, in one table: the chunker cuts files at them, the parser
//! suggests them, the language server colours and completes them. (The pest grammar spells
//! them too; a test keeps it and this table in step.)

/// Where a keyword may begin something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Begins a top-level declaration (`policy`, `set`, …).
    Item,
    /// Begins a statement inside a policy (`scope`, `window`, …).
    Statement,
    /// Begins a package rule (a statement too).
    Rule,
    /// Begins a clause at the end of a rule (`when`, `because`, `warn`).
    Clause,
    /// Appears inside a declaration or statement (`team`, `version`, `from`, …).
    Inner,
}

#[derive(Debug, Clone, Copy)]
pub struct Keyword {
    pub text: &'static str,
    pub role: Role,
    /// One line for completion and hover.
    pub doc: &'static str,
}

const fn k(text: &'static str, role: Role, doc: &'static str) -> Keyword {
    Keyword { text, role, doc }
}

pub const KEYWORDS: &[Keyword] = &[
    k("tenant", Role::Item, "the organisation's tenant id"),
    k("department", Role::Item, "a department, with its teams"),
    k("environment", Role::Item, "an environment (laptop, ci, …)"),
    k(
        "device_group",
        Role::Item,
        "a device group, e.g. from an MDM group",
    ),
    k("set", Role::Item, "a named set of packages"),
    k("policy", Role::Item, "a policy: rules bound to scopes"),
    k("manager", Role::Item, "a package manager of the catalog"),
    k("scope", Role::Statement, "the scopes a policy is bound to"),
    k("mode", Role::Statement, "observe, assist or enforce"),
    k("require", Role::Rule, "the package must be installed"),
    k("allow", Role::Rule, "the package may be installed"),
    k("deny", Role::Rule, "the package must not be installed"),
    k("deny!", Role::Rule, "a final deny: no scope can allow it"),
    k("pin", Role::Rule, "the package stays at a version"),
    k(
        "toolchain",
        Role::Statement,
        "where a toolchain must come from",
    ),
    k(
        "window",
        Role::Statement,
        "when enforce may remediate automatically",
    ),
    k("guard", Role::Statement, "how a guarded action may run"),
    k(
        "when",
        Role::Clause,
        "the rule applies only where the condition holds",
    ),
    k(
        "because",
        Role::Clause,
        "the reason shown with every violation",
    ),
    k("warn", Role::Clause, "violations are warnings, not errors"),
    k("team", Role::Inner, "a team of a department"),
    k("version", Role::Inner, "a policy's version"),
    k(
        "from",
        Role::Inner,
        "the managers a toolchain may come from",
    ),
    k("org", Role::Inner, "the whole organisation, as a scope"),
    k("in", Role::Inner, "membership, in conditions"),
];

/// The keywords of one role, in table order.
pub fn with_role(role: Role) -> impl Iterator<Item = &'static str> {
    KEYWORDS
        .iter()
        .filter(move |k| k.role == role)
        .map(|k| k.text)
}

/// Keywords that begin a top-level declaration.
pub fn items() -> impl Iterator<Item = &'static str> {
    with_role(Role::Item)
}

/// Keywords that begin a statement inside a policy (rules included).
pub fn statements() -> impl Iterator<Item = &'static str> {
    KEYWORDS
        .iter()
        .filter(|k| matches!(k.role, Role::Statement | Role::Rule))
        .map(|k| k.text)
}

/// Whether `word` is a keyword (`deny!` included).
pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.text == word)
}

pub fn get(word: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.text == word)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grammar spells every keyword of the table, so the two cannot drift apart.
    #[test]
    fn the_grammar_knows_every_keyword() {
        let grammar = include_str!("grammar.pest");
        for k in KEYWORDS {
            let text = k.text.trim_end_matches('!');
            assert!(
                grammar.contains(&format!("\"{text}\"")),
                "`{}` is in the keyword table but not in grammar.pest",
                k.text
            );
        }
    }
}
