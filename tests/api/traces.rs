//! OpenTelemetry traces as an OTLP/HTTP collector receives them: the real
//! binary exports to a receiver this test starts, continuing the caller's
//! W3C `traceparent` from the HTTP request through the GraphQL operation down
//! to its SQL statements; its JSON log lines carry the same trace id.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, header},
    routing::post,
};
use itsm::auth::Role;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{
    cli::Served,
    helpers::{Backend, TEST_SECRET, TestDatabase, test_token},
};

crate::on_both_backends!(
    a_request_is_traced_from_the_callers_traceparent_down_to_its_sql,
    traces_go_as_protobuf_by_default,
);

const WAIT: Duration = Duration::from_secs(30);

/// What the receiver got: spans from JSON exports, and raw protobuf bodies.
#[derive(Default)]
struct Received {
    spans: Vec<Value>,
    service_names: Vec<String>,
    protobuf: Vec<Vec<u8>>,
}

/// An OTLP/HTTP trace receiver on a free port.
struct Receiver {
    address: std::net::SocketAddr,
    received: Arc<Mutex<Received>>,
    arrivals: watch::Receiver<u64>,
}

#[derive(Clone)]
struct ReceiverState {
    received: Arc<Mutex<Received>>,
    arrivals: Arc<watch::Sender<u64>>,
}

async fn export(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> String {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    {
        let mut received = state.received.lock().expect("lock");
        if content_type.starts_with("application/json") {
            let request: Value = serde_json::from_slice(&body).expect("OTLP JSON");
            for resource in request["resourceSpans"].as_array().into_iter().flatten() {
                if let Some(name) = attribute(&resource["resource"], "service.name") {
                    received.service_names.push(name);
                }
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        received.spans.push(span.clone());
                    }
                }
            }
        } else {
            assert_eq!(content_type, "application/x-protobuf");
            received.protobuf.push(body.to_vec());
        }
    }
    state.arrivals.send_modify(|n| *n += 1);
    "{}".into()
}

impl Receiver {
    async fn start() -> Self {
        let received = Arc::new(Mutex::new(Received::default()));
        let (sender, arrivals) = watch::channel(0);
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(ReceiverState {
                received: received.clone(),
                arrivals: Arc::new(sender),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            address,
            received,
            arrivals,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Waits until an export makes `found` true; fails after [`WAIT`].
    async fn wait_for<T>(&mut self, found: impl Fn(&Received) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(value) = found(&self.received.lock().expect("lock")) {
                return value;
            }
            let arrived = tokio::time::timeout_at(deadline, self.arrivals.changed()).await;
            assert!(
                arrived.is_ok(),
                "not received in time; spans so far: {:#?}",
                self.received.lock().expect("lock").spans
            );
        }
    }
}

/// An attribute's value (strings as they are, numbers as their digits).
fn attribute(item: &Value, key: &str) -> Option<String> {
    let value = &item["attributes"]
        .as_array()?
        .iter()
        .find(|kv| kv["key"] == key)?["value"];
    value["stringValue"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| value["intValue"].as_str().map(str::to_owned))
        .or_else(|| value["intValue"].as_i64().map(|n| n.to_string()))
        .or_else(|| value["boolValue"].as_bool().map(|b| b.to_string()))
}

/// A fresh W3C trace id and parent span id, in hex.
fn caller_ids() -> (String, String) {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    (trace, parent)
}

/// `itsm serve` on `db`, sending traces to `receiver`, with `more` settings.
fn traced(db: &TestDatabase, receiver: &Receiver, more: &[(&str, &str)]) -> Served {
    let endpoint = receiver.endpoint();
    let mut env = vec![
        ("ITSM_DATABASE_URL", db.url.as_str()),
        ("ITSM_JWT_SECRET", TEST_SECRET),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        // Export within a tenth of a second rather than every five.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    env.extend_from_slice(more);
    Served::start(db.dir(), &env, &[])
}

async fn send(served: &Served, body: &Value, token: &str, traceparent: &str) -> Value {
    served
        .client
        .post(served.url("/graphql"))
        .bearer_auth(token)
        .header("traceparent", traceparent)
        .json(body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON")
}

async fn a_request_is_traced_from_the_callers_traceparent_down_to_its_sql(backend: Backend) {
    let mut receiver = Receiver::start().await;
    let db = TestDatabase::create(backend).await;
    let served = traced(
        &db,
        &receiver,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_SERVICE_NAME", "itsm-under-test"),
        ],
    );
    let agent = test_token("tess.traces", Role::Agent);

    let (trace, parent) = caller_ids();
    let board = send(
        &served,
        &json!({
            "query": "query Board { tickets(first: 5) { totalCount edges { node { id } } } }",
            "operationName": "Board",
        }),
        &agent,
        &format!("00-{trace}-{parent}-01"),
    )
    .await;
    assert!(board["errors"].is_null(), "{board}");

    // The HTTP request continues the caller's trace.
    let same_trace = |span: &&Value| span["traceId"] == trace.as_str();
    let http = receiver
        .wait_for(|r| {
            r.spans
                .iter()
                .filter(same_trace)
                .find(|s| s["name"] == "POST /graphql")
                .cloned()
        })
        .await;
    assert_eq!(http["parentSpanId"], parent.as_str(), "{http:#}");
    assert_eq!(http["kind"], 2, "a server span: {http:#}");
    assert_eq!(attribute(&http, "http.route").as_deref(), Some("/graphql"));
    assert_eq!(
        attribute(&http, "http.response.status_code").as_deref(),
        Some("200")
    );

    // The operation is its child, named and typed, with its complexity.
    let operation = receiver
        .wait_for(|r| {
            r.spans
                .iter()
                .filter(same_trace)
                .find(|s| s["name"] == "query Board")
                .cloned()
        })
        .await;
    assert_eq!(operation["parentSpanId"], http["spanId"], "{operation:#}");
    assert_eq!(
        attribute(&operation, "graphql.operation.name").as_deref(),
        Some("Board")
    );
    assert_eq!(
        attribute(&operation, "graphql.operation.type").as_deref(),
        Some("query")
    );
    let complexity: u64 = attribute(&operation, "graphql.complexity")
        .expect("complexity")
        .parse()
        .expect("a number");
    assert!(complexity > 0, "{operation:#}");
    let statements: usize = attribute(&operation, "db.statements")
        .expect("statements")
        .parse()
        .expect("a number");

    // Its SQL statements are spans below it, as many as it counted.
    let system = match backend {
        Backend::Postgres => "postgresql",
        Backend::Sqlite => "sqlite",
    };
    let sql = receiver
        .wait_for(|r| {
            let below: Vec<Value> = r
                .spans
                .iter()
                .filter(same_trace)
                .filter(|s| attribute(s, "db.system.name").is_some())
                .cloned()
                .collect();
            (below.len() >= statements).then_some(below)
        })
        .await;
    assert!(statements > 0);
    for statement in &sql {
        assert_eq!(
            attribute(statement, "db.system.name").as_deref(),
            Some(system)
        );
        assert_eq!(statement["kind"], 3, "a client span: {statement:#}");
        let text = attribute(statement, "db.query.text").expect("the SQL");
        assert!(text.to_uppercase().starts_with("SELECT"), "{text}");
        assert_eq!(statement["name"], "SELECT");
    }
    let under_operation = sql
        .iter()
        .filter(|s| s["parentSpanId"] == operation["spanId"])
        .count();
    assert!(under_operation > 0, "SQL under the operation: {sql:#?}");
    assert!(
        receiver
            .received
            .lock()
            .expect("lock")
            .service_names
            .iter()
            .all(|name| name == "itsm-under-test")
    );

    // An operation that fails carries its error code and an error status.
    let (trace, parent) = caller_ids();
    let refused = send(
        &served,
        &json!({"query": "mutation MakeTeam { createTeam(input: {name: \"Night\"}) { team { id } } }"}),
        &agent,
        &format!("00-{trace}-{parent}-01"),
    )
    .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let failed = receiver
        .wait_for(|r| {
            r.spans
                .iter()
                .find(|s| s["traceId"] == trace.as_str() && s["name"] == "mutation MakeTeam")
                .cloned()
        })
        .await;
    assert_eq!(
        attribute(&failed, "graphql.error.codes").as_deref(),
        Some("FORBIDDEN")
    );
    assert_eq!(failed["status"]["code"], 2, "an error status: {failed:#}");

    // The JSON log lines written while serving carry the trace and span ids.
    let logged = served
        .wait_for_log(|line| {
            line["trace_id"] == trace.as_str()
                && line["span_id"].as_str().is_some_and(|id| id.len() == 16)
        })
        .await;
    assert!(
        logged,
        "a log line with trace id {trace}: {:#?}",
        served.log.lock().map(|l| l.clone())
    );
}

async fn traces_go_as_protobuf_by_default(backend: Backend) {
    let mut receiver = Receiver::start().await;
    let db = TestDatabase::create(backend).await;
    let served = traced(&db, &receiver, &[]);
    let (trace, parent) = caller_ids();
    let viewer = send(
        &served,
        &json!({"query": "{ viewer { id } }"}),
        &test_token("pia.protobuf", Role::Agent),
        &format!("00-{trace}-{parent}-01"),
    )
    .await;
    assert!(viewer["errors"].is_null(), "{viewer}");
    // Protobuf carries the trace id as its 16 raw bytes.
    let bytes: Vec<u8> = (0..trace.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&trace[i..i + 2], 16).expect("hex"))
        .collect();
    receiver
        .wait_for(|r| {
            r.protobuf
                .iter()
                .any(|body| body.windows(bytes.len()).any(|w| w == bytes.as_slice()))
                .then_some(())
        })
        .await;
}
