//! Liveness and readiness probes, and metrics.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{AppState, READY_TIMEOUT, capacity::Capacity};

/// How long a scrape waits for the event pump's lag.
const LAG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

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

/// Prometheus metrics: the instance's registry (HTTP, GraphQL, events, the
/// SLA sweep, the database and its pools, the key set), then the listener's
/// budgets and the subscriptions following the event stream.
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
    refresh_event_lag(&state).await;
    refresh_webhooks(&state).await;
    let mut body = state.metrics.render();
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

/// Counts the webhook endpoints by status. A scrape that cannot read them
/// keeps the last figures.
async fn refresh_webhooks(state: &AppState) {
    let db = state.db.background();
    match tokio::time::timeout(LAG_TIMEOUT, crate::webhooks::service::by_status(&db)).await {
        Ok(Ok(counts)) => {
            for (status, count) in counts {
                state.metrics.set_webhooks(status.as_str(), count);
            }
        }
        Ok(Err(error)) => tracing::warn!(?error, "could not count webhooks"),
        Err(_) => tracing::warn!("counting webhooks timed out"),
    }
}

/// Reads how far this replica's event pump is behind the log. A scrape that
/// cannot read it keeps the last figures (and the log says why).
async fn refresh_event_lag(state: &AppState) {
    let Some(position) = state.bus.stats().position() else {
        return;
    };
    let db = state.db.background();
    match tokio::time::timeout(LAG_TIMEOUT, crate::events::pump::lag(&db, position)).await {
        Ok(Ok(lag)) => state
            .metrics
            .set_event_lag(lag.events, lag.oldest.as_secs_f64()),
        Ok(Err(error)) => tracing::warn!(?error, "could not read the event pump's lag"),
        Err(_) => tracing::warn!("reading the event pump's lag timed out"),
    }
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
