//! The event pump and the PostgreSQL `LISTEN` bridge.
//!
//! The pump reads events committed after the last one it published, in
//! sequence order, and publishes them on the bus. An event is numbered only
//! once no event can join before it (see `events::log`), so reading
//! "everything after the last one" never skips an event that commits late.
//! On PostgreSQL the pump first numbers the queued events ([`settle`]), and
//! while committed ones are held back by an older running transaction it
//! looks again soon, backing off up to the poll. It wakes when this process
//! commits events, when another replica's `NOTIFY` arrives, and every
//! `--event-poll` (2 s) regardless, so a lost notification costs latency,
//! never data.

use std::{collections::HashMap, time::Duration};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::task::JoinHandle;

use super::{
    bus::{EventBus, Published},
    log::settle,
};
use crate::{
    db::{Db, EVENTS_CHANNEL, SETUP_CHANNEL},
    entity::{ticket_events, tickets},
    error::ApiResult,
};

/// Events read per query.
const BATCH: u64 = 500;

/// The first wait before looking again at events held back.
const HELD_FIRST: Duration = Duration::from_millis(2);

/// Starts the pump (and, on PostgreSQL, the `LISTEN` bridge).
/// `poll` is how often the pump reads the log without being woken.
pub fn spawn(db: Db, bus: EventBus, poll: Duration) -> Vec<JoinHandle<()>> {
    let poll = poll.max(Duration::from_millis(100));
    let mut tasks = vec![tokio::spawn(pump(db.clone(), bus, poll))];
    if db.backend() == DbBackend::Postgres {
        tasks.push(tokio::spawn(listen(db)));
    }
    tasks
}

/// The newest sequence number in the log (0 when it is empty).
pub(crate) async fn latest_seq(db: &Db) -> ApiResult<i64> {
    let latest: Option<Option<i64>> = ticket_events::Entity::find()
        .select_only()
        .column_as(ticket_events::Column::Seq.max(), "latest")
        .into_tuple()
        .one(db.reader())
        .await?;
    Ok(latest.flatten().unwrap_or(0))
}

/// How far behind the log a pump that published up to `position` is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    /// Events in the log after `position`.
    pub events: i64,
    /// The age of the oldest of them (zero when there are none).
    pub oldest: Duration,
}

/// Counts the events after `position` and the age of the oldest.
pub async fn lag(db: &Db, position: i64) -> ApiResult<Lag> {
    let found: Option<(i64, Option<chrono::DateTime<chrono::Utc>>)> = ticket_events::Entity::find()
        .select_only()
        .column_as(ticket_events::Column::Seq.count(), "events")
        .column_as(ticket_events::Column::OccurredAt.min(), "oldest")
        .filter(ticket_events::Column::Seq.gt(position))
        .into_tuple()
        .one(db.reader())
        .await?;
    let (mut events, mut oldest) = found.unwrap_or((0, None));
    if db.backend() == DbBackend::Postgres {
        // Committed events not numbered yet (held back by a running
        // transaction) are behind too.
        let queued = db
            .reader()
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                "SELECT COUNT(*), MIN(occurred_at) FROM ticket_event_queue",
            ))
            .await?;
        if let Some(row) = queued {
            let count: i64 = row.try_get_by_index(0)?;
            let at: Option<chrono::DateTime<chrono::Utc>> = row.try_get_by_index(1)?;
            events += count;
            oldest = match (oldest, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let oldest = oldest
        .and_then(|at| (chrono::Utc::now() - at).to_std().ok())
        .unwrap_or_default();
    Ok(Lag { events, oldest })
}

/// Reads events after `after`, with their tickets, in sequence order.
pub async fn read_after(db: &Db, after: i64, limit: u64) -> ApiResult<Vec<Published>> {
    let events = ticket_events::Entity::find()
        .filter(ticket_events::Column::Seq.gt(after))
        .order_by_asc(ticket_events::Column::Seq)
        .limit(limit)
        .all(db.reader())
        .await?;
    with_tickets(db, events).await
}

/// Pairs events with their tickets (one query).
pub async fn with_tickets(db: &Db, events: Vec<ticket_events::Model>) -> ApiResult<Vec<Published>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<i64> = events.iter().map(|e| e.ticket_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let tickets: HashMap<i64, tickets::Model> = tickets::Entity::find()
        .filter(tickets::Column::Id.is_in(ids))
        .all(db.reader())
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    Ok(events
        .into_iter()
        .filter_map(|event| {
            let ticket = tickets.get(&event.ticket_id)?.clone();
            Some(Published { event, ticket })
        })
        .collect())
}

async fn pump(db: Db, bus: EventBus, poll: Duration) {
    let mut last = loop {
        match latest_seq(&db).await {
            Ok(seq) => break seq,
            Err(error) => {
                tracing::warn!(?error, "event pump cannot read the log yet");
                tokio::time::sleep(poll.min(Duration::from_secs(2))).await;
            }
        }
    };
    tracing::debug!(last, "event pump started");
    bus.stats().started_at(last);
    let queue = db.backend() == DbBackend::Postgres;
    db.signals()
        .pumping
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut retry = false;
    // Events held back: look again after this, doubling up to the poll.
    let mut held: Option<Duration> = None;
    // Events left in the queue by writers without a pump are numbered now.
    let mut first = true;
    loop {
        if retry {
            // A failed read is retried soon, not at the next poll.
            tokio::time::sleep(poll.min(Duration::from_secs(1))).await;
            retry = false;
        } else if first {
            first = false;
        } else {
            let wait = held.unwrap_or(poll);
            tokio::select! {
                () = db.signals().events.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        if queue {
            match settle(&db).await {
                Ok(settled) => {
                    db.signals().settled.send_replace(settled.horizon);
                    held = settled
                        .held
                        .then(|| held.map_or(HELD_FIRST, |wait| (wait * 2).min(poll)));
                }
                Err(error) => {
                    tracing::warn!(
                        ?error,
                        "event pump could not number queued events; retrying"
                    );
                    retry = true;
                    continue;
                }
            }
        }
        loop {
            match read_after(&db, last, BATCH).await {
                Ok(batch) => {
                    let full = batch.len() as u64 == BATCH;
                    let now = chrono::Utc::now();
                    for published in batch {
                        last = published.event.seq;
                        let delay = (now - published.event.occurred_at)
                            .to_std()
                            .unwrap_or_default();
                        bus.stats().published(last, delay);
                        bus.publish(published);
                    }
                    if !full {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(?error, "event pump could not read the log; retrying");
                    retry = true;
                    break;
                }
            }
        }
    }
}

async fn listen(db: Db) {
    let pool = db.writer().get_postgres_connection_pool().clone();
    loop {
        let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for other replicas' events; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen_all([EVENTS_CHANNEL, SETUP_CHANNEL]).await {
            tracing::warn!(%error, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Whatever happened while not listening, the log has it.
        db.signals().events.notify_one();
        db.signals().bump_setup();
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => match notification.channel() {
                    SETUP_CHANNEL => db.signals().bump_setup(),
                    _ => db.signals().events.notify_one(),
                },
                Ok(None) => {
                    tracing::warn!("LISTEN connection lost; reconnecting and catching up");
                    db.signals().events.notify_one();
                    db.signals().bump_setup();
                }
                Err(error) => {
                    tracing::warn!(%error, "LISTEN connection failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}
