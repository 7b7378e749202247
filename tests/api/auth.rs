//! JWT authentication, roles and just-in-time provisioning.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures_util::future::join_all;
use itsm::auth::{Claims, Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TEST_SECRET, count, error_code, spawn_app, spawn_app_with};

crate::on_both_backends!(
    viewer_answers_for_every_role,
    viewer_without_a_token_is_unauthenticated,
    bad_tokens_get_401_with_a_message_that_names_no_check,
    expiry_allows_the_configured_leeway_and_no_more,
    issuer_and_audience_are_enforced_when_configured,
    rs256_tokens_verify_with_a_pem_public_key,
    es256_tokens_verify_with_a_pem_public_key,
    hs256_tokens_signed_with_the_public_key_are_refused_under_rs256,
    roles_come_from_a_configured_claim_and_the_highest_wins,
    twenty_concurrent_first_requests_create_one_user,
    twenty_newcomers_at_once_all_get_in,
    later_tokens_keep_email_and_name_in_step,
    node_shows_users_to_themselves_and_to_managers_only,
);

const RSA_PRIVATE: &str = include_str!("keys/rsa-private.pem");
const EC_PRIVATE: &str = include_str!("keys/ec-private.pem");

fn key_path(name: &str) -> String {
    format!("{}/tests/api/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn sign(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).expect("sign")
}

fn secret_key(secret: &[u8]) -> EncodingKey {
    EncodingKey::from_secret(secret).expect("an HMAC key")
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &secret_key(TEST_SECRET.as_bytes()),
        claims,
    )
}

fn valid_claims(sub: &str) -> Value {
    json!({ "sub": sub, "exp": now() + 600, "role": "agent" })
}

async fn assert_rejected(app: &crate::helpers::TestApp, token: &str, case: &str) {
    let (status, body) = app.graphql("{ viewer { id } }", Some(token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{case}: {body}");
    assert_eq!(
        body["errors"][0]["message"], "invalid or expired token",
        "{case}: the message must not say which check failed"
    );
}

async fn viewer_answers_for_every_role(backend: Backend) {
    let app = spawn_app(backend).await;
    for (role, name) in [
        (Role::Requester, "REQUESTER"),
        (Role::Integration, "INTEGRATION"),
        (Role::Agent, "AGENT"),
        (Role::Manager, "MANAGER"),
        (Role::Admin, "ADMIN"),
    ] {
        let subject = format!("user-{name}");
        let viewer = app.viewer(&app.token(&subject, role)).await;
        assert_eq!(viewer["subject"], subject);
        assert_eq!(viewer["role"], name);
        assert_eq!(viewer["email"], format!("{subject}@example.com"));
        assert_eq!(viewer["displayName"], format!("Test {subject}"));
        assert!(
            viewer["id"]
                .as_str()
                .is_some_and(|id| !id.contains(&subject))
        );
    }
}

async fn viewer_without_a_token_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = app.graphql("{ viewer { id } }", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["viewer"]));
    // A query that needs no viewer still works anonymously.
    let (status, body) = app.graphql("{ __typename }", None).await;
    assert_eq!(
        (status, &body["data"]["__typename"]),
        (StatusCode::OK, &json!("Query"))
    );
}

async fn bad_tokens_get_401_with_a_message_that_names_no_check(backend: Backend) {
    let app = spawn_app(backend).await;
    let other_secret = secret_key(b"another-secret-that-is-long-enough-0123");
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa key");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(valid_claims("mallory").to_string())
    );
    let cases = [
        ("expired", hs256(&json!({"sub": "a", "exp": now() - 120}))),
        (
            "bad signature",
            sign(Algorithm::HS256, &other_secret, &valid_claims("a")),
        ),
        (
            "another HMAC algorithm",
            sign(
                Algorithm::HS384,
                &secret_key(TEST_SECRET.as_bytes()),
                &valid_claims("a"),
            ),
        ),
        ("alg none", unsigned),
        (
            "RS256 under HS256",
            sign(Algorithm::RS256, &rsa, &valid_claims("a")),
        ),
        ("no sub", hs256(&json!({"exp": now() + 600}))),
        ("empty sub", hs256(&json!({"sub": " ", "exp": now() + 600}))),
        (
            "numeric sub",
            hs256(&json!({"sub": 42, "exp": now() + 600})),
        ),
        ("no exp", hs256(&json!({"sub": "a"}))),
        (
            "not yet valid",
            hs256(&json!({"sub": "a", "exp": now() + 900, "nbf": now() + 300})),
        ),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (case, token) in &cases {
        assert_rejected(&app, token, case).await;
    }
    // Not a Bearer credential at all.
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
    // Nothing was provisioned for any of them.
    let conn = app.db.connect().await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM users").await, 0);
}

async fn expiry_allows_the_configured_leeway_and_no_more(backend: Backend) {
    let app = spawn_app(backend).await;
    let recently = hs256(&json!({"sub": "late", "exp": now() - 10}));
    assert_eq!(app.viewer(&recently).await["subject"], "late");
    let long_ago = hs256(&json!({"sub": "late", "exp": now() - 45}));
    assert_rejected(&app, &long_ago, "expired beyond the default 30 s leeway").await;

    let strict = spawn_app_with(backend, &["--jwt-secret", TEST_SECRET, "--jwt-leeway", "0"]).await;
    assert_rejected(&strict, &recently, "expired with no leeway").await;
}

async fn issuer_and_audience_are_enforced_when_configured(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            "--jwt-secret",
            TEST_SECRET,
            "--jwt-issuer",
            "https://idp.example",
            "--jwt-audience",
            "itsm,portal",
        ],
    )
    .await;
    let with = |extra: Value| {
        let mut claims = valid_claims("ivy");
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            claims.extend(extra.clone());
        }
        hs256(&claims)
    };
    let good = with(json!({"iss": "https://idp.example", "aud": "portal"}));
    assert_eq!(app.viewer(&good).await["subject"], "ivy");
    let good_list = with(json!({"iss": "https://idp.example", "aud": ["other", "itsm"]}));
    assert_eq!(app.viewer(&good_list).await["subject"], "ivy");
    for (case, token) in [
        (
            "wrong issuer",
            with(json!({"iss": "https://evil.example", "aud": "itsm"})),
        ),
        ("no issuer", with(json!({"aud": "itsm"}))),
        (
            "wrong audience",
            with(json!({"iss": "https://idp.example", "aud": "billing"})),
        ),
        ("no audience", with(json!({"iss": "https://idp.example"}))),
    ] {
        assert_rejected(&app, &token, case).await;
    }
    // `itsm token` mints tokens that satisfy the configured checks.
    assert_eq!(
        app.viewer(&app.token("minted", Role::Agent)).await["role"],
        "AGENT"
    );
}

async fn rs256_tokens_verify_with_a_pem_public_key(backend: Backend) {
    let public = key_path("rsa-public.pem");
    let private = key_path("rsa-private.pem");
    let app = spawn_app_with(
        backend,
        &[
            "--jwt-algorithm",
            "RS256",
            "--jwt-public-key",
            &public,
            "--jwt-private-key",
            &private,
        ],
    )
    .await;
    let viewer = app.viewer(&app.token("rita", Role::Manager)).await;
    assert_eq!(
        (viewer["subject"].as_str(), viewer["role"].as_str()),
        (Some("rita"), Some("MANAGER"))
    );
    // An ES256 token is refused: exactly one algorithm is accepted.
    let ec = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("ec key");
    assert_rejected(
        &app,
        &sign(Algorithm::ES256, &ec, &valid_claims("a")),
        "ES256 under RS256",
    )
    .await;
}

async fn es256_tokens_verify_with_a_pem_public_key(backend: Backend) {
    // The public key may be given inline as PEM text, as container secrets often are.
    let public = std::fs::read_to_string(key_path("ec-public.pem")).expect("read key");
    let inline = format!("--jwt-public-key={public}");
    let app = spawn_app_with(backend, &["--jwt-algorithm", "es256", &inline]).await;
    let ec = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("ec key");
    let token = sign(Algorithm::ES256, &ec, &valid_claims("eve"));
    assert_eq!(app.viewer(&token).await["subject"], "eve");
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa key");
    assert_rejected(
        &app,
        &sign(Algorithm::RS256, &rsa, &valid_claims("a")),
        "RS256 under ES256",
    )
    .await;
}

async fn hs256_tokens_signed_with_the_public_key_are_refused_under_rs256(backend: Backend) {
    let public = key_path("rsa-public.pem");
    let app = spawn_app_with(
        backend,
        &["--jwt-algorithm", "RS256", "--jwt-public-key", &public],
    )
    .await;
    let pem = std::fs::read(&public).expect("read key");
    let forged = sign(
        Algorithm::HS256,
        &secret_key(&pem),
        &valid_claims("mallory"),
    );
    assert_rejected(&app, &forged, "HS256 keyed with the RSA public key").await;
}

async fn roles_come_from_a_configured_claim_and_the_highest_wins(backend: Backend) {
    let app = spawn_app(backend).await;
    let token =
        hs256(&json!({"sub": "r1", "exp": now() + 600, "roles": ["requester", "Agent", "bogus"]}));
    assert_eq!(app.viewer(&token).await["role"], "AGENT");
    let token = hs256(&json!({"sub": "r2", "exp": now() + 600, "role": "wizard"}));
    assert_eq!(app.viewer(&token).await["role"], "REQUESTER");
    let token = hs256(&json!({"sub": "r3", "exp": now() + 600}));
    assert_eq!(app.viewer(&token).await["role"], "REQUESTER");

    let keycloak = spawn_app_with(
        backend,
        &[
            "--jwt-secret",
            TEST_SECRET,
            "--jwt-role-claim",
            "realm_access.roles",
        ],
    )
    .await;
    let token = hs256(&json!({
        "sub": "k1", "exp": now() + 600,
        "role": "admin",
        "realm_access": {"roles": ["offline_access", "MANAGER"]}
    }));
    assert_eq!(keycloak.viewer(&token).await["role"], "MANAGER");
}

async fn twenty_concurrent_first_requests_create_one_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("newcomer", Role::Requester);
    let requests = (0..20).map(|_| app.graphql("{ viewer { id subject } }", Some(&token)));
    let responses = join_all(requests).await;
    let mut ids = Vec::new();
    for (status, body) in responses {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        ids.push(body["data"]["viewer"]["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every request saw the same user");
    let conn = app.db.connect().await;
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM users WHERE subject = 'newcomer'"
        )
        .await,
        1
    );
}

/// Twenty different first requests at once are twenty concurrent writes; on
/// SQLite none of them may fail with "database is locked".
async fn twenty_newcomers_at_once_all_get_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens: Vec<String> = (0..20)
        .map(|i| app.token(&format!("newcomer-{i}"), Role::Requester))
        .collect();
    let responses = join_all(
        tokens
            .iter()
            .map(|t| app.graphql("{ viewer { subject } }", Some(t))),
    )
    .await;
    for (status, body) in responses {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
    let conn = app.db.connect().await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM users").await, 20);
}

async fn later_tokens_keep_email_and_name_in_step(backend: Backend) {
    let app = spawn_app(backend).await;
    let claims = |email: Option<&str>, name: Option<&str>, role| Claims {
        subject: "sam".into(),
        email: email.map(str::to_owned),
        name: name.map(str::to_owned),
        role,
        grants: itsm::auth::Grants::default(),
    };
    let first = app
        .viewer(&app.token_for(&claims(
            Some("sam@old.example"),
            Some("Sam"),
            Role::Requester,
        )))
        .await;
    let changed = app
        .viewer(&app.token_for(&claims(
            Some("sam@new.example"),
            Some("Samuel"),
            Role::Agent,
        )))
        .await;
    assert_eq!(changed["id"], first["id"]);
    assert_eq!(changed["email"], "sam@new.example");
    assert_eq!(changed["displayName"], "Samuel");
    assert_eq!(changed["role"], "AGENT");
    // Claims a token leaves out keep their stored values.
    let sparse = app
        .viewer(&app.token_for(&claims(None, None, Role::Agent)))
        .await;
    assert_eq!(sparse["email"], "sam@new.example");
    assert_eq!(sparse["displayName"], "Samuel");
    let conn = app.db.connect().await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM users").await, 1);
}

async fn node_shows_users_to_themselves_and_to_managers_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice", Role::Agent);
    let bob = app.token("bob", Role::Requester);
    let boss = app.token("boss", Role::Manager);
    let alice_id = app.viewer(&alice).await["id"]
        .as_str()
        .map(str::to_owned)
        .expect("id");
    app.viewer(&bob).await;
    let query = format!(r#"{{ node(id: "{alice_id}") {{ id ... on User {{ subject }} }} }}"#);
    let (_, own) = app.graphql(&query, Some(&alice)).await;
    assert_eq!(own["data"]["node"]["subject"], "alice", "{own}");
    let (_, other) = app.graphql(&query, Some(&bob)).await;
    assert_eq!(other["data"]["node"], Value::Null, "{other}");
    assert!(
        other.get("errors").is_none(),
        "hidden looks like absent: {other}"
    );
    let (_, manager) = app.graphql(&query, Some(&boss)).await;
    assert_eq!(manager["data"]["node"]["subject"], "alice", "{manager}");
    let (_, bad) = app
        .graphql(r#"{ node(id: "nonsense") { id } }"#, Some(&alice))
        .await;
    assert_eq!(error_code(&bad), Some("BAD_USER_INPUT"), "{bad}");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "id");
    let (_, anonymous) = app.graphql(&query, None).await;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "{anonymous}"
    );
}
