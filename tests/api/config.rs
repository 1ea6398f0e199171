//! Start-up settings: a missing or malformed one stops `serve` with one line naming it.

use crate::served::{serve_to_exit, serve_to_exit_in};

const DB: (&str, &str) = ("DATABASE_URL", "postgres://otica@127.0.0.1:9/otica");
const ISSUER: (&str, &str) = ("CLERK_ISSUER", "https://clerk.shop.example");

#[test]
fn each_bad_setting_stops_start_up_with_one_line_naming_it() {
    let cases: [(&[(&str, &str)], &str); 9] = [
        (&[], "DATABASE_URL"),
        (&[DB], "CLERK_ISSUER"),
        (
            &[("DATABASE_URL", "not a url at all"), ISSUER],
            "DATABASE_URL",
        ),
        (
            &[DB, ("CLERK_ISSUER", "http://clerk.shop.example")],
            "CLERK_ISSUER",
        ),
        (
            &[
                DB,
                ISSUER,
                ("CLERK_JWKS_URL", "http://keys.shop.example/jwks.json"),
            ],
            "CLERK_JWKS_URL",
        ),
        (&[DB, ISSUER, ("DB_POOL_SIZE", "many")], "DB_POOL_SIZE"),
        (
            &[
                DB,
                ISSUER,
                ("CORS_ALLOWED_ORIGINS", "app.shop.example/path"),
            ],
            "CORS_ALLOWED_ORIGINS",
        ),
        (&[DB, ISSUER, ("BIND_ADDR", "localhost")], "BIND_ADDR"),
        (
            &[DB, ISSUER, ("TOKIO_WORKER_THREADS", "0")],
            "TOKIO_WORKER_THREADS",
        ),
    ];

    for (env, named) in cases {
        let out = serve_to_exit(env);

        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{named}: serve started");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{named}: {stderr}");
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
}

#[test]
fn settings_in_a_dot_env_file_are_checked_too_the_runtime_size_included() {
    let dir = std::env::temp_dir().join(format!("otica-dotenv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".env"),
        format!(
            "{}={}\n{}={}\nTOKIO_WORKER_THREADS=abc\n",
            DB.0, DB.1, ISSUER.0, ISSUER.1
        ),
    )
    .unwrap();

    let out = serve_to_exit_in(&dir, &[]);
    std::fs::remove_dir_all(&dir).unwrap();

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve started: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("TOKIO_WORKER_THREADS"), "{stderr}");
}
