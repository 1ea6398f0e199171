//! The API as a frontend sees it: the TypeScript client generated from `openapi.yaml`
//! (`clients/typescript`), and a real browser, Debian's Chromium driven by
//! playwright-core, on Swagger UI and across origins. These tests run Node.js.

mod browser;
mod client;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::OnceCell;

static PACKAGES: OnceCell<()> = OnceCell::const_new();

/// `clients/typescript`, where the client, its example and the browser scripts live.
pub fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/typescript")
}

/// `target/frontend`: screenshots and scratch copies, never committed.
pub fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/frontend");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Installs the client's packages from its lockfile, once per run, when they are missing.
pub async fn install_packages() {
    PACKAGES
        .get_or_init(|| async {
            if client_dir()
                .join("node_modules/.package-lock.json")
                .exists()
            {
                return;
            }
            let npm = run(
                "npm",
                &["ci", "--no-audit", "--no-fund"],
                &[],
                Duration::from_secs(300),
            )
            .await;
            succeeded(&npm, "npm ci in clients/typescript");
        })
        .await;
}

/// A program from the client's `node_modules/.bin` (tsc, openapi-typescript).
pub fn bin(name: &str) -> String {
    client_dir()
        .join("node_modules/.bin")
        .join(name)
        .display()
        .to_string()
}

/// Runs `program` in `clients/typescript` with extra environment, killing it after `limit`.
/// Async, so the app under test keeps serving on this test's runtime meanwhile.
pub async fn run(program: &str, args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Output {
    let output = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(client_dir())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(limit, output).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("cannot run {program} (Node.js 20 and npm are needed): {e}"),
        Err(_) => panic!("{program} {args:?} did not finish within {limit:?}"),
    }
}

/// Panics with everything the command printed unless it exited 0.
pub fn succeeded(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// The last line the command printed, parsed as JSON (the scripts end with their findings).
pub fn findings(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}
