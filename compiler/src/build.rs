//! Building signed bundles, and the key files `hpl keygen` writes.
//!
//! Key files are text: `hpl-ed25519-secret:<64 hex digits>` (the 32-byte seed) and
//! `hpl-ed25519-public:<64 hex digits>`, each followed by a newline.

use crate::driver::Analysis;
use crate::lower::{lower, BuildOptions, LowerError};
use ed25519_dalek::{Signer, SigningKey};
use hpl_runtime::bundle::{encode, sign_bundle, SigningInput};
use hpl_runtime::load::{hex, key_id, TrustedKeys, VerifiedBundle};

const SECRET_PREFIX: &str = "hpl-ed25519-secret:";
const PUBLIC_PREFIX: &str = "hpl-ed25519-public:";

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != N * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// A fresh signing key from the operating system's randomness.
pub fn generate_key() -> Result<SigningKey, String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    Ok(SigningKey::from_bytes(&seed))
}

pub fn secret_key_text(key: &SigningKey) -> String {
    format!("{SECRET_PREFIX}{}\n", hex(&key.to_bytes()))
}

pub fn public_key_text(key: &SigningKey) -> String {
    format!("{PUBLIC_PREFIX}{}\n", hex(key.verifying_key().as_bytes()))
}

pub fn parse_secret_key(text: &str) -> Result<SigningKey, String> {
    let body = text
        .trim()
        .strip_prefix(SECRET_PREFIX)
        .ok_or("not an hpl secret key (expected `hpl-ed25519-secret:`)")?;
    let seed = unhex::<32>(body).ok_or("the secret key is not 64 hex digits")?;
    Ok(SigningKey::from_bytes(&seed))
}

pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    let body = text
        .trim()
        .strip_prefix(PUBLIC_PREFIX)
        .ok_or("not an hpl public key (expected `hpl-ed25519-public:`)")?;
    unhex::<32>(body).ok_or_else(|| "the public key is not 64 hex digits".to_string())
}

/// Key id of a signing key, in hex.
pub fn key_id_hex(key: &SigningKey) -> String {
    hex(&key_id(key.verifying_key().as_bytes()))
}

/// Lowers, encodes and signs. The bytes depend only on the sources and the options.
pub fn build_bundle(
    analysis: &Analysis,
    options: &BuildOptions,
    keys: &[&SigningKey],
) -> Result<Vec<u8>, LowerError> {
    let content = lower(analysis, options)?;
    let bytes = encode(&content);
    let sign_fns: Vec<_> = keys
        .iter()
        .map(|k| move |hash: &[u8; 32]| k.sign(hash).to_bytes())
        .collect();
    let inputs: Vec<SigningInput<'_>> = keys
        .iter()
        .zip(&sign_fns)
        .map(|(k, f)| SigningInput {
            key_id: key_id(k.verifying_key().as_bytes()),
            sign: f,
        })
        .collect();
    Ok(sign_bundle(&bytes, &inputs))
}

/// Compiles straight to a verified bundle, signing with a throw-away key: for `hpl eval
/// --policy DIR` and tests. The bundle still goes through the runtime's loader and verifier.
pub fn compile_verified(
    analysis: &Analysis,
    options: &BuildOptions,
) -> Result<VerifiedBundle, String> {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let bytes = build_bundle(analysis, options, &[&key]).map_err(|e| e.to_string())?;
    let mut trusted = TrustedKeys::new();
    trusted
        .add(key.verifying_key().as_bytes())
        .map_err(|e| e.to_string())?;
    hpl_runtime::load::load(&bytes, &trusted)
        .map_err(|e| format!("internal compiler error: the runtime rejects the bundle: {e}"))
}
