//! PostgreSQL: the pool, the tenant transaction every request runs in, migrations, and the
//! start-up check that row-level security cannot be bypassed.

pub mod guard;
pub mod migrate;
pub mod throwaway;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::Poll;
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row, Statement};

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

/// Four times this machine's CPUs, from 8 to 16. Each request holds a connection only for
/// its one round trip, and the server runs on few threads (`TOKIO_WORKER_THREADS`), so
/// PostgreSQL needs a few more requests in flight than it has CPUs to stay busy: on 2 CPUs,
/// 8 connections beat 4 on get in four of four paired runs, with p99 still ~3–6 ms, and 2
/// starved it (bench/NOTES.md). Far more only queues inside PostgreSQL (16 against 4 once
/// raised p99 from a few milliseconds to hundreds).
pub fn default_pool_size() -> usize {
    std::thread::available_parallelism()
        .map_or(8, |n| n.get() * 4)
        .clamp(8, 16)
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
            // No TLS yet: the service must reach PostgreSQL over a trusted network or a
            // TLS-terminating proxy until a rustls connector is wired in here.
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

    /// Opens the tenant transaction on a connection of its own: from its first statement
    /// until it ends, the connection acts as the runtime role for `tenant`'s organization
    /// only, with the statement timeout set.
    ///
    /// Every setting is transaction-local (`set_config(..., true)` is `SET LOCAL`), so it
    /// ends with the transaction; nothing is ever left on a pooled connection.
    pub async fn begin(&self, tenant: &Tenant) -> Result<Tx, ApiError> {
        self.open(tenant, false).await
    }

    /// Like [`begin`](Self::begin), for a transaction of exactly one statement: `BEGIN`, the
    /// tenant settings, the statement and `COMMIT` leave together, and the whole request
    /// costs one round trip. Should the statement fail, PostgreSQL has aborted the
    /// transaction and that `COMMIT` rolls it back; either way it has ended when the
    /// statement's answer comes back.
    pub async fn begin_single(&self, tenant: &Tenant) -> Result<Tx, ApiError> {
        self.open(tenant, true).await
    }

    async fn open(&self, tenant: &Tenant, single: bool) -> Result<Tx, ApiError> {
        let conn = self.connection().await?;
        Ok(Tx {
            conn: Some(conn),
            org_id: tenant.org_id.clone(),
            timeout_ms: self.settings.statement_timeout.as_millis().to_string(),
            prepared: self.settings.prepared_statements,
            single,
            state: AtomicU8::new(IDLE),
        })
    }
}

/// `set_config('role', r, true)` is `SET LOCAL ROLE r` in a form that takes parameters.
///
/// Switching roles inside the session means `RESET ROLE` would return to the `DATABASE_URL`
/// user: row-level security stops queries that forget their `WHERE`, not injected SQL. No
/// SQL is ever built from input; logging in as a role that can only become the runtime role
/// would close this too, at the price of a second URL for migrations.
const TENANT_SETTINGS: &str = "SELECT set_config('role', $1, true), \
                                      set_config('app.org_id', $2, true), \
                                      set_config('statement_timeout', $3, true)";
const TENANT_SETTINGS_TYPES: [Type; 3] = [Type::TEXT, Type::TEXT, Type::TEXT];

/// Nothing sent yet, or committed: the connection is clean.
const IDLE: u8 = 0;
/// `BEGIN` sent and the transaction not known to have ended.
const OPEN: u8 = 1;
/// A one-statement transaction whose statement and `COMMIT` have been answered.
const ENDED: u8 = 2;

/// A tenant transaction. Repository functions take this, never the pool, so no query can
/// run outside a tenant context.
///
/// Nothing is sent until the first statement: then `BEGIN`, the tenant settings and that
/// statement go out together, in that order, and PostgreSQL answers all three in one round
/// trip (with `COMMIT` as well for [`Database::begin_single`]). A transaction dropped before
/// it ends (an error, a request over its time limit) is rolled back before its connection
/// returns to the pool, so no later request can find it half-done.
pub struct Tx {
    conn: Option<Object>,
    org_id: String,
    timeout_ms: String,
    prepared: bool,
    single: bool,
    state: AtomicU8,
}

/// The statements of every transaction, prepared once per connection.
struct Frame {
    begin: Statement,
    settings: Statement,
    commit: Statement,
}

impl Tx {
    fn conn(&self) -> &Object {
        self.conn
            .as_ref()
            .expect("a transaction keeps its connection until it ends")
    }

    fn client(&self) -> &tokio_postgres::Client {
        self.conn()
    }

    /// `BEGIN`, the tenant settings and `COMMIT` as named statements, or `None` when
    /// statements are sent unnamed. Prepared on a connection's first transaction, before it
    /// begins (they touch no table, so they wait on no lock), and cached from then on: a
    /// statement must be ready before the pipeline starts, or its `Parse` round trip would
    /// let a later statement overtake it.
    async fn frame(&self) -> Result<Option<Frame>, tokio_postgres::Error> {
        if !self.prepared {
            return Ok(None);
        }
        let conn = self.conn();
        let (begin, settings, commit) = tokio::try_join!(
            conn.prepare_typed_cached("BEGIN", &[]),
            conn.prepare_typed_cached(TENANT_SETTINGS, &TENANT_SETTINGS_TYPES),
            conn.prepare_typed_cached("COMMIT", &[]),
        )?;
        Ok(Some(Frame {
            begin,
            settings,
            commit,
        }))
    }

    /// Runs `sql` and returns its rows.
    pub async fn query(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let state = self.state.load(Ordering::SeqCst);
        assert!(
            state != ENDED,
            "a one-statement transaction was given a second statement"
        );
        // Set just before the statement is handed to the connection, which sends requests in
        // the order it receives them: `COMMIT` may follow from then on.
        let sent = AtomicBool::new(false);
        // Prepared inside the transaction, after its settings: a Parse waiting on a lock is
        // then bounded by the statement timeout like everything else.
        let run = async {
            if self.prepared {
                let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
                let statement = self.conn().prepare_typed_cached(sql, &types).await?;
                let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
                sent.store(true, Ordering::SeqCst);
                self.client().query(&statement, &values).await
            } else {
                sent.store(true, Ordering::SeqCst);
                self.client().query_typed(sql, params).await
            }
        };
        if state == OPEN {
            return run.await;
        }

        let frame = self.frame().await?;
        let client = self.client();
        let tenant: [Param<'_>; 3] = [
            (&RUNTIME_ROLE, Type::TEXT),
            (&self.org_id, Type::TEXT),
            (&self.timeout_ms, Type::TEXT),
        ];
        let begin = async {
            match &frame {
                Some(f) => client.query(&f.begin, &[]).await,
                None => client.query_typed("BEGIN", &[]).await,
            }
        };
        let settings = async {
            match &frame {
                Some(f) => {
                    let values = [tenant[0].0, tenant[1].0, tenant[2].0];
                    client.query(&f.settings, &values).await
                }
                None => client.query_typed(TENANT_SETTINGS, &tenant).await,
            }
        };
        let commit = async {
            match &frame {
                Some(f) => client.query(&f.commit, &[]).await,
                None => client.query_typed("COMMIT", &[]).await,
            }
        };
        self.state.store(OPEN, Ordering::SeqCst);
        let then_commit = self.single.then_some((&sent, commit));
        let (begun, set, rows, committed) = pipeline(begin, settings, run, then_commit).await;
        // Should BEGIN or the settings fail, the statement failed too (it ran in the same
        // aborted transaction, or with no tenant, which sees and writes nothing): report the
        // first cause.
        begun?;
        set?;
        match committed {
            // The transaction has ended, committed or (after a failed statement) rolled back.
            Some(Ok(_)) => self.state.store(ENDED, Ordering::SeqCst),
            Some(Err(err)) => {
                rows?;
                return Err(err);
            }
            None => {}
        }
        rows
    }

    /// Runs `sql`, which returns at most one row.
    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Commits the transaction and gives the connection back to the pool.
    pub async fn commit(mut self) -> Result<(), ApiError> {
        if self.state.load(Ordering::SeqCst) == OPEN {
            let frame = self.frame().await.map_err(db_error)?;
            match &frame {
                Some(f) => self.client().query(&f.commit, &[]).await,
                None => self.client().query_typed("COMMIT", &[]).await,
            }
            .map_err(db_error)?;
        }
        // Finished cleanly: the connection may serve the next request.
        self.state.store(IDLE, Ordering::SeqCst);
        drop(self.conn.take());
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.state.load(Ordering::SeqCst) != OPEN {
            return; // nothing was sent, or it ended: the connection is clean
        }
        let Some(conn) = self.conn.take() else { return };
        // Roll back behind whatever is still in flight, then give the connection back. The
        // pool slot stays taken until then, so abandoned requests can never open more
        // backends than the pool allows. Should the rollback fail, the connection is closed.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if conn.batch_execute("ROLLBACK").await.is_err() {
                        drop(Object::take(conn));
                    }
                });
            }
            Err(_) => drop(Object::take(conn)),
        }
    }
}

/// Awaits `BEGIN`, the settings and the statement, polling them always in this order, so the
/// requests they send on first poll reach the connection in this order; and `COMMIT`, when
/// given, from the moment its flag says the statement has been handed over (never, should
/// the statement fail before that).
async fn pipeline<A: Future, B: Future, C: Future, D: Future>(
    a: A,
    b: B,
    c: C,
    d: Option<(&AtomicBool, D)>,
) -> (A::Output, B::Output, C::Output, Option<D::Output>) {
    let (mut a, mut b, mut c) = (pin!(a), pin!(b), pin!(c));
    let (flag, d) = match d {
        Some((flag, d)) => (Some(flag), Some(d)),
        None => (None, None),
    };
    let mut d = pin!(d);
    let (mut ra, mut rb, mut rc, mut rd) = (None, None, None, None);
    let mut d_started = false;
    std::future::poll_fn(|cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if rc.is_none()
            && let Poll::Ready(v) = c.as_mut().poll(cx)
        {
            rc = Some(v);
        }
        if rd.is_none()
            && flag.is_some_and(|f| f.load(Ordering::SeqCst))
            && let Some(d) = d.as_mut().as_pin_mut()
        {
            d_started = true;
            if let Poll::Ready(v) = d.poll(cx) {
                rd = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() && rc.is_some() && (!d_started || rd.is_some()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (
        ra.expect("ready"),
        rb.expect("ready"),
        rc.expect("ready"),
        rd,
    )
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
