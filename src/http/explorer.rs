//! The explorer: GraphiQL at `/`, with every asset it loads compiled into
//! the binary and served from `/explorer/…`, so it works on a network
//! without internet. Versions and licenses: `assets/explorer/README.md`.

use axum::{
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{AppState, error_response};

/// One asset: its name under `/explorer/`, media type and bytes.
struct Asset {
    name: &'static str,
    media: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $media:literal) => {
        Asset {
            name: $name,
            media: $media,
            bytes: include_bytes!(concat!("../../assets/explorer/", $name)),
        }
    };
}

const ASSETS: [Asset; 7] = [
    asset!("graphiql.min.js", "text/javascript; charset=utf-8"),
    asset!("graphiql.min.css", "text/css; charset=utf-8"),
    asset!("react.production.min.js", "text/javascript; charset=utf-8"),
    asset!(
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("graphql-ws.min.js", "text/javascript; charset=utf-8"),
    asset!("explorer.js", "text/javascript; charset=utf-8"),
    asset!("LICENSES.txt", "text/plain; charset=utf-8"),
];

const PAGE: &str = include_str!("../../assets/explorer/index.html");

/// `GET /`: the explorer page, unless turned off.
pub async fn page(State(state): State<AppState>) -> Response {
    if !state.settings.explorer {
        return super::not_found().await;
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /explorer/{name}`: one of the explorer's assets.
pub async fn asset(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let found = ASSETS.iter().find(|asset| asset.name == name);
    match found {
        Some(asset) if state.settings.explorer => {
            let mut response = asset.bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.media));
            // Pinned versions: a day in the browser's cache; our own script
            // and the licenses are small enough to revalidate.
            let cache = if matches!(asset.name, "explorer.js" | "LICENSES.txt") {
                "no-cache"
            } else {
                "public, max-age=86400"
            };
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            response
        }
        _ => error_response(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such explorer asset".into(),
            None,
        ),
    }
}
