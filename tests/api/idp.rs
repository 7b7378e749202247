//! Identity providers: the service checks tokens with the keys a provider
//! publishes (a JSON Web Key Set, found through OpenID Connect discovery),
//! follows key rotations without a restart, keeps serving through a
//! provider outage, and cannot be made to hammer the provider.
//!
//! The provider is a real HTTP server started by the test, serving the
//! discovery document and the key set, counting every request.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use futures_util::StreamExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use reqwest::StatusCode as HttpStatus;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::{Backend, TestApp, spawn_app_with};

crate::on_both_backends!(
    tokens_are_checked_with_the_keys_the_provider_publishes,
    a_key_rotation_is_followed_without_a_restart,
    the_last_good_keys_serve_through_a_provider_outage,
    a_flood_of_unknown_kids_costs_the_provider_one_request,
    each_providers_claim_shape_signs_in_with_the_right_role,
);

/// A signing key of the provider.
#[derive(Clone)]
struct SigningKey {
    kid: &'static str,
    algorithm: Algorithm,
    encoding: EncodingKey,
}

impl SigningKey {
    fn new(kid: &'static str, algorithm: Algorithm, pem_file: &str) -> Self {
        let path = format!("{}/tests/api/keys/{pem_file}", env!("CARGO_MANIFEST_DIR"));
        let pem = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let encoding = match algorithm {
            Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
            other => panic!("no test key for {other:?}"),
        }
        .expect("a test key");
        Self {
            kid,
            algorithm,
            encoding,
        }
    }

    fn rsa() -> Self {
        Self::new("rsa-1", Algorithm::RS256, "rsa-private.pem")
    }

    fn rsa_next() -> Self {
        Self::new("rsa-2", Algorithm::RS256, "rsa2-private.pem")
    }

    /// The public half, as the key set publishes it.
    fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.algorithm).expect("a JWK");
        jwk.common.key_id = Some(self.kid.to_owned());
        serde_json::to_value(jwk).expect("JWK as JSON")
    }

    /// A token for `subject` signed with this key, naming its `kid`.
    fn token(&self, issuer: &str, subject: &str) -> String {
        self.token_with(issuer, subject, Some(self.kid))
    }

    /// A token with `claims` on top of a valid `sub`, `iss` and `exp`.
    fn token_claims(&self, issuer: &str, claims: Value) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let mut body = json!({"iss": issuer, "sub": "someone", "iat": now, "exp": now + 600});
        for (name, value) in claims.as_object().expect("claims").clone() {
            body[name] = value;
        }
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.to_owned());
        jsonwebtoken::encode(&header, &body, &self.encoding).expect("signed")
    }

    fn token_with(&self, issuer: &str, subject: &str, kid: Option<&str>) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = kid.map(str::to_owned);
        let now = jsonwebtoken::get_current_timestamp();
        let claims = json!({
            "iss": issuer, "sub": subject, "role": "agent",
            "iat": now, "exp": now + 600, "email": format!("{subject}@example.com"),
        });
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("signed")
    }
}

/// What the provider serves right now.
#[derive(Default)]
struct Published {
    keys: Vec<Value>,
    down: bool,
    /// `Cache-Control: max-age` of the key set.
    max_age: u64,
}

/// The identity provider under test.
struct Provider {
    issuer: String,
    published: Arc<Mutex<Published>>,
    key_set_requests: watch::Receiver<u64>,
    discovery_requests: Arc<AtomicU64>,
}

#[derive(Clone)]
struct ProviderState {
    issuer: String,
    published: Arc<Mutex<Published>>,
    key_set_requests: Arc<watch::Sender<u64>>,
    discovery_requests: Arc<AtomicU64>,
}

impl Provider {
    async fn start(keys: &[&SigningKey], max_age: u64) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the provider");
        let address: SocketAddr = listener.local_addr().expect("address");
        let issuer = format!("http://{address}/realms/itsm");
        let (requests, key_set_requests) = watch::channel(0);
        let state = ProviderState {
            issuer: issuer.clone(),
            published: Arc::new(Mutex::new(Published {
                keys: keys.iter().map(|k| k.jwk()).collect(),
                down: false,
                max_age,
            })),
            key_set_requests: Arc::new(requests),
            discovery_requests: Arc::default(),
        };
        let router = Router::new()
            .route(
                "/realms/itsm/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/realms/itsm/certs", get(key_set))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            issuer,
            published: state.published,
            key_set_requests,
            discovery_requests: state.discovery_requests,
        }
    }

    fn publish(&self, keys: &[&SigningKey]) {
        self.published.lock().expect("published").keys = keys.iter().map(|k| k.jwk()).collect();
    }

    fn set_down(&self, down: bool) {
        self.published.lock().expect("published").down = down;
    }

    fn key_set_requests(&self) -> u64 {
        *self.key_set_requests.borrow()
    }

    /// Waits until the key set has been asked for `count` times in all.
    async fn key_set_requested(&self, count: u64) {
        let mut requests = self.key_set_requests.clone();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            requests.wait_for(|n| *n >= count),
        )
        .await
        .expect("the key set was asked for in time")
        .expect("the provider runs");
    }
}

async fn discovery(State(state): State<ProviderState>) -> impl IntoResponse {
    state.discovery_requests.fetch_add(1, Ordering::SeqCst);
    if state.published.lock().expect("published").down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Json(json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{}/certs", state.issuer),
        "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
    }))
    .into_response()
}

async fn key_set(State(state): State<ProviderState>) -> impl IntoResponse {
    state.key_set_requests.send_modify(|n| *n += 1);
    let published = state.published.lock().expect("published");
    if published.down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    (
        [(
            axum::http::header::CACHE_CONTROL,
            format!("public, max-age={}", published.max_age),
        )],
        Json(json!({"keys": published.keys})),
    )
        .into_response()
}

/// The service, trusting `provider` through discovery.
async fn service(backend: Backend, provider: &Provider, cache_min: &str) -> TestApp {
    spawn_app_with(
        backend,
        &[
            "--oidc-issuer",
            &provider.issuer,
            "--jwks-algorithms",
            "RS256,PS256,ES256,EdDSA",
            "--jwks-cache-min",
            cache_min,
        ],
    )
    .await
}

/// The status and the viewer's subject (when signed in) for `token`.
async fn sign_in(app: &TestApp, token: &str) -> (HttpStatus, Option<String>) {
    let (status, body) = app.graphql("{ viewer { subject } }", Some(token)).await;
    let subject = body["data"]["viewer"]["subject"]
        .as_str()
        .map(str::to_owned);
    (status, subject)
}

async fn tokens_are_checked_with_the_keys_the_provider_publishes(backend: Backend) {
    let keys = [
        SigningKey::rsa(),
        SigningKey::new("rsa-pss", Algorithm::PS256, "rsa2-private.pem"),
        SigningKey::new("ec-1", Algorithm::ES256, "ec-private.pem"),
        SigningKey::new("ed-1", Algorithm::EdDSA, "ed25519-private.pem"),
    ];
    let provider = Provider::start(&keys.iter().collect::<Vec<_>>(), 300).await;
    let app = service(backend, &provider, "1m").await;
    for key in &keys {
        let subject = format!("user-{}", key.kid);
        assert_eq!(
            sign_in(&app, &key.token(&provider.issuer, &subject)).await,
            (HttpStatus::OK, Some(subject.clone())),
            "{:?}",
            key.algorithm
        );
    }
    // One discovery and one key-set fetch served all four.
    assert_eq!(provider.discovery_requests.load(Ordering::SeqCst), 1);
    assert_eq!(provider.key_set_requests(), 1);

    let rsa = &keys[0];
    // Another issuer, a key the provider does not publish under that kid, a
    // kid used with an algorithm its key is not for, a shared-secret token.
    let stranger = SigningKey::new("rsa-1", Algorithm::RS256, "rsa2-private.pem");
    let wrong_algorithm = SigningKey::new("ec-1", Algorithm::RS256, "rsa-private.pem");
    let refused = [
        rsa.token("http://evil.example/realms/itsm", "mallory"),
        stranger.token(&provider.issuer, "mallory"),
        wrong_algorithm.token(&provider.issuer, "mallory"),
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"iss": provider.issuer, "sub": "mallory", "exp": jsonwebtoken::get_current_timestamp() + 600}),
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef").expect("a secret"),
        )
        .expect("signed"),
    ];
    for token in refused {
        assert_eq!(
            sign_in(&app, &token).await,
            (HttpStatus::UNAUTHORIZED, None)
        );
    }
    // With several keys published, a token must say which one it is.
    let no_kid = rsa.token_with(&provider.issuer, "nobody", None);
    assert_eq!(sign_in(&app, &no_kid).await.0, HttpStatus::UNAUTHORIZED);
}

async fn a_key_rotation_is_followed_without_a_restart(backend: Backend) {
    let (old, new) = (SigningKey::rsa(), SigningKey::rsa_next());
    let provider = Provider::start(&[&old], 3600).await;
    let app = service(backend, &provider, "0s").await;
    let issuer = provider.issuer.clone();
    assert_eq!(
        sign_in(&app, &old.token(&issuer, "before")).await.0,
        HttpStatus::OK
    );

    // The provider adds the next key: its first token fetches the set again.
    provider.publish(&[&old, &new]);
    assert_eq!(
        sign_in(&app, &new.token(&issuer, "after")).await,
        (HttpStatus::OK, Some("after".into()))
    );
    assert_eq!(provider.key_set_requests(), 2);
    // Both stay valid while both are published.
    assert_eq!(
        sign_in(&app, &old.token(&issuer, "before")).await.0,
        HttpStatus::OK
    );

    // The provider retires the old key; the next fetch (here set off by a
    // kid nobody knows) drops it.
    provider.publish(&[&new]);
    let unknown = SigningKey::new("rsa-3", Algorithm::RS256, "rsa2-private.pem");
    assert_eq!(
        sign_in(&app, &unknown.token(&issuer, "x")).await.0,
        HttpStatus::UNAUTHORIZED
    );
    assert_eq!(provider.key_set_requests(), 3);
    assert_eq!(
        sign_in(&app, &old.token(&issuer, "before")).await.0,
        HttpStatus::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(&app, &new.token(&issuer, "after")).await.0,
        HttpStatus::OK
    );
    // Nothing was refetched for the known key.
    assert_eq!(provider.discovery_requests.load(Ordering::SeqCst), 1);
    // The operator sees the same in /metrics.
    assert_eq!(
        app.metric("itsm_jwks_fetches_total{result=\"ok\"}").await,
        provider.key_set_requests()
    );
    assert_eq!(
        app.metric("itsm_jwks_fetches_total{result=\"error\"}")
            .await,
        0
    );
    assert_eq!(app.metric("itsm_jwks_keys").await, 1);
    let fetched = app.metric("itsm_jwks_last_success_timestamp_seconds").await;
    let now = u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970");
    assert!((now - 60..=now).contains(&fetched), "{fetched} vs {now}");
}

async fn the_last_good_keys_serve_through_a_provider_outage(backend: Backend) {
    let (old, new) = (SigningKey::rsa(), SigningKey::rsa_next());
    let provider = Provider::start(&[&old], 0).await;
    provider.set_down(true);
    let app = service(backend, &provider, "0s").await;
    let issuer = provider.issuer.clone();

    // Down from the start: nothing to check tokens with yet.
    assert_eq!(
        sign_in(&app, &old.token(&issuer, "early")).await.0,
        HttpStatus::UNAUTHORIZED
    );
    provider.set_down(false);
    assert_eq!(
        sign_in(&app, &old.token(&issuer, "early")).await.0,
        HttpStatus::OK
    );

    // Down again, with the set already stale (max-age 0): the last good set serves.
    provider.set_down(true);
    let before = provider.key_set_requests();
    for n in 0..5 {
        let subject = format!("during-{n}");
        assert_eq!(
            sign_in(&app, &old.token(&issuer, &subject)).await,
            (HttpStatus::OK, Some(subject))
        );
    }
    // It kept trying, in the background.
    provider.key_set_requested(before + 1).await;
    // A key it never saw cannot be fetched while the provider is down.
    provider.publish(&[&old, &new]);
    assert_eq!(
        sign_in(&app, &new.token(&issuer, "new")).await.0,
        HttpStatus::UNAUTHORIZED
    );

    // Back: the new key is picked up on its first use.
    provider.set_down(false);
    assert_eq!(
        sign_in(&app, &new.token(&issuer, "new")).await,
        (HttpStatus::OK, Some("new".into()))
    );
    // The failed fetches show in /metrics, and the set now serving.
    assert!(
        app.metric("itsm_jwks_fetches_total{result=\"error\"}")
            .await
            >= 2
    );
    assert!(app.metric("itsm_jwks_fetches_total{result=\"ok\"}").await >= 2);
    assert_eq!(app.metric("itsm_jwks_keys").await, 2);
}

async fn a_flood_of_unknown_kids_costs_the_provider_one_request(backend: Backend) {
    let key = SigningKey::rsa();
    let provider = Provider::start(&[&key], 3600).await;
    let app = service(backend, &provider, "10m").await;
    let issuer = provider.issuer.clone();
    assert_eq!(
        sign_in(&app, &key.token(&issuer, "warm")).await.0,
        HttpStatus::OK
    );
    assert_eq!(provider.key_set_requests(), 1);

    let attempts = (0..200).map(|n| {
        let token = key.token_with(&issuer, "mallory", Some(&format!("made-up-{n}")));
        let app = &app;
        async move { sign_in(app, &token).await.0 }
    });
    // Sixteen at a time: under the server's own limit on requests running
    // at once (beyond it, requests are shed with 503 before any key lookup).
    let statuses: Vec<HttpStatus> = futures_util::stream::iter(attempts)
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == HttpStatus::UNAUTHORIZED),
        "{statuses:?}"
    );
    // The last fetch was less than the floor (10 minutes) ago: none of the
    // 200 made-up kids reached the provider.
    assert_eq!(provider.key_set_requests(), 1);
    assert_eq!(
        sign_in(&app, &key.token(&issuer, "still")).await.0,
        HttpStatus::OK
    );
    // Each made-up kid wanted a fetch the floor held back.
    assert_eq!(app.metric("itsm_jwks_fetches_throttled_total").await, 200);
    assert_eq!(
        app.metric("itsm_jwks_fetches_total{result=\"ok\"}").await,
        1
    );
}

/// A provider's token shape: what it is, the settings for it, the claims, and
/// the viewer's `(role, displayName, email)` (`None`: refused).
type Shape = (
    &'static str,
    &'static [&'static str],
    Value,
    Option<(&'static str, &'static str, &'static str)>,
);

/// Keycloak, Entra ID, Auth0 and Okta put roles in different claims, under
/// their own names; the settings say where and what they mean here.
async fn each_providers_claim_shape_signs_in_with_the_right_role(backend: Backend) {
    let key = SigningKey::rsa();
    let provider = Provider::start(&[&key], 300).await;
    let issuer = provider.issuer.clone();
    let shapes: [Shape; 6] = [
        (
            "Keycloak: realm and client roles, the highest wins",
            &[
                "--jwt-role-claim",
                "realm_access.roles,resource_access.itsm.roles",
                "--jwt-role-map",
                "itsm-agent=AGENT,itsm-admin=ADMIN",
            ],
            json!({
                "sub": "kc-1", "preferred_username": "kim", "email": "kim@example.com",
                "realm_access": {"roles": ["offline_access", "itsm-agent"]},
                "resource_access": {"itsm": {"roles": ["itsm-admin"]}},
            }),
            Some(("ADMIN", "kim", "kim@example.com")),
        ),
        (
            "Entra ID: app roles in `roles`, the app id URI as audience, the UPN as email",
            &[
                "--jwt-role-map",
                "Helpdesk.Agent=AGENT,Helpdesk.Manager=MANAGER",
                "--jwt-audience",
                "api://itsm",
            ],
            json!({
                "sub": "entra-1", "aud": "api://itsm", "name": "Erin Entra",
                "upn": "erin@contoso.example", "roles": ["Helpdesk.Manager"],
            }),
            Some(("MANAGER", "Erin Entra", "erin@contoso.example")),
        ),
        (
            "Auth0: a namespaced claim",
            &[
                "--jwt-role-claim",
                "https://itsm.example.com/roles",
                "--jwt-role-map",
                "helpdesk=AGENT",
            ],
            json!({
                "sub": "auth0|42", "name": "Ash", "email": "ash@example.com",
                "https://itsm.example.com/roles": ["helpdesk"],
            }),
            Some(("AGENT", "Ash", "ash@example.com")),
        ),
        (
            "Okta: groups, names from given_name and family_name",
            &[
                "--jwt-role-claim",
                "groups",
                "--jwt-role-map",
                "ITSM Admins=ADMIN",
            ],
            json!({
                "sub": "okta-1", "given_name": "Grace", "family_name": "Hopper",
                "email": "grace@example.com", "groups": ["Everyone", "ITSM Admins"],
            }),
            Some(("ADMIN", "Grace Hopper", "grace@example.com")),
        ),
        (
            "A mapped provider: an unmapped group named like our role grants nothing",
            &[
                "--jwt-role-claim",
                "groups",
                "--jwt-role-map",
                "ITSM Admins=ADMIN",
            ],
            json!({"sub": "okta-2", "email": "o@example.com", "groups": ["admin"]}),
            Some(("REQUESTER", "o@example.com", "o@example.com")),
        ),
        (
            "No known role, with the default set to refuse",
            &[
                "--jwt-role-claim",
                "groups",
                "--jwt-role-map",
                "ITSM Admins=ADMIN",
                "--jwt-default-role",
                "none",
            ],
            json!({"sub": "okta-3", "groups": ["Everyone"]}),
            None,
        ),
    ];
    for (shape, settings, claims, expected) in shapes {
        let mut args = vec!["--oidc-issuer", issuer.as_str()];
        args.extend_from_slice(settings);
        let app = spawn_app_with(backend, &args).await;
        let token = key.token_claims(&issuer, claims);
        let (status, body) = app
            .graphql("{ viewer { role displayName email } }", Some(&token))
            .await;
        match expected {
            Some((role, name, email)) => {
                assert_eq!(status, HttpStatus::OK, "{shape}: {body}");
                assert_eq!(
                    body["data"]["viewer"],
                    json!({"role": role, "displayName": name, "email": email}),
                    "{shape}"
                );
            }
            None => {
                assert_eq!(status, HttpStatus::UNAUTHORIZED, "{shape}: {body}");
                assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
            }
        }
    }
}
