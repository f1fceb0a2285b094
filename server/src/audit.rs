//! The audit trail: one hash chain per tenant (the server's own entries are the chain `""`),
//! appended in the transaction of the change it records, and refused any UPDATE or DELETE by
//! the database's own triggers (migrations 0003). [`verify`] proves a chain and names its
//! first broken link; [`crate::export`] sends it, with the devices' events, to a SIEM.
//!
//! Appending locks the chain's row in `audit_heads` (`UPDATE … RETURNING`), so two replicas
//! appending to one chain take turns and the sequence has no gaps or forks.

use crate::db::{get, Db};
use crate::error::ServerError;
use crate::Principal;
use hpl_runtime::audit_chain::{genesis, verify as verify_chain};
pub use hpl_runtime::audit_chain::{AuditEntry, BrokenLink, Verified};
use serde::Serialize;

/// What an entry records. The names are the API's and the export's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    #[serde(rename = "init")]
    Init,
    #[serde(rename = "tenant.add")]
    TenantAdd,
    #[serde(rename = "tenant.health")]
    TenantHealth,
    #[serde(rename = "tenant.sso")]
    TenantSso,
    #[serde(rename = "tenant.approvals")]
    TenantApprovals,
    #[serde(rename = "credential.issue")]
    CredentialIssue,
    #[serde(rename = "credential.revoke")]
    CredentialRevoke,
    #[serde(rename = "release.publish")]
    ReleasePublish,
    #[serde(rename = "ring.promote")]
    RingPromote,
    #[serde(rename = "ring.pause")]
    RingPause,
    #[serde(rename = "ring.resume")]
    RingResume,
    #[serde(rename = "ring.rollback")]
    RingRollback,
    #[serde(rename = "ring.auto_pause")]
    RingAutoPause,
    #[serde(rename = "ring.members")]
    RingMembers,
    #[serde(rename = "approval.request")]
    ApprovalRequest,
    #[serde(rename = "approval.approve")]
    ApprovalApprove,
    #[serde(rename = "approval.reject")]
    ApprovalReject,
    #[serde(rename = "approval.expire")]
    ApprovalExpire,
    #[serde(rename = "approval.fail")]
    ApprovalFail,
    #[serde(rename = "device.enroll")]
    DeviceEnroll,
    #[serde(rename = "device.key_change")]
    DeviceKeyChange,
    #[serde(rename = "operator.sign_in")]
    OperatorSignIn,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Init => "init",
            Action::TenantAdd => "tenant.add",
            Action::TenantHealth => "tenant.health",
            Action::TenantSso => "tenant.sso",
            Action::TenantApprovals => "tenant.approvals",
            Action::CredentialIssue => "credential.issue",
            Action::CredentialRevoke => "credential.revoke",
            Action::ReleasePublish => "release.publish",
            Action::RingPromote => "ring.promote",
            Action::RingPause => "ring.pause",
            Action::RingResume => "ring.resume",
            Action::RingRollback => "ring.rollback",
            Action::RingAutoPause => "ring.auto_pause",
            Action::RingMembers => "ring.members",
            Action::ApprovalRequest => "approval.request",
            Action::ApprovalApprove => "approval.approve",
            Action::ApprovalReject => "approval.reject",
            Action::ApprovalExpire => "approval.expire",
            Action::ApprovalFail => "approval.fail",
            Action::DeviceEnroll => "device.enroll",
            Action::DeviceKeyChange => "device.key_change",
            Action::OperatorSignIn => "operator.sign_in",
        }
    }

    /// Done at once, without approval, because something is wrong: flagged in the trail.
    pub fn is_emergency(self) -> bool {
        matches!(
            self,
            Action::RingPause | Action::RingResume | Action::RingRollback
        )
    }
}

/// An entry to append.
pub struct Record<'a> {
    pub actor: &'a Principal,
    pub tenant: Option<&'a str>,
    pub action: Action,
    pub subject: &'a str,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Appends `record` to its tenant's chain inside `tx` (the change it records commits with it,
/// or neither does).
pub async fn append(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    now: i64,
    record: Record<'_>,
) -> Result<AuditEntry, ServerError> {
    let chain = record.tenant.unwrap_or("").to_string();
    append_entry(
        tx,
        AuditEntry {
            chain,
            seq: 0,
            at: now,
            actor: record.actor.id.clone(),
            action: record.action.as_str().to_string(),
            subject: record.subject.to_string(),
            before: record.before.map(|v| v.to_string()),
            after: record.after.map(|v| v.to_string()),
            emergency: record.action.is_emergency(),
            prev_hash: String::new(),
            hash: String::new(),
        },
    )
    .await
}

/// Gives `entry` the next sequence number and hash of its chain and stores it.
async fn append_entry(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    mut entry: AuditEntry,
) -> Result<AuditEntry, ServerError> {
    sqlx::query(
        "INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (chain) DO NOTHING",
    )
    .bind(&entry.chain)
    .bind(genesis(&entry.chain))
    .execute(&mut **tx)
    .await?;
    // The row lock this takes is held to the commit: the chain's next append waits for it.
    let head =
        sqlx::query("UPDATE audit_heads SET seq = seq + 1 WHERE chain = $1 RETURNING seq, hash")
            .bind(&entry.chain)
            .fetch_one(&mut **tx)
            .await?;
    entry.seq = get::<i64>(&head, "seq")? as u64;
    entry.prev_hash = get(&head, "hash")?;
    entry.hash = entry.computed_hash();
    sqlx::query(
        "INSERT INTO audit_log (chain, seq, at, actor, action, subject, before_json, after_json, emergency, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&entry.chain)
    .bind(entry.seq as i64)
    .bind(entry.at)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.subject)
    .bind(entry.before.clone())
    .bind(entry.after.clone())
    .bind(i64::from(entry.emergency))
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_heads SET hash = $1 WHERE chain = $2")
        .bind(&entry.hash)
        .bind(&entry.chain)
        .execute(&mut **tx)
        .await?;
    Ok(entry)
}

/// Moves the entries of the first, unchained audit table (databases from before migration
/// 0003) into the chains, once: the marker chain `#legacy` says it was done.
pub(crate) async fn adopt_legacy(db: &Db) -> Result<(), ServerError> {
    let mut tx = db.pool.begin().await?;
    let marked = sqlx::query(
        "INSERT INTO audit_heads (chain, seq, hash) VALUES ('#legacy', 0, '') ON CONFLICT (chain) DO NOTHING",
    )
    .execute(&mut *tx)
    .await?;
    if marked.rows_affected() == 0 {
        return Ok(());
    }
    let rows = sqlx::query(
        "SELECT at, actor, tenant, action, subject, before_json, after_json FROM audit ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in &rows {
        let tenant: Option<String> = get(r, "tenant")?;
        append_entry(
            &mut tx,
            AuditEntry {
                chain: tenant.unwrap_or_default(),
                seq: 0,
                at: get(r, "at")?,
                actor: get(r, "actor")?,
                action: get(r, "action")?,
                subject: get(r, "subject")?,
                before: get(r, "before_json")?,
                after: get(r, "after_json")?,
                emergency: false,
                prev_hash: String::new(),
                hash: String::new(),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn entry(r: &sqlx::any::AnyRow) -> Result<AuditEntry, ServerError> {
    Ok(AuditEntry {
        chain: get(r, "chain")?,
        seq: get::<i64>(r, "seq")? as u64,
        at: get(r, "at")?,
        actor: get(r, "actor")?,
        action: get(r, "action")?,
        subject: get(r, "subject")?,
        before: get(r, "before_json")?,
        after: get(r, "after_json")?,
        emergency: get::<i64>(r, "emergency")? != 0,
        prev_hash: get(r, "prev_hash")?,
        hash: get(r, "hash")?,
    })
}

/// Which entries to list.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Entries after this sequence number.
    pub after: Option<u64>,
    pub limit: Option<u32>,
    pub action: Option<String>,
    pub actor: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// The most entries one page returns.
pub const MAX_PAGE: u32 = 1000;

/// A chain's entries, oldest first, filtered.
pub async fn entries(
    db: &Db,
    chain: &str,
    filter: &Filter,
) -> Result<Vec<AuditEntry>, ServerError> {
    let rows = sqlx::query(
        "SELECT chain, seq, at, actor, action, subject, before_json, after_json, emergency, prev_hash, hash \
         FROM audit_log WHERE chain = $1 AND seq > $2 \
         AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR actor = $4) \
         AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at <= $6) ORDER BY seq LIMIT $7",
    )
    .bind(chain)
    .bind(filter.after.unwrap_or(0) as i64)
    .bind(filter.action.clone())
    .bind(filter.actor.clone())
    .bind(filter.since)
    .bind(filter.until)
    .bind(i64::from(filter.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE)))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(entry).collect()
}

/// The hash of entry `seq` of `chain` (the genesis for 0).
pub async fn hash_at(db: &Db, chain: &str, seq: u64) -> Result<String, ServerError> {
    if seq == 0 {
        return Ok(genesis(chain));
    }
    let row = sqlx::query("SELECT hash FROM audit_log WHERE chain = $1 AND seq = $2")
        .bind(chain)
        .bind(seq as i64)
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("no audit entry {seq}")))?;
    get(&row, "hash")
}

/// Every chain in the database.
pub async fn chains(db: &Db) -> Result<Vec<String>, ServerError> {
    let rows = sqlx::query("SELECT DISTINCT chain FROM audit_log ORDER BY chain")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(|r| get(r, "chain")).collect()
}

/// Proves `chain` from its first entry to its head, page by page; the head row must name the
/// last entry (a removed tail shows there).
pub async fn verify(db: &Db, chain: &str) -> Result<Result<Verified, BrokenLink>, ServerError> {
    let mut prev = genesis(chain);
    let mut done = 0u64;
    loop {
        let page = entries(
            db,
            chain,
            &Filter {
                after: Some(done),
                ..Filter::default()
            },
        )
        .await?;
        if page.is_empty() {
            break;
        }
        match verify_chain(chain, &page, done + 1, &prev) {
            Ok(v) => {
                prev = v.head;
                done += v.entries;
            }
            Err(broken) => return Ok(Err(broken)),
        }
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_heads WHERE chain = $1")
        .bind(chain)
        .fetch_optional(&db.pool)
        .await?;
    if let Some(head) = head {
        let seq = get::<i64>(&head, "seq")? as u64;
        let hash: String = get(&head, "hash")?;
        if seq != done || hash != prev {
            return Ok(Err(BrokenLink {
                chain: chain.to_string(),
                seq: done + 1,
                reason: format!(
                    "the chain's head says {seq} entries, but {done} are there and check"
                ),
            }));
        }
    }
    Ok(Ok(Verified {
        chain: chain.to_string(),
        entries: done,
        head: prev,
    }))
}

/// Every entry of every chain, by time (then chain and sequence): the whole story, for the
/// server owner and the tests.
pub async fn trail(db: &Db) -> Result<Vec<AuditEntry>, ServerError> {
    let rows = sqlx::query(
        "SELECT chain, seq, at, actor, action, subject, before_json, after_json, emergency, prev_hash, hash FROM audit_log ORDER BY at, chain, seq",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(entry).collect()
}
