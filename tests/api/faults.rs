//! Operating under faults: database outages, slow statements, shutdowns, and what the
//! operator sees (logs, request ids, metrics).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_postgres::NoTls;

use crate::harness::{
    Issuer, ORG_A, TestApp, execute, fresh_database_url, private_cluster, problem,
};
use crate::served::Served;

#[tokio::test]
async fn a_database_outage_answers_503_quickly_and_heals_without_a_restart() {
    let (mut cluster, url) = private_cluster().await;
    let issuer = Issuer::start().await;
    let served = Served::start(&url, &issuer, &[("DB_POOL_TIMEOUT_MS", "2000")]).await;
    let http = reqwest::Client::new();
    let list = || {
        http.get(format!("{}/api/v1/staff", served.base))
            .bearer_auth(issuer.token(ORG_A))
            .send()
    };
    assert_eq!(list().await.unwrap().status(), 200);

    let mut cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let response = list().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        problem(response, 503).await;
    }
    let ready = http
        .get(format!("{}/readyz", served.base))
        .send()
        .await
        .unwrap();
    problem(ready, 503).await;

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart().unwrap();
        cluster
    })
    .await
    .unwrap();
    let started = Instant::now();
    let mut healed = false;
    while !healed && started.elapsed() < Duration::from_secs(5) {
        healed = list().await.is_ok_and(|r| r.status() == 200);
    }

    assert!(
        healed,
        "requests still failed 5 s after PostgreSQL came back"
    );
    drop(cluster);
}

#[tokio::test]
async fn a_statement_over_the_time_limit_answers_503_and_the_connection_lives_on() {
    let app = TestApp::spawn_with(|o| {
        o.db.pool_size = 1;
        o.db.statement_timeout = Duration::from_millis(300);
    })
    .await;
    execute(
        &app.database_url,
        "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(2); RETURN NEW; END $$;
         CREATE TRIGGER slow_insert BEFORE INSERT ON staff_members
           FOR EACH ROW EXECUTE FUNCTION slow_insert();",
    )
    .await;
    let body = json!({"full_name": "Ana Souza", "email": "ana@a.example", "role": "STAFF"});

    let started = Instant::now();
    let slow = app
        .post_json(&app.token(ORG_A), "/api/v1/staff", &body)
        .await;
    let elapsed = started.elapsed();
    let next = app.get(&app.token(ORG_A), "/api/v1/staff").await;

    problem(slow, 503).await;
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
    assert_eq!(next.status(), 200);
    assert_eq!(
        next.json::<Value>().await.unwrap(),
        json!([]),
        "the timed-out insert was rolled back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_request_in_flight_finish_refuses_new_ones_and_exits_0() {
    let url = fresh_database_url().await;
    let issuer = Issuer::start().await;
    let mut served = Served::start(&url, &issuer, &[]).await;
    // Hold a lock so a list request stays in flight until we let go.
    let (mut blocker, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE staff_members IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let in_flight = tokio::spawn(
        reqwest::Client::new()
            .get(format!("{}/api/v1/staff", served.base))
            .bearer_auth(issuer.token(ORG_A))
            .send(),
    );
    let waiting = wait_for_lock_waiter(&url).await;
    assert!(waiting, "the request never reached the database");

    served.terminate();
    let started = Instant::now();
    let mut refused = false;
    while !refused && started.elapsed() < Duration::from_secs(5) {
        refused = reqwest::Client::new()
            .get(format!("{}/healthz", served.base))
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .is_err();
    }
    lock.rollback().await.unwrap();
    let finished = in_flight.await.unwrap().unwrap();
    let status = tokio::task::block_in_place(|| served.wait_exit(Duration::from_secs(15)));

    assert!(refused, "new connections were still accepted after SIGTERM");
    assert_eq!(finished.status(), 200);
    assert!(status.success(), "exit status {status}");
}

/// Polls until some session waits on a lock (the request in flight), for at most 10 s.
async fn wait_for_lock_waiter(url: &str) -> bool {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_one_line_per_request_and_never_the_token() {
    let url = fresh_database_url().await;
    let issuer = Issuer::start().await;
    let mut served = Served::start(&url, &issuer, &[("LOG_FORMAT", "json")]).await;
    let token = issuer.token(ORG_A);
    let http = reqwest::Client::new();

    let ok = http
        .get(format!("{}/api/v1/staff", served.base))
        .bearer_auth(&token)
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    // The same token with one signature character changed: well-formed, wrongly signed.
    let mut forged = token.clone().into_bytes();
    let i = forged.len() - 20;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let refused = http
        .get(format!("{}/api/v1/staff/stats", served.base))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    served.terminate();
    tokio::task::block_in_place(|| served.wait_exit(Duration::from_secs(15)));
    let log = served.log_text();

    assert_eq!(ok.headers()["x-request-id"], "trace-123");
    assert_eq!(refused.status(), 401);
    assert!(!log.contains(&token[20..]), "a log line carries the token");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    let listed = requests
        .iter()
        .find(|l| l["request.id"] == "trace-123")
        .expect("the list's line");
    assert_eq!(listed["http.method"], "GET");
    assert_eq!(listed["http.route"], "/api/v1/staff");
    assert_eq!(listed["http.status"], 200);
    assert_eq!(listed["org.id"], ORG_A);
    assert_eq!(listed["user.id"], "user_2Tester");
    assert!(listed["duration_ms"].is_number());
    let stats = requests
        .iter()
        .find(|l| l["http.route"] == "/api/v1/staff/stats")
        .expect("the 401's line");
    assert_eq!(stats["http.status"], 401);
    assert_eq!(stats["auth.failure"], "bad signature");
    let start = lines
        .iter()
        .find(|l| l["message"] == "otica-api started")
        .expect("a start line");
    assert!(
        start["db.host"].is_string() && start["db.name"].is_string() && start["auth.keys"] == 1
    );
    assert!(
        !log.contains("password") && !log.contains(&url),
        "a log line carries the database URL"
    );
}

#[tokio::test]
async fn request_ids_are_echoed_when_plain_and_made_up_otherwise() {
    let app = TestApp::spawn().await;
    let with_id = |id: &'static str| {
        app.http
            .get(app.url("/healthz"))
            .header("x-request-id", id)
            .send()
    };

    let plain = with_id("abc-123_x.y").await.unwrap();
    let hostile = with_id("bad id\twith spaces").await.unwrap();
    let none = app.http.get(app.url("/healthz")).send().await.unwrap();

    assert_eq!(plain.headers()["x-request-id"], "abc-123_x.y");
    assert_ne!(hostile.headers()["x-request-id"], "bad id\twith spaces");
    assert_eq!(none.headers()["x-request-id"].len(), 36);
}

#[tokio::test]
async fn metrics_count_requests_rejections_the_pool_and_key_fetches() {
    let app = TestApp::spawn().await;
    app.list(ORG_A, "").await;
    app.get("not-a-token", "/api/v1/staff").await;
    for n in 0..3 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{n}").as_bytes()).unwrap();
        app.http
            .request(method, app.url("/nowhere"))
            .send()
            .await
            .unwrap();
    }

    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    for expected in [
        r#"http_requests_total{method="GET",route="/api/v1/staff",status="200"} 1"#,
        r#"auth_rejections_total{reason="malformed token"} 1"#,
        r#"db_pool_connections{state="max"} 4"#,
        "jwks_fetches_total 1",
        "http_request_duration_seconds_bucket",
        r#"http_requests_total{method="other",route="(unmatched)",status="404"} 3"#,
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[tokio::test]
async fn a_statement_waiting_on_a_lock_is_cut_by_the_statement_timeout_even_when_first_prepared() {
    let app = TestApp::spawn_with(|o| o.db.statement_timeout = Duration::from_millis(300)).await;
    let (mut blocker, connection) = tokio_postgres::connect(&app.database_url, NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE staff_members IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    // A fresh pool: the list statement has never been prepared on any connection.
    let started = Instant::now();
    let response = app.get(&app.token(ORG_A), "/api/v1/staff").await;
    let elapsed = started.elapsed();
    lock.rollback().await.unwrap();

    problem(response, 503).await;
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[tokio::test]
async fn requests_abandoned_by_the_time_limit_never_open_more_backends_than_the_pool() {
    let app = TestApp::spawn_with(|o| {
        o.db.pool_size = 2;
        o.request_timeout = Duration::from_millis(300);
    })
    .await;
    let ana = app.add_member(ORG_A, "Ana Souza", "ana@a.example").await;
    let path = format!("/api/v1/staff/{}", ana["id"].as_str().unwrap());
    let (mut blocker, connection) = tokio_postgres::connect(&app.database_url, NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let lock = blocker.transaction().await.unwrap();
    lock.execute("SELECT 1 FROM staff_members FOR UPDATE", &[])
        .await
        .unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..10 {
        let request = app
            .http
            .patch(app.url(&path))
            .bearer_auth(app.token(ORG_A))
            .json(&json!({"department": format!("D{n}")}))
            .send();
        tasks.spawn(async move { request.await.unwrap().status().as_u16() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    let backends: i64 = lock
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND backend_type = 'client backend' AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    lock.rollback().await.unwrap();

    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    assert!(
        backends <= 2,
        "{backends} backends waiting with a pool of 2"
    );
}
