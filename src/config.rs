//! Settings for `serve` and `migrate`, read from the environment (and `.env` when present).
//!
//! Every setting the service reads is listed here, with its default. A missing or malformed
//! setting stops start-up with one line naming it.

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use crate::app::HttpSettings;
use crate::db::DbSettings;

/// Everything `serve` needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// `DATABASE_URL`: the owner of the schema; requests switch to the runtime role.
    pub database_url: String,
    /// Token verification settings.
    pub auth: AuthConfig,
    /// `CORS_ALLOWED_ORIGINS`, `REQUEST_TIMEOUT_MS`: HTTP-level settings.
    pub http: HttpSettings,
    /// `BIND_ADDR`: where the HTTP server listens.
    pub bind_addr: SocketAddr,
    /// `SHUTDOWN_GRACE_SECS`: how long in-flight requests may finish after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// `DB_POOL_SIZE`, `DB_POOL_TIMEOUT_MS`, `DB_STATEMENT_TIMEOUT_MS`,
    /// `DB_PREPARED_STATEMENTS`: how requests use the database.
    pub db: DbSettings,
}

/// How bearer tokens are verified.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// `CLERK_ISSUER`: accepted `iss` values (comma-separated; the first one is the primary).
    pub issuers: Vec<String>,
    /// Where the signing keys come from.
    pub keys: KeySource,
    /// `CLERK_AUTHORIZED_PARTIES`: when non-empty, a token's `azp` must be one of these.
    pub authorized_parties: Vec<String>,
    /// `CLERK_CLOCK_SKEW_SECS`: leeway for `exp`, `nbf` and `iat` (default 5; 0 is honoured).
    pub clock_skew_secs: u64,
    /// `CLERK_ADMIN_ROLES`: organization roles that may change the team (default `org:admin`).
    pub admin_roles: Vec<String>,
    /// How long a fetched key set is trusted (5 minutes; shorter only in tests).
    pub keys_ttl: Duration,
    /// The least time between two key fetches (30 seconds; shorter only in tests).
    pub refresh_cooldown: Duration,
}

/// The origin of the public keys that sign session tokens.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// `CLERK_JWKS_URL` (default `<first issuer>/.well-known/jwks.json`), fetched and cached.
    Jwks(Url),
    /// `CLERK_JWT_KEY`: one PEM public key; no network at all.
    Pem(String),
}

/// A setting that is missing or cannot be used; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {name}: {problem}")]
pub struct ConfigError {
    name: &'static str,
    problem: String,
}

impl ConfigError {
    fn new(name: &'static str, problem: impl Into<String>) -> Self {
        Self {
            name,
            problem: problem.into(),
        }
    }
}

/// Reads an environment variable; empty counts as unset.
fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name).ok_or_else(|| ConfigError::new(name, "is required but not set"))
}

fn list(name: &str) -> Vec<String> {
    var(name)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().trim_end_matches('/').to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|e| ConfigError::new(name, format!("cannot read {v:?}: {e}"))),
    }
}

/// True when `url`'s host is a loopback name or address (allowed to use plain http).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `BIND_ADDR`, default 127.0.0.1:8000.
pub fn bind_addr() -> Result<SocketAddr, ConfigError> {
    parsed("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8000)))
}

/// `CORS_ALLOWED_ORIGINS`: each must be an origin (`scheme://host[:port]`, no path).
pub fn cors_origins() -> Result<Vec<String>, ConfigError> {
    let origins = list("CORS_ALLOWED_ORIGINS");
    for origin in &origins {
        let ok = Url::parse(origin).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/"
        });
        if !ok {
            return Err(ConfigError::new(
                "CORS_ALLOWED_ORIGINS",
                format!("{origin:?} is not an origin like https://app.example.com"),
            ));
        }
    }
    Ok(origins)
}

/// `LOG_FORMAT`: `json` for one JSON object per line, anything else for human-readable.
pub fn log_json() -> bool {
    var("LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"))
}

/// Loads `.env` (if any) into the environment; real environment variables win.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

/// `TOKIO_WORKER_THREADS` when set, else half the CPUs (at least one). A request needs
/// ~50 µs of CPU and waits on PostgreSQL for the rest, so one thread already serves well over
/// 10,000 requests a second; each extra thread adds cross-thread wake-ups to every request
/// (~20% more CPU per request with two threads on two CPUs), CPU the kernel's network work
/// and often PostgreSQL itself need (bench/NOTES.md).
pub fn worker_threads() -> Result<usize, ConfigError> {
    match var("TOKIO_WORKER_THREADS") {
        Some(value) => match value.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::new(
                "TOKIO_WORKER_THREADS",
                format!("must be a whole number of threads, at least 1 (got {value:?})"),
            )),
        },
        None => Ok(std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))),
    }
}

/// The database URL alone, for `migrate`.
pub fn database_url() -> Result<String, ConfigError> {
    let url = required("DATABASE_URL")?;
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| ConfigError::new("DATABASE_URL", format!("is not a PostgreSQL URL: {e}")))?;
    Ok(url)
}

impl AuthConfig {
    /// Settings for `issuers` and `keys`, with every other setting at its default.
    pub fn new(issuers: Vec<String>, keys: KeySource) -> Self {
        Self {
            issuers,
            keys,
            authorized_parties: Vec::new(),
            clock_skew_secs: 5,
            admin_roles: vec!["org:admin".to_owned()],
            keys_ttl: crate::auth::keys::KEYS_TTL,
            refresh_cooldown: crate::auth::keys::REFRESH_COOLDOWN,
        }
    }

    /// Reads the `CLERK_*` settings.
    pub fn from_env() -> Result<Self, ConfigError> {
        let issuers = list("CLERK_ISSUER");
        let Some(primary) = issuers.first() else {
            return Err(ConfigError::new(
                "CLERK_ISSUER",
                "is required but not set (your Clerk Frontend API URL, e.g. https://clerk.example.com)",
            ));
        };
        for issuer in &issuers {
            let url = Url::parse(issuer).map_err(|e| {
                ConfigError::new("CLERK_ISSUER", format!("{issuer:?} is not a URL: {e}"))
            })?;
            if url.scheme() != "https" && !is_loopback(&url) {
                return Err(ConfigError::new(
                    "CLERK_ISSUER",
                    format!("{issuer:?} must use https"),
                ));
            }
        }

        let keys = match var("CLERK_JWT_KEY") {
            Some(pem) => KeySource::Pem(pem.replace("\\n", "\n")),
            None => {
                let raw = var("CLERK_JWKS_URL")
                    .unwrap_or_else(|| format!("{primary}/.well-known/jwks.json"));
                let url = Url::parse(&raw).map_err(|e| {
                    ConfigError::new("CLERK_JWKS_URL", format!("{raw:?} is not a URL: {e}"))
                })?;
                if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
                    return Err(ConfigError::new(
                        "CLERK_JWKS_URL",
                        format!("{raw:?} must use https (plain http only on a loopback host)"),
                    ));
                }
                KeySource::Jwks(url)
            }
        };

        Ok(Self {
            authorized_parties: list("CLERK_AUTHORIZED_PARTIES"),
            clock_skew_secs: parsed("CLERK_CLOCK_SKEW_SECS", 5)?,
            admin_roles: match list("CLERK_ADMIN_ROLES") {
                roles if roles.is_empty() => vec!["org:admin".to_owned()],
                roles => roles,
            },
            ..Self::new(issuers, keys)
        })
    }
}

impl Config {
    /// Reads every setting `serve` needs.
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = DbSettings::default();
        let pool_size: usize = parsed("DB_POOL_SIZE", defaults.pool_size)?;
        if pool_size == 0 {
            return Err(ConfigError::new("DB_POOL_SIZE", "must be at least 1"));
        }
        let millis = |name, default: Duration| -> Result<Duration, ConfigError> {
            let ms: u64 = parsed(name, default.as_millis() as u64)?;
            if ms == 0 {
                return Err(ConfigError::new(name, "must be at least 1 millisecond"));
            }
            Ok(Duration::from_millis(ms))
        };
        let db = DbSettings {
            pool_size,
            pool_timeout: millis("DB_POOL_TIMEOUT_MS", defaults.pool_timeout)?,
            statement_timeout: millis("DB_STATEMENT_TIMEOUT_MS", defaults.statement_timeout)?,
            prepared_statements: parsed("DB_PREPARED_STATEMENTS", defaults.prepared_statements)?,
        };
        Ok(Self {
            database_url: database_url()?,
            auth: AuthConfig::from_env()?,
            http: HttpSettings {
                cors_allowed_origins: cors_origins()?,
                request_timeout: millis(
                    "REQUEST_TIMEOUT_MS",
                    HttpSettings::default().request_timeout,
                )?,
            },
            bind_addr: bind_addr()?,
            shutdown_grace: Duration::from_secs(parsed("SHUTDOWN_GRACE_SECS", 10)?),
            db,
        })
    }
}
