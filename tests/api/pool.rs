//! Pooled connections never carry one request's shop into the next: not after a commit,
//! not on a fresh connection, not under concurrency, not when a client walks away.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_postgres::error::SqlState;

use crate::harness::{ORG_A, ORG_B, TestApp, untenanted_view};

#[tokio::test]
async fn the_one_pooled_connection_keeps_nothing_between_requests() {
    let app = TestApp::spawn_with(|o| o.db.pool_size = 1).await;
    app.add_member(ORG_A, "Ana Alpha", "ana@a.example").await;
    app.add_member(ORG_B, "Bia Bravo", "bia@b.example").await;
    for org in [ORG_A, ORG_B, ORG_A, ORG_B] {
        assert_eq!(app.list(org, "").await.len(), 1);
    }

    let mut pooled = app.database.pool().get().await.unwrap();
    let view = untenanted_view(&mut pooled).await;

    assert_eq!(view.0, 0, "rows seen without a tenant");
    assert_eq!(view.1, Some(SqlState::INSUFFICIENT_PRIVILEGE));
    assert!(
        view.2.as_deref().is_none_or(str::is_empty),
        "leftover app.org_id {:?}",
        view.2
    );
    assert_ne!(view.3, "otica_runtime", "the role outlived its transaction");
}

#[tokio::test]
async fn a_fresh_connection_without_a_tenant_sees_nothing_either() {
    let app = TestApp::spawn().await;
    app.add_member(ORG_A, "Ana Alpha", "ana@a.example").await;

    let mut fresh = app.db().await;
    let view = untenanted_view(&mut fresh).await;

    assert_eq!(view.0, 0);
    assert_eq!(view.1, Some(SqlState::INSUFFICIENT_PRIVILEGE));
}

#[tokio::test]
async fn under_concurrency_every_response_holds_only_its_own_shop() {
    let app = TestApp::spawn_with(|o| o.db.pool_size = 4).await;
    let shops: Vec<String> = (0..8).map(|i| format!("org_2Shop{i}")).collect();
    for (i, org) in shops.iter().enumerate() {
        for j in 0..=i {
            app.add_member(org, &format!("Member {j}"), &format!("m{j}@s{i}.example"))
                .await;
        }
    }
    let tokens: Vec<String> = shops.iter().map(|org| app.token(org)).collect();

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16 {
        let (http, base, tokens, shops) = (
            app.http.clone(),
            app.base.clone(),
            tokens.clone(),
            shops.clone(),
        );
        tasks.spawn(async move {
            let mut checked = 0;
            for n in 0..125 {
                let k = (task + n) % 8;
                let rows: Vec<Value> = http
                    .get(format!("{base}/api/v1/staff"))
                    .bearer_auth(&tokens[k])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(rows.len(), k + 1, "shop {k} got {} rows", rows.len());
                assert!(
                    rows.iter()
                        .all(|r| r["organization_id"] == shops[k].as_str())
                );
                checked += 1;
            }
            checked
        });
    }
    let mut total = 0;
    while let Some(checked) = tasks.join_next().await {
        total += checked.unwrap();
    }

    assert_eq!(total, 2000);
}

#[tokio::test]
async fn a_request_abandoned_mid_query_leaves_no_setting_behind() {
    let app = TestApp::spawn_with(|o| o.db.pool_size = 1).await;
    app.add_member(ORG_A, "Ana Alpha", "ana@a.example").await;
    // Hold a lock so the next list blocks inside its tenant transaction.
    let mut blocker = app.db().await;
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE staff_members IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let abandoned = app
        .http
        .get(app.url("/api/v1/staff"))
        .bearer_auth(app.token(ORG_A))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    lock.rollback().await.unwrap();

    assert!(
        abandoned.is_err(),
        "the request should have been cut off by the client"
    );
    let started = Instant::now();
    let mut pooled = loop {
        match tokio::time::timeout(Duration::from_millis(500), app.database.pool().get()).await {
            Ok(Ok(conn)) => break conn,
            _ if started.elapsed() < Duration::from_secs(10) => continue,
            other => panic!("the pooled connection never came back: {:?}", other.is_ok()),
        }
    };
    let view = untenanted_view(&mut pooled).await;
    assert_eq!(view.0, 0);
    assert!(
        view.2.as_deref().is_none_or(str::is_empty),
        "leftover app.org_id {:?}",
        view.2
    );
}
