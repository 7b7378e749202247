//! Persisted queries: Apollo's automatic persisted queries (APQ) and an
//! allow-list of known operations.
//!
//! APQ: a client sends `extensions.persistedQuery = {version: 1, sha256Hash}`
//! without the query. When this replica knows the hash, the stored text runs;
//! when not, the answer is `PERSISTED_QUERY_NOT_FOUND` and the client sends
//! the hash with the text, which registers it. A GET with only the hash is a
//! short, cacheable URL. Registered texts live in a bounded LRU per replica:
//! a client that meets a replica that never saw its hash just registers again.
//!
//! Allow-list (`--persisted-queries only`): only the operations of a manifest
//! run, named by id or sent as their exact text; nothing can be registered.
//! What mobile apps ship with, so a stolen token cannot run arbitrary queries.
//!
//! Resolution happens in `prepare_request`, before the document is parsed, so
//! a stored text passes every limit a sent one does, on every transport.

use std::{
    collections::{HashMap, HashSet},
    num::NonZeroUsize,
    path::Path,
    sync::{Arc, Mutex},
};

use anyhow::{Context as _, bail};
use async_graphql::{
    Request, ServerError, ServerResult, Value,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    },
    parser::types::ExecutableDocument,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::PersistedQueries as Mode;

/// The request extension clients put the hash in.
const EXTENSION: &str = "persistedQuery";

/// The code (and Apollo's message) of a hash this replica does not know.
pub const NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
/// The code of a hash sent to a server that does not take them.
pub const NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";
/// The code of an operation outside the allow-list.
pub const NOT_ALLOWED: &str = "PERSISTED_QUERY_NOT_ALLOWED";

/// What the server knows of persisted queries.
pub struct PersistedStore {
    mode: Mode,
    /// The manifest's texts by id, and by the SHA-256 of their text.
    manifest: HashMap<String, Arc<str>>,
    /// Registered texts (APQ), least recently used first out.
    registered: Option<Mutex<lru::LruCache<String, Arc<str>>>>,
}

impl PersistedStore {
    /// A store in `mode`, preloaded with the manifest at `manifest`.
    pub fn new(mode: Mode, manifest: Option<&Path>, capacity: usize) -> anyhow::Result<Self> {
        let manifest = match manifest {
            Some(path) => load_manifest(path)?,
            None if mode == Mode::Only => {
                bail!("--persisted-queries only needs --persisted-query-manifest")
            }
            None => HashMap::new(),
        };
        let registered = (mode == Mode::Auto).then(|| {
            Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            ))
        });
        Ok(Self {
            mode,
            manifest,
            registered,
        })
    }

    /// The text stored for `hash`, if any: what a hash-only request runs.
    pub fn lookup(&self, hash: &str) -> Option<Arc<str>> {
        if let Some(text) = self.manifest.get(hash) {
            return Some(text.clone());
        }
        let registered = self.registered.as_ref()?;
        registered.lock().ok()?.get(hash).cloned()
    }

    /// The text a request runs when it names a persisted query without
    /// sending it (for checks made before execution, such as GET's).
    pub fn text_of(&self, request: &Request) -> Option<Arc<str>> {
        if !request.query.is_empty() || self.mode == Mode::Off {
            return None;
        }
        let hash = requested(request).ok()??;
        self.lookup(&hash)
    }

    /// Fills in the query of `request` from its hash, checks it against the
    /// allow-list, and returns a text to register once it has parsed.
    fn resolve(&self, request: &mut Request) -> ServerResult<Option<(String, Arc<str>)>> {
        let hash = requested(request)?;
        request.extensions.remove(EXTENSION);
        let Some(hash) = hash else {
            if self.mode == Mode::Only && !self.manifest.contains_key(&sha256(&request.query)) {
                return Err(not_allowed());
            }
            return Ok(None);
        };
        if self.mode == Mode::Off {
            return Err(coded(
                "PersistedQueryNotSupported: this server takes full queries only",
                NOT_SUPPORTED,
            ));
        }
        if request.query.is_empty() {
            return match self.lookup(&hash) {
                Some(text) => {
                    request.query = text.to_string();
                    Ok(None)
                }
                None if self.mode == Mode::Only => Err(not_allowed()),
                // Apollo's clients look for this exact message.
                None => Err(coded("PersistedQueryNotFound", NOT_FOUND)),
            };
        }
        if sha256(&request.query) != hash {
            return Err(coded(
                "the persisted query's sha256Hash is not the SHA-256 of the query sent with it",
                "BAD_USER_INPUT",
            ));
        }
        match self.mode {
            Mode::Only if !self.manifest.contains_key(&hash) => Err(not_allowed()),
            Mode::Auto if !self.manifest.contains_key(&hash) => {
                Ok(Some((hash, Arc::from(request.query.as_str()))))
            }
            _ => Ok(None),
        }
    }

    fn register(&self, hash: String, text: Arc<str>) {
        if let Some(Ok(mut registered)) = self.registered.as_ref().map(|r| r.lock()) {
            registered.put(hash, text);
        }
    }
}

/// The hash a request names in `extensions.persistedQuery`, checked.
fn requested(request: &Request) -> ServerResult<Option<String>> {
    let Some(value) = request.extensions.get(EXTENSION) else {
        return Ok(None);
    };
    #[derive(Deserialize)]
    struct Persisted {
        version: i64,
        #[serde(rename = "sha256Hash")]
        sha256_hash: String,
    }
    let bad = || {
        coded(
            "`extensions.persistedQuery` must be {\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}",
            "BAD_USER_INPUT",
        )
    };
    let persisted: Persisted = async_graphql::from_value(value.clone()).map_err(|_| bad())?;
    let hash = persisted.sha256_hash.to_ascii_lowercase();
    if persisted.version != 1 || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(Some(hash))
}

fn not_allowed() -> ServerError {
    coded(
        "this server runs only the operations of its persisted-query manifest",
        NOT_ALLOWED,
    )
}

fn coded(message: &str, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
}

/// The lowercase hex SHA-256 of `text`, as APQ and Apollo's manifests name queries.
pub fn sha256(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// Reads a manifest: Apollo's `{"format": "apollo-persisted-query-manifest",
/// "operations": [{"id", "body", …}]}` or a plain object of id to text (as
/// Relay writes them). Every text must parse; each is found by its id and by
/// its SHA-256.
fn load_manifest(path: &Path) -> anyhow::Result<HashMap<String, Arc<str>>> {
    #[derive(Deserialize)]
    struct Operation {
        id: String,
        body: String,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Manifest {
        Apollo { operations: Vec<Operation> },
        Map(HashMap<String, String>),
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading the persisted-query manifest {}", path.display()))?;
    let manifest: Manifest = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is neither an Apollo persisted-query manifest nor an object of id to query text",
            path.display()
        )
    })?;
    let operations: Vec<(String, String)> = match manifest {
        Manifest::Apollo { operations } => operations.into_iter().map(|o| (o.id, o.body)).collect(),
        Manifest::Map(map) => map.into_iter().collect(),
    };
    let mut by_key = HashMap::new();
    let mut ids = HashSet::new();
    for (id, body) in operations {
        async_graphql::parser::parse_query(&body).with_context(|| {
            format!(
                "operation {id} of the manifest {} does not parse",
                path.display()
            )
        })?;
        if !ids.insert(id.clone()) {
            bail!("the manifest {} names {id} twice", path.display());
        }
        let body: Arc<str> = Arc::from(body);
        by_key.insert(sha256(&body), body.clone());
        by_key.insert(id.to_ascii_lowercase(), body);
    }
    Ok(by_key)
}

/// Resolves persisted queries for every request, on every transport.
pub struct PersistedQueryExtension(pub Arc<PersistedStore>);

impl ExtensionFactory for PersistedQueryExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Resolver {
            store: self.0.clone(),
            pending: Mutex::default(),
        })
    }
}

struct Resolver {
    store: Arc<PersistedStore>,
    /// A text to register once it has parsed: garbage is never stored.
    pending: Mutex<Option<(String, Arc<str>)>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Resolver {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let register = self.store.resolve(&mut request)?;
        if let Ok(mut pending) = self.pending.lock() {
            *pending = register;
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &async_graphql::Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let pending = self.pending.lock().ok().and_then(|mut p| p.take());
        if let Some((hash, text)) = pending {
            self.store.register(hash, text);
        }
        Ok(document)
    }
}

/// Reads a JSON `extensions` object (GET's query parameter) into a request's.
pub fn extensions_from_json(
    json: serde_json::Value,
) -> Result<HashMap<String, Value>, &'static str> {
    match json {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(key, value)| {
                Value::from_json(value)
                    .map(|value| (key, value))
                    .map_err(|_| "`extensions` holds a value GraphQL cannot carry")
            })
            .collect(),
        _ => Err("`extensions` must be a JSON object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: &str = "{ viewer { id } }";

    fn with_hash(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        request.extensions.insert(
            EXTENSION.into(),
            Value::from_json(serde_json::json!({"version": 1, "sha256Hash": hash})).expect("works"),
        );
        request
    }

    fn code(error: &ServerError) -> String {
        match error.extensions.as_ref().and_then(|e| e.get("code")) {
            Some(Value::String(code)) => code.clone(),
            other => panic!("no code: {other:?}"),
        }
    }

    #[test]
    fn sha256_is_lowercase_hex_of_the_text() {
        // `printf '{ viewer { id } }' | sha256sum`
        assert_eq!(
            sha256(QUERY),
            "3c5cde484c335605fe71515655ff4723f67a754f9af53cb4c54aed06e64f87ee"
        );
        assert_ne!(sha256(QUERY), sha256("{ viewer { subject } }"));
    }

    #[test]
    fn a_miss_then_a_registration_then_a_hit() {
        let store = PersistedStore::new(Mode::Auto, None, 10).expect("works");
        let hash = sha256(QUERY);
        let error = store
            .resolve(&mut with_hash("", &hash))
            .expect_err("refused");
        assert_eq!(code(&error), NOT_FOUND);
        assert_eq!(error.message, "PersistedQueryNotFound");
        let register = store.resolve(&mut with_hash(QUERY, &hash)).expect("works");
        let (key, text) = register.expect("a text to register");
        store.register(key, text);
        let mut hit = with_hash("", &hash);
        assert_eq!(store.resolve(&mut hit).expect("works"), None);
        assert_eq!(hit.query, QUERY);
        assert!(!hit.extensions.contains_key(EXTENSION));
    }

    #[test]
    fn a_hash_that_is_not_the_texts_is_refused() {
        let store = PersistedStore::new(Mode::Auto, None, 10).expect("works");
        let error = store
            .resolve(&mut with_hash(QUERY, &sha256("{ other }")))
            .expect_err("refused");
        assert_eq!(code(&error), "BAD_USER_INPUT");
        for bad in ["abc", &"g".repeat(64)] {
            let error = store.resolve(&mut with_hash("", bad)).expect_err("refused");
            assert_eq!(code(&error), "BAD_USER_INPUT");
        }
    }

    #[test]
    fn off_refuses_hashes_but_runs_full_queries() {
        let store = PersistedStore::new(Mode::Off, None, 10).expect("works");
        let error = store
            .resolve(&mut with_hash("", &sha256(QUERY)))
            .expect_err("refused");
        assert_eq!(code(&error), NOT_SUPPORTED);
        assert!(store.resolve(&mut Request::new(QUERY)).is_ok());
    }

    #[test]
    fn the_cache_keeps_the_most_recently_used() {
        let store = PersistedStore::new(Mode::Auto, None, 2).expect("works");
        for text in ["{ a }", "{ b }", "{ c }"] {
            store.register(sha256(text), Arc::from(text));
        }
        assert!(store.lookup(&sha256("{ a }")).is_none());
        assert!(store.lookup(&sha256("{ c }")).is_some());
    }

    #[test]
    fn only_mode_runs_the_manifest_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("itsm-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("works");
        let path = dir.join("manifest.json");
        std::fs::write(
            &path,
            serde_json::json!({
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": "op-1", "name": "Me", "type": "query", "body": QUERY}]
            })
            .to_string(),
        )
        .expect("works");
        let store = PersistedStore::new(Mode::Only, Some(&path), 10).expect("works");
        // By id, by hash, and as the exact text.
        for request in [
            &mut with_hash("", &"0".repeat(64)),
            &mut Request::new("{ viewer { subject } }"),
        ] {
            assert_eq!(
                code(&store.resolve(request).expect_err("refused")),
                NOT_ALLOWED
            );
        }
        let mut by_hash = with_hash("", &sha256(QUERY));
        assert_eq!(store.resolve(&mut by_hash).expect("works"), None);
        assert_eq!(by_hash.query, QUERY);
        assert!(store.resolve(&mut Request::new(QUERY)).is_ok());
        assert_eq!(store.lookup("op-1").as_deref(), Some(QUERY));
        // Registering is refused too.
        let text = "{ viewer { email } }";
        let error = store
            .resolve(&mut with_hash(text, &sha256(text)))
            .expect_err("refused");
        assert_eq!(code(&error), NOT_ALLOWED);
        assert!(PersistedStore::new(Mode::Only, None, 10).is_err());
        std::fs::write(&path, r#"{"bad": "{ not closed"}"#).expect("works");
        let error = PersistedStore::new(Mode::Auto, Some(&path), 10)
            .err()
            .expect("a manifest that does not parse is refused");
        assert!(format!("{error:#}").contains("bad"), "{error:#}");
        std::fs::remove_dir_all(&dir).expect("works");
    }
}
