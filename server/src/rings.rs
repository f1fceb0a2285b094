//! Tenants, releases and rollout rings: the operations, each one transaction that also appends
//! its audit entry.
//!
//! A ring runs one release. `promote` puts a release on a ring — the first ring any
//! published release, a later ring only a release that runs on the ring before it (promotion
//! is explicit, one ring at a time). `pause` freezes a ring (its devices keep their snapshot,
//! nothing is promoted into or out of it); `resume` lifts that; `rollback` puts an earlier
//! published release back on a ring. Every change bumps the ring's `revision` with an
//! `UPDATE … WHERE revision = <read>` and signs a ring manifest of that revision with the
//! distribution key (docs/distribution.md): devices then install exactly what the manifest
//! names, older or newer, and refuse any manifest they have seen superseded.

use crate::audit::Action;
use crate::auth;
use crate::db::{get, Db};
use crate::error::ServerError;
use crate::health::{self, Figures, Thresholds};
use crate::membership::Members;
use crate::Principal;
use ed25519_dalek::{Signer, SigningKey};
use hpl_runtime::load::{hex, key_id, load, TrustedKeys};
use hpl_runtime::manifest::{sign_manifest, RingManifest};
use serde::Serialize;

/// The rings a new tenant gets, in order.
pub const DEFAULT_RINGS: [&str; 3] = ["canary", "pilot", "broad"];
/// How long a ring manifest is valid; the agent fetches a fresh one well before.
pub const MANIFEST_LIFETIME: i64 = 7 * 24 * 3600;

/// What `init` made: the bootstrap owner's token (shown once) and the distribution key id.
#[derive(Debug, Serialize)]
pub struct Initialised {
    pub owner_token: String,
    pub distribution_key_id: String,
    pub distribution_public_key: String,
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Creates the distribution key and the bootstrap owner credential. Once only.
pub async fn init(db: &Db, now: i64) -> Result<Initialised, ServerError> {
    let existing = sqlx::query("SELECT key_id FROM server_keys WHERE role = 'distribution'")
        .fetch_optional(&db.pool)
        .await?;
    if existing.is_some() {
        return Err(ServerError::Conflict(
            "the server is already initialised".into(),
        ));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| ServerError::Invalid(format!("no randomness: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    let id = hex(&key_id(&public));
    sqlx::query(
        "INSERT INTO server_keys (role, key_id, secret_hex, public_hex, created_at) VALUES ('distribution', $1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(hex(&seed))
    .bind(hex(&public))
    .bind(now)
    .execute(&db.pool)
    .await
    .map_err(|_| ServerError::Conflict("the server is already initialised".into()))?;
    let (owner, token) = auth::issue(db, "owner", None, now).await?;
    let principal = Principal::server_owner(owner);
    let mut tx = db.pool.begin().await?;
    crate::audit::append(
        &mut tx,
        now,
        crate::audit::Record {
            actor: &principal,
            tenant: None,
            action: Action::Init,
            subject: "server",
            before: None,
            after: Some(serde_json::json!({ "distribution_key": id })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Initialised {
        owner_token: token,
        distribution_key_id: id,
        distribution_public_key: format!("hpl-ed25519-public:{}", hex(&public)),
    })
}

/// Registers a tenant with its first policy public key (`hpl-ed25519-public:<hex>`), gives it
/// the default rings, and returns an enrollment token for MDM.
pub async fn add_tenant(
    db: &Db,
    who: &Principal,
    name: &str,
    policy_key: &str,
    now: i64,
) -> Result<String, ServerError> {
    crate::rbac::authorize(who, None, crate::rbac::Permission::ServerAdmin)?;
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name {
        return Err(ServerError::Invalid(format!(
            "`{name}` is not a tenant name (letters, digits, - and _, at most 64)"
        )));
    }
    let text = policy_key.trim();
    let public = unhex32(text.strip_prefix("hpl-ed25519-public:").unwrap_or(text))
        .ok_or_else(|| ServerError::Invalid("the policy key is not 64 hex digits".into()))?;
    let mut check = TrustedKeys::new();
    check
        .add(&public)
        .map_err(|e| ServerError::Invalid(format!("the policy key: {e}")))?;
    let id = hex(&key_id(&public));
    let mut tx = db.pool.begin().await?;
    sqlx::query("INSERT INTO tenants (name, created_at) VALUES ($1, $2)")
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|_| ServerError::Conflict(format!("tenant `{name}` exists")))?;
    sqlx::query(
        "INSERT INTO policy_keys (tenant, key_id, public_hex, added_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(name)
    .bind(&id)
    .bind(hex(&public))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for (position, ring) in DEFAULT_RINGS.iter().enumerate() {
        sqlx::query(
            "INSERT INTO rings (tenant, name, position, members_json) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(*ring)
        .bind(position as i64)
        .bind(serde_json::to_string(&Members::default_for(ring)).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    }
    crate::audit::append(
        &mut tx,
        now,
        crate::audit::Record {
            actor: who,
            tenant: Some(name),
            action: Action::TenantAdd,
            subject: name,
            before: None,
            after: Some(serde_json::json!({ "policy_key": id, "rings": DEFAULT_RINGS })),
        },
    )
    .await?;
    tx.commit().await?;
    let (_, token) = auth::issue(db, "enrollment", Some(name), now).await?;
    Ok(token)
}

/// The MDM managed configuration a tenant's devices need (docs/distribution.md): the tenant,
/// its policy keys for bundles, the server's distribution key for manifests, and the device
/// groups given (they decide ring membership).
pub async fn mdm_config(
    db: &Db,
    tenant: &str,
    device_groups: &[String],
) -> Result<serde_json::Value, ServerError> {
    let policy: Vec<serde_json::Value> = policy_key_hexes(db, tenant)
        .await?
        .iter()
        .map(|k| serde_json::json!({ "public_key": format!("hpl-ed25519-public:{k}") }))
        .collect();
    let key = distribution_key(db).await?;
    let distribution = format!(
        "hpl-ed25519-public:{}",
        hex(&key.verifying_key().to_bytes())
    );
    let mut config = serde_json::json!({
        "tenant_id": tenant,
        "trusted_keys": policy,
        "distribution_keys": [{ "public_key": distribution }],
    });
    if !device_groups.is_empty() {
        config["scope_hints"] = serde_json::json!({ "device_groups": device_groups });
    }
    Ok(config)
}

/// The tenant's policy public keys (hex), in key id order; no tenant is an error.
async fn policy_key_hexes(db: &Db, tenant: &str) -> Result<Vec<String>, ServerError> {
    let rows = sqlx::query("SELECT public_hex FROM policy_keys WHERE tenant = $1 ORDER BY key_id")
        .bind(tenant)
        .fetch_all(&db.pool)
        .await?;
    if rows.is_empty() {
        return Err(ServerError::NotFound(format!("no tenant `{tenant}`")));
    }
    rows.iter()
        .map(|r| get::<String>(r, "public_hex"))
        .collect()
}

async fn policy_keys(db: &Db, tenant: &str) -> Result<TrustedKeys, ServerError> {
    let mut keys = TrustedKeys::new();
    for text in policy_key_hexes(db, tenant).await? {
        if let Some(k) = unhex32(&text) {
            let _ = keys.add(&k);
        }
    }
    Ok(keys)
}

/// A published release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub tenant: String,
    pub bundle_version: u64,
    pub bundle_hash: String,
    /// False when the same bundle was published before (publishing is idempotent).
    pub new: bool,
}

/// Uploads a bundle as a release: it must verify with the tenant's policy keys. The same
/// bundle again is the same release; another bundle with a published version is refused.
pub async fn publish(
    db: &Db,
    who: &Principal,
    tenant: &str,
    bytes: &[u8],
    now: i64,
) -> Result<Release, ServerError> {
    let envelope_tenant = hpl_runtime::bundle::claimed_tenant(bytes)
        .ok_or_else(|| ServerError::Invalid("not a bundle".into()))?;
    if envelope_tenant != tenant {
        return Err(ServerError::Forbidden(format!(
            "the bundle is tenant `{envelope_tenant}`'s, not `{tenant}`'s"
        )));
    }
    let keys = policy_keys(db, &envelope_tenant).await?;
    let bundle = load(bytes, &keys).map_err(|e| {
        ServerError::Invalid(format!(
            "the bundle does not verify with tenant `{envelope_tenant}`'s policy keys ({}): {e}",
            e.code()
        ))
    })?;
    let version = bundle.content().manifest.bundle_version;
    let hash = bundle.hash_string();
    let mut tx = db.pool.begin().await?;
    let existing =
        sqlx::query("SELECT bundle_hash FROM releases WHERE tenant = $1 AND bundle_version = $2")
            .bind(&envelope_tenant)
            .bind(version as i64)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(row) = existing {
        let known: String = get(&row, "bundle_hash")?;
        return if known == hash {
            Ok(Release {
                tenant: envelope_tenant,
                bundle_version: version,
                bundle_hash: hash,
                new: false,
            })
        } else {
            Err(ServerError::Conflict(format!(
                "version {version} is already published with another bundle ({known})"
            )))
        };
    }
    sqlx::query(
        "INSERT INTO releases (tenant, bundle_version, bundle_hash, bytes, published_at, published_by) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&envelope_tenant)
    .bind(version as i64)
    .bind(&hash)
    .bind(bytes.to_vec())
    .bind(now)
    .bind(&who.id)
    .execute(&mut *tx)
    .await
    .map_err(|_| ServerError::Conflict(format!("the bundle {hash} is already published")))?;
    crate::audit::append(
        &mut tx,
        now,
        crate::audit::Record {
            actor: who,
            tenant: Some(&envelope_tenant),
            action: Action::ReleasePublish,
            subject: &format!("release {version}"),
            before: None,
            after: Some(serde_json::json!({ "bundle_version": version, "bundle_hash": hash })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Release {
        tenant: envelope_tenant,
        bundle_version: version,
        bundle_hash: hash,
        new: true,
    })
}

/// The tenant's releases, newest first (without their bytes).
pub async fn releases(db: &Db, tenant: &str) -> Result<Vec<serde_json::Value>, ServerError> {
    let rows = sqlx::query(
        "SELECT bundle_version, bundle_hash, published_at, published_by FROM releases WHERE tenant = $1 ORDER BY bundle_version DESC",
    )
    .bind(tenant)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(serde_json::json!({
                "bundle_version": get::<i64>(r, "bundle_version")?,
                "bundle_hash": get::<String>(r, "bundle_hash")?,
                "published_at": get::<i64>(r, "published_at")?,
                "published_by": get::<String>(r, "published_by")?,
            }))
        })
        .collect()
}

/// A ring as `hpl ring status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ring {
    pub name: String,
    pub position: i64,
    pub release: Option<u64>,
    pub paused: bool,
    pub revision: i64,
    /// Which devices are on it (docs/server.md, "Ring membership").
    pub members: Members,
    /// The release it ran before this one (the health gate's baseline).
    pub previous_release: Option<u64>,
}

pub(crate) fn parse_members(text: &str) -> Result<Members, ServerError> {
    serde_json::from_str(text)
        .map_err(|e| ServerError::Invalid(format!("a ring's membership rule is corrupt: {e}")))
}

pub async fn rings(db: &Db, tenant: &str) -> Result<Vec<Ring>, ServerError> {
    let rows = sqlx::query(
        "SELECT name, position, release_version, paused, revision, members_json, previous_release FROM rings WHERE tenant = $1 ORDER BY position",
    )
    .bind(tenant)
    .fetch_all(&db.pool)
    .await?;
    if rows.is_empty() {
        return Err(ServerError::NotFound(format!("no tenant `{tenant}`")));
    }
    rows.iter()
        .map(|r| {
            Ok(Ring {
                name: get(r, "name")?,
                position: get(r, "position")?,
                release: get::<Option<i64>>(r, "release_version")?.map(|v| v as u64),
                paused: get::<i64>(r, "paused")? != 0,
                revision: get(r, "revision")?,
                members: parse_members(&get::<String>(r, "members_json")?)?,
                previous_release: get::<Option<i64>>(r, "previous_release")?.map(|v| v as u64),
            })
        })
        .collect()
}

fn ring<'a>(all: &'a [Ring], name: &str) -> Result<&'a Ring, ServerError> {
    all.iter().find(|r| r.name == name).ok_or_else(|| {
        ServerError::NotFound(format!(
            "no ring `{name}` (rings: {})",
            all.iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

async fn distribution_key(db: &Db) -> Result<SigningKey, ServerError> {
    let row = sqlx::query("SELECT secret_hex FROM server_keys WHERE role = 'distribution'")
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| {
            ServerError::NotFound("the server is not initialised (hpl-server init)".into())
        })?;
    let text: String = get(&row, "secret_hex")?;
    let seed = unhex32(&text)
        .ok_or_else(|| ServerError::Invalid("the distribution key is corrupt".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// What changes on a ring.
enum Change {
    Release(u64),
    Paused(bool),
    Members(Members),
}

/// Applies one change to a ring: compare-and-bump its revision, sign the manifest of the new
/// revision, append the audit entry (with `why`, when given) — in one transaction. A change
/// of membership moves the tenant's devices to their rings in the same transaction.
#[allow(clippy::too_many_arguments)]
async fn change(
    db: &Db,
    who: &Principal,
    tenant: &str,
    before: &Ring,
    change: Change,
    action: Action,
    why: Option<serde_json::Value>,
    now: i64,
) -> Result<Ring, ServerError> {
    let key = distribution_key(db).await?;
    let mut after = before.clone();
    let sign = matches!(change, Change::Release(_) | Change::Paused(_));
    let moves = matches!(change, Change::Members(_));
    match change {
        Change::Release(v) => {
            after.release = Some(v);
            if before.release != Some(v) {
                after.previous_release = before.release;
            }
        }
        Change::Paused(p) => after.paused = p,
        Change::Members(m) => after.members = m,
    }
    after.revision = before.revision + 1;
    let mut tx = db.pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE rings SET release_version = $1, paused = $2, revision = $3, members_json = $4, previous_release = $5 WHERE tenant = $6 AND name = $7 AND revision = $8",
    )
    .bind(after.release.map(|v| v as i64))
    .bind(i64::from(after.paused))
    .bind(after.revision)
    .bind(serde_json::to_string(&after.members).unwrap_or_default())
    .bind(after.previous_release.map(|v| v as i64))
    .bind(tenant)
    .bind(&before.name)
    .bind(before.revision)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(ServerError::Conflict(format!(
            "ring `{}` changed meanwhile; read its status and try again",
            before.name
        )));
    }
    if moves {
        crate::devices::reassign(&mut tx, tenant).await?;
    }
    if let Some(version) = after.release.filter(|_| sign) {
        let row = sqlx::query(
            "SELECT bundle_hash FROM releases WHERE tenant = $1 AND bundle_version = $2",
        )
        .bind(tenant)
        .bind(version as i64)
        .fetch_one(&mut *tx)
        .await?;
        let hash_text: String = get(&row, "bundle_hash")?;
        let bundle_hash = unhex32(hash_text.strip_prefix("sha256:").unwrap_or(&hash_text))
            .ok_or_else(|| ServerError::Invalid("a release hash is corrupt".into()))?;
        let manifest = RingManifest {
            tenant: tenant.to_string(),
            ring: before.name.clone(),
            bundle_hash,
            bundle_version: version,
            manifest_version: after.revision as u64,
            issued_at: now,
            expires_at: now + MANIFEST_LIFETIME,
        };
        let id = key_id(&key.verifying_key().to_bytes());
        let sign = |d: &[u8; 32]| key.sign(d).to_bytes();
        let bytes = sign_manifest(
            &manifest,
            &[hpl_runtime::bundle::SigningInput {
                key_id: id,
                sign: &sign,
            }],
        );
        sqlx::query(
            "INSERT INTO manifests (tenant, ring, manifest_version, bundle_version, bytes, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant)
        .bind(&before.name)
        .bind(after.revision)
        .bind(version as i64)
        .bind(bytes)
        .bind(manifest.expires_at)
        .execute(&mut *tx)
        .await?;
    }
    crate::audit::append(
        &mut tx,
        now,
        crate::audit::Record {
            actor: who,
            tenant: Some(tenant),
            action,
            subject: &format!("ring {}", before.name),
            before: Some(serde_json::to_value(before).unwrap_or_default()),
            after: Some(match why {
                Some(why) => serde_json::json!({ "ring": after, "why": why }),
                None => serde_json::to_value(&after).unwrap_or_default(),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

async fn released(db: &Db, tenant: &str, version: u64) -> Result<(), ServerError> {
    sqlx::query("SELECT bundle_version FROM releases WHERE tenant = $1 AND bundle_version = $2")
        .bind(tenant)
        .bind(version as i64)
        .fetch_optional(&db.pool)
        .await?
        .map(|_| ())
        .ok_or_else(|| ServerError::NotFound(format!("release {version} is not published")))
}

/// Puts `version` on `ring`: any published release on the first ring, on a later ring only
/// the release the ring before it runs. Never into or out of a paused ring.
///
/// This applies a promotion at once: the API and the CLI reach it only through an approved
/// request ([`crate::approvals`]), which calls [`promote_approved`].
pub async fn promote(
    db: &Db,
    who: &Principal,
    tenant: &str,
    ring_name: &str,
    version: u64,
    now: i64,
) -> Result<Ring, ServerError> {
    promote_approved(
        db,
        who,
        tenant,
        ring_name,
        version,
        serde_json::Value::Null,
        now,
    )
    .await
}

/// [`promote`], recording `why` (the approved request) in the audit entry.
pub(crate) async fn promote_approved(
    db: &Db,
    who: &Principal,
    tenant: &str,
    ring_name: &str,
    version: u64,
    why: serde_json::Value,
    now: i64,
) -> Result<Ring, ServerError> {
    released(db, tenant, version).await?;
    let all = rings(db, tenant).await?;
    let target = ring(&all, ring_name)?;
    if let Some(previous) = order(&all, target, version)? {
        if target.release != Some(version) {
            let figures = health::figures(
                db,
                tenant,
                &previous.name,
                version,
                previous.previous_release,
            )
            .await?;
            if !figures.passes() {
                if figures.unhealthy && !previous.paused {
                    match auto_pause(db, tenant, previous, &figures, now).await {
                        Ok(_) | Err(ServerError::Conflict(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                return Err(ServerError::Unhealthy(Box::new(figures)));
            }
        }
        not_paused(previous)?;
    }
    if target.release == Some(version) {
        return Ok(target.clone());
    }
    change(
        db,
        who,
        tenant,
        target,
        Change::Release(version),
        Action::RingPromote,
        Some(why).filter(|w| !w.is_null()),
        now,
    )
    .await
}

/// The ring order, whatever the health figures say: the target is not paused, and a later
/// ring takes only what the ring before it runs. Returns the ring before, if any (the gate's
/// ring; whether it is paused is checked after the gate, which may pause it).
fn order<'a>(
    all: &'a [Ring],
    target: &Ring,
    version: u64,
) -> Result<Option<&'a Ring>, ServerError> {
    if target.paused {
        return Err(ServerError::Conflict(format!(
            "ring `{}` is paused",
            target.name
        )));
    }
    let previous = all
        .iter()
        .filter(|r| r.position < target.position)
        .max_by_key(|r| r.position);
    if let Some(previous) = previous {
        if previous.release != Some(version) {
            return Err(ServerError::Conflict(format!(
                "release {version} does not run on `{}`, the ring before `{}` (it runs {})",
                previous.name,
                target.name,
                previous
                    .release
                    .map_or("nothing".to_string(), |v| format!("release {v}"))
            )));
        }
    }
    Ok(previous)
}

/// Nothing is promoted out of a paused ring.
fn not_paused(previous: &Ring) -> Result<(), ServerError> {
    if previous.paused {
        return Err(ServerError::Conflict(format!(
            "ring `{}` is paused: nothing is promoted out of it",
            previous.name
        )));
    }
    Ok(())
}

/// What a promotion needs of the rings whatever the health figures say ([`order`], and the
/// ring before not paused). Checked when a promotion is requested, so nobody approves what
/// cannot happen; [`promote`] checks it all again when it is applied.
pub async fn check_order(
    db: &Db,
    tenant: &str,
    ring_name: &str,
    version: u64,
) -> Result<(), ServerError> {
    let all = rings(db, tenant).await?;
    let target = ring(&all, ring_name)?;
    match order(&all, target, version)? {
        Some(previous) => not_paused(previous),
        None => Ok(()),
    }
}

/// The health gate pauses a ring whose figures passed a threshold; the audit entry's actor is
/// `health-gate` and its `after` has the figures.
pub(crate) async fn auto_pause(
    db: &Db,
    tenant: &str,
    ring: &Ring,
    figures: &Figures,
    now: i64,
) -> Result<Ring, ServerError> {
    let gate = Principal::system("health-gate", tenant);
    change(
        db,
        &gate,
        tenant,
        ring,
        Change::Paused(true),
        Action::RingAutoPause,
        Some(serde_json::to_value(figures).unwrap_or_default()),
        now,
    )
    .await
}

/// Sets which devices are on a ring; the tenant's devices move at once.
pub async fn set_members(
    db: &Db,
    who: &Principal,
    tenant: &str,
    ring_name: &str,
    members: Members,
    now: i64,
) -> Result<Ring, ServerError> {
    members.validate().map_err(ServerError::Invalid)?;
    let all = rings(db, tenant).await?;
    let target = ring(&all, ring_name)?;
    if target.members == members {
        return Ok(target.clone());
    }
    change(
        db,
        who,
        tenant,
        target,
        Change::Members(members),
        Action::RingMembers,
        None,
        now,
    )
    .await
}

/// Sets the tenant's health gate thresholds.
pub async fn set_thresholds(
    db: &Db,
    who: &Principal,
    tenant: &str,
    thresholds: &Thresholds,
    now: i64,
) -> Result<Thresholds, ServerError> {
    thresholds.validate().map_err(ServerError::Invalid)?;
    let before = health::thresholds(db, tenant).await?;
    let mut tx = db.pool.begin().await?;
    sqlx::query("UPDATE tenants SET health_json = $1 WHERE name = $2")
        .bind(serde_json::to_string(thresholds).unwrap_or_default())
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    crate::audit::append(
        &mut tx,
        now,
        crate::audit::Record {
            actor: who,
            tenant: Some(tenant),
            action: Action::TenantHealth,
            subject: &format!("tenant {tenant}"),
            before: Some(serde_json::to_value(&before).unwrap_or_default()),
            after: Some(serde_json::to_value(thresholds).unwrap_or_default()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(thresholds.clone())
}

/// Pauses or resumes a ring.
pub async fn set_paused(
    db: &Db,
    who: &Principal,
    tenant: &str,
    ring_name: &str,
    paused: bool,
    now: i64,
) -> Result<Ring, ServerError> {
    let all = rings(db, tenant).await?;
    let target = ring(&all, ring_name)?;
    if target.paused == paused {
        return Ok(target.clone());
    }
    let action = if paused {
        Action::RingPause
    } else {
        Action::RingResume
    };
    change(
        db,
        who,
        tenant,
        target,
        Change::Paused(paused),
        action,
        None,
        now,
    )
    .await
}

/// Puts an earlier published release back on a ring (paused or not: a rollback is how a
/// paused ring is repaired).
pub async fn rollback(
    db: &Db,
    who: &Principal,
    tenant: &str,
    ring_name: &str,
    version: u64,
    now: i64,
) -> Result<Ring, ServerError> {
    released(db, tenant, version).await?;
    let all = rings(db, tenant).await?;
    let target = ring(&all, ring_name)?;
    match target.release {
        Some(current) if version < current => {}
        current => {
            return Err(ServerError::Conflict(format!(
                "a rollback goes to an earlier release than the ring's ({}); use promote",
                current.map_or("none".to_string(), |v| v.to_string())
            )))
        }
    }
    change(
        db,
        who,
        tenant,
        target,
        Change::Release(version),
        Action::RingRollback,
        None,
        now,
    )
    .await
}

/// The figures of a ring on the release it runs (what the gate would say now).
pub async fn health(db: &Db, tenant: &str, ring_name: &str) -> Result<Figures, ServerError> {
    let all = rings(db, tenant).await?;
    let r = ring(&all, ring_name)?;
    let release = r
        .release
        .ok_or_else(|| ServerError::NotFound(format!("ring `{ring_name}` runs no release yet")))?;
    health::figures(db, tenant, ring_name, release, r.previous_release).await
}

/// The ring's newest manifest and the bundle it names: what a device of the ring installs.
pub async fn current(
    db: &Db,
    tenant: &str,
    ring_name: &str,
) -> Result<(Vec<u8>, Vec<u8>), ServerError> {
    let row = sqlx::query(
        "SELECT m.bytes AS manifest, r.bytes AS bundle FROM manifests m JOIN releases r ON r.tenant = m.tenant AND r.bundle_version = m.bundle_version WHERE m.tenant = $1 AND m.ring = $2 ORDER BY m.manifest_version DESC LIMIT 1",
    )
    .bind(tenant)
    .bind(ring_name)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| ServerError::NotFound(format!("ring `{ring_name}` runs no release yet")))?;
    Ok((get(&row, "manifest")?, get(&row, "bundle")?))
}

/// A published bundle's bytes and hash (`sha256:…`), for the tenant's devices.
pub async fn release_bundle(
    db: &Db,
    tenant: &str,
    version: u64,
) -> Result<(String, Vec<u8>), ServerError> {
    let row = sqlx::query(
        "SELECT bundle_hash, bytes FROM releases WHERE tenant = $1 AND bundle_version = $2",
    )
    .bind(tenant)
    .bind(version as i64)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| ServerError::NotFound(format!("release {version} is not published")))?;
    Ok((get(&row, "bundle_hash")?, get(&row, "bytes")?))
}

/// The ring's newest manifest with its version (the HTTP `ETag`).
pub async fn current_manifest(
    db: &Db,
    tenant: &str,
    ring_name: &str,
) -> Result<(i64, Vec<u8>), ServerError> {
    let row = sqlx::query(
        "SELECT manifest_version, bytes FROM manifests WHERE tenant = $1 AND ring = $2 ORDER BY manifest_version DESC LIMIT 1",
    )
    .bind(tenant)
    .bind(ring_name)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| ServerError::NotFound(format!("ring `{ring_name}` runs no release yet")))?;
    Ok((get(&row, "manifest_version")?, get(&row, "bytes")?))
}
