//! Links between tickets: a problem's incidents, a change's related tickets.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::ticket::store::load;
use crate::{
    access::Scope,
    clock::now,
    db::{Db, Txn},
    entity::{ticket_links, tickets},
    error::{ApiError, ApiResult},
    events::{self, Change, Draft},
    vocabulary::{EventKind, LinkKind, TicketKind},
};

/// Links two tickets: a problem to an incident it causes, or a change to any
/// ticket it relates to.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, ticket = id, other = other_id))]
pub async fn link(
    db: &Db,
    scope: &Scope,
    id: i64,
    other_id: i64,
) -> ApiResult<(tickets::Model, tickets::Model)> {
    if id == other_id {
        return Err(ApiError::bad_input(
            "relatedTicketId",
            "a ticket cannot be linked to itself",
        ));
    }
    let txn = db.begin().await?;
    let ticket = load(&txn, scope, id, "ticketId").await?;
    let other = load(&txn, scope, other_id, "relatedTicketId").await?;
    if !scope.may_work(&ticket) {
        return Err(ApiError::Forbidden(
            "only the ticket's agents and managers may link it".into(),
        ));
    }
    let at = now();
    link_rows(&txn, scope, &ticket, &other, at).await?;
    txn.commit().await?;
    Ok((ticket, other))
}

/// What linking `a` and `b` means, as `(from, to, kind)`; `None` when those
/// kinds do not link.
pub fn link_kind<'t>(
    a: &'t tickets::Model,
    b: &'t tickets::Model,
) -> Option<(&'t tickets::Model, &'t tickets::Model, LinkKind)> {
    use TicketKind::*;
    match (a.kind, b.kind) {
        (Problem, Incident) => Some((a, b, LinkKind::CausedBy)),
        (Incident, Problem) => Some((b, a, LinkKind::CausedBy)),
        (Change, _) => Some((a, b, LinkKind::RelatedTo)),
        (_, Change) => Some((b, a, LinkKind::RelatedTo)),
        _ => None,
    }
}

pub(super) async fn link_rows(
    txn: &Txn,
    scope: &Scope,
    a: &tickets::Model,
    b: &tickets::Model,
    at: DateTime<Utc>,
) -> ApiResult<()> {
    let (from, to, kind) = link_kind(a, b).ok_or_else(|| {
        ApiError::bad_input(
            "relatedTicketId",
            format!(
                "a {} and a {} do not link: problems link to incidents, changes to any ticket",
                a.kind.as_str(),
                b.kind.as_str()
            ),
        )
    })?;
    let exists = ticket_links::Entity::find_by_id((from.id, to.id))
        .one(txn)
        .await?
        .is_some();
    if exists {
        return Ok(());
    }
    ticket_links::Entity::insert(ticket_links::ActiveModel {
        from_ticket_id: Set(from.id),
        to_ticket_id: Set(to.id),
        kind: Set(kind),
        created_at: Set(at),
    })
    .exec_without_returning(txn)
    .await?;
    for (ticket, other) in [(from, to), (to, from)] {
        let changes = [Change::new(
            "linkedTicket",
            None,
            Some(other.number.clone()),
        )];
        events::record(
            txn,
            Draft::new(ticket, scope.user_id, EventKind::Linked, &changes, at),
        )
        .await?;
    }
    Ok(())
}

/// The input field that carries a new ticket's links: a problem names its
/// incidents, a change its related tickets.
pub(super) fn linked_field(kind: TicketKind) -> &'static str {
    match kind {
        TicketKind::Problem => "incidentIds",
        _ => "relatedTicketIds",
    }
}

pub(super) async fn linked_tickets(
    txn: &Txn,
    scope: &Scope,
    kind: TicketKind,
    ids: &[i64],
) -> ApiResult<Vec<tickets::Model>> {
    let field = linked_field(kind);
    let mut found = Vec::with_capacity(ids.len());
    for &id in ids {
        let ticket = load(txn, scope, id, field)
            .await
            .map_err(|_| ApiError::bad_input(field, "no such ticket"))?;
        if kind == TicketKind::Problem && ticket.kind != TicketKind::Incident {
            return Err(ApiError::bad_input(field, "a problem links to incidents"));
        }
        found.push(ticket);
    }
    Ok(found)
}
