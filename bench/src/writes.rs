//! `itsm-bench writes`: `--concurrency` clients create incidents back to back
//! for `--duration` seconds after a `--warmup`, each as its own requester.
//! Every response is checked (HTTP 200, no `errors`, a ticket number), and
//! every number must be new. It prints incidents per second and latency
//! percentiles, and exits non-zero if any response was wrong.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

use crate::{
    executor::cpu_seconds,
    queue_page::{percentile, post_as},
};

/// Measure `createIncident` under concurrent load.
#[derive(Debug, Args)]
pub struct Writes {
    /// The GraphQL endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    url: String,
    /// Bearer tokens, one per line, used round-robin by the clients.
    #[arg(long)]
    tokens: std::path::PathBuf,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
}

const CREATE: &str = "mutation($t: String!) { createIncident(input: {title: $t, description: \"Measured by itsm-bench\", impact: MEDIUM, urgency: LOW}) { ticket { id number } } }";

async fn create(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    title: &str,
) -> anyhow::Result<String> {
    let body = json!({"query": CREATE, "variables": {"t": title}});
    let body = post_as(client, url, token, &body).await?;
    body["data"]["createIncident"]["ticket"]["number"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no ticket number in {body}"))
}

#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    numbers: Vec<String>,
    failures: Vec<String>,
}

async fn client_loop(
    client: reqwest::Client,
    url: Arc<str>,
    token: String,
    client_no: usize,
    measuring: Instant,
    stop: Instant,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut n = 0_u64;
    while Instant::now() < stop {
        n += 1;
        let sent = Instant::now();
        let result = create(&client, &url, &token, &format!("Load {client_no}-{n}")).await;
        let took = sent.elapsed();
        match result {
            Ok(number) => {
                outcome.numbers.push(number);
                if sent >= measuring {
                    outcome.latencies.push(took);
                }
            }
            Err(error) => outcome.failures.push(format!("{error:#}")),
        }
    }
    outcome
}

/// Runs the writes benchmark.
pub async fn run(args: Writes) -> anyhow::Result<()> {
    let tokens: Vec<String> = std::fs::read_to_string(&args.tokens)
        .with_context(|| format!("cannot read {}", args.tokens.display()))?
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.trim().to_owned())
        .collect();
    if tokens.is_empty() {
        bail!("{} holds no token", args.tokens.display());
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let url: Arc<str> = Arc::from(args.url.as_str());
    let cpu_before = cpu_seconds()?;
    let start = Instant::now();
    let measuring = start + Duration::from_secs(args.warmup);
    let stop = measuring + Duration::from_secs(args.duration);
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|c| {
            tokio::spawn(client_loop(
                client.clone(),
                url.clone(),
                tokens[c % tokens.len()].clone(),
                c,
                measuring,
                stop,
            ))
        })
        .collect();
    let mut all = Outcome::default();
    for task in tasks {
        let outcome = task.await?;
        all.latencies.extend(outcome.latencies);
        all.numbers.extend(outcome.numbers);
        all.failures.extend(outcome.failures);
    }
    let cpu = cpu_seconds()? - cpu_before;
    all.latencies.sort();
    let distinct: HashSet<&String> = all.numbers.iter().collect();
    #[allow(clippy::cast_precision_loss)]
    let rate = all.latencies.len() as f64 / args.duration as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "createIncident: {} clients, {} s measured",
        args.concurrency, args.duration
    );
    println!(
        "requests:   {} ok ({} measured), {} failed, {} distinct ticket numbers",
        all.numbers.len(),
        all.latencies.len(),
        all.failures.len(),
        distinct.len()
    );
    println!("throughput: {rate:.0} incidents/s");
    println!(
        "latency:    p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        ms(percentile(&all.latencies, 50.0)),
        ms(percentile(&all.latencies, 90.0)),
        ms(percentile(&all.latencies, 99.0)),
        ms(all.latencies.last().copied().unwrap_or_default()),
    );
    #[allow(clippy::cast_precision_loss)]
    let per = cpu * 1000.0 / all.numbers.len().max(1) as f64;
    println!("load generator CPU: {per:.2} ms per incident");
    if distinct.len() != all.numbers.len() {
        bail!(
            "{} ticket numbers were handed out twice",
            all.numbers.len() - distinct.len()
        );
    }
    if let Some(first) = all.failures.first() {
        bail!(
            "{} responses were wrong; the first: {first}",
            all.failures.len()
        );
    }
    Ok(())
}
