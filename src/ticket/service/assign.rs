//! Assigning a ticket to an agent and moving it between queues.

use sea_orm::EntityTrait;

use crate::ticket::rules::workflow::{self};
use crate::ticket::store::{check_version, load, save};
use crate::{
    access::Scope,
    auth::Role,
    clock::now,
    db::Db,
    entity::{queues, team_members, tickets, users},
    error::{ApiError, ApiResult},
    events::{self, Change, Draft},
    vocabulary::{EventKind, Status},
};

/// A new assignee, queue, or both.
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    /// `Some(Some(id))` assigns, `Some(None)` unassigns, `None` keeps.
    pub assignee_id: Option<Option<i64>>,
    /// Moves the ticket to this queue.
    pub queue_id: Option<i64>,
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
