//! The device's identity: its ed25519 key and what enrollment returned, in `<store>/agent/`.

use ed25519_dalek::SigningKey;
use hpl_runtime::load::hex;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the agent keeps about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub server: String,
    pub device_id: String,
    pub tenant: String,
    /// The device id its inventories carry.
    pub serial: String,
    /// The ring the server last said the device is on.
    pub ring: String,
}

/// The agent's directory inside the store.
pub fn dir(store: &Path) -> PathBuf {
    store.join("agent")
}

fn key_path(store: &Path) -> PathBuf {
    dir(store).join("device.key")
}

fn identity_path(store: &Path) -> PathBuf {
    dir(store).join("identity.json")
}

/// Writes `bytes` to `path` through a temporary file, durably; `private` makes it 0600.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The device key: made on first use, then read back. Never leaves the device.
pub fn key(store: &Path) -> std::io::Result<SigningKey> {
    let path = key_path(store);
    if let Ok(bytes) = hpl_runtime::store::read_regular_file(&path, 200) {
        let text = String::from_utf8_lossy(&bytes);
        let seed = hpl_runtime::protocol::unhex(text.trim())
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a device key", path.display()),
                )
            })?;
        return Ok(SigningKey::from_bytes(&seed));
    }
    fs::create_dir_all(dir(store))?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| std::io::Error::other(format!("no randomness: {e}")))?;
    write_atomically(&path, hex(&seed).as_bytes(), true)?;
    Ok(SigningKey::from_bytes(&seed))
}

pub fn load(store: &Path) -> Option<Identity> {
    let bytes = hpl_runtime::store::read_regular_file(&identity_path(store), 64 * 1024).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn save(store: &Path, identity: &Identity) -> std::io::Result<()> {
    fs::create_dir_all(dir(store))?;
    let text = serde_json::to_vec_pretty(identity).unwrap_or_default();
    write_atomically(&identity_path(store), &text, false)
}
