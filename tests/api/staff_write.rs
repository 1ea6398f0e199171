//! Creating, reading, changing and removing members, and every way a body can be wrong.

use serde_json::{Value, json};

use crate::harness::{ORG_A, ORG_B, TestApp, failing_fields, problem};

fn ana() -> Value {
    json!({"full_name": "Ana Souza", "email": "Ana@Shop.example", "role": "ADMIN"})
}

async fn row_count(app: &TestApp) -> i64 {
    app.db()
        .await
        .query_one("SELECT count(*) FROM staff_members", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn create_answers_201_with_the_member_and_its_location() {
    let app = TestApp::spawn().await;

    let response = app
        .post_json(&app.token(ORG_A), "/api/v1/staff", &ana())
        .await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let staff: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/staff/{}", staff["id"].as_str().unwrap())
    );
    assert_eq!(staff["organization_id"], ORG_A);
    assert_eq!(staff["is_active"], true);
    assert_eq!(staff["department"], Value::Null);
    assert_eq!(staff["email"], "Ana@Shop.example");
    let read = app.get(&app.token(ORG_A), &location).await;
    assert_eq!(read.json::<Value>().await.unwrap(), staff);
}

#[tokio::test]
async fn an_organization_or_id_in_the_body_is_ignored() {
    let app = TestApp::spawn().await;
    let mut body = ana();
    body["organization_id"] = json!(ORG_B);
    body["id"] = json!("00000000-0000-0000-0000-000000000001");
    body["created_at"] = json!("2000-01-01T00:00:00Z");

    let staff = app.create_staff(ORG_A, body).await;

    assert_eq!(staff["organization_id"], ORG_A);
    assert_ne!(staff["id"], "00000000-0000-0000-0000-000000000001");
    assert!(app.list(ORG_B, "").await.is_empty());
}

#[tokio::test]
async fn the_same_email_may_serve_two_shops_but_not_one_ignoring_case() {
    let app = TestApp::spawn().await;
    app.create_staff(ORG_A, ana()).await;

    app.create_staff(ORG_B, ana()).await;
    let mut again = ana();
    again["email"] = json!("  ana@SHOP.example ");
    let response = app
        .post_json(&app.token(ORG_A), "/api/v1/staff", &again)
        .await;

    let body = problem(response, 409).await;
    assert_eq!(failing_fields(&body), ["email"]);
    assert_eq!(row_count(&app).await, 2);
}

#[tokio::test]
async fn a_clerk_user_is_linked_once_per_shop() {
    let app = TestApp::spawn().await;
    let mut first = ana();
    first["clerk_id"] = json!("user_2abc");
    app.create_staff(ORG_A, first).await;

    let second = json!({"full_name": "Bia", "email": "bia@x.example", "role": "STAFF", "clerk_id": "user_2abc"});
    let response = app
        .post_json(&app.token(ORG_A), "/api/v1/staff", &second)
        .await;
    app.create_staff(ORG_B, second.clone()).await;

    let body = problem(response, 409).await;
    assert_eq!(failing_fields(&body), ["clerk_id"]);
}

#[tokio::test]
async fn invalid_values_are_422_listing_every_failing_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token(ORG_A);

    for (body, fields) in [
        (
            json!({"full_name": " A ", "email": "ana@x.example", "role": "STAFF"}),
            vec!["full_name"],
        ),
        (
            json!({"full_name": "Ana", "email": "not-an-email", "role": "STAFF"}),
            vec!["email"],
        ),
        (
            json!({"full_name": "Ana", "email": "ana@x.example", "role": "OWNER"}),
            vec!["role"],
        ),
        (
            json!({"full_name": "Ana", "email": "ana@x.example"}),
            vec!["role"],
        ),
        (
            json!({"email": "ana@x.example", "role": "STAFF"}),
            vec!["full_name"],
        ),
        (
            json!({"full_name": 5, "email": "ana@x.example", "role": "STAFF"}),
            vec!["full_name"],
        ),
        (
            json!({"full_name": "Ana", "email": "ana@x.example", "role": "STAFF", "is_active": "yes"}),
            vec!["is_active"],
        ),
        (
            json!({"full_name": "A", "email": "x", "role": "STAFF", "avatar_url": "javascript:alert(1)", "clerk_id": "nope"}),
            vec!["full_name", "email", "avatar_url", "clerk_id"],
        ),
        (
            json!({"full_name": "x".repeat(201), "email": "ana@x.example", "role": "STAFF"}),
            vec!["full_name"],
        ),
        (
            json!({"full_name": "Ana", "email": "ana@x.example", "role": "STAFF", "department": "d".repeat(101)}),
            vec!["department"],
        ),
        (json!([1, 2]), vec!["body"]),
    ] {
        let response = app.post_json(&token, "/api/v1/staff", &body).await;

        let problem = problem(response, 422).await;
        assert_eq!(failing_fields(&problem), fields, "{body}");
    }
    assert_eq!(row_count(&app).await, 0);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;

    for raw in ["{\"full_name\": ", "not json", "", "{} {}"] {
        let response = app
            .http
            .post(app.url("/api/v1/staff"))
            .bearer_auth(app.token(ORG_A))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();

        problem(response, 400).await;
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;

    let response = app
        .http
        .post(app.url("/api/v1/staff"))
        .bearer_auth(app.token(ORG_A))
        .header("content-type", "text/plain")
        .body(ana().to_string())
        .send()
        .await
        .unwrap();

    problem(response, 415).await;
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = TestApp::spawn().await;
    let mut body = ana();
    body["padding"] = json!("x".repeat(70 * 1024));

    let response = app
        .post_json(&app.token(ORG_A), "/api/v1/staff", &body)
        .await;

    problem(response, 413).await;
    assert_eq!(row_count(&app).await, 0);
}

#[tokio::test]
async fn patch_changes_only_the_fields_sent_and_null_clears() {
    let app = TestApp::spawn().await;
    let mut body = ana();
    body["department"] = json!("Vendas");
    body["avatar_url"] = json!("https://img.example/ana.png");
    let created = app.create_staff(ORG_A, body).await;
    let path = format!("/api/v1/staff/{}", created["id"].as_str().unwrap());

    let response = app
        .patch_json(
            &app.token(ORG_A),
            &path,
            &json!({"role": "MANAGER", "department": null}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["role"], "MANAGER");
    assert_eq!(updated["department"], Value::Null);
    assert_eq!(updated["avatar_url"], "https://img.example/ana.png");
    assert_eq!(updated["full_name"], "Ana Souza");
    assert_ne!(updated["updated_at"], created["updated_at"]);
}

#[tokio::test]
async fn patch_rejects_null_for_required_fields_and_bad_values() {
    let app = TestApp::spawn().await;
    let created = app.create_staff(ORG_A, ana()).await;
    let path = format!("/api/v1/staff/{}", created["id"].as_str().unwrap());

    for (body, fields) in [
        (json!({"full_name": null}), vec!["full_name"]),
        (
            json!({"email": "nope", "is_active": null}),
            vec!["email", "is_active"],
        ),
        (json!({"role": "KING"}), vec!["role"]),
    ] {
        let response = app.patch_json(&app.token(ORG_A), &path, &body).await;

        assert_eq!(
            failing_fields(&problem(response, 422).await),
            fields,
            "{body}"
        );
    }
    let unchanged: Value = app
        .get(&app.token(ORG_A), &path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged, created);
}

#[tokio::test]
async fn patch_to_an_email_taken_in_the_shop_is_409() {
    let app = TestApp::spawn().await;
    app.create_staff(ORG_A, ana()).await;
    let bia = app.add_member(ORG_A, "Bia Costa", "bia@shop.example").await;
    let path = format!("/api/v1/staff/{}", bia["id"].as_str().unwrap());

    let response = app
        .patch_json(
            &app.token(ORG_A),
            &path,
            &json!({"email": "ANA@shop.example"}),
        )
        .await;

    assert_eq!(failing_fields(&problem(response, 409).await), ["email"]);
}

#[tokio::test]
async fn an_empty_patch_returns_the_member_unchanged() {
    let app = TestApp::spawn().await;
    let created = app.create_staff(ORG_A, ana()).await;
    let path = format!("/api/v1/staff/{}", created["id"].as_str().unwrap());

    let response = app.patch_json(&app.token(ORG_A), &path, &json!({})).await;

    assert_eq!(response.json::<Value>().await.unwrap(), created);
}

#[tokio::test]
async fn delete_answers_204_then_404() {
    let app = TestApp::spawn().await;
    let created = app.create_staff(ORG_A, ana()).await;
    let path = format!("/api/v1/staff/{}", created["id"].as_str().unwrap());

    let first = app.delete(&app.token(ORG_A), &path).await;
    let second = app.delete(&app.token(ORG_A), &path).await;

    assert_eq!(first.status(), 204);
    problem(second, 404).await;
    problem(app.get(&app.token(ORG_A), &path).await, 404).await;
}

#[tokio::test]
async fn a_malformed_id_in_the_path_is_422() {
    let app = TestApp::spawn().await;

    let response = app.get(&app.token(ORG_A), "/api/v1/staff/not-a-uuid").await;

    assert_eq!(failing_fields(&problem(response, 422).await), ["id"]);
}

#[tokio::test]
async fn another_shops_id_is_404_on_get_patch_and_delete_and_stays_unchanged() {
    let app = TestApp::spawn().await;
    let theirs = app.create_staff(ORG_B, ana()).await;
    let path = format!("/api/v1/staff/{}", theirs["id"].as_str().unwrap());
    let mine = app.token(ORG_A);

    let get = app.get(&mine, &path).await;
    let patch = app
        .patch_json(&mine, &path, &json!({"full_name": "Hijacked"}))
        .await;
    let delete = app.delete(&mine, &path).await;

    let bodies = [
        problem(get, 404).await,
        problem(patch, 404).await,
        problem(delete, 404).await,
    ];
    // The same answer as for an id that exists nowhere: nothing tells the two apart.
    let nowhere = app
        .get(&mine, "/api/v1/staff/00000000-0000-4000-8000-000000000000")
        .await;
    let nowhere = problem(nowhere, 404).await;
    assert!(bodies.iter().all(|b| *b == nowhere));
    let still: Value = app
        .get(&app.token(ORG_B), &path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still, theirs);
}
