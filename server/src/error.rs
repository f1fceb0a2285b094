//! Why a control-plane operation did not happen.

use std::fmt;

#[derive(Debug)]
pub enum ServerError {
    /// No such tenant, release, ring or credential.
    NotFound(String),
    /// The state changed under the operation (another replica), or it contradicts the state
    /// (a second `init`, the same version with other content).
    Conflict(String),
    /// The principal may not do this.
    Forbidden(String),
    /// The request does not prove who sent it (a device's signature, time or nonce).
    Unauthorized(String),
    /// The input is not acceptable (a bundle that does not verify, a malformed key).
    Invalid(String),
    /// The health gate refuses: the figures say why.
    Unhealthy(Box<crate::health::Figures>),
    Db(sqlx::Error),
}

impl ServerError {
    /// A stable code for the API and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            ServerError::NotFound(_) => "not_found",
            ServerError::Conflict(_) => "conflict",
            ServerError::Forbidden(_) => "forbidden",
            ServerError::Unauthorized(_) => "unauthorized",
            ServerError::Invalid(_) => "invalid",
            ServerError::Unhealthy(_) => "unhealthy",
            ServerError::Db(_) => "database_error",
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::NotFound(m)
            | ServerError::Conflict(m)
            | ServerError::Forbidden(m)
            | ServerError::Unauthorized(m)
            | ServerError::Invalid(m) => write!(f, "{m}"),
            ServerError::Unhealthy(figures) => write!(
                f,
                "the health gate refuses release {} out of `{}`: {}{}",
                figures.release,
                figures.ring,
                figures.failures.join("; "),
                if figures.unhealthy {
                    " (the ring is paused)"
                } else {
                    ""
                }
            ),
            ServerError::Db(e) => write!(f, "database: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

impl From<sqlx::Error> for ServerError {
    fn from(e: sqlx::Error) -> Self {
        ServerError::Db(e)
    }
}

impl From<sqlx::migrate::MigrateError> for ServerError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        ServerError::Db(sqlx::Error::Migrate(Box::new(e)))
    }
}
