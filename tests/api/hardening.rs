//! Inputs and situations found by attacking the service: each answers as designed, never 500.

use serde_json::{Value, json};

use crate::harness::{ORG_A, TestApp, failing_fields, problem};

fn member_token(app: &TestApp) -> String {
    let mut claims = app.issuer.v2_claims(ORG_A);
    claims["o"]["rol"] = json!("member");
    app.issuer.sign("ins_test1", &claims)
}

#[tokio::test]
async fn members_read_the_team_but_only_admins_change_it() {
    let app = TestApp::spawn().await;
    let ana = app.add_member(ORG_A, "Ana Souza", "ana@a.example").await;
    let path = format!("/api/v1/staff/{}", ana["id"].as_str().unwrap());
    let member = member_token(&app);
    let body = json!({"full_name": "Self Promoted", "email": "me@a.example", "role": "ADMIN"});

    let create = app.post_json(&member, "/api/v1/staff", &body).await;
    let patch = app
        .patch_json(&member, &path, &json!({"role": "ASSISTANT"}))
        .await;
    let delete = app.delete(&member, &path).await;
    let list = app.get(&member, "/api/v1/staff").await;

    for refused in [create, patch, delete] {
        problem(refused, 403).await;
    }
    assert_eq!(list.status(), 200);
    let still: Value = app
        .get(&app.token(ORG_A), &path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still, ana);
}

#[tokio::test]
async fn framework_errors_keep_the_problem_shape_for_browsers_too() {
    let app = TestApp::spawn().await;
    let origin = ("origin", "http://localhost:5173");

    let no_token = app
        .http
        .get(app.url("/api/v1/staff"))
        .header(origin.0, origin.1)
        .send()
        .await
        .unwrap();
    let bad_limit = app
        .http
        .get(app.url("/api/v1/staff?limit=0"))
        .bearer_auth(app.token(ORG_A))
        .header(origin.0, origin.1)
        .send()
        .await
        .unwrap();

    assert_eq!(no_token.headers()["access-control-allow-origin"], origin.1);
    problem(no_token, 401).await;
    assert_eq!(failing_fields(&problem(bad_limit, 422).await), ["limit"]);
}

#[tokio::test]
async fn nul_bytes_and_invisible_characters_are_422_not_500() {
    let app = TestApp::spawn().await;
    let token = app.token(ORG_A);

    let search = app.get(&token, "/api/v1/staff?q=an%00a").await;
    assert_eq!(failing_fields(&problem(search, 422).await), ["q"]);
    for (field, value) in [
        ("avatar_url", "http://x.example/\u{0}"),
        ("full_name", "\u{200b}\u{200b}"),
        ("full_name", "\u{202e}Ana Souza"),
        ("department", "Ven\u{0}das"),
    ] {
        let mut body = json!({"full_name": "Ana Souza", "email": "ana@a.example", "role": "STAFF"});
        body[field] = json!(value);

        let response = app.post_json(&token, "/api/v1/staff", &body).await;

        assert_eq!(
            failing_fields(&problem(response, 422).await),
            [field],
            "{value:?}"
        );
    }
}

#[tokio::test]
async fn a_body_that_is_not_utf8_or_has_a_lone_surrogate_is_400() {
    let app = TestApp::spawn().await;

    for raw in [
        &b"{\"full_name\":\"\xff\xfeab\"}"[..],
        br#"{"full_name":"\ud800ab"}"#,
        // In a field the API ignores, on an otherwise valid body: still not JSON.
        &b"{\"full_name\":\"Ana\",\"email\":\"ana@x.com\",\"role\":\"STAFF\",\"junk\":\"\xff\"}"[..],
        br#"{"full_name":"Ana","email":"ana@x.com","role":"STAFF","junk":"\ud800"}"#,
    ] {
        let response = app
            .http
            .post(app.url("/api/v1/staff"))
            .bearer_auth(app.token(ORG_A))
            .header("content-type", "application/json")
            .body(raw.to_vec())
            .send()
            .await
            .unwrap();

        problem(response, 400).await;
    }
}

#[tokio::test]
async fn case_is_ignored_beyond_ascii() {
    let app = TestApp::spawn().await;
    app.create_staff(
        ORG_A,
        json!({"full_name": "Élise Fábio", "email": "élise@exemplo.com", "role": "STAFF"}),
    )
    .await;

    let again = json!({"full_name": "Outra", "email": "ÉLISE@EXEMPLO.COM", "role": "STAFF"});
    let response = app
        .post_json(&app.token(ORG_A), "/api/v1/staff", &again)
        .await;

    assert_eq!(failing_fields(&problem(response, 409).await), ["email"]);
    assert_eq!(app.list(ORG_A, "?q=F%C3%81BIO").await.len(), 1);
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let app = TestApp::spawn().await;

    let response = app
        .http
        .get(app.url("/api/v1/staff"))
        .header(
            "authorization",
            format!("Bearer {}", app.token("org_2Other")),
        )
        .header("authorization", format!("Bearer {}", app.token(ORG_A)))
        .send()
        .await
        .unwrap();

    problem(response, 401).await;
}

#[tokio::test]
async fn avatar_urls_are_stored_as_normalized_urls() {
    let app = TestApp::spawn().await;

    let created = app
        .create_staff(
            ORG_A,
            json!({"full_name": "Ana", "email": "ana@a.example", "role": "STAFF",
                   "avatar_url": "HTTPS://IMG.Example/a%20b.png?x=\"y\""}),
        )
        .await;

    assert_eq!(
        created["avatar_url"],
        "https://img.example/a%20b.png?x=%22y%22"
    );
}

#[tokio::test]
async fn an_empty_object_lists_every_required_field() {
    let app = TestApp::spawn().await;

    let empty = app
        .post_json(&app.token(ORG_A), "/api/v1/staff", &json!({}))
        .await;
    let nulls = app
        .post_json(
            &app.token(ORG_A),
            "/api/v1/staff",
            &json!({"full_name": "Ana", "email": null}),
        )
        .await;

    assert_eq!(
        failing_fields(&problem(empty, 422).await),
        ["full_name", "email", "role"]
    );
    assert_eq!(
        failing_fields(&problem(nulls, 422).await),
        ["email", "role"]
    );
}
