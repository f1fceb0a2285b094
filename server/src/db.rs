//! The database: one pool over sqlx's `Any` driver, migrations per backend (their DDL differs
//! in blob and serial types only; every query is written once, with `$n` parameters, which both
//! SQLite and PostgreSQL read).

use crate::error::ServerError;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyPool;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Result<Backend, ServerError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(ServerError::Invalid(format!(
                "`{url}` is neither a sqlite: nor a postgres:// URL"
            )))
        }
    }
}

/// The control plane's database.
#[derive(Clone)]
pub struct Db {
    pub(crate) pool: AnyPool,
    pub backend: Backend,
    url: String,
}

impl Db {
    /// Connects and brings the schema up to date. A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Db, ServerError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url)?;
        let given = url.to_string();
        let url = match backend {
            Backend::Sqlite if !url.contains('?') && !url.contains(":memory:") => {
                format!("{url}?mode=rwc")
            }
            _ => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite serialises writers anyway; one writer avoids `database is locked`.
                Backend::Sqlite => 1,
                Backend::Postgres => 10,
            })
            .connect(&url)
            .await?;
        match backend {
            Backend::Sqlite => {
                // Write-ahead logging: a commit is one append and one fsync (synchronous stays
                // FULL, so an acknowledged upload survives a power cut), instead of the
                // rollback journal's several. The setting is kept in the file.
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&pool)
                    .await?;
                SQLITE.run(&pool).await?
            }
            Backend::Postgres => POSTGRES.run(&pool).await?,
        }
        let db = Db {
            pool,
            backend,
            url: given,
        };
        crate::audit::adopt_legacy(&db).await?;
        Ok(db)
    }

    /// The URL it was connected with (another replica connects to the same).
    pub fn url(&self) -> &str {
        &self.url
    }
}

pub(crate) fn get<T>(row: &AnyRow, column: &str) -> Result<T, ServerError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    Ok(row.try_get::<T, _>(column)?)
}
