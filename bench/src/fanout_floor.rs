//! `itsm-bench subscribers --floor`: the same subscribers, receiving the same
//! messages, from a minimal fan-out server instead of the service. Its CPU
//! per delivery and latency are the floor the service's figures compare
//! with on this machine: what one write per socket per event costs, with no
//! GraphQL, no database and no event log.
//!
//! The floor server is this program, started as `itsm-bench floor-server`
//! in a process of its own, so that its CPU time and memory are its own.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_tungstenite::{
    WebSocketStream, accept_hdr_async_with_config,
    tungstenite::{
        Message,
        handshake::server::{Request, Response},
        http::HeaderValue,
        protocol::WebSocketConfig,
    },
};

use crate::subscribers::{Subscribers, Usages, ramp_up, usage_of};

/// How the floor server writes an event to its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// A task and a queue per socket, as in the service: the event's
    /// payload is serialised once, and each socket's task wraps it in its
    /// operations' messages and writes them.
    Tasks,
    /// One loop writes each socket its ready-framed bytes: one write per
    /// socket per event and nothing else, the least a server can do.
    Direct,
}

/// The minimal fan-out server: speaks just enough of `graphql-transport-ws`
/// for the subscribers; prints its port, starts the events on a line on
/// standard input, and prints `sent` after the last one.
#[derive(Debug, Args)]
pub struct FloorServer {
    #[arg(long, value_enum)]
    mode: Mode,
    /// Subscriptions per socket.
    #[arg(long)]
    per_socket: usize,
    #[arg(long)]
    events: usize,
    #[arg(long)]
    interval_ms: u64,
}

/// A subscribed socket, as the floor server holds it.
enum Socket {
    Task(mpsc::Sender<Arc<str>>),
    Direct(TcpStream),
}

/// Runs the subscribers against the floor server.
pub async fn run(args: &Subscribers, mode: Mode) -> anyhow::Result<()> {
    let mode_name = format!("{mode:?}").to_lowercase();
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["floor-server", "--mode", &mode_name])
        .args(["--per-socket", &args.per_socket.max(1).to_string()])
        .args(["--events", &args.events.to_string()])
        .args(["--interval-ms", &args.interval_ms.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child
        .id()
        .context("the floor server has no pid")?
        .to_string();
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let port: u16 = lines
        .next_line()
        .await?
        .context("the floor server printed no port")?
        .parse()?;
    println!("floor:       {mode_name} (a minimal fan-out server, not the service)");
    let before = usage_of(&pid);
    let own_before = usage_of("self");
    let ramp = ramp_up(args, &format!("ws://127.0.0.1:{port}/"), "floor").await?;
    // As for the service: let the last subscriptions settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = usage_of(&pid);
    let own_held = usage_of("self");
    let started = Instant::now();
    stdin.write_all(b"go\n").await?;
    stdin.flush().await?;
    lines
        .next_line()
        .await?
        .context("the floor server stopped before its last event")?;
    ramp.drain(Duration::from_secs(args.drain_secs)).await;
    let stream_seconds = started.elapsed().as_secs_f64();
    let after = usage_of(&pid);
    let own_after = usage_of("self");
    let written: HashSet<i64> = (1..=i64::try_from(args.events)?).collect();
    let tally = ramp.tally(&written).await;
    child.kill().await?;
    let usages = Usages {
        before,
        held,
        after,
        own: [own_before, own_held, own_after],
        stream_seconds,
    };
    tally.report(args, &usages, None)
}

/// Serves the subscribers until standard input closes.
pub async fn serve(args: FloorServer) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("{}\n", listener.local_addr()?.port()).as_bytes())
        .await?;
    stdout.flush().await?;
    let sockets = Arc::new(Mutex::new(Vec::new()));
    let accepting = {
        let sockets = sockets.clone();
        let (mode, per_socket) = (args.mode, args.per_socket);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sockets = sockets.clone();
                tokio::spawn(async move {
                    if let Ok(socket) = handshake(stream, mode, per_socket).await
                        && let Ok(mut sockets) = sockets.lock()
                    {
                        sockets.push(socket);
                    }
                });
            }
        })
    };
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    input.next_line().await?;
    accepting.abort();
    let mut sockets = std::mem::take(&mut *sockets.lock().map_err(|_| anyhow::anyhow!("lock"))?);
    let mut ticks = tokio::time::interval(Duration::from_millis(args.interval_ms.max(1)));
    for seq in 1..=args.events {
        ticks.tick().await;
        // What the service sends for the subscription, with the time of
        // the event as it would stamp it.
        let occurred = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let payload = json!({"data": {"queueUpdates": {"seq": seq, "kind": "UPDATED", "occurredAt": occurred}}})
            .to_string();
        match args.mode {
            Mode::Tasks => {
                let payload: Arc<str> = payload.into();
                for socket in &sockets {
                    if let Socket::Task(queue) = socket {
                        let _ = queue.try_send(payload.clone());
                    }
                }
            }
            Mode::Direct => {
                let mut frames = Vec::new();
                for operation in 0..args.per_socket {
                    frames.extend(frame(&next_message(&operation.to_string(), &payload)));
                }
                for socket in &mut sockets {
                    if let Socket::Direct(stream) = socket {
                        let _ = stream.write_all(&frames).await;
                    }
                }
            }
        }
    }
    stdout.write_all(b"sent\n").await?;
    stdout.flush().await?;
    // Hold the sockets until the subscribers are done.
    input.next_line().await?;
    Ok(())
}

/// Acknowledges the socket's `connection_init` and reads its subscriptions.
async fn handshake(stream: TcpStream, mode: Mode, per_socket: usize) -> anyhow::Result<Socket> {
    let config = WebSocketConfig::default().read_buffer_size(1024);
    // The signature is tungstenite's.
    #[allow(clippy::result_large_err)]
    let protocol = |_: &Request, mut response: Response| {
        response.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        Ok(response)
    };
    let mut socket = accept_hdr_async_with_config(stream, protocol, Some(config)).await?;
    let mut operations = Vec::with_capacity(per_socket);
    while operations.len() < per_socket {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            anyhow::bail!("the socket closed during its handshake");
        };
        let message: Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some("connection_init") => {
                socket
                    .send(Message::text(json!({"type": "connection_ack"}).to_string()))
                    .await?;
            }
            Some("subscribe") => {
                operations.push(message["id"].as_str().context("an id")?.to_owned());
            }
            _ => {}
        }
    }
    Ok(match mode {
        Mode::Direct => Socket::Direct(socket.into_inner()),
        Mode::Tasks => {
            let (queue, events) = mpsc::channel(64);
            tokio::spawn(write_each(socket, operations, events));
            Socket::Task(queue)
        }
    })
}

/// A socket's task: wraps each payload in its operations' messages and
/// writes them with one flush.
async fn write_each(
    mut socket: WebSocketStream<TcpStream>,
    operations: Vec<String>,
    mut events: mpsc::Receiver<Arc<str>>,
) {
    while let Some(payload) = events.recv().await {
        for operation in &operations {
            if socket
                .feed(Message::text(next_message(operation, &payload)))
                .await
                .is_err()
            {
                return;
            }
        }
        if socket.flush().await.is_err() {
            return;
        }
    }
}

/// The `next` message of `operation` around a serialised payload.
fn next_message(operation: &str, payload: &str) -> String {
    format!(
        r#"{{"type":"next","id":{},"payload":{payload}}}"#,
        Value::from(operation)
    )
}

/// An unmasked WebSocket text frame, as a server sends it.
fn frame(text: &str) -> Vec<u8> {
    let mut frame = Vec::with_capacity(text.len() + 10);
    frame.push(0x81);
    match u16::try_from(text.len()) {
        Ok(length) if length < 126 => frame.push(u8::try_from(length).unwrap_or(125)),
        Ok(length) => {
            frame.push(126);
            frame.extend(length.to_be_bytes());
        }
        Err(_) => {
            frame.push(127);
            frame.extend((text.len() as u64).to_be_bytes());
        }
    }
    frame.extend(text.as_bytes());
    frame
}
