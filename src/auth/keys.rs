//! Clerk's public signing keys: fetched from a JWKS endpoint and cached, or one static PEM.
//!
//! The cached set has an absolute lifetime ([`KEYS_TTL`], not extended by use). Once it has
//! expired, the next request still uses it and starts a refresh in the background, so no
//! request waits on the key server for a key we already hold. A token whose `kid` is unknown
//! waits for a refresh, shared by every request asking at the same time and made at most once
//! per [`REFRESH_COOLDOWN`], so a flood of made-up kids cannot turn into a flood of fetches.
//! When the endpoint fails or hangs, the last good set keeps serving.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use url::Url;

/// How long a fetched key set is trusted before it is fetched again.
pub const KEYS_TTL: Duration = Duration::from_secs(300);
/// The least time between two fetches, once a key set is loaded.
pub const REFRESH_COOLDOWN: Duration = Duration::from_secs(30);
/// The least time between two fetches while no key set was ever loaded.
const COLD_RETRY: Duration = Duration::from_secs(1);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// Why no key could be found for a token.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The key set is loaded but has no key with this id.
    UnknownKid,
    /// No key set was ever loaded and the endpoint does not answer.
    Unavailable,
}

/// Where verification keys come from.
pub enum KeyStore {
    /// One PEM public key, used for every token whatever its `kid`.
    Static(Arc<DecodingKey>),
    /// A JWKS endpoint.
    Jwks(Arc<JwksCache>),
}

impl KeyStore {
    /// The key for `kid`.
    pub async fn key(&self, kid: Option<&str>) -> Result<Arc<DecodingKey>, KeyError> {
        match self {
            Self::Static(key) => Ok(key.clone()),
            Self::Jwks(cache) => cache.key(kid.ok_or(KeyError::UnknownKid)?).await,
        }
    }
}

#[derive(Default)]
struct Loaded {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    /// The last fetch an unknown kid asked for.
    last_forced: Option<Instant>,
    /// Increases with every fetch attempt, so waiters can tell that one happened meanwhile.
    attempts: u64,
}

/// A cached JWKS, refreshed on expiry and on unknown key ids.
pub struct JwksCache {
    url: Url,
    client: reqwest::Client,
    state: RwLock<Loaded>,
    /// Held while fetching, so concurrent requests wait for one fetch instead of making many.
    fetching: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
    ttl: Duration,
    cooldown: Duration,
}

impl JwksCache {
    /// A cache for the JWKS at `url`, trusting a fetched set for `ttl` and fetching at most
    /// once per `cooldown`; nothing is fetched until asked.
    pub fn new(url: Url, ttl: Duration, cooldown: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client with only timeouts set always builds");
        Self {
            url,
            client,
            state: RwLock::new(Loaded::default()),
            fetching: tokio::sync::Mutex::new(()),
            fetches: Default::default(),
            failures: Default::default(),
            ttl,
            cooldown,
        }
    }

    /// The JWKS address.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// How many fetches were attempted since start.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many fetches failed since start.
    pub fn failure_count(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many keys the current set holds.
    pub fn key_count(&self) -> usize {
        self.state.read().expect("lock poisoned").keys.len()
    }

    /// The key for `kid`, refreshing the set when it is stale or lacks that kid.
    pub async fn key(self: &Arc<Self>, kid: &str) -> Result<Arc<DecodingKey>, KeyError> {
        let (found, fresh, attempts) = self.lookup(kid);
        if let Some(key) = found {
            if !fresh {
                // Serve with the key we hold; refresh without making anyone wait.
                let cache = self.clone();
                tokio::spawn(async move { cache.refresh_if_due(attempts, false).await });
            }
            return Ok(key);
        }

        self.refresh_if_due(attempts, true).await;

        let (after, _, _) = self.lookup(kid);
        match after {
            Some(key) => Ok(key),
            None if self
                .state
                .read()
                .expect("lock poisoned")
                .fetched_at
                .is_none() =>
            {
                Err(KeyError::Unavailable)
            }
            None => Err(KeyError::UnknownKid),
        }
    }

    fn lookup(&self, kid: &str) -> (Option<Arc<DecodingKey>>, bool, u64) {
        let state = self.state.read().expect("lock poisoned");
        let fresh = state.fetched_at.is_some_and(|t| t.elapsed() < self.ttl);
        (state.keys.get(kid).cloned(), fresh, state.attempts)
    }

    /// Fetches the set unless another request did since `seen_attempts` or a limit holds:
    /// a refresh for an unknown kid (`forced`) at most once per cooldown, a refresh of an
    /// expired set at most once per cooldown after the last attempt, and while no set was
    /// ever loaded, at most once per [`COLD_RETRY`]. Unforced callers never wait for a
    /// fetch that is already under way.
    async fn refresh_if_due(&self, seen_attempts: u64, forced: bool) {
        let _guard = if forced {
            self.fetching.lock().await
        } else {
            match self.fetching.try_lock() {
                Ok(guard) => guard,
                Err(_) => return,
            }
        };
        {
            let mut state = self.state.write().expect("lock poisoned");
            if state.attempts != seen_attempts {
                return; // someone fetched while we waited: use their result
            }
            let within = |t: Option<Instant>, d: Duration| t.is_some_and(|t| t.elapsed() < d);
            let due = if state.fetched_at.is_none() {
                !within(state.last_attempt, COLD_RETRY.min(self.cooldown))
            } else if forced {
                !within(state.last_forced, self.cooldown)
            } else {
                !within(state.last_attempt, self.cooldown)
            };
            if !due {
                return;
            }
            if forced && state.fetched_at.is_some() {
                state.last_forced = Some(Instant::now());
            }
        }
        // fetch logs its own outcome; callers read the resulting state.
        let _ = self.fetch().await;
    }

    /// Fetches the set now; on failure the previous set stays. Returns the number of keys held.
    pub async fn fetch(&self) -> Result<usize, String> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = self.download().await;
        let mut state = self.state.write().expect("lock poisoned");
        state.attempts += 1;
        state.last_attempt = Some(Instant::now());
        match result {
            Ok(keys) => {
                let count = keys.len();
                state.keys = keys;
                state.fetched_at = Some(Instant::now());
                tracing::info!(jwks.url = %self.url, jwks.keys = count, "signing keys loaded");
                Ok(count)
            }
            Err(why) => {
                self.failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    jwks.url = %self.url,
                    jwks.keys_kept = state.keys.len(),
                    error = %why,
                    "signing keys could not be fetched; keeping the last good set"
                );
                Err(why)
            }
        }
    }

    async fn download(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let response = self
            .client
            .get(self.url.clone())
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let set: JwkSet = response
            .json()
            .await
            .map_err(|e| format!("not a JWKS: {e}"))?;
        let keys = usable_keys(&set);
        if keys.is_empty() {
            return Err("the JWKS holds no RSA signing key with a kid".to_owned());
        }
        Ok(keys)
    }
}

/// The RSA keys of `set` meant for signatures, by `kid`; everything else is skipped.
fn usable_keys(set: &JwkSet) -> HashMap<String, Arc<DecodingKey>> {
    set.keys
        .iter()
        .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::RSA(_)))
        .filter(|jwk| {
            matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            )
        })
        .filter(|jwk| matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256)))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, Arc::new(key)))
        })
        .collect()
}
