//! A GraphQL WebSocket client for subscription tests.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpStream;

use super::{Person, TestApp};

/// A GraphQL WebSocket client speaking either protocol.
pub struct WsClient(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
);

const WS_TIMEOUT: Duration = Duration::from_secs(10);

impl WsClient {
    /// Wraps a socket the test opened itself.
    pub fn from_stream(
        stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    ) -> Self {
        Self(stream)
    }

    /// The socket, for frames the helpers do not send.
    pub fn stream(
        &mut self,
    ) -> &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
        &mut self.0
    }

    /// Connects to `/graphql` offering `protocol`.
    pub async fn connect(app: &TestApp, protocol: &str) -> Self {
        Self::connect_to(&app.ws_url(), protocol).await
    }

    /// Connects to a WebSocket URL offering `protocol`.
    pub async fn connect_to(url: &str, protocol: &str) -> Self {
        use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).expect("header"),
        );
        let (stream, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connected");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol)
        );
        Self(stream)
    }

    /// Connects with a tiny receive buffer, so that a client that stops
    /// reading soon makes the server's writes wait.
    pub async fn connect_slow(app: &TestApp, protocol: &str) -> Self {
        use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("small buffer");
        let stream = socket.connect(app.address).await.expect("connect");
        let mut request = app.ws_url().into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).expect("header"),
        );
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
        let (stream, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .expect("handshake");
        Self(stream)
    }

    /// Connects with graphql-transport-ws and completes `connection_init`.
    pub async fn signed_in(app: &TestApp, who: &Person) -> Self {
        Self::signed_in_at(&app.ws_url(), &who.token).await
    }

    /// Like [`WsClient::signed_in`], at any server.
    pub async fn signed_in_at(url: &str, token: &str) -> Self {
        let mut ws = Self::connect_to(url, "graphql-transport-ws").await;
        ws.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}))
            .await;
        let ack = ws.next().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws
    }

    pub async fn send(&mut self, message: Value) {
        use futures_util::SinkExt;
        self.0
            .send(tokio_tungstenite::tungstenite::Message::text(
                message.to_string(),
            ))
            .await
            .expect("sent");
    }

    /// Sends a text frame as is (for JSON too deep to build as a `Value`).
    pub async fn send_text(&mut self, text: String) {
        use futures_util::SinkExt;
        self.0
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .expect("sent");
    }

    /// Starts operation `id` (graphql-transport-ws).
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}))
            .await;
    }

    /// The next JSON message within `wait`, pings and keep-alives included.
    pub async fn raw_within(&mut self, wait: Duration) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = match tokio::time::timeout(wait, self.0.next()).await {
                Err(_) => return None,
                Ok(message) => message.expect("stream open").expect("a frame"),
            };
            match message {
                Message::Text(text) => return Some(serde_json::from_str(&text).expect("json")),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The next JSON message within `wait`, or `None`; pings are answered
    /// and skipped. Fails on a close.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = match tokio::time::timeout(wait, self.0.next()).await {
                Err(_) => return None,
                Ok(message) => message.expect("stream open").expect("a frame"),
            };
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("json");
                    if value["type"] == "ping" {
                        self.send(json!({"type": "pong"})).await;
                        continue;
                    }
                    if value["type"] == "ka" {
                        continue;
                    }
                    return Some(value);
                }
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The next JSON message; fails on a close or after ten seconds.
    pub async fn next(&mut self) -> Value {
        self.next_within(WS_TIMEOUT)
            .await
            .expect("a message in time")
    }

    /// The next `next` payload of operation `id`, skipping other operations.
    pub async fn next_of(&mut self, id: &str) -> Value {
        loop {
            let message = self.next().await;
            if message["id"] == id {
                return message;
            }
        }
    }

    /// The type of the next message (`Some("connection_ack")`, say), or
    /// `None` when the server closes the socket instead.
    pub async fn raw_or_close(&mut self) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match tokio::time::timeout(WS_TIMEOUT, self.0.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: Value = serde_json::from_str(&text).expect("json");
                    return Some(value["type"].clone());
                }
                Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) | Err(_) => return None,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The close code the server ends the socket with, and the text messages
    /// that came before it.
    pub async fn close_code(&mut self) -> (u16, Vec<Value>) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut texts = Vec::new();
        loop {
            let message = tokio::time::timeout(WS_TIMEOUT, self.0.next())
                .await
                .expect("a close in time");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => return (frame.code.into(), texts),
                Some(Ok(Message::Text(text))) => {
                    texts.push(serde_json::from_str(&text).expect("json"));
                }
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}
