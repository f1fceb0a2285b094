//! Four eyes: a promotion — a release onto the first ring, or from one ring to the next — is
//! a request that waits for the tenant's required number of approvals (default 1, at most
//! [`MAX_REQUIRED`]) from admins or owners other than the requester. The approval that
//! reaches the number applies it (the health gate and every other promotion check still
//! decide); one rejection ends it; a request nobody decides within [`LIFETIME`] expires.
//! Every step is an audit entry, and nothing rolls out on a pending, rejected, expired or
//! failed request. Pause, resume and rollback need no approval (they are how an emergency is
//! stopped) and are flagged `emergency` in the audit trail.

use crate::audit::{self, Action};
use crate::db::{get, Db};
use crate::error::ServerError;
use crate::rings;
use crate::Principal;
use serde::{Deserialize, Serialize};

/// Seconds a request waits for its approvals.
pub const LIFETIME: i64 = 72 * 3600;
/// The most approvals a tenant may require.
pub const MAX_REQUIRED: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Applied,
    Rejected,
    Expired,
    /// Approved, but the promotion was refused when applied (the gate, a paused ring).
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Applied => "applied",
            State::Rejected => "rejected",
            State::Expired => "expired",
            State::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<State, ServerError> {
        [
            State::Pending,
            State::Applied,
            State::Rejected,
            State::Expired,
            State::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| ServerError::Invalid(format!("a stored request state `{text}` is unknown")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// One approver's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vote {
    pub approver: String,
    pub decision: Decision,
    pub at: i64,
    pub comment: Option<String>,
}

/// A promotion waiting for (or past) its approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub id: i64,
    pub tenant: String,
    pub ring: String,
    pub release: u64,
    pub requested_by: String,
    pub requested_at: i64,
    pub expires_at: i64,
    pub required: u32,
    pub state: State,
    pub votes: Vec<Vote>,
    pub decided_at: Option<i64>,
    /// Why it failed, or the ring's revision it produced.
    pub outcome: Option<String>,
}

impl Request {
    pub fn approvals(&self) -> usize {
        self.votes
            .iter()
            .filter(|v| v.decision == Decision::Approve)
            .count()
    }
}

/// How many approvals the tenant's promotions need.
pub async fn required(db: &Db, tenant: &str) -> Result<u32, ServerError> {
    let row = sqlx::query("SELECT approvals_required FROM tenants WHERE name = $1")
        .bind(tenant)
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("no tenant `{tenant}`")))?;
    Ok(get::<i64>(&row, "approvals_required")?.clamp(1, i64::from(MAX_REQUIRED)) as u32)
}

/// Sets how many approvals the tenant's promotions need (1 to [`MAX_REQUIRED`]: four eyes
/// cannot be turned off).
pub async fn set_required(
    db: &Db,
    who: &Principal,
    tenant: &str,
    n: u32,
    now: i64,
) -> Result<u32, ServerError> {
    if !(1..=MAX_REQUIRED).contains(&n) {
        return Err(ServerError::Invalid(format!(
            "a promotion needs 1 to {MAX_REQUIRED} approvals, not {n}"
        )));
    }
    let before = required(db, tenant).await?;
    let mut tx = db.pool.begin().await?;
    sqlx::query("UPDATE tenants SET approvals_required = $1 WHERE name = $2")
        .bind(i64::from(n))
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        now,
        audit::Record {
            actor: who,
            tenant: Some(tenant),
            action: Action::TenantApprovals,
            subject: &format!("tenant {tenant}"),
            before: Some(serde_json::json!({ "approvals_required": before })),
            after: Some(serde_json::json!({ "approvals_required": n })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

async fn votes(db: &Db, id: i64) -> Result<Vec<Vote>, ServerError> {
    let rows = sqlx::query(
        "SELECT approver, decision, at, comment FROM approvals WHERE request_id = $1 ORDER BY at, approver",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let d: String = get(r, "decision")?;
            Ok(Vote {
                approver: get(r, "approver")?,
                decision: if d == "approve" {
                    Decision::Approve
                } else {
                    Decision::Reject
                },
                at: get(r, "at")?,
                comment: get(r, "comment")?,
            })
        })
        .collect()
}

async fn request_of(db: &Db, r: &sqlx::any::AnyRow) -> Result<Request, ServerError> {
    let id: i64 = get(r, "id")?;
    Ok(Request {
        id,
        tenant: get(r, "tenant")?,
        ring: get(r, "ring")?,
        release: get::<i64>(r, "release_version")? as u64,
        requested_by: get(r, "requested_by")?,
        requested_at: get(r, "requested_at")?,
        expires_at: get(r, "expires_at")?,
        required: get::<i64>(r, "required")? as u32,
        state: State::parse(&get::<String>(r, "state")?)?,
        votes: votes(db, id).await?,
        decided_at: get(r, "decided_at")?,
        outcome: get(r, "outcome")?,
    })
}

/// One request of the tenant.
pub async fn get_request(db: &Db, tenant: &str, id: i64) -> Result<Request, ServerError> {
    let row = sqlx::query(
        "SELECT id, tenant, ring, release_version, requested_by, requested_at, expires_at, required, state, decided_at, outcome FROM change_requests WHERE tenant = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| ServerError::NotFound(format!("no request {id} in tenant `{tenant}`")))?;
    request_of(db, &row).await
}

/// The tenant's requests, newest first (only those in `state`, when given).
pub async fn list(
    db: &Db,
    tenant: &str,
    state: Option<State>,
    now: i64,
) -> Result<Vec<Request>, ServerError> {
    expire_due(db, tenant, now).await?;
    let rows = sqlx::query(
        "SELECT id, tenant, ring, release_version, requested_by, requested_at, expires_at, required, state, decided_at, outcome FROM change_requests WHERE tenant = $1 AND ($2 IS NULL OR state = $2) ORDER BY id DESC LIMIT 500",
    )
    .bind(tenant)
    .bind(state.map(|s| s.as_str().to_string()))
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(request_of(db, r).await?);
    }
    Ok(out)
}

/// Ends the tenant's pending requests whose time ran out, each with an audit entry.
pub async fn expire_due(db: &Db, tenant: &str, now: i64) -> Result<(), ServerError> {
    let rows = sqlx::query(
        "SELECT id, ring, release_version FROM change_requests WHERE tenant = $1 AND state = 'pending' AND expires_at <= $2",
    )
    .bind(tenant)
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    let system = Principal::system("approvals", tenant);
    for r in &rows {
        let id: i64 = get(r, "id")?;
        let mut tx = db.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE change_requests SET state = 'expired', decided_at = $1 WHERE id = $2 AND state = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            audit::append(
                &mut tx,
                now,
                audit::Record {
                    actor: &system,
                    tenant: Some(tenant),
                    action: Action::ApprovalExpire,
                    subject: &format!("request {id}"),
                    before: None,
                    after: Some(serde_json::json!({
                        "request": id,
                        "ring": get::<String>(r, "ring")?,
                        "release": get::<i64>(r, "release_version")?,
                    })),
                },
            )
            .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Asks for `release` to go onto `ring`. The checks that do not depend on approval (the
/// release is published, the ring exists) are made now; the rest when it is applied.
pub async fn request_promotion(
    db: &Db,
    who: &Principal,
    tenant: &str,
    ring: &str,
    release: u64,
    now: i64,
) -> Result<Request, ServerError> {
    expire_due(db, tenant, now).await?;
    rings::release_bundle(db, tenant, release).await?;
    rings::check_order(db, tenant, ring, release).await?;
    let required = required(db, tenant).await?;
    let mut tx = db.pool.begin().await?;
    let row = sqlx::query(
        "INSERT INTO change_requests (tenant, kind, ring, release_version, requested_by, requested_at, expires_at, required, state) VALUES ($1, 'promote', $2, $3, $4, $5, $6, $7, 'pending') RETURNING id",
    )
    .bind(tenant)
    .bind(ring)
    .bind(release as i64)
    .bind(&who.id)
    .bind(now)
    .bind(now + LIFETIME)
    .bind(i64::from(required))
    .fetch_one(&mut *tx)
    .await
    .map_err(|_| {
        ServerError::Conflict(format!(
            "ring `{ring}` already has a pending request; approve, reject or let it expire first"
        ))
    })?;
    let id: i64 = get(&row, "id")?;
    audit::append(
        &mut tx,
        now,
        audit::Record {
            actor: who,
            tenant: Some(tenant),
            action: Action::ApprovalRequest,
            subject: &format!("request {id}"),
            before: None,
            after: Some(serde_json::json!({
                "request": id, "kind": "promote", "ring": ring, "release": release,
                "required": required, "expires_at": now + LIFETIME,
            })),
        },
    )
    .await?;
    tx.commit().await?;
    get_request(db, tenant, id).await
}

/// Records `who`'s decision on request `id`. The approval that reaches the required number
/// applies the promotion; if that is refused the request is `failed` with the reason, which
/// is also the error returned.
pub async fn decide(
    db: &Db,
    who: &Principal,
    tenant: &str,
    id: i64,
    decision: Decision,
    comment: Option<&str>,
    now: i64,
) -> Result<Request, ServerError> {
    expire_due(db, tenant, now).await?;
    let request = get_request(db, tenant, id).await?;
    if request.state != State::Pending {
        return Err(ServerError::Conflict(format!(
            "request {id} is {}, not pending",
            request.state.as_str()
        )));
    }
    if request.requested_by == who.id {
        return Err(ServerError::Forbidden(format!(
            "four eyes: `{}` requested {id} and cannot decide it",
            who.id
        )));
    }
    let comment = comment.map(|c| c.chars().take(500).collect::<String>());
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO approvals (request_id, approver, decision, at, comment) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(&who.id)
    .bind(decision.as_str())
    .bind(now)
    .bind(comment.clone())
    .execute(&mut *tx)
    .await
    .map_err(|_| ServerError::Conflict(format!("`{}` already decided request {id}", who.id)))?;
    let approvals = request.approvals() + usize::from(decision == Decision::Approve);
    // A rejection closes the request here; the last approval closes it when applied.
    if decision == Decision::Reject {
        let done = sqlx::query(
            "UPDATE change_requests SET state = 'rejected', decided_at = $1 WHERE id = $2 AND state = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(ServerError::Conflict(format!(
                "request {id} was decided meanwhile"
            )));
        }
    }
    audit::append(
        &mut tx,
        now,
        audit::Record {
            actor: who,
            tenant: Some(tenant),
            action: match decision {
                Decision::Approve => Action::ApprovalApprove,
                Decision::Reject => Action::ApprovalReject,
            },
            subject: &format!("request {id}"),
            before: None,
            after: Some(serde_json::json!({
                "request": id, "ring": request.ring, "release": request.release,
                "approvals": approvals, "required": request.required, "comment": comment,
            })),
        },
    )
    .await?;
    tx.commit().await?;
    if decision == Decision::Approve && approvals >= request.required as usize {
        apply(db, who, &request, now).await?;
    }
    get_request(db, tenant, id).await
}

/// Promotes what an approved request asks for and closes it as applied or failed.
async fn apply(db: &Db, who: &Principal, request: &Request, now: i64) -> Result<(), ServerError> {
    let why = serde_json::json!({
        "request": request.id,
        "requested_by": request.requested_by,
    });
    let result = rings::promote_approved(
        db,
        who,
        &request.tenant,
        &request.ring,
        request.release,
        why,
        now,
    )
    .await;
    let (state, outcome) = match &result {
        Ok(ring) => (State::Applied, format!("ring revision {}", ring.revision)),
        Err(e) => (State::Failed, e.to_string()),
    };
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "UPDATE change_requests SET state = $1, decided_at = $2, outcome = $3 WHERE id = $4 AND state = 'pending'",
    )
    .bind(state.as_str())
    .bind(now)
    .bind(&outcome)
    .bind(request.id)
    .execute(&mut *tx)
    .await?;
    if state == State::Failed {
        audit::append(
            &mut tx,
            now,
            audit::Record {
                actor: who,
                tenant: Some(&request.tenant),
                action: Action::ApprovalFail,
                subject: &format!("request {}", request.id),
                before: None,
                after: Some(serde_json::json!({ "request": request.id, "reason": outcome })),
            },
        )
        .await?;
    }
    tx.commit().await?;
    result.map(|_| ())
}
