//! `itsm-bench webhooks`: runs a webhook receiver, registers it, and
//! measures delivery two ways:
//!
//! - **live**: writers create incidents as fast as they can while the
//!   receiver takes every delivery; for each, the time from the event's
//!   `occurredAt` (taken inside the writing transaction, just before commit)
//!   to receipt. Latency here includes waiting behind the endpoint's
//!   earlier events: one endpoint is delivered to one event at a time.
//! - **drain**: the endpoint is paused while more incidents are created,
//!   then resumed; the backlog's delivery rate is the throughput of one
//!   endpoint.
//!
//! Every delivery's sequence number is checked against the log afterwards:
//! lost, repeated and out-of-order deliveries are counted, not assumed.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use clap::Args;
use serde_json::{Value, json};

/// Measure webhook delivery throughput and latency to a local receiver.
#[derive(Debug, Args)]
pub struct Webhooks {
    /// The GraphQL endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    url: String,
    /// An admin's token (registers the endpoint, reads the log).
    #[arg(long)]
    admin_token: String,
    /// The token incidents are created with.
    #[arg(long)]
    writer_token: String,
    /// Incidents created while deliveries run.
    #[arg(long, default_value_t = 500)]
    live: usize,
    /// Incidents created while the endpoint is paused.
    #[arg(long, default_value_t = 1000)]
    backlog: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Where the receiver listens.
    #[arg(long, default_value = "127.0.0.1:18190")]
    receiver: SocketAddr,
    /// Seconds to wait for the last deliveries.
    #[arg(long, default_value_t = 120)]
    drain_secs: u64,
}

/// One delivery as received: the event's number, and microseconds from its
/// commit to receipt.
#[derive(Debug, Clone, Copy)]
struct Got {
    seq: i64,
    latency_us: i64,
    at: Instant,
}

type Log = Arc<Mutex<Vec<Got>>>;

async fn take(State(log): State<Log>, body: Bytes) -> StatusCode {
    let received = chrono::Utc::now();
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let data = &payload["data"];
    let occurred = data["occurredAt"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let (Some(seq), Some(occurred)) = (data["seq"].as_i64(), occurred) else {
        return StatusCode::BAD_REQUEST;
    };
    let latency_us = (received - occurred.with_timezone(&chrono::Utc))
        .num_microseconds()
        .unwrap_or(i64::MAX);
    if let Ok(mut log) = log.lock() {
        log.push(Got {
            seq,
            latency_us,
            at: Instant::now(),
        });
    }
    StatusCode::NO_CONTENT
}

struct Api {
    client: reqwest::Client,
    url: String,
}

impl Api {
    async fn call(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
        let body: Value = self
            .client
            .post(&self.url)
            .bearer_auth(token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await?
            .json()
            .await?;
        if !body["errors"].is_null() {
            bail!("GraphQL errors: {}", body["errors"]);
        }
        Ok(body["data"].clone())
    }

    /// The cursor of the latest event in the log.
    async fn latest_cursor(&self, token: &str) -> anyhow::Result<Value> {
        let data = self
            .call(
                token,
                "{ ticketEvents(last: 1) { pageInfo { endCursor } } }",
                json!({}),
            )
            .await?;
        Ok(data["ticketEvents"]["pageInfo"]["endCursor"].clone())
    }

    /// The public event numbers after `after`, oldest first.
    async fn public_after(&self, token: &str, after: &Value) -> anyhow::Result<Vec<i64>> {
        let mut seqs = Vec::new();
        let mut cursor = after.clone();
        loop {
            let page = self
                .call(
                    token,
                    "query($after: String) { ticketEvents(first: 100, after: $after) { nodes { seq visibility } pageInfo { hasNextPage endCursor } } }",
                    json!({"after": cursor}),
                )
                .await?;
            let events = &page["ticketEvents"];
            for node in events["nodes"].as_array().into_iter().flatten() {
                if node["visibility"] == "PUBLIC" {
                    seqs.extend(node["seq"].as_i64());
                }
            }
            if events["pageInfo"]["hasNextPage"] != true {
                return Ok(seqs);
            }
            cursor = events["pageInfo"]["endCursor"].clone();
        }
    }

    async fn create_incidents(
        self: &Arc<Self>,
        token: &str,
        count: usize,
        writers: usize,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..writers.max(1) {
            let (api, next, token) = (self.clone(), next.clone(), token.to_owned());
            tasks.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= count {
                        return anyhow::Ok(());
                    }
                    api.call(
                        &token,
                        "mutation($t: String!) { createIncident(input: {title: $t, impact: MEDIUM, urgency: LOW}) { ticket { id } } }",
                        json!({"t": format!("Webhook benchmark {n}")}),
                    )
                    .await?;
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok(started.elapsed())
    }
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Waits until the receiver holds every number in `expected` (or times out).
async fn wait_for(log: &Log, expected: &[i64], drain: Duration) -> Vec<Got> {
    let deadline = Instant::now() + drain;
    let last = expected.last().copied().unwrap_or(0);
    loop {
        let got = log.lock().map(|l| l.clone()).unwrap_or_default();
        let done = got.iter().any(|g| g.seq == last) && got.len() >= expected.len();
        if done || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lost, repeated and out-of-order deliveries of `got` against `expected`.
fn check(got: &[Got], expected: &[i64]) -> (usize, usize, usize) {
    let seqs: Vec<i64> = got.iter().map(|g| g.seq).collect();
    let lost = expected.iter().filter(|s| !seqs.contains(s)).count();
    let mut seen = std::collections::HashSet::new();
    let repeated = seqs.iter().filter(|s| !seen.insert(**s)).count();
    let reordered = seqs.windows(2).filter(|w| w[1] < w[0]).count();
    (lost, repeated, reordered)
}

fn report(phase: &str, got: &[Got], expected: &[i64], span: Duration) {
    let (lost, repeated, reordered) = check(got, expected);
    let mut latencies: Vec<i64> = got.iter().map(|g| g.latency_us).collect();
    latencies.sort_unstable();
    let rate = got.len() as f64 / span.as_secs_f64().max(1e-9);
    println!(
        "{phase:>5}: {} deliveries of {} events in {:.2} s = {:.0} deliveries/s; commit -> receipt p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; lost {lost}, repeated {repeated}, out of order {reordered}",
        got.len(),
        expected.len(),
        span.as_secs_f64(),
        rate,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0),
    );
}

pub async fn run(args: Webhooks) -> anyhow::Result<()> {
    let log: Log = Arc::default();
    let listener = tokio::net::TcpListener::bind(args.receiver)
        .await
        .with_context(|| format!("receiver cannot listen on {}", args.receiver))?;
    let app = Router::new()
        .route("/hook", post(take))
        .with_state(log.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let api = Arc::new(Api {
        client: reqwest::Client::new(),
        url: args.url.clone(),
    });
    let drain = Duration::from_secs(args.drain_secs);

    let start = api.latest_cursor(&args.admin_token).await?;
    let made = api
        .call(
            &args.admin_token,
            "mutation($url: String!) { createWebhook(input: {url: $url, description: \"benchmark\"}) { webhook { id } } }",
            json!({"url": format!("http://{}/hook", args.receiver)}),
        )
        .await?;
    let id = made["createWebhook"]["webhook"]["id"].clone();

    // Live: deliveries while writers write.
    let began = Instant::now();
    let wrote = api
        .create_incidents(&args.writer_token, args.live, args.writers)
        .await?;
    let expected = api.public_after(&args.admin_token, &start).await?;
    let got = wait_for(&log, &expected, drain).await;
    println!(
        "{} incidents by {} writers in {:.2} s ({:.0}/s)",
        args.live,
        args.writers,
        wrote.as_secs_f64(),
        args.live as f64 / wrote.as_secs_f64().max(1e-9)
    );
    let span = got.last().map_or(began.elapsed(), |g| g.at - began);
    report("live", &got, &expected, span);

    // Drain: a backlog delivered with no writer competing.
    let mark = api.latest_cursor(&args.admin_token).await?;
    api.call(
        &args.admin_token,
        "mutation($id: ID!) { pauseWebhook(input: {id: $id}) { webhook { status } } }",
        json!({"id": id}),
    )
    .await?;
    api.create_incidents(&args.writer_token, args.backlog, args.writers)
        .await?;
    let backlog = api.public_after(&args.admin_token, &mark).await?;
    log.lock().map(|mut l| l.clear()).ok();
    let resumed = Instant::now();
    api.call(
        &args.admin_token,
        "mutation($id: ID!) { resumeWebhook(input: {id: $id}) { webhook { status } } }",
        json!({"id": id}),
    )
    .await?;
    let got = wait_for(&log, &backlog, drain).await;
    let span = got.last().map_or(resumed.elapsed(), |g| g.at - resumed);
    // Latency in the drain is mostly time spent paused: only the rate counts.
    let (lost, repeated, reordered) = check(&got, &backlog);
    println!(
        "drain: {} deliveries of a {}-event backlog in {:.2} s = {:.0} deliveries/s; lost {lost}, repeated {repeated}, out of order {reordered}",
        got.len(),
        backlog.len(),
        span.as_secs_f64(),
        got.len() as f64 / span.as_secs_f64().max(1e-9),
    );
    Ok(())
}
