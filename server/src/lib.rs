//! `hpl-server`: the control plane (issue 11). This first part is its core, without HTTP:
//! the database (SQLite by default, PostgreSQL at scale, one code path through sqlx's `Any`
//! driver), tenants and their policy keys, credentials, releases verified on upload, rollout
//! rings with promotion, pause, resume and rollback, each change signed into a ring manifest by
//! the server's distribution key, and an append-only audit trail.
//!
//! Every invariant is the database's: primary and unique keys, and a `revision` per ring that
//! each change compares and bumps in one `UPDATE`, so server replicas share nothing in memory
//! and two of them changing one ring at once leave one result and one conflict.

pub mod approvals;
pub mod audit;
pub mod auth;
pub mod console;
pub mod db;
pub mod devices;
pub mod error;
pub mod export;
pub mod health;
pub mod http;
pub mod membership;
pub mod metrics;
pub mod oidc;
mod outbound;
pub mod rbac;
pub mod rings;

pub use db::Db;
pub use error::ServerError;

/// Who does something: a stable id (a credential's, or `oidc:<tenant>:<subject>` for a
/// signed-in operator), the tenant it is limited to (`None`: the server owner, every tenant)
/// and its roles there. Every mutation takes one and writes its id to the audit trail;
/// [`rbac::authorize`] decides what it may do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Principal {
    pub id: String,
    pub tenant: Option<String>,
    pub roles: Vec<rbac::Role>,
    /// What people see (an e-mail address or a name), when the identity provider gave one.
    pub display: Option<String>,
}

impl Principal {
    /// The bootstrap credential: owner of the server and of every tenant.
    pub fn server_owner(id: impl Into<String>) -> Principal {
        Principal {
            id: id.into(),
            tenant: None,
            roles: vec![rbac::Role::Owner],
            display: None,
        }
    }

    /// Someone (or a tenant API credential) acting in one tenant with these roles.
    pub fn operator(id: impl Into<String>, tenant: &str, roles: Vec<rbac::Role>) -> Principal {
        Principal {
            id: id.into(),
            tenant: Some(tenant.to_string()),
            roles,
            display: None,
        }
    }

    /// The server itself acting in a tenant (the health gate, the expiry of requests): it
    /// never comes through [`rbac::authorize`], and its id names what acted.
    pub fn system(id: &str, tenant: &str) -> Principal {
        Principal::operator(id, tenant, Vec::new())
    }

    /// Whether this principal may act on `tenant`.
    pub fn may(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == tenant)
    }
}

/// Unix seconds now (0 if the clock is before 1970).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
