//! Devices: enrollment, signed requests, and the records and events they upload.
//!
//! A device enrolls with its tenant's enrollment token (delivered by MDM) and an ed25519 key
//! it made; the enrollment itself is signed with that key (proof of possession). Its id comes
//! from the key, so enrolling again with the same key is the same device. Every later request
//! is signed ([`hpl_runtime::protocol`]): the server checks the key, the time (inside the
//! replay window) and that the nonce is new — the nonce table's primary key decides, so two
//! replicas cannot both accept one request.
//!
//! Uploads are batches of items keyed `(tenant, device, task_id, seq)`: an item already stored
//! is a duplicate and changes nothing, so a retried batch never doubles; the answer is sent
//! after the transaction commits, so an acknowledged item is stored.

use crate::audit::Action;
use crate::db::{get, Db};
use crate::error::ServerError;
use crate::membership::{self, Members};
use crate::rings;
use crate::Principal;
use hpl_runtime::load::hex;
use hpl_runtime::protocol;
use hpl_runtime::summary::DeviceSummary;
use serde::{Deserialize, Serialize};

/// Items in one upload.
pub const MAX_BATCH_ITEMS: usize = 1000;
/// Bytes of one upload.
pub const MAX_BATCH_BYTES: usize = 16 << 20;
/// Scope labels a device may report.
const MAX_SCOPES: usize = 64;

/// An enrolled device, as a request proved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub id: String,
    pub tenant: String,
    /// The device id its inventories and records carry.
    pub serial: String,
    pub ring: String,
}

/// What a device sends to enroll.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// `hpl-ed25519-public:<hex>`.
    pub public_key: String,
    /// The device id of its inventories.
    pub serial: String,
    /// Its scope labels (`team:platform`, `device_group:canary`), for ring membership.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// The answer to an enrollment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Enrolled {
    pub device_id: String,
    pub tenant: String,
    pub ring: String,
    /// False when the key was enrolled before (enrollment is idempotent).
    pub new: bool,
}

fn check_scopes(scopes: &[String]) -> Result<(), ServerError> {
    if scopes.len() > MAX_SCOPES || scopes.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(ServerError::Invalid(format!(
            "at most {MAX_SCOPES} scope labels of 1 to 256 bytes"
        )));
    }
    Ok(())
}

fn check_serial(serial: &str) -> Result<(), ServerError> {
    if serial.is_empty() || serial.len() > 128 || serial.chars().any(char::is_control) {
        return Err(ServerError::Invalid(
            "the serial is 1 to 128 printable characters".into(),
        ));
    }
    Ok(())
}

/// The tenant's rings in order with their membership rules.
async fn ring_rules(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
) -> Result<Vec<(String, Members)>, ServerError> {
    let rows =
        sqlx::query("SELECT name, members_json FROM rings WHERE tenant = $1 ORDER BY position")
            .bind(tenant)
            .fetch_all(&mut **tx)
            .await?;
    rows.iter()
        .map(|r| {
            let text: String = get(r, "members_json")?;
            Ok((get(r, "name")?, rings::parse_members(&text)?))
        })
        .collect()
}

/// Puts each of the tenant's live devices on the ring its scopes now select.
pub(crate) async fn reassign(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
) -> Result<(), ServerError> {
    let rules = ring_rules(tx, tenant).await?;
    let rows = sqlx::query(
        "SELECT id, serial, scopes_json, ring FROM devices WHERE tenant = $1 AND revoked_at IS NULL",
    )
    .bind(tenant)
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let scopes: Vec<String> =
            serde_json::from_str(&get::<String>(&r, "scopes_json")?).unwrap_or_default();
        let serial: String = get(&r, "serial")?;
        let ring = membership::assign(&rules, &scopes, membership::bucket(tenant, &serial));
        if ring != get::<String>(&r, "ring")? {
            sqlx::query("UPDATE devices SET ring = $1 WHERE id = $2")
                .bind(ring)
                .bind(get::<String>(&r, "id")?)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Enrolls a device: `token` is its tenant's enrollment token; `signature` is the device's
/// signature of the request's digest with the key it enrolls.
pub async fn enroll(
    db: &Db,
    token: &str,
    request: &Enrollment,
    digest: &[u8; 32],
    signature: &str,
    now: i64,
) -> Result<Enrolled, ServerError> {
    let (credential, tenant) = crate::auth::authenticate_enrollment(db, token).await?;
    let public = protocol::parse_public_key(&request.public_key)
        .ok_or_else(|| ServerError::Invalid("public_key is not an ed25519 public key".into()))?;
    if !protocol::verify(&public, digest, signature) {
        return Err(ServerError::Unauthorized(
            "the enrollment is not signed by the key it enrolls".into(),
        ));
    }
    check_serial(&request.serial)?;
    check_scopes(&request.scopes)?;
    let id = protocol::device_id(&public);
    let who = Principal::system(&credential, &tenant);
    let mut tx = db.pool.begin().await?;
    let rules = ring_rules(&mut tx, &tenant).await?;
    let ring = membership::assign(
        &rules,
        &request.scopes,
        membership::bucket(&tenant, &request.serial),
    )
    .to_string();
    let scopes = serde_json::to_string(&request.scopes).unwrap_or_default();
    let same_key = sqlx::query("SELECT tenant, serial, revoked_at FROM devices WHERE id = $1")
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(row) = same_key {
        let (t, s): (String, String) = (get(&row, "tenant")?, get(&row, "serial")?);
        if t != tenant || s != request.serial || get::<Option<i64>>(&row, "revoked_at")?.is_some() {
            return Err(ServerError::Conflict(
                "this key is enrolled for another device, or revoked".into(),
            ));
        }
        sqlx::query("UPDATE devices SET scopes_json = $1, ring = $2, last_seen = $3 WHERE id = $4")
            .bind(&scopes)
            .bind(&ring)
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(Enrolled {
            device_id: id,
            tenant,
            ring,
            new: false,
        });
    }
    // Another key for the same serial: the device was re-imaged. The old key is revoked and
    // the device keeps its history under the new id.
    let previous = sqlx::query(
        "SELECT id, public_hex FROM devices WHERE tenant = $1 AND serial = $2 AND revoked_at IS NULL",
    )
    .bind(&tenant)
    .bind(&request.serial)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = &previous {
        let old: String = get(row, "id")?;
        sqlx::query("UPDATE devices SET revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&old)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE device_latest SET device_id = $1 WHERE tenant = $2 AND device_id = $3")
            .bind(&id)
            .bind(&tenant)
            .bind(&old)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO devices (id, tenant, serial, public_hex, scopes_json, ring, enrolled_at, enrolled_by, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(&tenant)
    .bind(&request.serial)
    .bind(hex(&public))
    .bind(&scopes)
    .bind(&ring)
    .bind(now)
    .bind(&who.id)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|_| ServerError::Conflict("the device enrolled meanwhile; try again".into()))?;
    let after = serde_json::json!({ "device": id, "serial": request.serial, "key": hex(&hpl_runtime::load::key_id(&public)), "ring": ring });
    let (action, before) = match &previous {
        Some(row) => {
            let old: String = get(row, "id")?;
            (
                Action::DeviceKeyChange,
                Some(serde_json::json!({ "device": old })),
            )
        }
        None => (Action::DeviceEnroll, None),
    };
    crate::audit::append(
        &mut tx,
        now,
        crate::audit::Record {
            actor: &who,
            tenant: Some(&tenant),
            action,
            subject: &format!("device {}", request.serial),
            before,
            after: Some(after),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Enrolled {
        device_id: id,
        tenant,
        ring,
        new: true,
    })
}

/// The signed parts of a request, as its headers carry them.
pub struct Signed<'a> {
    pub device: &'a str,
    pub time: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
}

/// A signed request's time, when it is inside the replay window of `now`.
pub fn request_time(text: &str, now: i64) -> Result<i64, ServerError> {
    let time: i64 = text
        .parse()
        .map_err(|_| ServerError::Unauthorized("the request time is not a number".into()))?;
    if (now - time).abs() > protocol::REPLAY_WINDOW {
        return Err(ServerError::Unauthorized(format!(
            "the request time {time} is more than {} s from the server's {now}: check the device clock",
            protocol::REPLAY_WINDOW
        )));
    }
    Ok(time)
}

/// The device that signed this request, after checking its key, time and nonce.
pub async fn authenticate(
    db: &Db,
    signed: &Signed<'_>,
    method: &str,
    path: &str,
    body: &[u8],
    now: i64,
) -> Result<Device, ServerError> {
    let time = request_time(signed.time, now)?;
    if !protocol::valid_nonce(signed.nonce) {
        return Err(ServerError::Unauthorized(
            "the nonce is not 32 hex digits".into(),
        ));
    }
    let row = sqlx::query(
        "SELECT tenant, serial, public_hex, ring FROM devices WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(signed.device)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| ServerError::Unauthorized("unknown or revoked device".into()))?;
    let public_hex: String = get(&row, "public_hex")?;
    let public = protocol::parse_public_key(&public_hex)
        .ok_or_else(|| ServerError::Invalid("a device key is corrupt".into()))?;
    let digest = protocol::request_digest(method, path, time, signed.nonce, body);
    if !protocol::verify(&public, &digest, signed.signature) {
        return Err(ServerError::Unauthorized(
            "the request is not signed by the device's key".into(),
        ));
    }
    // The nonce is spent: its primary key refuses a second use (on any replica). Nonces older
    // than twice the window cannot be replayed anyway (their time is refused) and go.
    sqlx::query("INSERT INTO device_nonces (device_id, nonce, at) VALUES ($1, $2, $3)")
        .bind(signed.device)
        .bind(signed.nonce)
        .bind(now)
        .execute(&db.pool)
        .await
        .map_err(|_| ServerError::Unauthorized("the nonce was used before (a replay)".into()))?;
    if signed.nonce.starts_with("00") {
        // About one request in 256 sweeps the device's old nonces.
        sqlx::query("DELETE FROM device_nonces WHERE device_id = $1 AND at < $2")
            .bind(signed.device)
            .bind(now - 2 * protocol::REPLAY_WINDOW)
            .execute(&db.pool)
            .await?;
    }
    Ok(Device {
        id: signed.device.to_string(),
        tenant: get(&row, "tenant")?,
        serial: get(&row, "serial")?,
        ring: get(&row, "ring")?,
    })
}

/// What an upload item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Record,
    Event,
}

/// One record or event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub task_id: String,
    pub seq: u64,
    pub kind: ItemKind,
    /// With a record: the device's scope labels (they also update its ring membership).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    pub body: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub items: Vec<Item>,
}

/// What became of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Stored now.
    Stored,
    /// Stored before (a retry).
    Duplicate,
    /// Never stored: it is not a valid item (`reason` says why). The device drops it.
    Rejected,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ack {
    pub task_id: String,
    pub seq: u64,
    pub disposition: Disposition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Acks {
    pub items: Vec<Ack>,
    /// The ring the device is on after this upload.
    pub ring: String,
}

const EVENT_TYPES: [&str; 7] = [
    "policy_applied",
    "policy_rejected",
    "compliance_evaluated",
    "drift_detected",
    "remediation_started",
    "remediation_completed",
    "remediation_failed",
];

/// The columns of a valid item: (kind column, bundle version, state, summary of a record).
type Columns = (String, u64, Option<String>, Option<DeviceSummary>, String);

fn columns(device: &Device, item: &Item, ring: &str) -> Result<Columns, String> {
    if item.task_id.is_empty() || item.task_id.len() > 128 {
        return Err("task_id is 1 to 128 bytes".into());
    }
    if item.seq > i64::MAX as u64 {
        return Err("seq is too large".into());
    }
    let body = &item.body;
    let field = |k: &str| body.get(k).and_then(serde_json::Value::as_str);
    if field("tenant_id") != Some(device.tenant.as_str()) {
        return Err(format!("tenant_id is not `{}`", device.tenant));
    }
    if field("device_id") != Some(device.serial.as_str()) {
        return Err(format!(
            "device_id is not `{}`, the serial this device enrolled",
            device.serial
        ));
    }
    let text = body.to_string();
    match item.kind {
        ItemKind::Record => {
            let summary = DeviceSummary::from_record_json(
                body,
                item.scopes.clone().unwrap_or_default(),
                ring.to_string(),
            )?;
            let version = body
                .get("bundle")
                .and_then(|b| b.get("version"))
                .and_then(serde_json::Value::as_u64)
                .ok_or("the record has no bundle.version")?;
            let _ = field("evaluated_at").ok_or("the record has no evaluated_at")?;
            Ok((
                "record".into(),
                version,
                Some(summary.state.as_str().to_string()),
                Some(summary),
                text,
            ))
        }
        ItemKind::Event => {
            let kind = field("event").ok_or("the event has no `event`")?;
            if !EVENT_TYPES.contains(&kind) {
                return Err(format!("`{kind}` is not an event type"));
            }
            let version = body
                .get("policy_version")
                .and_then(serde_json::Value::as_u64)
                .ok_or("the event has no policy_version")?;
            Ok((kind.to_string(), version, None, None, text))
        }
    }
}

/// Stores a batch; returns what became of each item and whether the ring's health should be
/// looked at (a new non-compliant record or failure event on the ring).
pub async fn ingest(
    db: &Db,
    device: &Device,
    batch: &Batch,
    now: i64,
) -> Result<(Acks, bool), ServerError> {
    if batch.items.len() > MAX_BATCH_ITEMS {
        return Err(ServerError::Invalid(format!(
            "at most {MAX_BATCH_ITEMS} items per upload"
        )));
    }
    let mut tx = db.pool.begin().await?;
    // The newest scopes a record reports decide the device's ring from here on.
    let mut ring = device.ring.clone();
    if let Some(scopes) = batch.items.iter().rev().find_map(|i| i.scopes.as_ref()) {
        check_scopes(scopes)?;
        let rules = ring_rules(&mut tx, &device.tenant).await?;
        ring = membership::assign(
            &rules,
            scopes,
            membership::bucket(&device.tenant, &device.serial),
        )
        .to_string();
        sqlx::query("UPDATE devices SET scopes_json = $1, ring = $2 WHERE id = $3")
            .bind(serde_json::to_string(scopes).unwrap_or_default())
            .bind(&ring)
            .bind(&device.id)
            .execute(&mut *tx)
            .await?;
    }
    let mut acks = Vec::with_capacity(batch.items.len());
    let mut look = false;
    for item in &batch.items {
        let ack = |disposition, reason| Ack {
            task_id: item.task_id.clone(),
            seq: item.seq,
            disposition,
            reason,
        };
        let (kind, version, state, summary, body) = match columns(device, item, &ring) {
            Ok(c) => c,
            Err(reason) => {
                acks.push(ack(Disposition::Rejected, Some(reason)));
                continue;
            }
        };
        let id = sqlx::query(
            "INSERT INTO reports (tenant, device_id, task_id, seq, kind, ring, bundle_version, state, received_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant, device_id, task_id, seq) DO NOTHING RETURNING id",
        )
        .bind(&device.tenant)
        .bind(&device.id)
        .bind(&item.task_id)
        .bind(item.seq as i64)
        .bind(&kind)
        .bind(&ring)
        .bind(version as i64)
        .bind(state.clone())
        .bind(now)
        .bind(&body)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = id else {
            acks.push(ack(Disposition::Duplicate, None));
            continue;
        };
        let id: i64 = get(&row, "id")?;
        look |= state.as_deref() == Some("non_compliant")
            || kind == "remediation_failed"
            || kind == "policy_rejected";
        if let Some(summary) = summary {
            let evaluated_at = item.body["evaluated_at"].as_str().unwrap_or_default();
            sqlx::query(
                "INSERT INTO device_latest (tenant, device_id, ring, bundle_version, evaluated_at, report_id, summary_json) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, device_id) DO UPDATE SET ring = excluded.ring, bundle_version = excluded.bundle_version, evaluated_at = excluded.evaluated_at, report_id = excluded.report_id, summary_json = excluded.summary_json WHERE device_latest.evaluated_at < excluded.evaluated_at OR (device_latest.evaluated_at = excluded.evaluated_at AND device_latest.report_id < excluded.report_id)",
            )
            .bind(&device.tenant)
            .bind(&device.id)
            .bind(&ring)
            .bind(version as i64)
            .bind(evaluated_at)
            .bind(id)
            .bind(serde_json::to_string(&summary).unwrap_or_default())
            .execute(&mut *tx)
            .await?;
        }
        acks.push(ack(Disposition::Stored, None));
    }
    sqlx::query("UPDATE devices SET last_seen = $1 WHERE id = $2")
        .bind(now)
        .bind(&device.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((Acks { items: acks, ring }, look))
}

/// After an upload that could have made the ring worse: when the ring runs a release and is
/// not paused, and its figures on that release pass a threshold, the ring pauses (audited as
/// the health gate, with the figures).
pub async fn watch_health(db: &Db, tenant: &str, ring: &str, now: i64) -> Result<(), ServerError> {
    let all = rings::rings(db, tenant).await?;
    let Some(r) = all.iter().find(|r| r.name == ring) else {
        return Ok(());
    };
    let Some(release) = r.release else {
        return Ok(());
    };
    if r.paused {
        return Ok(());
    }
    let figures = crate::health::figures(db, tenant, ring, release, r.previous_release).await?;
    if figures.unhealthy {
        match rings::auto_pause(db, tenant, r, &figures, now).await {
            Ok(_) | Err(ServerError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A device as operators see it: where it is and what it last reported.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub id: String,
    pub serial: String,
    pub ring: String,
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub revoked: bool,
    /// The newest record's summary (state, counts, bundle), if one arrived.
    pub last_record: Option<serde_json::Value>,
}

/// The tenant's devices, by serial (at most `limit`, from `after` on).
pub async fn list(
    db: &Db,
    tenant: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Listed>, ServerError> {
    let rows = sqlx::query(
        "SELECT d.id, d.serial, d.ring, d.enrolled_at, d.last_seen, d.revoked_at, l.summary_json FROM devices d LEFT JOIN device_latest l ON l.tenant = d.tenant AND l.device_id = d.id WHERE d.tenant = $1 AND d.serial > $2 ORDER BY d.serial LIMIT $3",
    )
    .bind(tenant)
    .bind(after.unwrap_or("").to_string())
    .bind(i64::from(limit.min(1000)))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let summary: Option<String> = get(r, "summary_json")?;
            Ok(Listed {
                id: get(r, "id")?,
                serial: get(r, "serial")?,
                ring: get(r, "ring")?,
                enrolled_at: get(r, "enrolled_at")?,
                last_seen: get(r, "last_seen")?,
                revoked: get::<Option<i64>>(r, "revoked_at")?.is_some(),
                last_record: summary.and_then(|s| serde_json::from_str(&s).ok()),
            })
        })
        .collect()
}
