//! `itsm-bench saturate`: opens signed-in WebSocket subscriptions until the
//! server refuses them (or `--hold` are open), then, while it is full,
//! measures how fast refusals come and whether health and a GraphQL request
//! still answer; finally closes its sockets and measures how long the server
//! takes to be ready and to accept a subscription again. With `--keep` it
//! only holds `--hold` sockets until its standard input closes, so that
//! several processes can together hold more sockets than one may open.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::queue_page::percentile;

/// Fill a server with WebSockets, then measure refusals, health and recovery.
#[derive(Debug, Args)]
pub struct Saturate {
    /// The GraphQL endpoint (HTTP); the WebSocket URL is derived from it.
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    url: String,
    /// The admin listener's base URL (`http://host:port`).
    #[arg(long)]
    admin_url: String,
    /// Token of the subscribing viewer.
    #[arg(long)]
    token: String,
    /// The most sockets this process opens.
    #[arg(long, default_value_t = 19_000)]
    hold: usize,
    /// Hold `--hold` sockets until standard input closes; measure nothing.
    #[arg(long)]
    keep: bool,
    /// Refusals to collect once the server is full.
    #[arg(long, default_value_t = 200)]
    refusals: usize,
    /// Sockets opened at once.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
}

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// How one attempt to subscribe ended.
enum Attempt {
    Held(Box<Socket>),
    Refused(Duration),
    Failed(String),
}

fn ws_url(url: &str) -> String {
    url.replacen("http", "ws", 1)
}

async fn subscribe(url: &str, token: &str) -> Attempt {
    let started = Instant::now();
    let Ok(mut request) = ws_url(url).into_client_request() else {
        return Attempt::Failed("bad URL".into());
    };
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let mut socket = match connect_async(request).await {
        Ok((socket, _)) => socket,
        Err(tungstenite::Error::Http(response)) => {
            if response.status() == 503 && response.headers().contains_key("retry-after") {
                return Attempt::Refused(started.elapsed());
            }
            return Attempt::Failed(format!("upgrade answered {}", response.status()));
        }
        Err(error) => return Attempt::Failed(format!("{error}")),
    };
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    let subscribe = json!({"id": "1", "type": "subscribe",
        "payload": {"query": "subscription { myTicketUpdates { seq kind } }"}});
    let handshake = async {
        socket.send(Message::text(init.to_string())).await?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) if text.contains("connection_ack") => break,
                Some(Ok(Message::Text(text))) if text.contains("\"ping\"") => {}
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => anyhow::bail!("no connection_ack: {other:?}"),
            }
        }
        socket.send(Message::text(subscribe.to_string())).await?;
        anyhow::Ok(())
    };
    match handshake.await {
        Ok(()) => Attempt::Held(Box::new(socket)),
        Err(error) => Attempt::Failed(format!("{error:#}")),
    }
}

/// Opens up to `hold` subscriptions; stops early after `refusals` refusals.
async fn fill(args: &Saturate, refusals: usize) -> (Vec<Box<Socket>>, Vec<Duration>, Vec<String>) {
    let mut held = Vec::new();
    let mut refused = Vec::new();
    let mut failed = Vec::new();
    let mut attempts = stream::iter(0..args.hold)
        .map(|_| subscribe(&args.url, &args.token))
        .buffer_unordered(args.connect_concurrency);
    while let Some(attempt) = attempts.next().await {
        match attempt {
            Attempt::Held(socket) => held.push(socket),
            Attempt::Refused(took) => refused.push(took),
            Attempt::Failed(error) => failed.push(error),
        }
        if refused.len() >= refusals {
            break;
        }
    }
    (held, refused, failed)
}

/// Times `count` GETs of `url`, each on a connection of its own.
async fn probe(url: &str, count: usize) -> (Vec<Duration>, Vec<u16>) {
    let mut took = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..count {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let started = Instant::now();
        let status = client
            .get(url)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        took.push(started.elapsed());
        statuses.push(status);
    }
    took.sort();
    (took, statuses)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the saturation benchmark.
pub async fn run(args: Saturate) -> anyhow::Result<()> {
    if args.keep {
        let (held, refused, failed) = fill(&args, usize::MAX).await;
        println!(
            "holding {} sockets ({} refused, {} failed)",
            held.len(),
            refused.len(),
            failed.len()
        );
        // Hold until whoever started us closes our standard input.
        let _ = tokio::task::spawn_blocking(|| {
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())
        })
        .await;
        drop(held);
        return Ok(());
    }
    let started = Instant::now();
    let (held, mut refused, failed) = fill(&args, args.refusals).await;
    if refused.is_empty() {
        bail!(
            "the server took all {} sockets without refusing one ({} failed{})",
            held.len(),
            failed.len(),
            failed
                .first()
                .map(|f| format!("; the first: {f}"))
                .unwrap_or_default()
        );
    }
    refused.sort();
    println!(
        "full after {:.1} s: this process holds {} subscriptions; {} upgrades refused with 503 + Retry-After \
         (p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms); {} failed otherwise",
        started.elapsed().as_secs_f64(),
        held.len(),
        refused.len(),
        ms(percentile(&refused, 50.0)),
        ms(percentile(&refused, 99.0)),
        ms(refused.last().copied().unwrap_or_default()),
        failed.len(),
    );
    if let Some(first) = failed.first() {
        println!("  first other failure: {first}");
    }
    // Then plain HTTP connections, kept open, until the connection budget
    // itself is spent and new connections are answered 503 and closed.
    let address = args
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .context("no host in --url")?
        .to_owned();
    let mut idle = Vec::new();
    let mut turned_away = Vec::new();
    while turned_away.len() < 50 && idle.len() < 5_000 {
        let started = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(&address).await?;
        stream
            .write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            .await?;
        let mut buffer = [0u8; 512];
        let read = stream.read(&mut buffer).await?;
        let head = String::from_utf8_lossy(&buffer[..read]);
        if head.starts_with("HTTP/1.1 404") {
            idle.push(stream);
        } else if head.starts_with("HTTP/1.1 503")
            && head.to_ascii_lowercase().contains("retry-after")
        {
            turned_away.push(started.elapsed());
        } else {
            bail!("unexpected answer: {head}");
        }
    }
    turned_away.sort();
    println!(
        "then {} idle HTTP connections filled the connection budget; {} more connections answered 503 \
         + Retry-After and closed (p50 {:.1} ms, p99 {:.1} ms)",
        idle.len(),
        turned_away.len(),
        ms(percentile(&turned_away, 50.0)),
        ms(percentile(&turned_away, 99.0)),
    );
    let base = args.url.trim_end_matches("/graphql");
    for (name, url) in [
        ("admin /healthz", format!("{}/healthz", args.admin_url)),
        ("admin /readyz", format!("{}/readyz", args.admin_url)),
        ("public /healthz", format!("{base}/healthz")),
        ("public /readyz", format!("{base}/readyz")),
    ] {
        let (took, statuses) = probe(&url, 20).await;
        let mut counts: Vec<(u16, usize)> = Vec::new();
        for status in statuses {
            match counts.iter_mut().find(|(s, _)| *s == status) {
                Some((_, n)) => *n += 1,
                None => counts.push((status, 1)),
            }
        }
        println!(
            "  while full, {name:<16} statuses {counts:?}   p50 {:.1} ms  p99 {:.1} ms",
            ms(percentile(&took, 50.0)),
            ms(percentile(&took, 99.0)),
        );
    }
    let client = reqwest::Client::new();
    let started = Instant::now();
    let graphql = client
        .post(&args.url)
        .bearer_auth(&args.token)
        .json(&json!({"query": "{ viewer { displayName } }"}))
        .send()
        .await
        .context("GraphQL while full")?;
    println!(
        "  while full, a GraphQL request: HTTP {} in {:.1} ms",
        graphql.status(),
        ms(started.elapsed())
    );

    // Recovery: close everything this process holds.
    let closing = Instant::now();
    drop(held);
    drop(idle);
    let ready = loop {
        let status = client
            .get(format!("{}/readyz", args.admin_url))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        if status == 200 {
            break closing.elapsed();
        }
        if closing.elapsed() > Duration::from_secs(60) {
            bail!("not ready 60 s after the sockets closed");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let subscribed = loop {
        match subscribe(&args.url, &args.token).await {
            Attempt::Held(_) => break closing.elapsed(),
            Attempt::Refused(_) if closing.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Attempt::Refused(_) => bail!("still refused 60 s after the sockets closed"),
            Attempt::Failed(error) => bail!("subscribing after recovery failed: {error}"),
        }
    };
    let body: Value = client
        .get(format!("{}/readyz", args.admin_url))
        .send()
        .await?
        .json()
        .await
        .unwrap_or(Value::Null);
    println!(
        "recovery after closing: ready in {:.0} ms, a new subscription accepted in {:.0} ms ({body})",
        ms(ready),
        ms(subscribed)
    );
    Ok(())
}
