//! The test harness: one throwaway PostgreSQL cluster per test run, a fresh database per
//! test (copied from a migrated template), a JWKS server on 127.0.0.1 the tests control,
//! tokens signed by keys the tests make, and the app on a real socket.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use otica_api::app::HttpSettings;
use otica_api::auth::Verifier;
use otica_api::auth::dev_issuer::{RsaKey, generate_rsa_key};
use otica_api::config::{AuthConfig, KeySource};
use otica_api::db::DbSettings;
use otica_api::db::throwaway::{Bouncer, Cluster};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Route, Server, handler};
use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls};

/// Shop A and shop B of most tests.
pub const ORG_A: &str = "org_2ShopAlpha";
pub const ORG_B: &str = "org_2ShopBravo";

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static BOUNCER: OnceLock<Option<Bouncer>> = OnceLock::new();
static TEMPLATE_READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| Cluster::start().expect("start a throwaway PostgreSQL cluster"))
}

/// With `OTICA_TEST_THROUGH_PGBOUNCER=1`, the app reaches PostgreSQL through PgBouncer in
/// transaction mode (and without named prepared statements, which PgBouncer 1.18 does not
/// carry across server connections); the tests' own arranging and checking stays direct.
pub fn through_pgbouncer() -> Option<&'static Bouncer> {
    BOUNCER
        .get_or_init(|| {
            let wanted = std::env::var("OTICA_TEST_THROUGH_PGBOUNCER").is_ok_and(|v| v == "1");
            wanted.then(|| cluster().start_pgbouncer().expect("start PgBouncer"))
        })
        .as_ref()
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}

/// A new database with every migration applied; returns its name.
pub async fn fresh_database() -> String {
    let cluster = cluster();
    TEMPLATE_READY
        .get_or_init(|| async {
            let admin = connect(&cluster.url("postgres")).await;
            admin
                .batch_execute("CREATE DATABASE otica_template")
                .await
                .unwrap();
            otica_api::db::migrate::run_url(&cluster.url("otica_template"))
                .await
                .expect("migrations apply to an empty database");
        })
        .await;
    let name = format!("otica_test_{}", NEXT_DB.fetch_add(1, Ordering::Relaxed));
    let admin = connect(&cluster.url("postgres")).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE otica_template"))
        .await
        .unwrap();
    name
}

/// A new migrated database; returns its direct superuser URL.
pub async fn fresh_database_url() -> String {
    cluster().url(&fresh_database().await)
}

/// How the JWKS server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwksMode {
    Serve,
    Fail,
    Hang,
}

/// A Clerk stand-in: signing keys, a JWKS endpoint on 127.0.0.1, and token minting.
pub struct Issuer {
    pub url: String,
    keys: Mutex<Vec<(String, RsaKey)>>,
    mode: Mutex<JwksMode>,
    fetches: AtomicU64,
}

#[handler]
async fn jwks(issuer: poem::web::Data<&Arc<Issuer>>) -> poem::Response {
    issuer.fetches.fetch_add(1, Ordering::SeqCst);
    let mode = *issuer.mode.lock().unwrap();
    match mode {
        JwksMode::Serve => {
            let keys = issuer
                .keys
                .lock()
                .unwrap()
                .iter()
                .map(|(_, key)| key.jwk.clone())
                .collect();
            poem::web::Json(JwkSet { keys }).into_response()
        }
        JwksMode::Fail => poem::Response::builder()
            .status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
            .finish(),
        JwksMode::Hang => {
            // Longer than the verifier's fetch timeout; bounded so the server never leaks.
            tokio::time::sleep(Duration::from_secs(10)).await;
            poem::Response::builder()
                .status(poem::http::StatusCode::GATEWAY_TIMEOUT)
                .finish()
        }
    }
}

use poem::IntoResponse;

impl Issuer {
    /// An issuer with one key, `ins_test1`, serving its JWKS.
    pub async fn start() -> Arc<Self> {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let issuer = Arc::new(Issuer {
            url: format!("http://{addr}"),
            keys: Mutex::new(Vec::new()),
            mode: Mutex::new(JwksMode::Serve),
            fetches: AtomicU64::new(0),
        });
        issuer.add_key("ins_test1");
        let app = Route::new()
            .at("/.well-known/jwks.json", jwks)
            .data(issuer.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        issuer
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.url)
    }

    /// Makes a new key and publishes it.
    pub fn add_key(&self, kid: &str) {
        let key = generate_rsa_key(kid).unwrap();
        self.keys.lock().unwrap().push((kid.to_owned(), key));
    }

    /// Stops publishing `kid`, returning the key so tokens can still be signed with it.
    pub fn unpublish(&self, kid: &str) -> RsaKey {
        let mut keys = self.keys.lock().unwrap();
        let i = keys.iter().position(|(k, _)| k == kid).unwrap();
        keys.remove(i).1
    }

    /// The public PEM of `kid`.
    pub fn public_pem(&self, kid: &str) -> String {
        let keys = self.keys.lock().unwrap();
        keys.iter()
            .find(|(k, _)| k == kid)
            .map(|(_, key)| key.public_pem.clone())
            .unwrap()
    }

    pub fn set_mode(&self, mode: JwksMode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    /// The signing half of `kid`.
    pub fn key(&self, kid: &str) -> EncodingKey {
        let keys = self.keys.lock().unwrap();
        keys.iter()
            .find(|(k, _)| k == kid)
            .map(|(_, key)| key.signing.clone())
            .unwrap()
    }

    /// Signs `claims` with the key `kid` (RS256).
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        sign_with(&self.key(kid), kid, claims)
    }

    /// Claims of a v2 session token for `org` (role `admin`), valid for a minute.
    pub fn v2_claims(&self, org: &str) -> Value {
        let now = now();
        json!({
            "azp": "http://localhost:5173", "exp": now + 60, "fva": [3, -1], "iat": now,
            "iss": self.url, "jti": "a1b2c3", "nbf": now - 10, "sid": "sess_2Test",
            "sts": "active", "sub": "user_2Tester", "v": 2,
            "o": {"id": org, "rol": "admin", "slg": "shop", "per": "manage,read", "fpm": "3"},
        })
    }

    /// Claims of a v1 session token for `org` (role `org:admin`), valid for a minute.
    pub fn v1_claims(&self, org: &str) -> Value {
        let now = now();
        json!({
            "azp": "http://localhost:5173", "exp": now + 60, "fva": [3, -1], "iat": now,
            "iss": self.url, "nbf": now - 10, "sid": "sess_2Test", "sub": "user_2Tester",
            "org_id": org, "org_slug": "shop", "org_role": "org:admin",
            "org_permissions": ["org:staff:manage"],
        })
    }

    /// A v2 token for `org` signed with the first key.
    pub fn token(&self, org: &str) -> String {
        self.sign("ins_test1", &self.v2_claims(org))
    }
}

/// Signs `claims` with `key` (RS256), header `kid` = `kid`.
pub fn sign_with(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A token with a hand-written header, signed by `key` with `alg` (or unsigned for `None`).
pub fn raw_token(header: &Value, claims: &Value, key: Option<(&EncodingKey, Algorithm)>) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = match key {
        Some((key, alg)) => jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap(),
        None => String::new(),
    };
    format!("{message}.{signature}")
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The app running on 127.0.0.1 against a fresh database.
pub struct TestApp {
    pub base: String,
    /// Direct superuser URL of this test's database.
    pub database_url: String,
    /// The app's own database handle (its pool), to look at the very connections it uses.
    pub database: otica_api::db::Database,
    pub issuer: Arc<Issuer>,
    pub http: reqwest::Client,
}

/// Settings a test may change before the app starts.
pub struct Options {
    /// The test's token issuer, already running.
    pub issuer: Arc<Issuer>,
    pub auth: AuthConfig,
    pub cors: Vec<String>,
    pub request_timeout: Duration,
    pub db: DbSettings,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the app after `adjust` had its say on the settings.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Options)) -> Self {
        let issuer = Issuer::start().await;
        let name = fresh_database().await;
        let database_url = cluster().url(&name);
        let mut db = DbSettings {
            pool_size: 4,
            ..DbSettings::default()
        };
        let app_url = match through_pgbouncer() {
            Some(bouncer) => {
                db.prepared_statements = false;
                bouncer.url(&name)
            }
            None => database_url.clone(),
        };
        let mut options = Options {
            issuer: issuer.clone(),
            auth: AuthConfig::new(
                vec![issuer.url.clone()],
                KeySource::Jwks(issuer.jwks_url().parse().unwrap()),
            ),
            cors: vec!["http://localhost:5173".to_owned()],
            request_timeout: Duration::from_secs(15),
            db,
        };
        adjust(&mut options);

        let verifier = Arc::new(Verifier::new(&options.auth).unwrap());
        let database = otica_api::db::Database::connect_lazy(&app_url, options.db.clone()).unwrap();
        let http = HttpSettings {
            cors_allowed_origins: options.cors,
            request_timeout: options.request_timeout,
        };
        let app = otica_api::app::build(database.clone(), verifier, http);
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));

        TestApp {
            base: format!("http://{addr}"),
            database_url,
            database,
            issuer,
            http: reqwest::Client::new(),
        }
    }

    pub fn token(&self, org: &str) -> String {
        self.issuer.token(org)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A superuser connection to this test's database, for arranging and checking rows.
    pub async fn db(&self) -> Client {
        connect(&self.database_url).await
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_json(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch_json(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Creates a member in `org` and returns it; panics unless the API answers 201.
    pub async fn create_staff(&self, org: &str, body: Value) -> Value {
        let response = self
            .post_json(&self.token(org), "/api/v1/staff", &body)
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "create failed: {body}");
        body
    }

    /// A member with the given name and email, role STAFF.
    pub async fn add_member(&self, org: &str, name: &str, email: &str) -> Value {
        self.create_staff(
            org,
            json!({"full_name": name, "email": email, "role": "STAFF"}),
        )
        .await
    }

    /// Lists `org`'s staff with a query string and returns the JSON array.
    pub async fn list(&self, org: &str, query: &str) -> Vec<Value> {
        let response = self
            .get(&self.token(org), &format!("/api/v1/staff{query}"))
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// Reads a problem+json answer, checking its media type and status field.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    body
}

/// The fields named in a problem's `errors`.
pub fn failing_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Names of `rows` in order.
pub fn names(rows: &[Value]) -> Vec<&str> {
    rows.iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect()
}

/// What a pooled connection sees with no tenant set: (rows visible, insert error code,
/// app.org_id, current_user), checked as the runtime role inside a transaction.
pub async fn untenanted_view(
    client: &mut tokio_postgres::Client,
) -> (
    i64,
    Option<tokio_postgres::error::SqlState>,
    Option<String>,
    String,
) {
    let settings = client
        .query_one(
            "SELECT current_setting('app.org_id', true), current_user::text",
            &[],
        )
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("SET LOCAL ROLE otica_runtime")
        .await
        .unwrap();
    let seen: i64 = tx
        .query_one("SELECT count(*) FROM staff_members", &[])
        .await
        .unwrap()
        .get(0);
    let insert = tx
        .execute(
            "INSERT INTO staff_members (organization_id, full_name, email, role)
             VALUES ('org_2ShopAlpha', 'Eve', 'eve@x.example', 'STAFF')",
            &[],
        )
        .await;
    (
        seen,
        insert.err().and_then(|e| e.code().cloned()),
        settings.get(0),
        settings.get(1),
    )
}

/// Runs `sql` on the database at `url` (a direct superuser connection).
pub async fn execute(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
}

/// A cluster of the test's own (for what would disturb the shared one: stopping it,
/// changing its roles), with a migrated database `otica`; returns it and that database's URL.
pub async fn private_cluster() -> (Cluster, String) {
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .unwrap()
        .unwrap();
    execute(&cluster.url("postgres"), "CREATE DATABASE otica").await;
    let url = cluster.url("otica");
    otica_api::db::migrate::run_url(&url).await.unwrap();
    (cluster, url)
}
