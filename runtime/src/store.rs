//! The snapshot store: the last valid signed bundles, kept on disk for offline use.
//!
//! Bundles are written atomically — to a temporary file in the store's directory, `fsync`,
//! `rename` to `bundle-<version>.hplb`, `fsync` of the directory — so a crash at any point
//! leaves either the old set of files or the new one. The active snapshot is the newest valid
//! bundle, if it has not expired: files that do not load (corrupt, tampered, unknown key), links,
//! special files and leftovers of interrupted writes are skipped, and an expired newest bundle
//! means no valid snapshot (never an older one). A new bundle is installed only if it loads, is
//! not expired, is for the configured tenant and is above the high-water mark — the highest
//! version ever installed for the tenant, kept in its own atomically written file; otherwise it
//! is rejected with a reason, and the active snapshot stays. Versions only move forward: a
//! rollback is a new, higher version with old content. Nothing here waits on a network, and no
//! file in the directory can make it block or read without bound.

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
    /// Not above the high-water mark (`active`: the highest version installed so far).
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
                "bundle version {version} is not above version {active}, the highest installed so far"
            ),
            Rejection::WrongTenant { tenant } => write!(f, "the bundle is for tenant `{tenant}`"),
            Rejection::Io(e) => write!(f, "cannot write the snapshot: {e}"),
        }
    }
}

static WRITE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The largest bundle the store reads (a bundle of 20,000 rules is about 2 MB).
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

fn file_name(version: u64) -> String {
    format!("bundle-{version:020}.hplb")
}

fn is_temp(name: &str) -> bool {
    name.contains(".tmp-")
}

/// Reads a regular file of at most `max` bytes. Links are not followed, special files (a
/// FIFO, a device) are refused without blocking, and a file that grows past `max` while it is
/// read is refused: nothing in a directory can hang the reader or exhaust its memory.
pub fn read_regular_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let meta = fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The file may have been swapped for a link or a FIFO since the check above.
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    if meta.len() > max {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("{} is larger than {max} bytes", path.display()),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("{} is larger than {max} bytes", path.display()),
        ));
    }
    Ok(bytes)
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

    /// Bundle files, newest version first: regular files only (links and special files are
    /// never candidates).
    fn candidates(&self) -> Vec<(u64, PathBuf)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<(u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
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

    fn expired(bundle: &VerifiedBundle, now: i64) -> Option<i64> {
        bundle
            .content()
            .manifest
            .expires_at
            .filter(|&expires_at| now >= expires_at)
    }

    fn wrong_tenant(&self, bundle: &VerifiedBundle) -> Option<String> {
        let tenant = &bundle.content().manifest.tenant;
        match &self.tenant {
            Some(t) if t != tenant => Some(tenant.clone()),
            _ => None,
        }
    }

    /// The newest bundle in the store that loads, verifies, names its version truly and is for
    /// this tenant — expired or not.
    fn newest(&self) -> Option<VerifiedBundle> {
        for (version, path) in self.candidates() {
            let Ok(bytes) = read_regular_file(&path, MAX_BUNDLE_BYTES) else {
                continue;
            };
            let Ok(bundle) = load(&bytes, &self.keys) else {
                continue;
            };
            // The file name must not lie about the version inside.
            if bundle.content().manifest.bundle_version != version {
                continue;
            }
            if self.wrong_tenant(&bundle).is_none() {
                return Some(bundle);
            }
        }
        None
    }

    fn mark_path(&self, tenant: &str) -> PathBuf {
        self.dir.join(format!(
            "high-water-{}",
            crate::load::hex(tenant.as_bytes())
        ))
    }

    /// The highest bundle version ever installed for `tenant`: the recorded mark, or the newest
    /// bundle present if that is higher (a crash between writing the bundle and the mark).
    fn high_water(&self, tenant: &str, newest: Option<&VerifiedBundle>) -> u64 {
        let recorded = read_regular_file(&self.mark_path(tenant), 64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let present = newest
            .filter(|b| b.content().manifest.tenant == tenant)
            .map_or(0, |b| b.content().manifest.bundle_version);
        recorded.max(present)
    }

    /// The active snapshot: the newest bundle of this tenant, if it has not expired. An expired
    /// newest bundle means no valid snapshot — never an older one (that would be a rollback),
    /// and so does a newest bundle below the high-water mark (its successor was removed).
    /// `None` means there is no valid snapshot.
    pub fn active(&self, now: i64) -> Option<VerifiedBundle> {
        let newest = self.newest()?;
        let tenant = newest.content().manifest.tenant.clone();
        if newest.content().manifest.bundle_version < self.high_water(&tenant, Some(&newest)) {
            return None;
        }
        if Self::expired(&newest, now).is_some() {
            return None;
        }
        Some(newest)
    }

    /// Verifies and installs a bundle; returns it, or why it was rejected. Only versions above
    /// the high-water mark (the highest ever installed for the tenant) are installed, so a
    /// replayed old bundle is refused even after the newest one expired.
    pub fn install(&self, bytes: &[u8], now: i64) -> Result<VerifiedBundle, Rejection> {
        let bundle = load(bytes, &self.keys).map_err(Rejection::Invalid)?;
        // One install at a time, across processes: the mark only moves up.
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(".install.lock"))
            .and_then(|f| f.lock().map(|()| f))
            .map_err(|e| Rejection::Io(format!("cannot lock the store: {e}")))?;
        self.clean();
        if let Some(expires_at) = Self::expired(&bundle, now) {
            return Err(Rejection::Expired { expires_at });
        }
        if let Some(tenant) = self.wrong_tenant(&bundle) {
            return Err(Rejection::WrongTenant { tenant });
        }
        let tenant = bundle.content().manifest.tenant.clone();
        let version = bundle.content().manifest.bundle_version;
        let mark = self.high_water(&tenant, self.newest().as_ref());
        if version <= mark {
            return Err(Rejection::NotNewer {
                version,
                active: mark,
            });
        }
        self.write_atomically(&file_name(version), bytes)
            .map_err(|e| Rejection::Io(e.to_string()))?;
        // The mark after the bundle: a crash between the two leaves the bundle, which counts.
        let mark_name = self
            .mark_path(&tenant)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.write_atomically(&mark_name, version.to_string().as_bytes())
            .map_err(|e| Rejection::Io(e.to_string()))?;
        drop(lock);
        Ok(bundle)
    }

    /// Writes `name` through a temporary file that its writer holds locked until the rename,
    /// so [`Self::clean`] can tell a live writer's file from a dead one's.
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
            f.lock()?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, self.dir.join(name))?;
            drop(f);
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

    /// Removes the temporary files of writers that died (they are never read anyway); a
    /// writer still at work holds its file locked and keeps it. Returns how many were removed.
    pub fn clean(&self) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| is_temp(&e.file_name().to_string_lossy()))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| {
                // A dead writer's lock is gone with it.
                let mut options = fs::OpenOptions::new();
                options.read(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
                }
                options.open(e.path()).is_ok_and(|f| f.try_lock().is_ok())
            })
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
