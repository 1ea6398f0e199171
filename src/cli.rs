//! The commands: `serve` (production), `migrate`, `dev` (everything local), `openapi`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use poem::Server;
use poem::listener::{AcceptorExt, BoxAcceptor, Listener, TcpListener};

use crate::app::{self, HttpSettings};
use crate::auth::{self, Verifier};
use crate::config::{self, Config};
use crate::conn;
use crate::db::{self, Database, migrate};

const USAGE: &str = "usage: otica-api <command>

commands:
  serve     run the API (settings from the environment or .env; see README)
  migrate   apply pending database migrations and exit
  dev       run everything locally: throwaway database, local token issuer, demo data
  openapi   print the OpenAPI document (YAML) the code describes";

/// Runs the command named by the first argument. The caller has loaded `.env` already
/// ([`config::load_dotenv`]): the binary does it before building the runtime, which `.env`
/// may size.
pub async fn main(args: Vec<String>) -> ExitCode {
    crate::telemetry::init(config::log_json());
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
    let keys = load_keys(&verifier).await;
    let db = Database::connect_lazy(&config.database_url, config.db.clone())?;
    let acceptor = bind(config.bind_addr).await?;

    let (db_host, db_name) = describe_database(&config.database_url);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        bind = %config.bind_addr,
        db.host = %db_host,
        db.name = %db_name,
        db.pool_size = config.db.pool_size,
        auth.issuers = %config.auth.issuers.join(","),
        auth.keys = keys,
        "otica-api started"
    );
    run(acceptor, db, verifier, config.http, config.shutdown_grace).await
}

/// Host and database name of a PostgreSQL URL, for logs: never the user or the password.
fn describe_database(url: &str) -> (String, String) {
    let Ok(parsed) = url.parse::<tokio_postgres::Config>() else {
        return ("?".to_owned(), "?".to_owned());
    };
    let host = match parsed.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = parsed.get_ports().first().copied().unwrap_or(5432);
    let name = parsed
        .get_dbname()
        .or(parsed.get_user())
        .unwrap_or("?")
        .to_owned();
    (format!("{host}:{port}"), name)
}

/// Fetches the signing keys once (bounded by the fetch timeout) and returns how many there
/// are; on failure keeps retrying in the background, so start-up never fails for it.
async fn load_keys(verifier: &Verifier) -> usize {
    let Some(jwks) = verifier.jwks() else {
        return 1; // one static PEM key
    };
    match jwks.fetch().await {
        Ok(count) => count,
        Err(_) => {
            let jwks = jwks.clone();
            tokio::spawn(async move { load_keys_until_done(&jwks).await });
            0
        }
    }
}

/// Binds the HTTP listener, so a taken address fails before anything is announced.
pub(crate) async fn bind(addr: SocketAddr) -> Result<BoxAcceptor, String> {
    TcpListener::bind(addr)
        .into_acceptor()
        .await
        .map(|acceptor| acceptor.boxed())
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Refuses to go on when the database would let one shop see another's rows.
pub(crate) async fn check_isolation(database_url: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to DATABASE_URL: {}", db::describe(&e)))?;
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

/// Retries loading the signing keys with a growing pause until some are held.
async fn load_keys_until_done(jwks: &auth::keys::JwksCache) {
    let mut pause = Duration::from_secs(2);
    loop {
        tokio::time::sleep(pause).await;
        // A request-driven refresh may have succeeded meanwhile.
        if jwks.key_count() > 0 || jwks.fetch().await.is_ok() {
            return;
        }
        pause = (pause * 2).min(Duration::from_secs(60));
    }
}

/// Serves until SIGINT or SIGTERM, then lets in-flight requests finish within `grace`.
pub(crate) async fn run(
    acceptor: BoxAcceptor,
    db: Database,
    verifier: Arc<Verifier>,
    http: HttpSettings,
    grace: Duration,
) -> Result<(), String> {
    // Silent connections close after 30 s, and a request must be answered within 30 s plus
    // the handler's limit from its first byte, so neither stalled nor trickling clients can
    // pile up.
    let limits = conn::Limits::new(Duration::from_secs(30), http.request_timeout);
    let endpoint = app::build(db.clone(), verifier, http);
    Server::new_with_acceptor(conn::Deadlines::new(acceptor, limits))
        .run_with_graceful_shutdown(endpoint, shutdown_signal(), Some(grace))
        .await
        .map_err(|e| format!("server error: {e}"))?;
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
