//! The HTTP application: routes, documentation and middleware, assembled in one place.

use std::collections::HashSet;
use std::sync::Arc;

use poem::http::{Method, StatusCode};
use poem::middleware::Cors;
use poem::web::Data;
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler};
use poem_openapi::OpenApiService;

use crate::auth::Verifier;
use crate::db::{Database, DbSettings};
use crate::error::{ApiError, problem_from_poem_error};
use crate::staff::StaffApi;
use crate::telemetry::log_request;

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
pub fn build(db: Database, verifier: Arc<Verifier>, cors_origins: Vec<String>) -> impl Endpoint {
    let api = api_service(db.clone());
    let docs = api.swagger_ui();
    let spec_json = api.spec_endpoint();
    let spec_yaml = api.spec_endpoint_yaml();

    // An empty allow-list must mean "no origin", which poem's Cors reads as "any origin":
    // deciding through a function keeps the empty case closed.
    let allowed: HashSet<String> = cors_origins.into_iter().collect();
    let cors = Cors::new()
        .allow_origins_fn(move |origin| allowed.contains(origin))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers(["authorization", "content-type", "x-request-id"])
        .expose_headers(["location", "x-request-id"])
        .max_age(600);

    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", spec_json)
        .at("/openapi.yaml", spec_yaml)
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .data(verifier)
        .data(db)
        // Errors become problem+json before CORS sees them: poem's Cors turns errors into
        // plain-text responses itself, which browsers (sending Origin) would then get.
        .catch_all_error(problem_from_poem_error)
        .with(cors)
        .around(log_request)
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

fn ok_status(status: &str) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .content_type("application/json")
        .body(format!(r#"{{"status":"{status}"}}"#))
}
