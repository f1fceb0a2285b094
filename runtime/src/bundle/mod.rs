//! The bundle: what the compiler emits and the runtime loads. The byte layout is documented in
//! docs/bundle-format.md; this module holds the decoded form ([`BundleContent`]), the
//! encoder (used by the compiler) and the decoder (used by [`crate::load`]).
//!
//! Most of a policy is data: per-scope rule tables precomputed by the compiler, so a device
//! only picks the tables of its scope path. Conditions are small bytecode programs
//! ([`crate::vm`]).

pub mod codec;
mod decode;
mod encode;

pub use decode::{decode_content, DecodeError};
pub use encode::{encode, sign_bundle, SigningInput};

/// `HPLB`
pub const MAGIC: [u8; 4] = *b"HPLB";
/// The only format this runtime reads.
pub const FORMAT_VERSION: u16 = 1;
/// Marks an absent optional index.
pub const NONE: u32 = u32::MAX;

/// Indices into the bundle's tables. All are checked by the verifier before anything runs.
pub type StrIdx = u32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub tenant: String,
    pub bundle_version: u64,
    /// Policy ids and versions.
    pub policies: Vec<(String, u64)>,
    /// Unix seconds.
    pub issued_at: i64,
    pub expires_at: Option<i64>,
    pub compiler_version: String,
    /// sha256 of the sources (sorted by path, each as `path\0len\0bytes`).
    pub source_hash: [u8; 32],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    Org = 0,
    Department = 1,
    Team = 2,
    Environment = 3,
    DeviceGroup = 4,
}

impl Level {
    pub fn from_u8(v: u8) -> Option<Level> {
        Some(match v {
            0 => Level::Org,
            1 => Level::Department,
            2 => Level::Team,
            3 => Level::Environment,
            4 => Level::DeviceGroup,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Org => "org",
            Level::Department => "department",
            Level::Team => "team",
            Level::Environment => "environment",
            Level::DeviceGroup => "device_group",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeEntry {
    pub level: Level,
    pub name: StrIdx,
    /// The department of a team, else [`NONE`].
    pub parent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerEntry {
    pub id: StrIdx,
    /// [`crate::version::Scheme`] as its index in `Scheme::ALL`.
    pub scheme: u8,
    /// Bit 0 native_pin, 1 downgrade, 2 multi_version, 3 guarded.
    pub capabilities: u8,
    /// 0 authoritative, 1 standard, 2 guarded.
    pub phase: u8,
}

pub const CAP_NATIVE_PIN: u8 = 1;
pub const CAP_DOWNGRADE: u8 = 2;
pub const CAP_MULTI_VERSION: u8 = 4;
pub const CAP_GUARDED: u8 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Mode {
    Observe = 0,
    Assist = 1,
    Enforce = 2,
}

impl Mode {
    pub fn from_u8(v: u8) -> Option<Mode> {
        Some(match v {
            0 => Mode::Observe,
            1 => Mode::Assist,
            2 => Mode::Enforce,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Assist => "assist",
            Mode::Enforce => "enforce",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEntry {
    pub name: StrIdx,
    pub version: u64,
    pub mode: Mode,
}

/// Where a rule comes from: kept from the source to every record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub policy: u32,
    pub scope: u32,
    pub file: StrIdx,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RuleKind {
    Require = 0,
    Allow = 1,
    Deny = 2,
    Pin = 3,
}

impl RuleKind {
    pub fn from_u8(v: u8) -> Option<RuleKind> {
        Some(match v {
            0 => RuleKind::Require,
            1 => RuleKind::Allow,
            2 => RuleKind::Deny,
            3 => RuleKind::Pin,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Require => "require",
            RuleKind::Allow => "allow",
            RuleKind::Deny => "deny",
            RuleKind::Pin => "pin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEntry {
    pub kind: RuleKind,
    pub is_final: bool,
    /// Violations of it are warnings.
    pub warn: bool,
    pub manager: u32,
    /// An exact normalized name, or a prefix when `glob`.
    pub glob: bool,
    pub pattern: StrIdx,
    /// The package as written, for records.
    pub display: StrIdx,
    /// Constraint text in the manager's scheme, or [`NONE`].
    pub constraint: u32,
    /// Index into the condition table, or [`NONE`].
    pub condition: u32,
    /// `because` text, or [`NONE`].
    pub because: u32,
    pub origin: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolchainEntry {
    pub name: StrIdx,
    pub sources: Vec<u32>,
    pub condition: u32,
    pub origin: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowEntry {
    pub policy: u32,
    /// Bit 0 Monday … bit 6 Sunday.
    pub days: u8,
    pub start_minute: u16,
    /// Up to 1440; `end <= start` crosses midnight.
    pub end_minute: u16,
    /// IANA zone, or [`NONE`] for the device's local zone.
    pub zone: u32,
    pub condition: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardEntry {
    pub manager: u32,
    /// 0 confirm, 1 deny, 2 auto (only on managers that are not guarded).
    pub level: u8,
    pub condition: u32,
    pub origin: u32,
}

/// One compiled `when` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionEntry {
    pub code: Vec<u8>,
    /// The deepest the stack gets, as the compiler computed it (the verifier recomputes).
    pub max_stack: u16,
    /// The most instructions one evaluation can execute (the verifier recomputes).
    pub cost: u64,
    /// The source text, for `inspect --disasm` and reasons.
    pub source: StrIdx,
    pub origin: u32,
}

/// Everything in a bundle except the envelope (hash and signatures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleContent {
    pub manifest: Manifest,
    pub strings: Vec<String>,
    pub managers: Vec<ManagerEntry>,
    pub scopes: Vec<ScopeEntry>,
    pub policies: Vec<PolicyEntry>,
    pub origins: Vec<Origin>,
    pub rules: Vec<RuleEntry>,
    /// Per scope (same index as `scopes`): the rules bound to it, sorted.
    pub scope_rules: Vec<Vec<u32>>,
    pub conditions: Vec<ConditionEntry>,
    pub toolchains: Vec<ToolchainEntry>,
    pub windows: Vec<WindowEntry>,
    pub guards: Vec<GuardEntry>,
    /// The bound on instructions for evaluating every condition once.
    pub cost_bound: u64,
}

impl BundleContent {
    pub fn str(&self, idx: StrIdx) -> &str {
        self.strings.get(idx as usize).map_or("", String::as_str)
    }
}
