//! Overload: a listener at its connection budget refuses early with 503 and
//! `Retry-After`, health stays answerable, and everything recovers by itself
//! once sockets close.

use std::{net::SocketAddr, time::Duration};

use itsm::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{Backend, TestApp, WsClient, error_code, metric_value, spawn_app_with};

/// The example client, run here against the real server.
#[allow(dead_code)]
#[path = "../../examples/subscribe.rs"]
mod subscribe_example;

crate::on_both_backends!(
    the_example_subscriber_backs_off_as_told_and_resumes_where_it_left_off,
    a_full_listener_refuses_early_keeps_health_answering_and_recovers,
    requests_beyond_the_concurrency_limit_are_refused_at_once,
    without_an_admin_listener_metrics_stay_public_and_report_the_budget,
);

/// How long any one answer may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(10);

/// A budget of 8 connections, of which up to 6 WebSockets (8 less a headroom
/// of 2 for plain HTTP), and 2 GraphQL requests at once.
const SMALL: &[&str] = &[
    "--max-connections",
    "8",
    "--max-requests",
    "2",
    "--retry-after",
    "1s",
    "--admin-listen",
    "127.0.0.1:0",
];

async fn a_full_listener_refuses_early_keeps_health_answering_and_recovers(backend: Backend) {
    let app = spawn_app_with(backend, SMALL).await;
    let admin = app.admin_address.expect("an admin listener");
    let agent = app.person("olga.overload", Role::Agent).await;

    assert_eq!(get(admin, "/readyz").await.0, 200);
    let metrics = get(admin, "/metrics").await.1;
    assert_eq!(
        metric_value(&metrics, "itsm_connection_budget"),
        8,
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, "itsm_websocket_budget"),
        6,
        "{metrics}"
    );
    assert_eq!(
        get(app.address, "/metrics").await.0,
        404,
        "with an admin listener, metrics are not public"
    );

    let mut sockets = Vec::new();
    for _ in 0..6 {
        sockets.push(WsClient::signed_in(&app, &agent).await);
    }
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["status"], "saturated");
    assert_eq!(body["reason"], "websockets");
    assert_eq!(body["websockets"], 6);

    // The next upgrade is refused before it happens, with a status to read.
    let refused = tokio::time::timeout(HANG, refused_upgrade(&app))
        .await
        .expect("refused at once, not left hanging");
    assert_eq!(refused.0, 503);
    assert_retry_after(refused.1.as_deref(), 1);
    assert_eq!(
        error_code(&refused.2),
        Some("SERVICE_UNAVAILABLE"),
        "{}",
        refused.2
    );

    // Plain HTTP still has room beside the WebSockets.
    let viewer = app
        .ok(&agent, "{ viewer { displayName } }", json!({}))
        .await;
    assert!(viewer["viewer"]["displayName"].is_string(), "{viewer}");

    // Fill the listener: connections the router serves answer 404 for an
    // unknown path; the first one beyond the budget gets the refusal.
    let mut held = Vec::new();
    let refusal = loop {
        assert!(
            held.len() < 8,
            "the budget of 8 connections was never reached"
        );
        let mut stream = TcpStream::connect(app.address).await.expect("connect");
        let answer = tokio::time::timeout(HANG, exchange(&mut stream, "GET /nope"))
            .await
            .expect("answered at once, not left hanging");
        match answer.status {
            404 => held.push(stream),
            503 => break answer,
            other => panic!("unexpected status {other}: {}", answer.raw),
        }
    };
    assert_retry_after(refusal.header("retry-after"), 1);
    assert_eq!(
        refusal.header("connection"),
        Some("close"),
        "{}",
        refusal.raw
    );
    assert!(
        refusal.raw.contains("SERVICE_UNAVAILABLE"),
        "{}",
        refusal.raw
    );

    // While full: the admin listener answers, and so do the public probes
    // (from the descriptors set aside for refusals).
    assert_eq!(get(admin, "/healthz").await.0, 200);
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("\"saturated\""), "{body}");
    assert_eq!(get(app.address, "/healthz").await.0, 200);
    let (status, body) = get(app.address, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("\"saturated\""), "{body}");
    // A GraphQL request on a new connection gets its answer at once.
    let response = tokio::time::timeout(
        HANG,
        reqwest::Client::new()
            .post(app.url("/graphql"))
            .json(&json!({"query": "{ __typename }"}))
            .send(),
    )
    .await
    .expect("answered at once, not left hanging")
    .expect("sent");
    match response.status() {
        StatusCode::OK => {}
        StatusCode::SERVICE_UNAVAILABLE => assert_retry_after(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            1,
        ),
        other => panic!("a GraphQL request while full got {other}"),
    }

    let metrics = get(admin, "/metrics").await.1;
    assert!(
        metric_value(&metrics, "itsm_refused_total{budget=\"websockets\"}") >= 1,
        "{metrics}"
    );
    assert!(
        metric_value(&metrics, "itsm_refused_total{budget=\"connections\"}") >= 1,
        "{metrics}"
    );

    // Everything closes; the replica recovers without a restart.
    drop(held);
    drop(sockets);
    ready_again(admin).await;
    let _again = WsClient::signed_in(&app, &agent).await;
    let viewer = app
        .ok(&agent, "{ viewer { displayName } }", json!({}))
        .await;
    assert!(viewer["viewer"]["displayName"].is_string(), "{viewer}");
    let metrics = get(admin, "/metrics").await.1;
    assert_eq!(
        metric_value(
            &metrics,
            "itsm_websockets_open{protocol=\"graphql-transport-ws\"}"
        ),
        1,
        "{metrics}"
    );
}

async fn requests_beyond_the_concurrency_limit_are_refused_at_once(backend: Backend) {
    let app = spawn_app_with(backend, &["--max-requests", "1", "--retry-after", "3s"]).await;
    let agent = app.person("rita.requests", Role::Agent).await;

    // One request holds the only place: its body has not all arrived.
    let body = json!({"query": "{ viewer { displayName } }"}).to_string();
    let (head, tail) = body.split_at(10);
    let mut slow = TcpStream::connect(app.address).await.expect("connect");
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        agent.token,
        body.len()
    );
    slow.write_all(request.as_bytes()).await.expect("sent");
    wait_until_running(&app, 1).await;

    let response = tokio::time::timeout(
        HANG,
        app.client
            .post(app.url("/graphql"))
            .bearer_auth(&agent.token)
            .json(&json!({"query": "{ viewer { displayName } }"}))
            .send(),
    )
    .await
    .expect("refused at once, not queued")
    .expect("sent");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_retry_after(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        3,
    );
    let refused: Value = response.json().await.expect("json");
    assert_eq!(
        error_code(&refused),
        Some("SERVICE_UNAVAILABLE"),
        "{refused}"
    );
    // Probes are not GraphQL requests: they answer.
    assert_eq!(get(app.address, "/healthz").await.0, 200);
    assert_eq!(get(app.address, "/readyz").await.0, 200);

    // The held request completes, and the place is free again.
    slow.write_all(tail.as_bytes()).await.expect("sent");
    let answer = read_response(&mut slow).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert!(answer.raw.contains("displayName"), "{}", answer.raw);
    let viewer = app
        .ok(&agent, "{ viewer { displayName } }", json!({}))
        .await;
    assert!(viewer["viewer"]["displayName"].is_string(), "{viewer}");
    let metrics = get(app.address, "/metrics").await.1;
    assert_eq!(
        metric_value(&metrics, "itsm_refused_total{budget=\"requests\"}"),
        1,
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, "itsm_http_requests_running_limit"),
        1
    );
}

async fn without_an_admin_listener_metrics_stay_public_and_report_the_budget(backend: Backend) {
    let app = spawn_app_with(backend, &["--max-connections", "500"]).await;
    assert!(app.admin_address.is_none());
    let (status, metrics) = get(app.address, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        metric_value(&metrics, "itsm_connection_budget"),
        500,
        "{metrics}"
    );
    // 500 less a headroom of max(32 requests, 500 / 20) for plain HTTP.
    assert_eq!(
        metric_value(&metrics, "itsm_websocket_budget"),
        468,
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, "itsm_http_requests_running_limit"),
        32
    );
    assert!(
        metric_value(&metrics, "itsm_connections_open") >= 1,
        "this very request's connection is open: {metrics}"
    );
}

/// `examples/subscribe.rs`, refused while the WebSocket budget is spent,
/// waits at least the `Retry-After` it is given, then subscribes from the
/// last cursor it saw and receives the event it would otherwise have missed.
async fn the_example_subscriber_backs_off_as_told_and_resumes_where_it_left_off(backend: Backend) {
    use subscribe_example::{Backoff, Update, follow};
    // 6 connections less a headroom of 3 for HTTP: 3 WebSockets.
    let app = spawn_app_with(
        backend,
        &[
            "--max-connections",
            "6",
            "--max-requests",
            "3",
            "--retry-after",
            "1s",
        ],
    )
    .await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let agent = app.person("sam.subscriber", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Backoff", &[&agent]).await;
    let mut first = WsClient::signed_in(&app, &agent).await;
    first
        .subscribe(
            "q",
            "subscription($q: ID!) { queueUpdates(queueId: $q) { cursor } }",
            json!({"q": queue}),
        )
        .await;
    // Its starting point fixed before the incident, so the incident reaches it.
    app.wait_for_subscriptions(1).await;
    let _second = WsClient::signed_in(&app, &agent).await;
    let third = WsClient::signed_in(&app, &agent).await;
    app.incident(&agent, "Seen before", "LOW", "LOW", Some(&queue))
        .await;
    let seen = first.next_of("q").await;
    let cursor = seen["payload"]["data"]["queueUpdates"]["cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();

    let (updates, mut received) = tokio::sync::mpsc::channel(16);
    let backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    let follower = tokio::spawn(follow(
        app.ws_url(),
        agent.token.clone(),
        queue.clone(),
        Some(cursor.clone()),
        backoff,
        updates,
    ));
    match next_update(&mut received).await {
        Update::Refused { retry_after, wait } => {
            let retry_after = retry_after.expect("the refusal says when to retry");
            assert!(
                (Duration::from_secs(1)..=Duration::from_secs(2)).contains(&retry_after),
                "{retry_after:?}"
            );
            assert!(wait >= retry_after, "waits {wait:?}, told {retry_after:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // An event happens while it waits; then a place frees up.
    app.incident(&agent, "While turned away", "LOW", "LOW", Some(&queue))
        .await;
    drop(third);
    let resumed_after = loop {
        match next_update(&mut received).await {
            Update::Subscribed { after } => break after,
            Update::Refused { .. } | Update::Disconnected { .. } => {}
            Update::Event(event) => panic!("an event before subscribing: {event}"),
        }
    };
    assert_eq!(resumed_after.as_deref(), Some(cursor.as_str()));
    match next_update(&mut received).await {
        Update::Event(event) => {
            assert_eq!(event["ticket"]["title"], "While turned away", "{event}");
            assert_eq!(event["kind"], "CREATED", "{event}");
        }
        other => panic!("expected the missed event, got {other:?}"),
    }
    follower.abort();
}

async fn next_update(
    received: &mut tokio::sync::mpsc::Receiver<subscribe_example::Update>,
) -> subscribe_example::Update {
    tokio::time::timeout(HANG, received.recv())
        .await
        .expect("an update in time")
        .expect("following")
}

/// Waits until `running` GraphQL requests run, as the metrics tell.
async fn wait_until_running(app: &TestApp, running: u64) {
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        let metrics = get(app.address, "/metrics").await.1;
        if metric_value(&metrics, "itsm_http_requests_running") == running {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {running} running: {metrics}"
        );
        tokio::task::yield_now().await;
    }
}

/// Waits until the admin listener reports the replica ready.
async fn ready_again(admin: SocketAddr) {
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        let (status, body) = get(admin, "/readyz").await;
        if status == 200 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready after the sockets closed: {body}"
        );
        tokio::task::yield_now().await;
    }
}

fn assert_retry_after(value: Option<&str>, base: u64) {
    let seconds: u64 = value
        .expect("a Retry-After header")
        .parse()
        .expect("whole seconds");
    assert!(
        (base..=2 * base).contains(&seconds),
        "Retry-After {seconds} is not between {base} and {}",
        2 * base
    );
}

/// An upgrade refused with an HTTP status: status, Retry-After, body.
async fn refused_upgrade(app: &TestApp) -> (u16, Option<String>, Value) {
    use tokio_tungstenite::tungstenite::{Error, client::IntoClientRequest, http::HeaderValue};
    let mut request = app.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => panic!("the upgrade was accepted beyond the budget"),
        Err(Error::Http(response)) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .body()
                .as_deref()
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or(Value::Null);
            (response.status().as_u16(), retry_after, body)
        }
        Err(other) => panic!("the upgrade failed without a status: {other}"),
    }
}

/// A GET on a connection of its own: status and body.
async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let answer = tokio::time::timeout(HANG, exchange(&mut stream, &format!("GET {path}")))
        .await
        .unwrap_or_else(|_| panic!("GET {path} on {address} hung"));
    (answer.status, answer.body().to_owned())
}

/// One raw HTTP/1.1 response.
struct Answer {
    status: u16,
    raw: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        let head = self.raw.split("\r\n\r\n").next()?;
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn body(&self) -> &str {
        self.raw.split_once("\r\n\r\n").map_or("", |(_, body)| body)
    }
}

/// Sends `request_line` with no body and reads the response.
async fn exchange(stream: &mut TcpStream, request_line: &str) -> Answer {
    stream
        .write_all(format!("{request_line} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("sent");
    read_response(stream).await
}

/// Reads one response with a `Content-Length`, leaving the connection open.
async fn read_response(stream: &mut TcpStream) -> Answer {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.expect("read");
        raw.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    key.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length || read == 0 {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                return Answer {
                    status,
                    raw: text.into_owned(),
                };
            }
        }
        assert!(read > 0, "closed before a whole response: {text}");
    }
}
