//! GraphQL for live updates: the subscriptions, and the same feed as a query
//! for integrators who poll.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Subscription};
use futures_util::{StreamExt, stream::BoxStream};

use super::{
    bus::EventBus,
    feed::{self, Feed, after_seq},
};
use crate::{
    access::Scope,
    error::{ApiError, ApiResult},
    graphql::{
        ContextExt,
        connection::TotalCount,
        multiplex::{Joining, Lead},
        relay::decode_id_of,
    },
    paging::PageArgs,
    ticket::{
        feeds,
        resolvers::{TicketEvent, TicketEventConnection},
    },
};

fn bus<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a EventBus> {
    ctx.data_opt::<EventBus>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("schema built without an event bus")))
}

async fn subscribe(
    ctx: &Context<'_>,
    feed: Feed,
    after: Option<String>,
) -> ApiResult<BoxStream<'static, ApiResult<TicketEvent>>> {
    let viewer = ctx.auth().viewer()?.clone();
    let after = after_seq(after.as_deref())?;
    let bus = bus(ctx)?;
    // The feed's own reads are not the subscriber's request: only what each
    // event's selection resolves counts against the budget (reset per event).
    let db = ctx.db()?.ungated();
    let lead = ctx.data_opt::<Lead>().cloned();
    if after.is_none()
        && lead.is_none()
        && let Some(joining) = ctx.data_opt::<Joining>()
    {
        // Admitted as a subscription of its own would be, then served by
        // the execution its group shares.
        let scope = Scope::load(&db, &viewer).await?;
        feeds::authorize(&db, &scope, feed).await?;
        let stopped = joining.multiplexer.join(&viewer, joining, bus);
        joining.admit(ctx.item, stopped);
        return Ok(futures_util::stream::empty().boxed());
    }
    let state = ctx.state_handle()?;
    let stats = bus.stats().clone();
    let (start, events) = feeds::follow(db, bus, viewer, feed, after, lead.is_none()).await?;
    if let Some(lead) = &lead {
        lead.live(start);
    }
    Ok(events
        .map(move |item| {
            // Each event resolves its relations afresh.
            state.forget();
            if let Ok(delivered) = &item {
                stats.executed();
                if let Some(lead) = &lead {
                    lead.delivering(delivered.published.event.seq);
                }
            }
            item.map(TicketEvent::delivered)
        })
        .boxed())
}

/// Live ticket events.
#[derive(Default)]
pub struct EventSubscription;

/// Live ticket events. Each delivers `TicketEvent`s in sequence order; pass
/// the last `cursor` you received as `after` to resume without gap or repeat.
#[Subscription]
impl EventSubscription {
    /// Everything that happens to tickets in a queue, including tickets
    /// entering and leaving it. Agents, managers, admins and integrations.
    async fn queue_updates(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The queue to follow.")] queue_id: ID,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
    ) -> Result<BoxStream<'static, ApiResult<TicketEvent>>, ApiError> {
        let queue = decode_id_of("Queue", &queue_id, "queueId")?;
        subscribe(ctx, Feed::Queue(queue), after).await
    }

    /// Everything that happens to one ticket the viewer may see.
    async fn ticket_updates(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ticket to follow.")] ticket_id: ID,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
    ) -> Result<BoxStream<'static, ApiResult<TicketEvent>>, ApiError> {
        let ticket = decode_id_of("Ticket", &ticket_id, "ticketId")?;
        subscribe(ctx, Feed::Ticket(ticket), after).await
    }

    /// Everything on the tickets the viewer requested: what a requester's
    /// phone follows. Work notes never appear here for requesters.
    async fn my_ticket_updates(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
    ) -> Result<BoxStream<'static, ApiResult<TicketEvent>>, ApiError> {
        let viewer = ctx.auth().viewer()?;
        subscribe(ctx, Feed::Requester(viewer.user.id), after).await
    }
}

/// The event feed as a query.
#[derive(Default)]
pub struct EventQuery;

/// The event feed as a query.
#[Object]
impl EventQuery {
    /// The ticket events the viewer may read, oldest first: the subscriptions'
    /// feed for integrators who poll. Keep the last `endCursor` and pass it as
    /// `after` next time. `last: 1` is the newest event: its cursor, passed as
    /// `after` to a subscription, starts it from now without a gap.
    #[allow(clippy::too_many_arguments)] // the connection's arguments, as GraphQL names them
    async fn ticket_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Events after this cursor.")] after: Option<String>,
        #[graphql(desc = "How many (at most 100).")] first: Option<i32>,
        #[graphql(desc = "The newest events, this many (at most 100), still oldest first.")]
        last: Option<i32>,
        #[graphql(desc = "Events before this cursor (with `last`).")] before: Option<String>,
        #[graphql(desc = "Only events of tickets in (or leaving) this queue.")] queue_id: Option<
            ID,
        >,
        #[graphql(desc = "Only events of this ticket.")] ticket_id: Option<ID>,
    ) -> ApiResult<TicketEventConnection> {
        let scope = Arc::new(ctx.scope().await?.clone());
        let feed = match (queue_id, ticket_id) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_input(
                    "ticketId",
                    "give queueId or ticketId, not both",
                ));
            }
            (Some(queue), None) => Feed::Queue(decode_id_of("Queue", &queue, "queueId")?),
            (None, Some(ticket)) => Feed::Ticket(decode_id_of("Ticket", &ticket, "ticketId")?),
            (None, None) => Feed::All,
        };
        let db = ctx.db()?.clone();
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .page(feed::SEQ)?;
        let (rows, flags) = feed::page(&db, &scope, feed, &page).await?;
        let rows = rows
            .into_iter()
            .map(|event| (feed::cursor(event.seq), TicketEvent::lookup(event)))
            .collect();
        let total = TotalCount::new(move || {
            let (db, scope) = (db.clone(), scope.clone());
            async move { feed::count(&db, &scope, feed).await }
        });
        Ok(TicketEventConnection::from_page(rows, flags, total))
    }
}
