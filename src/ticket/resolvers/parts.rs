//! What hangs off a ticket: its SLA, problem and change details, comments
//! and events.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::ticket::Ticket;
use super::ticket::event_cursor;
use crate::ticket::rules::sla::View;
use crate::{
    entity::{comments, ticket_events, tickets},
    error::ApiResult,
    events::changes_of,
    graphql::{
        ContextExt,
        loaders::{TicketKey, UserKey},
        relay::encode_id,
    },
    user::resolvers::User,
    vocabulary::{ChangeType, EventKind, Level, Visibility},
};

/// Response and resolution targets of a ticket.
pub struct Sla(pub(super) View, pub(super) Option<DateTime<Utc>>);

/// Response and resolution targets of a ticket.
#[Object]
impl Sla {
    /// When the first response is due.
    async fn response_due_at(&self) -> DateTime<Utc> {
        self.0.response_due_at
    }

    /// When resolution is due; while paused it moves with the clock.
    async fn resolution_due_at(&self) -> DateTime<Utc> {
        self.0.resolution_due_at
    }

    /// When someone other than the requester first responded (a public reply,
    /// or the first move to `IN_PROGRESS`).
    async fn responded_at(&self) -> Option<DateTime<Utc>> {
        self.0.responded_at
    }

    /// When the ticket was resolved.
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.1
    }

    /// The first response came late, or is overdue.
    async fn response_breached(&self) -> bool {
        self.0.response_breached
    }

    /// Resolution came late, or is overdue.
    async fn resolution_breached(&self) -> bool {
        self.0.resolution_breached
    }

    /// The resolution clock is paused (`PENDING`).
    async fn paused(&self) -> bool {
        self.0.paused
    }

    /// Seconds until resolution is due, negative when overdue; null once the
    /// ticket is resolved or cancelled.
    async fn remaining_seconds(&self) -> Option<i64> {
        self.0.remaining_seconds
    }
}

/// What is known about a problem.
pub struct ProblemDetails<'a>(pub(super) &'a tickets::Model);

/// What is known about a problem.
#[Object]
impl ProblemDetails<'_> {
    /// The root cause, once found.
    async fn root_cause(&self) -> Option<&str> {
        self.0.root_cause.as_deref()
    }

    /// How to work around it meanwhile.
    async fn workaround(&self) -> Option<&str> {
        self.0.workaround.as_deref()
    }

    /// A known error: the root cause and a workaround are documented.
    async fn known_error(&self) -> bool {
        self.0.known_error
    }
}

/// What is planned for a change.
pub struct ChangeDetails<'a>(pub(super) &'a tickets::Model);

/// What is planned for a change.
#[Object]
impl ChangeDetails<'_> {
    /// How the change is authorised.
    async fn change_type(&self) -> Option<ChangeType> {
        self.0.change_type
    }

    /// How risky it is.
    async fn risk(&self) -> Option<Level> {
        self.0.risk
    }

    /// When work starts.
    async fn planned_start(&self) -> Option<DateTime<Utc>> {
        self.0.planned_start
    }

    /// When work ends.
    async fn planned_end(&self) -> Option<DateTime<Utc>> {
        self.0.planned_end
    }
}

/// A reply or a work note on a ticket.
pub struct Comment(pub comments::Model);

/// A reply or a work note on a ticket.
#[Object]
impl Comment {
    /// The opaque global id.
    pub async fn id(&self) -> ID {
        encode_id("Comment", self.0.id)
    }

    /// The text.
    async fn body(&self) -> &str {
        &self.0.body
    }

    /// `PUBLIC` (the requester sees it) or `INTERNAL` (agents only).
    async fn visibility(&self) -> Visibility {
        self.0.visibility
    }

    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        Ok(ctx
            .state()?
            .loader
            .load_one(UserKey(self.0.author_id))
            .await?
            .map(User))
    }

    /// When it was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The files attached to it, oldest first (removed ones left out).
    async fn attachments(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Vec<crate::attachments::resolvers::Attachment>> {
        let id = self.0.id;
        crate::attachments::resolvers::of_ticket(ctx, self.0.ticket_id, |a| {
            a.comment_id == Some(id)
        })
        .await
    }
}

/// One change to a ticket, from its append-only history.
pub enum TicketEvent {
    /// Read from the log; the ticket is loaded, and checked, when asked for.
    Lookup(ticket_events::Model),
    /// Delivered by a subscription, which already decided about the ticket.
    Delivered(crate::events::feed::Delivered),
}

impl TicketEvent {
    /// An event whose ticket is loaded when asked for.
    pub fn lookup(event: ticket_events::Model) -> Self {
        Self::Lookup(event)
    }

    /// An event as a subscription delivered it.
    pub fn delivered(delivered: crate::events::feed::Delivered) -> Self {
        Self::Delivered(delivered)
    }

    fn event(&self) -> &ticket_events::Model {
        match self {
            Self::Lookup(event) => event,
            Self::Delivered(delivered) => &delivered.published.event,
        }
    }
}

/// One change to a ticket, from its append-only history.
#[Object]
impl TicketEvent {
    /// Where this event sits in the feed; resume after it with `after`.
    async fn cursor(&self) -> String {
        event_cursor(self.event().seq)
    }

    /// The event's number: strictly increasing across all tickets.
    async fn seq(&self) -> i64 {
        self.event().seq
    }

    /// The ticket as the viewer may see it now; null when they no longer may
    /// (a ticket that left the viewer's queue, say).
    async fn ticket(&self, ctx: &Context<'_>) -> ApiResult<Option<Ticket>> {
        match self {
            Self::Delivered(delivered) => Ok(delivered
                .shows_ticket
                .then(|| Ticket(delivered.published.ticket.clone()))),
            Self::Lookup(event) => {
                let scope = ctx.scope().await?;
                let ticket = ctx
                    .state()?
                    .loader
                    .load_one(TicketKey(event.ticket_id))
                    .await?;
                Ok(ticket.filter(|t| scope.can_see(t)).map(Ticket))
            }
        }
    }

    /// What happened.
    async fn kind(&self) -> EventKind {
        self.event().kind
    }

    /// Who may read it: `PUBLIC`, or `INTERNAL` for work notes, SLA alerts
    /// and other events only staff read.
    async fn visibility(&self) -> Visibility {
        self.event().visibility
    }

    /// The fields that changed. A new comment or attachment is named by its
    /// global id (`node(id:)` fetches it, as the viewer may see it).
    async fn changes(&self) -> Vec<FieldChange> {
        let event = self.event();
        changes_of(event)
            .into_iter()
            .map(|c| {
                let kind = crate::events::log::named_object(event.kind, &c.field);
                let global = |value: Option<String>| match (value, kind) {
                    (Some(raw), Some(kind)) => match raw.parse::<i64>() {
                        Ok(id) => Some(encode_id(kind, id).to_string()),
                        Err(_) => Some(raw),
                    },
                    (other, _) => other,
                };
                FieldChange {
                    field: c.field,
                    from: global(c.from),
                    to: global(c.to),
                }
            })
            .collect()
    }

    /// Who did it (null for the system).
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.event().actor_id else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(UserKey(id)).await?.map(User))
    }

    /// When it happened.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.event().occurred_at
    }
}

/// One field's change.
#[derive(SimpleObject)]
pub struct FieldChange {
    /// The field, by its GraphQL name.
    pub field: String,
    /// The value before, as text.
    pub from: Option<String>,
    /// The value after, as text.
    pub to: Option<String>,
}
