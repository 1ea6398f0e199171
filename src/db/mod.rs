//! PostgreSQL: the pool, the tenant transaction every request runs in, migrations, and the
//! start-up check that row-level security cannot be bypassed.

pub mod guard;
pub mod migrate;
pub mod throwaway;

use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row};

use crate::auth::Tenant;
use crate::error::ApiError;

/// The role every request runs as: no superuser, no BYPASSRLS, owns nothing.
pub const RUNTIME_ROLE: &str = "otica_runtime";

/// A query parameter with its PostgreSQL type, so statements need no describe round trip.
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// How requests use the database.
#[derive(Clone, Debug)]
pub struct DbSettings {
    /// Connections kept open.
    pub pool_size: usize,
    /// How long a request waits for a connection (and a new connection may take).
    pub pool_timeout: Duration,
    /// The longest one statement of a request may run.
    pub statement_timeout: Duration,
    /// Named prepared statements, cached per connection. Off behind a pooler that does not
    /// track them (PgBouncer before 1.21 in transaction mode): statements are then sent
    /// unnamed, with their parameter types, in one round trip each.
    pub prepared_statements: bool,
}

impl Default for DbSettings {
    fn default() -> Self {
        Self {
            pool_size: default_pool_size(),
            pool_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
            prepared_statements: true,
        }
    }
}

/// Twice this machine's CPUs, from 4 to 16. More connections than PostgreSQL can run at once
/// only queue inside it: on 2 CPUs shared with the database, 4 connections served as many
/// requests as 16 with a p99 of a few milliseconds instead of hundreds (bench/NOTES.md).
pub fn default_pool_size() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |n| n.get() * 2)
        .clamp(4, 16)
}

/// The request side of the database: a pool and how to use it.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    settings: DbSettings,
}

impl Database {
    /// A pool for `database_url`; connections are opened on demand.
    pub fn connect_lazy(database_url: &str, settings: DbSettings) -> Result<Self, String> {
        let pg: tokio_postgres::Config = database_url
            .parse()
            .map_err(|e| format!("DATABASE_URL is not a PostgreSQL URL: {e}"))?;
        // Nothing session-level is ever set on these connections, so the cheap check (is the
        // socket still open?) is enough; a broken connection is dropped, never reused.
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .wait_timeout(Some(settings.pool_timeout))
            .create_timeout(Some(settings.pool_timeout))
            .recycle_timeout(Some(settings.pool_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| format!("cannot build the connection pool: {e}"))?;
        Ok(Self { pool, settings })
    }

    /// The underlying pool (for readiness checks and metrics).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Borrows a connection, or answers 503 when none comes in time.
    pub async fn connection(&self) -> Result<Object, ApiError> {
        self.pool.get().await.map_err(|err| {
            match &err {
                PoolError::Timeout(_) => {
                    tracing::warn!(error = %err, "no database connection in time")
                }
                _ => tracing::warn!(error = ?err, "database connection failed"),
            }
            unavailable()
        })
    }

    /// Opens the tenant transaction: from here until it ends, this connection acts as the
    /// runtime role for `tenant`'s organization only, with the statement timeout set.
    ///
    /// Every setting is transaction-local (`set_config(..., true)` is `SET LOCAL`), so it
    /// ends with the transaction, on commit, rollback, or when the transaction is dropped
    /// because the client went away; nothing is left on the pooled connection.
    pub async fn begin<'c>(
        &self,
        conn: &'c mut Object,
        tenant: &Tenant,
    ) -> Result<Tx<'c>, ApiError> {
        let inner = conn.transaction().await.map_err(db_error)?;
        let tx = Tx {
            inner,
            prepared: self.settings.prepared_statements,
        };
        let timeout_ms = self.settings.statement_timeout.as_millis().to_string();
        // `set_config('role', r, true)` is `SET LOCAL ROLE r` in a form that takes parameters.
        tx.query(
            "SELECT set_config('role', $1, true),
                    set_config('app.org_id', $2, true),
                    set_config('statement_timeout', $3, true)",
            &[
                (&RUNTIME_ROLE, Type::TEXT),
                (&tenant.org_id, Type::TEXT),
                (&timeout_ms, Type::TEXT),
            ],
        )
        .await
        .map_err(db_error)?;
        Ok(tx)
    }
}

/// A tenant transaction. Repository functions take this, never the pool, so no query can
/// run outside a tenant context.
pub struct Tx<'c> {
    inner: deadpool_postgres::Transaction<'c>,
    prepared: bool,
}

impl Tx<'_> {
    /// Runs `sql` and returns its rows.
    pub async fn query(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        if self.prepared {
            let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
            let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
            let statement = self.inner.prepare_typed_cached(sql, &types).await?;
            self.inner.query(&statement, &values).await
        } else {
            self.inner.query_typed(sql, params).await
        }
    }

    /// Runs `sql`, which returns at most one row.
    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), ApiError> {
        self.inner.commit().await.map_err(db_error)
    }
}

fn unavailable() -> ApiError {
    ApiError::Unavailable("The database is unavailable right now; retry shortly.")
}

/// A database error in words: tokio-postgres' own `Display` says only "db error", so this
/// adds the server's message, or the underlying I/O error. Never includes a password.
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    match std::error::Error::source(err) {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    }
}

/// Maps a database error nobody expected. A lost connection, a server shutting down or a
/// statement over its time limit is a 503 (retrying may work); anything else is logged once
/// with its cause and answered as 500.
pub fn db_error(err: tokio_postgres::Error) -> ApiError {
    let code = err.code();
    if code == Some(&SqlState::QUERY_CANCELED) {
        tracing::warn!(error = ?err, "statement timed out");
        return ApiError::Unavailable("The database took too long to answer; retry shortly.");
    }
    let shutting_down = matches!(
        code,
        Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CRASH_SHUTDOWN
            || *c == SqlState::CANNOT_CONNECT_NOW
    );
    if code.is_some_and(|c| c.code().starts_with("22")) {
        // Data exceptions (a NUL byte, a value out of range) are the input's fault; the
        // validation in front of the database should have caught them first.
        tracing::warn!(error = ?err, "the database refused a value");
        return ApiError::invalid("body", "contains a value the database cannot store");
    }
    if err.is_closed() || shutting_down || err.as_db_error().is_none() {
        tracing::warn!(error = ?err, "database connection lost");
        return unavailable();
    }
    tracing::error!(error = ?err, "unexpected database error");
    ApiError::Internal
}
