//! The compliance record (`hpl.record.v1`), the runtime's output. Field names and meanings
//! are a contract (DESIGN §4; JSON Schema in docs/schemas/record.v1.json): changes are
//! additive only.

use crate::vocab::{Action, Mode, Phase, PinKind, RecordRuleKind, RecordSchema, UnknownCode};
use serde::Serialize;

pub const SCHEMA: &str = "hpl.record.v1";

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ComplianceRecord {
    pub schema: RecordSchema,
    pub tenant_id: String,
    pub device_id: String,
    /// RFC 3339, UTC.
    pub evaluated_at: String,
    pub bundle: BundleRef,
    pub policies: Vec<PolicyRef>,
    pub state: State,
    pub unknown_reasons: Vec<UnknownReason>,
    pub violations: Vec<Violation>,
    pub remediation: Vec<Remediation>,
    /// The result of every rule bound to the device's scopes.
    pub rules: Vec<RuleResult>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BundleRef {
    pub version: u64,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PolicyRef {
    pub id: String,
    pub version: u64,
}

#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Compliant,
    Warning,
    Unknown,
    NonCompliant,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Compliant => "compliant",
            State::Warning => "warning",
            State::Unknown => "unknown",
            State::NonCompliant => "non_compliant",
        }
    }
}

/// A string a record shares with the bundle it was made from (rule origins, targets, manager
/// ids): made once when the bundle is loaded, so an evaluation copies a pointer instead of
/// allocating the text again for every rule and violation (issue 13).
pub type Shared = std::sync::Arc<str>;

/// Where a rule comes from.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuleOrigin {
    pub policy: Shared,
    pub policy_version: u64,
    /// `org:acme`, `team:platform`
    pub scope: Shared,
    /// `baseline.hpl:7:3`
    pub source: Shared,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UnknownReason {
    pub code: UnknownCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleOrigin>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    MissingRequired,
    PresentDenied,
    VersionOutOfRange,
    PinMismatch,
    UnmanagedToolchain,
}

impl Category {
    /// The name in records (`missing_required` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::MissingRequired => "missing_required",
            Category::PresentDenied => "present_denied",
            Category::VersionOutOfRange => "version_out_of_range",
            Category::PinMismatch => "pin_mismatch",
            Category::UnmanagedToolchain => "unmanaged_toolchain",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Violation {
    pub category: Category,
    pub severity: Severity,
    pub manager: Shared,
    pub package: String,
    pub expected: String,
    pub found: Option<String>,
    /// install, uninstall, upgrade, downgrade, pin, manual
    pub action: Action,
    pub rule: RuleOrigin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Remediation {
    pub action: Action,
    pub manager: String,
    pub package: String,
    pub mode: Mode,
    /// The user must confirm (assist mode, guarded managers, manual steps).
    pub needs_confirmation: bool,
    pub guarded: bool,
    /// In enforce mode, the opening of the next upgrade window when none is open now.
    pub not_before: Option<String>,
    /// Helm's authority phase of the manager: `authoritative`, `standard`, `guarded`; the plan
    /// is in this order.
    pub phase: Phase,
    /// The agent may run it now without asking.
    pub automatic: bool,
    /// The manager cannot do it (e.g. Homebrew cannot downgrade): a person must.
    pub manual: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The version or range to reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// For pins: `native` (the manager pins) or `virtual` (the agent holds the version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinKind>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Skip,
    Pass,
    Warn,
    Unknown,
    Fail,
}

impl Outcome {
    /// The name in records (`pass` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Skip => "skip",
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Unknown => "unknown",
            Outcome::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleResult {
    pub rule: RuleOrigin,
    /// `require`, `allow`, `deny`, `deny!`, `pin`, `toolchain`
    pub kind: RecordRuleKind,
    /// `homebrew_formula:git`, `npm:*`, or the toolchain name.
    pub target: Shared,
    pub result: Outcome,
    /// Why a rule that applies was not checked, e.g. "forbidden by final deny …".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ComplianceRecord {
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names agree with serde's, which the schema fixes.
    #[test]
    fn names_are_the_serialized_names() {
        for c in [
            Category::MissingRequired,
            Category::PresentDenied,
            Category::VersionOutOfRange,
            Category::PinMismatch,
            Category::UnmanagedToolchain,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        for o in [
            Outcome::Skip,
            Outcome::Pass,
            Outcome::Warn,
            Outcome::Unknown,
            Outcome::Fail,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }
}
