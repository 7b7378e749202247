//! Liveness and readiness probes, and metrics.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{AppState, READY_TIMEOUT};

/// Liveness: the process answers. Never touches the database, so a database
/// outage does not get healthy replicas restarted.
pub async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers within a short timeout; 503 otherwise, so a
/// load balancer stops sending traffic until it is back.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.ping(READY_TIMEOUT).await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "reason": "database unreachable" })),
            )
        }
    }
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
    let mut body = String::new();
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
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Compares two secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
