//! GraphQL over WebSocket on `/graphql`, speaking `graphql-transport-ws` and the
//! legacy `graphql-ws` (subscriptions-transport-ws) protocol.
//!
//! The token travels in the `connection_init` payload
//! (`{"Authorization": "Bearer …"}`); no token means an anonymous connection,
//! a bad one closes the socket with 4403. A socket that sends no
//! `connection_init` in time is closed with 4408.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_graphql::{
    Data,
    http::{WebSocket as GraphQLWebSocket, WebSocketProtocols, WsMessage},
};
use axum::{
    extract::{
        FromRequestParts, Request, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt, future};
use serde_json::Value;
use tracing::Instrument;

use super::{AppState, error_response, request_id};
use crate::{auth::AuthError, graphql::RequestId};

/// Close code for a refused `connection_init` (graphql-transport-ws: Forbidden).
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// Close code for a missing `connection_init`.
pub const CLOSE_INIT_TIMEOUT: u16 = 4408;
/// How often the server pings an idle socket, so proxies keep it open.
const PING_EVERY: Duration = Duration::from_secs(30);

/// Answers the upgrade request with the subprotocol the client offered.
pub async fn upgrade(state: AppState, request: Request) -> Response {
    let id = request_id(&request);
    let (mut parts, _body) = request.into_parts();
    let protocol = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|offered| {
            offered
                .split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        });
    let Some(protocol) = protocol else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "offer the graphql-transport-ws or graphql-ws subprotocol".into(),
            None,
        );
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let span = tracing::info_span!("websocket", request_id = %id, protocol = protocol.sec_websocket_protocol());
    upgrade
        .protocols([protocol.sec_websocket_protocol()])
        .on_upgrade(move |socket| serve(socket, state, protocol, id).instrument(span))
}

async fn serve(socket: WebSocket, state: AppState, protocol: WebSocketProtocols, id: String) {
    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|message| future::ready(message.is_ok()))
        .filter_map(|message| {
            future::ready(match message {
                Ok(message @ (Message::Text(_) | Message::Binary(_))) => Some(message.into_data()),
                _ => None,
            })
        });

    let refused = Arc::new(AtomicBool::new(false));
    let authenticator = state.authenticator.clone();
    let refused_by_init = refused.clone();
    let on_init = move |payload: Value| async move {
        let header = authorization(&payload);
        match authenticator.from_authorization(header.as_deref()).await {
            Ok(auth) => {
                let mut data = Data::default();
                data.insert(auth);
                Ok(data)
            }
            Err(AuthError::Rejected(reason)) => {
                tracing::info!(reason, "websocket token rejected");
                refused_by_init.store(true, Ordering::SeqCst);
                Err(async_graphql::Error::new("Forbidden"))
            }
            Err(AuthError::Internal(error)) => {
                tracing::error!(error = ?error, "could not authenticate websocket");
                Err(async_graphql::Error::new("internal error"))
            }
        }
    };
    let mut connection_data = Data::default();
    connection_data.insert(RequestId(id));
    let messages = GraphQLWebSocket::new(state.schema.clone(), input, protocol)
        .connection_data(connection_data)
        .on_connection_init(on_init);
    futures_util::pin_mut!(messages);

    let init_deadline = tokio::time::sleep(state.settings.ws_init_timeout);
    tokio::pin!(init_deadline);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut acknowledged = false;
    let close = loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(WsMessage::Text(text)) => {
                    acknowledged |= text.contains("\"connection_ack\"");
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(WsMessage::Close(code, reason)) => break Some((code, reason)),
                None => break None,
            },
            () = &mut init_deadline, if !acknowledged => {
                break Some((CLOSE_INIT_TIMEOUT, "Connection initialisation timeout".into()));
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    };
    let (code, reason) = if refused.load(Ordering::SeqCst) {
        (CLOSE_FORBIDDEN, "Forbidden".to_owned())
    } else {
        close.unwrap_or((1000, String::new()))
    };
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}

/// The `Authorization` entry of a `connection_init` payload, with the key
/// matched case-insensitively. A bare token (without `Bearer`) is accepted too.
fn authorization(payload: &Value) -> Option<String> {
    let (_, value) = payload
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))?;
    // A non-string value is passed on as is, and so rejected.
    let text = match value {
        Value::String(text) => text.trim().to_owned(),
        other => other.to_string(),
    };
    if text.contains(' ') {
        Some(text)
    } else {
        Some(format!("Bearer {text}"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::authorization;

    #[test]
    fn the_token_is_read_from_the_init_payload() {
        assert_eq!(
            authorization(&json!({"Authorization": "Bearer abc"})).as_deref(),
            Some("Bearer abc")
        );
        assert_eq!(
            authorization(&json!({"authorization": "abc"})).as_deref(),
            Some("Bearer abc")
        );
        assert_eq!(authorization(&json!({})), None);
        assert_eq!(authorization(&json!(null)), None);
    }
}
