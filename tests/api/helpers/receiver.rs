//! A webhook receiver on a real port: it records every request it gets and
//! answers as the test scripts it (succeed, fail with a status, or stall
//! past the sender's timeout), so tests can watch retries and recovery.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use itsm::webhooks::signature::Secret;
use serde_json::Value;
use tokio::sync::mpsc;

/// How long a test waits for the next request.
const WAIT: Duration = Duration::from_secs(30);

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 204.
    Accept,
    /// This status.
    Status(u16),
    /// Nothing for this long, then 204 (the sender has given up by then).
    Stall(Duration),
}

/// One request the receiver got, with how it answered.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
    /// The body as sent.
    pub raw: Vec<u8>,
    /// The body as JSON.
    pub body: Value,
    /// How the receiver answered.
    pub answer: Answer,
}

impl Received {
    /// The event's sequence number.
    pub fn seq(&self) -> i64 {
        self.body["data"]["seq"].as_i64().expect("data.seq")
    }

    /// Whether one of the signatures is `secret`'s over this request.
    pub fn signed_with(&self, secret: &str) -> bool {
        let secret = Secret::parse(secret).expect("a whsec_ secret");
        let timestamp: i64 = self.timestamp.parse().expect("a numeric timestamp");
        let expected = secret.sign(&self.id, timestamp, &self.raw);
        self.signature.split(' ').any(|s| s == expected)
    }

    /// Whether the receiver accepted it.
    pub fn accepted(&self) -> bool {
        self.answer == Answer::Accept
    }
}

struct Script {
    next: Mutex<VecDeque<Answer>>,
    otherwise: Mutex<Answer>,
    sent: mpsc::UnboundedSender<Received>,
}

/// The running receiver.
pub struct Receiver {
    /// Where it listens.
    pub address: SocketAddr,
    script: Arc<Script>,
    received: mpsc::UnboundedReceiver<Received>,
}

async fn take(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let answer = script
        .next
        .lock()
        .expect("script")
        .pop_front()
        .unwrap_or_else(|| *script.otherwise.lock().expect("script"));
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let received = Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
        answer,
    };
    script.sent.send(received).ok();
    match answer {
        Answer::Accept => StatusCode::NO_CONTENT,
        Answer::Status(code) => StatusCode::from_u16(code).expect("a status"),
        Answer::Stall(wait) => {
            tokio::time::sleep(wait).await;
            StatusCode::NO_CONTENT
        }
    }
}

impl Receiver {
    /// Starts a receiver that accepts everything until told otherwise.
    pub async fn start() -> Self {
        let (sent, received) = mpsc::unbounded_channel();
        let script = Arc::new(Script {
            next: Mutex::default(),
            otherwise: Mutex::new(Answer::Accept),
            sent,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let app = Router::new()
            .route("/hook", post(take))
            .with_state(script.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self {
            address,
            script,
            received,
        }
    }

    /// The URL to register.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Answers the next requests in this order, then as [`Receiver::otherwise`] says.
    pub fn script(&self, answers: &[Answer]) {
        self.script
            .next
            .lock()
            .expect("script")
            .extend(answers.iter().copied());
    }

    /// Answers every unscripted request this way from now on.
    pub fn otherwise(&self, answer: Answer) {
        *self.script.otherwise.lock().expect("script") = answer;
    }

    /// The next request.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.received.recv())
            .await
            .expect("a webhook request in time")
            .expect("the receiver runs")
    }

    /// Requests until `count` of them were accepted; all of them, in order.
    pub async fn until_accepted(&mut self, count: usize) -> Vec<Received> {
        let mut all = Vec::new();
        while all.iter().filter(|r: &&Received| r.accepted()).count() < count {
            all.push(self.next().await);
        }
        all
    }
}
