//! The axum router: GraphQL over HTTP and WebSocket, GraphiQL, the SDL, health.

mod alerts;
mod attachments;
pub mod capacity;
pub mod cors;
mod explorer;
mod graphql;
mod health;
mod negotiate;
pub mod serve;
mod strict_json;
mod ws;

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::{
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;

use self::capacity::{Capacity, Refusal};
use crate::{
    auth::{Auth, Authenticator},
    config::{HttpSettings, Introspection},
    db::Db,
    graphql::{ItsmSchema, rate::ClientAddress},
};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The executable schema.
    pub schema: ItsmSchema,
    /// The database, for readiness.
    pub db: Db,
    /// Turns credentials into a viewer.
    pub authenticator: Authenticator,
    /// Listener settings.
    pub settings: Arc<HttpSettings>,
    /// Most operations in one batched request.
    pub max_batch: usize,
    /// The query limits, for checks made before a request reaches the schema.
    pub limits: crate::graphql::Limits,
    /// The sockets each viewer has open.
    pub sockets: Arc<ws::SocketCounts>,
    /// What the public listener holds and may hold.
    pub capacity: Arc<Capacity>,
    /// The events this process's subscriptions follow (for their count).
    pub bus: crate::events::bus::EventBus,
    /// The groups of WebSocket subscriptions sharing one execution.
    pub multiplexer: Arc<crate::graphql::multiplex::Multiplexer>,
    /// Turns true when the server starts shutting down.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The web origins that may call the API from a browser.
    pub origins: Arc<cors::Origins>,
    /// Persisted query texts, for checks made before execution (GET's).
    pub persisted: Arc<crate::graphql::persisted::PersistedStore>,
    /// This instance's Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// The subject of the person monitoring's incidents are requested for.
    pub alert_requester: Arc<str>,
    /// The attachment store (uploads and downloads).
    pub files: crate::attachments::Files,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the router with its middleware.
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    // Every file of a multipart request at its largest, and the operations.
    let upload_limit = state
        .files
        .max_bytes()
        .saturating_mul(graphql::MAX_FILES)
        .saturating_add(settings.max_body_bytes);
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    // Named and completed once the route is known (see `count`).
                    let span = tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %request_id(request),
                        otel.kind = "server",
                        otel.status_code = tracing::field::Empty,
                        http.request.method = %request.method(),
                        http.route = tracing::field::Empty,
                        http.response.status_code = tracing::field::Empty,
                        url.path = %request.uri().path(),
                    );
                    crate::telemetry::continue_trace(&span, request.headers());
                    span
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                // Every response is logged above with its status; a line at
                // ERROR for each 503 would flood the log exactly when the
                // service sheds load. Causes of real failures are logged
                // where they happen, and refusals are counted in /metrics.
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        // Uploads may be larger than a JSON request; the GraphQL handler
        // holds JSON bodies to ITSM_MAX_BODY_BYTES itself.
        .layer(RequestBodyLimitLayer::new(
            settings.max_body_bytes.max(upload_limit),
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            settings.request_timeout,
        ))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes));

    let graphql = get(graphql::get_or_upgrade)
        .post(graphql::post)
        .route_layer(middleware::from_fn_with_state(state.clone(), admit));
    let mut router = Router::new()
        .route("/", get(explorer::page))
        .route("/explorer/{name}", get(explorer::asset))
        .route("/graphql", graphql)
        .route("/attachments/{id}/{name}", get(attachments::download))
        .route(
            "/alerts/alertmanager",
            post(alerts::alertmanager)
                .route_layer(middleware::from_fn_with_state(state.clone(), admit)),
        )
        .route("/schema.graphql", get(sdl))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready));
    // With an admin listener, metrics are served there only.
    if settings.admin_listen.is_none() {
        router = router.route("/metrics", get(health::metrics));
    }
    let cors = state.origins.layer();
    let metrics = state.metrics.clone();
    let router = router
        .fallback(not_found)
        // Per route (after routing, so the pattern is known), inside the limits.
        .layer(middleware::from_fn_with_state(metrics, count))
        .with_state(state)
        .layer(middleware)
        // Outside the limits, so their refusals are shaped and typed too.
        .layer(middleware::from_fn(negotiate::negotiate));
    // Outermost, so a preflight is answered before any limit counts it.
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The admin listener's router: health and metrics only.
pub fn admin_router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(metrics, count))
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            READY_TIMEOUT * 2,
        ))
}

/// What answers a connection beyond the public listener's budget: liveness
/// (the process is alive), readiness (saturated) and 503 for all else.
pub fn refusal_router(capacity: Arc<Capacity>) -> Router {
    let ready = capacity.clone();
    Router::new()
        .route("/healthz", get(health::live))
        .route(
            "/readyz",
            get(move || async move { health::saturated(&ready, "connections") }),
        )
        .fallback(move || async move { capacity.refusal(Refusal::Connections) })
}

/// Counts each answer by route pattern, method and status, with its time.
async fn count(
    State(metrics): State<crate::metrics::Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = route_label(request.extensions().get::<axum::extract::MatchedPath>());
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    metrics.http(route, method.as_str(), status, started.elapsed());
    // The request's span (the trace layer's, entered around this call).
    let span = tracing::Span::current();
    crate::telemetry::rename(&span, format!("{method} {route}"));
    span.record("http.route", route);
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// The route pattern as a label: one of the router's own, so the label
/// values are a small fixed set whatever paths clients ask for.
fn route_label(matched: Option<&axum::extract::MatchedPath>) -> &'static str {
    const ROUTES: [&str; 7] = [
        "/",
        "/explorer/{name}",
        "/graphql",
        "/schema.graphql",
        "/healthz",
        "/readyz",
        "/metrics",
    ];
    matched
        .and_then(|path| ROUTES.into_iter().find(|route| *route == path.as_str()))
        .unwrap_or("unmatched")
}

/// Lets a GraphQL request run only while fewer than the limit run; refuses
/// it with 503 at once otherwise. WebSocket upgrades have a budget of their own.
async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if graphql::is_websocket_upgrade(request.headers()) {
        return next.run(request).await;
    }
    let Some(running) = state.capacity.request() else {
        return state.capacity.refusal(Refusal::Requests);
    };
    let response = next.run(request).await;
    drop(running);
    response
}

/// The address the request came from, when the server knows it.
pub(crate) fn client_address(request: &Request) -> Option<ClientAddress> {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| ClientAddress(info.0.ip()))
}

/// The request id set (or kept) by the request-id layer.
pub(crate) fn request_id(request: &Request) -> String {
    request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The SDL, to whom introspection is open.
async fn sdl(State(state): State<AppState>, request: Request) -> Response {
    match state.settings.introspection {
        Introspection::Off => return not_found().await,
        Introspection::Authenticated => {
            let id = request_id(&request);
            match graphql::authenticate(&state, request.headers(), &id).await {
                Ok(Auth::Viewer(_)) => {}
                Ok(Auth::Anonymous) => {
                    return error_response(
                        StatusCode::UNAUTHORIZED,
                        "UNAUTHENTICATED",
                        "the schema needs a valid bearer token on this server".into(),
                        None,
                    );
                }
                Err(response) => return response,
            }
        }
        Introspection::On => {}
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        crate::graphql::sdl(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no such endpoint".into(),
        None,
    )
}

/// A GraphQL-shaped error body with an HTTP status.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: String,
    request_id: Option<&str>,
) -> Response {
    let mut extensions = json!({ "code": code });
    if let Some(id) = request_id {
        extensions["requestId"] = json!(id);
    }
    (
        status,
        Json(json!({ "errors": [{ "message": message, "extensions": extensions }] })),
    )
        .into_response()
}

/// How long `/readyz` waits for the database.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(2);
