//! `hpl-server`: the control plane (issue 11). This first part is its core, without HTTP:
//! the database (SQLite by default, PostgreSQL at scale, one code path through sqlx's `Any`
//! driver), tenants and their policy keys, credentials, releases verified on upload, rollout
//! rings with promotion, pause, resume and rollback, each change signed into a ring manifest by
//! the server's distribution key, and an append-only audit trail.
//!
//! Every invariant is the database's: primary and unique keys, and a `revision` per ring that
//! each change compares and bumps in one `UPDATE`, so server replicas share nothing in memory
//! and two of them changing one ring at once leave one result and one conflict.

pub mod auth;
pub mod db;
pub mod devices;
pub mod error;
pub mod health;
pub mod http;
pub mod membership;
pub mod metrics;
pub mod rings;

pub use db::Db;
pub use error::ServerError;

/// Who does something: the credential's id, and the tenant it is limited to (`None`: the
/// bootstrap owner, every tenant). Every mutation takes one and writes it to the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub tenant: Option<String>,
}

impl Principal {
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
