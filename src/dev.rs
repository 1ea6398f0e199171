//! `otica-api dev`: a throwaway database (unless `DATABASE_URL` is set), a local token
//! issuer, demo data for two shops, and ready-to-paste tokens. Nothing here runs in `serve`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::app::HttpSettings;
use crate::auth::Verifier;
use crate::auth::dev_issuer::DevIssuer;
use crate::cli;
use crate::config::{self, AuthConfig, KeySource};
use crate::db::{self, migrate, throwaway::Cluster};
use crate::staff::model::{NewStaff, StaffRole};
use crate::{auth, staff};

/// A demo shop: its Clerk organization id, its name and its team.
struct DemoShop {
    org_id: &'static str,
    name: &'static str,
    members: &'static [DemoMember],
}

/// A demo member: name, email, role, department.
struct DemoMember(&'static str, &'static str, StaffRole, &'static str);

const DEMO_SHOPS: [DemoShop; 2] = [
    DemoShop {
        org_id: "org_demoCentro",
        name: "Ótica Centro",
        members: &[
            DemoMember(
                "Ana Souza",
                "ana@centro.example",
                StaffRole::Admin,
                "Gerência",
            ),
            DemoMember(
                "Bruno Lima",
                "bruno@centro.example",
                StaffRole::Manager,
                "Vendas",
            ),
            DemoMember(
                "Carla Dias",
                "carla@centro.example",
                StaffRole::Staff,
                "Vendas",
            ),
            DemoMember(
                "Diego Rocha",
                "diego@centro.example",
                StaffRole::Assistant,
                "Laboratório",
            ),
        ],
    },
    DemoShop {
        org_id: "org_demoNorte",
        name: "Ótica Norte",
        members: &[
            DemoMember(
                "Elisa Prado",
                "elisa@norte.example",
                StaffRole::Admin,
                "Gerência",
            ),
            DemoMember(
                "Fábio Nunes",
                "fabio@norte.example",
                StaffRole::Staff,
                "Atendimento",
            ),
        ],
    },
];

/// `otica-api dev`: everything a newcomer needs, with nothing configured.
///
/// It reads `DEV_DATABASE_URL`, never `DATABASE_URL`: a `.env` written for `serve` must not
/// get demo shops seeded into it by accident.
pub async fn run() -> Result<(), String> {
    let addr = config::bind_addr().map_err(|e| e.to_string())?;
    let cors = match config::cors_origins().map_err(|e| e.to_string())? {
        origins if origins.is_empty() => vec![
            "http://localhost:5173".to_owned(),
            "http://127.0.0.1:5173".to_owned(),
        ],
        origins => origins,
    };
    // Bound first: a taken port fails here, before any token is printed.
    let acceptor = cli::bind(addr).await?;

    // Keep the cluster alive for as long as the server runs; dropping it removes it.
    let (database_url, cluster) = match std::env::var("DEV_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => (url, None),
        None => {
            eprintln!("Starting a throwaway PostgreSQL cluster...");
            let cluster = tokio::task::spawn_blocking(Cluster::start)
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            create_database(&cluster.url("postgres"), "otica").await?;
            (cluster.url("otica"), Some(cluster))
        }
    };

    migrate::run_url(&database_url).await?;
    cli::check_isolation(&database_url).await?;
    let settings = db::DbSettings {
        pool_size: 8,
        ..Default::default()
    };
    let db = db::Database::connect_lazy(&database_url, settings)?;
    seed_demo_data(&db).await?;

    let issuer = DevIssuer::start()
        .await
        .map_err(|e| format!("dev issuer: {e}"))?;
    let jwks_url = issuer
        .jwks_url()
        .parse()
        .map_err(|e| format!("dev issuer: {e}"))?;
    let auth = AuthConfig::new(vec![issuer.issuer.clone()], KeySource::Jwks(jwks_url));
    let verifier = Arc::new(Verifier::new(&auth)?);

    print_welcome(addr, &database_url, cluster.is_some(), &issuer);
    let http = HttpSettings {
        cors_allowed_origins: cors,
        ..HttpSettings::default()
    };
    let served = cli::run(acceptor, db, verifier, http, Duration::from_secs(10)).await;
    if let Some(cluster) = cluster {
        // Stopping the cluster and deleting its files can take a second or two.
        let dir = cluster.dir().to_path_buf();
        let _ = tokio::task::spawn_blocking(move || drop(cluster)).await;
        if dir.exists() {
            eprintln!(
                "Throwaway PostgreSQL cluster stopped; could not remove {}.",
                dir.display()
            );
        } else {
            eprintln!(
                "Throwaway PostgreSQL cluster stopped and removed ({}).",
                dir.display()
            );
        }
    }
    served
}

async fn create_database(admin_url: &str, name: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| {
            format!(
                "cannot connect to the throwaway cluster: {}",
                db::describe(&e)
            )
        })?;
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| format!("cannot create database {name}: {e:?}"))?;
    drop(client);
    let _ = task.await;
    Ok(())
}

/// Adds the demo members, through the same tenant transactions requests use. A shop that
/// already has members is left alone, so `dev` can run again on the same database.
async fn seed_demo_data(db: &db::Database) -> Result<(), String> {
    for DemoShop {
        org_id, members, ..
    } in DEMO_SHOPS
    {
        let tenant = auth::Tenant {
            org_id: org_id.to_owned(),
            user_id: "user_devSeed".to_owned(),
            org_role: Some("org:admin".to_owned()),
            is_admin: true,
        };
        let fail = |e: crate::error::ApiError| format!("seeding {org_id}: {e}");
        let tx = db.begin(&tenant).await.map_err(fail)?;
        if staff::repo::staff_stats(&tx, org_id)
            .await
            .map_err(fail)?
            .total_users
            > 0
        {
            continue;
        }
        for DemoMember(name, email, role, department) in members {
            let new = NewStaff {
                full_name: (*name).to_owned(),
                email: (*email).to_owned(),
                role: *role,
                department: Some((*department).to_owned()),
                is_active: true,
                avatar_url: None,
                clerk_id: None,
            };
            staff::repo::create_staff(&tx, org_id, &new)
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
    }
    Ok(())
}

fn print_welcome(addr: SocketAddr, database_url: &str, throwaway: bool, issuer: &DevIssuer) {
    const LIFETIME_SECS: i64 = 12 * 3600;
    let base = format!("http://{addr}");
    let db_note = if throwaway {
        " (throwaway: removed when dev stops)"
    } else {
        ""
    };
    let tokens: Vec<(String, &str, &str)> = DEMO_SHOPS
        .iter()
        .map(|shop| {
            let token = issuer.mint(shop.org_id, "user_devAdmin", "admin", LIFETIME_SECS);
            (token, shop.org_id, shop.name)
        })
        .collect();

    println!();
    println!("otica-api dev is running. Stop it with Ctrl-C.");
    println!();
    println!("  API         {base}/api/v1/staff");
    println!("  Swagger UI  {base}/docs   (Authorize, then paste a token below)");
    // The throwaway cluster's password is shown: it exists to keep other local users out,
    // and whoever runs dev needs it for psql. Any other database's password is hidden.
    let shown = if throwaway {
        database_url.to_owned()
    } else {
        redact_password(database_url)
    };
    println!("  Database    {shown}{db_note}");
    println!("  Issuer      {} (local, dev only)", issuer.issuer);
    println!();
    for (token, org, name) in &tokens {
        println!("Bearer token for {name} ({org}, admin), valid 12 hours:");
        println!("{token}");
        println!();
    }
    println!("Try it:");
    println!(
        "curl -H 'Authorization: Bearer {}' {base}/api/v1/staff",
        tokens[0].0
    );
    println!();
}

fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
