//! `itsm-bench queue-page`: finds the viewer's fullest queue, then has `--concurrency`
//! clients fetch its first `--page` tickets (with the fields an agents' board
//! shows) back to back for `--duration`, after a `--warmup`. Every response is
//! checked: HTTP 200, no `errors`, and a full page of tickets. It prints
//! requests per second and latency percentiles, and exits non-zero if any
//! response was wrong.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

/// Measure an agents' board queue page under concurrent load.
#[derive(Debug, Args)]
pub struct QueuePage {
    /// The GraphQL endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    url: String,
    /// A bearer token for the viewer whose board is measured.
    #[arg(long, env = "ITSM_BENCH_TOKEN")]
    token: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Tickets per page.
    #[arg(long, default_value_t = 50)]
    page: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
}

pub(crate) const BOARD: &str = "query Board($queue: ID!, $first: Int!) {
  queue(id: $queue) {
    name
    stats { open unassigned breached }
    tickets(first: $first) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node {
        id number kind title status priority
        requester { displayName }
        assignee { displayName }
        queue { name team { name } }
        commentCount
        latestComment { body author { displayName } }
        sla { responseBreached resolutionBreached remainingSeconds }
      } }
    }
  }
}";

pub(crate) async fn post(
    client: &reqwest::Client,
    args: &QueuePage,
    body: &Value,
) -> anyhow::Result<Value> {
    post_as(client, &args.url, &args.token, body).await
}

/// Posts one GraphQL request as `token`; fails unless the answer is HTTP
/// 200 without `errors`.
pub(crate) async fn post_as(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .context("request failed")?;
    let status = response.status();
    let body: Value = response.json().await.context("response is not JSON")?;
    if !status.is_success() {
        bail!("HTTP {status}: {body}");
    }
    if let Some(errors) = body.get("errors") {
        bail!("GraphQL errors: {errors}");
    }
    Ok(body)
}

/// Checks one board response: a full page of tickets, each with its fields.
pub(crate) fn check(body: &Value, page: usize) -> anyhow::Result<()> {
    let edges = body["data"]["queue"]["tickets"]["edges"]
        .as_array()
        .context("no edges")?;
    if edges.len() != page {
        bail!("expected {page} tickets, got {}", edges.len());
    }
    for edge in edges {
        let node = &edge["node"];
        if node["number"].as_str().is_none() || node["queue"]["team"]["name"].as_str().is_none() {
            bail!("incomplete ticket: {node}");
        }
    }
    Ok(())
}

pub(crate) async fn fullest_queue(
    client: &reqwest::Client,
    args: &QueuePage,
) -> anyhow::Result<(String, String, i64)> {
    let body = post(
        client,
        args,
        &json!({"query": "{ queues(first: 100) { nodes { id name tickets { totalCount } } } }"}),
    )
    .await?;
    let queues = body["data"]["queues"]["nodes"]
        .as_array()
        .context("no queues")?;
    queues
        .iter()
        .filter_map(|q| {
            Some((
                q["id"].as_str()?.to_owned(),
                q["name"].as_str()?.to_owned(),
                q["tickets"]["totalCount"].as_i64()?,
            ))
        })
        .max_by_key(|(_, _, total)| *total)
        .context("the viewer sees no queue")
}

struct Outcome {
    latencies: Vec<Duration>,
    failures: Vec<String>,
}

async fn client_loop(
    client: reqwest::Client,
    args: Arc<QueuePage>,
    body: Arc<Value>,
    start_measuring: Instant,
    stop: Instant,
) -> Outcome {
    let mut outcome = Outcome {
        latencies: Vec::new(),
        failures: Vec::new(),
    };
    while Instant::now() < stop {
        let sent = Instant::now();
        let result = post(&client, &args, &body)
            .await
            .and_then(|b| check(&b, args.page));
        let took = sent.elapsed();
        if sent >= start_measuring {
            match result {
                Ok(()) => outcome.latencies.push(took),
                Err(error) => outcome.failures.push(format!("{error:#}")),
            }
        } else if let Err(error) = result {
            outcome.failures.push(format!("warm-up: {error:#}"));
        }
    }
    outcome
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest-rank percentile.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Runs the queue-page benchmark.
pub async fn run(args: QueuePage) -> anyhow::Result<()> {
    let args = Arc::new(args);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let (queue, name, total) = fullest_queue(&client, &args).await?;
    if usize::try_from(total).unwrap_or(0) < args.page {
        bail!(
            "the fullest queue, {name}, holds {total} tickets: fewer than a page of {}",
            args.page
        );
    }
    let body = Arc::new(json!({"query": BOARD, "variables": {"queue": queue, "first": args.page}}));
    check(&post(&client, &args, &body).await?, args.page)?;

    let start = Instant::now();
    let measuring = start + Duration::from_secs(args.warmup);
    let stop = measuring + Duration::from_secs(args.duration);
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            tokio::spawn(client_loop(
                client.clone(),
                args.clone(),
                body.clone(),
                measuring,
                stop,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        let outcome = task.await?;
        latencies.extend(outcome.latencies);
        failures.extend(outcome.failures);
    }
    latencies.sort();
    #[allow(clippy::cast_precision_loss)]
    let rps = latencies.len() as f64 / args.duration as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "queue page: {} tickets of {name} ({total} in the queue), {} clients, {} s measured",
        args.page, args.concurrency, args.duration
    );
    println!(
        "requests:   {} ok, {} failed",
        latencies.len(),
        failures.len()
    );
    println!("throughput: {rps:.0} requests/s");
    println!(
        "latency:    p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    if let Some(first) = failures.first() {
        bail!(
            "{} responses were wrong; the first: {first}",
            failures.len()
        );
    }
    Ok(())
}
