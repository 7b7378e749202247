//! Approvals and fulfilment tasks: the engine that gates requests (and
//! normal or emergency changes) until approved, and then turns a catalog
//! item's task template into ordered tasks on the ticket.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::store::{clock, load, save, store_clock};
use crate::paging::CountRows;
use crate::{
    access::Scope,
    auth::{Role, Viewer},
    catalog::service as catalog,
    clock::now,
    db::{Db, Txn},
    entity::{approvals, catalog_items, tasks, tickets, users},
    error::{ApiError, ApiResult},
    events::{self, Change, Draft},
    text::{clean, long_text},
    vocabulary::{ApprovalMode, ApprovalState, EventKind, Status, TaskStatus, TaskTemplate},
};

/// What a new ticket needs before and during fulfilment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Who must approve first: `Some(None)` any manager, `Some(Some(ids))`
    /// the named approvers; `None` nobody.
    pub approvers: Option<Option<Vec<i64>>>,
    /// With named approvers: one or all of them.
    pub mode: Option<ApprovalMode>,
    /// The fulfilment steps, created once approved (at once without approval).
    pub tasks: Vec<TaskTemplate>,
}

impl Plan {
    /// True when the ticket waits for approval first.
    pub fn needs_approval(&self) -> bool {
        self.approvers.is_some()
    }
}

/// Sets up approvals (or tasks) for a ticket just created, in its transaction.
#[tracing::instrument(skip_all, fields(ticket = ticket.id))]
pub async fn start(
    txn: &Txn,
    actor: i64,
    ticket: &tickets::Model,
    plan: &Plan,
    at: DateTime<Utc>,
) -> ApiResult<()> {
    match &plan.approvers {
        Some(approvers) => {
            let mode = plan.mode.unwrap_or(ApprovalMode::Any);
            let rows = approval_rows(approvers.as_deref(), mode, ticket.requester_id);
            for approver in &rows {
                approvals::Entity::insert(approvals::ActiveModel {
                    id: NotSet,
                    ticket_id: Set(ticket.id),
                    approver_id: Set(*approver),
                    mode: Set(mode),
                    state: Set(ApprovalState::Pending),
                    decided_by: Set(None),
                    comment: Set(None),
                    decided_at: Set(None),
                    created_at: Set(at),
                })
                .exec_without_returning(txn)
                .await?;
            }
            let who = match approvers {
                None => "any manager".to_owned(),
                Some(ids) => {
                    let names: Vec<String> = users::Entity::find()
                        .filter(users::Column::Id.is_in(ids.clone()))
                        .all(txn)
                        .await?
                        .into_iter()
                        .map(|u| u.display_name)
                        .collect();
                    format!(
                        "{} of {}",
                        if mode == ApprovalMode::All {
                            "all"
                        } else {
                            "one"
                        },
                        names.join(", ")
                    )
                }
            };
            let changes = [Change::new("approval", None, Some(who))];
            events::record(
                txn,
                Draft::new(ticket, actor, EventKind::ApprovalRequested, &changes, at),
            )
            .await?;
        }
        None => create_tasks(txn, actor, ticket, &plan.tasks, at).await?,
    }
    Ok(())
}

async fn create_tasks(
    txn: &Txn,
    actor: i64,
    ticket: &tickets::Model,
    templates: &[TaskTemplate],
    at: DateTime<Utc>,
) -> ApiResult<()> {
    if templates.is_empty() {
        return Ok(());
    }
    for (position, template) in templates.iter().enumerate() {
        tasks::Entity::insert(tasks::ActiveModel {
            id: NotSet,
            ticket_id: Set(ticket.id),
            position: Set(i32::try_from(position).unwrap_or(i32::MAX) + 1),
            title: Set(template.title.clone()),
            queue_id: Set(template.queue_id),
            assignee_id: Set(None),
            status: Set(TaskStatus::Open),
            note: Set(None),
            completed_by: Set(None),
            completed_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        })
        .exec_without_returning(txn)
        .await?;
    }
    let titles: Vec<&str> = templates.iter().map(|t| t.title.as_str()).collect();
    let changes = [Change::new("tasks", None, Some(titles.join(" → ")))];
    events::record(
        txn,
        Draft::new(ticket, actor, EventKind::TaskUpdated, &changes, at),
    )
    .await?;
    Ok(())
}

/// The approvals to ask for: one per named approver, or one that any manager
/// may decide. Separation of duties: the requester never approves their own
/// ticket. Named as an approver, the requester's place goes to any *other*
/// manager when all must approve, or when nobody else is named.
pub fn approval_rows(
    approvers: Option<&[i64]>,
    mode: ApprovalMode,
    requester: i64,
) -> Vec<Option<i64>> {
    let Some(ids) = approvers else {
        return vec![None];
    };
    let mut rows: Vec<Option<i64>> = Vec::new();
    for &id in ids {
        let row = (id != requester).then_some(id);
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    if mode == ApprovalMode::Any && rows.len() > 1 {
        rows.retain(Option::is_some);
    }
    if rows.is_empty() {
        rows.push(None);
    }
    rows
}

/// May `viewer` decide `approval` of a ticket requested by `requester`? Never
/// the requester; otherwise the named approver, or any manager.
pub fn designated(viewer: &Viewer, approval: &approvals::Model, requester: i64) -> bool {
    if viewer.user.id == requester {
        return false;
    }
    match approval.approver_id {
        Some(id) => id == viewer.user.id,
        None => matches!(viewer.role, Role::Manager | Role::Admin),
    }
}

/// An approval by id, if the viewer sees its ticket or may decide it.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = viewer.user.id, approval = id))]
pub async fn approval_by_id(
    db: &Db,
    viewer: &Viewer,
    scope: &Scope,
    id: i64,
) -> ApiResult<Option<approvals::Model>> {
    let Some(approval) = approvals::Entity::find_by_id(id).one(db.reader()).await? else {
        return Ok(None);
    };
    let ticket = tickets::Entity::find_by_id(approval.ticket_id)
        .one(db.reader())
        .await?;
    Ok(ticket
        .filter(|t| scope.can_see(t) || designated(viewer, &approval, t.requester_id))
        .map(|_| approval))
}

/// A fulfilment task by id, if the viewer sees its ticket.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, task = id))]
pub async fn task_by_id(db: &Db, scope: &Scope, id: i64) -> ApiResult<Option<tasks::Model>> {
    let Some(task) = tasks::Entity::find_by_id(id).one(db.reader()).await? else {
        return Ok(None);
    };
    let ticket = super::query::by_id(db, scope, task.ticket_id).await?;
    Ok(ticket.map(|_| task))
}

/// A decision on an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum Decision {
    /// Approve.
    Approved,
    /// Reject (a comment is required).
    Rejected,
}

/// Records a designated approver's decision, once. Rejection cancels the
/// ticket with the comment as reason; approval that satisfies the rule starts
/// work (`IN_PROGRESS`) and creates the fulfilment tasks.
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, approval = approval_id))]
pub async fn decide(
    db: &Db,
    viewer: &Viewer,
    scope: &Scope,
    approval_id: i64,
    decision: Decision,
    comment: Option<&str>,
) -> ApiResult<(approvals::Model, tickets::Model)> {
    let comment = clean(comment);
    if let Some(text) = &comment {
        long_text(text, "comment")?;
    }
    let txn = db.begin().await?;
    let approval = approvals::Entity::find_by_id(approval_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::NotFound("no approval with that `approvalId`".into()))?;
    let ticket = tickets::Entity::find_by_id(approval.ticket_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::NotFound("no approval with that `approvalId`".into()))?;
    if ticket.requester_id == viewer.user.id {
        return Err(ApiError::Forbidden(
            "you requested this ticket, so another approver must decide it".into(),
        ));
    }
    if !designated(viewer, &approval, ticket.requester_id) {
        return Err(if scope.can_see(&ticket) {
            ApiError::Forbidden("only a designated approver decides".into())
        } else {
            ApiError::NotFound("no approval with that `approvalId`".into())
        });
    }
    if approval.state != ApprovalState::Pending {
        return Err(ApiError::Conflict(
            "this approval was already decided".into(),
        ));
    }
    if ticket.status != Status::AwaitingApproval {
        return Err(ApiError::Conflict(
            "the ticket no longer awaits approval".into(),
        ));
    }
    if decision == Decision::Rejected && comment.is_none() {
        return Err(ApiError::bad_input(
            "comment",
            "a rejection needs a comment",
        ));
    }
    let at = now();
    let state = match decision {
        Decision::Approved => ApprovalState::Approved,
        Decision::Rejected => ApprovalState::Rejected,
    };
    let decided = approvals::Entity::update_many()
        .set(approvals::ActiveModel {
            state: Set(state),
            decided_by: Set(Some(viewer.user.id)),
            comment: Set(comment.clone()),
            decided_at: Set(Some(at)),
            ..Default::default()
        })
        .filter(approvals::Column::Id.eq(approval.id))
        .filter(approvals::Column::State.eq(ApprovalState::Pending))
        .exec_with_returning(&txn)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Conflict("this approval was already decided".into()))?;
    let mut changes = vec![Change::new(
        "approval",
        Some("PENDING".into()),
        Some(state.as_str().into()),
    )];
    if let Some(text) = &comment {
        changes.push(Change::new("comment", None, Some(text.clone())));
    }
    events::record(
        &txn,
        Draft::new(
            &ticket,
            viewer.user.id,
            EventKind::ApprovalDecided,
            &changes,
            at,
        ),
    )
    .await?;

    let ticket = match decision {
        Decision::Rejected => {
            let mut after = ticket.clone();
            let mut sla = clock(&ticket);
            sla.stop(at);
            store_clock(&mut after, &sla);
            after.status = Status::Cancelled;
            after.closed_at = Some(at);
            after.cancel_reason = Some(format!(
                "Rejected by {}: {}",
                viewer.user.display_name,
                comment.unwrap_or_default()
            ));
            let saved = save(&txn, &ticket, after, at).await?;
            let mut moved = vec![Change::new(
                "status",
                Some(ticket.status.as_str().into()),
                Some(saved.status.as_str().into()),
            )];
            moved.extend(withdrawn_change(withdraw(&txn, ticket.id, at).await?));
            moved.extend(skipped_change(
                skip_open_tasks(&txn, viewer.user.id, ticket.id, at).await?,
            ));
            events::record(
                &txn,
                Draft::new(&saved, viewer.user.id, EventKind::StatusChanged, &moved, at),
            )
            .await?;
            saved
        }
        Decision::Approved => {
            let rows = approvals::Entity::find()
                .filter(approvals::Column::TicketId.eq(ticket.id))
                .all(&txn)
                .await?;
            let satisfied = decided.mode == ApprovalMode::Any
                || rows.iter().all(|a| a.state == ApprovalState::Approved);
            if satisfied {
                let mut after = ticket.clone();
                let mut sla = clock(&ticket);
                sla.respond(at);
                store_clock(&mut after, &sla);
                after.status = Status::InProgress;
                let saved = save(&txn, &ticket, after, at).await?;
                let mut moved = vec![Change::new(
                    "status",
                    Some(ticket.status.as_str().into()),
                    Some(saved.status.as_str().into()),
                )];
                moved.extend(withdrawn_change(withdraw(&txn, ticket.id, at).await?));
                events::record(
                    &txn,
                    Draft::new(&saved, viewer.user.id, EventKind::StatusChanged, &moved, at),
                )
                .await?;
                // Tasks come once: a request whose item needs no approval got
                // them when it was made, even if it was later sent for approval.
                let has_tasks = tasks::Entity::find()
                    .filter(tasks::Column::TicketId.eq(saved.id))
                    .count_rows(&txn)
                    .await?
                    > 0;
                let templates = match saved.catalog_item_id {
                    Some(id) if !has_tasks => catalog_items::Entity::find_by_id(id)
                        .one(&txn)
                        .await?
                        .map(|item| catalog::tasks_of(&item))
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                create_tasks(&txn, viewer.user.id, &saved, &templates, at).await?;
                saved
            } else {
                ticket
            }
        }
    };
    txn.commit().await?;
    Ok((decided, ticket))
}

/// The approvals of a ticket, oldest first.
#[tracing::instrument(skip_all, level = "debug", fields(ticket = ticket_id))]
pub async fn approvals_of(db: &Db, ticket_id: i64) -> ApiResult<Vec<approvals::Model>> {
    Ok(approvals::Entity::find()
        .filter(approvals::Column::TicketId.eq(ticket_id))
        .order_by_asc(approvals::Column::Id)
        .all(db.reader())
        .await?)
}

/// The approvals of several tickets, by ticket, each oldest first.
#[tracing::instrument(skip_all, level = "debug", fields(tickets = ticket_ids.len()))]
pub async fn approvals_of_tickets(
    db: &Db,
    ticket_ids: &[i64],
) -> ApiResult<HashMap<i64, Vec<approvals::Model>>> {
    let rows = approvals::Entity::find()
        .filter(approvals::Column::TicketId.is_in(ticket_ids.iter().copied()))
        .order_by_asc(approvals::Column::Id)
        .all(db.reader())
        .await?;
    Ok(group(rows, |row| row.ticket_id))
}

/// The tasks of several tickets, by ticket, each in order.
#[tracing::instrument(skip_all, level = "debug", fields(tickets = ticket_ids.len()))]
pub async fn tasks_of_tickets(
    db: &Db,
    ticket_ids: &[i64],
) -> ApiResult<HashMap<i64, Vec<tasks::Model>>> {
    let rows = tasks::Entity::find()
        .filter(tasks::Column::TicketId.is_in(ticket_ids.iter().copied()))
        .order_by_asc(tasks::Column::Position)
        .all(db.reader())
        .await?;
    Ok(group(rows, |row| row.ticket_id))
}

/// Rows grouped by a key, each group keeping the rows' order.
fn group<T>(rows: Vec<T>, key: impl Fn(&T) -> i64) -> HashMap<i64, Vec<T>> {
    let mut groups: HashMap<i64, Vec<T>> = HashMap::new();
    for row in rows {
        groups.entry(key(&row)).or_default().push(row);
    }
    groups
}

/// The approvals `viewer` is designated to decide, in `state`, newest first.
/// The most approvals `myApprovals` lists (the newest).
pub const MY_APPROVALS_LIMIT: u64 = 100;

#[tracing::instrument(skip_all, level = "debug", fields(viewer = viewer.user.id))]
pub async fn mine(
    db: &Db,
    viewer: &Viewer,
    state: ApprovalState,
) -> ApiResult<Vec<approvals::Model>> {
    let mut reach = sea_orm::Condition::any().add(approvals::Column::ApproverId.eq(viewer.user.id));
    if matches!(viewer.role, Role::Manager | Role::Admin) {
        reach = reach.add(approvals::Column::ApproverId.is_null());
    }
    // Separation of duties: never the approvals of the viewer's own tickets.
    let own_tickets = sea_orm::sea_query::Query::select()
        .column(tickets::Column::Id)
        .from(tickets::Entity)
        .and_where(tickets::Column::RequesterId.eq(viewer.user.id))
        .to_owned();
    Ok(approvals::Entity::find()
        .filter(reach)
        .filter(approvals::Column::State.eq(state))
        .filter(approvals::Column::TicketId.not_in_subquery(own_tickets))
        .order_by_desc(approvals::Column::Id)
        .limit(MY_APPROVALS_LIMIT)
        .all(db.reader())
        .await?)
}

/// True while a ticket waits for an approval that has not been granted.
#[tracing::instrument(skip_all, level = "debug", fields(ticket = ticket_id))]
pub async fn awaiting(txn: &Txn, ticket_id: i64) -> ApiResult<bool> {
    let pending = approvals::Entity::find()
        .filter(approvals::Column::TicketId.eq(ticket_id))
        .filter(approvals::Column::State.eq(ApprovalState::Pending))
        .count_rows(txn)
        .await?;
    Ok(pending > 0)
}

/// Withdraws the approvals of a ticket still pending once they no longer
/// matter (the rule is satisfied, or the ticket was rejected or cancelled);
/// returns how many.
#[tracing::instrument(skip_all, fields(ticket = ticket_id))]
pub async fn withdraw(txn: &Txn, ticket_id: i64, at: DateTime<Utc>) -> ApiResult<u64> {
    let withdrawn = approvals::Entity::update_many()
        .set(approvals::ActiveModel {
            state: Set(ApprovalState::Withdrawn),
            decided_at: Set(Some(at)),
            ..Default::default()
        })
        .filter(approvals::Column::TicketId.eq(ticket_id))
        .filter(approvals::Column::State.eq(ApprovalState::Pending))
        .exec(txn)
        .await?;
    Ok(withdrawn.rows_affected)
}

/// Skips the open tasks of a ticket that was cancelled; returns how many.
#[tracing::instrument(skip_all, fields(ticket = ticket_id))]
pub async fn skip_open_tasks(
    txn: &Txn,
    actor: i64,
    ticket_id: i64,
    at: DateTime<Utc>,
) -> ApiResult<u64> {
    let skipped = tasks::Entity::update_many()
        .set(tasks::ActiveModel {
            status: Set(TaskStatus::Skipped),
            note: Set(Some("the ticket was cancelled".into())),
            completed_by: Set(Some(actor)),
            completed_at: Set(Some(at)),
            updated_at: Set(at),
            ..Default::default()
        })
        .filter(tasks::Column::TicketId.eq(ticket_id))
        .filter(tasks::Column::Status.eq(TaskStatus::Open))
        .exec(txn)
        .await?;
    Ok(skipped.rows_affected)
}

/// The change entry that records `count` tasks skipped by a cancellation, if any.
pub fn skipped_change(count: u64) -> Option<Change> {
    (count > 0).then(|| Change::new("tasks", None, Some(format!("{count} skipped"))))
}

/// The change entry that records `count` withdrawn approvals, if any.
pub fn withdrawn_change(count: u64) -> Option<Change> {
    (count > 0).then(|| Change::new("approvals", None, Some(format!("{count} withdrawn"))))
}

/// How many fulfilment tasks of a ticket are still open.
#[tracing::instrument(skip_all, level = "debug", fields(ticket = ticket_id))]
pub async fn open_tasks(txn: &Txn, ticket_id: i64) -> ApiResult<u64> {
    Ok(tasks::Entity::find()
        .filter(tasks::Column::TicketId.eq(ticket_id))
        .filter(tasks::Column::Status.eq(TaskStatus::Open))
        .count_rows(txn)
        .await?)
}

/// The tasks of a ticket, in order.
#[tracing::instrument(skip_all, level = "debug", fields(ticket = ticket_id))]
pub async fn tasks_of(db: &Db, ticket_id: i64) -> ApiResult<Vec<tasks::Model>> {
    Ok(tasks::Entity::find()
        .filter(tasks::Column::TicketId.eq(ticket_id))
        .order_by_asc(tasks::Column::Position)
        .all(db.reader())
        .await?)
}

/// What to do with a task.
#[derive(Debug, Clone)]
pub enum TaskChange {
    /// Mark it done, with an optional note.
    Complete(Option<String>),
    /// Skip it, with a reason.
    Skip(String),
    /// Give it to an agent (or nobody).
    Assign(Option<i64>),
}

/// Completes, skips or assigns a task. The ticket's agents and managers, and
/// agents of the task's own queue, work tasks.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, task = task_id))]
pub async fn change_task(
    db: &Db,
    scope: &Scope,
    task_id: i64,
    change: TaskChange,
) -> ApiResult<(tasks::Model, tickets::Model)> {
    let txn = db.begin().await?;
    let task = tasks::Entity::find_by_id(task_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::NotFound("no task with that `taskId`".into()))?;
    let ticket = load(&txn, scope, task.ticket_id, "taskId")
        .await
        .map_err(|_| ApiError::NotFound("no task with that `taskId`".into()))?;
    let works =
        scope.may_work(&ticket) || task.queue_id.is_some_and(|q| scope.queue_ids.contains(&q));
    if !works {
        return Err(ApiError::Forbidden(
            "only the ticket's agents and managers work its tasks".into(),
        ));
    }
    if !super::rules::workflow::is_open(ticket.status) {
        return Err(ApiError::Conflict(format!(
            "the ticket is {}: its tasks no longer change",
            ticket.status.as_str()
        )));
    }
    let at = now();
    let mut row = tasks::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(task.id),
        updated_at: Set(at),
        ..Default::default()
    };
    let changes = match &change {
        TaskChange::Complete(note) => {
            if task.status != TaskStatus::Open {
                return Err(ApiError::Conflict(format!(
                    "the task is already {}",
                    task.status.as_str()
                )));
            }
            row.status = Set(TaskStatus::Done);
            row.note = Set(clean(note.as_deref()));
            row.completed_by = Set(Some(scope.user_id));
            row.completed_at = Set(Some(at));
            vec![Change::new(
                &format!("task {}", task.position),
                Some("OPEN".into()),
                Some(format!("DONE: {}", task.title)),
            )]
        }
        TaskChange::Skip(reason) => {
            if task.status != TaskStatus::Open {
                return Err(ApiError::Conflict(format!(
                    "the task is already {}",
                    task.status.as_str()
                )));
            }
            let Some(reason) = clean(Some(reason)) else {
                return Err(ApiError::bad_input(
                    "reason",
                    "skipping a task needs a reason",
                ));
            };
            long_text(&reason, "reason")?;
            row.status = Set(TaskStatus::Skipped);
            row.note = Set(Some(reason.clone()));
            row.completed_by = Set(Some(scope.user_id));
            row.completed_at = Set(Some(at));
            vec![Change::new(
                &format!("task {}", task.position),
                Some("OPEN".into()),
                Some(format!("SKIPPED: {} ({reason})", task.title)),
            )]
        }
        TaskChange::Assign(assignee) => {
            let name = match assignee {
                Some(id) => {
                    let user = users::Entity::find_by_id(*id)
                        .one(&txn)
                        .await?
                        .filter(|u| u.role >= Role::Agent && u.role != Role::Integration)
                        .ok_or_else(|| {
                            ApiError::bad_input(
                                "assigneeId",
                                "tasks go to agents, managers or admins",
                            )
                        })?;
                    Some(user.display_name)
                }
                None => None,
            };
            row.assignee_id = Set(*assignee);
            vec![Change::new(
                &format!("task {} assignee", task.position),
                None,
                name,
            )]
        }
    };
    // Guarded by the status read above: a concurrent change (such as the
    // ticket being cancelled, which skips open tasks) wins.
    let task = tasks::Entity::update_many()
        .set(row)
        .filter(tasks::Column::Id.eq(task.id))
        .filter(tasks::Column::Status.eq(task.status))
        .exec_with_returning(&txn)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Conflict("the task changed meanwhile; reload and retry".into()))?;
    events::record(
        &txn,
        Draft::new(&ticket, scope.user_id, EventKind::TaskUpdated, &changes, at),
    )
    .await?;
    txn.commit().await?;
    Ok((task, ticket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requester_never_approves_their_own_ticket() {
        let requester = 7;
        assert_eq!(
            approval_rows(None, ApprovalMode::Any, requester),
            vec![None]
        );
        // Named with others, under ANY: the others decide.
        assert_eq!(
            approval_rows(Some(&[7, 8]), ApprovalMode::Any, requester),
            vec![Some(8)]
        );
        // Under ALL: the requester's place goes to any other manager.
        assert_eq!(
            approval_rows(Some(&[7, 8]), ApprovalMode::All, requester),
            vec![None, Some(8)]
        );
        // Named alone: any other manager.
        assert_eq!(
            approval_rows(Some(&[7]), ApprovalMode::Any, requester),
            vec![None]
        );
        assert_eq!(
            approval_rows(Some(&[8, 9]), ApprovalMode::All, requester),
            vec![Some(8), Some(9)]
        );
    }
}
