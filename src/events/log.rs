//! Writes the event log: every ticket change appends one numbered event in the
//! same transaction as the change.
//!
//! Sequence numbers come from a counter row that each writing transaction
//! increments. The row stays locked until commit, so numbers are handed out in
//! commit order: a reader that has seen event N will never later find a new
//! event below N. That is what lets subscribers resume "after N".

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, Statement};
use serde::{Deserialize, Serialize};

use crate::{
    db::Txn,
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

/// Appends one event and returns its sequence number. The transaction's
/// commit wakes the event pump.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn record(conn: &Txn, draft: Draft<'_>) -> ApiResult<i64> {
    conn.wrote_events();
    let seq = next_counter(conn, "EVENT").await?;
    let changes = serde_json::to_string(draft.changes).map_err(ApiError::internal)?;
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
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Delivered on commit, to every replica's event pump; repeats within
        // one transaction are folded into one.
        conn.execute_unprepared(&format!("NOTIFY {}", crate::db::EVENTS_CHANNEL))
            .await?;
    }
    Ok(seq)
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
