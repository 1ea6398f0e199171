//! `otica-api serve` as its own process, for what only a real process shows: signals,
//! exit codes, start-up checks and the log lines it writes.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::harness::Issuer;

static NEXT_LOG: AtomicU32 = AtomicU32::new(0);

/// A running `otica-api serve`; killed on drop if still running.
pub struct Served {
    child: Child,
    pub base: String,
    log: PathBuf,
}

impl Served {
    /// Starts `serve` on a free loopback port against `database_url`, trusting `issuer`'s
    /// first key as a static PEM, with `env` added; waits (bounded) for `/healthz`.
    pub async fn start(database_url: &str, issuer: &Issuer, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let n = NEXT_LOG.fetch_add(1, Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("otica-serve-{}-{n}.log", std::process::id()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_otica-api"));
        command
            .arg("serve")
            // Away from the repository, so a developer's .env cannot change the test.
            .current_dir(std::env::temp_dir())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("CLERK_ISSUER", &issuer.url)
            .env("CLERK_JWT_KEY", issuer.public_pem("ins_test1"))
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let served = Served {
            child: command.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        served.wait_healthy().await;
        served
    }

    async fn wait_healthy(&self) {
        let started = Instant::now();
        let health = format!("{}/healthz", self.base);
        while started.elapsed() < Duration::from_secs(30) {
            if reqwest::get(&health).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "serve did not answer /healthz within 30 s; its log:\n{}",
            self.log_text()
        );
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Waits (bounded) for the process to exit and returns its status.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "serve did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process logged so far (stderr).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Runs `otica-api serve` with only `env` (and PATH) set, away from any `.env`, and waits
/// (bounded) for it to exit: for start-ups that must be refused.
pub fn serve_to_exit(env: &[(&str, &str)]) -> Output {
    serve_to_exit_in(&std::env::temp_dir(), env)
}

/// [`serve_to_exit`] with `dir` as the working directory (where `serve` looks for `.env`).
pub fn serve_to_exit_in(dir: &std::path::Path, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_otica-api"))
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("serve neither started nor refused within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
