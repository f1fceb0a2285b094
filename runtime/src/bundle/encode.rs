//! Bundle content to bytes, and the signed envelope around it.

use super::codec::Writer;
use super::*;
use sha2::{Digest, Sha256};

/// Section tags, in the order they appear.
pub(super) const SECTIONS: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

fn opt_i64(w: &mut Writer, v: Option<i64>) {
    match v {
        Some(v) => {
            w.u8(1);
            w.i64(v);
        }
        None => w.u8(0),
    }
}

/// An optional index: [`WIRE_NONE`] when absent.
fn opt_u32(w: &mut Writer, v: Option<u32>) {
    w.u32(v.unwrap_or(WIRE_NONE));
}

fn section(out: &mut Writer, tag: u8, body: impl FnOnce(&mut Writer)) {
    let mut w = Writer::default();
    body(&mut w);
    out.u8(tag);
    out.bytes(&w.bytes);
}

/// Encodes the content; deterministic (no maps, no clocks).
pub fn encode(c: &BundleContent) -> Vec<u8> {
    let mut out = Writer::default();
    section(&mut out, 1, |w| {
        let m = &c.manifest;
        w.str(&m.tenant);
        w.u64(m.bundle_version);
        w.len(m.policies.len());
        for (id, version) in &m.policies {
            w.str(id);
            w.u64(*version);
        }
        w.i64(m.issued_at);
        opt_i64(w, m.expires_at);
        w.str(&m.compiler_version);
        w.bytes.extend_from_slice(&m.source_hash);
        w.u64(c.cost_bound);
    });
    section(&mut out, 2, |w| {
        w.len(c.strings.len());
        for s in &c.strings {
            w.str(s);
        }
    });
    section(&mut out, 3, |w| {
        w.len(c.managers.len());
        for m in &c.managers {
            w.u32(m.id);
            w.u8(m.scheme.as_u8());
            w.u8(m.capabilities.bits());
            w.u8(m.phase.as_u8());
        }
    });
    section(&mut out, 4, |w| {
        w.len(c.scopes.len());
        for s in &c.scopes {
            w.u8(s.level.as_u8());
            w.u32(s.name);
            opt_u32(w, s.parent);
        }
    });
    section(&mut out, 5, |w| {
        w.len(c.policies.len());
        for p in &c.policies {
            w.u32(p.name);
            w.u64(p.version);
            w.u8(p.mode.as_u8());
        }
    });
    section(&mut out, 6, |w| {
        w.len(c.origins.len());
        for o in &c.origins {
            w.u32(o.policy);
            w.u32(o.scope);
            w.u32(o.file);
            w.u32(o.line);
            w.u32(o.column);
        }
    });
    section(&mut out, 7, |w| {
        w.len(c.rules.len());
        for r in &c.rules {
            w.u8(r.kind.as_u8());
            w.u8(u8::from(r.is_final) | (u8::from(r.warn) << 1) | (u8::from(r.glob) << 2));
            w.u32(r.manager);
            w.u32(r.pattern);
            w.u32(r.display);
            opt_u32(w, r.constraint);
            opt_u32(w, r.condition);
            opt_u32(w, r.because);
            w.u32(r.origin);
        }
    });
    section(&mut out, 8, |w| {
        w.len(c.scope_rules.len());
        for rules in &c.scope_rules {
            w.len(rules.len());
            for r in rules {
                w.u32(*r);
            }
        }
    });
    section(&mut out, 9, |w| {
        w.len(c.conditions.len());
        for cond in &c.conditions {
            w.bytes(&cond.code);
            w.u16(cond.max_stack);
            w.u64(cond.cost);
            w.u32(cond.source);
            w.u32(cond.origin);
        }
    });
    section(&mut out, 10, |w| {
        w.len(c.toolchains.len());
        for t in &c.toolchains {
            w.u32(t.name);
            w.len(t.sources.len());
            for s in &t.sources {
                w.u32(*s);
            }
            opt_u32(w, t.condition);
            w.u32(t.origin);
        }
    });
    section(&mut out, 11, |w| {
        w.len(c.windows.len());
        for win in &c.windows {
            w.u32(win.policy);
            w.u8(win.days);
            w.u16(win.start_minute);
            w.u16(win.end_minute);
            opt_u32(w, win.zone);
            opt_u32(w, win.condition);
        }
    });
    section(&mut out, 12, |w| {
        w.len(c.guards.len());
        for g in &c.guards {
            w.u32(g.manager);
            w.u8(g.level.as_u8());
            opt_u32(w, g.condition);
            w.u32(g.origin);
        }
    });
    out.bytes
}

/// The 32-byte content hash that signatures cover: sha256 of everything before it.
pub(crate) fn content_hash(head_and_content: &[u8]) -> [u8; 32] {
    Sha256::digest(head_and_content).into()
}

/// A signer: its key id and a function that signs the content hash.
pub struct SigningInput<'a> {
    pub key_id: [u8; 8],
    pub sign: &'a dyn Fn(&[u8; 32]) -> [u8; 64],
}

/// Wraps encoded content in the envelope: magic, format version, length, content, content
/// hash, signatures.
pub fn sign_bundle(content: &[u8], signers: &[SigningInput<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 128);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(content.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(content);
    let hash = content_hash(&out);
    out.extend_from_slice(&hash);
    out.push(u8::try_from(signers.len()).unwrap_or(u8::MAX));
    for s in signers.iter().take(255) {
        out.extend_from_slice(&s.key_id);
        out.extend_from_slice(&(s.sign)(&hash));
    }
    out
}
