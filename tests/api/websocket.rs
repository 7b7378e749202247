//! GraphQL over WebSocket: both protocols, authentication in `connection_init`.

use itsm::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::{connect_async, tungstenite::client::IntoClientRequest};

use crate::helpers::{Backend, WsClient as Client, spawn_app, spawn_app_with};

crate::on_both_backends!(
    a_good_token_is_acknowledged_and_operations_run,
    a_bad_token_closes_the_socket_with_4403,
    an_anonymous_connection_is_acknowledged_but_viewer_needs_a_token,
    the_legacy_graphql_ws_protocol_works_too,
    a_socket_without_connection_init_is_closed_with_4408,
    an_upgrade_without_a_graphql_subprotocol_is_refused,
    an_operation_before_the_handshake_closes_with_4401,
    a_duplicate_operation_id_closes_with_4409,
    operations_past_the_cap_get_an_error_of_their_own,
    the_server_keeps_idle_sockets_alive,
    an_expiring_token_closes_the_socket_with_4403,
    shutting_down_closes_sockets_with_1001,
);

const BEAT: &str = "subscription { heartbeat(intervalSeconds: 60) { seq } }";

fn subscribe(id: &str, query: &str) -> Value {
    json!({"id": id, "type": "subscribe", "payload": {"query": query}})
}

async fn an_operation_before_the_handshake_closes_with_4401(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = Client::connect(&app, "graphql-transport-ws").await;
    ws.send(subscribe("1", BEAT)).await;
    let (code, _) = ws.close_code().await;
    assert_eq!(code, 4401);
}

async fn a_duplicate_operation_id_closes_with_4409(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = Client::connect(&app, "graphql-transport-ws").await;
    ws.send(init(&app.token("dup", Role::Agent))).await;
    assert_eq!(ws.next().await["type"], "connection_ack");
    ws.send(subscribe("same", BEAT)).await;
    assert_eq!(ws.next().await["payload"]["data"]["heartbeat"]["seq"], 1);
    ws.send(subscribe("same", BEAT)).await;
    let (code, _) = ws.close_code().await;
    assert_eq!(code, 4409);
}

async fn operations_past_the_cap_get_an_error_of_their_own(backend: Backend) {
    let app = spawn_app_with(backend, &["--ws-max-subscriptions", "2"]).await;
    let mut ws = Client::connect(&app, "graphql-transport-ws").await;
    ws.send(init(&app.token("busy", Role::Agent))).await;
    assert_eq!(ws.next().await["type"], "connection_ack");
    ws.send(subscribe("a", BEAT)).await;
    ws.send(subscribe("b", BEAT)).await;
    let mut started = vec![ws.next().await["id"].clone(), ws.next().await["id"].clone()];
    started.sort_by_key(ToString::to_string);
    assert_eq!(started, vec![json!("a"), json!("b")]);
    ws.send(subscribe("c", BEAT)).await;
    let refused = ws.next_of("c").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    // Completing one makes room; the socket stayed open all along.
    ws.send(json!({"id": "a", "type": "complete"})).await;
    ws.send(subscribe("d", BEAT)).await;
    assert_eq!(ws.next_of("d").await["type"], "next");
}

async fn the_server_keeps_idle_sockets_alive(backend: Backend) {
    let app = spawn_app_with(backend, &["--ws-keepalive", "1s"]).await;
    for (protocol, kind) in [("graphql-transport-ws", "ping"), ("graphql-ws", "ka")] {
        let mut ws = Client::connect(&app, protocol).await;
        ws.send(init(&app.token("idle", Role::Requester))).await;
        assert_eq!(ws.next().await["type"], "connection_ack");
        let beat = ws.raw_within(std::time::Duration::from_secs(3)).await;
        assert_eq!(
            beat.map(|b| b["type"].clone()),
            Some(json!(kind)),
            "{protocol}"
        );
    }
}

async fn an_expiring_token_closes_the_socket_with_4403(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            "--jwt-secret",
            crate::helpers::TEST_SECRET,
            "--jwt-leeway",
            "0",
        ],
    )
    .await;
    let mut ws = Client::connect(&app, "graphql-transport-ws").await;
    ws.send(init(&app.short_token("brief", Role::Agent, 2)))
        .await;
    assert_eq!(ws.next().await["type"], "connection_ack");
    ws.send(subscribe("1", BEAT)).await;
    let started = std::time::Instant::now();
    let (code, _) = ws.close_code().await;
    assert_eq!(code, 4403);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

async fn shutting_down_closes_sockets_with_1001(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mut ws = Client::connect(&app, "graphql-transport-ws").await;
    ws.send(init(&app.token("late", Role::Agent))).await;
    assert_eq!(ws.next().await["type"], "connection_ack");
    ws.send(subscribe("1", BEAT)).await;
    ws.next_of("1").await;
    app.begin_shutdown();
    let (code, _) = ws.close_code().await;
    assert_eq!(code, 1001);
}

fn init(token: &str) -> Value {
    json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})
}

async fn a_good_token_is_acknowledged_and_operations_run(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = Client::connect(&app, "graphql-transport-ws").await;
    ws.send(init(&app.token("wanda", Role::Agent))).await;
    assert_eq!(ws.next().await["type"], "connection_ack");

    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": "{ viewer { subject role } }"}}))
        .await;
    let next = ws.next().await;
    assert_eq!(
        (next["type"].as_str(), next["id"].as_str()),
        (Some("next"), Some("1"))
    );
    assert_eq!(
        next["payload"]["data"]["viewer"]["subject"], "wanda",
        "{next}"
    );
    assert_eq!(next["payload"]["data"]["viewer"]["role"], "AGENT");
    assert_eq!(ws.next().await["type"], "complete");

    ws.send(json!({"id": "2", "type": "subscribe",
        "payload": {"query": "subscription { heartbeat(intervalSeconds: 1) { seq at } }"}}))
        .await;
    let first = ws.next().await;
    assert_eq!(first["payload"]["data"]["heartbeat"]["seq"], 1, "{first}");
    let second = ws.next().await;
    assert_eq!(second["payload"]["data"]["heartbeat"]["seq"], 2, "{second}");
    ws.send(json!({"id": "2", "type": "complete"})).await;

    // Bad arguments are client errors with a code.
    ws.send(json!({"id": "3", "type": "subscribe",
        "payload": {"query": "subscription { heartbeat(intervalSeconds: 0) { seq } }"}}))
        .await;
    let refused = loop {
        let message = ws.next().await;
        if message["id"] == "3" {
            break message;
        }
    };
    let code = refused["payload"][0]["extensions"]["code"]
        .as_str()
        .or(refused["payload"]["errors"][0]["extensions"]["code"].as_str());
    assert_eq!(code, Some("BAD_USER_INPUT"), "{refused}");
}

async fn a_bad_token_closes_the_socket_with_4403(backend: Backend) {
    let app = spawn_app(backend).await;
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let mut ws = Client::connect(&app, protocol).await;
        ws.send(init("not-a-valid-token")).await;
        let (code, texts) = ws.close_code().await;
        assert_eq!(code, 4403, "{protocol}");
        assert!(
            texts.iter().all(|m| m["type"] != "connection_ack"),
            "{protocol}: {texts:?}"
        );
    }
}

async fn an_anonymous_connection_is_acknowledged_but_viewer_needs_a_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = Client::connect(&app, "graphql-transport-ws").await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.next().await["type"], "connection_ack");
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": "{ viewer { id } }"}}))
        .await;
    let next = ws.next().await;
    assert_eq!(
        next["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{next}"
    );
}

async fn the_legacy_graphql_ws_protocol_works_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = Client::connect(&app, "graphql-ws").await;
    ws.send(init(&app.token("lena", Role::Requester))).await;
    assert_eq!(ws.next().await["type"], "connection_ack");
    ws.send(json!({"id": "1", "type": "start",
        "payload": {"query": "subscription { heartbeat(intervalSeconds: 1) { seq } }"}}))
        .await;
    let data = loop {
        let message = ws.next().await;
        if message["type"] != "ka" {
            break message;
        }
    };
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(data["payload"]["data"]["heartbeat"]["seq"], 1);
    ws.send(json!({"id": "2", "type": "start", "payload": {"query": "{ viewer { subject } }"}}))
        .await;
    let data = ws.next().await;
    assert_eq!(
        data["payload"]["data"]["viewer"]["subject"], "lena",
        "{data}"
    );
    // Ticket events flow over it like over graphql-transport-ws.
    ws.send(json!({"id": "3", "type": "stop"})).await;
    ws.send(json!({"id": "4", "type": "start",
        "payload": {"query": "subscription { myTicketUpdates { kind ticket { title } } }"}}))
        .await;
    app.wait_for_subscriptions(1).await;
    let lena = app.person("lena", Role::Requester).await;
    app.incident(&lena, "Printer jammed", "LOW", "LOW", None)
        .await;
    let data = loop {
        let message = ws.next().await;
        if message["id"] == "4" {
            break message;
        }
    };
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(
        data["payload"]["data"]["myTicketUpdates"],
        json!({"kind": "CREATED", "ticket": {"title": "Printer jammed"}})
    );
}

async fn a_socket_without_connection_init_is_closed_with_4408(backend: Backend) {
    let app = spawn_app_with(backend, &["--ws-init-timeout", "1s"]).await;
    let mut ws = Client::connect(&app, "graphql-transport-ws").await;
    let (code, _) = ws.close_code().await;
    assert_eq!(code, 4408);
}

async fn an_upgrade_without_a_graphql_subprotocol_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = app.ws_url().into_client_request().expect("request");
    let error = connect_async(request).await.err().map(|e| e.to_string());
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains(&StatusCode::BAD_REQUEST.as_u16().to_string())),
        "{error:?}"
    );
}
