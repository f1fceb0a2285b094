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
use crate::load::{hex, load, LoadError, TrustedKeys, VerifiedBundle};
use crate::manifest::{ManifestError, VerifiedManifest};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct SnapshotStore {
    dir: PathBuf,
    keys: TrustedKeys,
    /// The distribution role's keys (ring manifests); none means manifests are refused.
    distribution: TrustedKeys,
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
    /// The ring manifest does not verify (or no distribution key is trusted).
    Manifest(ManifestError),
    ManifestExpired {
        expires_at: i64,
    },
    /// Not above the highest manifest version accepted for the ring: a replay.
    ManifestReplay {
        ring: String,
        version: u64,
        highest: u64,
    },
    /// The bundle is not the one the manifest names (hash or version), or is missing.
    ManifestMismatch(String),
    Io(String),
}

impl Rejection {
    pub fn code(&self) -> String {
        match self {
            Rejection::Invalid(e) => e.code().to_string(),
            Rejection::Expired { .. } => "expired".into(),
            Rejection::NotNewer { .. } => "not_newer".into(),
            Rejection::WrongTenant { .. } => "wrong_tenant".into(),
            Rejection::Manifest(e) => e.code().into(),
            Rejection::ManifestExpired { .. } => "manifest_expired".into(),
            Rejection::ManifestReplay { .. } => "manifest_replay".into(),
            Rejection::ManifestMismatch(_) => "manifest_mismatch".into(),
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
            Rejection::Manifest(e) => write!(f, "{e}"),
            Rejection::ManifestExpired { expires_at } => {
                write!(f, "the ring manifest expired at {}", timestamp(*expires_at))
            }
            Rejection::ManifestReplay {
                ring,
                version,
                highest,
            } => write!(
                f,
                "manifest version {version} of ring `{ring}` is not above version {highest}, the highest accepted"
            ),
            Rejection::ManifestMismatch(why) => write!(f, "{why}"),
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
        Ok(SnapshotStore {
            dir,
            keys,
            distribution: TrustedKeys::new(),
            tenant,
        })
    }

    /// Trusts these keys for the distribution role: ring manifests (docs/distribution.md).
    pub fn with_distribution_keys(mut self, keys: TrustedKeys) -> SnapshotStore {
        self.distribution = keys;
        self
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
        // A ring manifest, once accepted, says which bundle is active (a pause keeps one, a
        // rollback names an older one) until a newer bundle is installed directly.
        if self.manifest_path(&tenant).exists() {
            return self.manifest_active(&tenant, now);
        }
        if newest.content().manifest.bundle_version < self.high_water(&tenant, Some(&newest)) {
            return None;
        }
        if Self::expired(&newest, now).is_some() {
            return None;
        }
        Some(newest)
    }

    fn manifest_path(&self, tenant: &str) -> PathBuf {
        self.dir
            .join(format!("manifest-{}.hplm", hex(tenant.as_bytes())))
    }

    fn manifest_mark_name(tenant: &str, ring: &str) -> String {
        format!(
            "manifest-mark-{}-{}",
            hex(tenant.as_bytes()),
            hex(ring.as_bytes())
        )
    }

    /// The highest manifest version accepted for the tenant's ring.
    fn manifest_mark(&self, tenant: &str, ring: &str) -> u64 {
        read_regular_file(&self.dir.join(Self::manifest_mark_name(tenant, ring)), 64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0)
    }

    /// The current manifest of the tenant, if it verifies (an unreadable or tampered file, or
    /// keys that no longer trust it, give none: no valid snapshot).
    fn current_manifest(&self, tenant: &str) -> Option<VerifiedManifest> {
        let bytes = read_regular_file(&self.manifest_path(tenant), 64 * 1024).ok()?;
        crate::manifest::verify(&bytes, &self.distribution).ok()
    }

    /// The bundle a verified manifest names, from the store, if it is there and is that bundle.
    fn named_bundle(&self, m: &crate::manifest::RingManifest) -> Result<VerifiedBundle, Rejection> {
        let path = self.dir.join(file_name(m.bundle_version));
        let bytes = read_regular_file(&path, MAX_BUNDLE_BYTES).map_err(|_| {
            Rejection::ManifestMismatch(format!(
                "the store has no bundle version {} for the manifest",
                m.bundle_version
            ))
        })?;
        let bundle = load(&bytes, &self.keys).map_err(Rejection::Invalid)?;
        Self::matches(&bundle, m)?;
        Ok(bundle)
    }

    fn matches(
        bundle: &VerifiedBundle,
        m: &crate::manifest::RingManifest,
    ) -> Result<(), Rejection> {
        let c = &bundle.content().manifest;
        if bundle.hash() != &m.bundle_hash
            || c.bundle_version != m.bundle_version
            || c.tenant != m.tenant
        {
            return Err(Rejection::ManifestMismatch(format!(
                "the manifest names bundle version {} sha256:{}, not version {} {} of tenant `{}`",
                m.bundle_version,
                hex(&m.bundle_hash),
                c.bundle_version,
                bundle.hash_string(),
                c.tenant
            )));
        }
        Ok(())
    }

    /// The active snapshot under a manifest: the bundle it names, while the manifest verifies,
    /// is not expired and is the highest accepted for its ring.
    fn manifest_active(&self, tenant: &str, now: i64) -> Option<VerifiedBundle> {
        let v = self.current_manifest(tenant)?;
        let m = v.manifest();
        if now >= m.expires_at || m.manifest_version < self.manifest_mark(tenant, &m.ring) {
            return None;
        }
        let bundle = self.named_bundle(m).ok()?;
        if Self::expired(&bundle, now).is_some() {
            return None;
        }
        Some(bundle)
    }

    /// The manifest the store follows, if any (for status and events).
    pub fn manifest(&self, tenant: &str) -> Option<crate::manifest::RingManifest> {
        self.current_manifest(tenant).map(|v| v.manifest().clone())
    }

    /// Installs what a ring manifest names: `manifest` must verify with a distribution key, be
    /// for this tenant, not be expired and have a manifest version above the highest accepted
    /// for its ring; the bundle (given, or already in the store) must be the one it names and
    /// be valid. Then the bundle named is active, older or not — that is how a ring is paused
    /// or rolled back without re-signing in CI — while a replayed manifest is refused.
    pub fn install_manifest(
        &self,
        manifest: &[u8],
        bundle: Option<&[u8]>,
        now: i64,
    ) -> Result<VerifiedBundle, Rejection> {
        if self.distribution.is_empty() {
            return Err(Rejection::Manifest(ManifestError::UnknownKey {
                key_id: "(no distribution key is trusted)".into(),
            }));
        }
        let v =
            crate::manifest::verify(manifest, &self.distribution).map_err(Rejection::Manifest)?;
        let m = v.manifest().clone();
        let lock = self.lock()?;
        self.clean();
        if let Some(t) = &self.tenant {
            if t != &m.tenant {
                return Err(Rejection::WrongTenant { tenant: m.tenant });
            }
        }
        if now >= m.expires_at {
            return Err(Rejection::ManifestExpired {
                expires_at: m.expires_at,
            });
        }
        let highest = self.manifest_mark(&m.tenant, &m.ring);
        if m.manifest_version <= highest {
            return Err(Rejection::ManifestReplay {
                ring: m.ring.clone(),
                version: m.manifest_version,
                highest,
            });
        }
        let installed = match bundle {
            Some(bytes) => {
                let b = load(bytes, &self.keys).map_err(Rejection::Invalid)?;
                Self::matches(&b, &m)?;
                let path = self.dir.join(file_name(m.bundle_version));
                match self.named_bundle(&m) {
                    Ok(_) => {}
                    Err(_) if path.exists() => {
                        return Err(Rejection::ManifestMismatch(format!(
                            "the store holds another bundle as version {}",
                            m.bundle_version
                        )))
                    }
                    Err(_) => self
                        .write_atomically(&file_name(m.bundle_version), bytes)
                        .map_err(|e| Rejection::Io(e.to_string()))?,
                }
                b
            }
            None => self.named_bundle(&m)?,
        };
        if let Some(expires_at) = Self::expired(&installed, now) {
            return Err(Rejection::Expired { expires_at });
        }
        let name = self
            .manifest_path(&m.tenant)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.write_atomically(&name, manifest)
            .map_err(|e| Rejection::Io(e.to_string()))?;
        self.write_atomically(
            &Self::manifest_mark_name(&m.tenant, &m.ring),
            m.manifest_version.to_string().as_bytes(),
        )
        .map_err(|e| Rejection::Io(e.to_string()))?;
        // The bundle high-water mark still counts every version ever installed.
        let mark = self.high_water(&m.tenant, self.newest().as_ref());
        if m.bundle_version > mark {
            let mark_name = self
                .mark_path(&m.tenant)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.write_atomically(&mark_name, m.bundle_version.to_string().as_bytes())
                .map_err(|e| Rejection::Io(e.to_string()))?;
        }
        drop(lock);
        Ok(installed)
    }

    /// One install at a time, across processes.
    fn lock(&self) -> Result<fs::File, Rejection> {
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(".install.lock"))
            .and_then(|f| f.lock().map(|()| f))
            .map_err(|e| Rejection::Io(format!("cannot lock the store: {e}")))
    }

    /// Verifies and installs a bundle; returns it, or why it was rejected. Only versions above
    /// the high-water mark (the highest ever installed for the tenant) are installed, so a
    /// replayed old bundle is refused even after the newest one expired.
    pub fn install(&self, bytes: &[u8], now: i64) -> Result<VerifiedBundle, Rejection> {
        let bundle = load(bytes, &self.keys).map_err(Rejection::Invalid)?;
        // One install at a time, across processes: the mark only moves up.
        let lock = self.lock()?;
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
        // A newer bundle installed directly is active again: the manifest (a pause or a
        // rollback) no longer decides. Its ring mark stays, so it cannot be replayed.
        let _ = fs::remove_file(self.manifest_path(&tenant));
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
