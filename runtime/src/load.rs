//! Loading a bundle: envelope, content hash, signatures, decoding, then the verifier. A
//! [`VerifiedBundle`] can only be made here, so holding one means all of that passed.

use crate::bundle::{self, BundleContent, DecodeError, MAGIC};
use crate::record::{RuleOrigin, Shared};
use crate::version::{Constraint, Scheme};
use crate::vm::{self, Program, VerifyError};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// The public keys a device trusts, by key id.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: HashMap<[u8; 8], VerifyingKey>,
}

/// A key id: the first 8 bytes of sha256 of the 32-byte public key.
pub fn key_id(public_key: &[u8; 32]) -> [u8; 8] {
    let digest = Sha256::digest(public_key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TrustedKeys {
    pub fn new() -> TrustedKeys {
        TrustedKeys::default()
    }

    /// Trusts a 32-byte ed25519 public key; returns its key id.
    pub fn add(&mut self, public_key: &[u8; 32]) -> Result<[u8; 8], LoadError> {
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| LoadError::BadPublicKey)?;
        let id = key_id(public_key);
        self.keys.insert(id, key);
        Ok(id)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `signature` by the key `id` verifies over `digest`; `None` when the key is not
    /// trusted.
    pub(crate) fn verify(
        &self,
        id: &[u8; 8],
        digest: &[u8; 32],
        signature: &[u8; 64],
    ) -> Option<bool> {
        let key = self.keys.get(id)?;
        Some(
            key.verify_strict(digest, &Signature::from_bytes(signature))
                .is_ok(),
        )
    }
}

/// Why a bundle was rejected. Every variant has a stable code for events and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// Fewer bytes than the envelope needs, or a length pointing past the end.
    Truncated,
    NotABundle,
    UnsupportedFormat {
        version: u16,
    },
    /// Bytes after the last signature.
    TrailingBytes,
    /// The content hash does not match the content: the bundle was altered.
    Tampered,
    Unsigned,
    UnknownKey {
        key_id: String,
    },
    BadSignature {
        key_id: String,
    },
    BadPublicKey,
    Malformed(DecodeError),
    /// The verifier rejected the content.
    Invalid {
        what: String,
    },
}

impl LoadError {
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::Truncated => "truncated",
            LoadError::NotABundle => "not_a_bundle",
            LoadError::UnsupportedFormat { .. } => "unsupported_format",
            LoadError::TrailingBytes => "trailing_bytes",
            LoadError::Tampered => "tampered",
            LoadError::Unsigned => "unsigned",
            LoadError::UnknownKey { .. } => "unknown_key",
            LoadError::BadSignature { .. } => "bad_signature",
            LoadError::BadPublicKey => "bad_public_key",
            LoadError::Malformed(_) => "malformed",
            LoadError::Invalid { .. } => "invalid",
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Truncated => write!(f, "the bundle is truncated"),
            LoadError::NotABundle => write!(f, "not an hpl bundle (bad magic)"),
            LoadError::UnsupportedFormat { version } => write!(
                f,
                "bundle format {version} is not supported (this runtime reads format {})",
                bundle::FORMAT_VERSION
            ),
            LoadError::TrailingBytes => write!(f, "unexpected bytes after the signatures"),
            LoadError::Tampered => {
                write!(f, "the content hash does not match: the bundle was altered")
            }
            LoadError::Unsigned => write!(f, "the bundle has no signature"),
            LoadError::UnknownKey { key_id } => {
                write!(f, "signed by key {key_id}, which is not trusted")
            }
            LoadError::BadSignature { key_id } => {
                write!(f, "the signature of key {key_id} does not verify")
            }
            LoadError::BadPublicKey => write!(f, "not a valid ed25519 public key"),
            LoadError::Malformed(e) => write!(f, "malformed content: {e:?}"),
            LoadError::Invalid { what } => write!(f, "rejected by the verifier: {what}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A bundle that passed every check. Only [`load`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    content: BundleContent,
    hash: [u8; 32],
    /// Per condition: the verified program.
    programs: Vec<Program>,
    /// Per rule: the parsed constraint (`None` when the rule has none).
    constraints: Vec<Option<Constraint>>,
    /// Per manager: its version scheme.
    schemes: Vec<Scheme>,
    /// Exact rules by manager and package name, and glob rules by manager.
    pub(crate) exact_index: Vec<HashMap<String, Vec<u32>>>,
    pub(crate) glob_index: Vec<Vec<u32>>,
    /// Per rule entry: the first entry of the same source rule (see [`binding_groups`]).
    pub(crate) source_rule: Vec<u32>,
    /// Rule entries that are one source rule bound through several scopes.
    pub(crate) rule_groups: Vec<Vec<u32>>,
    /// The same for toolchain entries.
    pub(crate) toolchain_groups: Vec<Vec<u32>>,
    /// Per scope: the rule entries bound to it, ascending. An evaluation looks at the device's
    /// scopes' rules only, so it does not grow with the rules of other scopes (issue 13).
    pub(crate) rules_by_scope: Vec<Vec<u32>>,
    /// Per rule entry: its group in `rule_groups`, when it has one.
    pub(crate) group_of: Vec<Option<u32>>,
    signers: Vec<String>,
    /// The strings records share with the bundle (see [`Shared`]): per origin, per rule (its
    /// display), per manager (its id), per string of the table (for conditions). Each is made
    /// the first time an evaluation needs it, then shared by every later one: loading stays
    /// proportional to the bundle, and a device pays only for its own rules.
    origins: Vec<OnceLock<RuleOrigin>>,
    rule_targets: Vec<OnceLock<Shared>>,
    manager_ids: Vec<OnceLock<Shared>>,
    strings: Vec<OnceLock<Shared>>,
}

impl VerifiedBundle {
    pub fn content(&self) -> &BundleContent {
        &self.content
    }
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
    /// `sha256:…`, as records name bundles.
    pub fn hash_string(&self) -> String {
        format!("sha256:{}", hex(&self.hash))
    }
    pub fn program(&self, condition: u32) -> Option<&Program> {
        self.programs.get(condition as usize)
    }
    pub fn constraint(&self, rule: u32) -> Option<&Constraint> {
        self.constraints.get(rule as usize).and_then(Option::as_ref)
    }
    pub fn scheme(&self, manager: u32) -> Scheme {
        self.schemes
            .get(manager as usize)
            .copied()
            .unwrap_or(Scheme::Dotted)
    }
    /// Key ids (hex) whose signatures verified.
    pub fn signers(&self) -> &[String] {
        &self.signers
    }
    /// The origin of a rule, toolchain or guard entry as records name it.
    pub fn origin(&self, origin: u32) -> RuleOrigin {
        match self.origins.get(origin as usize) {
            Some(cell) => cell
                .get_or_init(|| crate::eval::origin_of(&self.content, origin))
                .clone(),
            None => crate::eval::origin_of(&self.content, origin),
        }
    }
    /// A rule's target as records name it (`homebrew_formula:git`).
    pub fn rule_target(&self, rule: u32) -> Shared {
        let c = &self.content;
        match (
            self.rule_targets.get(rule as usize),
            c.rules.get(rule as usize),
        ) {
            (Some(cell), Some(r)) => cell.get_or_init(|| c.str(r.display).into()).clone(),
            _ => Shared::from(""),
        }
    }
    /// A manager's catalog id.
    pub fn manager_id(&self, manager: u32) -> Shared {
        let c = &self.content;
        match (
            self.manager_ids.get(manager as usize),
            c.managers.get(manager as usize),
        ) {
            (Some(cell), Some(m)) => cell.get_or_init(|| c.str(m.id).into()).clone(),
            _ => Shared::from(""),
        }
    }
    /// The string table as shared strings, for the condition VM (a constant in a condition is
    /// a pointer copy, not an allocation, on every evaluation).
    pub fn shared_strings(&self) -> SharedStrings<'_> {
        SharedStrings { bundle: self }
    }
}

/// A bundle's string table as the condition VM reads it ([`VerifiedBundle::shared_strings`]).
pub struct SharedStrings<'a> {
    bundle: &'a VerifiedBundle,
}

impl crate::vm::Strings for SharedStrings<'_> {
    fn shared(&self, i: usize) -> Option<Shared> {
        let b = self.bundle;
        let text = b.content.strings.get(i)?;
        Some(
            b.strings
                .get(i)?
                .get_or_init(|| Shared::from(text.as_str()))
                .clone(),
        )
    }
}

const HEAD: usize = 4 + 2 + 4;

/// Loads and verifies a bundle. Never panics, whatever the bytes.
pub fn load(bytes: &[u8], keys: &TrustedKeys) -> Result<VerifiedBundle, LoadError> {
    let (content_bytes, hash, signatures) = open_envelope(bytes)?;
    if signatures.is_empty() {
        return Err(LoadError::Unsigned);
    }
    let mut signers = Vec::new();
    let mut first_error = None;
    for (id, sig) in &signatures {
        let key_hex = hex(id);
        match keys.keys.get(id) {
            None => {
                first_error.get_or_insert(LoadError::UnknownKey { key_id: key_hex });
            }
            Some(key) => {
                let signature = Signature::from_bytes(sig);
                if key.verify_strict(&hash, &signature).is_ok() {
                    signers.push(key_hex);
                } else {
                    // A bad signature from a trusted key is always fatal.
                    return Err(LoadError::BadSignature { key_id: key_hex });
                }
            }
        }
    }
    if signers.is_empty() {
        return Err(first_error.unwrap_or(LoadError::Unsigned));
    }
    let content = bundle::decode_content(content_bytes, HEAD).map_err(LoadError::Malformed)?;
    verify(content, hash, signers)
}

/// The parts of a bundle file: content bytes, content hash, signatures (key id, signature).
pub type Envelope<'a> = (&'a [u8], [u8; 32], Vec<([u8; 8], [u8; 64])>);

/// Checks the envelope and the content hash (no keys): for `hpl inspect` and `load`.
pub fn open_envelope(bytes: &[u8]) -> Result<Envelope<'_>, LoadError> {
    if bytes.len() < 4 {
        return Err(LoadError::Truncated);
    }
    if bytes[..4] != MAGIC {
        return Err(LoadError::NotABundle);
    }
    if bytes.len() < HEAD {
        return Err(LoadError::Truncated);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != bundle::FORMAT_VERSION {
        return Err(LoadError::UnsupportedFormat { version });
    }
    let len = u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]) as usize;
    let content_end = HEAD.checked_add(len).ok_or(LoadError::Truncated)?;
    let hash_end = content_end.checked_add(32).ok_or(LoadError::Truncated)?;
    if bytes.len() < hash_end + 1 {
        return Err(LoadError::Truncated);
    }
    let mut stored = [0u8; 32];
    stored.copy_from_slice(&bytes[content_end..hash_end]);
    let computed: [u8; 32] = Sha256::digest(&bytes[..content_end]).into();
    if stored != computed {
        return Err(LoadError::Tampered);
    }
    let count = bytes[hash_end] as usize;
    let sigs_start = hash_end + 1;
    let needed = sigs_start + count * 72;
    if bytes.len() < needed {
        return Err(LoadError::Truncated);
    }
    if bytes.len() > needed {
        return Err(LoadError::TrailingBytes);
    }
    let mut signatures = Vec::with_capacity(count);
    for i in 0..count {
        let at = sigs_start + i * 72;
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[at..at + 8]);
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&bytes[at + 8..at + 72]);
        signatures.push((id, sig));
    }
    Ok((&bytes[HEAD..content_end], stored, signatures))
}

fn invalid<T>(what: impl Into<String>) -> Result<T, LoadError> {
    Err(LoadError::Invalid { what: what.into() })
}

/// The verifier: every index in range, every condition program verified, every constraint
/// readable with its manager's scheme, the declared cost bound respected.
fn verify(
    content: BundleContent,
    hash: [u8; 32],
    signers: Vec<String>,
) -> Result<VerifiedBundle, LoadError> {
    let strings = content.strings.len() as u32;
    let s_ok = |i: u32| i < strings;
    let opt_ok = |i: Option<u32>, n: usize| i.is_none_or(|i| (i as usize) < n);
    let m = &content.manifest;
    if m.policies.len() != content.policies.len() {
        return invalid("manifest and policy table disagree");
    }
    if content.scopes.is_empty() || content.scopes[0].level != bundle::Level::Org {
        return invalid("scope 0 must be the organisation");
    }
    if content.scope_rules.len() != content.scopes.len() {
        return invalid("one rule table per scope");
    }
    for (i, s) in content.scopes.iter().enumerate() {
        if !s_ok(s.name) || !opt_ok(s.parent, content.scopes.len()) {
            return invalid(format!("scope {i}: index out of range"));
        }
        // Only a team has a parent, and it is a department: evaluation adds it to the path.
        let parent_ok = match s.parent {
            None => true,
            Some(p) => {
                s.level == bundle::Level::Team
                    && content.scopes[p as usize].level == bundle::Level::Department
            }
        };
        if !parent_ok {
            return invalid(format!("scope {i}: only a team has a parent, a department"));
        }
    }
    let mut schemes = Vec::with_capacity(content.managers.len());
    for (i, mgr) in content.managers.iter().enumerate() {
        if !s_ok(mgr.id) {
            return invalid(format!("manager {i}: index out of range"));
        }
        // The safety floor is the runtime's own: a bundle cannot unguard an OS update.
        if crate::floor::is_guarded(content.str(mgr.id)) && !mgr.capabilities.guarded {
            return invalid(format!(
                "manager {i} (`{}`) is a guarded action by the runtime's safety floor, but the bundle says it is not",
                content.str(mgr.id)
            ));
        }
        schemes.push(mgr.scheme);
    }
    for (i, p) in content.policies.iter().enumerate() {
        if !s_ok(p.name) {
            return invalid(format!("policy {i}: index out of range"));
        }
    }
    for (i, o) in content.origins.iter().enumerate() {
        if (o.policy as usize) >= content.policies.len()
            || (o.scope as usize) >= content.scopes.len()
            || !s_ok(o.file)
        {
            return invalid(format!("origin {i}: index out of range"));
        }
    }
    let mut programs = Vec::with_capacity(content.conditions.len());
    let mut total_cost: u64 = 0;
    for (i, c) in content.conditions.iter().enumerate() {
        if !s_ok(c.source) || (c.origin as usize) >= content.origins.len() {
            return invalid(format!("condition {i}: index out of range"));
        }
        let program = vm::verify(&c.code, content.strings.len()).map_err(
            |VerifyError { offset, reason }| LoadError::Invalid {
                what: format!("condition {i} at byte {offset}: {reason}"),
            },
        )?;
        if program.cost() > c.cost || program.max_stack() > c.max_stack {
            return invalid(format!(
                "condition {i}: declared bounds are lower than the verified ones"
            ));
        }
        total_cost = total_cost.saturating_add(program.cost());
        programs.push(program);
    }
    if total_cost > vm::MAX_TOTAL_COST {
        return invalid(format!(
            "conditions cost {total_cost} together, above the ceiling {}",
            vm::MAX_TOTAL_COST
        ));
    }
    if total_cost > content.cost_bound {
        return invalid(format!(
            "conditions cost {total_cost}, more than the declared bound {}",
            content.cost_bound
        ));
    }
    let mut constraints = Vec::with_capacity(content.rules.len());
    for (i, r) in content.rules.iter().enumerate() {
        let ok = (r.manager as usize) < content.managers.len()
            && s_ok(r.pattern)
            && s_ok(r.display)
            && opt_ok(r.constraint, content.strings.len())
            && opt_ok(r.condition, content.conditions.len())
            && opt_ok(r.because, content.strings.len())
            && (r.origin as usize) < content.origins.len();
        if !ok {
            return invalid(format!("rule {i}: index out of range"));
        }
        if r.glob && matches!(r.kind, bundle::RuleKind::Require | bundle::RuleKind::Pin) {
            return invalid(format!("rule {i}: require and pin need an exact package"));
        }
        // Only a deny can be final: a "final require" would be decided as a final deny.
        if r.is_final && r.kind != bundle::RuleKind::Deny {
            return invalid(format!(
                "rule {i}: only a deny can be final, not a {}",
                r.kind
            ));
        }
        let scheme = schemes[r.manager as usize];
        constraints.push(if let Some(constraint) = r.constraint {
            let text = content.str(constraint);
            Some(
                scheme
                    .parse_constraint(text)
                    .map_err(|e| LoadError::Invalid {
                        what: format!("rule {i}: {e}"),
                    })?,
            )
        } else {
            if r.kind == bundle::RuleKind::Pin {
                return invalid(format!("rule {i}: a pin needs a version"));
            }
            None
        });
    }
    for (i, table) in content.scope_rules.iter().enumerate() {
        if table.iter().any(|&r| (r as usize) >= content.rules.len()) {
            return invalid(format!("scope {i}: rule index out of range"));
        }
    }
    for (i, t) in content.toolchains.iter().enumerate() {
        let ok = s_ok(t.name)
            && t.sources
                .iter()
                .all(|&s| (s as usize) < content.managers.len())
            && opt_ok(t.condition, content.conditions.len())
            && (t.origin as usize) < content.origins.len();
        if !ok {
            return invalid(format!("toolchain {i}: index out of range"));
        }
    }
    for (i, w) in content.windows.iter().enumerate() {
        let ok = (w.policy as usize) < content.policies.len()
            && w.days < 128
            && w.start_minute < 1440
            && w.end_minute <= 1440
            && opt_ok(w.zone, content.strings.len())
            && opt_ok(w.condition, content.conditions.len());
        if !ok {
            return invalid(format!("window {i}: out of range"));
        }
    }
    for (i, g) in content.guards.iter().enumerate() {
        let ok = (g.manager as usize) < content.managers.len()
            && opt_ok(g.condition, content.conditions.len())
            && (g.origin as usize) < content.origins.len();
        if !ok {
            return invalid(format!("guard {i}: index out of range"));
        }
        let guarded = content.managers[g.manager as usize].capabilities.guarded;
        if guarded && g.level == bundle::GuardLevel::Auto {
            return invalid(format!("guard {i}: a guarded action cannot be automatic"));
        }
    }
    let mut exact_index: Vec<HashMap<String, Vec<u32>>> =
        vec![HashMap::new(); content.managers.len()];
    let mut glob_index: Vec<Vec<u32>> = vec![Vec::new(); content.managers.len()];
    for (i, r) in content.rules.iter().enumerate() {
        let slot = r.manager as usize;
        if r.glob {
            glob_index[slot].push(i as u32);
        } else {
            exact_index[slot]
                .entry(content.str(r.pattern).to_string())
                .or_default()
                .push(i as u32);
        }
    }
    // One statement is one source rule: the origin's policy and position, and what it names
    // (a set expands to several rules at one position, one per package).
    let rule_groups = binding_groups(content.rules.len(), |i| {
        let r = &content.rules[i];
        let o = &content.origins[r.origin as usize];
        (
            o.policy, o.file, o.line, o.column, r.manager, r.pattern, r.glob,
        )
    });
    let source_rule = first_entries(content.rules.len(), &rule_groups);
    let toolchain_groups = binding_groups(content.toolchains.len(), |i| {
        let t = &content.toolchains[i];
        let o = &content.origins[t.origin as usize];
        (o.policy, o.file, o.line, o.column, t.name)
    });
    let mut rules_by_scope: Vec<Vec<u32>> = vec![Vec::new(); content.scopes.len()];
    for (i, r) in content.rules.iter().enumerate() {
        let scope = content.origins[r.origin as usize].scope as usize;
        if let Some(list) = rules_by_scope.get_mut(scope) {
            list.push(i as u32);
        }
    }
    let mut group_of = vec![None; content.rules.len()];
    for (g, group) in rule_groups.iter().enumerate() {
        for &i in group {
            group_of[i as usize] = Some(g as u32);
        }
    }
    fn cells<T>(n: usize) -> Vec<OnceLock<T>> {
        (0..n).map(|_| OnceLock::new()).collect()
    }
    let origins = cells(content.origins.len());
    let rule_targets = cells(content.rules.len());
    let manager_ids = cells(content.managers.len());
    let strings = cells(content.strings.len());
    Ok(VerifiedBundle {
        origins,
        rule_targets,
        manager_ids,
        strings,
        content,
        hash,
        programs,
        constraints,
        schemes,
        exact_index,
        glob_index,
        source_rule,
        rule_groups,
        toolchain_groups,
        rules_by_scope,
        group_of,
        signers,
    })
}

/// A rule bound to several scopes has one entry per binding, identical but for the scope of
/// its origin. The groups of entries that share a source rule (only those with more than one
/// entry), so evaluation can keep only the binding that gives the rule its level on a device
/// (DESIGN §3). `key` says which entries are one source rule.
fn binding_groups<K: Ord>(n: usize, key: impl Fn(usize) -> K) -> Vec<Vec<u32>> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    // Sorting by (key, index) keeps each group in entry order.
    order.sort_unstable_by(|&a, &b| key(a as usize).cmp(&key(b as usize)).then(a.cmp(&b)));
    let mut groups = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && key(order[j] as usize) == key(order[i] as usize) {
            j += 1;
        }
        if j - i > 1 {
            groups.push(order[i..j].to_vec());
        }
        i = j;
    }
    groups
}

/// Per rule entry: the first entry of its source rule (the rule's position in its statement).
fn first_entries(n: usize, groups: &[Vec<u32>]) -> Vec<u32> {
    let mut first: Vec<u32> = (0..n as u32).collect();
    for g in groups {
        for &e in g {
            first[e as usize] = g[0];
        }
    }
    first
}
