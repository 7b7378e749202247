//! GraphQL over HTTP: methods, limits, batching, errors and request ids.

use itsm::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, error_code, spawn_app, spawn_app_with};

crate::on_both_backends!(
    queries_work_over_get_and_mutations_over_get_get_405,
    queries_deeper_than_the_limit_are_rejected,
    queries_more_complex_than_the_limit_are_rejected,
    graphiql_introspection_passes_the_default_limits,
    batches_run_up_to_the_cap_and_larger_ones_are_refused,
    oversized_and_non_json_bodies_are_refused_with_clear_errors,
    request_ids_are_kept_or_made_and_always_echoed,
    suggestions_appear_only_in_development_mode,
    internal_errors_show_a_request_id_and_hide_the_cause,
    graphiql_the_sdl_and_unknown_paths_are_served,
);

async fn queries_work_over_get_and_mutations_over_get_get_405(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("getter", Role::Agent);
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ viewer { subject } }")])
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["viewer"]["subject"], "getter", "{body}");

    for (query, name) in [
        ("mutation { __typename }", None),
        (
            "query Q { __typename } mutation M { __typename }",
            Some("M"),
        ),
        ("subscription { heartbeat { seq } }", None),
    ] {
        let mut params = vec![("query", query)];
        if let Some(name) = name {
            params.push(("operationName", name));
        }
        let response = app
            .client
            .get(app.url("/graphql"))
            .query(&params)
            .bearer_auth(&token)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{query}");
        assert_eq!(
            response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok()),
            Some("POST")
        );
        let body: Value = response.json().await.expect("json");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("POST"))
        );
    }
}

/// A query of depth `5 + levels`: `ofType` nested `levels` times below
/// `__schema { types { fields { type`, beside a normal field.
fn deep_query(levels: usize) -> String {
    format!(
        "{{ viewer {{ id }} __schema {{ types {{ fields {{ type {}{{ name }}{} }} }} }} }}",
        "{ ofType ".repeat(levels),
        " }".repeat(levels)
    )
}

async fn queries_deeper_than_the_limit_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("deep", Role::Agent);
    // The default limit is 12.
    let (status, body) = app.graphql(&deep_query(7), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("errors").is_none(), "depth 12 is allowed: {body}");
    let (_, body) = app.graphql(&deep_query(8), Some(&token)).await;
    assert_eq!(
        error_code(&body),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("depth 13 exceeds the limit of 12"),
        "{message}"
    );
    assert_eq!(body["data"], Value::Null, "nothing ran");

    let shallow = spawn_app_with(backend, &["--graphql-max-depth", "1"]).await;
    let (_, body) = shallow
        .graphql("{ viewer { id } }", Some(&shallow.token("d", Role::Agent)))
        .await;
    assert_eq!(
        error_code(&body),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
}

async fn queries_more_complex_than_the_limit_are_rejected(backend: Backend) {
    let app = spawn_app_with(backend, &["--graphql-max-complexity", "5"]).await;
    let token = app.token("complex", Role::Agent);
    let (_, body) = app
        .graphql("{ viewer { id subject email role } }", Some(&token))
        .await;
    assert!(
        body.get("errors").is_none(),
        "complexity 5 is allowed: {body}"
    );
    let (_, body) = app
        .graphql(
            "{ a: viewer { id subject } b: viewer { id subject } }",
            Some(&token),
        )
        .await;
    assert_eq!(
        error_code(&body),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too complex"))
    );
}

/// The introspection query GraphiQL sends.
const GRAPHIQL_INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

async fn graphiql_introspection_passes_the_default_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = app.graphql(GRAPHIQL_INTROSPECTION, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
}

async fn batches_run_up_to_the_cap_and_larger_ones_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, &["--graphql-max-batch", "3"]).await;
    let token = app.token("batcher", Role::Agent);
    let op = json!({"query": "{ viewer { subject } }"});
    let (status, body) = app.graphql_with(json!([op, op, op]), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let answers = body.as_array().map(Vec::len);
    assert_eq!(answers, Some(3), "{body}");
    assert_eq!(body[2]["data"]["viewer"]["subject"], "batcher");

    let (status, body) = app
        .graphql_with(json!([op, op, op, op]), Some(&token))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    let (status, _) = app.graphql_with(json!([]), Some(&token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let single = spawn_app_with(backend, &["--graphql-max-batch", "1"]).await;
    let (status, body) = single.graphql_with(json!([op]), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not accepted"))
    );
}

async fn oversized_and_non_json_bodies_are_refused_with_clear_errors(backend: Backend) {
    let app = spawn_app_with(backend, &["--max-body-bytes", "1024"]).await;
    let big = json!({"query": format!("{{ __typename }} # {}", "x".repeat(2048))});
    let (status, _) = app.graphql_with(big, None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "text/plain")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), Some("GRAPHQL_PARSE_FAILED"), "{body}");

    let (status, body) = app.graphql("{ viewer { id ", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), Some("GRAPHQL_PARSE_FAILED"), "{body}");
}

async fn request_ids_are_kept_or_made_and_always_echoed(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-me-123")
    );
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .expect("sent");
    let made = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert!(made.is_some_and(|id| id.len() >= 32), "a fresh id is made");
}

async fn suggestions_appear_only_in_development_mode(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, body) = app.graphql("{ viewr { id } }", None).await;
    let message = body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("viewr"), "{message}");
    assert!(
        !message.to_lowercase().contains("did you mean"),
        "{message}"
    );

    let dev = spawn_app_with(backend, &["--dev"]).await;
    let (_, body) = dev.graphql("{ viewr { id } }", None).await;
    let message = body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.to_lowercase().contains("did you mean"), "{message}");
}

async fn internal_errors_show_a_request_id_and_hide_the_cause(backend: Backend) {
    let app = spawn_app(backend).await;
    let conn = app.db.connect().await;
    sea_orm::ConnectionTrait::execute_unprepared(&conn, "ALTER TABLE users RENAME TO users_gone")
        .await
        .expect("rename table");
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(app.token("unlucky", Role::Agent))
        .header("x-request-id", "req-internal-1")
        .json(&json!({"query": "{ viewer { id } }"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), Some("INTERNAL"), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["requestId"],
        "req-internal-1"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert_eq!(message, "internal error (request id req-internal-1)");
    let text = body.to_string().to_lowercase();
    for leak in ["users", "table", "relation", "sql"] {
        assert!(!text.contains(leak), "leaks `{leak}`: {body}");
    }
}

async fn graphiql_the_sdl_and_unknown_paths_are_served(backend: Backend) {
    let app = spawn_app(backend).await;
    let page = app.client.get(app.url("/")).send().await.expect("sent");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("text");
    assert!(html.to_lowercase().contains("graphiql"));
    assert!(html.contains("/explorer/explorer.js"));

    let sdl = app
        .client
        .get(app.url("/schema.graphql"))
        .send()
        .await
        .expect("sent");
    assert_eq!(sdl.status(), StatusCode::OK);
    assert_eq!(sdl.text().await.expect("text"), itsm::graphql::sdl());

    let missing = app.client.get(app.url("/nope")).send().await.expect("sent");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(error_code(&body), Some("NOT_FOUND"));
}
