//! The control plane's audit trail as a hash chain: what an entry's hash covers and how a chain
//! is checked. The server writes the chain and `hpl-server audit verify` checks its database;
//! `hpl audit verify` checks an export with the same code, so an auditor needs no database
//! access to prove that nothing was changed, removed or slipped in (docs/server.md, "Audit
//! trail").
//!
//! Each tenant has its own chain (the server's own entries are the chain `""`): one tenant's
//! export proves its chain without showing anyone else's. An entry's hash is
//!
//! ```text
//! hex(sha256("hpl-audit-v1\0" JSON[chain, seq, at, actor, action, subject, before, after,
//!                                  emergency, prev_hash]))
//! ```
//!
//! (JSON of the array: every string quoted and escaped, so no two entries share the bytes),
//! and `prev_hash` is the hash of entry `seq - 1`, or for `seq = 1` the chain's genesis
//! `hex(sha256("hpl-audit-genesis\0" chain))` — a chain cannot be passed off as another's.

use crate::load::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One entry as stored and exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The tenant, or `""` for the server's own entries.
    pub chain: String,
    /// 1, 2, 3, … in its chain, without gaps.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// JSON text of the state before and after (as stored: the hash covers these bytes).
    pub before: Option<String>,
    pub after: Option<String>,
    /// Done without approval because something is on fire: pause, resume, rollback.
    pub emergency: bool,
    pub prev_hash: String,
    pub hash: String,
}

/// The `prev_hash` of a chain's first entry.
pub fn genesis(chain: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"hpl-audit-genesis\0");
    h.update(chain.as_bytes());
    hex(&h.finalize())
}

impl AuditEntry {
    /// The hash this entry's fields give (what `hash` must be).
    pub fn computed_hash(&self) -> String {
        let fields = serde_json::json!([
            self.chain,
            self.seq,
            self.at,
            self.actor,
            self.action,
            self.subject,
            self.before,
            self.after,
            self.emergency,
            self.prev_hash,
        ]);
        let mut h = Sha256::new();
        h.update(b"hpl-audit-v1\0");
        h.update(fields.to_string().as_bytes());
        hex(&h.finalize())
    }
}

/// An entry as an export line: an OCSF API Activity (class 6003) whose fields are all taken
/// from the entry, which is whole under `unmapped.hpl.entry` — so a verifier checks the hash
/// of the entry and that the line is exactly this function of it (a SIEM reading the OCSF
/// fields reads what the chain proves).
pub fn ocsf(e: &AuditEntry) -> serde_json::Value {
    serde_json::json!({
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_name": e.action,
        "time": e.at.saturating_mul(1000),
        "severity_id": if e.emergency { 3 } else { 1 },
        "actor": { "user": { "uid": e.actor } },
        "api": { "operation": e.action },
        "resources": [{ "name": e.subject, "type": "hpl" }],
        "metadata": {
            "version": "1.1.0",
            "uid": format!("audit:{}:{}", e.chain, e.seq),
            "product": { "name": "hpl-server", "vendor_name": "hpl", "version": env!("CARGO_PKG_VERSION") },
        },
        "unmapped": { "hpl": { "kind": "audit", "entry": e } },
    })
}

/// Where a chain stops proving itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    pub chain: String,
    /// The first entry that does not check (or where one is missing).
    pub seq: u64,
    pub reason: String,
}

/// What [`verify`] proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub chain: String,
    pub entries: u64,
    /// The last entry's hash (the genesis for an empty chain): record it elsewhere, and a
    /// later verification that ends on it proves nothing before it changed.
    pub head: String,
}

/// Checks one chain's entries in order, from `seq = first` (1 for a whole chain; an export
/// from a cursor starts later and then `start_hash` is the hash of entry `first - 1`).
pub fn verify(
    chain: &str,
    entries: &[AuditEntry],
    first: u64,
    start_hash: &str,
) -> Result<Verified, BrokenLink> {
    let broken = |seq: u64, reason: String| BrokenLink {
        chain: chain.to_string(),
        seq,
        reason,
    };
    let mut prev = start_hash.to_string();
    let mut expected = first;
    for e in entries {
        if e.chain != chain {
            return Err(broken(
                expected,
                format!("an entry of chain `{}` is in chain `{chain}`", e.chain),
            ));
        }
        if e.seq != expected {
            return Err(broken(
                expected,
                format!("entry {expected} is missing (the next entry is {})", e.seq),
            ));
        }
        if e.prev_hash != prev {
            return Err(broken(
                e.seq,
                "its prev_hash is not the hash of the entry before it".into(),
            ));
        }
        if e.computed_hash() != e.hash {
            return Err(broken(
                e.seq,
                "its fields do not give its hash (the entry was changed)".into(),
            ));
        }
        prev = e.hash.clone();
        expected += 1;
    }
    Ok(Verified {
        chain: chain.to_string(),
        entries: expected - first,
        head: prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map_or(genesis("acme"), |e| e.hash.clone());
            let mut e = AuditEntry {
                chain: "acme".into(),
                seq,
                at: 1_700_000_000 + seq as i64,
                actor: "oidc:acme:alice".into(),
                action: "ring.promote".into(),
                subject: "ring pilot".into(),
                before: None,
                after: Some(format!("{{\"release\":{seq}}}")),
                emergency: false,
                prev_hash: prev,
                hash: String::new(),
            };
            e.hash = e.computed_hash();
            out.push(e);
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies_and_every_kind_of_tampering_is_found_at_its_entry() {
        let good = chain(5);
        let v = verify("acme", &good, 1, &genesis("acme")).unwrap();
        assert_eq!((v.entries, v.head.as_str()), (5, good[4].hash.as_str()));
        // From a cursor.
        assert!(verify("acme", &good[2..], 3, &good[1].hash).is_ok());

        let mut changed = good.clone();
        changed[2].actor = "mallory".into();
        assert_eq!(
            verify("acme", &changed, 1, &genesis("acme"))
                .unwrap_err()
                .seq,
            3
        );

        let mut removed = good.clone();
        removed.remove(1);
        let e = verify("acme", &removed, 1, &genesis("acme")).unwrap_err();
        assert_eq!(e.seq, 2, "{e:?}");

        // Recomputing the changed entry's own hash breaks the next link instead.
        let mut rehashed = good.clone();
        rehashed[2].subject = "ring broad".into();
        rehashed[2].hash = rehashed[2].computed_hash();
        assert_eq!(
            verify("acme", &rehashed, 1, &genesis("acme"))
                .unwrap_err()
                .seq,
            4
        );

        // Another tenant's chain does not pass as this one's.
        assert!(verify("globex", &good, 1, &genesis("globex")).is_err());
        assert_ne!(genesis("acme"), genesis("globex"));
    }
}
