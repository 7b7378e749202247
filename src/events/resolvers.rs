//! GraphQL for live updates: the subscriptions, and the same feed as a query
//! for integrators who poll.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Subscription};
use futures_util::{Stream, StreamExt};

use super::{
    bus::EventBus,
    feed::{self, Feed, after_seq},
};
use crate::{
    error::{ApiError, ApiResult},
    graphql::{ContextExt, connection::TotalCount, relay::decode_id_of},
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
) -> ApiResult<impl Stream<Item = ApiResult<TicketEvent>> + use<>> {
    let viewer = ctx.auth().viewer()?.clone();
    let after = after_seq(after.as_deref())?;
    let state = ctx.state_handle()?;
    // The feed's own reads are not the subscriber's request: only what each
    // event's selection resolves counts against the budget (reset per event).
    let events = feeds::follow(ctx.db()?.ungated(), bus(ctx)?, viewer, feed, after).await?;
    Ok(events.map(move |item| {
        // Each event resolves its relations afresh.
        state.forget();
        item.map(TicketEvent::delivered)
    }))
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
    ) -> Result<impl Stream<Item = ApiResult<TicketEvent>> + use<>, ApiError> {
        let queue = decode_id_of("Queue", &queue_id, "queueId")?;
        subscribe(ctx, Feed::Queue(queue), after).await
    }

    /// Everything that happens to one ticket the viewer may see.
    async fn ticket_updates(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ticket to follow.")] ticket_id: ID,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
    ) -> Result<impl Stream<Item = ApiResult<TicketEvent>> + use<>, ApiError> {
        let ticket = decode_id_of("Ticket", &ticket_id, "ticketId")?;
        subscribe(ctx, Feed::Ticket(ticket), after).await
    }

    /// Everything on the tickets the viewer requested: what a requester's
    /// phone follows. Work notes never appear here for requesters.
    async fn my_ticket_updates(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
    ) -> Result<impl Stream<Item = ApiResult<TicketEvent>> + use<>, ApiError> {
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
