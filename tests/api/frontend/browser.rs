//! A real browser against the live API: Swagger UI with a bearer token, and CORS as
//! Chromium enforces it on pages from an allowed origin and from another.

use std::path::Path;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Html;
use poem::{Route, Server, get, handler};

use super::{artifacts_dir, findings, install_packages, run, succeeded};
use crate::harness::{ORG_A, TestApp};

const CHROMIUM: &str = "/usr/bin/chromium";
const BROWSER_LIMIT: Duration = Duration::from_secs(120);

/// Fails, rather than skips, on a machine without Chromium: a skipped browser test would
/// pass CI while proving nothing.
fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing; the browser tests need Debian's Chromium: run \
         `apt-get install chromium` as root (scripts/test does it for you)"
    );
}

#[tokio::test]
async fn swagger_ui_authorizes_with_a_bearer_token_and_lists_the_staff() {
    require_chromium();
    install_packages().await;
    let app = TestApp::spawn().await;
    app.add_member(ORG_A, "Ana Souza", "ana@shop.example").await;
    app.add_member(ORG_A, "Bruno Lima", "bruno@shop.example")
        .await;
    let screenshot = artifacts_dir().join("swagger-list-staff.png");
    let _ = std::fs::remove_file(&screenshot);

    let token = app.token(ORG_A);
    let swagger = run(
        "node",
        &["e2e/swagger.mjs"],
        &[
            ("OTICA_API_URL", &app.base),
            ("OTICA_TOKEN", &token),
            ("SCREENSHOT", &screenshot.display().to_string()),
        ],
        BROWSER_LIMIT,
    )
    .await;

    succeeded(&swagger, "Swagger UI in Chromium");
    let shown = findings(&swagger);
    assert_eq!(shown["status"], "200");
    let rows: serde_json::Value = serde_json::from_str(shown["body"].as_str().unwrap()).unwrap();
    assert_eq!(rows[0]["full_name"], "Ana Souza");
    assert_eq!(rows[1]["full_name"], "Bruno Lima");
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
}

#[tokio::test]
async fn the_browser_lets_an_allowed_origin_call_the_api_and_blocks_any_other() {
    require_chromium();
    install_packages().await;
    let allowed = serve_frontend_page().await;
    let other = serve_frontend_page().await;
    let allowed_origin = allowed.clone();
    let app = TestApp::spawn_with(|o| o.cors = vec![allowed_origin]).await;
    app.add_member(ORG_A, "Ana Souza", "ana@shop.example").await;

    let token = app.token(ORG_A);
    let cors = run(
        "node",
        &["e2e/cors.mjs"],
        &[
            ("OTICA_API_URL", &app.base),
            ("OTICA_TOKEN", &token),
            ("ORIGINS", &format!("{allowed},{other}")),
        ],
        BROWSER_LIMIT,
    )
    .await;

    succeeded(&cors, "the CORS pages in Chromium");
    let outcomes = findings(&cors);
    // Kept beside the screenshot: what each page could read, and why the other was blocked.
    std::fs::write(
        artifacts_dir().join("cors-outcomes.json"),
        outcomes.to_string(),
    )
    .unwrap();
    let from_allowed = &outcomes[&allowed];
    assert_eq!(from_allowed["reached"], true, "{from_allowed}");
    assert_eq!(from_allowed["status"], 200);
    assert_eq!(from_allowed["rows"], 1);
    let from_other = &outcomes[&other];
    assert_eq!(from_other["reached"], false, "{from_other}");
    let logged = from_other["console_errors"].to_string();
    assert!(logged.contains("blocked by CORS policy"), "{logged}");
}

/// Serves `e2e/cors-page.html` on a new 127.0.0.1 port; returns the page's origin.
async fn serve_frontend_page() -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(Route::new().at("/", get(page))));
    format!("http://{addr}")
}

#[handler]
fn page() -> Html<&'static str> {
    Html(include_str!(
        "../../../clients/typescript/e2e/cors-page.html"
    ))
}
