//! The device protocol's signed requests: what the agent signs and the server checks
//! (docs/server.md, "Device API"). This is bytes and keys only — no HTTP, no clock: the
//! caller supplies the method, the path, the time and the body.
//!
//! A device signs, with the ed25519 key it enrolled, the SHA-256 of
//!
//! ```text
//! "hpl-request-v1\0" METHOD "\n" PATH "\n" TIME "\n" NONCE "\n" hex(sha256(BODY))
//! ```
//!
//! (PATH with its query; TIME in Unix seconds; NONCE 32 hex digits, random). The domain prefix
//! keeps a request signature from ever being a bundle or manifest signature. The server refuses
//! a TIME outside [`REPLAY_WINDOW`] of its clock and a NONCE the device already used inside
//! it, so a captured request cannot be sent again.

use crate::load::{hex, key_id};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// The header naming the device (its id from enrollment).
pub const DEVICE_HEADER: &str = "hpl-device";
/// The request's time, Unix seconds.
pub const TIME_HEADER: &str = "hpl-time";
/// 32 hex digits the device never uses twice.
pub const NONCE_HEADER: &str = "hpl-nonce";
/// hex(ed25519 signature of [`request_digest`]).
pub const SIGNATURE_HEADER: &str = "hpl-signature";
/// Seconds a signed request stays acceptable either side of the server's clock.
pub const REPLAY_WINDOW: i64 = 300;
/// The prefix of public keys as `hpl keygen` and enrollment write them.
pub const PUBLIC_KEY_PREFIX: &str = "hpl-ed25519-public:";

/// The digest a device signs for one request.
pub fn request_digest(method: &str, path: &str, time: i64, nonce: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"hpl-request-v1\0");
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(time.to_string().as_bytes());
    h.update(b"\n");
    h.update(nonce.as_bytes());
    h.update(b"\n");
    h.update(hex(&Sha256::digest(body)).as_bytes());
    h.finalize().into()
}

/// Whether `signature_hex` is `public`'s signature of `digest` (strict ed25519: no malleable
/// or small-order forms). Malformed input is `false`, never a panic.
pub fn verify(public: &[u8; 32], digest: &[u8; 32], signature_hex: &str) -> bool {
    let Some(bytes) = unhex(signature_hex) else {
        return false;
    };
    let Ok(signature) = <[u8; 64]>::try_from(bytes.as_slice()) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    key.verify_strict(digest, &Signature::from_bytes(&signature))
        .is_ok()
}

/// A device's id: derived from its key, so enrolling the same key again gives the same id.
pub fn device_id(public: &[u8; 32]) -> String {
    format!("dev-{}", hex(&key_id(public)))
}

/// A nonce is 32 lowercase hex digits.
pub fn valid_nonce(nonce: &str) -> bool {
    nonce.len() == 32
        && nonce
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `hpl-ed25519-public:<64 hex>` (or the bare hex) as key bytes.
pub fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let bytes = unhex(text.strip_prefix(PUBLIC_KEY_PREFIX).unwrap_or(text))?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

/// Even-length hex as bytes; anything else is `None`.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_covers_every_part_of_the_request() {
        let base = request_digest("POST", "/v1/device/reports", 10, "ab", b"{}");
        assert_ne!(
            base,
            request_digest("GET", "/v1/device/reports", 10, "ab", b"{}")
        );
        assert_ne!(
            base,
            request_digest("POST", "/v1/device/reportz", 10, "ab", b"{}")
        );
        assert_ne!(
            base,
            request_digest("POST", "/v1/device/reports", 11, "ab", b"{}")
        );
        assert_ne!(
            base,
            request_digest("POST", "/v1/device/reports", 10, "ac", b"{}")
        );
        assert_ne!(
            base,
            request_digest("POST", "/v1/device/reports", 10, "ab", b"{ }")
        );
    }

    #[test]
    fn malformed_signatures_and_keys_are_false() {
        let d = [0u8; 32];
        assert!(!verify(&[0u8; 32], &d, ""));
        assert!(!verify(&[0u8; 32], &d, "zz"));
        assert!(!verify(&[0u8; 32], &d, &"00".repeat(64)));
        assert!(parse_public_key("hpl-ed25519-public:1234").is_none());
        assert!(unhex("abc").is_none());
        assert!(unhex("é1").is_none());
        assert!(valid_nonce(&"0a".repeat(16)));
        assert!(!valid_nonce(&"0A".repeat(16)));
    }
}
