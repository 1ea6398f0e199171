//! Schema migrations, embedded in the binary and applied by the schema owner.

use tokio_postgres::Client;

refinery::embed_migrations!("migrations");

/// A fixed advisory-lock key ("otica" in ASCII) that serializes migrations across instances.
const MIGRATION_LOCK: i64 = 0x6f_74_69_63_61;

/// Applies pending migrations. Safe when several instances start at once: they take turns on
/// an advisory lock, and the later ones find nothing left to do.
pub async fn run(client: &mut Client) -> Result<usize, String> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| format!("cannot take the migration lock: {e:?}"))?;
    let result = migrations::runner().run_async(client).await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;

    let report = result.map_err(|e| format!("migration failed: {e}"))?;
    unlock.map_err(|e| format!("cannot release the migration lock: {e:?}"))?;
    for m in report.applied_migrations() {
        tracing::info!(migration = %m, "migration applied");
    }
    Ok(report.applied_migrations().len())
}

/// Connects to `database_url` and applies pending migrations.
pub async fn run_url(database_url: &str) -> Result<usize, String> {
    let (mut client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to DATABASE_URL: {}", super::describe(&e)))?;
    let task = tokio::spawn(connection);
    let result = run(&mut client).await;
    drop(client);
    let _ = task.await;
    result
}
