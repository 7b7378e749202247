//! An identity provider's signing keys, fetched from its JSON Web Key Set
//! (directly, or through OpenID Connect discovery) and cached.
//!
//! - A token's key is the one its `kid` names, used only with the algorithms
//!   configured (and the one the key itself names, if it does).
//! - The set is kept for its `Cache-Control: max-age`, held between a floor
//!   and a ceiling. A stale set goes on serving while a fresh one is fetched
//!   in the background, and keeps serving when the provider is down: the last
//!   good set is never dropped for a failed fetch.
//! - An unknown `kid` (a rotation) fetches the set again at once, but fetches
//!   are at least the floor apart and never run two at a time, so a flood of
//!   made-up `kid`s costs the provider at most one request per floor.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use jsonwebtoken::{
    Algorithm, DecodingKey, Header,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse},
};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key set or discovery document read.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Where the key set is found.
#[derive(Debug, Clone)]
pub enum KeySetSource {
    /// The key set's own URL.
    Jwks(String),
    /// An OpenID Connect issuer, whose discovery document names the set.
    Issuer(String),
}

/// The key set's fetches, for `/metrics`.
#[derive(Debug, Default)]
pub struct KeySetStats {
    fetched: AtomicU64,
    failed: AtomicU64,
    throttled: AtomicU64,
    keys: AtomicU64,
    /// Unix seconds of the last good fetch; 0 before it.
    last_success: AtomicU64,
}

impl prometheus_client::collector::Collector for KeySetStats {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> std::fmt::Result {
        use crate::metrics::{write_counters, write_gauges};
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let gauge = |counter: &AtomicU64| i64::try_from(load(counter)).unwrap_or(i64::MAX);
        write_counters(
            &mut encoder,
            (
                "jwks_fetches",
                "Fetches of the identity provider's key set, by result (ok or error).",
                None,
            ),
            &[
                (&[("result", "ok")], load(&self.fetched)),
                (&[("result", "error")], load(&self.failed)),
            ],
        )?;
        write_counters(
            &mut encoder,
            (
                "jwks_fetches_throttled",
                "Fetches wanted (an unknown kid, say) but not made: the last attempt was under the cache floor ago.",
                None,
            ),
            &[(&[], load(&self.throttled))],
        )?;
        write_gauges(
            &mut encoder,
            ("jwks_keys", "Keys in the key set now serving.", None),
            &[(&[], gauge(&self.keys))],
        )?;
        write_gauges(
            &mut encoder,
            (
                "jwks_last_success_timestamp_seconds",
                "When the key set was last fetched (Unix time; 0 before the first fetch).",
                None,
            ),
            &[(&[], gauge(&self.last_success))],
        )?;
        Ok(())
    }
}

/// The provider's keys, as last fetched.
pub struct RemoteKeys {
    source: KeySetSource,
    client: reqwest::Client,
    algorithms: Vec<Algorithm>,
    floor: Duration,
    ceiling: Duration,
    cache: RwLock<Cache>,
    /// Held while fetching: one fetch at a time, and when the last one began.
    fetching: Mutex<Fetching>,
    stats: Arc<KeySetStats>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Key>,
    /// When the set should be fetched again; `None` before the first fetch.
    fresh_until: Option<Instant>,
    /// Bumped by every successful fetch.
    generation: u64,
}

#[derive(Default)]
struct Fetching {
    last_attempt: Option<Instant>,
    jwks_uri: Option<String>,
}

#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// Why no key checks a token. For the log only.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the token's algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    #[error("no key with kid {0:?} in the identity provider's key set")]
    UnknownKid(String),
    #[error("the token names no kid and the key set holds more than one key")]
    NoKid,
    #[error("the key {kid:?} is not for {algorithm:?}")]
    WrongKeyType { kid: String, algorithm: Algorithm },
    #[error("no key set fetched yet: {0}")]
    Unavailable(String),
}

impl RemoteKeys {
    /// Keys from `source`, accepted for `algorithms`, cached between `floor` and `ceiling`.
    pub fn new(
        source: KeySetSource,
        algorithms: Vec<Algorithm>,
        floor: Duration,
        ceiling: Duration,
    ) -> anyhow::Result<Arc<Self>> {
        if algorithms.is_empty() {
            bail!("ITSM_JWKS_ALGORITHMS names no algorithm");
        }
        if let Some(secret) = algorithms.iter().find(|a| **a == Algorithm::HS256) {
            bail!(
                "{secret:?} uses a shared secret, not a published key: it cannot come from a key set"
            );
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .context("could not build the HTTP client for the key set")?;
        Ok(Arc::new(Self {
            source,
            client,
            algorithms,
            floor,
            ceiling: ceiling.max(floor),
            cache: RwLock::default(),
            fetching: Mutex::default(),
            stats: Arc::default(),
        }))
    }

    /// The fetches' counters.
    pub fn stats(&self) -> Arc<KeySetStats> {
        self.stats.clone()
    }

    /// The key that checks a token with `header`, and its algorithm.
    pub async fn key_for(
        self: &Arc<Self>,
        header: &Header,
    ) -> Result<(DecodingKey, Algorithm), KeyError> {
        let algorithm = header.alg;
        if !self.algorithms.contains(&algorithm) {
            return Err(KeyError::Algorithm(algorithm));
        }
        let (found, fresh, fetched, generation) = {
            let cache = self.cache.read().await;
            let fresh = cache
                .fresh_until
                .is_some_and(|until| Instant::now() < until);
            (
                pick(&cache, header),
                fresh,
                cache.fresh_until.is_some(),
                cache.generation,
            )
        };
        match found {
            Ok(key) => {
                if !fresh {
                    // Serve the known key now; fetch a fresh set behind it.
                    let keys = self.clone();
                    tokio::spawn(async move { keys.refresh(generation).await });
                }
                usable(key, header)
            }
            // No fetch tells which of several keys a kid-less token meant.
            Err(KeyError::NoKid) if fetched => Err(KeyError::NoKid),
            Err(_) => {
                // A rotation (or a made-up kid): fetch again, if the floor allows.
                let error = self.refresh(generation).await.err();
                let cache = self.cache.read().await;
                match pick(&cache, header) {
                    Ok(key) => usable(key, header),
                    Err(_) if cache.fresh_until.is_none() => Err(KeyError::Unavailable(
                        error.map_or_else(|| "not fetched yet".into(), |e| format!("{e:#}")),
                    )),
                    Err(missing) => Err(missing),
                }
            }
        }
    }

    /// Fetches the set unless another fetch has succeeded since `seen`, or
    /// the last attempt began less than the floor ago.
    async fn refresh(&self, seen: u64) -> anyhow::Result<()> {
        let mut fetching = self.fetching.lock().await;
        if self.cache.read().await.generation != seen {
            return Ok(());
        }
        if fetching
            .last_attempt
            .is_some_and(|last| last.elapsed() < self.floor)
        {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        fetching.last_attempt = Some(Instant::now());
        match self.fetch(&mut fetching).await {
            Ok((keys, max_age)) => {
                let keep = max_age
                    .unwrap_or(self.ceiling)
                    .clamp(self.floor, self.ceiling);
                let mut cache = self.cache.write().await;
                tracing::info!(
                    keys = keys.len(),
                    kids = ?keys.keys().collect::<Vec<_>>(),
                    keep_seconds = keep.as_secs(),
                    "identity provider key set fetched"
                );
                self.stats.fetched.fetch_add(1, Ordering::Relaxed);
                self.stats.keys.store(
                    u64::try_from(keys.len()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_secs());
                self.stats.last_success.store(now, Ordering::Relaxed);
                cache.keys = keys;
                cache.fresh_until = Some(Instant::now() + keep);
                cache.generation += 1;
                Ok(())
            }
            Err(error) => {
                // The last good set stays; the next attempt waits for the floor.
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not fetch the identity provider's key set; keeping the last one"
                );
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                fetching.jwks_uri = None;
                Err(error)
            }
        }
    }

    async fn fetch(
        &self,
        fetching: &mut Fetching,
    ) -> anyhow::Result<(HashMap<String, Key>, Option<Duration>)> {
        let url = match (&self.source, &fetching.jwks_uri) {
            (KeySetSource::Jwks(url), _) => url.clone(),
            (KeySetSource::Issuer(_), Some(uri)) => uri.clone(),
            (KeySetSource::Issuer(issuer), None) => {
                let uri = self.discover(issuer).await?;
                fetching.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let (bytes, max_age) = self.get(&url).await?;
        let set: JwkSet = serde_json::from_slice(&bytes)
            .with_context(|| format!("{url} is not a JSON Web Key Set"))?;
        Ok((self.keys_of(set), max_age))
    }

    /// The `jwks_uri` of `issuer`'s discovery document, which must name the issuer itself.
    async fn discover(&self, issuer: &str) -> anyhow::Result<String> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let (bytes, _) = self.get(&url).await?;
        let document: Discovery = serde_json::from_slice(&bytes)
            .with_context(|| format!("{url} is not an OpenID Connect discovery document"))?;
        if document.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            bail!(
                "{url} names the issuer {:?}, not {issuer:?}",
                document.issuer
            );
        }
        Ok(document.jwks_uri)
    }

    /// GETs `url`; returns the body and its `Cache-Control: max-age`.
    async fn get(&self, url: &str) -> anyhow::Result<(Vec<u8>, Option<Duration>)> {
        let response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET {url}: {status}");
        }
        let max_age = response
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(max_age);
        if response
            .content_length()
            .is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64)
        {
            bail!("GET {url}: the document is larger than {MAX_DOCUMENT_BYTES} bytes");
        }
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("GET {url}"))?;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            bail!("GET {url}: the document is larger than {MAX_DOCUMENT_BYTES} bytes");
        }
        Ok((bytes.to_vec(), max_age))
    }

    /// The signing keys of `set` this service may use, by `kid`.
    fn keys_of(&self, set: JwkSet) -> HashMap<String, Key> {
        let mut keys = HashMap::new();
        for (index, jwk) in set.keys.iter().enumerate() {
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let by_type: &[Algorithm] = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => &[Algorithm::RS256, Algorithm::PS256],
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    &[Algorithm::ES256]
                }
                AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                    &[Algorithm::EdDSA]
                }
                _ => &[],
            };
            let named = jwk.common.key_algorithm.map(algorithm_of);
            let algorithms: Vec<Algorithm> = by_type
                .iter()
                .copied()
                .filter(|a| named.is_none_or(|named| named == *a))
                .filter(|a| self.algorithms.contains(a))
                .collect();
            if algorithms.is_empty() {
                continue;
            }
            let kid = jwk
                .common
                .key_id
                .clone()
                .unwrap_or_else(|| format!("#{index}"));
            match DecodingKey::from_jwk(jwk) {
                Ok(decoding) => {
                    keys.insert(
                        kid,
                        Key {
                            decoding,
                            algorithms,
                        },
                    );
                }
                Err(error) => tracing::warn!(%kid, %error, "a key of the key set cannot be used"),
            }
        }
        keys
    }
}

/// The key a token names: by `kid`, or the only key when it names none.
fn pick(cache: &Cache, header: &Header) -> Result<Key, KeyError> {
    match &header.kid {
        Some(kid) => cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| KeyError::UnknownKid(kid.clone())),
        None if cache.keys.len() == 1 => cache.keys.values().next().cloned().ok_or(KeyError::NoKid),
        None => Err(KeyError::NoKid),
    }
}

fn usable(key: Key, header: &Header) -> Result<(DecodingKey, Algorithm), KeyError> {
    if key.algorithms.contains(&header.alg) {
        Ok((key.decoding, header.alg))
    } else {
        Err(KeyError::WrongKeyType {
            kid: header.kid.clone().unwrap_or_default(),
            algorithm: header.alg,
        })
    }
}

/// The algorithm a key names for itself. One this service never takes from
/// a key set (RS384, say) maps to HS256, which no key set may be used with,
/// so the key is left out.
fn algorithm_of(named: KeyAlgorithm) -> Algorithm {
    match named {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => Algorithm::HS256,
    }
}

/// The `max-age` of a `Cache-Control` value.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| seconds.trim().trim_matches('"').parse::<u64>().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("MAX-AGE=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
