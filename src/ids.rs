//! Global ids: the opaque `Kind:key` handles every object is known by,
//! whether it travels in a GraphQL response or a webhook payload.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// The global id of the `kind` row with primary key `id`.
pub fn global_id(kind: &str, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{id}"))
}

/// The kind and primary key inside a global id, if it is one.
pub fn parse_global_id(id: &str) -> Option<(String, i64)> {
    let bytes = URL_SAFE_NO_PAD.decode(id.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (kind, key) = text.split_once(':')?;
    Some((kind.to_owned(), key.parse().ok()?))
}
