//! Liveness and readiness probes, and metrics.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{AppState, READY_TIMEOUT, capacity::Capacity};

/// Liveness: the process answers. Never touches the database, so a database
/// outage does not get healthy replicas restarted.
pub async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the public listener has room and the database answers within a
/// short timeout; 503 otherwise, so a load balancer stops sending new clients
/// before the replica is full, and while the database is away.
pub async fn ready(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.capacity.saturated() {
        return saturated(&state.capacity, reason);
    }
    match state.db.ping(READY_TIMEOUT).await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response(),
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "reason": "database unreachable" })),
            )
                .into_response()
        }
    }
}

/// The readiness answer of a replica that should get no new clients.
pub fn saturated(capacity: &Capacity, reason: &str) -> Response {
    let usage = capacity.usage();
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "status": "saturated",
            "reason": reason,
            "connections": usage.connections,
            "connectionBudget": usage.connection_budget,
            "websockets": usage.websockets,
            "websocketBudget": usage.websocket_budget,
        })),
    )
        .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(capacity.retry_after()),
    );
    response
}

/// Prometheus metrics: SQL statements run and failed, and time spent in them,
/// for requests and for background work (the event pump, timers).
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.settings.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same(presented.trim().as_bytes(), token.expose().as_bytes()) {
            let mut response = super::error_response(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "metrics need the metrics bearer token".into(),
                None,
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return response;
        }
    }
    let metrics = state.db.metrics();
    let mut body = state.metrics.render();
    let families: [(&str, &str, &str); 3] = [
        (
            "itsm_db_statements_total",
            "SQL statements executed.",
            "counter",
        ),
        (
            "itsm_db_statement_errors_total",
            "SQL statements that failed.",
            "counter",
        ),
        (
            "itsm_db_statement_seconds_total",
            "Time spent running SQL statements.",
            "counter",
        ),
    ];
    for (index, (name, help, kind)) in families.into_iter().enumerate() {
        body.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (source, counters) in [
            ("requests", &metrics.requests),
            ("background", &metrics.background),
        ] {
            let value = match index {
                0 => counters.statements().to_string(),
                1 => counters.failures().to_string(),
                _ => format!("{:.6}", counters.seconds()),
            };
            body.push_str(&format!("{name}{{source=\"{source}\"}} {value}\n"));
        }
    }
    write_capacity(&mut body, &state.capacity);
    let name = "itsm_subscriptions_open";
    body.push_str(&format!(
        "# HELP {name} Subscriptions following the event stream on this replica (their starting point fixed).\n# TYPE {name} gauge\n{name} {}\n",
        state.bus.subscribers()
    ));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The public listener's budgets, what it holds, and what it refused.
fn write_capacity(body: &mut String, capacity: &Capacity) {
    use std::fmt::Write as _;
    let usage = capacity.usage();
    let gauges = [
        (
            "itsm_connections_open",
            "Connections open on the public listener, WebSockets included.",
            usage.connections,
        ),
        (
            "itsm_connection_budget",
            "Most connections the public listener holds; more are refused.",
            usage.connection_budget,
        ),
        (
            "itsm_websockets_open",
            "WebSockets open on the public listener.",
            usage.websockets,
        ),
        (
            "itsm_websocket_budget",
            "Most WebSockets the public listener holds; more upgrades are refused.",
            usage.websocket_budget,
        ),
        (
            "itsm_http_requests_running",
            "GraphQL HTTP requests running now.",
            usage.requests,
        ),
        (
            "itsm_http_requests_running_limit",
            "Most GraphQL HTTP requests running at once; more are refused.",
            usage.request_limit,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = write!(
            body,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        );
    }
    let name = "itsm_refused_total";
    let _ = write!(
        body,
        "# HELP {name} Clients refused with 503 because a budget was spent, by budget.\n# TYPE {name} counter\n"
    );
    for (refusal, count) in usage.refused {
        let _ = writeln!(body, "{name}{{budget=\"{}\"}} {count}", refusal.label());
    }
    for (name, help, value) in [
        (
            "itsm_connections_dropped_total",
            "Connections closed unanswered: beyond the budget and the refusals it answers.",
            usage.dropped,
        ),
        (
            "itsm_accept_errors_total",
            "Failed accepts on the public listener (out of file descriptors, mostly).",
            usage.accept_errors,
        ),
    ] {
        let _ = write!(
            body,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        );
    }
}

/// Compares two secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
