//! The ticket store: loading a ticket for a write, saving it under optimistic
//! concurrency, and the SLA clock and targets kept on its row.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
};

use super::rules::sla::{Clock, NO_DUE, Targets};
use crate::{
    access::Scope,
    db::{Db, Txn},
    entity::tickets,
    error::{ApiError, ApiResult},
    vocabulary::EventKind,
};

/// The SLA clock stored with `ticket`.
pub fn clock(ticket: &tickets::Model) -> Clock {
    Clock {
        created_at: ticket.created_at,
        targets: Targets {
            response: Duration::seconds(ticket.response_target_seconds),
            resolution: Duration::seconds(ticket.resolution_target_seconds),
        },
        responded_at: ticket.responded_at,
        stopped_at: ticket.sla_stopped_at,
        paused_since: ticket.paused_since,
        paused_seconds: ticket.paused_seconds,
    }
}

pub(crate) fn store_clock(ticket: &mut tickets::Model, clock: &Clock) {
    ticket.response_target_seconds = clock.targets.response.num_seconds();
    ticket.resolution_target_seconds = clock.targets.resolution.num_seconds();
    ticket.response_due_at = clock.response_due();
    ticket.resolution_due_at = clock.resolution_due();
    ticket.queue_due_at = clock.queue_due();
    ticket.response_warn_at = Some(clock.response_warning());
    ticket.resolution_warn_at = Some(clock.resolution_warning());
    ticket.responded_at = clock.responded_at;
    ticket.sla_stopped_at = clock.stopped_at;
    ticket.paused_since = clock.paused_since;
    ticket.paused_seconds = clock.paused_seconds;
}

/// Loads a ticket the viewer may see, inside `txn`; `NOT_FOUND` otherwise.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, ticket = id))]
pub(crate) async fn load(
    txn: &Txn,
    scope: &Scope,
    id: i64,
    field: &str,
) -> ApiResult<tickets::Model> {
    tickets::Entity::find_by_id(id)
        .one(txn)
        .await?
        .filter(|ticket| scope.can_see(ticket))
        .ok_or_else(|| not_found(field))
}

pub(crate) fn not_found(field: &str) -> ApiError {
    ApiError::NotFound(format!("no ticket with that `{field}`"))
}

pub(crate) fn check_version(ticket: &tickets::Model, expected: Option<i32>) -> ApiResult<()> {
    match expected {
        Some(expected) if expected != ticket.version => Err(ApiError::Conflict(format!(
            "the ticket changed since version {expected} (it is at version {}); reload and retry",
            ticket.version
        ))),
        _ => Ok(()),
    }
}

/// Writes `after` over `before`, bumping the version, only if nobody else
/// changed the ticket meanwhile.
#[tracing::instrument(skip_all, level = "debug", fields(ticket = before.id))]
pub(crate) async fn save(
    txn: &Txn,
    before: &tickets::Model,
    mut after: tickets::Model,
    at: DateTime<Utc>,
) -> ApiResult<tickets::Model> {
    after.version = before.version + 1;
    after.updated_at = at;
    let mut row: tickets::ActiveModel = after.into();
    row = row.reset_all();
    row.id = NotSet;
    let mut saved = tickets::Entity::update_many()
        .set(row)
        .filter(tickets::Column::Id.eq(before.id))
        .filter(tickets::Column::Version.eq(before.version))
        .exec_with_returning(txn)
        .await?;
    txn.hold_ticket(before.id);
    saved
        .pop()
        .ok_or_else(|| ApiError::Conflict("the ticket changed meanwhile; reload and retry".into()))
}

/// Moves a new ticket's creation `by` into the past, with its SLA due times
/// and its creation event. Only for demo data: real tickets are never aged.
#[tracing::instrument(skip_all, fields(id))]
pub async fn backdate(db: &Db, id: i64, by: Duration) -> ApiResult<()> {
    let txn = db.begin().await?;
    let ticket = tickets::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| not_found("id"))?;
    let mut row: tickets::ActiveModel = ticket.clone().into();
    row.created_at = Set(ticket.created_at - by);
    row.updated_at = Set(ticket.updated_at - by);
    row.response_due_at = Set(ticket.response_due_at - by);
    row.resolution_due_at = Set(ticket.resolution_due_at - by);
    if ticket.queue_due_at != NO_DUE {
        row.queue_due_at = Set(ticket.queue_due_at - by);
    }
    row.response_warn_at = Set(ticket.response_warn_at.map(|t| t - by));
    row.resolution_warn_at = Set(ticket.resolution_warn_at.map(|t| t - by));
    row.update(&txn).await?;
    crate::entity::ticket_events::Entity::update_many()
        .col_expr(
            crate::entity::ticket_events::Column::OccurredAt,
            sea_orm::sea_query::Expr::val(ticket.created_at - by),
        )
        .filter(crate::entity::ticket_events::Column::TicketId.eq(id))
        .filter(crate::entity::ticket_events::Column::Kind.eq(EventKind::Created))
        .exec(&txn)
        .await?;
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Not numbered yet where no event pump runs (the seed command).
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "UPDATE ticket_event_queue SET occurred_at = $1 WHERE ticket_id = $2 AND kind = 'CREATED'",
            [(ticket.created_at - by).into(), id.into()],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(())
}
