//! The generated TypeScript client: its types follow `openapi.yaml`, and its example calls
//! every operation of a live server.

use std::path::Path;
use std::time::Duration;

use super::{artifacts_dir, bin, client_dir, findings, install_packages, run, succeeded};
use crate::harness::{ORG_A, TestApp};

const NODE_LIMIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn the_example_type_checks_against_the_generated_types_and_runs_against_a_live_server() {
    install_packages().await;
    let app = TestApp::spawn().await;
    let generate = run(
        &bin("openapi-typescript"),
        &["../../openapi.yaml", "--output", "src/schema.d.ts"],
        &[],
        NODE_LIMIT,
    )
    .await;
    succeeded(&generate, "openapi-typescript");

    let check = run(&bin("tsc"), &["--noEmit"], &[], NODE_LIMIT).await;
    succeeded(&check, "tsc --noEmit");
    let compile = run(&bin("tsc"), &[], &[], NODE_LIMIT).await;
    succeeded(&compile, "tsc");
    let token = app.token(ORG_A);
    let example = run(
        "node",
        &["dist/example.js"],
        &[("OTICA_API_URL", &app.base), ("OTICA_TOKEN", &token)],
        NODE_LIMIT,
    )
    .await;

    succeeded(&example, "the example against the live server");
    let outcome = findings(&example);
    assert_eq!(outcome["ok"], true);
    assert_eq!(outcome["conflict"][0]["field"], "email");
    assert_eq!(outcome["unprocessable"][0]["field"], "email");
    // The example deleted what it made: the shop is empty again.
    assert!(app.list(ORG_A, "").await.is_empty());
}

#[tokio::test]
async fn renaming_a_field_in_the_spec_fails_the_type_check_of_the_example() {
    install_packages().await;
    // A scratch copy of the client, so the real one's generated types stay untouched.
    let scratch = artifacts_dir().join("renamed-field");
    copy_client_sources(&scratch);
    let spec = std::fs::read_to_string(client_dir().join("../../openapi.yaml")).unwrap();
    let renamed_spec = scratch.join("openapi.yaml");
    std::fs::write(&renamed_spec, spec.replace("full_name", "display_name")).unwrap();
    let generate = run(
        &bin("openapi-typescript"),
        &[
            &renamed_spec.display().to_string(),
            "--output",
            &scratch.join("src/schema.d.ts").display().to_string(),
        ],
        &[],
        NODE_LIMIT,
    )
    .await;
    succeeded(&generate, "openapi-typescript on the renamed spec");

    let tsconfig = scratch.join("tsconfig.json").display().to_string();
    let check = run(&bin("tsc"), &["--noEmit", "-p", &tsconfig], &[], NODE_LIMIT).await;

    let errors = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "tsc accepted a renamed field");
    // Every error is the renamed field's, so nothing else in the copy broke the check.
    let error_lines: Vec<&str> = errors.lines().filter(|l| l.contains("error TS")).collect();
    assert!(!error_lines.is_empty(), "{errors}");
    assert!(
        error_lines
            .iter()
            .all(|l| l.contains("example.ts(") && l.contains("'full_name'")),
        "{errors}"
    );
}

/// Copies what `tsc` reads into `dir`, sharing the installed packages through a link.
fn copy_client_sources(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    for file in [
        "package.json",
        "tsconfig.json",
        "example.ts",
        "src/index.ts",
    ] {
        std::fs::copy(client_dir().join(file), dir.join(file)).unwrap();
    }
    std::os::unix::fs::symlink(client_dir().join("node_modules"), dir.join("node_modules"))
        .unwrap();
}
