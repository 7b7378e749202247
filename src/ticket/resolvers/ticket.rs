//! The `Ticket` object and the ticket connections.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::parts::ChangeDetails;
use super::parts::Comment;
use super::parts::ProblemDetails;
use super::parts::Sla;
use super::parts::TicketEvent;
use crate::ticket::{
    query::{self},
    rules::workflow,
};
use crate::{
    clock::now,
    connection,
    entity::tickets,
    error::{ApiError, ApiResult},
    graphql::{
        ContextExt,
        connection::TotalCount,
        loaders::{
            ApprovalsKey, CatalogItemKey, CommentsKey, LinksKey, QueueKey, ServiceKey, TasksKey,
            TicketKey, UserKey,
        },
        relay::encode_id,
    },
    paging::{PageArgs, encode_cursor},
    queue::resolvers::Queue,
    user::resolvers::User,
    vocabulary::{Level, PendingReason, Priority, Status, TicketKind},
};

connection!(TicketConnection, TicketEdge, Ticket, "tickets");

connection!(CommentConnection, CommentEdge, Comment, "comments");

connection!(
    TicketEventConnection,
    TicketEventEdge,
    TicketEvent,
    "ticket events"
);

/// One unit of work: an incident, service request, problem or change.
pub struct Ticket(pub tickets::Model);

/// One unit of work: an incident, service request, problem or change.
#[Object]
impl Ticket {
    /// The opaque global id.
    pub async fn id(&self) -> ID {
        encode_id("Ticket", self.0.id)
    }

    /// The human number, such as `INC0001001`.
    async fn number(&self) -> &str {
        &self.0.number
    }

    /// What the ticket is about.
    async fn kind(&self) -> TicketKind {
        self.0.kind
    }

    /// One line.
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// Free text.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Where the ticket is in its workflow.
    async fn status(&self) -> Status {
        self.0.status
    }

    /// Why the ticket waits, while `PENDING`.
    async fn pending_reason(&self) -> Option<PendingReason> {
        self.0.pending_reason
    }

    /// How much it affects.
    async fn impact(&self) -> Level {
        self.0.impact
    }

    /// How soon it matters.
    async fn urgency(&self) -> Level {
        self.0.urgency
    }

    /// Importance, from impact × urgency.
    async fn priority(&self) -> Priority {
        self.0.priority
    }

    /// Changes with every edit; send it back as `expectedVersion`.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// How it was resolved, once `RESOLVED`.
    async fn resolution(&self) -> Option<&str> {
        self.0.resolution.as_deref()
    }

    /// Why it was cancelled, once `CANCELLED`.
    async fn cancel_reason(&self) -> Option<&str> {
        self.0.cancel_reason.as_deref()
    }

    /// When it was reported.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// When it was resolved (cleared when reopened).
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }

    /// When it was closed or cancelled.
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }

    /// Who asked.
    async fn requester(&self, ctx: &Context<'_>) -> ApiResult<User> {
        let user = ctx
            .state()?
            .loader
            .load_one(UserKey(self.0.requester_id))
            .await?;
        user.map(User)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("requester missing")))
    }

    /// Who works it, if anyone.
    async fn assignee(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.assignee_id else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(UserKey(id)).await?.map(User))
    }

    /// The queue it waits in.
    async fn queue(&self, ctx: &Context<'_>) -> ApiResult<Queue> {
        let queue = ctx
            .state()?
            .loader
            .load_one(QueueKey(self.0.queue_id))
            .await?;
        queue
            .map(Queue)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("queue missing")))
    }

    /// The service the ticket concerns, if it names one the viewer may see.
    async fn service(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Option<crate::lifecycle::resolvers::Service>> {
        let Some(id) = self.0.service_id else {
            return Ok(None);
        };
        let scope = ctx.scope().await?;
        let service = ctx.state()?.loader.load_one(ServiceKey(id)).await?;
        let visible = service.filter(|s| crate::lifecycle::portfolio::may_see(scope.role, s));
        Ok(visible.map(crate::lifecycle::resolvers::Service))
    }

    /// The catalog item requested, for requests made from the catalog.
    async fn catalog_item(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Option<crate::catalog::resolvers::CatalogItem>> {
        let Some(id) = self.0.catalog_item_id else {
            return Ok(None);
        };
        Ok(ctx
            .state()?
            .loader
            .load_one(CatalogItemKey(id))
            .await?
            .map(crate::catalog::resolvers::CatalogItem))
    }

    /// The request form as answered, in form order, typed, with each field as
    /// the form defined it when the request was made; null for tickets not
    /// made from the catalog.
    async fn request_form(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Option<Vec<crate::catalog::resolvers::RequestAnswer>>> {
        use crate::catalog::resolvers::{needs_item, request_form};
        let Some(answers) = self.0.request_answers.as_deref() else {
            return Ok(None);
        };
        let item = match self.0.catalog_item_id {
            Some(id) if needs_item(answers) => {
                ctx.state()?.loader.load_one(CatalogItemKey(id)).await?
            }
            _ => None,
        };
        Ok(Some(request_form(answers, item.as_ref())))
    }

    /// The approvals that gate this ticket, oldest first.
    async fn approvals(&self, ctx: &Context<'_>) -> ApiResult<Vec<super::fulfilment::Approval>> {
        let rows = ctx
            .state()?
            .loader
            .load_one(ApprovalsKey(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(super::fulfilment::Approval).collect())
    }

    /// The fulfilment tasks, in order.
    async fn tasks(&self, ctx: &Context<'_>) -> ApiResult<Vec<super::fulfilment::Task>> {
        let rows = ctx
            .state()?
            .loader
            .load_one(TasksKey(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(super::fulfilment::Task).collect())
    }

    /// Response and resolution targets, as of now.
    async fn sla(&self) -> Sla {
        Sla(
            crate::ticket::store::clock(&self.0).view(now()),
            self.0.resolved_at,
        )
    }

    /// The statuses the viewer may move this ticket to.
    async fn available_transitions(&self, ctx: &Context<'_>) -> ApiResult<Vec<Status>> {
        let scope = ctx.scope().await?;
        Ok(workflow::allowed(self.0.status, &scope.relation(&self.0)))
    }

    /// The files attached to the ticket and its comments that the viewer
    /// may read (a work note's only for staff), oldest first; removed ones
    /// are left out (the history says who removed them).
    async fn attachments(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Vec<crate::attachments::resolvers::Attachment>> {
        crate::attachments::resolvers::of_ticket(ctx, self.0.id, |_| true).await
    }

    /// How many comments the viewer may read.
    async fn comment_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let key = self.comments_key(ctx).await?;
        let stats = ctx.state()?.loader.load_one(key).await?;
        Ok(stats.map(|s| s.count).unwrap_or(0))
    }

    /// The newest comment the viewer may read.
    async fn latest_comment(&self, ctx: &Context<'_>) -> ApiResult<Option<Comment>> {
        let key = self.comments_key(ctx).await?;
        let stats = ctx.state()?.loader.load_one(key).await?;
        Ok(stats.and_then(|s| s.latest).map(Comment))
    }

    /// The comments the viewer may read, oldest first. Requesters see public ones only.
    async fn comments(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Comments after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
        #[graphql(desc = "Comments before the `before` cursor (at most 100).")] last: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] before: Option<String>,
    ) -> ApiResult<CommentConnection> {
        let scope = ctx.scope().await?;
        let db = ctx.db()?.clone();
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .page("ID")?;
        let (rows, flags) = query::comments(&db, scope, &self.0, &page).await?;
        let rows = rows
            .into_iter()
            .map(|c| (encode_cursor("ID", vec![c.id.into()]), Comment(c)))
            .collect();
        let (scope, id) = (scope.clone(), self.0.id);
        let total = TotalCount::new(move || {
            let (db, scope) = (db.clone(), scope.clone());
            async move { query::count_comments(&db, &scope, id).await }
        });
        Ok(CommentConnection::from_page(rows, flags, total))
    }

    /// What happened to the ticket, oldest first. Requesters do not see work notes.
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Events after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
        #[graphql(desc = "Events before the `before` cursor (at most 100).")] last: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] before: Option<String>,
    ) -> ApiResult<TicketEventConnection> {
        let scope = ctx.scope().await?;
        let db = ctx.db()?.clone();
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .page("SEQ")?;
        let (rows, flags) = query::history(&db, scope, &self.0, &page).await?;
        let rows = rows
            .into_iter()
            .map(|e| (event_cursor(e.seq), TicketEvent::lookup(e)))
            .collect();
        let (scope, id) = (scope.clone(), self.0.id);
        let total = TotalCount::new(move || {
            let (db, scope) = (db.clone(), scope.clone());
            async move { query::count_events(&db, &scope, id).await }
        });
        Ok(TicketEventConnection::from_page(rows, flags, total))
    }

    /// Problem details; null unless this is a `PROBLEM`.
    async fn problem(&self) -> Option<ProblemDetails<'_>> {
        (self.0.kind == TicketKind::Problem).then_some(ProblemDetails(&self.0))
    }

    /// Change details; null unless this is a `CHANGE`.
    async fn change(&self) -> Option<ChangeDetails<'_>> {
        (self.0.kind == TicketKind::Change).then_some(ChangeDetails(&self.0))
    }

    /// Linked tickets the viewer may see: a problem's incidents, an incident's
    /// problems, a change's related tickets and the changes a ticket relates to.
    async fn linked_tickets(&self, ctx: &Context<'_>) -> ApiResult<Vec<Ticket>> {
        let scope = ctx.scope().await?;
        let loader = &ctx.state()?.loader;
        let ids = loader
            .load_one(LinksKey(self.0.id))
            .await?
            .unwrap_or_default();
        let mut linked: Vec<tickets::Model> = loader
            .load_many(ids.into_iter().map(TicketKey))
            .await?
            .into_values()
            .filter(|ticket| scope.can_see(ticket))
            .collect();
        linked.sort_by(|a, b| a.number.cmp(&b.number));
        Ok(linked.into_iter().map(Ticket).collect())
    }
}

impl Ticket {
    async fn comments_key(&self, ctx: &Context<'_>) -> ApiResult<CommentsKey> {
        let scope = ctx.scope().await?;
        Ok(CommentsKey {
            ticket_id: self.0.id,
            visibilities: scope.visibilities(),
        })
    }
}

pub(super) fn event_cursor(seq: i64) -> String {
    encode_cursor("SEQ", vec![seq.into()])
}
