//! PostgreSQL: the pool, the tenant transaction every request runs in, migrations, and the
//! start-up check that row-level security cannot be bypassed.

pub mod guard;
pub mod migrate;
pub mod throwaway;

use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, Transaction,
};
use tokio_postgres::NoTls;

use crate::auth::Tenant;
use crate::error::ApiError;

/// The role every request runs as: no superuser, no BYPASSRLS, owns nothing.
pub const RUNTIME_ROLE: &str = "otica_runtime";

/// Builds the connection pool; connections are opened on demand.
pub fn pool(database_url: &str, size: usize, wait: Duration) -> Result<Pool, String> {
    let pg: tokio_postgres::Config = database_url
        .parse()
        .map_err(|e| format!("DATABASE_URL is not a PostgreSQL URL: {e}"))?;
    // Nothing session-level is ever set on these connections, so the cheap check is enough.
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait))
        .recycle_timeout(Some(wait))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| format!("cannot build the connection pool: {e}"))
}

/// Borrows a connection, or answers 503 when none comes in time.
pub async fn connection(pool: &Pool) -> Result<Object, ApiError> {
    pool.get().await.map_err(|err| {
        match &err {
            PoolError::Timeout(_) => tracing::warn!(error = %err, "no database connection in time"),
            _ => tracing::error!(error = ?err, "database connection failed"),
        }
        ApiError::Unavailable("The database is unavailable right now; retry shortly.")
    })
}

/// Opens the tenant transaction: from here until commit, this connection acts as the
/// runtime role for `tenant`'s organization only.
///
/// Both settings are transaction-local (`set_config(..., true)` is `SET LOCAL`), so they end
/// with the transaction, on commit, rollback, or when the transaction is dropped; nothing is
/// left on the pooled connection for the next request.
pub async fn begin<'c>(conn: &'c mut Object, tenant: &Tenant) -> Result<Transaction<'c>, ApiError> {
    let tx = conn.transaction().await.map_err(db_error)?;
    // `set_config('role', r, true)` is `SET LOCAL ROLE r` in a form that takes parameters, so
    // the role and the organization are set by one prepared statement in one round trip.
    let stmt = tx
        .prepare_cached("SELECT set_config('role', $1, true), set_config('app.org_id', $2, true)")
        .await
        .map_err(db_error)?;
    tx.execute(&stmt, &[&RUNTIME_ROLE, &tenant.org_id])
        .await
        .map_err(db_error)?;
    Ok(tx)
}

/// Commits a tenant transaction.
pub async fn commit(tx: Transaction<'_>) -> Result<(), ApiError> {
    tx.commit().await.map_err(db_error)
}

/// Maps a database error nobody expected: logged once with its cause, answered as 500 or,
/// when the connection itself failed, 503.
pub fn db_error(err: tokio_postgres::Error) -> ApiError {
    if err.is_closed() || err.as_db_error().is_none() && err.code().is_none() {
        tracing::warn!(error = ?err, "database connection lost");
        return ApiError::Unavailable("The database is unavailable right now; retry shortly.");
    }
    tracing::error!(error = ?err, "unexpected database error");
    ApiError::Internal
}
