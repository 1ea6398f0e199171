//! Tenant isolation at both layers: the explicit WHERE of the code, and row-level security
//! in the database, each holding on its own.

use tokio_postgres::error::SqlState;

use crate::harness::{ORG_A, ORG_B, TestApp, untenanted_view};

async fn two_shops(app: &TestApp) {
    app.add_member(ORG_A, "Ana Alpha", "ana@a.example").await;
    app.add_member(ORG_A, "Alice Alpha", "alice@a.example")
        .await;
    app.add_member(ORG_B, "Bia Bravo", "bia@b.example").await;
}

/// Opens a transaction the way requests do: runtime role, organization set locally.
async fn as_tenant<'c>(
    client: &'c mut tokio_postgres::Client,
    org: &str,
) -> tokio_postgres::Transaction<'c> {
    let tx = client.transaction().await.unwrap();
    tx.execute(
        "SELECT set_config('role', 'otica_runtime', true), set_config('app.org_id', $1, true)",
        &[&org],
    )
    .await
    .unwrap();
    tx
}

#[tokio::test]
async fn without_any_where_clause_the_database_alone_returns_only_the_shops_rows() {
    let app = TestApp::spawn().await;
    two_shops(&app).await;
    let mut client = app.db().await;

    let tx = as_tenant(&mut client, ORG_A).await;
    let orgs: Vec<String> = tx
        .query("SELECT organization_id FROM staff_members", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();

    assert_eq!(orgs, [ORG_A, ORG_A]);
}

#[tokio::test]
async fn without_the_tenant_setting_the_runtime_role_sees_nothing_and_writes_nothing() {
    let app = TestApp::spawn().await;
    two_shops(&app).await;
    let mut client = app.db().await;

    // First on a fresh connection, then on one that has just run a tenant transaction,
    // where PostgreSQL reads the expired setting back as '' rather than NULL.
    for round in ["fresh connection", "reused connection"] {
        let (seen, insert_error, _, _) = untenanted_view(&mut client).await;

        assert_eq!(seen, 0, "{round}");
        assert_eq!(
            insert_error,
            Some(SqlState::INSUFFICIENT_PRIVILEGE),
            "{round}"
        );

        let tx = as_tenant(&mut client, ORG_B).await;
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn the_policy_refuses_writes_into_another_shop() {
    let app = TestApp::spawn().await;
    two_shops(&app).await;
    let mut client = app.db().await;

    let tx = as_tenant(&mut client, ORG_A).await;
    let insert = tx
        .execute(
            "INSERT INTO staff_members (organization_id, full_name, email, role)
             VALUES ($1, 'Eve', 'eve@x.example', 'STAFF')",
            &[&ORG_B],
        )
        .await;

    assert_eq!(
        insert.unwrap_err().code(),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE)
    );
}

#[tokio::test]
async fn updates_and_deletes_without_where_touch_only_the_shops_rows() {
    let app = TestApp::spawn().await;
    two_shops(&app).await;
    let mut client = app.db().await;

    let tx = as_tenant(&mut client, ORG_A).await;
    let updated = tx
        .execute("UPDATE staff_members SET department = 'x'", &[])
        .await
        .unwrap();
    let deleted = tx.execute("DELETE FROM staff_members", &[]).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!((updated, deleted), (2, 2));
    assert_eq!(app.list(ORG_B, "").await.len(), 1);
}

#[tokio::test]
async fn the_runtime_role_cannot_bypass_anything() {
    let app = TestApp::spawn().await;
    let client = app.db().await;

    let row = client
        .query_one(
            "SELECT r.rolsuper, r.rolbypassrls, r.rolcanlogin,
                    (SELECT count(*) FROM pg_class WHERE relowner = r.oid),
                    c.relrowsecurity, c.relforcerowsecurity
               FROM pg_roles r, pg_class c
              WHERE r.rolname = 'otica_runtime' AND c.relname = 'staff_members'",
            &[],
        )
        .await
        .unwrap();

    let facts: (bool, bool, bool, i64, bool, bool) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    );
    assert_eq!(facts, (false, false, false, 0, true, true));
    assert!(
        otica_api::db::guard::findings(&client)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_start_up_check_names_a_table_without_forced_security() {
    let app = TestApp::spawn().await;
    let client = app.db().await;
    client
        .batch_execute("ALTER TABLE staff_members NO FORCE ROW LEVEL SECURITY")
        .await
        .unwrap();

    let findings = otica_api::db::guard::findings(&client).await.unwrap();

    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("staff_members") && findings[0].contains("FORCE"));
}

#[tokio::test]
async fn nothing_in_an_answer_tells_that_another_shop_has_a_value() {
    let app = TestApp::spawn().await;
    app.create_staff(
        ORG_B,
        serde_json::json!({"full_name": "Bia", "email": "taken@b.example", "role": "STAFF", "clerk_id": "user_2Taken"}),
    )
    .await;
    let token = app.token(ORG_A);
    let body = |email: &str, clerk: &str| serde_json::json!({"full_name": "Ana", "email": email, "role": "STAFF", "clerk_id": clerk});

    let taken_elsewhere = app
        .post_json(
            &token,
            "/api/v1/staff",
            &body("taken@b.example", "user_2Taken"),
        )
        .await;
    let unused = app
        .post_json(
            &token,
            "/api/v1/staff",
            &body("fresh@a.example", "user_2Fresh"),
        )
        .await;

    let shape = |r: &reqwest::Response| {
        let mut names: Vec<String> = r.headers().keys().map(|k| k.to_string()).collect();
        names.sort();
        (r.status(), names)
    };
    assert_eq!(shape(&taken_elsewhere), shape(&unused));
    let (a, b): (serde_json::Value, serde_json::Value) = (
        taken_elsewhere.json().await.unwrap(),
        unused.json().await.unwrap(),
    );
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(a["organization_id"], ORG_A);
}
