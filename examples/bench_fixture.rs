//! Helpers for `bench/run`, not part of the service.
//!
//! `bench_fixture cluster <url-file>`: starts a throwaway PostgreSQL cluster (the crate's
//! own [`Cluster`]), writes its superuser URL (database `postgres`) to `<url-file>`, and keeps
//! it running until standard input closes; the cluster is then removed. If this process is
//! killed instead, the cluster's watchdog removes it.
//!
//! `bench_fixture mint <out-dir> <issuer> <shops-file>...`: makes an RSA key, writes its
//! public half to `<out-dir>/public.pem` (for `CLERK_JWT_KEY`), and for each shops file
//! (lines `org_id<TAB>rest`) writes `<shops-file>.tokens` with lines `token<TAB>rest`: one
//! Clerk-shaped v2 session token per shop, valid for three hours.

use std::io::{BufRead, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Header};
use otica_api::auth::dev_issuer::generate_rsa_key;
use otica_api::db::throwaway::Cluster;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("cluster") if args.len() == 3 => cluster(&args[2]),
        Some("mint") if args.len() >= 5 => mint(&args[2], &args[3], &args[4..]),
        _ => Err(
            "usage: bench_fixture cluster <url-file> | mint <out-dir> <issuer> <shops-file>..."
                .to_owned(),
        ),
    };
    if let Err(message) = result {
        eprintln!("bench_fixture: {message}");
        std::process::exit(1);
    }
}

fn cluster(url_file: &str) -> Result<(), String> {
    let cluster = Cluster::start().map_err(|e| e.to_string())?;
    std::fs::write(url_file, cluster.url("postgres")).map_err(|e| e.to_string())?;
    // Block until the caller closes our standard input (or dies).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(cluster);
    Ok(())
}

fn mint(out_dir: &str, issuer: &str, shops_files: &[String]) -> Result<(), String> {
    let kid = "ins_bench";
    let key = generate_rsa_key(kid).map_err(|e| e.to_string())?;
    std::fs::write(format!("{out_dir}/public.pem"), &key.public_pem).map_err(|e| e.to_string())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    for path in shops_files {
        let input = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(format!("{path}.tokens")).map_err(|e| e.to_string())?,
        );
        for (n, line) in std::io::BufReader::new(input).lines().enumerate() {
            let line = line.map_err(|e| e.to_string())?;
            let (org, rest) = line.split_once('\t').unwrap_or((line.as_str(), ""));
            if org.is_empty() {
                continue;
            }
            let user = format!("user_bench{n}");
            // The shape of a Clerk v2 session token (azp, fva, sid, o.{id,rol,slg}, ...).
            let claims = serde_json::json!({
                "azp": "http://localhost:5173",
                "exp": now + 3 * 3600,
                "fva": [0, -1],
                "iat": now,
                "iss": issuer,
                "nbf": now - 5,
                "sid": format!("sess_bench{n}"),
                "sub": user,
                "v": 2,
                "o": { "id": org, "rol": "admin", "slg": format!("shop-{n}") },
            });
            let token =
                jsonwebtoken::encode(&header, &claims, &key.signing).map_err(|e| e.to_string())?;
            writeln!(out, "{token}\t{rest}").map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}
