//! The snapshot store: the last valid signed bundles, kept on disk for offline use.
//!
//! Bundles are written atomically — to a temporary file in the store's directory, `fsync`,
//! `rename` to `bundle-<version>.hplb`, `fsync` of the directory — so a crash at any point
//! leaves either the old set of files or the new one. The active snapshot is the valid bundle
//! with the highest version: files that do not load (corrupt, tampered, unknown key), expired
//! bundles and leftovers of interrupted writes are skipped. A new bundle is installed only if it
//! loads, is not expired, is for the configured tenant and is newer than the active one;
//! otherwise it is rejected with a reason, and the active snapshot stays. Versions only move
//! forward: a rollback is a new, higher version with old content. Nothing here waits on a
//! network.

use crate::eval::timestamp;
use crate::events::{Event, EventType};
use crate::load::{load, LoadError, TrustedKeys, VerifiedBundle};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct SnapshotStore {
    dir: PathBuf,
    keys: TrustedKeys,
    tenant: Option<String>,
}

/// Why a bundle was not installed. `code()` is what `policy_rejected` events carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Invalid(LoadError),
    Expired {
        expires_at: i64,
    },
    /// Not newer than the active snapshot.
    NotNewer {
        version: u64,
        active: u64,
    },
    WrongTenant {
        tenant: String,
    },
    Io(String),
}

impl Rejection {
    pub fn code(&self) -> String {
        match self {
            Rejection::Invalid(e) => e.code().to_string(),
            Rejection::Expired { .. } => "expired".into(),
            Rejection::NotNewer { .. } => "not_newer".into(),
            Rejection::WrongTenant { .. } => "wrong_tenant".into(),
            Rejection::Io(_) => "io_error".into(),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Invalid(e) => write!(f, "{e}"),
            Rejection::Expired { expires_at } => {
                write!(f, "the bundle expired at {}", timestamp(*expires_at))
            }
            Rejection::NotNewer { version, active } => write!(
                f,
                "bundle version {version} is not newer than the active version {active}"
            ),
            Rejection::WrongTenant { tenant } => write!(f, "the bundle is for tenant `{tenant}`"),
            Rejection::Io(e) => write!(f, "cannot write the snapshot: {e}"),
        }
    }
}

static WRITE_COUNTER: AtomicU64 = AtomicU64::new(0);

fn file_name(version: u64) -> String {
    format!("bundle-{version:020}.hplb")
}

impl SnapshotStore {
    /// Opens (and creates) a store. `tenant`, when given, is the only tenant accepted.
    pub fn open(
        dir: impl Into<PathBuf>,
        keys: TrustedKeys,
        tenant: Option<String>,
    ) -> std::io::Result<SnapshotStore> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(SnapshotStore { dir, keys, tenant })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn candidates(&self) -> Vec<(u64, PathBuf)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<(u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let version = name
                    .strip_prefix("bundle-")?
                    .strip_suffix(".hplb")?
                    .parse()
                    .ok()?;
                Some((version, e.path()))
            })
            .collect();
        out.sort_by_key(|a| std::cmp::Reverse(a.0));
        out
    }

    fn acceptable(&self, bundle: &VerifiedBundle, now: i64) -> Result<(), Rejection> {
        let m = &bundle.content().manifest;
        if let Some(expires_at) = m.expires_at {
            if now >= expires_at {
                return Err(Rejection::Expired { expires_at });
            }
        }
        if let Some(t) = &self.tenant {
            if &m.tenant != t {
                return Err(Rejection::WrongTenant {
                    tenant: m.tenant.clone(),
                });
            }
        }
        Ok(())
    }

    /// The active snapshot: the newest file that loads, verifies, is for this tenant and has
    /// not expired. `None` means there is no valid snapshot.
    pub fn active(&self, now: i64) -> Option<VerifiedBundle> {
        for (version, path) in self.candidates() {
            let Ok(bytes) = fs::read(&path) else { continue };
            let Ok(bundle) = load(&bytes, &self.keys) else {
                continue;
            };
            // The file name must not lie about the version inside.
            if bundle.content().manifest.bundle_version != version {
                continue;
            }
            if self.acceptable(&bundle, now).is_ok() {
                return Some(bundle);
            }
        }
        None
    }

    /// Verifies and installs a bundle; returns it, or why it was rejected.
    pub fn install(&self, bytes: &[u8], now: i64) -> Result<VerifiedBundle, Rejection> {
        let bundle = load(bytes, &self.keys).map_err(Rejection::Invalid)?;
        self.acceptable(&bundle, now)?;
        let version = bundle.content().manifest.bundle_version;
        if let Some(active) = self.active(now) {
            let active = active.content().manifest.bundle_version;
            if version <= active {
                return Err(Rejection::NotNewer { version, active });
            }
        }
        self.write_atomically(&file_name(version), bytes)
            .map_err(|e| Rejection::Io(e.to_string()))?;
        Ok(bundle)
    }

    fn write_atomically(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let n = WRITE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, self.dir.join(name))?;
            // Make the rename itself durable.
            if let Ok(d) = fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Removes leftovers of interrupted writes (temporary files); they are never read anyway.
    pub fn clean(&self) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .filter(|e| fs::remove_file(e.path()).is_ok())
            .count()
    }
}

/// `policy_applied` or `policy_rejected` for an install attempt.
pub fn install_event(
    result: &Result<VerifiedBundle, Rejection>,
    tenant_id: &str,
    device_id: &str,
    task_id: &str,
    now: i64,
) -> Event {
    let (event, version, outcome, details) = match result {
        Ok(b) => (
            EventType::PolicyApplied,
            b.content().manifest.bundle_version,
            "applied".to_string(),
            serde_json::json!({ "bundle_hash": b.hash_string(), "policies": b.content().manifest.policies.iter().map(|(id, v)| serde_json::json!({"id": id, "version": v})).collect::<Vec<_>>() }),
        ),
        Err(r) => (
            EventType::PolicyRejected,
            0,
            r.code(),
            serde_json::json!({ "reason": r.to_string() }),
        ),
    };
    Event {
        event,
        tenant_id: tenant_id.into(),
        scope_id: format!("org:{tenant_id}"),
        device_id: device_id.into(),
        manager: None,
        task_id: task_id.into(),
        action: crate::vocab::Action::InstallPolicy,
        policy_version: version,
        outcome,
        timestamp: timestamp(now),
        details,
    }
}
