//! Generated requests, thrown at the real server: token soups, nested
//! selections over the real schema's fields, deep and odd variables, on POST,
//! batches and GET. Every answer must be a well-formed response whose errors
//! all carry a stable code, and never `INTERNAL`, a 500 or a dropped
//! connection.

use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app_with};

/// The codes a client can be sent. `INTERNAL` is not among them: nothing a
/// client sends may cause one.
const STABLE_CODES: [&str; 10] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "RATE_LIMITED",
    "BUDGET_EXCEEDED",
    "SERVICE_UNAVAILABLE",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
];

/// Field and argument names of the real schema, so generated documents reach
/// past the parser into validation, pricing and resolvers.
const NAMES: [&str; 24] = [
    "viewer",
    "tickets",
    "ticket",
    "queues",
    "queue",
    "teams",
    "services",
    "catalogItems",
    "myApprovals",
    "ticketEvents",
    "nodes",
    "edges",
    "node",
    "id",
    "title",
    "number",
    "service",
    "openTickets",
    "linkedTickets",
    "approvals",
    "members",
    "comments",
    "__typename",
    "__schema",
];

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(":".to_owned()),
        Just("...".to_owned()),
        Just("$x".to_owned()),
        Just("@skip(if: true)".to_owned()),
        Just("query".to_owned()),
        Just("mutation".to_owned()),
        Just("subscription".to_owned()),
        Just("fragment F on Query".to_owned()),
        Just("...F".to_owned()),
        Just("first: 100".to_owned()),
        Just("#".to_owned()),
        Just("\"\"\"".to_owned()),
        prop::sample::select(&NAMES[..]).prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
    ]
}

/// A token soup: mostly not GraphQL at all.
fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 0..120).prop_map(|tokens| tokens.join(" "))
}

/// A nested selection over the schema's names, sometimes very deep.
fn selection() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(&NAMES[..]).prop_map(str::to_owned);
    leaf.prop_recursive(40, 200, 4, |inner| {
        (
            prop::sample::select(&NAMES[..]),
            prop::option::of(prop_oneof![
                (0i64..300).prop_map(|n| format!("(first: {n})")),
                Just("(id: \"VGlja2V0OjE\")".to_owned()),
                Just("(first: $x)".to_owned()),
            ]),
            prop::collection::vec(inner, 1..4),
        )
            .prop_map(|(name, args, children)| {
                format!(
                    "{name}{} {{ {} }}",
                    args.unwrap_or_default(),
                    children.join(" ")
                )
            })
    })
}

/// Real operations whose variable `$x` gets generated values.
const OPERATIONS: [&str; 4] = [
    "mutation($x: CreateIncidentInput!) { createIncident(input: $x) { ticket { id title } } }",
    "query($x: TicketFilterInput) { tickets(filter: $x) { totalCount nodes { id } } }",
    "query($x: String) { users(search: $x) { totalCount } services(search: $x) { totalCount } }",
    "query($x: ID!) { node(id: $x) { id } ticket(id: $x) { id } }",
];

fn document() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(&OPERATIONS[..]).prop_map(str::to_owned),
        soup(),
        selection().prop_map(|s| format!("{{ {s} }}")),
        selection().prop_map(|s| format!("query($x: Int) {{ {s} }}")),
        (1usize..3000).prop_map(|n| format!("{{ a(x: {}1{}) }}", "[".repeat(n), "]".repeat(n))),
    ]
}

/// Variables: JSON of every shape, strings with control characters included.
fn variables() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        Just(json!("nul\u{0}byte")),
    ];
    // Keys of real inputs, so values reach coercion and the services.
    let key = prop_oneof![
        "[a-z]{1,4}",
        prop::sample::select(
            &[
                "title",
                "description",
                "impact",
                "urgency",
                "idempotencyKey",
                "search",
                "queueIds",
                "statuses",
                "open",
                "serviceId",
            ][..]
        )
        .prop_map(str::to_owned),
    ];
    leaf.prop_recursive(48, 300, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// How a request travels.
#[derive(Debug, Clone, Copy)]
enum Path {
    Post,
    Batch,
    Get,
}

fn path() -> impl Strategy<Value = Path> {
    prop_oneof![Just(Path::Post), Just(Path::Batch), Just(Path::Get)]
}

/// Checks one answer's errors; returns a failure message.
fn check_errors(body: &Value) -> Result<(), String> {
    let Some(errors) = body.get("errors") else {
        return Ok(());
    };
    for error in errors.as_array().into_iter().flatten() {
        let code = error["extensions"]["code"].as_str().unwrap_or("(none)");
        if !STABLE_CODES.contains(&code) {
            return Err(format!("error without a stable code: {error}"));
        }
    }
    Ok(())
}

async fn one(
    app: &TestApp,
    token: &str,
    path: Path,
    query: &str,
    variables: &Value,
) -> Result<(), String> {
    let request = match path {
        Path::Post => app
            .client
            .post(app.url("/graphql"))
            .json(&json!({"query": query, "variables": {"x": variables}})),
        Path::Batch => app.client.post(app.url("/graphql")).json(&json!([
            {"query": "{ __typename }"},
            {"query": query, "variables": {"x": variables}},
        ])),
        Path::Get => {
            let variables = json!({"x": variables}).to_string();
            if query.len() + variables.len() > 8_000 {
                // Too long for a URL; POST covers it.
                return Ok(());
            }
            app.client
                .get(app.url("/graphql"))
                .query(&[("query", query), ("variables", variables.as_str())])
        }
    };
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("no answer (dropped connection?): {}", e.without_url()))?;
    let status = response.status();
    let allowed = [
        StatusCode::OK,
        StatusCode::BAD_REQUEST,
        StatusCode::METHOD_NOT_ALLOWED,
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::TOO_MANY_REQUESTS,
    ];
    let text = response.text().await.map_err(|e| format!("body: {e}"))?;
    if !allowed.contains(&status) {
        return Err(format!("status {status}: {text}"));
    }
    let body: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))?;
    match &body {
        Value::Array(answers) => answers.iter().try_for_each(check_errors),
        answer => check_errors(answer),
    }
}

fn run(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = runtime.block_on(spawn_app_with(backend, &["--rate-limit", "0"]));
    let token = app.token("fuzzer", itsm::auth::Role::Admin);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (path(), document(), variables());
    runner
        .run(&strategy, |(path, query, variables)| {
            runtime
                .block_on(one(&app, &token, path, &query, &variables))
                .map_err(TestCaseError::fail)
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    // And the server still serves.
    let (status, body) = runtime.block_on(app.graphql("{ __typename }", None));
    assert_eq!(status, StatusCode::OK, "{body}");
    drop(app);
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
}

#[test]
fn generated_requests_always_get_an_answer_with_a_stable_code_on_sqlite() {
    run(Backend::Sqlite);
}

#[test]
#[ignore = "needs ITSM_TEST_POSTGRES_URL"]
fn generated_requests_always_get_an_answer_with_a_stable_code_on_postgres() {
    run(Backend::Postgres);
}
