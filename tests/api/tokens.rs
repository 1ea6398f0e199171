//! Clerk session tokens verified to the letter: forged, stale, foreign and malformed tokens
//! are refused alike, genuine ones in both claim formats are accepted, and key rotation or a
//! key-server outage never takes the service down.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey};
use otica_api::auth::dev_issuer::generate_rsa_key;
use otica_api::config::KeySource;
use serde_json::{Value, json};

use crate::harness::{JwksMode, ORG_A, TestApp, now, problem, raw_token, sign_with};

const KID: &str = "ins_test1";

async fn status(app: &TestApp, token: &str) -> u16 {
    app.get(token, "/api/v1/staff").await.status().as_u16()
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

/// Polls `check` until it holds, for at most `limit`.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn forged_algorithms_and_keys_are_refused() {
    let app = TestApp::spawn().await;
    let claims = app.issuer.v2_claims(ORG_A);
    let genuine = app.issuer.key(KID);
    let public_pem = app.issuer.public_pem(KID);
    let hmac = EncodingKey::from_secret(public_pem.as_bytes()).unwrap();
    let attacker = generate_rsa_key(KID).unwrap();

    let forged = [
        (
            "alg none",
            raw_token(
                &json!({"alg": "none", "typ": "JWT", "kid": KID}),
                &claims,
                None,
            ),
        ),
        (
            "HS256 keyed with the public key",
            raw_token(
                &json!({"alg": "HS256", "typ": "JWT", "kid": KID}),
                &claims,
                Some((&hmac, Algorithm::HS256)),
            ),
        ),
        (
            "RS384 with the genuine key",
            raw_token(
                &json!({"alg": "RS384", "typ": "JWT", "kid": KID}),
                &claims,
                Some((&genuine, Algorithm::RS384)),
            ),
        ),
        (
            "attacker key, genuine kid",
            sign_with(&attacker.signing, KID, &claims),
        ),
        (
            "typ other than JWT",
            raw_token(
                &json!({"alg": "RS256", "typ": "at+jwt", "kid": KID}),
                &claims,
                Some((&genuine, Algorithm::RS256)),
            ),
        ),
        (
            "unknown crit",
            raw_token(
                &json!({"alg": "RS256", "typ": "JWT", "kid": KID, "crit": ["x-unknown"], "x-unknown": 1}),
                &claims,
                Some((&genuine, Algorithm::RS256)),
            ),
        ),
        (
            "no kid",
            raw_token(
                &json!({"alg": "RS256", "typ": "JWT"}),
                &claims,
                Some((&genuine, Algorithm::RS256)),
            ),
        ),
        (
            "JWT-template category",
            raw_token(
                &json!({"alg": "RS256", "typ": "JWT", "kid": KID, "cat": "cl_B7d4PD222AAA"}),
                &claims,
                Some((&genuine, Algorithm::RS256)),
            ),
        ),
    ];

    for (what, token) in forged {
        assert_eq!(status(&app, &token).await, 401, "{what}");
    }
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token(ORG_A);
    let parts: Vec<&str> = token.split('.').collect();
    let other = raw_token(&json!({}), &app.issuer.v2_claims("org_2Victim"), None);
    let forged_payload = other.split('.').nth(1).unwrap();

    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);

    assert_eq!(status(&app, &tampered).await, 401);
}

#[tokio::test]
async fn the_validity_window_has_five_seconds_of_leeway() {
    let app = TestApp::spawn().await;
    let verifier = app_verifier(&app);
    // Each token is minted against the clock right before it is checked, in-process, so a
    // slow machine cannot move a case across the 5-second line.
    let cases: [(&str, Reshape, bool); 8] = [
        ("expired 4 s ago", |c, t| with(c, "exp", json!(t - 4)), true),
        (
            "expired 6 s ago",
            |c, t| with(c, "exp", json!(t - 6)),
            false,
        ),
        ("nbf 4 s ahead", |c, t| with(c, "nbf", json!(t + 4)), true),
        ("nbf 7 s ahead", |c, t| with(c, "nbf", json!(t + 7)), false),
        ("iat 4 s ahead", |c, t| with(c, "iat", json!(t + 4)), true),
        ("iat 7 s ahead", |c, t| with(c, "iat", json!(t + 7)), false),
        ("no exp", |c, _| without(c, "exp"), false),
        (
            "no nbf, no iat",
            |c, _| without(without(c, "nbf"), "iat"),
            true,
        ),
    ];
    verifier.verify(&app.token(ORG_A)).await.unwrap();

    for (what, shape, accepted) in cases {
        let token = app
            .issuer
            .sign(KID, &shape(app.issuer.v2_claims(ORG_A), now()));

        let outcome = verifier.verify(&token).await;

        assert_eq!(outcome.is_ok(), accepted, "{what}: {outcome:?}");
    }
}

/// Changes a token's claims given the current time.
type Reshape = fn(Value, i64) -> Value;

/// A verifier configured like the test app's, for checks that must not wait on HTTP.
fn app_verifier(app: &TestApp) -> otica_api::auth::Verifier {
    otica_api::auth::Verifier::new(&otica_api::config::AuthConfig::new(
        vec![app.issuer.url.clone()],
        KeySource::Jwks(app.issuer.jwks_url().parse().unwrap()),
    ))
    .unwrap()
}

#[tokio::test]
async fn a_clock_skew_of_zero_is_honoured() {
    let app = TestApp::spawn_with(|o| o.auth.clock_skew_secs = 0).await;

    let expired = with(app.issuer.v2_claims(ORG_A), "exp", json!(now() - 2));

    assert_eq!(status(&app, &app.issuer.sign(KID, &expired)).await, 401);
}

#[tokio::test]
async fn claims_of_the_wrong_type_are_refused() {
    let app = TestApp::spawn().await;
    let c = || app.issuer.v2_claims(ORG_A);

    let cases = [
        ("nbf as a string", with(c(), "nbf", json!("9999999999"))),
        (
            "exp as an object",
            with(c(), "exp", json!({"at": now() + 60})),
        ),
        ("iat as a string", with(c(), "iat", json!("now"))),
        ("sub as a number", with(c(), "sub", json!(42))),
        ("o as a string", with(c(), "o", json!("org_2ShopAlpha"))),
        ("unknown v", with(c(), "v", json!(3))),
        ("v as a string", with(c(), "v", json!("2"))),
        (
            "malformed org id",
            with(c(), "o", json!({"id": "org_../x", "rol": "admin"})),
        ),
    ];

    for (what, claims) in cases {
        assert_eq!(
            status(&app, &app.issuer.sign(KID, &claims)).await,
            401,
            "{what}"
        );
    }
}

#[tokio::test]
async fn only_configured_issuers_are_trusted_and_a_second_one_works() {
    let app = TestApp::spawn_with(|o| {
        o.auth
            .issuers
            .push("https://clerk.satellite.example".into())
    })
    .await;
    let c = || app.issuer.v2_claims(ORG_A);

    let second = with(c(), "iss", json!("https://clerk.satellite.example"));
    let foreign = with(c(), "iss", json!("https://evil.clerk.accounts.dev"));
    let missing = without(c(), "iss");

    assert_eq!(status(&app, &app.issuer.sign(KID, &second)).await, 200);
    assert_eq!(status(&app, &app.issuer.sign(KID, &foreign)).await, 401);
    assert_eq!(status(&app, &app.issuer.sign(KID, &missing)).await, 401);
}

#[tokio::test]
async fn with_an_allow_list_azp_must_be_present_and_listed() {
    let app =
        TestApp::spawn_with(|o| o.auth.authorized_parties = vec!["http://localhost:5173".into()])
            .await;
    let c = || app.issuer.v2_claims(ORG_A);

    assert_eq!(status(&app, &app.issuer.sign(KID, &c())).await, 200);
    assert_eq!(
        status(&app, &app.issuer.sign(KID, &without(c(), "azp"))).await,
        401
    );
    assert_eq!(
        status(
            &app,
            &app.issuer
                .sign(KID, &with(c(), "azp", json!("https://evil.example")))
        )
        .await,
        401
    );
}

#[tokio::test]
async fn without_an_allow_list_a_missing_azp_is_fine() {
    let app = TestApp::spawn().await;

    let claims = without(app.issuer.v2_claims(ORG_A), "azp");

    assert_eq!(status(&app, &app.issuer.sign(KID, &claims)).await, 200);
}

#[tokio::test]
async fn optional_claims_may_be_missing_without_harm() {
    let app = TestApp::spawn().await;
    let mut claims = app.issuer.v2_claims(ORG_A);
    for key in ["fva", "jti", "sts", "azp"] {
        claims = without(claims, key);
    }
    claims["o"] = json!({"id": ORG_A});
    claims["act"] = json!({"sub": "user_2Impersonator"});

    assert_eq!(status(&app, &app.issuer.sign(KID, &claims)).await, 200);
}

#[tokio::test]
async fn a_token_over_8_kib_is_refused() {
    let app = TestApp::spawn().await;

    let claims = with(
        app.issuer.v2_claims(ORG_A),
        "pad",
        json!("x".repeat(9 * 1024)),
    );

    assert_eq!(status(&app, &app.issuer.sign(KID, &claims)).await, 401);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_a_restart() {
    let app = TestApp::spawn().await;
    assert_eq!(status(&app, &app.token(ORG_A)).await, 200);

    app.issuer.add_key("ins_test2");
    let token = app.issuer.sign("ins_test2", &app.issuer.v2_claims(ORG_A));

    // The first unknown kid since start is allowed one refresh, even right after the
    // initial fetch: the cooldown limits refreshes asked for by unknown kids only.
    assert_eq!(status(&app, &token).await, 200);
    assert_eq!(app.issuer.fetches(), 2);
}

#[tokio::test]
async fn a_removed_key_stops_working_after_the_next_refresh() {
    let app = TestApp::spawn_with(|o| {
        o.auth.keys_ttl = Duration::from_millis(200);
        o.auth.refresh_cooldown = Duration::from_millis(100);
    })
    .await;
    app.issuer.add_key("ins_test2");
    let old = app.issuer.sign(KID, &app.issuer.v2_claims(ORG_A));
    assert_eq!(status(&app, &old).await, 200);

    app.issuer.unpublish(KID);

    assert!(
        eventually(Duration::from_secs(5), async || status(&app, &old).await
            == 401)
        .await
    );
    let fresh = app.issuer.sign("ins_test2", &app.issuer.v2_claims(ORG_A));
    assert_eq!(status(&app, &fresh).await, 200);
}

#[tokio::test]
async fn a_key_server_outage_keeps_known_keys_serving() {
    let app = TestApp::spawn_with(|o| {
        o.auth.keys_ttl = Duration::from_millis(100);
        o.auth.refresh_cooldown = Duration::from_millis(50);
    })
    .await;
    assert_eq!(status(&app, &app.token(ORG_A)).await, 200);

    for mode in [JwksMode::Fail, JwksMode::Hang] {
        app.issuer.set_mode(mode);
        let before = app.issuer.fetches();
        let started = Instant::now();

        // Past the set's lifetime, refreshes are attempted and fail; requests go on.
        for _ in 0..5 {
            assert_eq!(status(&app, &app.token(ORG_A)).await, 200, "{mode:?}");
            tokio::time::sleep(Duration::from_millis(120)).await;
        }

        assert!(
            app.issuer.fetches() > before,
            "{mode:?}: no refresh was attempted"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{mode:?}: requests waited on the key server"
        );
    }
}

#[tokio::test]
async fn with_no_key_ever_loaded_an_outage_answers_503_not_401() {
    let app = TestApp::spawn().await;
    app.issuer.set_mode(JwksMode::Fail);

    let response = app.get(&app.token(ORG_A), "/api/v1/staff").await;

    problem(response, 503).await;
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_at_most_one_fetch() {
    let app = TestApp::spawn().await;
    assert_eq!(status(&app, &app.token(ORG_A)).await, 200);
    let before = app.issuer.fetches();
    let started = Instant::now();
    let attacker = generate_rsa_key("ins_unused").unwrap();
    let claims = app.issuer.v2_claims(ORG_A);

    let tokens: Vec<String> = (0..1000)
        .map(|i| sign_with(&attacker.signing, &format!("ins_random{i}"), &claims))
        .collect();
    let statuses = futures_join(&app, tokens, 16).await;

    assert!(statuses.iter().all(|s| *s == 401));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the flood took longer than one cooldown"
    );
    assert!(
        app.issuer.fetches() - before <= 1,
        "fetches: {}",
        app.issuer.fetches() - before
    );
}

#[tokio::test]
async fn a_known_kid_never_refetches_within_the_keys_lifetime() {
    let app = TestApp::spawn().await;
    let token = app.token(ORG_A);

    let statuses = futures_join(&app, vec![token; 1000], 16).await;

    assert!(statuses.iter().all(|s| *s == 200));
    assert_eq!(app.issuer.fetches(), 1);
}

#[tokio::test]
async fn a_static_pem_key_needs_no_key_server() {
    let app = TestApp::spawn_with(|o| {
        o.auth.keys = KeySource::Pem(o.issuer.public_pem(KID));
        o.issuer.set_mode(JwksMode::Fail);
    })
    .await;

    let status = status(&app, &app.token(ORG_A)).await;

    assert_eq!(status, 200);
    assert_eq!(app.issuer.fetches(), 0);
}

#[tokio::test]
async fn v1_and_v2_tokens_resolve_to_the_same_tenant_and_role() {
    let app = TestApp::spawn().await;
    let verifier = app_verifier(&app);
    let legacy_role = with(app.issuer.v1_claims(ORG_A), "org_role", json!("admin"));

    let v1 = verifier
        .verify(&app.issuer.sign(KID, &app.issuer.v1_claims(ORG_A)))
        .await
        .unwrap();
    let v2 = verifier.verify(&app.token(ORG_A)).await.unwrap();
    let legacy = verifier
        .verify(&app.issuer.sign(KID, &legacy_role))
        .await
        .unwrap();
    let no_role = verifier
        .verify(&app.issuer.sign(
            KID,
            &with(app.issuer.v2_claims(ORG_A), "o", json!({"id": ORG_A})),
        ))
        .await
        .unwrap();

    assert_eq!(v1, v2);
    assert_eq!(v1, legacy);
    assert_eq!(v2.org_role.as_deref(), Some("org:admin"));
    assert_eq!((no_role.org_id.as_str(), no_role.org_role), (ORG_A, None));
}

/// Sends a GET per token, `width` at a time, and returns the statuses.
async fn futures_join(app: &TestApp, tokens: Vec<String>, width: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(tokens.len());
    for chunk in tokens.chunks(width) {
        let mut tasks = tokio::task::JoinSet::new();
        for token in chunk {
            let request = app
                .http
                .get(app.url("/api/v1/staff/stats"))
                .bearer_auth(token)
                .send();
            tasks.spawn(async move { request.await.unwrap().status().as_u16() });
        }
        while let Some(status) = tasks.join_next().await {
            statuses.push(status.unwrap());
        }
    }
    statuses
}
