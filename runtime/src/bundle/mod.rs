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
/// How an absent optional index is written on the wire. In memory it is `None`: the decoder
/// turns this marker into `Option` and the encoder writes it back, so no code compares with it.
pub(crate) const WIRE_NONE: u32 = u32::MAX;

use crate::version::Scheme;
pub use crate::vocab::{Capabilities, GuardLevel, Level, Mode, Phase, RuleKind};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeEntry {
    pub level: Level,
    pub name: StrIdx,
    /// The department of a team.
    pub parent: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerEntry {
    pub id: StrIdx,
    pub scheme: Scheme,
    pub capabilities: Capabilities,
    pub phase: Phase,
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
    /// Constraint text in the manager's scheme.
    pub constraint: Option<StrIdx>,
    /// Index into the condition table.
    pub condition: Option<u32>,
    /// `because` text.
    pub because: Option<StrIdx>,
    pub origin: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolchainEntry {
    pub name: StrIdx,
    pub sources: Vec<u32>,
    pub condition: Option<u32>,
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
    /// IANA zone; `None` is the device's local zone.
    pub zone: Option<StrIdx>,
    pub condition: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardEntry {
    pub manager: u32,
    /// `auto` only on managers that are not guarded.
    pub level: GuardLevel,
    pub condition: Option<u32>,
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

/// The tenant a bundle's manifest names, read without verifying anything: where to send it
/// (`hpl publish`) — trust comes only from [`crate::load::load`] with the tenant's keys.
pub fn claimed_tenant(bytes: &[u8]) -> Option<String> {
    let (content, _, _) = crate::load::open_envelope(bytes).ok()?;
    // The content starts after the 10-byte envelope head (magic, format, length).
    decode_content(content, 10).ok().map(|c| c.manifest.tenant)
}
