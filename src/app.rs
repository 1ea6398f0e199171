//! The HTTP application: routes, documentation and middleware, assembled in one place.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use poem::http::{Method, StatusCode};
use poem::middleware::Cors;
use poem::web::Data;
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler};
use poem_openapi::OpenApiService;

use crate::auth::Verifier;
use crate::db::{Database, DbSettings};
use crate::error::{ApiError, problem_from_poem_error};
use crate::metrics::Metrics;
use crate::staff::StaffApi;
use crate::telemetry::{REQUEST_ID, observe};

/// HTTP-level settings.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// `CORS_ALLOWED_ORIGINS`: browser origins allowed to call the API; none by default.
    pub cors_allowed_origins: Vec<String>,
    /// `REQUEST_TIMEOUT_MS`: the longest a request may take before it answers 503.
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            cors_allowed_origins: Vec::new(),
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// The OpenAPI service: every typed operation and the document describing them.
pub fn api_service(db: Database) -> OpenApiService<StaffApi, ()> {
    OpenApiService::new(StaffApi::new(db), "otica-api", env!("CARGO_PKG_VERSION")).description(
        "Team management for optical shops. Every operation acts on the shop (Clerk \
             organization) of the caller's session token and nothing else. Errors are \
             `application/problem+json` (RFC 9457).",
    )
}

/// The committed `openapi.yaml`, as the code describes it now.
pub fn openapi_yaml() -> String {
    // The pool connects lazily; describing the API never touches it.
    let db = Database::connect_lazy("postgres://localhost/unused", DbSettings::default())
        .expect("a pool for a well-formed URL always builds");
    api_service(db).spec_yaml()
}

/// The whole application, ready to serve.
pub fn build(db: Database, verifier: Arc<Verifier>, http: HttpSettings) -> impl Endpoint {
    let api = api_service(db.clone());
    let docs = api.swagger_ui();
    let spec_json = api.spec_endpoint();
    let spec_yaml = api.spec_endpoint_yaml();
    let metrics = Arc::new(Metrics::new());

    // An empty allow-list must mean "no origin", which poem's Cors reads as "any origin":
    // deciding through a function keeps the empty case closed.
    let allowed: HashSet<String> = http.cors_allowed_origins.into_iter().collect();
    let cors = Cors::new()
        .allow_origins_fn(move |origin| allowed.contains(origin))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers(["authorization", "content-type", REQUEST_ID])
        .expose_headers(["location", REQUEST_ID])
        .max_age(600);

    let observed = metrics.clone();
    let time_limit = http.request_timeout;
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", spec_json)
        .at("/openapi.yaml", spec_yaml)
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics_text))
        .data(verifier)
        .data(db)
        .data(metrics)
        // Errors become problem+json before CORS sees them: poem's Cors turns errors into
        // plain-text responses itself, which browsers (sending Origin) would then get.
        .catch_all_error(problem_from_poem_error)
        .with(cors)
        // And the refusals of CORS itself (origin, method or header not allowed).
        .catch_all_error(problem_from_poem_error)
        .around(move |next, req| observe(next, req, observed.clone(), time_limit))
}

/// 200 while the process runs.
#[handler]
fn healthz() -> Response {
    ok_status("alive")
}

/// 200 when the database answers a query, 503 otherwise.
#[handler]
async fn readyz(db: Data<&Database>) -> Response {
    let ready = match db.pool().get().await {
        Ok(conn) => conn.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    if ready {
        ok_status("ready")
    } else {
        ApiError::Unavailable("The database does not answer.").into_response()
    }
}

/// Prometheus metrics in the text format.
#[handler]
fn metrics_text(
    metrics: Data<&Arc<Metrics>>,
    db: Data<&Database>,
    verifier: Data<&Arc<Verifier>>,
) -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render(&db, &verifier))
}

fn ok_status(status: &str) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .content_type("application/json")
        .body(format!(r#"{{"status":"{status}"}}"#))
}
