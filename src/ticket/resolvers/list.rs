//! Ticket lists: filter and order inputs, one page with the relations its
//! selection needs prefetched in batches, and the ticket queries.

use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::ticket::Ticket;
use super::ticket::TicketConnection;
use crate::ticket::query::{self, TicketFilter, TicketOrder, TicketOrderField};
use crate::{
    access::Scope,
    entity::tickets,
    error::{ApiError, ApiResult},
    graphql::{
        ContextExt,
        connection::TotalCount,
        loaders::{CommentsKey, QueueKey, TeamKey, UserKey},
        relay::decode_id_of,
    },
    paging::PageArgs,
    vocabulary::{Priority, Status, TicketKind},
};

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
pub(super) async fn prefetch(
    ctx: &Context<'_>,
    scope: &Scope,
    rows: &[tickets::Model],
) -> ApiResult<()> {
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
