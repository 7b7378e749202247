//! GraphQL over HTTP: `POST /graphql` for everything, `GET /graphql` for
//! queries only (and for the WebSocket upgrade).

use async_graphql::{
    BatchRequest, BatchResponse, Request as GraphQLRequest, Variables,
    parser::{
        parse_query,
        types::{DocumentOperations, OperationType},
    },
};
use async_graphql_axum::GraphQLResponse;
use axum::{
    extract::{Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};

use serde::Deserialize;
use serde_json::Value;

use super::{
    AppState, client_address, error_response,
    negotiate::{GRAPHQL_RESPONSE, Negotiated},
    request_id,
    strict_json::{self, JsonError},
    ws,
};
use crate::{
    auth::{Auth, AuthError},
    error::ApiError,
    graphql::{
        RequestId, errors::PARSE_FAILED, persisted::extensions_from_json, shape::check_document,
    },
};

/// `POST /graphql`: a JSON body holding one request, or a batch of them.
/// The token is checked first, so a bad one costs no parsing at all.
pub async fn post(State(state): State<AppState>, request: Request) -> Response {
    let media = negotiated(&request);
    let id = request_id(&request);
    let address = client_address(&request);
    let (parts, body) = request.into_parts();
    let auth = match authenticate(&state, &parts.headers, &id).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    if let Some(content_type) = multipart(&parts.headers) {
        return post_multipart(&state, content_type, body, auth, id, address, media).await;
    }
    if !is_json(&parts.headers) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "send the GraphQL request as JSON with Content-Type: application/json \
             (or as multipart/form-data to upload files)"
                .into(),
            None,
        );
    }
    let read = axum::body::to_bytes(body, state.settings.max_body_bytes);
    let bytes = match tokio::time::timeout(state.settings.body_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Err(_) => {
            return body_too_slow(state.settings.body_timeout);
        }
        Ok(Err(_)) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BAD_USER_INPUT",
                format!(
                    "the request body exceeds {} bytes",
                    state.settings.max_body_bytes
                ),
                None,
            );
        }
    };
    // A batch, a request object and its variables object wrap the variables' values.
    let max_nesting = state.limits.shape.max_nesting.saturating_add(3);
    let batch = match parse_body(&bytes, state.max_batch, max_nesting) {
        Ok(batch) => batch,
        Err((code, message)) => {
            return error_response(StatusCode::BAD_REQUEST, code, message, None);
        }
    };
    let mut batch = batch.data(auth).data(RequestId(id));
    if let Some(address) = address {
        batch = batch.data(address);
    }
    respond(state.schema.execute_batch(batch).await, media)
}

/// `GET /graphql`: a WebSocket upgrade, or a query in the query string.
/// Mutations and subscriptions over plain GET get 405: GET must stay safe.
pub async fn get_or_upgrade(State(state): State<AppState>, request: Request) -> Response {
    if is_websocket_upgrade(request.headers()) {
        return ws::upgrade(state, request).await;
    }
    let media = negotiated(&request);
    let id = request_id(&request);
    let address = client_address(&request);
    let auth = match authenticate(&state, request.headers(), &id).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let max_nesting = state.limits.shape.max_nesting.saturating_add(1);
    let graphql_request = match parse_query_string(request.uri(), max_nesting) {
        Ok(graphql_request) => graphql_request,
        Err((code, message)) => {
            return error_response(StatusCode::BAD_REQUEST, code, message, None);
        }
    };
    // A document of a shape the limits refuse is not parsed here: the schema
    // refuses it with the same error as on every other path. A persisted
    // query is checked by the text its hash stands for.
    let persisted = state.persisted.text_of(&graphql_request);
    let query = persisted.as_deref().unwrap_or(&graphql_request.query);
    let operation = check_document(query, &state.limits.shape)
        .ok()
        .and_then(|()| operation_type(query, graphql_request.operation_name.as_deref()));
    if matches!(
        operation,
        Some(OperationType::Mutation | OperationType::Subscription)
    ) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
            "only queries may be sent with GET; send mutations with POST".into(),
            None,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let mut graphql_request = graphql_request.data(auth).data(RequestId(id));
    if let Some(address) = address {
        graphql_request = graphql_request.data(address);
    }
    respond(
        BatchResponse::Single(state.schema.execute(graphql_request).await),
        media,
    )
}

/// The media type the answer will go out as (the GraphQL type when the
/// negotiation layer is not in front, as in unit tests).
fn negotiated(request: &Request) -> Negotiated {
    request
        .extensions()
        .get::<Negotiated>()
        .copied()
        .unwrap_or(Negotiated(GRAPHQL_RESPONSE))
}

/// Seconds a client is asked to wait after a 503 or a 429.
const RETRY_AFTER_SECONDS: u64 = 1;

/// The HTTP response for GraphQL responses: 503 with `Retry-After` when the
/// database could not be reached in time (the request may simply be
/// retried), 429 with `Retry-After` when the viewer is rate limited; a
/// request error (nothing ran: it did not parse, validate or resolve its
/// persisted query) is 400 without `data` in the GraphQL-over-HTTP type and
/// 200 in plain JSON, as the GraphQL-over-HTTP spec asks; else 200.
fn respond(batch: BatchResponse, media: Negotiated) -> Response {
    let responses: Vec<&async_graphql::Response> = match &batch {
        BatchResponse::Single(response) => vec![response],
        BatchResponse::Batch(responses) => responses.iter().collect(),
    };
    let codes: Vec<String> = responses
        .iter()
        .flat_map(|response| response.errors.iter())
        .filter_map(|error| match error.extensions.as_ref()?.get("code")? {
            async_graphql::Value::String(code) => Some(code.clone()),
            _ => None,
        })
        .collect();
    let retry_after = responses
        .iter()
        .flat_map(|response| response.errors.iter())
        .filter_map(
            |error| match error.extensions.as_ref()?.get("retryAfter")? {
                async_graphql::Value::Number(seconds) => seconds.as_u64(),
                _ => None,
            },
        )
        .max()
        .unwrap_or(RETRY_AFTER_SECONDS);
    let status = if codes.iter().any(|c| c == "SERVICE_UNAVAILABLE") {
        Some(StatusCode::SERVICE_UNAVAILABLE)
    } else if codes.iter().any(|c| c == "RATE_LIMITED") {
        Some(StatusCode::TOO_MANY_REQUESTS)
    } else {
        None
    };
    if status.is_none()
        && media.is_graphql_response()
        && let BatchResponse::Single(single) = &batch
        && is_request_error(single)
    {
        return request_error(single);
    }
    let mut response = GraphQLResponse::from(batch).into_response();
    if let Some(status) = status {
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    }
    response
}

/// True when nothing of the request ran: no data, and every error is about
/// the request (none has a path into the result).
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// A request error in the GraphQL-over-HTTP type: 400, and no `data` entry
/// (which would say execution started).
fn request_error(response: &async_graphql::Response) -> Response {
    let mut body = serde_json::to_value(response).unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.remove("data");
    }
    let mut answer = (
        StatusCode::BAD_REQUEST,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(GRAPHQL_RESPONSE),
        )],
        body.to_string(),
    )
        .into_response();
    answer.headers_mut().extend(response.http_headers.clone());
    answer
}

/// Reads a POST body: one request object, or an array of 1 to `max_batch`.
fn parse_body(
    bytes: &[u8],
    max_batch: usize,
    max_nesting: usize,
) -> Result<BatchRequest, (&'static str, String)> {
    let not_a_request = |error: serde_json::Error| {
        (
            PARSE_FAILED,
            format!("the body is not a GraphQL request: {error}"),
        )
    };
    let value = strict_json::parse(bytes, max_nesting).map_err(|error| match error {
        JsonError::TooDeep(_) => (
            "BAD_USER_INPUT",
            "the request body nests too deeply: the variables may nest at most the query nesting limit"
                .to_owned(),
        ),
        JsonError::Invalid(message) => (
            PARSE_FAILED,
            format!("the body is not a GraphQL request: {message}"),
        ),
    })?;
    match value {
        Value::Array(items) => {
            if max_batch <= 1 {
                return Err((
                    "BAD_USER_INPUT",
                    "batched requests are not accepted; send one operation per request".into(),
                ));
            }
            if items.is_empty() || items.len() > max_batch {
                return Err((
                    "BAD_USER_INPUT",
                    format!(
                        "a batch must hold 1 to {max_batch} operations, not {}",
                        items.len()
                    ),
                ));
            }
            let requests = items
                .into_iter()
                .map(|item| match item {
                    Value::Object(_) => serde_json::from_value(item).map_err(not_a_request),
                    _ => Err((
                        PARSE_FAILED,
                        "each batch entry must be a request object".into(),
                    )),
                })
                .collect::<Result<_, _>>()?;
            Ok(BatchRequest::Batch(requests))
        }
        object @ Value::Object(_) => Ok(BatchRequest::Single(
            serde_json::from_value(object).map_err(not_a_request)?,
        )),
        _ => Err((
            PARSE_FAILED,
            "the body must be a JSON object (or an array of them)".into(),
        )),
    }
}

/// The GET parameters of GraphQL over HTTP.
#[derive(Deserialize)]
struct GetParams {
    #[serde(default)]
    query: String,
    #[serde(default, rename = "operationName", alias = "operation_name")]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<String>,
    /// JSON, as for `variables`: where a persisted query's hash travels.
    #[serde(default)]
    extensions: Option<String>,
}

fn parse_query_string(
    uri: &Uri,
    max_nesting: usize,
) -> Result<GraphQLRequest, (&'static str, String)> {
    let Query(params) = Query::<GetParams>::try_from_uri(uri).map_err(|e| {
        (
            PARSE_FAILED,
            format!("the query string is not a GraphQL request: {e}"),
        )
    })?;
    let mut request = GraphQLRequest::new(params.query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables.filter(|v| !v.trim().is_empty()) {
        let variables =
            strict_json::parse(variables.as_bytes(), max_nesting).map_err(|error| match error {
                JsonError::TooDeep(limit) => (
                    "BAD_USER_INPUT",
                    format!("`variables` nests too deeply: at most {limit} levels"),
                ),
                JsonError::Invalid(message) => (
                    PARSE_FAILED,
                    format!("`variables` is not a JSON object: {message}"),
                ),
            })?;
        request = request.variables(Variables::from_json(variables));
    }
    if let Some(extensions) = params.extensions.filter(|e| !e.trim().is_empty()) {
        let extensions = strict_json::parse(extensions.as_bytes(), max_nesting)
            .map_err(|error| match error {
                JsonError::TooDeep(limit) => (
                    "BAD_USER_INPUT",
                    format!("`extensions` nests too deeply: at most {limit} levels"),
                ),
                JsonError::Invalid(message) => (
                    PARSE_FAILED,
                    format!("`extensions` is not a JSON object: {message}"),
                ),
            })
            .and_then(|json| {
                extensions_from_json(json).map_err(|message| ("BAD_USER_INPUT", message.into()))
            })?;
        request.extensions = async_graphql::Extensions(extensions);
    }
    Ok(request)
}

/// Reads the bearer token. A bad one ends the request with 401, whatever the
/// query asks for; the message never says which check failed.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<Auth, Response> {
    let header = match headers.get(header::AUTHORIZATION).map(HeaderValue::to_str) {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return Err(unauthenticated("authorization header is not text")),
    };
    match state.authenticator.from_authorization(header).await {
        Ok(auth) => Ok(auth),
        Err(AuthError::Rejected(reason)) => Err(unauthenticated(&reason)),
        Err(AuthError::Internal(error)) => Err(internal(error, id)),
    }
}

fn unauthenticated(reason: &str) -> Response {
    tracing::info!(reason, "token rejected");
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "invalid or expired token".into(),
        None,
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

/// The answer when a request body is not all there within `timeout`.
fn body_too_slow(timeout: std::time::Duration) -> Response {
    error_response(
        StatusCode::REQUEST_TIMEOUT,
        "BAD_USER_INPUT",
        format!("the request body did not arrive within {timeout:?}"),
        None,
    )
}

fn internal(error: ApiError, id: &str) -> Response {
    if let ApiError::Unavailable = error {
        tracing::warn!("no database connection in time while authenticating");
        let mut response = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "the database is busy; try again in a moment".into(),
            Some(id),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        return response;
    }
    match error {
        ApiError::Internal(cause) => {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        other => tracing::error!(error = ?other, "unexpected error while authenticating"),
    }
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        format!("internal error (request id {id})"),
        Some(id),
    )
}

/// The `Content-Type` of a multipart request (the GraphQL multipart
/// request spec: `operations`, `map`, then the files).
fn multipart(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            v.split(';')
                .next()
                .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("multipart/form-data"))
        })
        .map(str::to_owned)
}

/// Most files one multipart request may carry.
pub(super) const MAX_FILES: usize = 10;

/// A multipart request: files up to `ITSM_ATTACHMENT_MAX_BYTES` each, the
/// rest as for JSON. Execution is the same; the `operations` part is read
/// by async-graphql, and the query limits apply to it as to any other.
async fn post_multipart(
    state: &AppState,
    content_type: String,
    body: axum::body::Body,
    auth: Auth,
    id: String,
    address: Option<crate::graphql::rate::ClientAddress>,
    media: Negotiated,
) -> Response {
    use futures_util::TryStreamExt;
    let reader = body
        .into_data_stream()
        .map_err(std::io::Error::other)
        .into_async_read();
    let options = async_graphql::http::MultipartOptions::default()
        .max_file_size(state.files.max_bytes())
        .max_num_files(MAX_FILES);
    let received = async_graphql::http::receive_batch_body(Some(content_type), reader, options);
    let batch = match tokio::time::timeout(state.settings.body_timeout, received).await {
        Ok(Ok(batch)) => batch,
        Ok(Err(async_graphql::ParseRequestError::PayloadTooLarge)) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BAD_USER_INPUT",
                format!(
                    "a file holds at most {} bytes, and a request at most {MAX_FILES} files",
                    state.files.max_bytes()
                ),
                None,
            );
        }
        Ok(Err(error)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                format!("not a GraphQL multipart request: {error}"),
                None,
            );
        }
        Err(_) => {
            return body_too_slow(state.settings.body_timeout);
        }
    };
    let mut batch = batch.data(auth).data(RequestId(id));
    if let Some(address) = address {
        batch = batch.data(address);
    }
    respond(state.schema.execute_batch(batch).await, media)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

pub(super) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The type of the operation a request would run, when it can be told.
fn operation_type(query: &str, name: Option<&str>) -> Option<OperationType> {
    let document = parse_query(query).ok()?;
    match document.operations {
        DocumentOperations::Single(operation) => Some(operation.node.ty),
        DocumentOperations::Multiple(operations) => match name {
            Some(name) => operations
                .iter()
                .find(|(op_name, _)| op_name.as_str() == name)
                .map(|(_, operation)| operation.node.ty),
            // One named operation runs without being named in the request.
            None if operations.len() == 1 => operations.values().next().map(|op| op.node.ty),
            None => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_types_are_found_by_name() {
        assert_eq!(operation_type("{ a }", None), Some(OperationType::Query));
        assert_eq!(
            operation_type("mutation M { a }", None),
            Some(OperationType::Mutation)
        );
        let doc = "query Q { a } mutation M { a }";
        assert_eq!(
            operation_type(doc, Some("M")),
            Some(OperationType::Mutation)
        );
        assert_eq!(operation_type(doc, Some("Q")), Some(OperationType::Query));
        assert_eq!(operation_type(doc, None), None);
        assert_eq!(operation_type("{ a", None), None);
    }
}
