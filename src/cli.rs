//! The commands: `serve` (production), `migrate`, `dev` (everything local), `openapi`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use poem::Server;
use poem::listener::TcpListener;

use crate::auth::Verifier;
use crate::config::{self, Config};
use crate::db::{self, migrate};
use crate::{app, auth};

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: otica-api <command>

commands:
  serve     run the API (settings from the environment or .env; see README)
  migrate   apply pending database migrations and exit
  dev       run everything locally: throwaway database, local token issuer, demo data
  openapi   print the OpenAPI document (YAML) the code describes";

/// Runs the command named by the first argument.
pub async fn main(args: Vec<String>) -> ExitCode {
    config::load_dotenv();
    crate::telemetry::init();
    let result = match args.get(1).map(String::as_str) {
        Some("serve") => serve().await,
        Some("migrate") => run_migrate().await,
        Some("dev") => crate::dev::run().await,
        Some("openapi") => {
            print!("{}", app::openapi_yaml());
            Ok(())
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("otica-api: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_migrate() -> Result<(), String> {
    let url = config::database_url().map_err(|e| e.to_string())?;
    let applied = migrate::run_url(&url).await?;
    tracing::info!(applied, "migrations done");
    Ok(())
}

async fn serve() -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;

    migrate::run_url(&config.database_url).await?;
    check_isolation(&config.database_url).await?;

    let verifier = Arc::new(Verifier::new(&config.auth)?);
    if let Some(jwks) = verifier.jwks() {
        let jwks = jwks.clone();
        tokio::spawn(async move { load_keys_until_done(&jwks).await });
    }

    let db = db::Database::connect_lazy(&config.database_url, config.db.clone())?;
    run(config.bind_addr, db, verifier, config.cors_allowed_origins).await
}

/// Refuses to go on when the database would let one shop see another's rows.
pub(crate) async fn check_isolation(database_url: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to DATABASE_URL: {e}"))?;
    let task = tokio::spawn(connection);
    let findings = db::guard::findings(&client)
        .await
        .map_err(|e| format!("the isolation check failed to run: {e:?}"))?;
    drop(client);
    let _ = task.await;
    if findings.is_empty() {
        return Ok(());
    }
    for finding in &findings {
        tracing::error!(finding = %finding, "tenant isolation is not guaranteed");
    }
    Err(format!(
        "refusing to serve: tenant isolation is not guaranteed: {}",
        findings.join("; ")
    ))
}

/// Fetches the signing keys once at start; on failure warns and retries with a growing pause.
async fn load_keys_until_done(jwks: &auth::keys::JwksCache) {
    let mut pause = Duration::from_secs(2);
    while jwks.fetch().await.is_err() {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(60));
        if jwks.key_count() > 0 {
            return; // a request-driven refresh succeeded meanwhile
        }
    }
}

pub(crate) async fn run(
    addr: SocketAddr,
    db: db::Database,
    verifier: Arc<Verifier>,
    cors: Vec<String>,
) -> Result<(), String> {
    let endpoint = app::build(db.clone(), verifier, cors);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), bind = %addr, "otica-api listening");
    Server::new(TcpListener::bind(addr))
        .run_with_graceful_shutdown(endpoint, shutdown_signal(), Some(SHUTDOWN_GRACE))
        .await
        .map_err(|e| format!("cannot serve on {addr}: {e}"))?;
    db.pool().close();
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler cannot fail on Unix");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
