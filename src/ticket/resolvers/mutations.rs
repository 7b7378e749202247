//! The ticket mutations, their inputs and payloads.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::parts::Comment;
use super::ticket::Ticket;
use crate::ticket::{
    rules::workflow,
    service::{self, Assignment, NewTicket, TicketEdit},
};
use crate::{
    error::ApiResult,
    graphql::{ContextExt, relay::decode_id_of},
    vocabulary::{ChangeType, Level, PendingReason, Status, TicketKind, Visibility},
};

/// Reports an incident.
#[derive(InputObject)]
pub struct CreateIncidentInput {
    /// One line, 1 to 200 characters.
    pub title: String,
    /// The service it concerns.
    pub service_id: Option<ID>,
    /// What happened.
    #[graphql(default)]
    pub description: String,
    /// How much it affects.
    pub impact: Level,
    /// How soon it matters.
    pub urgency: Level,
    /// The queue to put it in; the Service Desk when absent.
    pub queue_id: Option<ID>,
    /// Makes a retry return the first ticket instead of creating a second.
    pub idempotency_key: Option<String>,
    /// Whom it is for, when not you (a `User` id): agents, managers, admins,
    /// and integrations whose token carries `tickets:write` (which must name
    /// someone). You are recorded as the one who opened it.
    pub requester_id: Option<ID>,
}

/// Opens a problem.
#[derive(InputObject)]
pub struct CreateProblemInput {
    /// One line, 1 to 200 characters.
    pub title: String,
    /// The service it concerns.
    pub service_id: Option<ID>,
    /// What is known.
    #[graphql(default)]
    pub description: String,
    /// How much it affects.
    pub impact: Level,
    /// How soon it matters.
    pub urgency: Level,
    /// The queue to put it in; the Service Desk when absent.
    pub queue_id: Option<ID>,
    /// The root cause, when known.
    pub root_cause: Option<String>,
    /// How to work around it.
    pub workaround: Option<String>,
    /// A known error.
    pub known_error: Option<bool>,
    /// Incidents this problem causes.
    #[graphql(default)]
    pub incident_ids: Vec<ID>,
    /// Makes a retry return the first ticket instead of creating a second.
    pub idempotency_key: Option<String>,
}

/// Plans a change.
#[derive(InputObject)]
pub struct CreateChangeInput {
    /// One line, 1 to 200 characters.
    pub title: String,
    /// The service it concerns.
    pub service_id: Option<ID>,
    /// What will be done.
    #[graphql(default)]
    pub description: String,
    /// How much it affects.
    pub impact: Level,
    /// How soon it matters.
    pub urgency: Level,
    /// How it is authorised.
    pub change_type: ChangeType,
    /// How risky it is.
    pub risk: Level,
    /// When work starts.
    pub planned_start: Option<DateTime<Utc>>,
    /// When work ends (after the start).
    pub planned_end: Option<DateTime<Utc>>,
    /// The queue to put it in; the Service Desk when absent.
    pub queue_id: Option<ID>,
    /// Tickets this change relates to.
    #[graphql(default)]
    pub related_ticket_ids: Vec<ID>,
    /// Makes a retry return the first ticket instead of creating a second.
    pub idempotency_key: Option<String>,
}

/// Edits a ticket's fields. Absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateTicketInput {
    /// The ticket.
    pub id: ID,
    /// The version the edit is based on; a stale one gets `CONFLICT`.
    pub expected_version: i32,
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New impact (priority and SLA targets follow).
    pub impact: Option<Level>,
    /// New urgency (priority and SLA targets follow).
    pub urgency: Option<Level>,
    /// Problems: the root cause.
    pub root_cause: Option<String>,
    /// Problems: the workaround.
    pub workaround: Option<String>,
    /// Problems: a known error or not.
    pub known_error: Option<bool>,
    /// Changes: the change type.
    pub change_type: Option<ChangeType>,
    /// Changes: the risk.
    pub risk: Option<Level>,
    /// Changes: when work starts.
    pub planned_start: Option<DateTime<Utc>>,
    /// Changes: when work ends.
    pub planned_end: Option<DateTime<Utc>>,
}

/// Moves a ticket along its workflow.
#[derive(InputObject)]
pub struct TransitionTicketInput {
    /// The ticket.
    pub id: ID,
    /// The new status; see `availableTransitions`.
    pub to: Status,
    /// Why (required to cancel).
    pub reason: Option<String>,
    /// Why it waits (required for `PENDING`).
    pub pending_reason: Option<PendingReason>,
    /// How it was resolved (required for `RESOLVED`).
    pub resolution: Option<String>,
    /// The version the move is based on; a stale one gets `CONFLICT`.
    pub expected_version: Option<i32>,
}

/// Assigns a ticket, moves it to another queue, or both.
#[derive(InputObject)]
pub struct AssignTicketInput {
    /// The ticket.
    pub id: ID,
    /// The new assignee (an agent of the queue's team); null unassigns.
    pub assignee_id: MaybeUndefined<ID>,
    /// The queue to move it to.
    pub queue_id: Option<ID>,
    /// The version the change is based on; a stale one gets `CONFLICT`.
    pub expected_version: Option<i32>,
}

/// Comments on a ticket.
#[derive(InputObject)]
pub struct AddCommentInput {
    /// The ticket.
    pub ticket_id: ID,
    /// The text, 1 to 10,000 characters.
    pub body: String,
    /// `PUBLIC` (the requester sees it) or `INTERNAL` (a work note).
    #[graphql(default_with = "Visibility::Public")]
    pub visibility: Visibility,
}

/// Links two tickets: a problem and an incident it causes, or a change and
/// a ticket it relates to.
#[derive(InputObject)]
pub struct LinkTicketsInput {
    /// One ticket.
    pub ticket_id: ID,
    /// The other.
    pub related_ticket_id: ID,
}

/// The ticket a mutation created or changed.
#[derive(SimpleObject)]
pub struct TicketPayload {
    /// The ticket as it is now.
    pub ticket: Ticket,
}

/// The comment added, and its ticket.
#[derive(SimpleObject)]
pub struct AddCommentPayload {
    /// The new comment.
    pub comment: Comment,
    /// Its ticket as it is now.
    pub ticket: Ticket,
}

/// The two linked tickets.
#[derive(SimpleObject)]
pub struct LinkTicketsPayload {
    /// The first ticket.
    pub ticket: Ticket,
    /// The second ticket.
    pub related_ticket: Ticket,
}

pub(super) fn queue_id(id: Option<ID>) -> ApiResult<Option<i64>> {
    id.map(|id| decode_id_of("Queue", &id, "queueId"))
        .transpose()
}

/// A requester named by `User` id.
pub(crate) fn requester_id(id: Option<ID>) -> ApiResult<Option<i64>> {
    id.map(|id| decode_id_of("User", &id, "requesterId"))
        .transpose()
}

pub(super) fn service_id(id: Option<ID>) -> ApiResult<Option<i64>> {
    id.map(|id| decode_id_of("Service", &id, "serviceId"))
        .transpose()
}

pub(super) fn ticket_ids(ids: &[ID], field: &str) -> ApiResult<Vec<i64>> {
    ids.iter()
        .map(|id| decode_id_of("Ticket", id, field))
        .collect()
}

/// Ticket mutations.
#[derive(Default)]
pub struct TicketMutation;

/// Ticket mutations.
#[Object]
impl TicketMutation {
    /// Reports an incident; it lands in the given queue or the Service Desk.
    async fn create_incident(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateIncidentInput,
    ) -> ApiResult<TicketPayload> {
        let scope = ctx.scope().await?;
        let new = NewTicket {
            kind: Some(TicketKind::Incident),
            title: input.title,
            description: input.description,
            impact: Some(input.impact),
            urgency: Some(input.urgency),
            queue_id: queue_id(input.queue_id)?,
            service_id: service_id(input.service_id)?,
            idempotency_key: input.idempotency_key,
            requester_id: requester_id(input.requester_id)?,
            ..NewTicket::default()
        };
        let ticket = service::create(ctx.db()?, scope, new).await?;
        Ok(TicketPayload {
            ticket: Ticket(ticket),
        })
    }

    /// Opens a problem, optionally linked to the incidents it causes (agents and up).
    async fn create_problem(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateProblemInput,
    ) -> ApiResult<TicketPayload> {
        let scope = ctx.scope().await?;
        let new = NewTicket {
            kind: Some(TicketKind::Problem),
            title: input.title,
            description: input.description,
            impact: Some(input.impact),
            urgency: Some(input.urgency),
            queue_id: queue_id(input.queue_id)?,
            service_id: service_id(input.service_id)?,
            idempotency_key: input.idempotency_key,
            root_cause: input.root_cause,
            workaround: input.workaround,
            known_error: input.known_error,
            linked_ids: ticket_ids(&input.incident_ids, "incidentIds")?,
            ..NewTicket::default()
        };
        let ticket = service::create(ctx.db()?, scope, new).await?;
        Ok(TicketPayload {
            ticket: Ticket(ticket),
        })
    }

    /// Plans a change, optionally related to other tickets (agents and up).
    async fn create_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateChangeInput,
    ) -> ApiResult<TicketPayload> {
        let scope = ctx.scope().await?;
        let new = NewTicket {
            kind: Some(TicketKind::Change),
            title: input.title,
            description: input.description,
            impact: Some(input.impact),
            urgency: Some(input.urgency),
            queue_id: queue_id(input.queue_id)?,
            service_id: service_id(input.service_id)?,
            idempotency_key: input.idempotency_key,
            change_type: Some(input.change_type),
            risk: Some(input.risk),
            planned_start: input.planned_start,
            planned_end: input.planned_end,
            linked_ids: ticket_ids(&input.related_ticket_ids, "relatedTicketIds")?,
            ..NewTicket::default()
        };
        let ticket = service::create(ctx.db()?, scope, new).await?;
        Ok(TicketPayload {
            ticket: Ticket(ticket),
        })
    }

    /// Links a problem to an incident, or a change to any ticket.
    async fn link_tickets(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: LinkTicketsInput,
    ) -> ApiResult<LinkTicketsPayload> {
        let scope = ctx.scope().await?;
        let id = decode_id_of("Ticket", &input.ticket_id, "ticketId")?;
        let other = decode_id_of("Ticket", &input.related_ticket_id, "relatedTicketId")?;
        let (ticket, related) = service::link(ctx.db()?, scope, id, other).await?;
        Ok(LinkTicketsPayload {
            ticket: Ticket(ticket),
            related_ticket: Ticket(related),
        })
    }

    /// Edits fields; a stale `expectedVersion` gets `CONFLICT` and changes nothing.
    async fn update_ticket(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateTicketInput,
    ) -> ApiResult<TicketPayload> {
        let scope = ctx.scope().await?;
        let id = decode_id_of("Ticket", &input.id, "id")?;
        let edit = TicketEdit {
            title: input.title,
            description: input.description,
            impact: input.impact,
            urgency: input.urgency,
            root_cause: input.root_cause,
            workaround: input.workaround,
            known_error: input.known_error,
            change_type: input.change_type,
            risk: input.risk,
            planned_start: input.planned_start,
            planned_end: input.planned_end,
        };
        let ticket = service::update(ctx.db()?, scope, id, input.expected_version, edit).await?;
        Ok(TicketPayload {
            ticket: Ticket(ticket),
        })
    }

    /// Moves a ticket to another status; a refused move names the allowed ones.
    async fn transition_ticket(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: TransitionTicketInput,
    ) -> ApiResult<TicketPayload> {
        let scope = ctx.scope().await?;
        let id = decode_id_of("Ticket", &input.id, "id")?;
        let carried = workflow::Move {
            reason: input.reason,
            pending_reason: input.pending_reason,
            resolution: input.resolution,
        };
        let ticket = service::transition(
            ctx.db()?,
            scope,
            id,
            input.to,
            carried,
            input.expected_version,
        )
        .await?;
        Ok(TicketPayload {
            ticket: Ticket(ticket),
        })
    }

    /// Assigns a ticket to an agent of its queue's team, moves it to another
    /// queue, or both.
    async fn assign_ticket(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: AssignTicketInput,
    ) -> ApiResult<TicketPayload> {
        let scope = ctx.scope().await?;
        let id = decode_id_of("Ticket", &input.id, "id")?;
        let assignee_id = match input.assignee_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(user) => Some(Some(decode_id_of("User", &user, "assigneeId")?)),
        };
        let assignment = Assignment {
            assignee_id,
            queue_id: queue_id(input.queue_id)?,
        };
        let ticket =
            service::assign(ctx.db()?, scope, id, assignment, input.expected_version).await?;
        Ok(TicketPayload {
            ticket: Ticket(ticket),
        })
    }

    /// Adds a public reply or an internal work note.
    async fn add_comment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: AddCommentInput,
    ) -> ApiResult<AddCommentPayload> {
        let scope = ctx.scope().await?;
        let id = decode_id_of("Ticket", &input.ticket_id, "ticketId")?;
        let (comment, ticket) =
            service::comment(ctx.db()?, scope, id, &input.body, input.visibility).await?;
        Ok(AddCommentPayload {
            comment: Comment(comment),
            ticket: Ticket(ticket),
        })
    }
}
