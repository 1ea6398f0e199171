//! The claims of a Clerk session token, in both of Clerk's formats.
//!
//! Version 1 (no `v` claim) carries the active organization as `org_id` and `org_role`
//! (`org:admin`). Version 2 (`"v": 2`) carries an `o` object: `o.id`, and `o.rol` without
//! the `org:` prefix (`admin`). Only the version decides where to look: a v2 token's
//! `org_id`, if any, is a custom claim and is never read.

use serde::Deserialize;

use super::Rejection;

/// The claims we read; anything else in the token is ignored.
///
/// `exp`, `nbf` and `iss` are checked by `jsonwebtoken` before this is looked at.
#[derive(Debug, Deserialize)]
pub(crate) struct SessionClaims {
    pub sub: String,
    /// Already checked by `jsonwebtoken`; read again to know how long the token may be cached.
    #[serde(default)]
    pub exp: Option<serde_json::Value>,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub v: Option<serde_json::Value>,
    #[serde(default)]
    pub sts: Option<String>,
    #[serde(default)]
    pub org_id: Option<String>,
    #[serde(default)]
    pub org_role: Option<String>,
    #[serde(default)]
    pub o: Option<OrgClaim>,
}

/// The `o` claim of a v2 token. Only `id` and `rol` matter here; `slg`, `per`, `fpm` may be
/// absent or anything.
#[derive(Debug, Deserialize)]
pub(crate) struct OrgClaim {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub rol: Option<String>,
}

/// The active organization of a session, when there is one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ActiveOrg {
    pub id: String,
    /// Always with the `org:` prefix; absent when the token names no role.
    pub role: Option<String>,
}

/// What the claims say about the organization.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OrgOutcome {
    Active(ActiveOrg),
    /// Signed in, but no organization chosen (or the session is still pending).
    NoOrganization,
}

impl SessionClaims {
    /// Reads the organization according to the token's format version.
    pub fn organization(&self) -> Result<OrgOutcome, Rejection> {
        if self.sts.as_deref() == Some("pending") {
            return Ok(OrgOutcome::NoOrganization);
        }
        let (id, role) = match &self.v {
            None => (self.org_id.clone(), self.org_role.clone()),
            Some(v) if v.as_u64() == Some(2) => match &self.o {
                Some(o) => (o.id.clone(), o.rol.clone()),
                None => (None, None),
            },
            Some(_) => return Err(Rejection::UnknownVersion),
        };
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            return Ok(OrgOutcome::NoOrganization);
        };
        if !is_org_id(&id) {
            return Err(Rejection::MalformedOrganization);
        }
        let role = role.filter(|r| !r.is_empty()).map(|r| {
            if r.starts_with("org:") {
                r
            } else {
                format!("org:{r}")
            }
        });
        Ok(OrgOutcome::Active(ActiveOrg { id, role }))
    }
}

/// Clerk organization ids are `org_` followed by letters and digits.
pub fn is_org_id(id: &str) -> bool {
    id.len() <= 64
        && id
            .strip_prefix("org_")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: serde_json::Value) -> SessionClaims {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn v1_and_v2_tokens_for_the_same_shop_resolve_alike() {
        let v1 = claims(
            serde_json::json!({"sub": "user_1", "org_id": "org_A1", "org_role": "org:admin"}),
        );
        let v2 = claims(
            serde_json::json!({"sub": "user_1", "v": 2, "o": {"id": "org_A1", "rol": "admin"}}),
        );

        assert_eq!(v1.organization().unwrap(), v2.organization().unwrap());
    }

    #[test]
    fn a_legacy_role_without_prefix_gets_one() {
        let v1 = claims(serde_json::json!({"sub": "u", "org_id": "org_A1", "org_role": "admin"}));

        let OrgOutcome::Active(org) = v1.organization().unwrap() else {
            panic!()
        };

        assert_eq!(org.role.as_deref(), Some("org:admin"));
    }

    #[test]
    fn a_v2_token_never_reads_the_v1_claim() {
        let v2 = claims(serde_json::json!({"sub": "u", "v": 2, "org_id": "org_A1"}));

        assert_eq!(v2.organization().unwrap(), OrgOutcome::NoOrganization);
    }

    #[test]
    fn pending_sessions_have_no_organization() {
        let v2 = claims(
            serde_json::json!({"sub": "u", "v": 2, "sts": "pending", "o": {"id": "org_A1"}}),
        );

        assert_eq!(v2.organization().unwrap(), OrgOutcome::NoOrganization);
    }

    #[test]
    fn unknown_versions_are_rejected() {
        for v in [
            serde_json::json!(3),
            serde_json::json!("2"),
            serde_json::json!(1),
        ] {
            let c = claims(serde_json::json!({"sub": "u", "v": v, "o": {"id": "org_A1"}}));

            assert!(c.organization().is_err());
        }
    }

    #[test]
    fn organization_ids_must_look_like_clerk_ids() {
        assert!(is_org_id("org_2abcXYZ9"));
        for bad in ["", "org_", "org_a-b", "xorg_a", "org_ä", "org_a b"] {
            assert!(!is_org_id(bad), "{bad}");
        }
    }
}
