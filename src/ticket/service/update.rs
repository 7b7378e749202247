//! Editing a ticket's fields, and the field-level changes its events record.

use chrono::{DateTime, Utc};

use super::{create::check_window, title};
use crate::ticket::rules::{
    priority::priority,
    workflow::{self},
};
use crate::ticket::store::{check_version, clock, load, save, store_clock};
use crate::{
    access::Scope,
    clock::now,
    db::Db,
    entity::tickets,
    error::{ApiError, ApiResult},
    events::{self, Change, Draft},
    text::{clean, long_text},
    vocabulary::{ChangeType, EventKind, Level, Status, TicketKind},
};

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
    if !scope.may_change_tickets() {
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
        clock.retarget(
            crate::ticket::setup::current(db)
                .await?
                .targets(after.priority)?,
        );
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

/// Field-level differences between two versions of a ticket.
pub(super) fn diff(before: &tickets::Model, after: &tickets::Model) -> Vec<Change> {
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
