//! Tokens already verified, so a client sending the same session token again is not put
//! through RSA verification again.
//!
//! An entry is keyed by the whole token (every byte of it is compared on lookup), holds the
//! tenant it was verified into, the key that verified it and its `exp`, and is only ever
//! made for a token that passed every check. Everything a verification decides from the
//! token alone (header, signature, issuer, claims, organization) cannot change while the
//! token stays the same; what can change is time and the key set, so a hit is honoured only
//! while the token is still inside its `exp` (with the same leeway) and while the key store
//! still hands out the very key that verified it (the caller checks that). Anything else
//! falls back to a full verification.
//!
//! The cache is bounded: when it is full, expired entries are dropped first, then arbitrary
//! ones. Only tokens with a valid signature get in, so nobody can fill it with made-up ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonwebtoken::DecodingKey;

use super::Tenant;

/// How many verified tokens are kept: about 1 KiB each, so well under 8 MiB when full.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A verified token's outcome.
#[derive(Clone)]
pub struct Verified {
    pub tenant: Tenant,
    /// The `kid` of the token's header, to look its key up again.
    pub kid: Option<String>,
    /// The key that verified the signature.
    pub key: Arc<DecodingKey>,
    /// The last second (Unix time) at which the token is still accepted: `exp` + leeway.
    pub valid_until: i64,
}

/// A bounded map from token to its verified outcome.
pub struct TokenCache {
    entries: Mutex<HashMap<Box<str>, Verified>>,
    capacity: usize,
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens (0 disables it).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The outcome cached for `token`, if it is still within its validity at `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<Verified> {
        if self.capacity == 0 {
            return None;
        }
        let mut entries = self.entries.lock().expect("lock poisoned");
        match entries.get(token) {
            Some(v) if now <= v.valid_until => Some(v.clone()),
            Some(_) => {
                entries.remove(token);
                None
            }
            None => None,
        }
    }

    /// Remembers that `token` verified into `verified`.
    pub fn insert(&self, token: &str, verified: Verified, now: i64) {
        if self.capacity == 0 || now > verified.valid_until {
            return;
        }
        let mut entries = self.entries.lock().expect("lock poisoned");
        if entries.len() >= self.capacity && !entries.contains_key(token) {
            entries.retain(|_, v| now <= v.valid_until);
            // Still full: make room for a tenth of the capacity at once, so a full cache
            // does not scan on every insert.
            if entries.len() >= self.capacity {
                let drop: Vec<Box<str>> = entries
                    .keys()
                    .take((self.capacity / 10).max(1))
                    .cloned()
                    .collect();
                for k in drop {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(token.into(), verified);
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.entries.lock().expect("lock poisoned").len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(org: &str, valid_until: i64) -> Verified {
        Verified {
            tenant: Tenant {
                org_id: org.to_owned(),
                user_id: "user_1".to_owned(),
                org_role: None,
                is_admin: false,
            },
            kid: None,
            key: Arc::new(DecodingKey::from_secret(b"k").expect("an HMAC key")),
            valid_until,
        }
    }

    #[test]
    fn a_hit_lasts_until_the_token_expires_and_not_a_second_longer() {
        let cache = TokenCache::new(8);
        cache.insert("tok", verified("org_a", 100), 50);
        assert_eq!(cache.get("tok", 50).unwrap().tenant.org_id, "org_a");
        assert!(cache.get("tok", 100).is_some());
        assert!(cache.get("tok", 101).is_none());
        // The expired entry was dropped, not kept around.
        assert!(cache.is_empty());
    }

    #[test]
    fn only_the_exact_token_hits() {
        let cache = TokenCache::new(8);
        cache.insert("tok", verified("org_a", 100), 50);
        assert!(cache.get("tok ", 50).is_none());
        assert!(cache.get("to", 50).is_none());
    }

    #[test]
    fn an_expired_token_is_never_stored() {
        let cache = TokenCache::new(8);
        cache.insert("tok", verified("org_a", 10), 50);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_never_grows_past_its_bound() {
        let cache = TokenCache::new(20);
        for n in 0..200 {
            cache.insert(&format!("tok{n}"), verified("org_a", 1000), 50);
            assert!(cache.len() <= 20);
        }
        // The newest is always there.
        assert!(cache.get("tok199", 50).is_some());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let cache = TokenCache::new(4);
        cache.insert("old1", verified("org_a", 60), 50);
        cache.insert("old2", verified("org_a", 60), 50);
        cache.insert("live1", verified("org_a", 1000), 50);
        cache.insert("live2", verified("org_a", 1000), 50);
        cache.insert("live3", verified("org_a", 1000), 70);
        assert_eq!(cache.len(), 3);
        for live in ["live1", "live2", "live3"] {
            assert!(cache.get(live, 70).is_some());
        }
    }

    #[test]
    fn capacity_zero_disables_it() {
        let cache = TokenCache::new(0);
        cache.insert("tok", verified("org_a", 100), 50);
        assert!(cache.get("tok", 50).is_none());
    }
}
