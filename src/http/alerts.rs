//! `POST /alerts/alertmanager`: Prometheus Alertmanager's webhook receiver.
//! The caller is an integration whose bearer token carries `alerts:write`;
//! the body is Alertmanager's notification (version 4). The answer lists
//! what became of each alert; errors have the GraphQL shape and codes.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{AppState, error_response, graphql::authenticate};
use crate::{access::Scope, alerts, auth::Auth, error::ApiError};

/// Takes one notification.
pub(crate) async fn alertmanager(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = headers
        .get(super::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let viewer = match authenticate(&state, &headers, &id).await {
        Ok(Auth::Viewer(viewer)) => viewer,
        Ok(Auth::Anonymous) => {
            return failed(&ApiError::Unauthenticated, &id);
        }
        Err(response) => return response,
    };
    let notification: alerts::rules::Notification = match serde_json::from_slice(&body) {
        Ok(notification) => notification,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                format!("not an Alertmanager notification: {error}"),
                Some(&id),
            );
        }
    };
    let outcome = async {
        let scope = Scope::load(&state.db, &viewer).await?;
        alerts::service::receive(&state.db, &scope, &state.alert_requester, &notification).await
    }
    .await;
    match outcome {
        Ok(handled) => (StatusCode::OK, Json(json!({ "alerts": handled }))).into_response(),
        Err(error) => failed(&error, &id),
    }
}

fn failed(error: &ApiError, id: &str) -> Response {
    let status = match error {
        ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::BadUserInput { .. } | ApiError::BadUserInputs(_) => StatusCode::BAD_REQUEST,
        ApiError::Conflict(_) => StatusCode::CONFLICT,
        ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ApiError::Unavailable | ApiError::BudgetExceeded(_) => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::Internal(cause) => {
            tracing::error!(
                error = format!("{cause:#}"),
                request_id = id,
                "internal error"
            );
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let message = match error {
        ApiError::Unauthenticated => "a bearer token is required".to_owned(),
        ApiError::Forbidden(message)
        | ApiError::NotFound(message)
        | ApiError::Conflict(message)
        | ApiError::BudgetExceeded(message)
        | ApiError::BadUserInput { message, .. } => message.clone(),
        ApiError::BadUserInputs(problems) => problems
            .iter()
            .map(|(field, message)| format!("{field}: {message}"))
            .collect::<Vec<_>>()
            .join("; "),
        ApiError::RateLimited => "too many requests".to_owned(),
        ApiError::Unavailable => "the database is busy; try again in a moment".to_owned(),
        ApiError::Internal(_) => "internal error".to_owned(),
    };
    error_response(status, error.code(), message, Some(id))
}
