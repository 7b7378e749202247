//! `GET /attachments/{id}/{name}?expires=…&signature=…`: downloads an
//! attachment through a link `Attachment.url` signed for the viewer who
//! could see it. The link is the permission; it expires after
//! `ITSM_ATTACHMENT_URL_TTL`, and a changed id or expiry breaks its
//! signature. Files are always sent as downloads, never rendered.

use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{AppState, error_response};
use crate::attachments::{files::Signed, service};

/// The signed part of a link.
#[derive(Debug, Deserialize)]
pub(crate) struct Link {
    expires: i64,
    signature: String,
}

fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    error_response(status, code, message.into(), None)
}

pub(crate) async fn download(
    State(state): State<AppState>,
    Path((id, _name)): Path<(String, String)>,
    link: Result<Query<Link>, QueryRejection>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return refused(StatusCode::NOT_FOUND, "NOT_FOUND", "no such attachment");
    };
    let Ok(Query(link)) = link else {
        return refused(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "a download link carries `expires` and `signature`: use Attachment.url",
        );
    };
    let signed = Signed {
        expires: link.expires,
        signature: link.signature,
    };
    match state.files.verify(id, &signed).await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => return refused(StatusCode::FORBIDDEN, "FORBIDDEN", why),
        Err(error) => {
            tracing::error!(?error, "could not read the link-signing key");
            return refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            );
        }
    }
    let found = match service::downloadable(&state.db, id).await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(?error, attachment = id, "could not read an attachment");
            return refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            );
        }
    };
    let Some(attachment) = found else {
        return refused(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "the attachment was removed",
        );
    };
    let bytes = match state.files.get(&attachment.storage_key).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            tracing::warn!(
                attachment = id,
                key = attachment.storage_key,
                "an attachment's bytes are missing"
            );
            return refused(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "the attachment's file is missing",
            );
        }
        Err(error) => {
            tracing::error!(
                ?error,
                attachment = id,
                "could not read an attachment's bytes"
            );
            return refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            );
        }
    };
    let content_type = if attachment.content_type == "text/plain" {
        "text/plain; charset=utf-8".to_owned()
    } else {
        attachment.content_type.clone()
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    let header_value = |text: &str| {
        HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(header::CONTENT_TYPE, header_value(&content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition(&attachment.filename))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266): an ASCII
/// fallback, and the exact name percent-encoded.
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_safely_and_kept_exactly() {
        assert_eq!(
            disposition("boot error.png"),
            "attachment; filename=\"boot error.png\"; filename*=UTF-8''boot%20error.png"
        );
        assert_eq!(
            disposition("Grüße \"x\".txt"),
            "attachment; filename=\"Gr__e _x_.txt\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22x%22.txt"
        );
    }
}
