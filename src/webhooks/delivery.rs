//! Delivering events to webhook endpoints.
//!
//! Each endpoint keeps its own position in the event log (`cursor`): the
//! worker sends the events after it, one at a time and in order, and moves
//! the cursor only after the receiver answered 2xx. A crash between the two
//! sends that event again (with the same `webhook-id`): delivery is at
//! least once, and never out of order.
//!
//! Every replica runs a worker; an endpoint is worked by one replica at a
//! time, the one holding its lease (claimed with a conditional update,
//! renewed with every cursor move, and taken over by another replica only
//! once it expired). Every write a worker makes is conditional on still
//! holding the lease and on the cursor being where it left it, so an
//! admin's rewind, pause or edit is seen at the next event.
//!
//! A failed attempt is recorded and retried after an exponential backoff
//! with jitter; once failures have lasted longer than the retry window the
//! endpoint is marked failing and paused until an admin resumes it.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, EntityTrait, QueryFilter,
    sea_query::Expr,
};
use tokio::{sync::Notify, task::JoinHandle};

use super::{
    destination::{Policy, Refusal},
    payload::Lookups,
    service::{self, Filter, previous_secret_at},
    signature::{Secret, headers},
};
use crate::{
    clock::now,
    config::WebhookSettings,
    db::Db,
    entity::{webhook_deliveries, webhooks},
    error::ApiResult,
    events::{
        bus::{EventBus, Published},
        pump::{latest_seq, read_after},
    },
    metrics::WebhookStats,
    vocabulary::{DeliveryOutcome, WebhookStatus},
};

/// Events read per query while an endpoint catches up.
const BATCH: u64 = 100;

/// The most of a receiver's answer kept in the delivery record.
const MAX_ANSWER: usize = 300;

/// How deliveries are timed and retried.
#[derive(Debug, Clone)]
pub struct Timing {
    /// One attempt, connecting included.
    pub timeout: Duration,
    /// How long failures are retried before the endpoint is marked failing.
    pub retry_for: Duration,
    /// The wait after the first failure; doubled for each one after.
    pub retry_base: Duration,
    /// The longest wait.
    pub retry_max: Duration,
    /// How long a claimed endpoint stays with this replica without a renewal.
    pub lease: Duration,
    /// How often endpoints are looked at without a wake-up.
    pub poll: Duration,
}

impl Timing {
    /// The wait before attempt `failures + 1`, given `failures` so far
    /// (at least 1): `retry_base · 2^(failures−1)`, at most `retry_max`,
    /// then a random half of it taken off so retries from many endpoints
    /// spread out. `unit` in [0, 1) picks where in that half.
    pub fn backoff(&self, failures: i32, unit: f64) -> Duration {
        let doublings = u32::try_from(failures.max(1) - 1).unwrap_or(0).min(30);
        let full = self
            .retry_base
            .saturating_mul(1 << doublings)
            .min(self.retry_max);
        full.mul_f64(1.0 - unit.clamp(0.0, 1.0) / 2.0)
    }
}

/// Resolves a destination's host name and keeps only the addresses the
/// allow-list allows; the connection is made to those, so a name cannot
/// be checked as one address and connected to as another.
struct Guarded(Arc<Policy>);

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .filter(|address| match policy.check(&host, address.ip()) {
                    Ok(()) => true,
                    Err(refusal) => {
                        refused.get_or_insert(refusal);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let refusal = refused.unwrap_or(Refusal::NoHost);
                return Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// How one attempt went.
#[derive(Debug)]
struct Attempt {
    outcome: DeliveryOutcome,
    status: Option<u16>,
    latency: Duration,
    error: Option<String>,
}

/// The webhook sender: the allow-list, the HTTP client and the wake-up
/// signal, shared by the worker and the admin mutations.
#[derive(Clone)]
pub struct Dispatcher(Arc<Inner>);

struct Inner {
    policy: Arc<Policy>,
    timing: Timing,
    client: reqwest::Client,
    wake: Notify,
    /// This replica's name in leases.
    owner: String,
    enabled: bool,
    stats: WebhookStats,
    /// How long delivery attempts are kept.
    keep_deliveries: Duration,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("owner", &self.0.owner)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher with the settings' allow-list and timing.
    pub fn new(settings: &WebhookSettings, stats: WebhookStats) -> anyhow::Result<Self> {
        let policy = Arc::new(Policy::from_entries(&settings.webhook_allow)?);
        let timeout = settings.webhook_timeout.max(Duration::from_millis(100));
        let client = reqwest::Client::builder()
            .user_agent(concat!("itsm-webhooks/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(Guarded(policy.clone())))
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()?;
        Ok(Self(Arc::new(Inner {
            policy,
            timing: Timing {
                timeout,
                retry_for: settings.webhook_retry_for,
                retry_base: settings.webhook_retry_base.max(Duration::from_millis(10)),
                retry_max: settings.webhook_retry_max.max(Duration::from_millis(10)),
                lease: settings.webhook_lease.max(timeout * 3),
                poll: settings.webhook_poll.max(Duration::from_millis(50)),
            },
            client,
            wake: Notify::new(),
            owner: uuid::Uuid::new_v4().to_string(),
            enabled: !settings.webhook_disabled,
            keep_deliveries: settings.webhook_keep_deliveries,
            stats,
        })))
    }

    /// Where webhooks may go.
    pub fn policy(&self) -> &Policy {
        &self.0.policy
    }

    /// Looks at the endpoints now (after an admin created, resumed or rewound one).
    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// Starts this replica's worker, woken by every event `bus` publishes,
    /// and the pruning of old delivery attempts.
    pub fn spawn(&self, db: Db, bus: &EventBus) -> Vec<JoinHandle<()>> {
        if !self.0.enabled {
            tracing::info!("webhook delivery is off on this replica");
            return Vec::new();
        }
        let events = bus.subscribe();
        vec![
            tokio::spawn(self.clone().run(db.clone(), events)),
            tokio::spawn(prune(db, self.0.keep_deliveries, self.0.stats.clone())),
        ]
    }

    /// Looks at the endpoints at start, after every wake-up and poll, and
    /// after events while any endpoint is active. With none active, events
    /// start no look: an endpoint made or resumed here wakes the worker,
    /// and one made on another replica is found by the next poll.
    async fn run(self, db: Db, mut events: tokio::sync::broadcast::Receiver<Arc<Published>>) {
        let running: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let mut none_active = false;
        let mut woken = true;
        loop {
            let mut wait = self.0.timing.poll;
            if none_active && !woken {
                // Only events arrived, and no endpoint wants them.
            } else {
                match self.claim(&db, &running).await {
                    Ok(claimed) => {
                        none_active = claimed.active == 0;
                        wait = self.start(&db, &running, claimed, wait);
                    }
                    Err(error) => tracing::warn!(?error, "cannot look for webhooks to deliver"),
                }
            }
            woken = tokio::select! {
                received = events.recv() => {
                    if matches!(received, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                    // One look serves every event that arrived meanwhile.
                    while events.try_recv().is_ok() {}
                    false
                }
                () = self.0.wake.notified() => true,
                () = tokio::time::sleep(wait) => true,
            };
        }
    }

    /// Starts delivering to the endpoints `claimed`; returns how long to
    /// wait at most before looking again (`wait`, or less when a retry or
    /// an expiring lease is due sooner).
    fn start(
        &self,
        db: &Db,
        running: &Arc<Mutex<HashSet<i64>>>,
        claimed: Claimed,
        mut wait: Duration,
    ) -> Duration {
        if let Some(due) = claimed.soonest {
            let until = (due - now()).to_std().unwrap_or_default();
            wait = wait.min(until.max(Duration::from_millis(5)));
        }
        for hook in claimed.hooks {
            let (this, db, running) = (self.clone(), db.clone(), running.clone());
            tokio::spawn(async move {
                let id = hook.id;
                if let Err(error) = this.work(&db, hook).await {
                    tracing::warn!(?error, webhook = id, "webhook delivery stopped");
                    this.release(&db, id).await;
                }
                running.lock().map(|mut set| set.remove(&id)).ok();
                // Events may have arrived while it finished.
                this.wake();
            });
        }
        wait
    }
}

/// What one look at the endpoints found.
#[derive(Debug, Default)]
struct Claimed {
    /// The endpoints this replica now holds, with events to send.
    hooks: Vec<webhooks::Model>,
    /// When the soonest endpoint waiting for a retry or for another
    /// replica's lease to run out is due to be looked at again.
    soonest: Option<DateTime<Utc>>,
    /// How many endpoints are active, held or not.
    active: usize,
}

/// Deletes delivery attempts older than `keep`, every hour (or every `keep`
/// when shorter, at least a second apart). Every replica prunes; the
/// deletes agree.
async fn prune(db: Db, keep: Duration, stats: WebhookStats) {
    let keep_for = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let mut ticks =
        tokio::time::interval(keep.clamp(Duration::from_secs(1), Duration::from_secs(3600)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(before) = now().checked_sub_signed(keep_for) else {
            continue;
        };
        match service::prune_deliveries(&db, before).await {
            Ok(0) => {}
            Ok(pruned) => {
                stats.pruned(pruned);
                tracing::info!(pruned, "deleted old webhook delivery attempts");
            }
            Err(error) => tracing::warn!(?error, "cannot delete old webhook delivery attempts"),
        }
    }
}

impl Dispatcher {
    /// Claims the active endpoints with events to send, no retry pending
    /// and no other holder; also tells when the soonest of the others
    /// (waiting for a retry, or held by a replica that may have stopped)
    /// is due to be looked at again. With no endpoint active it reads
    /// nothing else.
    async fn claim(&self, db: &Db, running: &Mutex<HashSet<i64>>) -> ApiResult<Claimed> {
        self.0.stats.looked();
        let at = now();
        let active = webhooks::Entity::find()
            .filter(webhooks::Column::Status.eq(WebhookStatus::Active))
            .all(db.writer())
            .await?;
        if active.is_empty() {
            return Ok(Claimed::default());
        }
        let mut found = Claimed {
            active: active.len(),
            ..Claimed::default()
        };
        let latest = latest_seq(db).await?;
        let free = || {
            Condition::any()
                .add(webhooks::Column::LeaseUntil.is_null())
                .add(webhooks::Column::LeaseUntil.lt(at))
        };
        for hook in active.into_iter().filter(|hook| hook.cursor < latest) {
            let busy = running
                .lock()
                .map(|set| set.contains(&hook.id))
                .unwrap_or(true);
            if busy {
                continue;
            }
            let later = [hook.next_attempt_at, hook.lease_until]
                .into_iter()
                .flatten()
                .filter(|t| *t > at)
                .max();
            if let Some(later) = later {
                found.soonest = Some(found.soonest.map_or(later, |s| s.min(later)));
                continue;
            }
            let until = at + self.lease();
            let won = webhooks::Entity::update_many()
                .col_expr(
                    webhooks::Column::LeaseOwner,
                    Expr::val(self.0.owner.clone()),
                )
                .col_expr(webhooks::Column::LeaseUntil, Expr::val(until))
                .filter(webhooks::Column::Id.eq(hook.id))
                .filter(webhooks::Column::Status.eq(WebhookStatus::Active))
                .filter(free())
                .exec_with_returning(db.writer())
                .await?
                .pop();
            if let Some(hook) = won {
                running.lock().map(|mut set| set.insert(hook.id)).ok();
                found.hooks.push(hook);
            }
        }
        Ok(found)
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.0.timing.lease).unwrap_or(chrono::Duration::seconds(60))
    }

    /// An update of the endpoint, made only while this replica holds it.
    fn held(&self, id: i64) -> sea_orm::UpdateMany<webhooks::Entity> {
        webhooks::Entity::update_many()
            .filter(webhooks::Column::Id.eq(id))
            .filter(webhooks::Column::LeaseOwner.eq(self.0.owner.clone()))
    }

    async fn release(&self, db: &Db, id: i64) {
        let released = self
            .held(id)
            .col_expr(webhooks::Column::LeaseOwner, Expr::val(None::<String>))
            .col_expr(
                webhooks::Column::LeaseUntil,
                Expr::val(None::<DateTime<Utc>>),
            )
            .exec(db.writer())
            .await;
        if let Err(error) = released {
            tracing::warn!(?error, webhook = id, "could not release a webhook's lease");
        }
    }

    /// Moves the cursor to `seq` and renews the lease, if the endpoint is
    /// still held and its cursor where this worker left it; the row after.
    async fn advance(
        &self,
        db: &Db,
        hook: &webhooks::Model,
        seq: i64,
        succeeded: Option<DateTime<Utc>>,
    ) -> ApiResult<Option<webhooks::Model>> {
        let mut update = self
            .held(hook.id)
            .filter(webhooks::Column::Cursor.eq(hook.cursor))
            .col_expr(webhooks::Column::Cursor, Expr::val(seq))
            .col_expr(
                webhooks::Column::LeaseUntil,
                Expr::val(now() + self.lease()),
            );
        if let Some(at) = succeeded {
            update = update
                .col_expr(webhooks::Column::Failures, Expr::val(0))
                .col_expr(
                    webhooks::Column::RetrySince,
                    Expr::val(None::<DateTime<Utc>>),
                )
                .col_expr(
                    webhooks::Column::NextAttemptAt,
                    Expr::val(None::<DateTime<Utc>>),
                )
                .col_expr(webhooks::Column::LastError, Expr::val(None::<String>))
                .col_expr(webhooks::Column::LastSuccessAt, Expr::val(Some(at)));
        }
        Ok(update.exec_with_returning(db.writer()).await?.pop())
    }

    /// Records a failure: retry later, or mark the endpoint failing once
    /// failures have lasted the retry window. Gives the endpoint up.
    async fn failed(
        &self,
        db: &Db,
        hook: &webhooks::Model,
        error: &str,
        at: DateTime<Utc>,
    ) -> ApiResult<()> {
        let failures = hook.failures.saturating_add(1);
        let since = hook.retry_since.unwrap_or(at);
        let window = chrono::Duration::from_std(self.0.timing.retry_for)
            .unwrap_or(chrono::Duration::days(1));
        let mut update = self
            .held(hook.id)
            .col_expr(webhooks::Column::Failures, Expr::val(failures))
            .col_expr(webhooks::Column::RetrySince, Expr::val(Some(since)))
            .col_expr(webhooks::Column::LastError, Expr::val(Some(error)))
            .col_expr(webhooks::Column::LeaseOwner, Expr::val(None::<String>))
            .col_expr(
                webhooks::Column::LeaseUntil,
                Expr::val(None::<DateTime<Utc>>),
            );
        if at - since >= window {
            tracing::warn!(
                webhook = hook.id,
                failures,
                "webhook failing: retries ran out; paused"
            );
            self.0.stats.marked_failing();
            update = update
                .col_expr(webhooks::Column::Status, Expr::val(WebhookStatus::Failing))
                .col_expr(
                    webhooks::Column::NextAttemptAt,
                    Expr::val(None::<DateTime<Utc>>),
                )
                .col_expr(webhooks::Column::Version, Expr::val(hook.version + 1))
                .col_expr(webhooks::Column::UpdatedAt, Expr::val(at));
        } else {
            let wait = self.0.timing.backoff(failures, rand::rng().random());
            let next = at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
            update = update.col_expr(webhooks::Column::NextAttemptAt, Expr::val(Some(next)));
        }
        update.exec(db.writer()).await?;
        Ok(())
    }

    /// Sends the endpoint's events in order until it has none left, it
    /// fails, or it is no longer this replica's to work.
    async fn work(&self, db: &Db, mut hook: webhooks::Model) -> ApiResult<()> {
        'reload: loop {
            if hook.status != WebhookStatus::Active
                || hook.lease_owner.as_deref() != Some(&self.0.owner)
            {
                self.release(db, hook.id).await;
                return Ok(());
            }
            let batch = read_after(db, hook.cursor, BATCH).await?;
            let Some(last) = batch.last().map(|p| p.event.seq) else {
                self.release(db, hook.id).await;
                return Ok(());
            };
            let filter = Filter::of(&hook);
            let wanted: Vec<Published> = batch
                .into_iter()
                .filter(|p| filter.matches(&p.event, &p.ticket))
                .collect();
            let lookups = Lookups::load(db, &wanted).await?;
            for published in &wanted {
                let attempt = self.attempt(&hook, published, &lookups).await;
                let at = now();
                let delay = (attempt.outcome == DeliveryOutcome::Succeeded).then(|| {
                    (at - published.event.occurred_at)
                        .to_std()
                        .unwrap_or_default()
                });
                self.0.stats.attempted(attempt.latency, delay);
                self.record(db, &hook, published, &attempt, at).await?;
                if attempt.outcome != DeliveryOutcome::Succeeded {
                    let error = attempt.error.as_deref().unwrap_or("failed");
                    self.failed(db, &hook, error, at).await?;
                    return Ok(());
                }
                match self
                    .advance(db, &hook, published.event.seq, Some(at))
                    .await?
                {
                    Some(row) if row.version == hook.version => hook = row,
                    Some(row) => {
                        // Edited meanwhile: go on under the new settings.
                        hook = row;
                        continue 'reload;
                    }
                    None => match webhooks::Entity::find_by_id(hook.id)
                        .one(db.writer())
                        .await?
                    {
                        // Rewound, paused or taken over: look again.
                        Some(row) => {
                            hook = row;
                            continue 'reload;
                        }
                        None => return Ok(()),
                    },
                }
            }
            // Events this endpoint does not take still move its cursor.
            if last > hook.cursor {
                hook = match self.advance(db, &hook, last, None).await? {
                    Some(row) => row,
                    None => match webhooks::Entity::find_by_id(hook.id)
                        .one(db.writer())
                        .await?
                    {
                        Some(row) => row,
                        None => return Ok(()),
                    },
                };
            }
        }
    }

    async fn record(
        &self,
        db: &Db,
        hook: &webhooks::Model,
        published: &Published,
        attempt: &Attempt,
        at: DateTime<Utc>,
    ) -> ApiResult<()> {
        let row = webhook_deliveries::ActiveModel {
            id: NotSet,
            webhook_id: Set(hook.id),
            seq: Set(published.event.seq),
            ticket_id: Set(published.event.ticket_id),
            event_kind: Set(published.event.kind),
            message_id: Set(message_id(published.event.seq)),
            attempt: Set(hook.failures.saturating_add(1)),
            outcome: Set(attempt.outcome),
            response_status: Set(attempt.status.map(i32::from)),
            latency_ms: Set(i64::try_from(attempt.latency.as_millis()).unwrap_or(i64::MAX)),
            error: Set(attempt.error.clone()),
            attempted_at: Set(at),
        };
        match webhook_deliveries::Entity::insert(row)
            .exec_without_returning(db.writer())
            .await
        {
            Ok(_) => Ok(()),
            // Deleted while delivering: nothing left to record against.
            Err(error) if hook_gone(db, hook.id).await => {
                tracing::debug!(
                    ?error,
                    webhook = hook.id,
                    "webhook deleted while delivering"
                );
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Makes one attempt to deliver `published`.
    async fn attempt(
        &self,
        hook: &webhooks::Model,
        published: &Published,
        lookups: &Lookups,
    ) -> Attempt {
        let started = Instant::now();
        let failed = |error: String| Attempt {
            outcome: DeliveryOutcome::Failed,
            status: None,
            latency: started.elapsed(),
            error: Some(error),
        };
        if let Err(refusal) = self.0.policy.check_url(&hook.url) {
            return failed(refusal.to_string());
        }
        let at = now();
        let mut secrets = Vec::with_capacity(2);
        for text in std::iter::once(hook.secret.as_str()).chain(previous_secret_at(hook, at)) {
            match Secret::parse(text) {
                Ok(secret) => secrets.push(secret),
                Err(error) => return failed(format!("the stored secret is unusable: {error}")),
            }
        }
        let body = lookups.body(published, at);
        let id = message_id(published.event.seq);
        let mut request = self
            .0
            .client
            .post(&hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers(&secrets, &id, at.timestamp(), &body) {
            request = request.header(name, value);
        }
        let response = match request.body(body).send().await {
            Ok(response) => response,
            Err(error) => return failed(describe(&error, self.0.timing.timeout)),
        };
        let status = response.status();
        let answer = read_answer(response).await;
        let latency = started.elapsed();
        if status.is_success() {
            Attempt {
                outcome: DeliveryOutcome::Succeeded,
                status: Some(status.as_u16()),
                latency,
                error: None,
            }
        } else {
            let mut error = format!("the receiver answered {status}");
            if !answer.is_empty() {
                error.push_str(": ");
                error.push_str(&answer);
            }
            Attempt {
                outcome: DeliveryOutcome::Failed,
                status: Some(status.as_u16()),
                latency,
                error: Some(error),
            }
        }
    }
}

/// The `webhook-id` of the delivery of event `seq`: the same on every
/// attempt, so receivers can drop repeats.
pub fn message_id(seq: i64) -> String {
    format!("evt_{seq}")
}

async fn hook_gone(db: &Db, id: i64) -> bool {
    matches!(
        webhooks::Entity::find_by_id(id).one(db.writer()).await,
        Ok(None)
    )
}

/// The start of the receiver's answer, as text; the rest is read and dropped
/// (so the connection can be used again) up to a limit.
async fn read_answer(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    let mut read = 0usize;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if kept.len() < MAX_ANSWER {
            kept.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - kept.len())]);
        }
        if read > 64 * 1024 {
            break;
        }
    }
    String::from_utf8_lossy(&kept).trim().to_owned()
}

/// What went wrong, for the delivery record: the error and its causes.
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut text = if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(86_400),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(3600),
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let t = timing();
        assert_eq!(t.backoff(1, 0.0), Duration::from_secs(5));
        assert_eq!(t.backoff(2, 0.0), Duration::from_secs(10));
        assert_eq!(t.backoff(5, 0.0), Duration::from_secs(80));
        assert_eq!(t.backoff(20, 0.0), Duration::from_secs(3600));
        assert_eq!(t.backoff(i32::MAX, 0.0), Duration::from_secs(3600));
    }

    #[test]
    fn jitter_takes_off_up_to_half() {
        let t = timing();
        assert_eq!(t.backoff(3, 0.5), Duration::from_secs(15));
        assert!(t.backoff(3, 0.999_999) > Duration::from_secs(10));
    }

    #[test]
    fn a_day_of_retries_is_a_few_dozen_attempts() {
        let t = timing();
        let (mut waited, mut attempts) = (Duration::ZERO, 0);
        while waited < t.retry_for {
            attempts += 1;
            waited += t.backoff(attempts, 0.0);
        }
        assert!((25..40).contains(&attempts), "{attempts}");
    }
}
