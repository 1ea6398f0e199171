//! Runs the pgTAP files under tests/sql with pg_prove on a freshly migrated database.

use std::process::Command;

use tokio_postgres::NoTls;

use crate::harness::fresh_database_url;

#[tokio::test]
async fn the_pgtap_policy_tests_pass() {
    let url = fresh_database_url().await;
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pgtap")
        .await
        .expect("pgTAP is installed (Debian: apt-get install postgresql-15-pgtap)");
    let parsed: tokio_postgres::Config = url.parse().unwrap();
    let port = parsed.get_ports()[0].to_string();
    let database = parsed.get_dbname().unwrap().to_owned();
    let password = String::from_utf8(parsed.get_password().unwrap_or_default().to_vec()).unwrap();

    let out = Command::new("pg_prove")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            &database,
        ])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sql/isolation.sql"
        ))
        .env("PGPASSWORD", &password)
        .output()
        .expect("pg_prove runs (Debian: apt-get install libtap-parser-sourcehandler-pgtap-perl)");

    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("All tests successful"), "{report}");
}
