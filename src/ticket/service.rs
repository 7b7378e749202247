//! The ticket service: every write to tickets, comments, links and events.
//!
//! Each write runs in one transaction that also appends its events, checks the
//! viewer's rights through [`Scope`], and honours `expectedVersion`: a stale
//! version gets `CONFLICT` and writes nothing.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, SqlErr,
};
use serde_json::json;

use super::{
    fulfilment::{self, Plan},
    rules::{
        priority::priority,
        sla::{Clock, NO_DUE, Targets},
        workflow::{self, Move, Refusal},
    },
};
use crate::{
    access::Scope,
    auth::Role,
    clock::now,
    db::{Db, Txn},
    entity::{comments, queues, sla_policies, team_members, ticket_links, tickets, users},
    error::{ApiError, ApiResult},
    events::{self, Change, Draft},
    text::{clean, long_text},
    vocabulary::{
        ChangeType, EventKind, Level, LinkKind, Priority, Status, TicketKind, Visibility,
    },
};

const MAX_TITLE: usize = 200;
const MAX_COMMENT: usize = 10_000;
const MAX_KEY: usize = 200;

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
}

/// Field edits; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct TicketEdit {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New impact (priority follows).
    pub impact: Option<Level>,
    /// New urgency (priority follows).
    pub urgency: Option<Level>,
    /// Problems: new root cause.
    pub root_cause: Option<String>,
    /// Problems: new workaround.
    pub workaround: Option<String>,
    /// Problems: known error or not.
    pub known_error: Option<bool>,
    /// Changes: new change type.
    pub change_type: Option<ChangeType>,
    /// Changes: new risk.
    pub risk: Option<Level>,
    /// Changes: new planned start.
    pub planned_start: Option<DateTime<Utc>>,
    /// Changes: new planned end.
    pub planned_end: Option<DateTime<Utc>>,
}

/// A new assignee, queue, or both.
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    /// `Some(Some(id))` assigns, `Some(None)` unassigns, `None` keeps.
    pub assignee_id: Option<Option<i64>>,
    /// Moves the ticket to this queue.
    pub queue_id: Option<i64>,
}

/// Creates a ticket of `new.kind` (an incident when absent).
#[tracing::instrument(skip_all, fields(viewer = scope.user_id))]
pub async fn create(db: &Db, scope: &Scope, new: NewTicket) -> ApiResult<tickets::Model> {
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
    if !scope.may_write() {
        return Err(ApiError::Forbidden("integrations are read-only".into()));
    }
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
        && let Some(existing) = find_by_key(db.reader(), scope.user_id, key).await?
    {
        return replay(existing, fingerprint);
    }

    let txn = db.begin().await?;
    let created = insert_ticket(
        &txn,
        scope,
        kind,
        title,
        description,
        impact,
        urgency,
        key.clone(),
        fingerprint.clone(),
        &new,
    )
    .await;
    match created {
        Ok(ticket) => {
            txn.commit().await?;
            Ok(ticket)
        }
        Err(ApiError::Conflict(_)) if key.is_some() => {
            // A concurrent retry won the race for this key: answer as it did.
            txn.rollback().await?;
            let (Some(key), Some(fingerprint)) = (key, fingerprint) else {
                return Err(ApiError::internal(anyhow::anyhow!("key vanished")));
            };
            match find_by_key(db.writer(), scope.user_id, &key).await? {
                Some(existing) => replay(existing, &fingerprint),
                None => Err(ApiError::Conflict(
                    "the ticket could not be created; retry".into(),
                )),
            }
        }
        Err(error) => Err(error),
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_ticket(
    txn: &Txn,
    scope: &Scope,
    kind: TicketKind,
    title: String,
    description: String,
    impact: Level,
    urgency: Level,
    key: Option<String>,
    fingerprint: Option<String>,
    new: &NewTicket,
) -> ApiResult<tickets::Model> {
    let queue = match new.queue_id {
        Some(id) => queues::Entity::find_by_id(id)
            .one(txn)
            .await?
            .ok_or_else(|| ApiError::bad_input("queueId", "no such queue"))?,
        None => default_queue(txn).await?,
    };
    let linked = linked_tickets(txn, scope, kind, &new.linked_ids).await?;
    let service = match new.service_id {
        Some(id) => Some(crate::lifecycle::portfolio::for_ticket(txn, scope.role, id).await?),
        None => None,
    };
    // Routing rules: the first enabled one that matches may set the queue,
    // the assignee, the impact and the urgency.
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
    let routed = crate::routing::service::route(txn, &facts).await?;
    let (mut queue, mut impact, mut urgency, mut assignee) = (queue, impact, urgency, None);
    let mut routing_changes = Vec::new();
    if let Some((rule, actions)) = &routed {
        routing_changes.push(Change::new("routingRule", None, Some(rule.name.clone())));
        if let Some(queue_id) = actions.queue_id
            && let Some(target) = queues::Entity::find_by_id(queue_id).one(txn).await?
        {
            routing_changes.push(Change::new(
                "queue",
                Some(queue.name.clone()),
                Some(target.name.clone()),
            ));
            queue = target;
        }
        if let Some(level) = actions.impact {
            routing_changes.push(Change::new(
                "impact",
                Some(impact.as_str().into()),
                Some(level.as_str().into()),
            ));
            impact = level;
        }
        if let Some(level) = actions.urgency {
            routing_changes.push(Change::new(
                "urgency",
                Some(urgency.as_str().into()),
                Some(level.as_str().into()),
            ));
            urgency = level;
        }
        if let Some(user_id) = actions.assignee_id
            && let Some(user) = users::Entity::find_by_id(user_id).one(txn).await?
        {
            routing_changes.push(Change::new(
                "assignee",
                None,
                Some(user.display_name.clone()),
            ));
            assignee = Some(user.id);
        }
    }
    let priority = priority(impact, urgency);
    let targets = targets(txn, priority).await?;
    let number = kind.number(events::next_counter(txn, kind.as_str()).await?);
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
        requester_id: Set(scope.user_id),
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
        .map_err(|error| match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                ApiError::Conflict("a ticket with this idempotency key exists".into())
            }
            _ => error.into(),
        })?;
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
    if routed.is_some() {
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
    Ok(ticket)
}

fn check_kind_fields(kind: TicketKind, new: &NewTicket) -> ApiResult<()> {
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

fn check_window(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> ApiResult<()> {
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

fn fingerprint(
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

fn replay(existing: tickets::Model, fingerprint: &str) -> ApiResult<tickets::Model> {
    if existing.idempotency_payload.as_deref() == Some(fingerprint) {
        Ok(existing)
    } else {
        Err(ApiError::Conflict(
            "this idempotency key was already used for a different ticket".into(),
        ))
    }
}

async fn find_by_key<C: ConnectionTrait>(
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

async fn default_queue<C: ConnectionTrait>(conn: &C) -> ApiResult<queues::Model> {
    queues::Entity::find()
        .filter(queues::Column::IsDefault.eq(true))
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no default queue is configured")))
}

/// The SLA targets of `priority`.
#[tracing::instrument(skip_all, level = "debug", fields(priority = ?priority))]
pub async fn targets<C: ConnectionTrait>(conn: &C, priority: Priority) -> ApiResult<Targets> {
    let policy = sla_policies::Entity::find_by_id(priority)
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no SLA policy for {priority:?}")))?;
    Ok(Targets {
        response: Duration::minutes(policy.response_minutes.into()),
        resolution: Duration::minutes(policy.resolution_minutes.into()),
    })
}

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

fn check_version(ticket: &tickets::Model, expected: Option<i32>) -> ApiResult<()> {
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
    saved
        .pop()
        .ok_or_else(|| ApiError::Conflict("the ticket changed meanwhile; reload and retry".into()))
}

/// Field-level differences between two versions of a ticket.
fn diff(before: &tickets::Model, after: &tickets::Model) -> Vec<Change> {
    fn text<T: ToString>(value: &Option<T>) -> Option<String> {
        value.as_ref().map(ToString::to_string)
    }
    let fields: [(&str, Option<String>, Option<String>); 16] = [
        (
            "title",
            Some(before.title.clone()),
            Some(after.title.clone()),
        ),
        (
            "description",
            Some(before.description.clone()),
            Some(after.description.clone()),
        ),
        (
            "impact",
            Some(before.impact.as_str().into()),
            Some(after.impact.as_str().into()),
        ),
        (
            "urgency",
            Some(before.urgency.as_str().into()),
            Some(after.urgency.as_str().into()),
        ),
        (
            "priority",
            Some(before.priority.as_str().into()),
            Some(after.priority.as_str().into()),
        ),
        (
            "status",
            Some(before.status.as_str().into()),
            Some(after.status.as_str().into()),
        ),
        (
            "pendingReason",
            before.pending_reason.map(|r| r.as_str().into()),
            after.pending_reason.map(|r| r.as_str().into()),
        ),
        (
            "resolution",
            before.resolution.clone(),
            after.resolution.clone(),
        ),
        (
            "cancelReason",
            before.cancel_reason.clone(),
            after.cancel_reason.clone(),
        ),
        (
            "rootCause",
            before.root_cause.clone(),
            after.root_cause.clone(),
        ),
        (
            "workaround",
            before.workaround.clone(),
            after.workaround.clone(),
        ),
        (
            "knownError",
            Some(before.known_error.to_string()),
            Some(after.known_error.to_string()),
        ),
        (
            "changeType",
            before.change_type.map(|c| c.as_str().into()),
            after.change_type.map(|c| c.as_str().into()),
        ),
        (
            "risk",
            before.risk.map(|r| r.as_str().into()),
            after.risk.map(|r| r.as_str().into()),
        ),
        (
            "plannedStart",
            text(&before.planned_start.map(|t| t.to_rfc3339())),
            text(&after.planned_start.map(|t| t.to_rfc3339())),
        ),
        (
            "plannedEnd",
            text(&before.planned_end.map(|t| t.to_rfc3339())),
            text(&after.planned_end.map(|t| t.to_rfc3339())),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, from, to)| from != to)
        .map(|(field, from, to)| Change::new(field, from, to))
        .collect()
}

/// Edits fields of a ticket.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, ticket = id))]
pub async fn update(
    db: &Db,
    scope: &Scope,
    id: i64,
    expected_version: i32,
    edit: TicketEdit,
) -> ApiResult<tickets::Model> {
    let txn = db.begin().await?;
    let before = load(&txn, scope, id, "id").await?;
    if !scope.may_write() {
        return Err(ApiError::Forbidden("integrations are read-only".into()));
    }
    let staff = scope.may_work(&before);
    let requester_edit = before.requester_id == scope.user_id
        && workflow::is_open(before.status)
        && edit.impact.is_none()
        && edit.urgency.is_none()
        && edit.root_cause.is_none()
        && edit.workaround.is_none()
        && edit.known_error.is_none()
        && edit.change_type.is_none()
        && edit.risk.is_none()
        && edit.planned_start.is_none()
        && edit.planned_end.is_none();
    if !staff && !requester_edit {
        return Err(ApiError::Forbidden(
            "only the ticket's agents and managers may change this; requesters may edit the title and description of their open tickets".into(),
        ));
    }
    check_version(&before, Some(expected_version))?;

    let mut after = before.clone();
    if let Some(value) = &edit.title {
        after.title = title(value, "title")?;
    }
    if let Some(value) = &edit.description {
        after.description = long_text(value, "description")?;
    }
    let kind = before.kind;
    let only = |given: bool, field: &str, wanted: TicketKind| {
        if given && kind != wanted {
            Err(ApiError::bad_input(
                field,
                format!("`{field}` belongs to {} tickets", wanted.as_str()),
            ))
        } else {
            Ok(())
        }
    };
    only(edit.root_cause.is_some(), "rootCause", TicketKind::Problem)?;
    only(edit.workaround.is_some(), "workaround", TicketKind::Problem)?;
    only(
        edit.known_error.is_some(),
        "knownError",
        TicketKind::Problem,
    )?;
    only(edit.change_type.is_some(), "changeType", TicketKind::Change)?;
    only(edit.risk.is_some(), "risk", TicketKind::Change)?;
    only(
        edit.planned_start.is_some(),
        "plannedStart",
        TicketKind::Change,
    )?;
    only(edit.planned_end.is_some(), "plannedEnd", TicketKind::Change)?;
    if let Some(value) = &edit.root_cause {
        after.root_cause = clean(Some(&long_text(value, "rootCause")?));
    }
    if let Some(value) = &edit.workaround {
        after.workaround = clean(Some(&long_text(value, "workaround")?));
    }
    if let Some(value) = edit.known_error {
        after.known_error = value;
    }
    if let Some(value) = edit.change_type
        && Some(value) != before.change_type
    {
        if before.status != Status::New {
            return Err(ApiError::bad_input(
                "changeType",
                "the change type is fixed once approval is requested or work starts",
            ));
        }
        after.change_type = Some(value);
    }
    if let Some(value) = edit.risk {
        after.risk = Some(value);
    }
    if let Some(value) = edit.planned_start {
        after.planned_start = Some(value);
    }
    if let Some(value) = edit.planned_end {
        after.planned_end = Some(value);
    }
    check_window(after.planned_start, after.planned_end)?;
    after.impact = edit.impact.unwrap_or(before.impact);
    after.urgency = edit.urgency.unwrap_or(before.urgency);
    after.priority = priority(after.impact, after.urgency);
    after.priority_rank = after.priority.rank();
    if after.priority != before.priority {
        let mut clock = clock(&before);
        clock.retarget(targets(&txn, after.priority).await?);
        store_clock(&mut after, &clock);
    }

    let changes = diff(&before, &after);
    if changes.is_empty() {
        txn.rollback().await?;
        return Ok(before);
    }
    let at = now();
    let saved = save(&txn, &before, after, at).await?;
    events::record(
        &txn,
        Draft::new(&saved, scope.user_id, EventKind::Updated, &changes, at),
    )
    .await?;
    txn.commit().await?;
    Ok(saved)
}

/// Moves a ticket along the workflow.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, ticket = id, to = to.as_str()))]
pub async fn transition(
    db: &Db,
    scope: &Scope,
    id: i64,
    to: Status,
    carried: Move,
    expected_version: Option<i32>,
) -> ApiResult<tickets::Model> {
    let txn = db.begin().await?;
    let before = load(&txn, scope, id, "id").await?;
    if !scope.may_write() {
        return Err(ApiError::Forbidden("integrations are read-only".into()));
    }
    check_version(&before, expected_version)?;
    workflow::check(before.status, to, &carried, &scope.relation(&before))
        .map_err(|refusal| refused(before.status, to, refusal))?;
    if before.status == Status::AwaitingApproval
        && to == Status::InProgress
        && fulfilment::awaiting(&txn, before.id).await?
    {
        return Err(ApiError::bad_input(
            "to",
            "the ticket awaits approval: an approver decides it with decideApproval",
        ));
    }
    if to == Status::Resolved {
        let open = fulfilment::open_tasks(&txn, before.id).await?;
        if open > 0 {
            return Err(ApiError::bad_input(
                "to",
                format!("{open} fulfilment task(s) are still open: complete or skip them first"),
            ));
        }
    }
    if carried.pending_reason.is_some() && to != Status::Pending {
        return Err(ApiError::bad_input(
            "pendingReason",
            "a pendingReason goes with a move to PENDING",
        ));
    }
    if carried.resolution.is_some() && to != Status::Resolved {
        return Err(ApiError::bad_input(
            "resolution",
            "a resolution goes with a move to RESOLVED",
        ));
    }
    for (field, text) in [
        ("reason", &carried.reason),
        ("resolution", &carried.resolution),
    ] {
        if let Some(text) = text {
            long_text(text, field)?;
        }
    }

    let at = now();
    let mut after = before.clone();
    let mut clock = clock(&before);
    after.status = to;
    if before.status == Status::Pending {
        clock.resume(at);
        after.pending_reason = None;
    }
    match to {
        Status::InProgress => {
            if before.status == Status::Resolved {
                clock.restart(at);
                after.resolved_at = None;
                after.resolution = None;
            }
            // The first move to IN_PROGRESS counts as the first response.
            clock.respond(at);
        }
        Status::Pending => {
            clock.pause(at);
            after.pending_reason = carried.pending_reason;
        }
        Status::Resolved => {
            clock.stop(at);
            after.resolved_at = Some(at);
            after.resolution = clean(carried.resolution.as_deref());
        }
        Status::Closed => {
            clock.stop(at);
            after.closed_at = Some(at);
        }
        Status::Cancelled => {
            clock.stop(at);
            after.closed_at = Some(at);
            after.cancel_reason = clean(carried.reason.as_deref());
        }
        Status::New | Status::AwaitingApproval => {}
    }
    store_clock(&mut after, &clock);
    let mut changes = diff(&before, &after);
    if let Some(reason) = clean(carried.reason.as_deref())
        && to != Status::Cancelled
    {
        changes.push(Change::new("reason", None, Some(reason)));
    }
    if before.status == Status::AwaitingApproval {
        let withdrawn = fulfilment::withdraw(&txn, before.id, at).await?;
        changes.extend(fulfilment::withdrawn_change(withdrawn));
    }
    if to == Status::Cancelled {
        let skipped = fulfilment::skip_open_tasks(&txn, scope.user_id, before.id, at).await?;
        changes.extend(fulfilment::skipped_change(skipped));
    }
    let saved = save(&txn, &before, after, at).await?;
    events::record(
        &txn,
        Draft::new(
            &saved,
            scope.user_id,
            EventKind::StatusChanged,
            &changes,
            at,
        ),
    )
    .await?;
    if to == Status::AwaitingApproval {
        // Sent for approval by hand: any manager decides.
        let plan = Plan {
            approvers: Some(None),
            ..Plan::default()
        };
        fulfilment::start(&txn, scope.user_id, &saved, &plan, at).await?;
    }
    txn.commit().await?;
    Ok(saved)
}

fn refused(from: Status, to: Status, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::NotAllowed { allowed } => {
            let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
            let allowed = if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            };
            ApiError::bad_input(
                "to",
                format!(
                    "cannot move from {} to {}; allowed: {allowed}",
                    from.as_str(),
                    to.as_str()
                ),
            )
        }
        Refusal::PendingReasonRequired => {
            ApiError::bad_input("pendingReason", "PENDING needs a pendingReason")
        }
        Refusal::ResolutionRequired => {
            ApiError::bad_input("resolution", "RESOLVED needs a resolution note")
        }
        Refusal::ReasonRequired => ApiError::bad_input("reason", "cancelling needs a reason"),
    }
}

/// Assigns a ticket to an agent, moves it to a queue, or both.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, ticket = id))]
pub async fn assign(
    db: &Db,
    scope: &Scope,
    id: i64,
    assignment: Assignment,
    expected_version: Option<i32>,
) -> ApiResult<tickets::Model> {
    if assignment.assignee_id.is_none() && assignment.queue_id.is_none() {
        return Err(ApiError::bad_input(
            "assigneeId",
            "give an assigneeId, a queueId, or both",
        ));
    }
    let txn = db.begin().await?;
    let before = load(&txn, scope, id, "id").await?;
    if !scope.may_work(&before) {
        return Err(ApiError::Forbidden(
            "only the ticket's agents and managers may assign it".into(),
        ));
    }
    if !workflow::is_open(before.status) && before.status != Status::Resolved {
        return Err(ApiError::bad_input(
            "id",
            format!("a {} ticket cannot be reassigned", before.status.as_str()),
        ));
    }
    check_version(&before, expected_version)?;
    let old_queue = queues::Entity::find_by_id(before.queue_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("ticket without queue")))?;
    let queue = match assignment.queue_id {
        Some(queue_id) => queues::Entity::find_by_id(queue_id)
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::bad_input("queueId", "no such queue"))?,
        None => old_queue.clone(),
    };
    let mut after = before.clone();
    after.queue_id = queue.id;
    let assignee = match assignment.assignee_id {
        Some(Some(user_id)) => {
            let user = users::Entity::find_by_id(user_id)
                .one(&txn)
                .await?
                .ok_or_else(|| ApiError::bad_input("assigneeId", "no such user"))?;
            let member = team_members::Entity::find_by_id((queue.team_id, user.id))
                .one(&txn)
                .await?
                .is_some();
            if user.role < Role::Agent || !member {
                return Err(ApiError::bad_input(
                    "assigneeId",
                    format!(
                        "{} is not an agent of the team that owns {}",
                        user.display_name, queue.name
                    ),
                ));
            }
            Some(user)
        }
        Some(None) => None,
        None => match before.assignee_id {
            // Moving queues keeps the assignee only if they work the new queue too.
            Some(current) if queue.id != old_queue.id => {
                let member = team_members::Entity::find_by_id((queue.team_id, current))
                    .one(&txn)
                    .await?
                    .is_some();
                if member {
                    users::Entity::find_by_id(current).one(&txn).await?
                } else {
                    None
                }
            }
            Some(current) => users::Entity::find_by_id(current).one(&txn).await?,
            None => None,
        },
    };
    after.assignee_id = assignee.as_ref().map(|u| u.id);
    if after.assignee_id == before.assignee_id && after.queue_id == before.queue_id {
        txn.rollback().await?;
        return Ok(before);
    }
    let at = now();
    let saved = save(&txn, &before, after, at).await?;
    let actor = scope.user_id;
    if saved.queue_id != before.queue_id {
        let moved = [Change::new(
            "queue",
            Some(old_queue.name.clone()),
            Some(queue.name.clone()),
        )];
        events::record(
            &txn,
            Draft::new(&saved, actor, EventKind::LeftQueue, &moved, at).in_queue(before.queue_id),
        )
        .await?;
        events::record(
            &txn,
            Draft::new(&saved, actor, EventKind::EnteredQueue, &moved, at),
        )
        .await?;
    }
    if saved.assignee_id != before.assignee_id {
        let from = match before.assignee_id {
            Some(id) => users::Entity::find_by_id(id)
                .one(&txn)
                .await?
                .map(|u| u.display_name),
            None => None,
        };
        let changes = [Change::new(
            "assignee",
            from,
            assignee.map(|u| u.display_name),
        )];
        events::record(
            &txn,
            Draft::new(&saved, actor, EventKind::Assigned, &changes, at),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(saved)
}

/// Adds a comment. Requesters add public comments to their own tickets; the
/// ticket's agents and managers add public comments and internal work notes.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, ticket = ticket_id))]
pub async fn comment(
    db: &Db,
    scope: &Scope,
    ticket_id: i64,
    body: &str,
    visibility: Visibility,
) -> ApiResult<(comments::Model, tickets::Model)> {
    let body = body.trim();
    if body.is_empty() || body.chars().count() > MAX_COMMENT {
        return Err(ApiError::bad_input(
            "body",
            format!("a comment holds 1 to {MAX_COMMENT} characters"),
        ));
    }
    let txn = db.begin().await?;
    let ticket = load(&txn, scope, ticket_id, "ticketId").await?;
    if !scope.may_write() {
        return Err(ApiError::Forbidden("integrations are read-only".into()));
    }
    let staff = scope.may_work(&ticket);
    if visibility == Visibility::Internal && !staff {
        return Err(ApiError::Forbidden(
            "only the ticket's agents and managers add internal notes".into(),
        ));
    }
    if !staff && ticket.requester_id != scope.user_id {
        return Err(ApiError::Forbidden(
            "only the requester and the ticket's agents comment on it".into(),
        ));
    }
    if matches!(ticket.status, Status::Closed | Status::Cancelled) {
        return Err(ApiError::bad_input(
            "ticketId",
            format!("a {} ticket takes no more comments", ticket.status.as_str()),
        ));
    }
    let at = now();
    let comment = comments::Entity::insert(comments::ActiveModel {
        id: NotSet,
        ticket_id: Set(ticket.id),
        author_id: Set(scope.user_id),
        body: Set(body.to_owned()),
        visibility: Set(visibility),
        created_at: Set(at),
    })
    .exec_with_returning(&txn)
    .await?;
    // A public reply by anyone but the requester is the first response.
    let mut row = tickets::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(ticket.id),
        updated_at: Set(at),
        ..Default::default()
    };
    if visibility == Visibility::Public
        && scope.user_id != ticket.requester_id
        && ticket.responded_at.is_none()
    {
        row.responded_at = Set(Some(at));
    }
    let ticket = row.update(&txn).await?;
    let changes = [Change::new("comment", None, Some(comment.id.to_string()))];
    events::record(
        &txn,
        Draft::new(
            &ticket,
            scope.user_id,
            EventKind::CommentAdded,
            &changes,
            at,
        )
        .visible_as(visibility),
    )
    .await?;
    txn.commit().await?;
    Ok((comment, ticket))
}

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

async fn link_rows(
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
fn linked_field(kind: TicketKind) -> &'static str {
    match kind {
        TicketKind::Problem => "incidentIds",
        _ => "relatedTicketIds",
    }
}

async fn linked_tickets(
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

fn title(value: &str, field: &str) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::bad_input(
            field,
            format!("`{field}` must not be empty"),
        ));
    }
    if value.chars().count() > MAX_TITLE {
        return Err(ApiError::bad_input(
            field,
            format!("`{field}` holds at most {MAX_TITLE} characters"),
        ));
    }
    if crate::text::single_line_violation(value).is_some() {
        return Err(ApiError::bad_input(
            field,
            format!("`{field}` is one line: no newlines, tabs or other control characters"),
        ));
    }
    Ok(value.to_owned())
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
    txn.commit().await?;
    Ok(())
}
