//! GraphQL over WebSocket on `/graphql`, speaking `graphql-transport-ws` and the
//! legacy `graphql-ws` (subscriptions-transport-ws) protocol.
//!
//! When a client offers both subprotocols, `graphql-transport-ws` is chosen.
//! With `ITSM_CORS_ORIGINS` set, an upgrade from an `Origin` not listed gets 403.
//!
//! The token travels in the `connection_init` payload, as
//! `{"Authorization": "Bearer …"}` (any case), `{"headers": {"Authorization":
//! …}}` or `{"authToken": …}`; no token means an anonymous connection. A
//! client's close is answered with a close frame carrying its code.
//! Close codes: 4403 for a bad token, and when the token expires while the
//! socket is open; 4408 when no `connection_init` arrives in time; 4401 for an
//! operation sent before the handshake; 4409 for an operation id already in
//! use; 1001 when the server shuts down. Past the per-socket cap, a new
//! operation gets an `error` of its own. The server pings (`ping`, or `ka` on
//! the legacy protocol) at the keep-alive interval.

use std::{
    collections::{HashMap, HashSet},
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_graphql::{
    Data,
    http::{WebSocket as GraphQLWebSocket, WebSocketProtocols, WsMessage},
};
use axum::body::Bytes;
use axum::{
    extract::{
        FromRequestParts, Request, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::{
    AppState,
    capacity::Refusal,
    client_address, error_response, request_id,
    strict_json::{self, JsonError},
};
use crate::{
    auth::{Auth, AuthError},
    graphql::{
        RequestId,
        multiplex::{Admitted, Frame, Joining},
        rate::ClientAddress,
        shape::{ShapeError, ShapeLimits, check_document, top_level_string},
    },
};

/// Close code for a refused `connection_init`, and for a token that expired
/// while the socket was open (graphql-ws clients reconnect on it).
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// Close code for an operation sent before the handshake completed.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code for a missing `connection_init`.
pub const CLOSE_INIT_TIMEOUT: u16 = 4408;
/// Close code for an operation id already in use.
pub const CLOSE_DUPLICATE: u16 = 4409;
/// Close code when the server shuts down.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code when the viewer already has as many sockets open as allowed.
pub const CLOSE_TOO_MANY: u16 = 4429;
/// Close code for a message larger than the limit (RFC 6455).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a message that is not valid JSON of the protocol.
pub const CLOSE_INVALID: u16 = 4400;
/// The furthest a token's expiry is taken into account; later expiries are
/// treated as this far away (and a client-chosen `exp` cannot overflow a clock).
const MAX_SESSION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long one message may wait for a client that stopped reading (its TCP
/// window closed) before the socket is dropped: a stalled client holds
/// neither memory nor a shutdown hostage.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Shared responses queued for a socket that go out in one write at most.
const MAX_BATCH: usize = 64;

/// Answers the upgrade request with the subprotocol the client offered,
/// `graphql-transport-ws` when it offers both.
pub async fn upgrade(state: AppState, request: Request) -> Response {
    let id = request_id(&request);
    let address = client_address(&request);
    let (mut parts, _body) = request.into_parts();
    if !state.origins.allows_socket(
        parts.headers.get(header::ORIGIN),
        parts.headers.get(header::HOST),
    ) {
        tracing::info!(origin = ?parts.headers.get(header::ORIGIN), "websocket refused: origin not allowed");
        return error_response(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this origin may not open a WebSocket here (see ITSM_CORS_ORIGINS)".into(),
            None,
        );
    }
    let offered: Vec<WebSocketProtocols> = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|offered| offered.split(','))
        .filter_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        .collect();
    let protocol = offered
        .iter()
        .find(|p| matches!(p, WebSocketProtocols::GraphQLWS))
        .or_else(|| offered.first())
        .copied();
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
    // Refused before the upgrade, while the client can still read a status.
    let Some(slot) = state.capacity.websocket() else {
        tracing::info!("websocket refused: the listener holds as many as it may");
        return state.capacity.refusal(Refusal::Websockets);
    };
    let span = tracing::info_span!("websocket", request_id = %id, protocol = protocol.sec_websocket_protocol());
    upgrade
        .protocols([protocol.sec_websocket_protocol()])
        // Client messages are small: start small (the buffer grows for a
        // larger one), and cap them like HTTP bodies. The buffer is held for
        // the socket's life, so it is most of what an idle socket costs.
        .read_buffer_size(1024)
        .max_message_size(state.settings.max_body_bytes)
        .on_upgrade(move |socket| {
            async move {
                let open = state.metrics.websocket(protocol.sec_websocket_protocol());
                serve(socket, state, protocol, id, address).await;
                drop(open);
                drop(slot);
            }
            .instrument(span)
        })
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    protocol: WebSocketProtocols,
    id: String,
    address: Option<ClientAddress>,
) {
    let (mut sink, mut source) = socket.split();
    // Client messages reach async-graphql only after the guard has seen them.
    let (to_graphql, from_client) = mpsc::channel::<Bytes>(16);
    let input = stream::unfold(from_client, |mut receiver| async move {
        receiver.recv().await.map(|bytes| (bytes, receiver))
    });

    let refused = Arc::new(AtomicBool::new(false));
    let crowded = Arc::new(AtomicBool::new(false));
    let session = Arc::new(Mutex::new(None::<u64>));
    // The accepted authentication, for the operations this socket runs.
    let accepted = Arc::new(Mutex::new(None::<Auth>));
    let accepted_by_init = accepted.clone();
    let authenticator = state.authenticator.clone();
    let refused_by_init = refused.clone();
    let crowded_by_init = crowded.clone();
    let session_of_init = session.clone();
    let sockets = state.sockets.clone();
    let max_per_viewer = state.settings.ws_max_per_viewer;
    let on_init = move |payload: Value| async move {
        let header = authorization(&payload);
        match authenticator.from_authorization(header.as_deref()).await {
            Ok(auth) => {
                let mut data = Data::default();
                if let Auth::Viewer(viewer) = &auth {
                    if let Ok(mut ends) = session_of_init.lock() {
                        *ends = viewer.expires_at;
                    }
                    // The claim lives in the connection's data: dropped with it.
                    match sockets.claim(viewer.user.id, max_per_viewer) {
                        Some(claim) => data.insert(claim),
                        None => {
                            tracing::info!(
                                user = viewer.user.id,
                                "too many sockets for one viewer"
                            );
                            crowded_by_init.store(true, Ordering::SeqCst);
                            return Err(async_graphql::Error::new("Too many connections"));
                        }
                    }
                }
                if let Ok(mut accepted) = accepted_by_init.lock() {
                    *accepted = Some(auth.clone());
                }
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
    connection_data.insert(RequestId(id.clone()));
    if let Some(address) = address {
        connection_data.insert(address);
    }
    // async-graphql speaks the handshake and pings; the socket runs the
    // operations itself, so that subscriptions can share an execution.
    let messages = GraphQLWebSocket::new(state.schema.clone(), input, protocol)
        .connection_data(connection_data)
        .on_connection_init(on_init);
    futures_util::pin_mut!(messages);
    let mut operations = stream::SelectAll::<Operation>::new();
    let mut running: HashMap<Arc<str>, Running> = HashMap::new();
    let mut operation_data: Option<Arc<Data>> = None;
    // Responses shared by a group of subscriptions (see `events::multiplex`).
    let (frames, mut shared) = mpsc::channel::<Frame>(state.bus.capacity());

    let mut guard = Guard::new(
        protocol,
        state.settings.ws_max_subscriptions,
        state.limits.shape,
    );
    let init_deadline = tokio::time::sleep(state.settings.ws_init_timeout);
    tokio::pin!(init_deadline);
    // Far in the future until a token with an expiry is accepted.
    let expiry = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(expiry);
    let mut expiry_armed = false;
    let mut keepalive =
        tokio::time::interval(state.settings.ws_keepalive.max(Duration::from_millis(100)));
    keepalive.tick().await;
    let mut shutdown = state.shutdown.clone();
    let close = loop {
        tokio::select! {
            // In this order. Shared responses first: a biased select polls
            // no branch after the first ready one, so a delivery (the
            // common wake) touches nothing else; and a shared response
            // queued before its operation ended goes out before the
            // operation's `complete`.
            biased;
            Some(frame) = shared.recv() => {
                // Everything queued goes out in one write.
                let mut batch = Vec::new();
                let mut next = Some(frame);
                while let Some(frame) = next {
                    // Dropped when its operation was stopped meanwhile.
                    if let Some(operation) = running.get(&frame.operation)
                        && let Ok(payload) = std::str::from_utf8(&frame.payload)
                    {
                        batch.push(Message::Text(operation.wrap(payload).into()));
                    }
                    next = if batch.len() < MAX_BATCH { shared.try_recv().ok() } else { None };
                }
                if send_all(&mut sink, batch).await.is_err() {
                    return;
                }
            }
            _ = shutdown.changed() => {
                break Some((CLOSE_GOING_AWAY, "Server shutting down".into()));
            }
            incoming = source.next() => match incoming {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    let bytes = message.into_data();
                    match guard.inspect(&bytes) {
                        Verdict::Forward => {
                            if to_graphql.send(bytes).await.is_err() {
                                break None;
                            }
                        }
                        Verdict::Start(operation, payload) => {
                            let Ok(request) =
                                serde_json::from_value::<async_graphql::Request>(payload.clone())
                            else {
                                break Some((CLOSE_INVALID, "Invalid message received".into()));
                            };
                            let data = operation_data
                                .get_or_insert_with(|| {
                                    let auth = accepted.lock().ok().and_then(|auth| auth.clone());
                                    operation_session(&id, address, auth)
                                })
                                .clone();
                            let operation: Arc<str> = operation.into();
                            let admitted = Arc::new(Mutex::new(None));
                            let joining = Joining {
                                payload: Arc::new(payload),
                                session: data.clone(),
                                schema: state.schema.clone(),
                                operation: operation.clone(),
                                frames: frames.clone(),
                                multiplexer: state.multiplexer.clone(),
                                joined: false.into(),
                                admitted: admitted.clone(),
                                metrics: state.metrics.clone(),
                            };
                            let responses = state
                                .schema
                                .execute_stream_with_session_data(request.data(joining), data);
                            let abort = run(&mut operations, &operation, responses);
                            let prefix = guard.next_prefix(&operation);
                            running.insert(operation, Running { abort, admitted, prefix });
                        }
                        Verdict::Stop(operation) => {
                            if let Some(stopped) = running.remove(operation.as_str()) {
                                stopped.abort.abort();
                                let complete = Guard::complete_message(&operation);
                                if send(&mut sink, Message::Text(complete.into())).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Verdict::Reply(reply) => {
                            if send(&mut sink, Message::Text(reply.to_string().into())).await.is_err() {
                                return;
                            }
                        }
                        Verdict::Close(code, reason) => break Some((code, reason)),
                    }
                }
                Some(Err(ref error)) if is_too_big(error) => {
                    break Some((CLOSE_TOO_BIG, "Message too big".into()));
                }
                Some(Ok(Message::Close(_))) => {
                    // The reply to the client's close is queued by the
                    // WebSocket layer: send it, so the client sees a clean
                    // close with its own code rather than 1006.
                    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.close()).await;
                    return;
                }
                Some(Err(_)) | None => break None,
                Some(Ok(_)) => {}
            },
            Some((operation, response)) = operations.next(), if !operations.is_empty() => {
                let text = match response {
                    Some(response) => match serde_json::to_string(&response) {
                        Ok(payload) => guard.next_message(&operation, &payload),
                        Err(_) => continue,
                    },
                    None => {
                        let admitted = running
                            .get(&operation)
                            .and_then(|running| running.admitted.lock().ok()?.take());
                        if let Some(admitted) = admitted {
                            // Admitted to a group: the membership carries on
                            // in place of the finished admission.
                            let abort = run(&mut operations, &operation, admitted.responses());
                            if let Some(running) = running.get_mut(&operation) {
                                running.abort = abort;
                            }
                            continue;
                        }
                        running.remove(&operation);
                        guard.finished(&operation);
                        Guard::complete_message(&operation)
                    }
                };
                if send(&mut sink, Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            message = messages.next() => match message {
                Some(WsMessage::Text(text)) => {
                    guard.sent(&text);
                    if !expiry_armed && guard.acknowledged {
                        expiry_armed = true;
                        if let Some(at) = session.lock().ok().and_then(|ends| *ends) {
                            expiry.as_mut().reset(deadline_at(at));
                        }
                    }
                    if send(&mut sink, Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(WsMessage::Close(code, reason)) => break Some((code, reason)),
                None => break None,
            },
            () = &mut init_deadline, if !guard.acknowledged => {
                break Some((CLOSE_INIT_TIMEOUT, "Connection initialisation timeout".into()));
            }
            () = &mut expiry, if expiry_armed => {
                break Some((CLOSE_FORBIDDEN, "Forbidden: token expired".into()));
            }
            _ = keepalive.tick() => {
                if send(&mut sink, Message::Text(guard.keepalive().into())).await.is_err() {
                    return;
                }
            }
        }
    };
    let (code, reason) = if crowded.load(Ordering::SeqCst) {
        (
            CLOSE_TOO_MANY,
            "Too many connections for this viewer".to_owned(),
        )
    } else if refused.load(Ordering::SeqCst) {
        (CLOSE_FORBIDDEN, "Forbidden".to_owned())
    } else {
        close.unwrap_or((1000, String::new()))
    };
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = send(&mut sink, Message::Close(Some(frame))).await;
}

/// One operation a socket runs: its responses, then `None` when it ends.
type Operation = stream::BoxStream<'static, (Arc<str>, Option<async_graphql::Response>)>;

/// An operation running on a socket.
struct Running {
    /// Stops it.
    abort: stream::AbortHandle,
    /// Its membership of a group, once admitted to one.
    admitted: Arc<Mutex<Option<Admitted>>>,
    /// Its `next` message up to the payload, for the shared responses.
    prefix: String,
}

impl Running {
    /// The `next` message around a serialised response.
    fn wrap(&self, payload: &str) -> String {
        let mut text = String::with_capacity(self.prefix.len() + payload.len() + 1);
        text.push_str(&self.prefix);
        text.push_str(payload);
        text.push('}');
        text
    }
}

/// Runs `responses` as `operation` among `operations`; returns what stops it.
fn run(
    operations: &mut stream::SelectAll<Operation>,
    operation: &Arc<str>,
    responses: stream::BoxStream<'static, async_graphql::Response>,
) -> stream::AbortHandle {
    let (abort, registration) = stream::AbortHandle::new_pair();
    let name = operation.clone();
    operations.push(
        stream::Abortable::new(
            responses.map(Some).chain(stream::once(async { None })),
            registration,
        )
        .map(move |response| (name.clone(), response))
        .boxed(),
    );
    abort
}

/// The data every operation of a socket runs with.
fn operation_session(id: &str, address: Option<ClientAddress>, auth: Option<Auth>) -> Arc<Data> {
    let mut data = Data::default();
    data.insert(RequestId(id.to_owned()));
    if let Some(address) = address {
        data.insert(address);
    }
    if let Some(auth) = auth {
        data.insert(auth);
    }
    Arc::new(data)
}

/// The sockets each signed-in viewer has open, to cap them.
#[derive(Debug, Default)]
pub struct SocketCounts(Mutex<HashMap<i64, usize>>);

/// One open socket of a viewer; counted until dropped.
pub struct SocketClaim {
    counts: Arc<SocketCounts>,
    user: i64,
}

impl SocketCounts {
    /// Counts one more socket for `user`, unless they have `max` already
    /// (0 means no cap).
    pub fn claim(self: &Arc<Self>, user: i64, max: usize) -> Option<SocketClaim> {
        let mut counts = self.0.lock().ok()?;
        let open = counts.entry(user).or_insert(0);
        if max > 0 && *open >= max {
            return None;
        }
        *open += 1;
        Some(SocketClaim {
            counts: self.clone(),
            user,
        })
    }
}

impl Drop for SocketClaim {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.0.lock()
            && let Some(open) = counts.get_mut(&self.user)
        {
            *open = open.saturating_sub(1);
            if *open == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

/// Sends `messages` with one flush, giving up after [`SEND_TIMEOUT`].
async fn send_all<S>(sink: &mut S, messages: Vec<Message>) -> Result<(), ()>
where
    S: futures_util::Sink<Message> + Unpin,
{
    let write = async {
        for message in messages {
            sink.feed(message).await?;
        }
        sink.flush().await
    };
    match tokio::time::timeout(SEND_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(()),
        Err(_) => {
            tracing::info!("websocket client stopped reading; dropping the socket");
            Err(())
        }
    }
}

/// Sends one message, giving up after [`SEND_TIMEOUT`].
async fn send<S>(sink: &mut S, message: Message) -> Result<(), ()>
where
    S: futures_util::Sink<Message> + Unpin,
{
    send_all(sink, vec![message]).await
}

/// The tokio instant at which `epoch_seconds` arrives, at most [`MAX_SESSION`]
/// from now.
fn deadline_at(epoch_seconds: u64) -> tokio::time::Instant {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_secs(epoch_seconds)
        .saturating_sub(now)
        .min(MAX_SESSION);
    let start = tokio::time::Instant::now();
    start.checked_add(left).unwrap_or(start)
}

/// Whether a read failed because the message exceeded the size limit.
fn is_too_big(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(tungstenite::Error::Capacity(_)) = current.downcast_ref::<tungstenite::Error>()
        {
            return true;
        }
        source = current.source();
    }
    false
}

/// What to do with one client message.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Pass it to the GraphQL engine.
    Forward,
    /// Start operation `id` with this `subscribe` (or `start`) payload.
    Start(String, Value),
    /// Stop operation `id`.
    Stop(String),
    /// Answer it here (an operation refused on its own).
    Reply(Value),
    /// Close the socket.
    Close(u16, String),
}

/// Enforces the parts of the protocols async-graphql leaves open: nothing
/// before the handshake, unique operation ids, and a cap on operations.
#[derive(Debug)]
struct Guard {
    protocol: WebSocketProtocols,
    limit: usize,
    shape: ShapeLimits,
    acknowledged: bool,
    active: HashSet<String>,
}

impl Guard {
    fn new(protocol: WebSocketProtocols, limit: usize, shape: ShapeLimits) -> Self {
        Self {
            protocol,
            limit,
            shape,
            acknowledged: false,
            active: HashSet::new(),
        }
    }

    /// An `error` message for operation `id`.
    fn error(&self, id: &str, errors: Value) -> Verdict {
        let payload = if self.modern() {
            errors
        } else {
            json!({"errors": errors})
        };
        Verdict::Reply(json!({"id": id, "type": "error", "payload": payload}))
    }

    fn modern(&self) -> bool {
        self.protocol == WebSocketProtocols::GraphQLWS
    }

    fn inspect(&mut self, bytes: &[u8]) -> Verdict {
        // The message, its payload and the variables object wrap the variables' values.
        let max_nesting = self.shape.max_nesting.saturating_add(3);
        let mut message = match strict_json::parse(bytes, max_nesting) {
            Ok(message) => message,
            Err(JsonError::TooDeep(_)) => {
                let kind = top_level_string(bytes, "type").unwrap_or_default();
                let id = top_level_string(bytes, "id");
                return match id {
                    Some(id)
                        if self.acknowledged && matches!(kind.as_str(), "subscribe" | "start") =>
                    {
                        let error = ShapeError::VariablesTooDeep(self.shape.max_nesting);
                        self.error(&id, json!([error.to_json()]))
                    }
                    _ => Verdict::Close(CLOSE_INVALID, "Invalid message received".into()),
                };
            }
            Err(JsonError::Invalid(_)) => {
                return Verdict::Close(CLOSE_INVALID, "Invalid message received".into());
            }
        };
        let kind = message["type"].as_str().unwrap_or_default();
        let id = message["id"].as_str().unwrap_or_default().to_owned();
        match kind {
            "subscribe" | "start" => {
                if !self.acknowledged {
                    return Verdict::Close(CLOSE_UNAUTHORIZED, "Unauthorized".into());
                }
                let query = message["payload"]["query"].as_str().unwrap_or_default();
                if let Err(error) = check_document(query, &self.shape) {
                    return self.error(&id, json!([error.to_json()]));
                }
                if self.active.contains(&id) {
                    return Verdict::Close(
                        CLOSE_DUPLICATE,
                        format!("Subscriber for {id} already exists"),
                    );
                }
                if self.active.len() >= self.limit {
                    let error = json!([{
                        "message": format!("at most {} operations may run on one connection; complete one first", self.limit),
                        "extensions": {"code": "RATE_LIMITED"}
                    }]);
                    return self.error(&id, error);
                }
                self.active.insert(id.clone());
                let payload = message.get_mut("payload").map(Value::take);
                Verdict::Start(id, payload.unwrap_or_default())
            }
            "complete" | "stop" => {
                self.active.remove(&id);
                Verdict::Stop(id)
            }
            _ => Verdict::Forward,
        }
    }

    /// Operation `id` ended on the server's side.
    fn finished(&mut self, id: &str) {
        self.active.remove(id);
    }

    /// The `next` (legacy: `data`) message of operation `id` up to its
    /// payload; the message ends with the payload and `}`.
    fn next_prefix(&self, id: &str) -> String {
        let kind = if self.modern() { "next" } else { "data" };
        format!(r#"{{"type":"{kind}","id":{},"payload":"#, Value::from(id))
    }

    /// The `next` (legacy: `data`) message of operation `id` around a
    /// serialised response.
    fn next_message(&self, id: &str, payload: &str) -> String {
        let mut text = self.next_prefix(id);
        text.push_str(payload);
        text.push('}');
        text
    }

    /// The `complete` message of operation `id`.
    fn complete_message(id: &str) -> String {
        json!({"type": "complete", "id": id}).to_string()
    }

    /// Notes what the server sent: the handshake, and finished operations.
    fn sent(&mut self, text: &str) {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return;
        };
        match message["type"].as_str().unwrap_or_default() {
            "connection_ack" => self.acknowledged = true,
            "complete" | "error" => {
                if let Some(id) = message["id"].as_str() {
                    self.active.remove(id);
                }
            }
            _ => {}
        }
    }

    fn keepalive(&self) -> String {
        if self.modern() {
            json!({"type": "ping"}).to_string()
        } else {
            json!({"type": "ka"}).to_string()
        }
    }
}

/// The token of a `connection_init` payload, in the shapes clients send it:
/// `{"Authorization": …}` (any case), `{"headers": {"Authorization": …}}`
/// (Apollo, Hasura) or `{"authToken": …}`. A bare token (without `Bearer`)
/// is accepted too.
fn authorization(payload: &Value) -> Option<String> {
    let entry = |object: &serde_json::Map<String, Value>, name: &str| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    let object = payload.as_object()?;
    let value = entry(object, "authorization")
        .or_else(|| {
            entry(object, "headers")
                .and_then(|headers| entry(headers.as_object()?, "authorization"))
        })
        .or_else(|| entry(object, "authToken"))?;
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
        assert_eq!(
            authorization(&json!({"headers": {"Authorization": "Bearer abc"}})).as_deref(),
            Some("Bearer abc")
        );
        assert_eq!(
            authorization(&json!({"headers": {"authorization": "abc"}})).as_deref(),
            Some("Bearer abc")
        );
        assert_eq!(
            authorization(&json!({"authToken": "abc"})).as_deref(),
            Some("Bearer abc")
        );
        assert_eq!(
            authorization(&json!({"headers": {"x-other": "1"}})),
            None,
            "no token: anonymous"
        );
        assert_eq!(
            authorization(&json!({"headers": "Bearer abc"})),
            None,
            "headers must be an object"
        );
        assert_eq!(authorization(&json!({})), None);
        assert_eq!(authorization(&json!(null)), None);
    }
}
