//! GraphQL for approvals and fulfilment tasks.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::ticket::Ticket;
use crate::ticket::fulfilment::{self, Decision, TaskChange};
use crate::{
    entity::{approvals, tasks},
    error::{ApiError, ApiResult},
    graphql::{
        ContextExt,
        loaders::{QueueKey, TicketKey, UserKey},
        relay::{decode_id_of, encode_id},
    },
    queue::resolvers::Queue,
    user::resolvers::User,
    vocabulary::{ApprovalMode, ApprovalState, TaskStatus},
};

/// A decision that gates a request or a change.
pub struct Approval(pub approvals::Model);

/// A decision that gates a request or a change.
#[Object]
impl Approval {
    /// The opaque id, for `decideApproval`.
    pub async fn id(&self) -> ID {
        encode_id("Approval", self.0.id)
    }

    /// Where it stands.
    async fn state(&self) -> ApprovalState {
        self.0.state
    }

    /// The designated approver; null when any manager may decide.
    async fn approver(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.approver_id else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(UserKey(id)).await?.map(User))
    }

    /// Whether one or all of the named approvers must approve.
    async fn mode(&self) -> ApprovalMode {
        self.0.mode
    }

    /// Who decided.
    async fn decided_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.decided_by else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(UserKey(id)).await?.map(User))
    }

    /// The approver's comment (required to reject).
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }

    /// When it was decided.
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at
    }

    /// When it was asked for.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Whether the viewer may decide it (never for their own ticket).
    async fn can_decide(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let viewer = ctx.auth().viewer()?;
        if self.0.state != ApprovalState::Pending {
            return Ok(false);
        }
        let ticket = ctx
            .state()?
            .loader
            .load_one(TicketKey(self.0.ticket_id))
            .await?;
        Ok(ticket.is_some_and(|t| fulfilment::designated(viewer, &self.0, t.requester_id)))
    }

    /// The ticket it gates. Designated approvers see it even when it is not
    /// otherwise theirs to see.
    async fn ticket(&self, ctx: &Context<'_>) -> ApiResult<Option<Ticket>> {
        let viewer = ctx.auth().viewer()?;
        let scope = ctx.scope().await?;
        let ticket = ctx
            .state()?
            .loader
            .load_one(TicketKey(self.0.ticket_id))
            .await?;
        Ok(ticket
            .filter(|t| scope.can_see(t) || fulfilment::designated(viewer, &self.0, t.requester_id))
            .map(Ticket))
    }
}

/// One fulfilment step of a request.
pub struct Task(pub tasks::Model);

/// One fulfilment step of a request.
#[Object]
impl Task {
    /// The opaque id, for `completeTask`, `skipTask` and `assignTask`.
    pub async fn id(&self) -> ID {
        encode_id("Task", self.0.id)
    }

    /// Its place in the order, from 1.
    async fn position(&self) -> i32 {
        self.0.position
    }

    /// What to do.
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// The queue that does it; the request's queue when null.
    async fn queue(&self, ctx: &Context<'_>) -> ApiResult<Option<Queue>> {
        let Some(id) = self.0.queue_id else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(QueueKey(id)).await?.map(Queue))
    }

    /// Who does it.
    async fn assignee(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.assignee_id else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(UserKey(id)).await?.map(User))
    }

    /// Where it stands.
    async fn status(&self) -> TaskStatus {
        self.0.status
    }

    /// The note given when done, or the reason it was skipped.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }

    /// Who completed or skipped it.
    async fn completed_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.completed_by else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(UserKey(id)).await?.map(User))
    }

    /// When it was completed or skipped.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
}

/// Approval queries.
#[derive(Default)]
pub struct FulfilmentQuery;

/// Approval queries.
#[Object]
impl FulfilmentQuery {
    /// The approvals the viewer is designated to decide (named, or as a
    /// manager where any manager may), newest first, at most 100. Never those
    /// of the viewer's own tickets: a requester does not approve their own.
    async fn my_approvals(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Which ones (pending by default).",
            default_with = "ApprovalState::Pending"
        )]
        state: ApprovalState,
    ) -> ApiResult<Vec<Approval>> {
        let viewer = ctx.auth().viewer()?;
        Ok(fulfilment::mine(ctx.db()?, viewer, state)
            .await?
            .into_iter()
            .map(Approval)
            .collect())
    }
}

/// Decides an approval.
#[derive(InputObject)]
pub struct DecideApprovalInput {
    /// The approval.
    pub approval_id: ID,
    /// Approve or reject.
    pub decision: Decision,
    /// Why (required to reject).
    pub comment: Option<String>,
}

/// Completes a task.
#[derive(InputObject)]
pub struct CompleteTaskInput {
    /// The task.
    pub task_id: ID,
    /// A note on what was done.
    pub note: Option<String>,
}

/// Skips a task.
#[derive(InputObject)]
pub struct SkipTaskInput {
    /// The task.
    pub task_id: ID,
    /// Why it is not needed.
    pub reason: String,
}

/// Gives a task to someone.
#[derive(InputObject)]
pub struct AssignTaskInput {
    /// The task.
    pub task_id: ID,
    /// The agent; null leaves it unassigned.
    pub assignee_id: MaybeUndefined<ID>,
}

/// The approval decided and its ticket.
#[derive(SimpleObject)]
pub struct DecideApprovalPayload {
    /// The approval as it is now.
    pub approval: Approval,
    /// The ticket as it is now.
    pub ticket: Ticket,
}

/// The task changed and its ticket.
#[derive(SimpleObject)]
pub struct TaskPayload {
    /// The task as it is now.
    pub task: Task,
    /// Its ticket.
    pub ticket: Ticket,
}

/// Approval and task mutations.
#[derive(Default)]
pub struct FulfilmentMutation;

async fn change(ctx: &Context<'_>, task: &ID, change: TaskChange) -> ApiResult<TaskPayload> {
    let scope = ctx.scope().await?;
    let id = decode_id_of("Task", task, "taskId")?;
    let (task, ticket) = fulfilment::change_task(ctx.db()?, scope, id, change).await?;
    Ok(TaskPayload {
        task: Task(task),
        ticket: Ticket(ticket),
    })
}

/// Approval and task mutations.
#[Object]
impl FulfilmentMutation {
    /// Decides an approval, once, as a designated approver. Rejecting needs a
    /// comment and cancels the ticket; approval that satisfies the rule starts
    /// work and creates the fulfilment tasks.
    async fn decide_approval(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: DecideApprovalInput,
    ) -> ApiResult<DecideApprovalPayload> {
        let viewer = ctx.auth().viewer()?;
        let scope = ctx.scope().await?;
        let id = decode_id_of("Approval", &input.approval_id, "approvalId")?;
        let (approval, ticket) = fulfilment::decide(
            ctx.db()?,
            viewer,
            scope,
            id,
            input.decision,
            input.comment.as_deref(),
        )
        .await?;
        Ok(DecideApprovalPayload {
            approval: Approval(approval),
            ticket: Ticket(ticket),
        })
    }

    /// Marks a task done.
    async fn complete_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CompleteTaskInput,
    ) -> ApiResult<TaskPayload> {
        change(ctx, &input.task_id, TaskChange::Complete(input.note)).await
    }

    /// Skips a task, with a reason.
    async fn skip_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: SkipTaskInput,
    ) -> ApiResult<TaskPayload> {
        change(ctx, &input.task_id, TaskChange::Skip(input.reason)).await
    }

    /// Gives a task to an agent, or to nobody.
    async fn assign_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: AssignTaskInput,
    ) -> ApiResult<TaskPayload> {
        let assignee = match input.assignee_id {
            MaybeUndefined::Value(id) => Some(decode_id_of("User", &id, "assigneeId")?),
            MaybeUndefined::Null => None,
            MaybeUndefined::Undefined => {
                return Err(ApiError::bad_input(
                    "assigneeId",
                    "give an assigneeId, or null",
                ));
            }
        };
        change(ctx, &input.task_id, TaskChange::Assign(assignee)).await
    }
}
