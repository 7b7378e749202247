//! Persisted queries through the protocol clients speak: Apollo's automatic
//! persisted queries over POST, GET and the WebSocket, and the allow-list
//! mode that runs only a manifest's operations.

use itsm::{auth::Role, graphql::persisted::sha256};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, WsClient, count, spawn_app, spawn_app_with};

crate::on_both_backends!(
    a_hash_miss_then_a_registration_then_hits_over_post_and_get,
    a_registration_must_match_its_hash_and_parse,
    get_runs_no_persisted_mutation,
    subscriptions_run_from_a_hash_over_the_websocket,
    with_persisted_queries_off_hashes_are_not_supported,
    the_allow_list_runs_only_the_manifest,
    a_manifest_that_does_not_parse_stops_the_server_starting,
);

const VIEWER: &str = "query Me { viewer { subject role } }";

fn hash_only(hash: &str) -> Value {
    json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}}})
}

fn with_query(query: &str) -> Value {
    json!({
        "query": query,
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(query)}}
    })
}

/// `GET /graphql` with only the hash (and variables), as Apollo's link sends it.
async fn get_hash(app: &TestApp, hash: &str, variables: Value, token: &str) -> (StatusCode, Value) {
    let extensions = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}}).to_string();
    let variables = variables.to_string();
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[
            ("extensions", extensions.as_str()),
            ("variables", variables.as_str()),
        ])
        .bearer_auth(token)
        .send()
        .await
        .expect("GET sent");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

/// The code of a request refused over the socket: like every request error
/// there (a parse error, say), a result with errors and no data, then `complete`.
fn ws_error_code(message: &Value) -> &str {
    assert_eq!(message["type"], "next", "{message}");
    assert!(message["payload"]["data"].is_null(), "{message}");
    code(&message["payload"])
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

async fn a_hash_miss_then_a_registration_then_hits_over_post_and_get(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("apq.agent", Role::Agent);
    let hash = sha256(VIEWER);

    let (status, miss) = app.graphql_with(hash_only(&hash), Some(&token)).await;
    // A request error: nothing ran.
    assert_eq!(status, StatusCode::BAD_REQUEST, "{miss}");
    assert_eq!(code(&miss), "PERSISTED_QUERY_NOT_FOUND");
    // Apollo's link matches this message.
    assert_eq!(miss["errors"][0]["message"], "PersistedQueryNotFound");
    assert!(miss.get("data").is_none(), "{miss}");
    let (_, get_miss) = get_hash(&app, &hash, json!({}), &token).await;
    assert_eq!(code(&get_miss), "PERSISTED_QUERY_NOT_FOUND");

    let (_, registered) = app.graphql_with(with_query(VIEWER), Some(&token)).await;
    assert_eq!(
        registered["data"]["viewer"]["subject"], "apq.agent",
        "{registered}"
    );

    let (_, hit) = app.graphql_with(hash_only(&hash), Some(&token)).await;
    assert_eq!(hit["data"]["viewer"]["role"], "AGENT", "{hit}");
    let (status, get_hit) = get_hash(&app, &hash, json!({}), &token).await;
    assert_eq!(status, StatusCode::OK, "{get_hit}");
    assert_eq!(
        get_hit["data"]["viewer"]["subject"], "apq.agent",
        "{get_hit}"
    );

    // The stored text runs for whoever sends the hash, as themselves.
    let other = app.token("apq.requester", Role::Requester);
    let (_, theirs) = app.graphql_with(hash_only(&hash), Some(&other)).await;
    assert_eq!(
        theirs["data"]["viewer"]["subject"], "apq.requester",
        "{theirs}"
    );
    // Hex in capitals names the same query.
    let (_, upper) = app
        .graphql_with(hash_only(&hash.to_uppercase()), Some(&token))
        .await;
    assert_eq!(upper["data"]["viewer"]["role"], "AGENT", "{upper}");
}

async fn a_registration_must_match_its_hash_and_parse(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("apq.agent", Role::Agent);

    let mut wrong = with_query(VIEWER);
    wrong["extensions"]["persistedQuery"]["sha256Hash"] = json!(sha256("{ other }"));
    let (_, body) = app.graphql_with(wrong, Some(&token)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    let (_, still_missing) = app
        .graphql_with(hash_only(&sha256("{ other }")), Some(&token))
        .await;
    assert_eq!(code(&still_missing), "PERSISTED_QUERY_NOT_FOUND");

    // A text that does not parse is not kept.
    let broken = "query { viewer { subject ";
    let (_, body) = app.graphql_with(with_query(broken), Some(&token)).await;
    assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED", "{body}");
    let (_, body) = app
        .graphql_with(hash_only(&sha256(broken)), Some(&token))
        .await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");

    for bad in [
        json!({"version": 2, "sha256Hash": sha256(VIEWER)}),
        json!({"version": 1, "sha256Hash": "abc"}),
        json!({"version": 1}),
        json!("a string"),
    ] {
        let (status, body) = app
            .graphql_with(json!({"extensions": {"persistedQuery": bad}}), Some(&token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(&body), "BAD_USER_INPUT", "{bad}: {body}");
    }
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("extensions", "[1]")])
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
}

async fn get_runs_no_persisted_mutation(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = app.person("apq.admin", Role::Admin).await;
    let queue = app.team_with_queue(&agent, "Desk", &[]).await.1;
    let mutation = "mutation Report($input: CreateIncidentInput!) { createIncident(input: $input) { ticket { id } } }";
    let variables = json!({"input": {"title": "Printer jam", "impact": "LOW", "urgency": "LOW", "queueId": queue}});
    let mut register = with_query(mutation);
    register["variables"] = variables.clone();
    let (_, body) = app.graphql_with(register, Some(&agent.token)).await;
    assert!(
        body["data"]["createIncident"]["ticket"]["id"].is_string(),
        "{body}"
    );

    let conn = app.db.connect().await;
    let before = count(&conn, "SELECT COUNT(*) FROM tickets").await;
    let (status, body) = get_hash(&app, &sha256(mutation), variables, &agent.token).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM tickets").await, before);
}

async fn subscriptions_run_from_a_hash_over_the_websocket(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = app.person("apq.agent", Role::Agent).await;
    let beats = "subscription Beats { heartbeat(intervalSeconds: 1) { seq } }";
    let mut ws = WsClient::signed_in(&app, &agent).await;
    ws.send(json!({"id": "miss", "type": "subscribe", "payload": hash_only(&sha256(beats))}))
        .await;
    let miss = ws.next_of("miss").await;
    assert_eq!(ws_error_code(&miss), "PERSISTED_QUERY_NOT_FOUND", "{miss}");
    assert_eq!(ws.next_of("miss").await["type"], "complete");
    // The same shape as any request error over the socket.
    ws.subscribe("broken", "subscription { heartbeat(", json!({}))
        .await;
    assert_eq!(
        ws_error_code(&ws.next_of("broken").await),
        "GRAPHQL_PARSE_FAILED"
    );

    ws.send(json!({"id": "register", "type": "subscribe", "payload": with_query(beats)}))
        .await;
    let first = ws.next_of("register").await;
    assert_eq!(first["payload"]["data"]["heartbeat"]["seq"], 1, "{first}");
    ws.send(json!({"id": "register", "type": "complete"})).await;

    ws.send(json!({"id": "hit", "type": "subscribe", "payload": hash_only(&sha256(beats))}))
        .await;
    let hit = ws.next_of("hit").await;
    assert_eq!(hit["type"], "next", "{hit}");
    assert_eq!(hit["payload"]["data"]["heartbeat"]["seq"], 1, "{hit}");
}

async fn with_persisted_queries_off_hashes_are_not_supported(backend: Backend) {
    let app = spawn_app_with(backend, &["--persisted-queries", "off"]).await;
    let token = app.token("apq.agent", Role::Agent);
    for body in [hash_only(&sha256(VIEWER)), with_query(VIEWER)] {
        let (_, answer) = app.graphql_with(body, Some(&token)).await;
        assert_eq!(code(&answer), "PERSISTED_QUERY_NOT_SUPPORTED", "{answer}");
    }
    let (_, plain) = app.graphql(VIEWER, Some(&token)).await;
    assert_eq!(plain["data"]["viewer"]["subject"], "apq.agent", "{plain}");
}

/// Writes an Apollo persisted-query manifest beside the test's database.
fn manifest(app_dir: &std::path::Path, operations: &[(&str, &str)]) -> String {
    let operations: Vec<Value> = operations
        .iter()
        .map(
            |(name, body)| json!({"id": sha256(body), "name": name, "type": "query", "body": body}),
        )
        .collect();
    let path = app_dir.join("manifest.json");
    let document = json!({"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations});
    std::fs::write(&path, document.to_string()).expect("manifest written");
    path.to_string_lossy().into_owned()
}

async fn the_allow_list_runs_only_the_manifest(backend: Backend) {
    let db = crate::helpers::TestDatabase::create(backend).await;
    let beats = "subscription Beats { heartbeat(intervalSeconds: 1) { seq } }";
    let path = manifest(db.dir(), &[("Me", VIEWER), ("Beats", beats)]);
    let app = crate::helpers::spawn_on(
        db,
        &[
            "--persisted-queries",
            "only",
            "--persisted-query-manifest",
            &path,
        ],
    )
    .await;
    // (Not `app.person`: its own query is not in the manifest.)
    let token = &app.token("apq.agent", Role::Agent);

    // The manifest's operations run by hash over POST and GET, and as their exact text.
    let (_, by_hash) = app
        .graphql_with(hash_only(&sha256(VIEWER)), Some(token))
        .await;
    assert_eq!(
        by_hash["data"]["viewer"]["subject"], "apq.agent",
        "{by_hash}"
    );
    let (_, by_get) = get_hash(&app, &sha256(VIEWER), json!({}), token).await;
    assert_eq!(by_get["data"]["viewer"]["role"], "AGENT", "{by_get}");
    let (_, by_text) = app.graphql(VIEWER, Some(token)).await;
    assert_eq!(
        by_text["data"]["viewer"]["subject"], "apq.agent",
        "{by_text}"
    );

    // Anything else is refused, registration included, on every transport.
    let other = "{ viewer { email } }";
    for body in [
        json!({"query": other}),
        with_query(other),
        hash_only(&sha256(other)),
        json!({"query": format!("{VIEWER} ")}),
    ] {
        let (status, answer) = app.graphql_with(body.clone(), Some(token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(
            code(&answer),
            "PERSISTED_QUERY_NOT_ALLOWED",
            "{body}: {answer}"
        );
        assert!(answer.get("data").is_none(), "{answer}");
    }
    let (_, still) = app
        .graphql_with(hash_only(&sha256(other)), Some(token))
        .await;
    assert_eq!(code(&still), "PERSISTED_QUERY_NOT_ALLOWED");

    let mut ws = WsClient::signed_in_at(&app.ws_url(), token).await;
    ws.subscribe(
        "free",
        "subscription { heartbeat(intervalSeconds: 2) { seq } }",
        json!({}),
    )
    .await;
    let refused = ws.next_of("free").await;
    assert_eq!(
        ws_error_code(&refused),
        "PERSISTED_QUERY_NOT_ALLOWED",
        "{refused}"
    );
    ws.send(json!({"id": "listed", "type": "subscribe", "payload": hash_only(&sha256(beats))}))
        .await;
    let beat = ws.next_of("listed").await;
    assert_eq!(beat["payload"]["data"]["heartbeat"]["seq"], 1, "{beat}");
}

/// Why the server does not start on `db` with `args`, if it does not.
async fn refused_start(db: &crate::helpers::TestDatabase, args: &[&str]) -> Option<anyhow::Error> {
    let mut argv = vec![
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
        "--jwt-secret",
        crate::helpers::TEST_SECRET,
    ];
    argv.extend_from_slice(args);
    itsm::startup::Application::build(crate::helpers::settings(&argv))
        .await
        .err()
}

async fn a_manifest_that_does_not_parse_stops_the_server_starting(backend: Backend) {
    let db = crate::helpers::TestDatabase::create(backend).await;
    let path = manifest(db.dir(), &[("Broken", "query Broken { viewer { id ")]);
    let error = refused_start(&db, &["--persisted-query-manifest", &path])
        .await
        .expect("the server refuses a broken manifest");
    let message = format!("{error:#}");
    assert!(message.contains("does not parse"), "{message}");

    let error = refused_start(&db, &["--persisted-queries", "only"])
        .await
        .expect("allow-list mode needs a manifest");
    assert!(format!("{error:#}").contains("--persisted-query-manifest"));
}
