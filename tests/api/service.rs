//! What operators and browsers see: health, readiness, docs, the spec, CORS, unknown routes.

use crate::harness::{ORG_A, TestApp, problem};

#[tokio::test]
async fn health_and_readiness_answer_200_with_a_live_database() {
    let app = TestApp::spawn().await;

    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();

    assert_eq!(health.status(), 200);
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn readiness_is_503_when_the_database_is_unreachable() {
    let app = TestApp::spawn_with(|_| {}).await;
    let settings = otica_api::db::DbSettings {
        pool_size: 1,
        pool_timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let unreachable =
        otica_api::db::Database::connect_lazy("postgres://postgres@127.0.0.1:1/none", settings)
            .unwrap();
    let verifier = std::sync::Arc::new(
        otica_api::auth::Verifier::new(&otica_api::config::AuthConfig::new(
            vec![app.issuer.url.clone()],
            otica_api::config::KeySource::Jwks(app.issuer.jwks_url().parse().unwrap()),
        ))
        .unwrap(),
    );
    let endpoint = otica_api::app::build(unreachable, verifier, Default::default());
    let client = poem_test_client(endpoint);

    let ready = client.get("/readyz").await;
    let list = client
        .get_with_token("/api/v1/staff", &app.token(ORG_A))
        .await;

    assert_eq!(ready.0, 503);
    assert_eq!(list.0, 503);
    assert!(list.1.contains("\"status\":503"));
}

#[tokio::test]
async fn swagger_ui_and_both_spec_formats_are_served() {
    let app = TestApp::spawn().await;

    let docs = app.http.get(app.url("/docs")).send().await.unwrap();
    let json = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    let yaml = app.http.get(app.url("/openapi.yaml")).send().await.unwrap();

    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger-ui"));
    let spec: serde_json::Value = json.json().await.unwrap();
    assert_eq!(
        spec["components"]["securitySchemes"]["ClerkSession"]["scheme"],
        "bearer"
    );
    assert_eq!(yaml.text().await.unwrap(), otica_api::app::openapi_yaml());
}

#[tokio::test]
async fn unknown_routes_answer_problem_json() {
    let app = TestApp::spawn().await;

    let response = app.get(&app.token(ORG_A), "/api/v1/nothing-here").await;

    problem(response, 404).await;
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = TestApp::spawn().await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/staff"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };

    let allowed = preflight("http://localhost:5173").await.unwrap();
    let foreign = preflight("https://evil.example").await.unwrap();

    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // The refusal itself keeps the API's error shape.
    problem(foreign, 403).await;
}

/// A tiny in-process client, for an app that is never bound to a socket.
struct InProcess<E>(E);

fn poem_test_client<E: poem::Endpoint>(endpoint: E) -> InProcess<E> {
    InProcess(endpoint)
}

impl<E: poem::Endpoint> InProcess<E> {
    async fn call(&self, request: poem::Request) -> (u16, String) {
        use poem::IntoResponse;
        let response = match self.0.call(request).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let status = response.status().as_u16();
        let body = response.into_body().into_string().await.unwrap_or_default();
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, String) {
        self.call(poem::Request::builder().uri_str(path).finish())
            .await
    }

    async fn get_with_token(&self, path: &str, token: &str) -> (u16, String) {
        let request = poem::Request::builder()
            .uri_str(path)
            .header("authorization", format!("Bearer {token}"))
            .finish();
        self.call(request).await
    }
}
