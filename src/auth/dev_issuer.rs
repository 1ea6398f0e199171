//! A stand-in for Clerk, for `otica-api dev` only: a key made at start, its JWKS served on
//! 127.0.0.1, and tokens minted in Clerk's session-token shape.
//!
//! `serve` never constructs this; it trusts only the issuers and keys it is configured with.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Json;
use poem::{EndpointExt, Route, Server, get, handler};

/// A local token issuer with its own RSA key.
pub struct DevIssuer {
    key: EncodingKey,
    kid: String,
    /// The `iss` of minted tokens: `http://127.0.0.1:<port>`.
    pub issuer: String,
}

impl DevIssuer {
    /// Makes a key and serves its JWKS at `<issuer>/.well-known/jwks.json` until the process ends.
    pub async fn start() -> std::io::Result<Self> {
        let kid = format!("ins_dev{}", uuid::Uuid::new_v4().simple());
        let RsaKey {
            signing: key, jwk, ..
        } = generate_rsa_key(&kid)?;

        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .ok_or_else(|| std::io::Error::other("the dev issuer has no TCP address"))?;
        let jwks = JwkSet { keys: vec![jwk] };
        let app = Route::new()
            .at("/.well-known/jwks.json", get(serve_jwks))
            .data(jwks);
        tokio::spawn(async move {
            if let Err(err) = Server::new_with_acceptor(acceptor).run(app).await {
                tracing::error!(error = %err, "the dev token issuer stopped");
            }
        });

        Ok(Self {
            key,
            kid,
            issuer: format!("http://{addr}"),
        })
    }

    /// The JWKS address.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.issuer)
    }

    /// A v2 session token for `user_id` as `role` (`admin`, `member`) of `org_id`.
    pub fn mint(&self, org_id: &str, user_id: &str, role: &str, lifetime_secs: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let claims = serde_json::json!({
            "iss": self.issuer,
            "sub": user_id,
            "sid": format!("sess_dev{}", &user_id.trim_start_matches("user_")),
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime_secs,
            "v": 2,
            "o": { "id": org_id, "rol": role },
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .expect("signing with a freshly made RSA key cannot fail")
    }
}

#[handler]
fn serve_jwks(jwks: poem::web::Data<&JwkSet>) -> Json<JwkSet> {
    Json(jwks.0.clone())
}

/// An RSA key made here: its signing half, and its public half as a JWK and as PEM.
pub struct RsaKey {
    /// Signs tokens.
    pub signing: EncodingKey,
    /// The public half, with its `kid`, as a JWKS publishes it.
    pub jwk: Jwk,
    /// The public half as `-----BEGIN PUBLIC KEY-----` PEM, as `CLERK_JWT_KEY` takes it.
    pub public_pem: String,
}

/// A new RSA-2048 key whose JWK carries the id `kid`.
pub fn generate_rsa_key(kid: &str) -> std::io::Result<RsaKey> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| std::io::Error::other("RSA key generation failed"))?;
    let private_der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
        .map_err(|_| std::io::Error::other("RSA key encoding failed"))?;
    let public_der = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key())
        .map_err(|_| std::io::Error::other("RSA key encoding failed"))?;

    let signing = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", private_der.as_ref()).as_bytes())
        .map_err(std::io::Error::other)?;
    let mut jwk =
        Jwk::from_encoding_key(&signing, Algorithm::RS256).map_err(std::io::Error::other)?;
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
    Ok(RsaKey {
        signing,
        jwk,
        public_pem: pem("PUBLIC KEY", public_der.as_ref()),
    })
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
