//! The doors row-level security cannot close by itself: each planted weakness is reported by
//! `sql/audit.sql`, named by the start-up check, and stops `serve` from starting.

use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{Issuer, execute, fresh_database_url, private_cluster};
use crate::served::{Served, serve_to_exit};

/// Each weakness, the SQL that plants it in a migrated database, and a word the audit's
/// and the start-up check's reports must contain (compared in lower case).
const TABLE_PLANTS: &[(&str, &str, &str)] = &[
    (
        "RLS disabled",
        "ALTER TABLE staff_members DISABLE ROW LEVEL SECURITY",
        "disabled",
    ),
    (
        "FORCE missing",
        "ALTER TABLE staff_members NO FORCE ROW LEVEL SECURITY",
        "force",
    ),
    (
        "owner-rights view",
        "CREATE VIEW staff_all AS SELECT * FROM staff_members",
        "staff_all",
    ),
    (
        "global unique index",
        "CREATE UNIQUE INDEX staff_email_anywhere ON staff_members (email)",
        "staff_email_anywhere",
    ),
    (
        "TRUNCATE grant",
        "GRANT TRUNCATE ON staff_members TO otica_runtime",
        "truncate",
    ),
];

/// Runs `sql/audit.sql` with psql and returns its findings section.
fn audit_findings(url: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/audit.sql"))
        .output()
        .expect("psql runs (install the PostgreSQL client)");
    assert!(
        out.status.success(),
        "audit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stdout).unwrap();
    report
        .split("== 5.")
        .nth(1)
        .expect("the report has a findings section")
        .to_owned()
}

/// Starts `otica-api serve` on `url` and waits for it to exit (bounded).
fn serve(url: &str) -> Output {
    serve_to_exit(&[
        ("DATABASE_URL", url),
        ("CLERK_ISSUER", "http://127.0.0.1:9"),
    ])
}

#[tokio::test]
async fn a_migrated_database_has_no_audit_finding() {
    let url = fresh_database_url().await;

    let findings = audit_findings(&url);

    assert!(findings.contains("(0 rows)"), "{findings}");
}

#[tokio::test]
async fn each_planted_table_weakness_is_reported_and_stops_serve() {
    for (what, plant, word) in TABLE_PLANTS {
        let url = fresh_database_url().await;
        execute(&url, plant).await;

        let audit = audit_findings(&url).to_lowercase();
        let refused = serve(&url);

        assert!(
            audit.contains(word) && !audit.contains("(0 rows)"),
            "{what}: {audit}"
        );
        let stderr = String::from_utf8_lossy(&refused.stderr).to_lowercase();
        assert!(!refused.status.success(), "{what}: serve started");
        assert!(
            stderr.contains("refusing to serve") && stderr.contains(word),
            "{what}: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_runtime_role_that_can_bypass_is_reported_and_stops_serve() {
    // Roles are shared by the whole cluster, so this weakness gets a cluster of its own.
    // Kept alive (not dropped) until the end of the test.
    let (_cluster, url) = private_cluster().await;

    for (what, plant) in [
        ("BYPASSRLS", "ALTER ROLE otica_runtime BYPASSRLS"),
        (
            "membership in a superuser role",
            "ALTER ROLE otica_runtime NOBYPASSRLS; CREATE ROLE ops SUPERUSER NOLOGIN; GRANT ops TO otica_runtime",
        ),
    ] {
        execute(&url, plant).await;

        let audit = audit_findings(&url);
        let refused = serve(&url);

        assert!(audit.contains("runtime role can become"), "{what}: {audit}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{what}: serve started");
        assert!(stderr.contains("refusing to serve"), "{what}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_starts_on_a_clean_database_even_as_a_superuser_and_stops_on_sigterm() {
    let url = fresh_database_url().await;
    let issuer = Issuer::start().await;

    let mut served = Served::start(&url, &issuer, &[]).await;
    served.terminate();
    let status = tokio::task::block_in_place(|| served.wait_exit(Duration::from_secs(15)));

    assert!(status.success(), "exit status {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_roles_made_by_the_bootstrap_script_a_plain_user_migrates_and_serves() {
    // A cluster of its own: the script creates cluster-wide roles.
    let (_cluster, url) = private_cluster().await;
    let out = Command::new("psql")
        .args([
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            "app_user=otica_app",
            "-v",
            "app_db=otica_app",
        ])
        .args(["-d", &url, "-f"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sql/bootstrap_roles.sql"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    execute(&url, "ALTER ROLE otica_app PASSWORD 'app-secret'").await;
    let mut app_url = url::Url::parse(&url).unwrap();
    app_url.set_username("otica_app").unwrap();
    app_url.set_password(Some("app-secret")).unwrap();
    app_url.set_path("/otica_app");
    let app_url = app_url.to_string();

    let applied = otica_api::db::migrate::run_url(&app_url).await.unwrap();
    let issuer = Issuer::start().await;
    let mut served = Served::start(&app_url, &issuer, &[]).await;
    let rows = reqwest::Client::new()
        .get(format!("{}/api/v1/staff", served.base))
        .bearer_auth(issuer.token("org_2Shop"))
        .send()
        .await
        .unwrap();
    served.terminate();
    tokio::task::block_in_place(|| served.wait_exit(Duration::from_secs(15)));

    assert!(applied >= 1);
    assert_eq!(rows.status(), 200);
}
