//! `itsm-bench subscribers`: opens many WebSocket subscriptions to one queue,
//! then changes a ticket in that queue at a steady pace and measures, for
//! every subscriber and every change, the time from the event's timestamp
//! (taken inside the writing transaction, just before commit) to receipt.
//! It counts events lost, repeated or out of order, and reads the server's
//! CPU time and resident memory from /proc.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::{
    connect_async_with_config,
    tungstenite::{
        Message, client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig,
    },
};

/// Measure event delivery to many concurrent subscribers.
#[derive(Debug, Args)]
pub struct Subscribers {
    /// The GraphQL endpoint (HTTP); the WebSocket URL is derived from it.
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    url: String,
    /// Token of the subscribing viewer (an agent of the queue). Given more
    /// than once, the subscribers take the tokens in turn: that many
    /// different viewers, which never share an execution.
    #[arg(long, required_unless_present = "floor")]
    pub(crate) token: Vec<String>,
    /// Token of the viewer who changes the ticket (a manager).
    #[arg(long, required_unless_present = "floor")]
    writer_token: Option<String>,
    /// How many subscriptions to hold open.
    #[arg(long, default_value_t = 1000)]
    pub(crate) subscribers: usize,
    /// Subscriptions per socket (the same subscription, as operations of
    /// their own): more subscriptions than a server holds sockets.
    #[arg(long, default_value_t = 1)]
    pub(crate) per_socket: usize,
    /// How many ticket changes to make.
    #[arg(long, default_value_t = 30)]
    pub(crate) events: usize,
    /// Milliseconds between changes.
    #[arg(long, default_value_t = 1000)]
    pub(crate) interval_ms: u64,
    /// Connections opened at once while ramping up.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Seconds to wait for the last deliveries.
    #[arg(long, default_value_t = 30)]
    pub(crate) drain_secs: u64,
    /// The server's process id, to read its CPU time and memory.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// Instead of the service, a minimal fan-out server (started by this
    /// command) sends the same messages to the same subscribers: the floor
    /// the service's figures compare with.
    #[arg(long, value_enum)]
    pub(crate) floor: Option<crate::fanout_floor::Mode>,
}

const SUBSCRIPTION: &str =
    "subscription($q: ID!) { queueUpdates(queueId: $q) { seq kind occurredAt } }";

/// What one subscriber received: the stream's events as (sequence number,
/// latency in microseconds), and how many other events of the queue came too.
#[derive(Debug, Default)]
struct Received {
    stream: Vec<(i64, i64)>,
    others: usize,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    cpu_seconds: f64,
    rss_kib: u64,
}

fn usage(pid: Option<u32>) -> Usage {
    let Some(pid) = pid else {
        return Usage::default();
    };
    usage_of(&pid.to_string())
}

pub(crate) fn usage_of(pid: &str) -> Usage {
    // Scheduler run time of every thread, in nanoseconds: precise where the
    // tick-sampled times in /proc/<pid>/stat miss short bursts.
    let cpu_nanos: u64 = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
                .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or_default();
    #[allow(clippy::cast_precision_loss)]
    let cpu_seconds = cpu_nanos as f64 / 1e9;
    let rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or_default();
    Usage {
        cpu_seconds,
        rss_kib,
    }
}

async fn graphql(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response: Value = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    if let Some(errors) = response.get("errors") {
        bail!("GraphQL errors: {errors}");
    }
    Ok(response["data"].clone())
}

/// The sequence numbers of the `UPDATED` events of `ticket` in the log.
async fn updated_seqs(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    ticket: &str,
) -> anyhow::Result<std::collections::HashSet<i64>> {
    let query = "query($t: ID!, $after: String) { ticketEvents(ticketId: $t, first: 100, after: $after) { nodes { seq kind } pageInfo { hasNextPage endCursor } } }";
    let mut seqs = std::collections::HashSet::new();
    let mut after = Value::Null;
    loop {
        let data = graphql(
            client,
            url,
            token,
            json!({"query": query, "variables": {"t": ticket, "after": after}}),
        )
        .await?;
        let page = &data["ticketEvents"];
        for node in page["nodes"].as_array().into_iter().flatten() {
            if node["kind"] == "UPDATED" {
                seqs.insert(node["seq"].as_i64().context("seq")?);
            }
        }
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            return Ok(seqs);
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// The viewer's fullest queue and one ticket in it.
async fn target(client: &reqwest::Client, args: &Subscribers) -> anyhow::Result<(String, String)> {
    let data = graphql(
        client,
        &args.url,
        &args.token[0],
        json!({"query": "{ queues(first: 100) { nodes { id tickets(first: 1) { totalCount nodes { id } } } } }"}),
    )
    .await?;
    let queue = data["queues"]["nodes"]
        .as_array()
        .context("no queues")?
        .iter()
        .max_by_key(|q| q["tickets"]["totalCount"].as_i64().unwrap_or(0))
        .context("the viewer sees no queue")?;
    let queue_id = queue["id"].as_str().context("queue id")?.to_owned();
    let ticket_id = queue["tickets"]["nodes"][0]["id"]
        .as_str()
        .context("the queue holds no ticket")?
        .to_owned();
    Ok((queue_id, ticket_id))
}

/// One sample of the server's `/metrics` (next to the GraphQL endpoint).
async fn metric(client: &reqwest::Client, url: &str, sample: &str) -> anyhow::Result<f64> {
    let metrics = url
        .rsplit_once('/')
        .map_or(url, |(base, _)| base)
        .to_owned()
        + "/metrics";
    let text = client.get(&metrics).send().await?.text().await?;
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok())?
        })
        .with_context(|| format!("no {sample} at {metrics}"))
}

fn ws_url(url: &str) -> String {
    url.replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1)
}

/// Opens one socket with `operations` subscriptions; returns once they are
/// sent, with a task that collects each one's `UPDATED` deliveries until
/// `expected` arrive for every one, or the socket closes.
async fn subscribe(
    url: &str,
    token: &str,
    queue: &str,
    (operations, expected): (usize, usize),
    done: Arc<AtomicUsize>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<Vec<Received>>> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut socket, _) = connect_async_with_config(request, Some(config), true).await?;
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    socket.send(Message::text(init.to_string())).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains("connection_ack") => break,
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
            other => bail!("no connection_ack: {other:?}"),
        }
    }
    for operation in 0..operations {
        let subscribe = json!({"id": operation.to_string(), "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": {"q": queue}}});
        socket.send(Message::text(subscribe.to_string())).await?;
    }
    Ok(tokio::spawn(async move {
        let mut all: Vec<Received> = (0..operations)
            .map(|_| Received {
                stream: Vec::with_capacity(expected),
                others: 0,
            })
            .collect();
        let mut open = operations;
        while open > 0 {
            let next = tokio::select! {
                next = socket.next() => next,
                _ = stop.changed() => break,
            };
            let Some(Ok(message)) = next else {
                break;
            };
            let Message::Text(text) = message else {
                continue;
            };
            let arrived = SystemTime::now();
            let Ok(value) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if value["type"] == "ping" {
                let _ = socket
                    .send(Message::text(json!({"type": "pong"}).to_string()))
                    .await;
                continue;
            }
            let Some(received) = value["id"]
                .as_str()
                .and_then(|id| id.parse::<usize>().ok())
                .and_then(|operation| all.get_mut(operation))
            else {
                continue;
            };
            if value["type"] != "next" {
                if value["type"] == "complete" || value["type"] == "error" {
                    break;
                }
                continue;
            }
            let event = &value["payload"]["data"]["queueUpdates"];
            let Some(seq) = event["seq"].as_i64() else {
                break; // an error payload ends the measurement for this one
            };
            if event["kind"] != "UPDATED" {
                // Other events in the queue (such as SLA alerts) are not the
                // stream, but the server delivered them all the same.
                received.others += 1;
                continue;
            }
            let latency = event["occurredAt"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| {
                    let occurred: SystemTime = t.with_timezone(&chrono::Utc).into();
                    arrived
                        .duration_since(occurred)
                        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
                })
                .unwrap_or(i64::MAX);
            received.stream.push((seq, latency));
            if received.stream.len() == expected {
                open -= 1;
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
        let _ = socket.close(None).await;
        all
    }))
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    #[allow(clippy::cast_precision_loss)]
    let micros = sorted[rank.min(sorted.len()) - 1] as f64;
    micros / 1000.0
}

/// Subscriptions held open, each with a task collecting what it receives.
pub(crate) struct Ramp {
    readers: Vec<tokio::task::JoinHandle<Vec<Received>>>,
    sockets: usize,
    failed_to_open: usize,
    seconds: f64,
    done: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// Opens `args.subscribers` subscriptions to `queue` on `ws`.
pub(crate) async fn ramp_up(args: &Subscribers, ws: &str, queue: &str) -> anyhow::Result<Ramp> {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let done = Arc::new(AtomicUsize::new(0));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let per_socket = args.per_socket.max(1);
    let sockets = args.subscribers.div_ceil(per_socket);
    let tokens = if args.token.is_empty() {
        vec![String::new()]
    } else {
        args.token.clone()
    };
    let mut opening = Vec::with_capacity(sockets);
    for socket in 0..sockets {
        let gate = gate.clone();
        let token = tokens[socket % tokens.len()].clone();
        let (ws, queue, done) = (ws.to_owned(), queue.to_owned(), done.clone());
        let stopping = stopping.clone();
        let operations = per_socket.min(args.subscribers - socket * per_socket);
        let expected = args.events;
        opening.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            subscribe(&ws, &token, &queue, (operations, expected), done, stopping).await
        }));
    }
    let mut readers = Vec::with_capacity(sockets);
    let mut failed_to_open = 0;
    for task in opening {
        match task.await? {
            Ok(reader) => readers.push(reader),
            Err(error) => {
                failed_to_open += per_socket;
                if failed_to_open == 1 {
                    eprintln!("a subscription failed to open: {error:#}");
                }
            }
        }
    }
    Ok(Ramp {
        readers,
        sockets,
        failed_to_open,
        seconds: started.elapsed().as_secs_f64(),
        done,
        stop,
    })
}

impl Ramp {
    /// Waits until every subscriber has its events, or `limit` passes.
    pub(crate) async fn drain(&self, limit: Duration) {
        let started = Instant::now();
        while self.done.load(Ordering::Relaxed) < self.readers.len() && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the subscribers and counts what they received of `written`.
    pub(crate) async fn tally(self, written: &std::collections::HashSet<i64>) -> Tally {
        let _ = self.stop.send(true);
        let mut tally = Tally {
            failed_to_open: self.failed_to_open,
            sockets: self.sockets,
            ramp_seconds: self.seconds,
            ..Tally::default()
        };
        for reader in self.readers {
            for Received { stream, others } in reader.await.unwrap_or_default() {
                tally.others += others;
                let got: std::collections::HashSet<i64> =
                    stream.iter().map(|(seq, _)| *seq).collect();
                tally.lost += written.difference(&got).count();
                for window in stream.windows(2) {
                    if window[1].0 <= window[0].0 {
                        tally.out_of_order += 1;
                    }
                }
                let mut seen = std::collections::HashSet::new();
                for (seq, latency) in stream {
                    if !seen.insert(seq) {
                        tally.repeated += 1;
                    }
                    tally.latencies.push(latency);
                }
            }
        }
        tally.latencies.sort_unstable();
        tally
    }
}

/// What the subscribers received, against what was written.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    latencies: Vec<i64>,
    lost: usize,
    repeated: usize,
    out_of_order: usize,
    others: usize,
    failed_to_open: usize,
    sockets: usize,
    ramp_seconds: f64,
}

/// The server's resources at the three points of a run, and the client's.
pub(crate) struct Usages {
    pub(crate) before: Usage,
    pub(crate) held: Usage,
    pub(crate) after: Usage,
    pub(crate) own: [Usage; 3],
    pub(crate) stream_seconds: f64,
}

impl Tally {
    /// Prints the figures; fails when anything was lost, repeated,
    /// reordered or refused.
    pub(crate) fn report(
        &self,
        args: &Subscribers,
        usages: &Usages,
        executions: Option<(f64, f64)>,
    ) -> anyhow::Result<()> {
        let Self {
            latencies,
            lost,
            repeated,
            out_of_order,
            others,
            failed_to_open,
            sockets,
            ramp_seconds,
        } = self;
        let subscribers = args.subscribers.saturating_sub(*failed_to_open);
        println!(
            "subscribers: {subscribers} held on {sockets} sockets by {} viewers ({failed_to_open} failed to open), ramp-up {ramp_seconds:.1} s",
            args.token.len().max(1)
        );
        println!(
            "changes:     {} at one per {} ms; {} deliveries expected, {} received (and {others} other events of the queue, such as SLA alerts)",
            args.events,
            args.interval_ms,
            subscribers * args.events,
            latencies.len()
        );
        println!(
            "latency:     p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms  (event timestamp to receipt)",
            percentile(latencies, 50.0),
            percentile(latencies, 99.0),
            percentile(latencies, 100.0)
        );
        println!("lost:        {lost}   repeated: {repeated}   out of order: {out_of_order}");
        if let Some((executed, groups)) = executions {
            println!(
                "executions:  {executed} of the subscription's selection for {} changes and {others} other events, in {groups} groups",
                args.events
            );
        }
        let Usages {
            before,
            held,
            after,
            own,
            stream_seconds,
        } = usages;
        if args.server_pid.is_some() || args.floor.is_some() {
            let per_subscriber =
                held.rss_kib.saturating_sub(before.rss_kib) as f64 / subscribers.max(1) as f64;
            let cpu = after.cpu_seconds - held.cpu_seconds;
            println!(
                "server:      RSS {} MiB idle -> {} MiB holding them ({per_subscriber:.1} KiB per subscriber), {} MiB after the changes",
                before.rss_kib / 1024,
                held.rss_kib / 1024,
                after.rss_kib / 1024
            );
            println!(
                "             CPU {cpu:.1} s over {stream_seconds:.1} s of changes ({:.0} % of one core; {:.1} µs per delivery)",
                100.0 * cpu / stream_seconds,
                1e6 * cpu / ((latencies.len() + others).max(1) as f64)
            );
        }
        println!(
            "client:      CPU {:.1} s during the changes, RSS {} MiB (this load generator shares the machine)",
            own[2].cpu_seconds - own[1].cpu_seconds,
            own[2].rss_kib.max(own[0].rss_kib) / 1024
        );
        if lost + repeated + out_of_order + failed_to_open > 0 {
            bail!(
                "{lost} lost, {repeated} repeated, {out_of_order} out of order, {failed_to_open} failed to open"
            );
        }
        Ok(())
    }
}

/// Runs the subscriber benchmark.
pub async fn run(args: Subscribers) -> anyhow::Result<()> {
    if let Some(mode) = args.floor {
        return crate::fanout_floor::run(&args, mode).await;
    }
    let writer = args
        .writer_token
        .clone()
        .context("--writer-token is needed, unless --floor")?;
    let client = reqwest::Client::new();
    let (queue, ticket) = target(&client, &args).await?;
    let before = usage(args.server_pid);
    let own_before = usage_of("self");
    let ramp = ramp_up(&args, &ws_url(&args.url), &queue).await?;
    // Let the last subscriptions reach the server's event bus.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = usage(args.server_pid);
    let own_held = usage_of("self");

    // The stream of changes: one title edit, so one UPDATED event, each.
    let mut version = graphql(
        &client,
        &args.url,
        &writer,
        json!({"query": "query($id: ID!) { ticket(id: $id) { version } }", "variables": {"id": ticket}}),
    )
    .await?["ticket"]["version"]
        .as_i64()
        .context("version")?;
    let edit = "mutation($id: ID!, $v: Int!, $title: String!) { updateTicket(input: {id: $id, expectedVersion: $v, title: $title}) { ticket { version } } }";
    let earlier = updated_seqs(&client, &args.url, &writer, &ticket).await?;
    let executions = "itsm_subscription_executions_total";
    let executions_before = metric(&client, &args.url, executions).await?;
    let groups = metric(&client, &args.url, "itsm_subscription_groups").await?;
    let started = Instant::now();
    for i in 0..args.events {
        let variables =
            json!({"id": ticket, "v": version, "title": format!("Benchmark change {i}")});
        let data = graphql(
            &client,
            &args.url,
            &writer,
            json!({"query": edit, "variables": variables}),
        )
        .await?;
        version = data["updateTicket"]["ticket"]["version"]
            .as_i64()
            .context("version")?;
        let next = Duration::from_millis(args.interval_ms.saturating_mul(i as u64 + 1));
        if let Some(wait) = next.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    ramp.drain(Duration::from_secs(args.drain_secs)).await;
    let stream_seconds = started.elapsed().as_secs_f64();
    let after = usage(args.server_pid);
    let own_after = usage_of("self");
    let executed = metric(&client, &args.url, executions).await? - executions_before;
    // The events every subscriber must have: the log's, not a count.
    let written: std::collections::HashSet<i64> =
        updated_seqs(&client, &args.url, &writer, &ticket)
            .await?
            .difference(&earlier)
            .copied()
            .collect();
    if written.len() != args.events {
        bail!(
            "{} changes were written but the log holds {} UPDATED events for them",
            args.events,
            written.len()
        );
    }
    let usages = Usages {
        before,
        held,
        after,
        own: [own_before, own_held, own_after],
        stream_seconds,
    };
    ramp.tally(&written)
        .await
        .report(&args, &usages, Some((executed, groups)))
}
