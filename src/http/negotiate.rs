//! GraphQL over HTTP media types: every `/graphql` answer — results and the
//! errors sent before a request reaches the schema (401, 413, 429, 503 …) —
//! goes out as `application/graphql-response+json`, unless the client's
//! `Accept` prefers plain `application/json`. Clients such as Apollo Client
//! and urql read `extensions.code` from a non-2xx answer only in the former.
//! An error the HTTP layers answer without a body of ours (a body over the
//! limit, a request past its time) gets a GraphQL error body too.

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};

use super::error_response;

/// The GraphQL-over-HTTP response type.
pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
/// The legacy type.
pub const JSON: &str = "application/json";

/// The media type a `/graphql` answer goes out as, for handlers whose status
/// depends on it (a request error is 400 in the GraphQL type, 200 in plain JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated(pub &'static str);

impl Negotiated {
    /// True for `application/graphql-response+json`.
    pub fn is_graphql_response(self) -> bool {
        self.0 == GRAPHQL_RESPONSE
    }
}

/// Sets the negotiated media type on `/graphql`'s JSON answers, and gives
/// its bodiless error answers a GraphQL error body.
pub async fn negotiate(mut request: Request, next: Next) -> Response {
    if request.uri().path() != "/graphql" {
        return next.run(request).await;
    }
    let media = if prefers_json(request.headers()) {
        JSON
    } else {
        GRAPHQL_RESPONSE
    };
    request.extensions_mut().insert(Negotiated(media));
    let mut response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case(JSON) || v.eq_ignore_ascii_case(GRAPHQL_RESPONSE)
        });
    if !is_json && (response.status().is_client_error() || response.status().is_server_error()) {
        response = with_error_body(response);
    } else if !is_json {
        return response;
    }
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    response
}

/// The same answer (status and headers) with a GraphQL error as its body.
fn with_error_body(response: Response) -> Response {
    let status = response.status();
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("BAD_USER_INPUT", "the request body is too large"),
        StatusCode::REQUEST_TIMEOUT => ("BAD_USER_INPUT", "the request took too long to arrive"),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => (
            "SERVICE_UNAVAILABLE",
            "the request could not be answered in time; try again",
        ),
        status if status.is_client_error() => ("BAD_USER_INPUT", "the request was refused"),
        _ => ("INTERNAL", "internal error"),
    };
    let (parts, _) = response.into_parts();
    let mut shaped = error_response(status, code, message.into(), None);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped.headers_mut().append(name.clone(), value.clone());
        }
    }
    shaped
}

/// True when `Accept` ranks `application/json` above
/// `application/graphql-response+json` (explicitly or through a wildcard).
/// No `Accept`, a tie, or neither listed: the GraphQL type.
fn prefers_json(headers: &HeaderMap) -> bool {
    let mut graphql: Option<f32> = None;
    let mut json: Option<f32> = None;
    let mut wildcard: Option<f32> = None;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let slot = match media.as_str() {
                GRAPHQL_RESPONSE => &mut graphql,
                JSON => &mut json,
                "*/*" | "application/*" => &mut wildcard,
                _ => continue,
            };
            *slot = Some(slot.map_or(quality, |q: f32| q.max(quality)));
        }
    }
    let graphql = graphql.or(wildcard).unwrap_or(0.0);
    let json = json.or(wildcard).unwrap_or(0.0);
    json > graphql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn plain_json_is_chosen_only_when_preferred() {
        assert!(!prefers_json(&HeaderMap::new()));
        assert!(prefers_json(&accept("application/json")));
        assert!(!prefers_json(&accept(
            "application/graphql-response+json, application/json;q=0.9"
        )));
        assert!(prefers_json(&accept(
            "application/graphql-response+json;q=0.5, application/json"
        )));
        assert!(!prefers_json(&accept("*/*")));
        assert!(prefers_json(&accept("application/json, */*;q=0.1")));
        assert!(!prefers_json(&accept("text/html")));
    }
}
