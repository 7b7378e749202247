//! A subscriber that survives deploys and overload: it follows a queue over
//! `graphql-transport-ws` and, whenever the socket drops or the server turns
//! it away, reconnects
//!
//! - after a random wait of up to 1 s, 2 s, 4 s … (capped at 30 s), so that
//!   thousands of clients dropped at once by a deploy do not all come back in
//!   the same instant ("full jitter");
//! - never sooner than the `Retry-After` of a 503 refusal (the server adds a
//!   jitter of its own);
//! - resuming from the cursor of the last event it saw, so nothing is missed
//!   and nothing repeats across reconnects.
//!
//! ```text
//! cargo run --example subscribe -- --url ws://127.0.0.1:8080/graphql \
//!     --token "$(itsm token --sub nina.network --role agent)" --queue <queue id>
//! ```
//!
//! The same pattern in JavaScript with graphql-ws is in the README ("Overload").

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue},
};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const SUBSCRIPTION: &str = "subscription($queue: ID!, $after: String) {
  queueUpdates(queueId: $queue, after: $after) { cursor seq kind ticket { number title status } }
}";

/// Exponential back-off with full jitter.
pub struct Backoff {
    attempt: u32,
    first: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Self {
        Self {
            attempt: 0,
            first,
            cap,
        }
    }

    /// The wait before the next attempt: random up to the doubling ceiling,
    /// and never less than what the server asked for.
    pub fn next_wait(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .first
            .saturating_mul(1 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let jittered = ceiling.mul_f64(rand::random::<f64>());
        jittered.max(retry_after.unwrap_or_default())
    }

    /// After a connection that worked: start from the shortest wait again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// What the follower tells its caller.
#[derive(Debug)]
pub enum Update {
    /// The server refused the upgrade; the follower waits this long.
    Refused {
        retry_after: Option<Duration>,
        wait: Duration,
    },
    /// The connection failed or dropped; the follower waits this long.
    Disconnected { reason: String, wait: Duration },
    /// Subscribed, resuming after this cursor.
    Subscribed { after: Option<String> },
    /// One event of the queue.
    Event(Value),
}

enum Failure {
    Refused(Option<Duration>),
    Other(String),
}

async fn open(url: &str, token: &str) -> Result<Socket, Failure> {
    let mut request = url
        .into_client_request()
        .map_err(|error| Failure::Other(error.to_string()))?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let mut socket = match connect_async(request).await {
        Ok((socket, _)) => socket,
        Err(tungstenite::Error::Http(response)) if response.status() == 503 => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
                .map(Duration::from_secs);
            return Err(Failure::Refused(retry_after));
        }
        Err(error) => return Err(Failure::Other(error.to_string())),
    };
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    send(&mut socket, &init).await?;
    loop {
        match next_json(&mut socket).await? {
            message if message["type"] == "connection_ack" => return Ok(socket),
            message if message["type"] == "ping" => {
                send(&mut socket, &json!({"type": "pong"})).await?;
            }
            other => return Err(Failure::Other(format!("no connection_ack: {other}"))),
        }
    }
}

async fn send(socket: &mut Socket, message: &Value) -> Result<(), Failure> {
    socket
        .send(Message::text(message.to_string()))
        .await
        .map_err(|error| Failure::Other(error.to_string()))
}

async fn next_json(socket: &mut Socket) -> Result<Value, Failure> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text).map_err(|e| Failure::Other(e.to_string()));
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(Failure::Other(format!("closed: {frame:?}")));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(Failure::Other(error.to_string())),
            None => return Err(Failure::Other("closed".into())),
        }
    }
}

/// Follows `queue` for ever (until `updates` is dropped), reconnecting as
/// described above. `after` is where to start: `None` for "from now".
pub async fn follow(
    url: String,
    token: String,
    queue: String,
    mut after: Option<String>,
    mut backoff: Backoff,
    updates: mpsc::Sender<Update>,
) {
    loop {
        let failure = match open(&url, &token).await {
            Ok(mut socket) => {
                backoff.reset();
                let subscribe = json!({"id": "queue", "type": "subscribe", "payload": {
                    "query": SUBSCRIPTION, "variables": {"queue": queue, "after": after}}});
                let subscribed = send(&mut socket, &subscribe).await;
                if updates
                    .send(Update::Subscribed {
                        after: after.clone(),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                let mut failure = subscribed.err();
                while failure.is_none() {
                    match next_json(&mut socket).await {
                        Ok(message) if message["type"] == "next" => {
                            let event = message["payload"]["data"]["queueUpdates"].clone();
                            // Remember where we are before handing the event on.
                            if let Some(cursor) = event["cursor"].as_str() {
                                after = Some(cursor.to_owned());
                            }
                            if updates.send(Update::Event(event)).await.is_err() {
                                return;
                            }
                        }
                        Ok(message) if message["type"] == "ping" => {
                            failure = send(&mut socket, &json!({"type": "pong"})).await.err();
                        }
                        Ok(message) if message["type"] == "error" => {
                            failure =
                                Some(Failure::Other(format!("subscription error: {message}")));
                        }
                        Ok(_) => {}
                        Err(error) => failure = Some(error),
                    }
                }
                failure.unwrap_or(Failure::Other("closed".into()))
            }
            Err(failure) => failure,
        };
        let update = match failure {
            Failure::Refused(retry_after) => Update::Refused {
                retry_after,
                wait: backoff.next_wait(retry_after),
            },
            Failure::Other(reason) => Update::Disconnected {
                reason,
                wait: backoff.next_wait(None),
            },
        };
        let wait = match &update {
            Update::Refused { wait, .. } | Update::Disconnected { wait, .. } => *wait,
            _ => Duration::ZERO,
        };
        if updates.send(update).await.is_err() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

#[tokio::main]
async fn main() {
    let mut url = "ws://127.0.0.1:8080/graphql".to_owned();
    let mut token = String::new();
    let mut queue = String::new();
    let mut after = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--url", Some(value)) => url = value,
            ("--token", Some(value)) => token = value,
            ("--queue", Some(value)) => queue = value,
            ("--after", Some(value)) => after = Some(value),
            _ => {
                eprintln!(
                    "usage: subscribe --token TOKEN --queue ID [--url WS_URL] [--after CURSOR]"
                );
                std::process::exit(2);
            }
        }
    }
    if token.is_empty() || queue.is_empty() {
        eprintln!("usage: subscribe --token TOKEN --queue ID [--url WS_URL] [--after CURSOR]");
        std::process::exit(2);
    }
    let (updates, mut received) = mpsc::channel(64);
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    tokio::spawn(follow(url, token, queue, after, backoff, updates));
    while let Some(update) = received.recv().await {
        match update {
            Update::Event(event) => println!("{event}"),
            other => eprintln!("{other:?}"),
        }
    }
}
