//! Who may call: Clerk session tokens in both formats, and every way a token is refused.

use serde_json::json;

use crate::harness::{ORG_A, TestApp, problem};

async fn status_with(app: &TestApp, token: &str) -> u16 {
    app.get(token, "/api/v1/staff").await.status().as_u16()
}

#[tokio::test]
async fn no_token_is_401_with_a_bearer_challenge() {
    let app = TestApp::spawn().await;

    let response = app.http.get(app.url("/api/v1/staff")).send().await.unwrap();

    // RFC 6750: with no credentials sent, the challenge names no error.
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    problem(response, 401).await;
}

#[tokio::test]
async fn every_refused_token_gets_the_same_401_body() {
    let app = TestApp::spawn().await;
    let mut expired = app.issuer.v2_claims(ORG_A);
    expired["exp"] = json!(crate::harness::now() - 60);
    let mut foreign = app.issuer.v2_claims(ORG_A);
    foreign["iss"] = json!("https://clerk.elsewhere.example");
    let good = app.token(ORG_A);
    let (head, rest) = good.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let tampered = format!(
        "{head}.{}.{sig}",
        base64_url(&app.issuer.v2_claims("org_2Other").to_string())
    );

    let mut bodies = Vec::new();
    for token in [
        "garbage".to_owned(),
        app.issuer.sign("ins_test1", &expired),
        app.issuer.sign("ins_test1", &foreign),
        tampered,
    ] {
        let response = app.get(&token, "/api/v1/staff").await;
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer error="invalid_token""#
        );
        bodies.push(problem(response, 401).await);
    }

    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test]
async fn another_scheme_is_401() {
    let app = TestApp::spawn().await;

    let response = app
        .http
        .get(app.url("/api/v1/staff"))
        .header("authorization", format!("Basic {}", app.token(ORG_A)))
        .send()
        .await
        .unwrap();

    problem(response, 401).await;
}

#[tokio::test]
async fn v1_and_v2_tokens_of_one_shop_see_the_same_rows() {
    let app = TestApp::spawn().await;
    app.add_member(ORG_A, "Ana Souza", "ana@a.example").await;
    let v1 = app.issuer.sign("ins_test1", &app.issuer.v1_claims(ORG_A));
    let v2 = app.issuer.sign("ins_test1", &app.issuer.v2_claims(ORG_A));

    let rows_v1: serde_json::Value = app.get(&v1, "/api/v1/staff").await.json().await.unwrap();
    let rows_v2: serde_json::Value = app.get(&v2, "/api/v1/staff").await.json().await.unwrap();

    assert_eq!(rows_v1, rows_v2);
    assert_eq!(rows_v1.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_valid_token_without_an_organization_is_403() {
    let app = TestApp::spawn().await;
    let mut no_org = app.issuer.v2_claims(ORG_A);
    no_org.as_object_mut().unwrap().remove("o");
    let mut pending = app.issuer.v2_claims(ORG_A);
    pending["sts"] = json!("pending");
    let mut v1_no_org = app.issuer.v1_claims(ORG_A);
    v1_no_org.as_object_mut().unwrap().remove("org_id");

    for claims in [no_org, pending, v1_no_org] {
        let response = app
            .get(&app.issuer.sign("ins_test1", &claims), "/api/v1/staff")
            .await;

        problem(response, 403).await;
    }
}

#[tokio::test]
async fn a_template_token_is_refused() {
    let app = TestApp::spawn().await;
    let mut no_sid = app.issuer.v2_claims(ORG_A);
    no_sid.as_object_mut().unwrap().remove("sid");
    let mut with_aud = app.issuer.v2_claims(ORG_A);
    with_aud["aud"] = json!("convex");

    assert_eq!(
        status_with(&app, &app.issuer.sign("ins_test1", &no_sid)).await,
        401
    );
    assert_eq!(
        status_with(&app, &app.issuer.sign("ins_test1", &with_aud)).await,
        401
    );
}

#[tokio::test]
async fn an_organization_named_outside_the_token_is_ignored() {
    let app = TestApp::spawn().await;
    app.add_member("org_2ShopBravo", "Bia Bravo", "bia@b.example")
        .await;

    let response = app
        .http
        .get(app.url("/api/v1/staff?organization_id=org_2ShopBravo&org_id=org_2ShopBravo"))
        .bearer_auth(app.token(ORG_A))
        .header("x-organization-id", "org_2ShopBravo")
        .send()
        .await
        .unwrap();

    let rows: serde_json::Value = response.json().await.unwrap();
    assert_eq!(rows, json!([]));
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
