//! GraphQL for tickets: the `Ticket` type and its parts, the ticket queries
//! and mutations. Resolvers parse input, call the service and map errors.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{
    query::{self, TicketFilter, TicketOrder, TicketOrderField},
    rules::{sla::View, workflow},
    service::{self, Assignment, NewTicket, TicketEdit},
};
use crate::{
    access::Scope,
    clock::now,
    connection,
    entity::{comments, ticket_events, tickets},
    error::{ApiError, ApiResult},
    events::changes_of,
    graphql::{
        ContextExt,
        connection::TotalCount,
        loaders::{
            ApprovalsKey, CatalogItemKey, CommentsKey, LinksKey, QueueKey, ServiceKey, TasksKey,
            TeamKey, TicketKey, UserKey,
        },
        relay::{decode_id_of, encode_id},
    },
    paging::{PageArgs, encode_cursor},
    queue::resolvers::Queue,
    user::resolvers::User,
    vocabulary::{
        ChangeType, EventKind, Level, PendingReason, Priority, Status, TicketKind, Visibility,
    },
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
    async fn approvals(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Vec<super::fulfilment_resolvers::Approval>> {
        let rows = ctx
            .state()?
            .loader
            .load_one(ApprovalsKey(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(super::fulfilment_resolvers::Approval)
            .collect())
    }

    /// The fulfilment tasks, in order.
    async fn tasks(&self, ctx: &Context<'_>) -> ApiResult<Vec<super::fulfilment_resolvers::Task>> {
        let rows = ctx
            .state()?
            .loader
            .load_one(TasksKey(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(super::fulfilment_resolvers::Task)
            .collect())
    }

    /// Response and resolution targets, as of now.
    async fn sla(&self) -> Sla {
        Sla(service::clock(&self.0).view(now()), self.0.resolved_at)
    }

    /// The statuses the viewer may move this ticket to.
    async fn available_transitions(&self, ctx: &Context<'_>) -> ApiResult<Vec<Status>> {
        let scope = ctx.scope().await?;
        Ok(workflow::allowed(self.0.status, &scope.relation(&self.0)))
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

fn event_cursor(seq: i64) -> String {
    encode_cursor("SEQ", vec![seq.into()])
}

/// Response and resolution targets of a ticket.
pub struct Sla(View, Option<DateTime<Utc>>);

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
pub struct ProblemDetails<'a>(&'a tickets::Model);

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
pub struct ChangeDetails<'a>(&'a tickets::Model);

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
    async fn id(&self) -> ID {
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

    /// The fields that changed.
    async fn changes(&self) -> Vec<FieldChange> {
        changes_of(self.event())
            .into_iter()
            .map(|c| FieldChange {
                field: c.field,
                from: c.from,
                to: c.to,
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

/// Which tickets a list holds. Every given condition must hold.
#[derive(InputObject, Default)]
pub struct TicketFilterInput {
    /// Any of these kinds.
    pub kinds: Option<Vec<TicketKind>>,
    /// Any of these statuses.
    pub statuses: Option<Vec<Status>>,
    /// Any of these priorities.
    pub priorities: Option<Vec<Priority>>,
    /// In any of these queues.
    pub queue_ids: Option<Vec<ID>>,
    /// About any of these services.
    pub service_ids: Option<Vec<ID>>,
    /// Assigned to this user.
    pub assignee_id: Option<ID>,
    /// Requested by this user.
    pub requester_id: Option<ID>,
    /// Without (`true`) or with (`false`) an assignee.
    pub unassigned: Option<bool>,
    /// Breaching an SLA target now (`true`) or not (`false`).
    pub breached: Option<bool>,
    /// Open (`true`) or resolved, closed or cancelled (`false`).
    pub open: Option<bool>,
    /// Text in the title or description, case-insensitive.
    pub search: Option<String>,
    /// Created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before this time.
    pub created_before: Option<DateTime<Utc>>,
    /// Changed at or after this time.
    pub updated_after: Option<DateTime<Utc>>,
    /// Changed before this time.
    pub updated_before: Option<DateTime<Utc>>,
}

impl TicketFilterInput {
    /// The service filter, with ids decoded.
    pub fn into_filter(self) -> ApiResult<TicketFilter> {
        let user =
            |id: Option<ID>, field: &str| id.map(|id| decode_id_of("User", &id, field)).transpose();
        Ok(TicketFilter {
            kinds: self.kinds.unwrap_or_default(),
            statuses: self.statuses.unwrap_or_default(),
            priorities: self.priorities.unwrap_or_default(),
            queue_ids: self
                .queue_ids
                .unwrap_or_default()
                .iter()
                .map(|id| decode_id_of("Queue", id, "queueIds"))
                .collect::<ApiResult<_>>()?,
            service_ids: self
                .service_ids
                .unwrap_or_default()
                .iter()
                .map(|id| decode_id_of("Service", id, "serviceIds"))
                .collect::<ApiResult<_>>()?,
            assignee_id: user(self.assignee_id, "assigneeId")?,
            requester_id: user(self.requester_id, "requesterId")?,
            unassigned: self.unassigned,
            breached: self.breached,
            open: self.open,
            search: self.search,
            created_after: self.created_after,
            created_before: self.created_before,
            updated_after: self.updated_after,
            updated_before: self.updated_before,
        })
    }
}

/// Which way a list runs.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderDirection {
    /// Smallest first (for importance: most important first).
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// How a ticket list is ordered.
#[derive(InputObject)]
pub struct TicketOrderInput {
    /// The sort key.
    #[graphql(default_with = "TicketOrderField::Importance")]
    pub field: TicketOrderField,
    /// The direction.
    #[graphql(default)]
    pub direction: OrderDirection,
}

impl TicketOrderInput {
    /// The service order.
    pub fn into_order(input: Option<Self>) -> TicketOrder {
        input.map_or_else(TicketOrder::default, |input| TicketOrder {
            field: input.field,
            descending: input.direction == OrderDirection::Desc,
        })
    }
}

/// Runs one page of a ticket list: all the viewer sees, or one queue's.
pub async fn ticket_page(
    ctx: &Context<'_>,
    queue: Option<i64>,
    filter: Option<TicketFilterInput>,
    order_by: Option<TicketOrderInput>,
    args: PageArgs,
) -> ApiResult<TicketConnection> {
    let scope = ctx.scope().await?.clone();
    let db = ctx.db()?.clone();
    let filter = filter.unwrap_or_default().into_filter()?;
    let list = query::TicketList::new(&scope, queue, &filter)?;
    let order = TicketOrderInput::into_order(order_by);
    let page = args.page(&order.tag())?;
    let cursor_field = if page.backward { "before" } else { "after" };
    let (rows, flags) = query::page(&db, &list, order, &page, cursor_field).await?;
    prefetch(ctx, &scope, &rows).await?;
    let rows = rows
        .into_iter()
        .map(|t| (order.cursor(&t), Ticket(t)))
        .collect();
    let total = TotalCount::new(move || {
        let (db, list) = (db.clone(), list.clone());
        async move { query::count(&db, &list).await }
    });
    Ok(TicketConnection::from_page(rows, flags, total))
}

/// Loads, in one batch each, the relations the query selects on a page of
/// tickets. The resolvers then find them in the request's loader cache, so a
/// page costs the same statements however many tickets it holds, and does not
/// depend on how resolvers happen to interleave.
async fn prefetch(ctx: &Context<'_>, scope: &Scope, rows: &[tickets::Model]) -> ApiResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let look = ctx.look_ahead();
    let selected = |path: &[&str]| {
        let mut edges = look.field("edges").field("node");
        let mut nodes = look.field("nodes");
        for name in path {
            edges = edges.field(name);
            nodes = nodes.field(name);
        }
        edges.exists() || nodes.exists()
    };
    let loader = &ctx.state()?.loader;
    let mut people: Vec<UserKey> = Vec::new();
    if selected(&["requester"]) {
        people.extend(rows.iter().map(|t| UserKey(t.requester_id)));
    }
    if selected(&["assignee"]) {
        people.extend(rows.iter().filter_map(|t| t.assignee_id.map(UserKey)));
    }
    if selected(&["queue"]) {
        let queues = loader
            .load_many(rows.iter().map(|t| QueueKey(t.queue_id)))
            .await?;
        if selected(&["queue", "team"]) {
            loader
                .load_many(queues.values().map(|q| TeamKey(q.team_id)))
                .await?;
        }
    }
    if selected(&["commentCount"]) || selected(&["latestComment"]) {
        let visibilities = scope.visibilities();
        let stats = loader
            .load_many(rows.iter().map(|t| CommentsKey {
                ticket_id: t.id,
                visibilities,
            }))
            .await?;
        if selected(&["latestComment", "author"]) {
            people.extend(
                stats
                    .values()
                    .filter_map(|s| s.latest.as_ref().map(|c| UserKey(c.author_id))),
            );
        }
    }
    if !people.is_empty() {
        loader.load_many(people).await?;
    }
    Ok(())
}

/// Ticket queries.
#[derive(Default)]
pub struct TicketQuery;

/// Ticket queries.
#[Object]
impl TicketQuery {
    /// One ticket by global id or by number (give exactly one); null when it
    /// does not exist or the viewer may not see it.
    async fn ticket(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ticket's global id.")] id: Option<ID>,
        #[graphql(desc = "The ticket's number, such as `INC0001001`.")] number: Option<String>,
    ) -> ApiResult<Option<Ticket>> {
        let scope = ctx.scope().await?;
        let db = ctx.db()?;
        let ticket = match (id, number) {
            (Some(id), None) => query::by_id(db, scope, decode_id_of("Ticket", &id, "id")?).await?,
            (None, Some(number)) => query::by_number(db, scope, &number).await?,
            _ => return Err(ApiError::bad_input("id", "give either `id` or `number`")),
        };
        Ok(ticket.map(Ticket))
    }

    /// The tickets the viewer may see, filtered and ordered (by importance
    /// unless told otherwise).
    #[allow(clippy::too_many_arguments)]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which tickets.")] filter: Option<TicketFilterInput>,
        #[graphql(desc = "In what order (importance by default).")] order_by: Option<
            TicketOrderInput,
        >,
        #[graphql(desc = "Tickets after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
        #[graphql(desc = "Tickets before the `before` cursor (at most 100).")] last: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] before: Option<String>,
    ) -> ApiResult<TicketConnection> {
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        ticket_page(ctx, None, filter, order_by, args).await
    }
}

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

fn queue_id(id: Option<ID>) -> ApiResult<Option<i64>> {
    id.map(|id| decode_id_of("Queue", &id, "queueId"))
        .transpose()
}

fn service_id(id: Option<ID>) -> ApiResult<Option<i64>> {
    id.map(|id| decode_id_of("Service", &id, "serviceId"))
        .transpose()
}

fn ticket_ids(ids: &[ID], field: &str) -> ApiResult<Vec<i64>> {
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
