//! Bearer-token authentication: Clerk session tokens in, a [`Tenant`] out.
//!
//! A request is let in only with `Authorization: Bearer <jwt>` where the JWT is an RS256
//! Clerk session token signed by one of our keys, issued by a configured issuer, in its
//! validity window, and naming an active organization. The organization becomes the tenant;
//! nothing else in the request can name one.
//!
//! Every refusal answers the same 401 body, so a forged token learns nothing about which check
//! failed; the log line names the real reason.

pub mod cache;
mod claims;
pub mod dev_issuer;
pub mod keys;

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::config::{AuthConfig, KeySource};
use crate::error::ApiError;
use crate::telemetry::RequestLog;
use cache::{TokenCache, Verified};
pub use claims::is_org_id;
use claims::{OrgOutcome, SessionClaims};
use keys::{JwksCache, KeyError, KeyStore};

/// The longest token accepted, in bytes; Clerk's are about 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Clerk's header `cat` values for a session token and for "category not tracked".
const SESSION_CATEGORIES: [&str; 2] = ["cl_B7d4PD111AAA", "cl_I7d4PD111III"];

/// Who is calling, taken from a verified token only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// The active Clerk organization (`org_...`): the shop whose data the request may touch.
    pub org_id: String,
    /// The Clerk user (`user_...`).
    pub user_id: String,
    /// The user's role in the organization, `org:` prefixed (`org:admin`), when the token says.
    pub org_role: Option<String>,
    /// Whether that role is one of `CLERK_ADMIN_ROLES`: only admins change the team.
    pub is_admin: bool,
}

impl Tenant {
    /// Only the organization's admins may change its team; everyone in it may read.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "Only your organization's admins can change its team.",
            ))
        }
    }
}

/// Why a token was refused; logged, never sent to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    TooLarge,
    Malformed,
    Algorithm,
    MissingKid,
    HeaderType,
    NotASessionToken,
    UnknownKid,
    BadSignature,
    Expired,
    NotYetValid,
    IssuedInTheFuture,
    WrongIssuer,
    HasAudience,
    ClaimsInvalid,
    MissingSession,
    AuthorizedParty,
    UnknownVersion,
    MalformedOrganization,
}

impl Rejection {
    /// A short lower-case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "token too large",
            Self::Malformed => "malformed token",
            Self::Algorithm => "algorithm not RS256",
            Self::MissingKid => "no kid in header",
            Self::HeaderType => "typ is not JWT",
            Self::NotASessionToken => "not a session token",
            Self::UnknownKid => "unknown kid",
            Self::BadSignature => "bad signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not valid yet (nbf)",
            Self::IssuedInTheFuture => "issued in the future (iat)",
            Self::WrongIssuer => "wrong issuer",
            Self::HasAudience => "has aud (template token)",
            Self::ClaimsInvalid => "claims missing or of the wrong type",
            Self::MissingSession => "no sid (not a session token)",
            Self::AuthorizedParty => "azp not allowed",
            Self::UnknownVersion => "unknown claims version",
            Self::MalformedOrganization => "malformed organization id",
        }
    }
}

/// The outcome of a failed verification.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    /// 401: the token is not acceptable.
    Rejected(Rejection),
    /// 403: a genuine session with no active organization.
    NoOrganization,
    /// 503: no key set could ever be loaded.
    KeysUnavailable,
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Rejected(_) => ApiError::Unauthorized,
            AuthError::NoOrganization => ApiError::Forbidden(
                "Your session has no active organization: choose a shop in the app, then retry.",
            ),
            AuthError::KeysUnavailable => {
                ApiError::Unavailable("The token signing keys cannot be loaded right now.")
            }
        }
    }
}

/// Verifies Clerk session tokens.
pub struct Verifier {
    keys: KeyStore,
    validation: Validation,
    authorized_parties: HashSet<String>,
    admin_roles: HashSet<String>,
    leeway: u64,
    /// Tokens that passed every check, so a repeated token skips the RSA verification.
    cache: TokenCache,
}

impl Verifier {
    /// A verifier for `config`; JWKS keys are fetched lazily (see [`Verifier::jwks`]).
    pub fn new(config: &AuthConfig) -> Result<Self, String> {
        let keys = match &config.keys {
            KeySource::Pem(pem) => KeyStore::Static(Arc::new(
                jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| format!("CLERK_JWT_KEY is not an RSA public key in PEM: {e}"))?,
            )),
            KeySource::Jwks(url) => KeyStore::Jwks(Arc::new(JwksCache::new(
                url.clone(),
                config.keys_ttl,
                config.refresh_cooldown,
            ))),
        };

        // The algorithm is ours, never the token's or the key's.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = config.clock_skew_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&config.issuers);
        // No audience is configured, so a token carrying `aud` (a JWT template) is refused.
        validation.validate_aud = true;

        Ok(Self {
            keys,
            validation,
            authorized_parties: config.authorized_parties.iter().cloned().collect(),
            admin_roles: config.admin_roles.iter().cloned().collect(),
            leeway: config.clock_skew_secs,
            cache: TokenCache::new(cache::DEFAULT_CAPACITY),
        })
    }

    /// The JWKS cache, when keys come from a JWKS endpoint.
    pub fn jwks(&self) -> Option<&Arc<JwksCache>> {
        match &self.keys {
            KeyStore::Jwks(cache) => Some(cache),
            KeyStore::Static(_) => None,
        }
    }

    /// Checks `token` and returns the tenant it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Tenant, AuthError> {
        use AuthError::Rejected;

        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejected(Rejection::TooLarge));
        }
        // A token that passed every check before, still inside its `exp`, whose key is still
        // the one the key store hands out for its `kid`, passes again (see `cache`).
        if let Some(hit) = self.cache.get(token, now())
            && let Ok(key) = self.keys.key(hit.kid.as_deref()).await
            && Arc::ptr_eq(&key, &hit.key)
        {
            return Ok(hit.tenant);
        }
        let header = decode_header(token).map_err(|_| Rejected(Rejection::Malformed))?;
        if header.alg != Algorithm::RS256 {
            return Err(Rejected(Rejection::Algorithm));
        }
        if header.typ.as_deref().is_some_and(|t| t != "JWT") {
            return Err(Rejected(Rejection::HeaderType));
        }
        match header.extras.get::<String>("cat") {
            Ok(None) => {}
            Ok(Some(cat)) if SESSION_CATEGORIES.contains(&cat.as_str()) => {}
            _ => return Err(Rejected(Rejection::NotASessionToken)),
        }
        if header.kid.is_none() && matches!(self.keys, KeyStore::Jwks(_)) {
            return Err(Rejected(Rejection::MissingKid));
        }

        let key = self
            .keys
            .key(header.kid.as_deref())
            .await
            .map_err(|e| match e {
                KeyError::UnknownKid => Rejected(Rejection::UnknownKid),
                KeyError::Unavailable => AuthError::KeysUnavailable,
            })?;

        // Signature first, then exp/nbf/iss/aud, then our claims struct.
        let claims = decode::<SessionClaims>(token, &key, &self.validation)
            .map_err(|e| Rejected(classify(&e)))?
            .claims;

        if claims
            .iat
            .is_some_and(|iat| iat > now() + self.leeway as i64)
        {
            return Err(Rejected(Rejection::IssuedInTheFuture));
        }
        if claims.sid.as_deref().is_none_or(str::is_empty) {
            return Err(Rejected(Rejection::MissingSession));
        }
        if !self.authorized_parties.is_empty()
            && !claims
                .azp
                .as_deref()
                .is_some_and(|azp| self.authorized_parties.contains(azp.trim_end_matches('/')))
        {
            return Err(Rejected(Rejection::AuthorizedParty));
        }

        match claims.organization().map_err(Rejected)? {
            OrgOutcome::Active(org) => {
                let tenant = Tenant {
                    is_admin: org
                        .role
                        .as_ref()
                        .is_some_and(|r| self.admin_roles.contains(r)),
                    org_id: org.id,
                    user_id: claims.sub,
                    org_role: org.role,
                };
                // jsonwebtoken accepted `exp` (an integer) with `exp >= now - leeway`.
                if let Some(exp) = claims.exp.as_ref().and_then(serde_json::Value::as_i64) {
                    let verified = Verified {
                        tenant: tenant.clone(),
                        kid: header.kid,
                        key,
                        valid_until: exp.saturating_add(self.leeway as i64),
                    };
                    self.cache.insert(token, verified, now());
                }
                Ok(tenant)
            }
            OrgOutcome::NoOrganization => Err(AuthError::NoOrganization),
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn classify(err: &jsonwebtoken::errors::Error) -> Rejection {
    use jsonwebtoken::errors::ErrorKind as K;
    match err.kind() {
        K::InvalidSignature => Rejection::BadSignature,
        K::ExpiredSignature => Rejection::Expired,
        K::ImmatureSignature => Rejection::NotYetValid,
        K::InvalidIssuer => Rejection::WrongIssuer,
        K::InvalidAudience => Rejection::HasAudience,
        K::InvalidAlgorithm | K::InvalidAlgorithmName => Rejection::Algorithm,
        K::Json(_) | K::MissingRequiredClaim(_) | K::InvalidClaimFormat(_) => {
            Rejection::ClaimsInvalid
        }
        _ => Rejection::Malformed,
    }
}

/// The bearer token of a Clerk session; operations that take it require authentication.
#[derive(SecurityScheme)]
#[oai(
    ty = "bearer",
    bearer_format = "JWT",
    checker = "authenticate",
    rename = "ClerkSession"
)]
pub struct BearerAuth(pub Tenant);

async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<Tenant> {
    let verifier = req
        .data::<Arc<Verifier>>()
        .expect("the app always installs the verifier");
    let log = req.data::<RequestLog>();
    let metrics = req.data::<Arc<crate::metrics::Metrics>>();
    let refuse = |reason: &'static str| {
        if let Some(log) = log {
            log.set_auth_failure(reason);
        }
        if let Some(metrics) = metrics {
            metrics.observe_rejection(reason);
        }
    };

    // Two Authorization headers would let a proxy and the app disagree on who is calling.
    let headers = req.headers().get_all(poem::http::header::AUTHORIZATION);
    if headers.iter().count() > 1 {
        refuse("several Authorization headers");
        return Err(ApiError::Unauthorized.into());
    }

    match verifier.verify(&bearer.token).await {
        Ok(tenant) => {
            if let Some(log) = log {
                log.set_tenant(&tenant);
            }
            Ok(tenant)
        }
        Err(err) => {
            refuse(match &err {
                AuthError::Rejected(r) => r.as_str(),
                AuthError::NoOrganization => "no active organization",
                AuthError::KeysUnavailable => "signing keys unavailable",
            });
            Err(ApiError::from(err).into())
        }
    }
}
