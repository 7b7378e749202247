//! `itsm-bench overload`: the agents' board page, first unloaded (one
//! client), then at the most the server sustains (`--clients` back to back),
//! then offered at `--factor` times that rate as an open loop: requests
//! arrive on a fixed schedule whether or not earlier ones have been answered,
//! as real users do. It prints goodput (correct pages per second), refusals
//! and the latency of admitted requests next to the unloaded figures, and
//! exits non-zero on any wrong answer other than a 503 with `Retry-After`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::queue_page::{BOARD, check, percentile};

/// Offer the board page at a multiple of the rate the server sustains.
#[derive(Debug, Args)]
pub struct Overload {
    /// The GraphQL endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    url: String,
    /// A bearer token for the viewer whose board is fetched.
    #[arg(long, env = "ITSM_BENCH_TOKEN")]
    token: String,
    /// Tickets per page.
    #[arg(long, default_value_t = 50)]
    page: usize,
    /// Clients fetching back to back while finding the sustainable rate.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds each phase is measured.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// The overload, as a multiple of the sustainable rate.
    #[arg(long, default_value_t = 3.0)]
    factor: f64,
    /// Offer this many requests a second instead of measuring the sustainable
    /// rate first (to compare servers at the same offered load).
    #[arg(long)]
    rate: Option<f64>,
    /// Give up on a request after this many seconds.
    #[arg(long, default_value_t = 40)]
    timeout: u64,
    /// Report failed requests (timeouts, 503 without `Retry-After`) without
    /// failing: for measuring a server that does not shed load.
    #[arg(long)]
    tolerate_failures: bool,
}

/// How one request ended.
enum Ending {
    Ok(Duration),
    Refused(Duration),
    Failed(String),
}

async fn fetch(client: &reqwest::Client, args: &Overload, body: &Value) -> Ending {
    let sent = Instant::now();
    let response = match client
        .post(&args.url)
        .bearer_auth(&args.token)
        .json(body)
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => return Ending::Failed(format!("{error:#}")),
    };
    let status = response.status();
    let retry_after = response.headers().contains_key("retry-after");
    let Ok(json) = response.json::<Value>().await else {
        return Ending::Failed(format!("HTTP {status}: not JSON"));
    };
    let took = sent.elapsed();
    if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && retry_after {
        return Ending::Refused(took);
    }
    if !status.is_success() {
        return Ending::Failed(format!("HTTP {status}: {json}"));
    }
    if let Some(errors) = json.get("errors") {
        return Ending::Failed(format!("GraphQL errors: {errors}"));
    }
    match check(&json, args.page) {
        Ok(()) => Ending::Ok(took),
        Err(error) => Ending::Failed(format!("{error:#}")),
    }
}

/// What one phase produced.
#[derive(Default)]
struct Tally {
    ok: Vec<Duration>,
    refused: Vec<Duration>,
    failed: Vec<String>,
    /// Correct answers that arrived within the measured window.
    ok_in_window: usize,
}

impl Tally {
    fn add(&mut self, ending: Ending, finished: Instant, window_end: Instant) {
        match ending {
            Ending::Ok(took) => {
                if finished <= window_end {
                    self.ok_in_window += 1;
                }
                self.ok.push(took);
            }
            Ending::Refused(took) => self.refused.push(took),
            Ending::Failed(error) => self.failed.push(error),
        }
    }

    fn report(&mut self, name: &str, seconds: f64) -> f64 {
        self.ok.sort();
        self.refused.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        #[allow(clippy::cast_precision_loss)]
        let goodput = self.ok_in_window as f64 / seconds;
        println!(
            "{name:<26} goodput {goodput:>6.0}/s   ok {:>6}   refused {:>6}   failed {:>4}   \
             admitted p50 {:>7.1} ms  p99 {:>7.1} ms   refusals p99 {:>6.1} ms",
            self.ok.len(),
            self.refused.len(),
            self.failed.len(),
            ms(percentile(&self.ok, 50.0)),
            ms(percentile(&self.ok, 99.0)),
            ms(percentile(&self.refused, 99.0)),
        );
        goodput
    }
}

/// `clients` fetching back to back for `seconds`.
async fn closed_loop(
    client: &reqwest::Client,
    args: &Arc<Overload>,
    body: &Arc<Value>,
    clients: usize,
) -> Tally {
    let end = Instant::now() + Duration::from_secs(args.duration);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, args, body) = (client.clone(), args.clone(), body.clone());
            tokio::spawn(async move {
                let mut endings = Vec::new();
                while Instant::now() < end {
                    let ending = fetch(&client, &args, &body).await;
                    endings.push((ending, Instant::now()));
                }
                endings
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        for (ending, finished) in task.await.unwrap_or_default() {
            tally.add(ending, finished, end);
        }
    }
    tally
}

/// Requests arriving at `rate` a second for the phase's duration, each sent
/// at its time whatever happened to the earlier ones.
async fn open_loop(
    client: &reqwest::Client,
    args: &Arc<Overload>,
    body: &Arc<Value>,
    rate: f64,
) -> Tally {
    let start = tokio::time::Instant::now();
    let end = start + Duration::from_secs(args.duration);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let total = (rate * args.duration as f64) as u64;
    let mut tasks = Vec::new();
    for n in 0..total {
        #[allow(clippy::cast_precision_loss)]
        let at = start + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(at).await;
        let (client, args, body) = (client.clone(), args.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let ending = fetch(&client, &args, &body).await;
            (ending, Instant::now())
        }));
    }
    let mut tally = Tally::default();
    for task in tasks {
        if let Ok((ending, finished)) = task.await {
            tally.add(ending, finished, end.into_std());
        }
    }
    tally
}

async fn fullest_queue(client: &reqwest::Client, args: &Overload) -> anyhow::Result<String> {
    let body: Value = client
        .post(&args.url)
        .bearer_auth(&args.token)
        .json(&json!({"query": "{ queues(first: 100) { nodes { id tickets { totalCount } } } }"}))
        .send()
        .await?
        .json()
        .await?;
    body["data"]["queues"]["nodes"]
        .as_array()
        .context("no queues")?
        .iter()
        .filter_map(|q| Some((q["id"].as_str()?, q["tickets"]["totalCount"].as_i64()?)))
        .max_by_key(|(_, total)| *total)
        .map(|(id, _)| id.to_owned())
        .with_context(|| format!("the viewer sees no queue: {body}"))
}

/// Runs the overload benchmark.
pub async fn run(args: Overload) -> anyhow::Result<()> {
    let args = Arc::new(args);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .build()?;
    let queue = fullest_queue(&client, &args).await?;
    let body = Arc::new(json!({"query": BOARD, "variables": {"queue": queue, "first": args.page}}));
    if let Ending::Failed(error) = fetch(&client, &args, &body).await {
        bail!("the board page fails unloaded: {error}");
    }
    #[allow(clippy::cast_precision_loss)]
    let seconds = args.duration as f64;
    println!(
        "board page of {} tickets, {} s a phase (goodput: correct pages answered within the phase)",
        args.page, args.duration
    );
    let mut failed = Vec::new();
    let rate = if let Some(rate) = args.rate {
        rate
    } else {
        let mut unloaded = closed_loop(&client, &args, &body, 1).await;
        unloaded.report("unloaded (1 client)", seconds);
        failed.append(&mut unloaded.failed);
        let mut sustained = closed_loop(&client, &args, &body, args.clients).await;
        let label = format!("sustained ({} clients)", args.clients);
        let goodput = sustained.report(&label, seconds);
        failed.append(&mut sustained.failed);
        println!("sustained rate: {goodput:.1}");
        goodput
    };
    let offered = rate * args.factor;
    let mut overloaded = open_loop(&client, &args, &body, offered).await;
    let goodput = overloaded.report(&format!("offered {offered:.0}/s"), seconds);
    println!(
        "goodput under overload: {:.0} % of {rate:.0}/s",
        100.0 * goodput / rate.max(f64::MIN_POSITIVE)
    );
    failed.append(&mut overloaded.failed);
    if let Some(first) = failed.first() {
        println!("first failure: {first}");
        if args.tolerate_failures {
            return Ok(());
        }
        bail!("{} requests failed; the first: {first}", failed.len());
    }
    Ok(())
}
