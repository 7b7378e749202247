//! Opening a ticket: validation, idempotent retries, routing, SLA targets,
//! the creation event, approvals and tasks, and links to other tickets.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
};
use serde_json::json;

use super::{
    links::{link_rows, linked_field, linked_tickets},
    title,
};
use crate::ticket::{
    fulfilment::{self},
    rules::{priority::priority, sla::Clock},
    setup::{self, Setup},
};
use crate::{
    access::Scope,
    auth::Role,
    clock::now,
    db::{Db, Txn},
    entity::{queues, tickets, users},
    error::{ApiError, ApiResult},
    events::{self, Change, Draft},
    text::{clean, long_text},
    vocabulary::{ChangeType, EventKind, Level, Status, TicketKind},
};

pub(super) const MAX_KEY: usize = 200;

/// A ticket to create.
#[derive(Debug, Clone, Default)]
pub struct NewTicket {
    /// `PROBLEM` and `CHANGE` need staff; anyone signed in may report the rest.
    pub kind: Option<TicketKind>,
    /// One line, 1 to 200 characters.
    pub title: String,
    /// Free text.
    pub description: String,
    /// How much it affects.
    pub impact: Option<Level>,
    /// How soon it matters.
    pub urgency: Option<Level>,
    /// Where it lands; the default queue when absent.
    pub queue_id: Option<i64>,
    /// Makes a retry return the first ticket instead of a second one.
    pub idempotency_key: Option<String>,
    /// Problems: the root cause, when known.
    pub root_cause: Option<String>,
    /// Problems: how to work around it.
    pub workaround: Option<String>,
    /// Problems: a known error.
    pub known_error: Option<bool>,
    /// Changes: the change type.
    pub change_type: Option<ChangeType>,
    /// Changes: the risk.
    pub risk: Option<Level>,
    /// Changes: when work starts.
    pub planned_start: Option<DateTime<Utc>>,
    /// Changes: when work ends.
    pub planned_end: Option<DateTime<Utc>>,
    /// Tickets to link: a problem's incidents, a change's related tickets.
    pub linked_ids: Vec<i64>,
    /// The service the ticket concerns.
    pub service_id: Option<i64>,
    /// The catalog item requested.
    pub catalog_item_id: Option<i64>,
    /// The request form's answers, as JSON.
    pub request_answers: Option<String>,
    /// For tickets whose fields are derived from what a client sent (catalog
    /// requests): that input, which identifies a retry under the same
    /// idempotency key instead of the derived fields.
    pub submitted: Option<serde_json::Value>,
    /// Approvals and fulfilment tasks.
    pub plan: fulfilment::Plan,
    /// Whom the ticket is for, when not the viewer: staff, and integrations
    /// with `tickets:write` (which must name someone), open tickets for
    /// others. The viewer is recorded as the actor.
    pub requester_id: Option<i64>,
    /// Files already in the store that become the ticket's attachments
    /// (a catalog request's `FILE` answers).
    pub attachments: Vec<crate::attachments::service::Staged>,
}

/// Creates a ticket of `new.kind` (an incident when absent).
pub async fn create(db: &Db, scope: &Scope, new: NewTicket) -> ApiResult<tickets::Model> {
    Ok(create_or_replay(db, scope, new).await?.0)
}

/// [`create`], saying whether the ticket is new (`false`: a retry under the
/// same idempotency key found the first one, and nothing was written).
#[tracing::instrument(skip_all, fields(viewer = scope.user_id))]
pub async fn create_or_replay(
    db: &Db,
    scope: &Scope,
    new: NewTicket,
) -> ApiResult<(tickets::Model, bool)> {
    let kind = new.kind.unwrap_or(TicketKind::Incident);
    let mut new = new;
    if kind == TicketKind::Change
        && matches!(
            new.change_type,
            Some(ChangeType::Normal | ChangeType::Emergency)
        )
        && !new.plan.needs_approval()
    {
        // Normal and emergency changes need a manager's approval before work
        // starts; standard changes are pre-approved.
        new.plan.approvers = Some(None);
    }
    if !scope.may_open_tickets() {
        return Err(ApiError::Forbidden(format!(
            "this integration's token does not carry the {} scope",
            crate::auth::grants::TICKETS_WRITE
        )));
    }
    let requester = requester(db, scope, new.requester_id).await?;
    if matches!(kind, TicketKind::Problem | TicketKind::Change) && scope.role < Role::Agent {
        return Err(ApiError::Forbidden(format!(
            "only agents, managers and admins open {} tickets",
            kind.as_str()
        )));
    }
    let title = title(&new.title, "title")?;
    let description = long_text(&new.description, "description")?;
    let impact = new
        .impact
        .ok_or_else(|| ApiError::bad_input("impact", "impact is required"))?;
    let urgency = new
        .urgency
        .ok_or_else(|| ApiError::bad_input("urgency", "urgency is required"))?;
    check_kind_fields(kind, &new)?;
    let key = match new.idempotency_key.as_deref().map(str::trim) {
        Some("") => return Err(ApiError::bad_input("idempotencyKey", "must not be empty")),
        Some(key) if key.chars().count() > MAX_KEY => {
            return Err(ApiError::bad_input(
                "idempotencyKey",
                format!("at most {MAX_KEY} characters"),
            ));
        }
        other => other.map(str::to_owned),
    };
    let fingerprint = key
        .as_ref()
        .map(|_| fingerprint(kind, &title, &description, impact, urgency, &new));

    if let (Some(key), Some(fingerprint)) = (&key, &fingerprint)
        && let Some(existing) = find_by_key(db.reader(), requester, key).await?
    {
        return Ok((replay(existing, fingerprint)?, false));
    }

    // Read before the transaction, which then holds the one write
    // connection (SQLite) no longer than it must.
    let setup = setup::current(db).await?;
    let txn = db.begin().await?;
    let checked = Checked {
        kind,
        title,
        description,
        impact,
        urgency,
        key: key.clone(),
        fingerprint: fingerprint.clone(),
    };
    let created = insert_ticket(&txn, &setup, scope, requester, checked, &new).await;
    match created {
        Ok(ticket) => {
            txn.commit().await?;
            Ok((ticket, true))
        }
        Err(ApiError::Conflict(_)) if key.is_some() => {
            // A concurrent retry won the race for this key: answer as it did.
            txn.rollback().await?;
            let (Some(key), Some(fingerprint)) = (key, fingerprint) else {
                return Err(ApiError::internal(anyhow::anyhow!("key vanished")));
            };
            match find_by_key(db.writer(), requester, &key).await? {
                Some(existing) => Ok((replay(existing, &fingerprint)?, false)),
                None => Err(ApiError::Conflict(
                    "the ticket could not be created; retry".into(),
                )),
            }
        }
        Err(error) => Err(error),
    }
}

/// What [`create`] checked: the fields as they will be stored, before
/// routing may change the impact and urgency.
struct Checked {
    kind: TicketKind,
    title: String,
    description: String,
    impact: Level,
    urgency: Level,
    key: Option<String>,
    fingerprint: Option<String>,
}

/// What the routing rules decided for a new ticket.
struct Routed {
    queue: queues::Model,
    impact: Level,
    urgency: Level,
    assignee: Option<i64>,
    /// The rule's changes, for the `ROUTED` event; `None` when no rule matched.
    changes: Option<Vec<Change>>,
}

/// Routing rules: the first enabled one that matches may set the queue, the
/// assignee, the impact and the urgency.
async fn route(
    txn: &Txn,
    setup: &Setup,
    facts: &crate::routing::rules::Facts<'_>,
    queue: queues::Model,
) -> ApiResult<Routed> {
    let mut routed = Routed {
        queue,
        impact: facts.impact,
        urgency: facts.urgency,
        assignee: None,
        changes: None,
    };
    let Some(rule) = crate::routing::rules::first_match(&setup.rules, facts) else {
        return Ok(routed);
    };
    let actions = crate::routing::service::actions_of(rule);
    let mut changes = vec![Change::new("routingRule", None, Some(rule.name.clone()))];
    if let Some(queue_id) = actions.queue_id
        && let Some(target) = queues::Entity::find_by_id(queue_id).one(txn).await?
    {
        changes.push(Change::new(
            "queue",
            Some(routed.queue.name.clone()),
            Some(target.name.clone()),
        ));
        routed.queue = target;
    }
    if let Some(level) = actions.impact {
        changes.push(Change::new(
            "impact",
            Some(routed.impact.as_str().into()),
            Some(level.as_str().into()),
        ));
        routed.impact = level;
    }
    if let Some(level) = actions.urgency {
        changes.push(Change::new(
            "urgency",
            Some(routed.urgency.as_str().into()),
            Some(level.as_str().into()),
        ));
        routed.urgency = level;
    }
    if let Some(user_id) = actions.assignee_id
        && let Some(user) = users::Entity::find_by_id(user_id).one(txn).await?
    {
        changes.push(Change::new(
            "assignee",
            None,
            Some(user.display_name.clone()),
        ));
        routed.assignee = Some(user.id);
    }
    routed.changes = Some(changes);
    Ok(routed)
}

async fn insert_ticket(
    txn: &Txn,
    setup: &Setup,
    scope: &Scope,
    requester: i64,
    checked: Checked,
    new: &NewTicket,
) -> ApiResult<tickets::Model> {
    let Checked {
        kind,
        title,
        description,
        impact,
        urgency,
        key,
        fingerprint,
    } = checked;
    let queue = match new.queue_id {
        Some(id) => queues::Entity::find_by_id(id)
            .one(txn)
            .await?
            .ok_or_else(|| ApiError::bad_input("queueId", "no such queue"))?,
        None => setup.default_queue()?,
    };
    let linked = linked_tickets(txn, scope, kind, &new.linked_ids).await?;
    let service = match new.service_id {
        Some(id) => Some(crate::lifecycle::portfolio::for_ticket(txn, scope.role, id).await?),
        None => None,
    };
    let category = match new.catalog_item_id {
        Some(id) => crate::entity::catalog_items::Entity::find_by_id(id)
            .one(txn)
            .await?
            .map(|item| item.category),
        None => None,
    };
    let facts = crate::routing::rules::Facts {
        kind,
        service_id: service.as_ref().map(|s| s.id),
        catalog_item_id: new.catalog_item_id,
        category: category.as_deref(),
        impact,
        urgency,
        title: &title,
        description: &description,
    };
    let Routed {
        queue,
        impact,
        urgency,
        assignee,
        changes: routing_changes,
    } = route(txn, setup, &facts, queue).await?;
    let priority = priority(impact, urgency);
    let targets = setup.targets(priority)?;
    let number = kind.number(next_number(txn, kind).await?);
    let at = now();
    let clock = Clock::start(at, targets);
    let row = tickets::ActiveModel {
        id: NotSet,
        number: Set(number),
        kind: Set(kind),
        title: Set(title),
        description: Set(description),
        status: Set(if new.plan.needs_approval() {
            Status::AwaitingApproval
        } else {
            Status::New
        }),
        pending_reason: Set(None),
        impact: Set(impact),
        urgency: Set(urgency),
        priority: Set(priority),
        priority_rank: Set(priority.rank()),
        requester_id: Set(requester),
        assignee_id: Set(assignee),
        queue_id: Set(queue.id),
        service_id: Set(service.as_ref().map(|s| s.id)),
        catalog_item_id: Set(new.catalog_item_id),
        request_answers: Set(new.request_answers.clone()),
        version: Set(1),
        resolution: Set(None),
        cancel_reason: Set(None),
        root_cause: Set(clean(new.root_cause.as_deref())),
        workaround: Set(clean(new.workaround.as_deref())),
        known_error: Set(new.known_error.unwrap_or(false)),
        change_type: Set(new.change_type),
        risk: Set(new.risk),
        planned_start: Set(new.planned_start),
        planned_end: Set(new.planned_end),
        response_target_seconds: Set(targets.response.num_seconds()),
        resolution_target_seconds: Set(targets.resolution.num_seconds()),
        response_due_at: Set(clock.response_due()),
        resolution_due_at: Set(clock.resolution_due()),
        queue_due_at: Set(clock.queue_due()),
        response_warn_at: Set(Some(clock.response_warning())),
        resolution_warn_at: Set(Some(clock.resolution_warning())),
        response_warned: Set(false),
        response_breach_noted: Set(false),
        resolution_warned: Set(false),
        resolution_breach_noted: Set(false),
        responded_at: Set(None),
        resolved_at: Set(None),
        closed_at: Set(None),
        sla_stopped_at: Set(None),
        paused_since: Set(None),
        paused_seconds: Set(0),
        idempotency_key: Set(key),
        idempotency_payload: Set(fingerprint),
        created_at: Set(at),
        updated_at: Set(at),
    };
    let ticket = tickets::Entity::insert(row)
        .exec_with_returning(txn)
        .await
        .map_err(|error| {
            let taken = ApiError::Conflict("a ticket with this idempotency key exists".into());
            ApiError::on_unique(error, taken)
        })?;
    // A new row: nobody else sees it before this transaction commits.
    txn.hold_ticket(ticket.id);
    let changes = [
        Change::new("number", None, Some(ticket.number.clone())),
        Change::new("status", None, Some(ticket.status.as_str().into())),
        Change::new("priority", None, Some(ticket.priority.as_str().into())),
        Change::new("queue", None, Some(queue.name.clone())),
    ];
    events::record(
        txn,
        Draft::new(&ticket, scope.user_id, EventKind::Created, &changes, at),
    )
    .await?;
    if let Some(routing_changes) = routing_changes {
        events::record(
            txn,
            Draft::new(
                &ticket,
                scope.user_id,
                EventKind::Routed,
                &routing_changes,
                at,
            ),
        )
        .await?;
    }
    fulfilment::start(txn, scope.user_id, &ticket, &new.plan, at).await?;
    for other in linked {
        link_rows(txn, scope, &ticket, &other, at).await?;
    }
    crate::attachments::service::attach_staged(txn, scope, &ticket, &new.attachments).await?;
    Ok(ticket)
}

/// The next number of `kind`. On PostgreSQL it comes from the kind's
/// sequence, so concurrent creations never wait on one another (a creation
/// rolled back leaves a gap in the numbers); on SQLite, whose writers take
/// turns anyway, from the kind's counter row.
async fn next_number(txn: &Txn, kind: TicketKind) -> ApiResult<i64> {
    if txn.get_database_backend() != sea_orm::DbBackend::Postgres {
        return events::next_counter(txn, kind.as_str()).await;
    }
    let sequence = format!("ticket_number_{}", kind.as_str().to_lowercase());
    let row = txn
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT nextval($1::regclass)",
            [sequence.into()],
        ))
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no number from {kind:?}'s sequence")))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// Whom a new ticket is for: the viewer, or the person they name when they
/// may open tickets for others. An integration has no tickets of its own.
async fn requester(db: &Db, scope: &Scope, named: Option<i64>) -> ApiResult<i64> {
    let Some(id) = named.filter(|id| *id != scope.user_id) else {
        if scope.role == Role::Integration {
            return Err(ApiError::bad_input(
                "requesterId",
                "an integration opens tickets on behalf of a person: name them",
            ));
        }
        return Ok(scope.user_id);
    };
    if !scope.opens_for_others() {
        return Err(ApiError::Forbidden(
            "only agents, managers, admins and integrations with tickets:write open tickets for someone else"
                .into(),
        ));
    }
    let person = users::Entity::find_by_id(id)
        .one(db.reader())
        .await?
        .ok_or_else(|| ApiError::bad_input("requesterId", "no such person"))?;
    if person.role == Role::Integration {
        return Err(ApiError::bad_input(
            "requesterId",
            "an integration cannot be a ticket's requester",
        ));
    }
    Ok(person.id)
}

pub(super) fn check_kind_fields(kind: TicketKind, new: &NewTicket) -> ApiResult<()> {
    let problem_only = [
        ("rootCause", new.root_cause.is_some()),
        ("workaround", new.workaround.is_some()),
        ("knownError", new.known_error.is_some()),
    ];
    let change_only = [
        ("changeType", new.change_type.is_some()),
        ("risk", new.risk.is_some()),
        ("plannedStart", new.planned_start.is_some()),
        ("plannedEnd", new.planned_end.is_some()),
    ];
    for (field, given) in problem_only {
        if given && kind != TicketKind::Problem {
            return Err(ApiError::bad_input(
                field,
                format!("`{field}` belongs to problems"),
            ));
        }
    }
    for (field, given) in change_only {
        if given && kind != TicketKind::Change {
            return Err(ApiError::bad_input(
                field,
                format!("`{field}` belongs to changes"),
            ));
        }
    }
    for text in [
        (&new.root_cause, "rootCause"),
        (&new.workaround, "workaround"),
    ] {
        if let Some(value) = text.0 {
            long_text(value, text.1)?;
        }
    }
    if kind == TicketKind::Change {
        if new.change_type.is_none() {
            return Err(ApiError::bad_input(
                "changeType",
                "a change needs a change type",
            ));
        }
        if new.risk.is_none() {
            return Err(ApiError::bad_input("risk", "a change needs a risk"));
        }
        check_window(new.planned_start, new.planned_end)?;
    }
    if !new.linked_ids.is_empty() && !matches!(kind, TicketKind::Problem | TicketKind::Change) {
        return Err(ApiError::bad_input(
            linked_field(kind),
            "only problems and changes link tickets on creation",
        ));
    }
    Ok(())
}

pub(super) fn check_window(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> ApiResult<()> {
    crate::clock::check_instant("plannedStart", start)?;
    crate::clock::check_instant("plannedEnd", end)?;
    match (start, end) {
        (Some(start), Some(end)) if end <= start => Err(ApiError::bad_input(
            "plannedEnd",
            "plannedEnd must be after plannedStart",
        )),
        _ => Ok(()),
    }
}

pub(super) fn fingerprint(
    kind: TicketKind,
    title: &str,
    description: &str,
    impact: Level,
    urgency: Level,
    new: &NewTicket,
) -> String {
    if let Some(submitted) = &new.submitted {
        return json!({"kind": kind, "submitted": submitted}).to_string();
    }
    json!({
        "kind": kind, "title": title, "description": description,
        "impact": impact, "urgency": urgency, "queueId": new.queue_id,
        "rootCause": new.root_cause, "workaround": new.workaround, "knownError": new.known_error,
        "changeType": new.change_type, "risk": new.risk,
        "plannedStart": new.planned_start, "plannedEnd": new.planned_end,
        "linked": new.linked_ids, "serviceId": new.service_id,
        "catalogItemId": new.catalog_item_id, "answers": new.request_answers,
    })
    .to_string()
}

pub(super) fn replay(existing: tickets::Model, fingerprint: &str) -> ApiResult<tickets::Model> {
    if existing.idempotency_payload.as_deref() == Some(fingerprint) {
        Ok(existing)
    } else {
        Err(ApiError::Conflict(
            "this idempotency key was already used for a different ticket".into(),
        ))
    }
}

pub(super) async fn find_by_key<C: ConnectionTrait>(
    conn: &C,
    requester: i64,
    key: &str,
) -> ApiResult<Option<tickets::Model>> {
    Ok(tickets::Entity::find()
        .filter(tickets::Column::RequesterId.eq(requester))
        .filter(tickets::Column::IdempotencyKey.eq(key))
        .one(conn)
        .await?)
}
