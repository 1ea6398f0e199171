//! Listing, searching, filtering, paging and counting a shop's staff.

use serde_json::json;

use crate::harness::{ORG_A, ORG_B, TestApp, failing_fields, names, problem};

async fn shop_with_five(app: &TestApp) {
    for (name, email, role, active) in [
        ("Carla Dias", "carla@a.example", "STAFF", true),
        ("Ana Souza", "ana@a.example", "ADMIN", true),
        ("Bruno Lima", "bruno@a.example", "MANAGER", true),
        ("Diego 50% Off", "diego_x@a.example", "ASSISTANT", false),
        ("Elisa Prado", "elisa@a.example", "MANAGER", false),
    ] {
        app.create_staff(
            ORG_A,
            json!({"full_name": name, "email": email, "role": role, "is_active": active}),
        )
        .await;
    }
    app.add_member(ORG_B, "Ana Bravo", "ana@b.example").await;
}

#[tokio::test]
async fn the_list_holds_only_the_callers_shop_ordered_by_name() {
    let app = TestApp::spawn().await;
    shop_with_five(&app).await;

    let rows = app.list(ORG_A, "").await;

    assert_eq!(
        names(&rows),
        [
            "Ana Souza",
            "Bruno Lima",
            "Carla Dias",
            "Diego 50% Off",
            "Elisa Prado"
        ]
    );
    assert!(rows.iter().all(|r| r["organization_id"] == ORG_A));
}

#[tokio::test]
async fn search_matches_name_or_email_ignoring_case() {
    let app = TestApp::spawn().await;
    shop_with_five(&app).await;

    assert_eq!(names(&app.list(ORG_A, "?q=ANA").await), ["Ana Souza"]);
    assert_eq!(
        names(&app.list(ORG_A, "?q=BRUNO%40A").await),
        ["Bruno Lima"]
    );
    assert_eq!(app.list(ORG_A, "?q=").await.len(), 5);
}

#[tokio::test]
async fn percent_and_underscore_in_a_search_match_themselves() {
    let app = TestApp::spawn().await;
    shop_with_five(&app).await;

    // "%" alone would match everyone as a wildcard; literally, only Diego has one.
    assert_eq!(names(&app.list(ORG_A, "?q=%25").await), ["Diego 50% Off"]);
    // "_" would match any character; literally, only diego_x@ has one.
    assert_eq!(names(&app.list(ORG_A, "?q=_").await), ["Diego 50% Off"]);
    assert_eq!(app.list(ORG_A, "?q=%5C").await.len(), 0);
}

#[tokio::test]
async fn role_and_activity_filters_combine() {
    let app = TestApp::spawn().await;
    shop_with_five(&app).await;

    assert_eq!(
        names(&app.list(ORG_A, "?role=MANAGER").await),
        ["Bruno Lima", "Elisa Prado"]
    );
    assert_eq!(
        names(&app.list(ORG_A, "?role=MANAGER&is_active=false").await),
        ["Elisa Prado"]
    );
    assert_eq!(app.list(ORG_A, "?is_active=true").await.len(), 3);
    // Search, role, activity and paging together (each combination is its own statement).
    assert_eq!(
        names(
            &app.list(
                ORG_A,
                "?q=BRUNO&role=MANAGER&is_active=true&limit=5&offset=0"
            )
            .await
        ),
        ["Bruno Lima"]
    );
    assert_eq!(
        names(&app.list(ORG_A, "?q=a&role=MANAGER&limit=1&offset=1").await),
        ["Elisa Prado"]
    );
    assert!(app.list(ORG_A, "?q=elisa&is_active=true").await.is_empty());
}

#[tokio::test]
async fn pages_follow_limit_and_offset() {
    let app = TestApp::spawn().await;
    shop_with_five(&app).await;

    assert_eq!(
        names(&app.list(ORG_A, "?limit=2").await),
        ["Ana Souza", "Bruno Lima"]
    );
    assert_eq!(
        names(&app.list(ORG_A, "?limit=2&offset=2").await),
        ["Carla Dias", "Diego 50% Off"]
    );
    assert!(app.list(ORG_A, "?offset=10").await.is_empty());
}

#[tokio::test]
async fn out_of_range_list_parameters_are_422_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let token = app.token(ORG_A);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("role=OWNER", "role"),
        ("is_active=maybe", "is_active"),
        (&format!("q={}", "x".repeat(101)), "q"),
    ] {
        let response = app.get(&token, &format!("/api/v1/staff?{query}")).await;

        let body = problem(response, 422).await;
        assert_eq!(failing_fields(&body), [field], "{query}");
    }
}

#[tokio::test]
async fn stats_count_the_callers_shop_in_one_answer() {
    let app = TestApp::spawn().await;
    shop_with_five(&app).await;

    let response = app.get(&app.token(ORG_A), "/api/v1/staff/stats").await;

    assert_eq!(response.status(), 200);
    let stats: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        stats,
        json!({"total_users": 5, "active_users": 3, "admins": 1, "managers": 2})
    );
}

#[tokio::test]
async fn stats_of_an_empty_shop_are_zero() {
    let app = TestApp::spawn().await;

    let response = app.get(&app.token(ORG_B), "/api/v1/staff/stats").await;

    let stats: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        stats,
        json!({"total_users": 0, "active_users": 0, "admins": 0, "managers": 0})
    );
}
