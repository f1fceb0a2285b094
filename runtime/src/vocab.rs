//! The one vocabulary of the runtime: every closed set of names that records, requests and
//! the bundle share, as enums.
//!
//! Wire values are explicit: a bundle byte is the enum's written discriminant (never an array
//! position), and a JSON string is the enum's `as_str` (serde uses the same names). Adding a
//! variant is an additive change; renumbering one breaks bundles already on devices, which the
//! frozen bundle test (`tests/tests/frozen_bundle.rs`) catches.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Declares a field-less enum with explicit byte discriminants and wire names: `from_u8`,
/// `as_u8`, `as_str`, `from_name`, `ALL`, `Display`.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $byte:literal, $text:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant = $byte,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value this enum has on the wire (bundle byte).
            pub fn as_u8(self) -> u8 {
                self as u8
            }

            pub fn from_u8(v: u8) -> Option<$name> {
                match v {
                    $($byte => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The name in JSON, in the language and in messages.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn from_name(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// Scope levels, least to most specific: the order is the precedence of levels.
    Level {
        Org = 0, "org";
        Department = 1, "department";
        Team = 2, "team";
        Environment = 3, "environment";
        DeviceGroup = 4, "device_group";
    }
}

vocabulary! {
    /// A policy's remediation mode; ordered from weakest to strongest (MDM caps it).
    Mode {
        Observe = 0, "observe";
        Assist = 1, "assist";
        Enforce = 2, "enforce";
    }
}

vocabulary! {
    /// What a package rule says (a final deny is a `Deny` with the final flag).
    RuleKind {
        Require = 0, "require";
        Allow = 1, "allow";
        Deny = 2, "deny";
        Pin = 3, "pin";
    }
}

vocabulary! {
    /// Helm's authority phases: remediation runs authoritative managers first.
    Phase {
        Authoritative = 0, "authoritative";
        Standard = 1, "standard";
        Guarded = 2, "guarded";
    }
}

vocabulary! {
    /// `guard ACTION confirm|deny|auto`.
    GuardLevel {
        Confirm = 0, "confirm";
        Deny = 1, "deny";
        Auto = 2, "auto";
    }
}

vocabulary! {
    /// Every action the agent can ask about or a record can name. Records name the mutating
    /// ones (and `manual`); requests may also name the read-only ones.
    Action {
        Install = 0, "install";
        Uninstall = 1, "uninstall";
        Upgrade = 2, "upgrade";
        Downgrade = 3, "downgrade";
        UpgradeAll = 4, "upgrade-all";
        Pin = 5, "pin";
        Unpin = 6, "unpin";
        /// A step no manager can take: a person must (e.g. an unmanaged toolchain).
        Manual = 7, "manual";
        Detect = 16, "detect";
        Refresh = 17, "refresh";
        Search = 18, "search";
        List = 19, "list";
        Info = 20, "info";
        Outdated = 21, "outdated";
        /// The agent evaluated the device (events only; read-only for authorization).
        Evaluate = 22, "evaluate";
        /// The agent installed (or refused) a policy snapshot (events only).
        InstallPolicy = 23, "install_policy";
    }
}

impl Action {
    /// Read-only actions are always allowed.
    pub fn is_read_only(self) -> bool {
        matches!(
            self,
            Action::Detect
                | Action::Refresh
                | Action::Search
                | Action::List
                | Action::Info
                | Action::Outdated
                | Action::Evaluate
        )
    }

    /// Actions only events name: the agent's own work, never asked about.
    pub fn is_agent_internal(self) -> bool {
        matches!(self, Action::Evaluate | Action::InstallPolicy)
    }

    /// Actions that put a version of the package on the device.
    pub fn installs(self) -> bool {
        matches!(
            self,
            Action::Install | Action::Upgrade | Action::Downgrade | Action::Pin
        )
    }

    /// The actions `authorize` decides (everything but the read-only ones and `manual`).
    pub fn mutating() -> impl Iterator<Item = Action> {
        Action::ALL
            .iter()
            .copied()
            .filter(|a| !a.is_read_only() && !a.is_agent_internal() && *a != Action::Manual)
    }
}

vocabulary! {
    /// How a pin is held: by the manager itself, or by the agent.
    PinKind {
        Native = 0, "native";
        Virtual = 1, "virtual";
    }
}

vocabulary! {
    /// Why a record (or one rule of it) is `unknown`.
    UnknownCode {
        UnparseableVersion = 0, "unparseable_version";
        ManagerNotInventoried = 1, "manager_not_inventoried";
        ConditionError = 2, "condition_error";
        StaleInventory = 3, "stale_inventory";
        UnknownScope = 4, "unknown_scope";
        BundleExpired = 5, "bundle_expired";
        TenantMismatch = 6, "tenant_mismatch";
        IncomparableVersion = 7, "incomparable_version";
        NoValidSnapshot = 8, "no_valid_snapshot";
        /// Collected later than the evaluation time, beyond the clock-skew allowance.
        FutureInventory = 9, "future_inventory";
    }
}

vocabulary! {
    /// The kind of a rule as a record names it.
    RecordRuleKind {
        Require = 0, "require";
        Allow = 1, "allow";
        Deny = 2, "deny";
        FinalDeny = 3, "deny!";
        Pin = 4, "pin";
        Toolchain = 5, "toolchain";
    }
}

impl RecordRuleKind {
    pub fn of(kind: RuleKind, is_final: bool) -> RecordRuleKind {
        match kind {
            RuleKind::Deny if is_final => RecordRuleKind::FinalDeny,
            RuleKind::Deny => RecordRuleKind::Deny,
            RuleKind::Require => RecordRuleKind::Require,
            RuleKind::Allow => RecordRuleKind::Allow,
            RuleKind::Pin => RecordRuleKind::Pin,
        }
    }
}

vocabulary! {
    /// One package's step in an `upgrade-all`.
    Step {
        Upgrade = 0, "upgrade";
        Skip = 1, "skip";
    }
}

/// A manager's capabilities (bundle byte: bit 0 native_pin, 1 downgrade, 2 multi_version,
/// 3 guarded; other bits are rejected at load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub native_pin: bool,
    pub downgrade: bool,
    pub multi_version: bool,
    pub guarded: bool,
}

impl Capabilities {
    pub fn bits(self) -> u8 {
        u8::from(self.native_pin)
            | u8::from(self.downgrade) << 1
            | u8::from(self.multi_version) << 2
            | u8::from(self.guarded) << 3
    }

    pub fn from_bits(bits: u8) -> Option<Capabilities> {
        (bits < 16).then_some(Capabilities {
            native_pin: bits & 1 != 0,
            downgrade: bits & 2 != 0,
            multi_version: bits & 4 != 0,
            guarded: bits & 8 != 0,
        })
    }
}

/// The schema tag of a compliance record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum RecordSchema {
    #[default]
    #[serde(rename = "hpl.record.v1")]
    V1,
}

impl RecordSchema {
    pub fn as_str(self) -> &'static str {
        "hpl.record.v1"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip_and_names_are_unique() {
        fn check<T: Copy + Eq + fmt::Debug>(
            all: &[T],
            u8_of: fn(T) -> u8,
            from: fn(u8) -> Option<T>,
            name: fn(T) -> &'static str,
            by_name: fn(&str) -> Option<T>,
        ) {
            for &v in all {
                assert_eq!(from(u8_of(v)), Some(v));
                assert_eq!(by_name(name(v)), Some(v));
            }
            let mut names: Vec<_> = all.iter().map(|&v| name(v)).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), all.len());
        }
        check(
            Level::ALL,
            Level::as_u8,
            Level::from_u8,
            Level::as_str,
            Level::from_name,
        );
        check(
            Mode::ALL,
            Mode::as_u8,
            Mode::from_u8,
            Mode::as_str,
            Mode::from_name,
        );
        check(
            Action::ALL,
            Action::as_u8,
            Action::from_u8,
            Action::as_str,
            Action::from_name,
        );
        check(
            UnknownCode::ALL,
            UnknownCode::as_u8,
            UnknownCode::from_u8,
            UnknownCode::as_str,
            UnknownCode::from_name,
        );
        assert_eq!(Level::from_u8(5), None);
        assert_eq!(Capabilities::from_bits(16), None);
        for bits in 0..16 {
            assert_eq!(
                Capabilities::from_bits(bits).map(Capabilities::bits),
                Some(bits)
            );
        }
    }

    /// The bundle's bytes for these enums are a contract with every device in the field.
    #[test]
    fn bundle_discriminants_are_frozen() {
        assert_eq!(
            Level::ALL.iter().map(|l| l.as_u8()).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(Mode::Enforce.as_u8(), 2);
        assert_eq!(RuleKind::Pin.as_u8(), 3);
        assert_eq!(Phase::Guarded.as_u8(), 2);
        assert_eq!(GuardLevel::Auto.as_u8(), 2);
    }

    #[test]
    fn json_names_are_the_wire_names() {
        assert_eq!(
            serde_json::to_string(&Action::UpgradeAll).unwrap(),
            "\"upgrade-all\""
        );
        assert_eq!(
            serde_json::from_str::<Action>("\"downgrade\"").unwrap(),
            Action::Downgrade
        );
        assert_eq!(
            serde_json::to_string(&RecordRuleKind::FinalDeny).unwrap(),
            "\"deny!\""
        );
        assert_eq!(
            serde_json::to_string(&RecordSchema::V1).unwrap(),
            "\"hpl.record.v1\""
        );
    }
}
