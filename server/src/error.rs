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
    /// The input is not acceptable (a bundle that does not verify, a malformed key).
    Invalid(String),
    Db(sqlx::Error),
}

impl ServerError {
    /// A stable code for the API and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            ServerError::NotFound(_) => "not_found",
            ServerError::Conflict(_) => "conflict",
            ServerError::Forbidden(_) => "forbidden",
            ServerError::Invalid(_) => "invalid",
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
            | ServerError::Invalid(m) => write!(f, "{m}"),
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
