//! Liveness and readiness probes, and metrics.

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

/// Prometheus metrics: SQL statements run, failed, and time spent in them.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let metrics = state.db.metrics();
    let body = format!(
        "# HELP itsm_db_statements_total SQL statements executed.\n\
         # TYPE itsm_db_statements_total counter\n\
         itsm_db_statements_total {}\n\
         # HELP itsm_db_statement_errors_total SQL statements that failed.\n\
         # TYPE itsm_db_statement_errors_total counter\n\
         itsm_db_statement_errors_total {}\n\
         # HELP itsm_db_statement_seconds_total Time spent running SQL statements.\n\
         # TYPE itsm_db_statement_seconds_total counter\n\
         itsm_db_statement_seconds_total {:.6}\n",
        metrics.statements(),
        metrics.failures(),
        metrics.seconds(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
