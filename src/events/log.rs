//! Writes the event log: every ticket change appends one event in the same
//! transaction as the change, and every event gets a sequence number such
//! that a reader who has seen event N never later finds a new event below N.
//! That is what lets subscribers resume "after N".
//!
//! On SQLite, whose writers take turns, each writing transaction numbers its
//! events from a counter row as it writes them.
//!
//! On PostgreSQL, writers hold no shared row: numbering at write time would
//! make every writer wait for the one before it to commit. A writer appends
//! its events to `ticket_event_queue` with its transaction id `tx`, and
//! [`settle`] later moves queued events into `ticket_events` with the next
//! numbers, in `(ord, id)` order, once they are below the horizon: the
//! oldest transaction id still running anywhere on the server
//! (`pg_snapshot_xmin`). Every transaction that could still append has a
//! transaction id at or above the horizon (a new one gets a higher one), so
//! nothing can later join below it: each move is final, and every later one
//! follows it. An event's `ord` is its `tx`, raised to the highest `ord`
//! already queued for its ticket, and a writer holds the ticket's row when
//! it queues (it has written it, or `record` locks it), so a change made
//! after another committed change to the same ticket is numbered after it
//! even when its transaction got its id first. A transaction that holds a
//! transaction id, anywhere on the server, holds the horizon and so delays
//! numbering (and delivery) until it ends.
//!
//! Writers do not `NOTIFY` either: PostgreSQL serialises the commits of all
//! transactions that notify, on one cluster-wide lock held until each has
//! flushed its commit. The writer's own process wakes its pump in memory,
//! and the pump's settling, one at a time anyway, notifies the other
//! replicas. Only a process without a pump (a command-line tool) notifies
//! from its writes.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, Statement};
use serde::{Deserialize, Serialize};

use crate::{
    db::{Db, Txn},
    entity::{ticket_events, tickets},
    error::{ApiError, ApiResult},
    vocabulary::{EventKind, Visibility},
};

/// One field's change, as stored in an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The field, by its GraphQL name.
    pub field: String,
    /// The value before, as text.
    pub from: Option<String>,
    /// The value after, as text.
    pub to: Option<String>,
}

impl Change {
    /// A change of `field` from `from` to `to`.
    pub fn new(field: &str, from: Option<String>, to: Option<String>) -> Self {
        Self {
            field: field.to_owned(),
            from,
            to,
        }
    }
}

/// Increments the named counter and returns its new value.
pub async fn next_counter<C: ConnectionTrait>(conn: &C, name: &str) -> ApiResult<i64> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value"
        }
        _ => "UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value",
    };
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [name.into()]))
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("counter {name} is missing")))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    /// The ticket, as it is after the change.
    pub ticket: &'a tickets::Model,
    /// The queue the event belongs to (the ticket's, unless it just left one).
    pub queue_id: i64,
    /// Who made the change.
    pub actor_id: Option<i64>,
    /// What happened.
    pub kind: EventKind,
    /// Who may read the event.
    pub visibility: Visibility,
    /// The fields that changed.
    pub changes: &'a [Change],
    /// When.
    pub at: DateTime<Utc>,
}

impl<'a> Draft<'a> {
    /// A public event in the ticket's current queue.
    pub fn new(
        ticket: &'a tickets::Model,
        actor_id: i64,
        kind: EventKind,
        changes: &'a [Change],
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            ticket,
            queue_id: ticket.queue_id,
            actor_id: Some(actor_id),
            kind,
            visibility: Visibility::Public,
            changes,
            at,
        }
    }

    /// An event the service itself raises (no actor).
    pub fn system(
        ticket: &'a tickets::Model,
        kind: EventKind,
        changes: &'a [Change],
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            actor_id: None,
            ..Self::new(ticket, 0, kind, changes, at)
        }
    }

    /// The same event, in another queue.
    pub fn in_queue(self, queue_id: i64) -> Self {
        Self { queue_id, ..self }
    }

    /// The same event, readable as `visibility` says.
    pub fn visible_as(self, visibility: Visibility) -> Self {
        Self { visibility, ..self }
    }
}

/// Appends one event: numbered at once on SQLite, queued for [`settle`] on
/// PostgreSQL. The transaction's commit wakes the event pump.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn record(conn: &Txn, draft: Draft<'_>) -> ApiResult<()> {
    conn.wrote_events();
    let changes = serde_json::to_string(draft.changes).map_err(ApiError::internal)?;
    if conn.get_database_backend() == DbBackend::Postgres {
        if !conn.holds_ticket(draft.ticket.id) {
            // A ticket's events are queued in the order its writers take its
            // row, so the order key sees every earlier change's event.
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM tickets WHERE id = $1 FOR NO KEY UPDATE",
                [draft.ticket.id.into()],
            ))
            .await?;
            conn.hold_ticket(draft.ticket.id);
        }
        let row = conn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                QUEUE,
                [
                    draft.ticket.id.into(),
                    draft.queue_id.into(),
                    draft.ticket.requester_id.into(),
                    draft.actor_id.into(),
                    draft.kind.as_str().into(),
                    draft.visibility.as_str().into(),
                    changes.into(),
                    draft.at.into(),
                ],
            ))
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the event was not queued")))?;
        conn.queued(row.try_get_by_index::<i64>(0)?);
        if !conn.has_pump() {
            // No pump here will number it: wake every replica's on commit.
            // A process with a pump does not notify: a transaction that
            // does takes PostgreSQL's cluster-wide notification lock from
            // its commit until its end, so writers would commit one at a
            // time. Its pump numbers the event, and that settling notifies.
            conn.execute_unprepared(&format!("NOTIFY {}", crate::db::EVENTS_CHANNEL))
                .await?;
        }
        return Ok(());
    }
    let seq = next_counter(conn, "EVENT").await?;
    ticket_events::Entity::insert(ticket_events::ActiveModel {
        seq: Set(seq),
        ticket_id: Set(draft.ticket.id),
        queue_id: Set(draft.queue_id),
        requester_id: Set(draft.ticket.requester_id),
        actor_id: Set(draft.actor_id),
        kind: Set(draft.kind),
        visibility: Set(draft.visibility),
        changes: Set(changes),
        occurred_at: Set(draft.at),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Queues one event on PostgreSQL; returns its `ord`.
const QUEUE: &str = "INSERT INTO ticket_event_queue \
    (tx, ord, ticket_id, queue_id, requester_id, actor_id, kind, visibility, changes, occurred_at) \
    SELECT me.tx, GREATEST(me.tx, COALESCE( \
        (SELECT MAX(ord) FROM ticket_event_queue WHERE ticket_id = $1), 0)), \
        $1, $2, $3, $4, $5, $6, $7, $8 \
    FROM (SELECT pg_current_xact_id()::text::bigint AS tx) me \
    RETURNING ord";

/// The advisory lock that lets one [`settle`] run at a time on a database;
/// anything else that numbers events on PostgreSQL must hold it too.
pub const SETTLING: i64 = 0x6974_736d_6576_7473; // "itsmevts"

/// How long a [`settle`] waits for the [`SETTLING`] lock before it fails.
pub const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Moves the queued events below the horizon into the log, numbered from the
/// `EVENT` counter in `(ord, id)` order; returns how many, the horizon, and
/// whether committed events remain queued above it.
const SETTLE: &str = "WITH horizon AS ( \
        SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin \
    ), moved AS ( \
        DELETE FROM ticket_event_queue q USING horizon h WHERE q.ord < h.xmin \
        RETURNING q.id, q.ord, q.ticket_id, q.queue_id, q.requester_id, q.actor_id, \
            q.kind, q.visibility, q.changes, q.occurred_at \
    ), numbered AS ( \
        INSERT INTO ticket_events \
            (seq, ticket_id, queue_id, requester_id, actor_id, kind, visibility, changes, occurred_at) \
        SELECT c.value + row_number() OVER (ORDER BY m.ord, m.id), m.ticket_id, m.queue_id, \
            m.requester_id, m.actor_id, m.kind, m.visibility, m.changes, m.occurred_at \
        FROM moved m, counters c WHERE c.name = 'EVENT' \
        RETURNING seq \
    ), bumped AS ( \
        UPDATE counters SET value = (SELECT MAX(seq) FROM numbered) \
        WHERE name = 'EVENT' AND EXISTS (SELECT 1 FROM numbered) \
        RETURNING value \
    ) \
    SELECT (SELECT COUNT(*) FROM numbered), (SELECT xmin FROM horizon), \
        EXISTS (SELECT 1 FROM ticket_event_queue q, horizon h WHERE q.ord >= h.xmin)";

/// What one [`settle`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Events moved into the log.
    pub moved: i64,
    /// Every event queued with an `ord` below this is now in the log.
    pub horizon: i64,
    /// Committed events wait above the horizon, for a transaction that
    /// began before them to end.
    pub held: bool,
}

/// Numbers the queued events that can no longer be preceded by another
/// (PostgreSQL; see the module's documentation). One runs at a time per
/// database; a move of any events wakes every replica's pump.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn settle(db: &Db) -> ApiResult<Settled> {
    let txn = db.begin().await?;
    // Another settling holds the lock for milliseconds; a session stuck
    // holding it must not hold this pump's connection with it: after
    // `SETTLE_WAIT` this settling fails, and the pump retries.
    txn.execute_unprepared(&format!(
        "SELECT set_config('lock_timeout', '{}ms', true), pg_advisory_xact_lock({SETTLING})",
        SETTLE_WAIT.as_millis()
    ))
    .await?;
    let row = txn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, SETTLE))
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("settling returned no row")))?;
    let settled = Settled {
        moved: row.try_get_by_index(0)?,
        horizon: row.try_get_by_index(1)?,
        held: row.try_get_by_index(2)?,
    };
    if settled.moved > 0 {
        txn.execute_unprepared(&format!("NOTIFY {}", crate::db::EVENTS_CHANNEL))
            .await?;
    }
    txn.commit().await?;
    Ok(settled)
}

/// The kind of object a change's value names by its row id (a new comment,
/// an attachment): shown as that object's global id.
pub fn named_object(kind: EventKind, field: &str) -> Option<&'static str> {
    match (kind, field) {
        (EventKind::CommentAdded, "comment") => Some("Comment"),
        (EventKind::AttachmentAdded | EventKind::AttachmentRemoved, "attachment") => {
            Some("Attachment")
        }
        _ => None,
    }
}

/// The changes stored in an event.
pub fn changes_of(event: &ticket_events::Model) -> Vec<Change> {
    serde_json::from_str(&event.changes).unwrap_or_default()
}
