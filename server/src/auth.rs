//! Who is calling: [`operator`] turns a bearer token into a [`Principal`] — a credential (a
//! random secret shown once and stored as sha256: the bootstrap owner, or a tenant API
//! credential with one role, for CI) or an OIDC token of a tenant's identity provider
//! ([`crate::oidc`]). What the principal may then do is [`crate::rbac`]'s to say.

use crate::audit::{self, Action};
use crate::db::{get, Db};
use crate::error::ServerError;
use crate::oidc::Verifier;
use crate::rbac::Role;
use crate::Principal;
use sha2::{Digest, Sha256};

/// 32 random bytes as hex, with a prefix that says what the secret is.
pub fn secret(prefix: &str) -> Result<String, ServerError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ServerError::Invalid(format!("no randomness: {e}")))?;
    Ok(format!("{prefix}{}", hpl_runtime::load::hex(&bytes)))
}

pub(crate) fn digest(secret: &str) -> String {
    hpl_runtime::load::hex(&Sha256::digest(secret.trim().as_bytes()))
}

/// Stores a new credential of `kind` (for `tenant`, or every tenant) and returns its secret.
pub(crate) async fn issue(
    db: &Db,
    kind: &str,
    tenant: Option<&str>,
    now: i64,
) -> Result<(String, String), ServerError> {
    let token = secret(&format!("hpl-{kind}-"))?;
    let id = format!("{kind}-{}", &digest(&token)[..12]);
    sqlx::query(
        "INSERT INTO credentials (id, kind, tenant, secret_sha256, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(kind)
    .bind(tenant.map(str::to_string))
    .bind(digest(&token))
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok((id, token))
}

/// The principal of an owner or API credential; enrollment tokens are not operators.
pub async fn authenticate(db: &Db, token: &str) -> Result<Principal, ServerError> {
    let row = sqlx::query(
        "SELECT id, kind, tenant, role FROM credentials WHERE secret_sha256 = $1 AND revoked_at IS NULL",
    )
    .bind(digest(token))
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| ServerError::Unauthorized("unknown or revoked credential".into()))?;
    let kind: String = get(&row, "kind")?;
    let id: String = get(&row, "id")?;
    let tenant: Option<String> = get(&row, "tenant")?;
    match (kind.as_str(), tenant) {
        ("owner", None) => Ok(Principal::server_owner(id)),
        ("api", Some(tenant)) => {
            let role: Option<String> = get(&row, "role")?;
            let role = role.as_deref().and_then(Role::parse).ok_or_else(|| {
                ServerError::Unauthorized(format!("credential `{id}` has no valid role"))
            })?;
            Ok(Principal::operator(id, &tenant, vec![role]))
        }
        (kind, _) => Err(ServerError::Unauthorized(format!(
            "a {kind} credential cannot operate the control plane"
        ))),
    }
}

/// The operator a bearer token names: a credential (`hpl-owner-…`, `hpl-api-…`) or a JWT of
/// a tenant's identity provider.
pub async fn operator(
    db: &Db,
    verifier: &Verifier,
    token: &str,
    now: i64,
) -> Result<Principal, ServerError> {
    let token = token.trim();
    if token.starts_with("hpl-") {
        return authenticate(db, token).await;
    }
    let identity = verifier.verify(db, token, None).await?;
    // The users and roles view is a convenience: failing to record a sighting refuses nothing.
    if let Err(e) = crate::oidc::seen(db, &identity, now).await {
        eprintln!("hpl-server: recording operator {}: {e}", identity.subject);
    }
    Ok(identity.principal())
}

/// Issues a tenant API credential with one role (for CI: `publish` needs operator). The
/// secret is returned once. Only operator, auditor and viewer: approving is for people (an
/// admin credential would let whoever holds it be the second pair of eyes for themselves).
pub async fn issue_api(
    db: &Db,
    who: &Principal,
    tenant: &str,
    role: Role,
    now: i64,
) -> Result<(String, String), ServerError> {
    if matches!(role, Role::Owner | Role::Admin) {
        return Err(ServerError::Invalid(format!(
            "an API credential cannot be {role}: approvals and access are for people who sign in"
        )));
    }
    let (id, token) = issue(db, "api", Some(tenant), now).await?;
    let mut tx = db.pool.begin().await?;
    sqlx::query("UPDATE credentials SET role = $1 WHERE id = $2")
        .bind(role.as_str())
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        now,
        audit::Record {
            actor: who,
            tenant: Some(tenant),
            action: Action::CredentialIssue,
            subject: &format!("credential {id}"),
            before: None,
            after: Some(serde_json::json!({ "id": id, "kind": "api", "role": role })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((id, token))
}

/// Revokes credential `id` of `tenant` (`None`: any, the server owner's own included — once
/// operators sign in with SSO the bootstrap token can go).
pub async fn revoke(
    db: &Db,
    who: &Principal,
    tenant: Option<&str>,
    id: &str,
    now: i64,
) -> Result<(), ServerError> {
    let mut tx = db.pool.begin().await?;
    let row =
        sqlx::query("SELECT kind, tenant FROM credentials WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .filter(|r| {
                tenant.is_none()
                    || get::<Option<String>>(r, "tenant").ok().flatten().as_deref() == tenant
            })
            .ok_or_else(|| ServerError::NotFound(format!("no live credential `{id}`")))?;
    let tenant: Option<String> = get(&row, "tenant")?;
    let kind: String = get(&row, "kind")?;
    sqlx::query("UPDATE credentials SET revoked_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        now,
        audit::Record {
            actor: who,
            tenant: tenant.as_deref(),
            action: Action::CredentialRevoke,
            subject: &format!("credential {id}"),
            before: Some(serde_json::json!({ "id": id, "kind": kind })),
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The id and tenant of an enrollment token (what a device enrolls with).
pub async fn authenticate_enrollment(
    db: &Db,
    token: &str,
) -> Result<(String, String), ServerError> {
    let row = sqlx::query(
        "SELECT id, tenant FROM credentials WHERE secret_sha256 = $1 AND kind = 'enrollment' AND revoked_at IS NULL",
    )
    .bind(digest(token))
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| ServerError::Forbidden("unknown or revoked enrollment token".into()))?;
    let tenant = get::<Option<String>>(&row, "tenant")?
        .ok_or_else(|| ServerError::Forbidden("an enrollment token without a tenant".into()))?;
    Ok((get(&row, "id")?, tenant))
}

/// A credential as the access view lists it (never its secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Credential {
    pub id: String,
    pub kind: String,
    pub role: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// The tenant's credentials (API and enrollment).
pub async fn credentials(db: &Db, tenant: &str) -> Result<Vec<Credential>, ServerError> {
    let rows = sqlx::query(
        "SELECT id, kind, role, created_at, revoked_at FROM credentials WHERE tenant = $1 ORDER BY created_at, id",
    )
    .bind(tenant)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Credential {
                id: get(r, "id")?,
                kind: get(r, "kind")?,
                role: get(r, "role")?,
                created_at: get(r, "created_at")?,
                revoked_at: get(r, "revoked_at")?,
            })
        })
        .collect()
}
