//! Event feeds: which events a queue, ticket or requester stream carries, who
//! may read each one, and the resumable stream that replays the log from a
//! cursor and then continues live without gap or duplicate at the seam.

use std::{collections::VecDeque, sync::Arc};

use futures_util::{Stream, stream};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::broadcast::{Receiver, error::RecvError};

use super::{
    bus::{EventBus, Following, Published},
    pump::with_tickets,
};
use crate::paging::CountRows;
use crate::{
    access::Scope,
    auth::{Role, Viewer},
    db::Db,
    entity::{ticket_events, tickets},
    error::{ApiError, ApiResult},
    metrics::EventStats,
    paging::{self, Page, PageInfoFlags, encode_cursor},
    vocabulary::Visibility,
};

/// Events replayed per query while catching up.
const REPLAY_BATCH: u64 = 200;

/// The cursor tag of event feeds.
pub const SEQ: &str = "SEQ";

/// The cursor of the event numbered `seq`.
pub fn cursor(seq: i64) -> String {
    encode_cursor(SEQ, vec![seq.into()])
}

/// Which events a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Events of tickets in (or leaving) a queue.
    Queue(i64),
    /// Events of one ticket.
    Ticket(i64),
    /// Events of the tickets one person requested.
    Requester(i64),
    /// Every event the viewer may read.
    All,
}

impl Feed {
    fn condition(self) -> Condition {
        match self {
            Self::Queue(id) => Condition::all().add(ticket_events::Column::QueueId.eq(id)),
            Self::Ticket(id) => Condition::all().add(ticket_events::Column::TicketId.eq(id)),
            Self::Requester(id) => Condition::all().add(ticket_events::Column::RequesterId.eq(id)),
            Self::All => Condition::all(),
        }
    }

    fn carries(self, event: &ticket_events::Model) -> bool {
        match self {
            Self::Queue(id) => event.queue_id == id,
            Self::Ticket(id) => event.ticket_id == id,
            Self::Requester(id) => event.requester_id == id,
            Self::All => true,
        }
    }
}

/// May `scope` read this event? The rules of reading tickets, plus: a queue's
/// agents read everything that happens in it, including tickets leaving it.
pub fn may_read(scope: &Scope, event: &ticket_events::Model, ticket: &tickets::Model) -> bool {
    if event.visibility == Visibility::Internal && !scope.is_staff() {
        return false;
    }
    scope.can_see(ticket) || works_queue(scope, event.queue_id)
}

fn works_queue(scope: &Scope, queue_id: i64) -> bool {
    scope.sees_all() || (scope.role == Role::Agent && scope.queue_ids.contains(&queue_id))
}

/// An event as one viewer receives it. Shared, not copied, between the
/// subscribers that receive it.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The event and its ticket.
    pub published: Arc<Published>,
    /// Whether this viewer may see the ticket now.
    pub shows_ticket: bool,
}

fn deliver(scope: &Scope, published: &Arc<Published>) -> Option<Delivered> {
    if !may_read(scope, &published.event, &published.ticket) {
        return None;
    }
    Some(Delivered {
        published: published.clone(),
        shows_ticket: scope.can_see(&published.ticket),
    })
}

/// Decodes an `after` cursor into a sequence number.
pub fn after_seq(after: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(after) = after else {
        return Ok(None);
    };
    let page = paging::PageArgs {
        first: Some(1),
        after: Some(after.to_owned()),
        last: None,
        before: None,
    }
    .page(SEQ)?;
    page.key
        .and_then(|key| key.first().and_then(serde_json::Value::as_i64))
        .map(Some)
        .ok_or_else(|| ApiError::bad_input("after", "the cursor does not fit this feed"))
}

struct Follow {
    db: Db,
    viewer: Viewer,
    scope: Scope,
    generation: u64,
    feed: Feed,
    cursor: i64,
    replaying: bool,
    receiver: Receiver<Arc<Published>>,
    pending: VecDeque<Arc<Published>>,
    finished: bool,
    stats: EventStats,
    following: Option<Following>,
}

impl Follow {
    async fn fresh_scope(&mut self) -> ApiResult<()> {
        let generation = self.db.signals().setup_generation();
        if generation != self.generation {
            self.scope = Scope::load(&self.db, &self.viewer).await?;
            self.generation = generation;
        }
        Ok(())
    }

    async fn replay(&mut self) -> ApiResult<()> {
        let events = ticket_events::Entity::find()
            .filter(self.feed.condition())
            .filter(ticket_events::Column::Seq.gt(self.cursor))
            .order_by_asc(ticket_events::Column::Seq)
            .limit(REPLAY_BATCH)
            .all(self.db.reader())
            .await?;
        if events.is_empty() {
            self.replaying = false;
        }
        self.pending.extend(
            with_tickets(&self.db, events)
                .await?
                .into_iter()
                .map(Arc::new),
        );
        Ok(())
    }

    async fn next(&mut self) -> Option<ApiResult<Delivered>> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(published) = self.pending.pop_front() {
                let seq = published.event.seq;
                if seq <= self.cursor || !self.feed.carries(&published.event) {
                    continue;
                }
                self.cursor = seq;
                if let Err(error) = self.fresh_scope().await {
                    self.finished = true;
                    return Some(Err(error));
                }
                if let Some(delivered) = deliver(&self.scope, &published) {
                    // A group's lead counts what reaches its members instead.
                    if self.following.is_some() {
                        self.stats.delivered();
                    }
                    return Some(Ok(delivered));
                }
                continue;
            }
            if self.replaying {
                if let Err(error) = self.replay().await {
                    self.finished = true;
                    return Some(Err(error));
                }
                continue;
            }
            match self.receiver.recv().await {
                Ok(published) => self.pending.push_back(published),
                Err(RecvError::Lagged(missed)) => {
                    self.stats.dropped(missed);
                    self.finished = true;
                    return Some(Err(ApiError::Conflict(format!(
                        "this subscription fell too far behind and was stopped; \
                         subscribe again with after: \"{}\" to resume without losing events",
                        cursor(self.cursor)
                    ))));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// A feed opened for one viewer: already receiving live events, with the
/// viewer's scope loaded, not yet streaming. The caller decides from
/// [`Opened::scope`] whether the viewer may follow the feed, then calls
/// [`Opened::follow`].
pub struct Opened {
    db: Db,
    viewer: Viewer,
    scope: Scope,
    generation: u64,
    feed: Feed,
    receiver: Receiver<Arc<Published>>,
    bus: EventBus,
}

/// Opens `feed` for `viewer`. Subscribing to the bus before anything is read
/// from the log, and later skipping everything at or below the cursor, closes
/// the seam between replay and live events.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = viewer.user.id, feed = ?feed))]
pub async fn open(db: Db, bus: &EventBus, viewer: Viewer, feed: Feed) -> ApiResult<Opened> {
    let receiver = bus.subscribe();
    let generation = db.signals().setup_generation();
    let scope = Scope::load(&db, &viewer).await?;
    Ok(Opened {
        db,
        viewer,
        scope,
        generation,
        feed,
        receiver,
        bus: bus.clone(),
    })
}

impl Opened {
    /// The database the feed reads.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The viewer's scope, as loaded when the feed was opened.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Streams the feed, starting after the event it returns: replays the
    /// log after `after` (when given), then continues live. `counted`: the stream is a subscription of its own,
    /// counted as following once its starting point is fixed (a shared
    /// execution is not: its members count themselves).
    pub async fn follow(
        self,
        after: Option<i64>,
        counted: bool,
    ) -> ApiResult<(i64, impl Stream<Item = ApiResult<Delivered>> + use<>)> {
        let (cursor, replaying) = match after {
            Some(seq) => (seq, true),
            None => (super::pump::latest_seq(&self.db).await?, false),
        };
        let follow = Follow {
            db: self.db,
            viewer: self.viewer,
            scope: self.scope,
            generation: self.generation,
            feed: self.feed,
            cursor,
            replaying,
            receiver: self.receiver,
            pending: VecDeque::new(),
            finished: false,
            stats: self.bus.stats().clone(),
            // Counted as following only now that its starting point is
            // fixed: an event committed from here on reaches it.
            following: counted.then(|| self.bus.following()),
        };
        let stream = stream::unfold(follow, |mut follow| async move {
            let item = follow.next().await?;
            Some((item, follow))
        });
        Ok((cursor, stream))
    }
}

/// A page of the events the viewer may read, oldest first: the polling feed.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, feed = ?feed))]
pub async fn page(
    db: &Db,
    scope: &Scope,
    feed: Feed,
    page: &Page,
) -> ApiResult<(Vec<ticket_events::Model>, PageInfoFlags)> {
    let select = ticket_events::Entity::find().filter(readable(scope, feed));
    paging::by_number(db, select, ticket_events::Column::Seq, page).await
}

/// Counts the events the viewer may read in `feed`.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, feed = ?feed))]
pub async fn count(db: &Db, scope: &Scope, feed: Feed) -> ApiResult<u64> {
    Ok(ticket_events::Entity::find()
        .filter(readable(scope, feed))
        .count_rows(db.reader())
        .await?)
}

/// SQL for [`may_read`] over a feed.
fn readable(scope: &Scope, feed: Feed) -> Condition {
    let mut condition = feed
        .condition()
        .add(ticket_events::Column::Visibility.is_in(scope.visibilities().to_vec()));
    if !scope.sees_all() {
        let visible_tickets = sea_orm::sea_query::Query::select()
            .column(tickets::Column::Id)
            .from(tickets::Entity)
            .cond_where(scope.visible())
            .to_owned();
        let mut reach =
            Condition::any().add(ticket_events::Column::TicketId.in_subquery(visible_tickets));
        if scope.role == Role::Agent {
            reach = reach.add(ticket_events::Column::QueueId.is_in(scope.queue_ids.clone()));
        }
        condition = condition.add(reach);
    }
    condition
}
