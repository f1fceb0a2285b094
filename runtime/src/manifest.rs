//! Ring manifests: the control plane's signed word on which bundle a ring runs (issue 11,
//! docs/distribution.md).
//!
//! Two signing roles, as in TUF: the *policy key* (CI, offline) signs bundles; the server's
//! *distribution key* signs manifests `{tenant, ring, bundle hash, bundle version, manifest
//! version, issued_at, expires_at}`. A device trusts each key for its role only, so a stolen
//! distribution key can point a ring at any bundle CI signed — never at content of its own —
//! and a stolen policy key cannot pause or roll back a ring. Manifest versions only move
//! forward (the store keeps a high-water mark per tenant and ring), so replaying an old
//! manifest is refused; an expired manifest is not valid, so a frozen one stops working.
//!
//! The bytes (little-endian):
//!
//! ```text
//! "HPLM" | u16 format (1) | u32 body length | body | u8 signature count | count × (key id [8] | ed25519 [64])
//! body: str tenant | str ring | [32] bundle hash | u64 bundle version | u64 manifest version
//!       | i64 issued_at | i64 expires_at          (str: u16 length, at most 256, then UTF-8)
//! ```
//!
//! Each signature is over sha256(`"hpl-manifest-v1\0"` ‖ body): the domain tag keeps a
//! signature over a manifest from ever being one over a bundle's content hash.

use crate::bundle::SigningInput;
use crate::load::TrustedKeys;
use sha2::{Digest, Sha256};
use std::fmt;

pub const MAGIC: [u8; 4] = *b"HPLM";
pub const FORMAT_VERSION: u16 = 1;
const DOMAIN: &[u8] = b"hpl-manifest-v1\0";
/// The longest tenant or ring name.
pub const MAX_NAME: usize = 256;

/// What a manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingManifest {
    pub tenant: String,
    pub ring: String,
    /// sha256 of the bundle's content, as `VerifiedBundle::hash` gives it.
    pub bundle_hash: [u8; 32],
    pub bundle_version: u64,
    pub manifest_version: u64,
    /// Unix seconds.
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Why manifest bytes were refused. `code()` is stable, for events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    Truncated,
    NotAManifest,
    UnsupportedFormat {
        version: u16,
    },
    TrailingBytes,
    /// A name is longer than [`MAX_NAME`] or not UTF-8.
    BadName,
    Unsigned,
    /// No signature by a trusted distribution key (a policy key is not one).
    UnknownKey {
        key_id: String,
    },
    BadSignature {
        key_id: String,
    },
}

impl ManifestError {
    pub fn code(&self) -> &'static str {
        match self {
            ManifestError::Truncated => "manifest_truncated",
            ManifestError::NotAManifest => "not_a_manifest",
            ManifestError::UnsupportedFormat { .. } => "manifest_unsupported_format",
            ManifestError::TrailingBytes => "manifest_trailing_bytes",
            ManifestError::BadName => "manifest_bad_name",
            ManifestError::Unsigned => "manifest_unsigned",
            ManifestError::UnknownKey { .. } => "manifest_unknown_key",
            ManifestError::BadSignature { .. } => "manifest_bad_signature",
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Truncated => write!(f, "the manifest is truncated"),
            ManifestError::NotAManifest => write!(f, "not a ring manifest"),
            ManifestError::UnsupportedFormat { version } => {
                write!(f, "manifest format {version} is not supported")
            }
            ManifestError::TrailingBytes => write!(f, "bytes after the manifest's signatures"),
            ManifestError::BadName => write!(f, "a tenant or ring name is malformed"),
            ManifestError::Unsigned => write!(f, "the manifest is not signed"),
            ManifestError::UnknownKey { key_id } => write!(
                f,
                "the manifest is signed by {key_id}, which is not a trusted distribution key"
            ),
            ManifestError::BadSignature { key_id } => {
                write!(f, "the signature by {key_id} does not verify")
            }
        }
    }
}

impl std::error::Error for ManifestError {}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(MAX_NAME)];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

impl RingManifest {
    /// The signed body.
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.tenant.len() + self.ring.len());
        put_str(&mut out, &self.tenant);
        put_str(&mut out, &self.ring);
        out.extend_from_slice(&self.bundle_hash);
        out.extend_from_slice(&self.bundle_version.to_le_bytes());
        out.extend_from_slice(&self.manifest_version.to_le_bytes());
        out.extend_from_slice(&self.issued_at.to_le_bytes());
        out.extend_from_slice(&self.expires_at.to_le_bytes());
        out
    }
}

/// What each signature covers.
pub fn signed_digest(body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(body);
    h.finalize().into()
}

/// The manifest's bytes, signed by each signer (the server's distribution keys). Names longer
/// than [`MAX_NAME`] are cut, so check them before (the server refuses such names).
pub fn sign_manifest(m: &RingManifest, signers: &[SigningInput<'_>]) -> Vec<u8> {
    let body = m.body();
    let digest = signed_digest(&body);
    let mut out = Vec::with_capacity(body.len() + 16 + 72 * signers.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out.push(signers.len().min(255) as u8);
    for s in signers.iter().take(255) {
        out.extend_from_slice(&s.key_id);
        out.extend_from_slice(&(s.sign)(&digest));
    }
    out
}

/// A manifest whose signature by a trusted distribution key verified. Only [`verify`] makes
/// one; whether it is fresh and newer is the store's question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedManifest {
    manifest: RingManifest,
    signer: String,
}

impl VerifiedManifest {
    pub fn manifest(&self) -> &RingManifest {
        &self.manifest
    }

    /// The key id (hex) whose signature verified.
    pub fn signer(&self) -> &str {
        &self.signer
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ManifestError> {
        let end = self.at.checked_add(n).ok_or(ManifestError::Truncated)?;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or(ManifestError::Truncated)?;
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ManifestError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn name(&mut self) -> Result<String, ManifestError> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        if len > MAX_NAME {
            return Err(ManifestError::BadName);
        }
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| ManifestError::BadName)
    }
}

/// Reads and verifies manifest bytes against the distribution keys. Never panics.
pub fn verify(
    bytes: &[u8],
    distribution_keys: &TrustedKeys,
) -> Result<VerifiedManifest, ManifestError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4).map_err(|_| ManifestError::NotAManifest)? != MAGIC {
        return Err(ManifestError::NotAManifest);
    }
    let version = u16::from_le_bytes(r.array()?);
    if version != FORMAT_VERSION {
        return Err(ManifestError::UnsupportedFormat { version });
    }
    let len = u32::from_le_bytes(r.array()?) as usize;
    let body = r.take(len)?;
    let count = r.take(1)?[0] as usize;
    let mut signatures = Vec::with_capacity(count);
    for _ in 0..count {
        signatures.push((r.array::<8>()?, r.array::<64>()?));
    }
    if r.at != bytes.len() {
        return Err(ManifestError::TrailingBytes);
    }
    let mut b = Reader { bytes: body, at: 0 };
    let manifest = RingManifest {
        tenant: b.name()?,
        ring: b.name()?,
        bundle_hash: b.array()?,
        bundle_version: u64::from_le_bytes(b.array()?),
        manifest_version: u64::from_le_bytes(b.array()?),
        issued_at: i64::from_le_bytes(b.array()?),
        expires_at: i64::from_le_bytes(b.array()?),
    };
    if b.at != body.len() {
        return Err(ManifestError::TrailingBytes);
    }
    if signatures.is_empty() {
        return Err(ManifestError::Unsigned);
    }
    let digest = signed_digest(body);
    let mut first_error = None;
    for (id, sig) in &signatures {
        let key_id = crate::load::hex(id);
        match distribution_keys.verify(id, &digest, sig) {
            Some(true) => {
                return Ok(VerifiedManifest {
                    manifest,
                    signer: key_id,
                })
            }
            Some(false) => {
                first_error.get_or_insert(ManifestError::BadSignature { key_id });
            }
            None => {
                first_error.get_or_insert(ManifestError::UnknownKey { key_id });
            }
        }
    }
    Err(first_error.unwrap_or(ManifestError::Unsigned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn trusting(k: &SigningKey) -> TrustedKeys {
        let mut t = TrustedKeys::new();
        t.add(k.verifying_key().as_bytes()).unwrap();
        t
    }

    fn manifest() -> RingManifest {
        RingManifest {
            tenant: "acme".into(),
            ring: "canary".into(),
            bundle_hash: [7; 32],
            bundle_version: 41,
            manifest_version: 3,
            issued_at: 1_795_900_000,
            expires_at: 1_796_500_000,
        }
    }

    fn signed(m: &RingManifest, k: &SigningKey) -> Vec<u8> {
        let id = crate::load::key_id(k.verifying_key().as_bytes());
        let sign = |d: &[u8; 32]| k.sign(d).to_bytes();
        sign_manifest(
            m,
            &[SigningInput {
                key_id: id,
                sign: &sign,
            }],
        )
    }

    #[test]
    fn a_signed_manifest_verifies_and_reads_back() {
        let k = key(1);
        let v = verify(&signed(&manifest(), &k), &trusting(&k)).unwrap();
        assert_eq!(v.manifest(), &manifest());
    }

    /// Each key for its role only: a manifest signed by another key (a policy key, say) is
    /// refused, and so is one whose body was changed after signing.
    #[test]
    fn other_keys_and_altered_bodies_are_refused() {
        let (distribution, policy) = (key(1), key(2));
        let bytes = signed(&manifest(), &policy);
        assert_eq!(
            verify(&bytes, &trusting(&distribution)).unwrap_err().code(),
            "manifest_unknown_key"
        );
        let mut bytes = signed(&manifest(), &distribution);
        // The manifest version is 8 bytes after the bundle version, after two names and a hash.
        let at = 10 + 2 + 4 + 2 + 6 + 32 + 8;
        bytes[at] ^= 1;
        assert_eq!(
            verify(&bytes, &trusting(&distribution)).unwrap_err().code(),
            "manifest_bad_signature"
        );
    }

    /// Every truncation and every single-byte change is an error, never a panic or a pass.
    #[test]
    fn truncated_or_flipped_bytes_never_verify() {
        let k = key(1);
        let keys = trusting(&k);
        let bytes = signed(&manifest(), &k);
        for n in 0..bytes.len() {
            assert!(verify(&bytes[..n], &keys).is_err(), "truncated at {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(verify(&b, &keys).is_err(), "flipped byte {i}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            verify(&longer, &keys).unwrap_err(),
            ManifestError::TrailingBytes
        );
    }

    /// A manifest signature is never a bundle signature: the digest is domain-separated.
    #[test]
    fn the_signed_digest_is_domain_separated() {
        let body = manifest().body();
        let plain: [u8; 32] = Sha256::digest(&body).into();
        assert_ne!(signed_digest(&body), plain);
    }
}
