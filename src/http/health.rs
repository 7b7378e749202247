//! Liveness and readiness probes.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
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
