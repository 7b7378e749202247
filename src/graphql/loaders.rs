//! DataLoaders: every relation a list can fan out to is fetched in one batch
//! per request, so a page of 100 tickets costs the same statements as a page
//! of 1. A fresh set is made for every request (and every WebSocket
//! operation), so nothing is cached across viewers.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use futures_util::{
    FutureExt, Stream, StreamExt,
    future::BoxFuture,
    stream::{BoxStream, FuturesUnordered},
};
use tokio::sync::{OnceCell, mpsc};

use crate::{
    access::Scope,
    auth::Auth,
    catalog,
    db::{Db, Gate, RequestBudget},
    entity::{
        approvals, attachments, catalog_items, queues, services, tasks, teams, tickets, users,
    },
    error::{ApiError, ApiResult},
    lifecycle, queue, team,
    ticket::{
        fulfilment,
        query::{self, CommentStats},
    },
    user,
    vocabulary::Visibility,
};

/// A user by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserKey(pub i64);
/// A queue by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueKey(pub i64);
/// A team by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TeamKey(pub i64);
/// A catalog item by id (callers check who may see it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CatalogItemKey(pub i64);
/// A service by id (callers check who may see it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceKey(pub i64);
/// A ticket by id (callers check who may see it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TicketKey(pub i64);
/// The approvals of a ticket, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApprovalsKey(pub i64);
/// The fulfilment tasks of a ticket, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TasksKey(pub i64);
/// The ids of the tickets linked to a ticket, either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinksKey(pub i64);
/// A queue's statistics over the open tickets the request's viewer sees
/// (load the scope before asking).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueStatsKey(pub i64);

/// The comments of a ticket a viewer may read: those of the visibilities
/// the viewer's scope allows ([`Scope::visibilities`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommentsKey {
    /// The ticket.
    pub ticket_id: i64,
    /// The visibilities the viewer reads.
    pub visibilities: &'static [Visibility],
}

/// The live attachments of a ticket a viewer may read (as [`CommentsKey`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttachmentsKey {
    /// The ticket.
    pub ticket_id: i64,
    /// The visibilities the viewer reads.
    pub visibilities: &'static [Visibility],
}

/// Loads rows by key in batches, through the domains' stores.
pub struct DbLoader {
    db: Db,
    /// The request's viewer's scope, once loaded.
    scope: Arc<OnceCell<Scope>>,
}

fn ids<K: Copy>(keys: &[K], id: impl Fn(K) -> i64) -> Vec<i64> {
    keys.iter().map(|k| id(*k)).collect()
}

/// Loaders for rows by id: a key that finds no row has no entry.
macro_rules! rows_by_id {
    ($($key:ident => $value:ty, $fetch:path;)*) => {$(
        impl Loader<$key> for DbLoader {
            type Value = $value;
            type Error = ApiError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Self::Value>, Self::Error> {
                let rows = $fetch(&self.db, &ids(keys, |k| k.0)).await?;
                Ok(rows.into_iter().map(|row| ($key(row.id), row)).collect())
            }
        }
    )*};
}

rows_by_id! {
    UserKey => users::Model, user::service::by_ids;
    QueueKey => queues::Model, queue::service::by_ids;
    TeamKey => teams::Model, team::service::by_ids;
    CatalogItemKey => catalog_items::Model, catalog::service::by_ids;
    ServiceKey => services::Model, lifecycle::portfolio::by_ids;
    TicketKey => tickets::Model, query::by_ids;
}

/// Loaders for lists of rows that hang off a ticket: every requested ticket
/// gets an entry, empty when it has none.
macro_rules! ticket_lists {
    ($($key:ident => $value:ty, $fetch:path;)*) => {$(
        impl Loader<$key> for DbLoader {
            type Value = $value;
            type Error = ApiError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Self::Value>, Self::Error> {
                let ticket_ids = ids(keys, |k| k.0);
                let mut found = $fetch(&self.db, &ticket_ids).await?;
                Ok(ticket_ids
                    .into_iter()
                    .map(|id| ($key(id), found.remove(&id).unwrap_or_default()))
                    .collect())
            }
        }
    )*};
}

ticket_lists! {
    ApprovalsKey => Vec<approvals::Model>, fulfilment::approvals_of_tickets;
    TasksKey => Vec<tasks::Model>, fulfilment::tasks_of_tickets;
    LinksKey => Vec<i64>, query::links_of_tickets;
}

/// Ticket ids by the visibilities their keys read. Within one request every
/// key reads the same ones; grouped anyway.
fn by_visibilities(
    keys: impl IntoIterator<Item = (&'static [Visibility], i64)>,
) -> HashMap<&'static [Visibility], Vec<i64>> {
    let mut groups: HashMap<&'static [Visibility], Vec<i64>> = HashMap::new();
    for (visibilities, ticket_id) in keys {
        groups.entry(visibilities).or_default().push(ticket_id);
    }
    groups
}

impl Loader<CommentsKey> for DbLoader {
    type Value = CommentStats;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[CommentsKey],
    ) -> Result<HashMap<CommentsKey, Self::Value>, Self::Error> {
        let mut found = HashMap::new();
        let groups = by_visibilities(keys.iter().map(|k| (k.visibilities, k.ticket_id)));
        for (visibilities, ticket_ids) in groups {
            let stats = query::comment_stats(&self.db, &ticket_ids, visibilities).await?;
            found.extend(stats.into_iter().map(|(ticket_id, stats)| {
                let key = CommentsKey {
                    ticket_id,
                    visibilities,
                };
                (key, stats)
            }));
        }
        Ok(found)
    }
}

impl Loader<QueueStatsKey> for DbLoader {
    type Value = crate::ticket::stats::Stats;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[QueueStatsKey],
    ) -> Result<HashMap<QueueStatsKey, Self::Value>, Self::Error> {
        let scope = self.scope.get().ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("queue statistics asked before the scope"))
        })?;
        let stats = crate::ticket::stats::queues(&self.db, scope, &ids(keys, |k| k.0)).await?;
        Ok(stats
            .into_iter()
            .map(|(id, stats)| (QueueStatsKey(id), stats))
            .collect())
    }
}

impl Loader<AttachmentsKey> for DbLoader {
    type Value = Vec<attachments::Model>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[AttachmentsKey],
    ) -> Result<HashMap<AttachmentsKey, Self::Value>, Self::Error> {
        let mut found = HashMap::new();
        let groups = by_visibilities(keys.iter().map(|k| (k.visibilities, k.ticket_id)));
        for (visibilities, ticket_ids) in groups {
            let lists =
                crate::attachments::service::of_tickets(&self.db, &ticket_ids, visibilities)
                    .await?;
            found.extend(lists.into_iter().map(|(ticket_id, list)| {
                let key = AttachmentsKey {
                    ticket_id,
                    visibilities,
                };
                (key, list)
            }));
        }
        Ok(found)
    }
}

/// What one request (or one WebSocket operation) shares among its resolvers.
pub struct RequestState {
    /// Batches relation lookups, and remembers them for the rest of the request.
    pub loader: DataLoader<DbLoader, HashMapCache>,
    scope: Arc<OnceCell<Scope>>,
    db: Db,
}

impl RequestState {
    /// Fresh state over `db`, whose batched loads run on the request's own
    /// task (see [`Loads`]).
    fn new(db: Db, loads: mpsc::UnboundedSender<LoadTask>) -> Self {
        let scope = Arc::new(OnceCell::new());
        Self {
            loader: DataLoader::with_cache(
                DbLoader {
                    db: db.clone(),
                    scope: scope.clone(),
                },
                move |task| {
                    // The receiver lives as long as the request's execution.
                    let _ = loads.send(task);
                },
                HashMapCache::default(),
            )
            // The batch is complete when the request first waits on it
            // (see [`Loads`]): no time to wait on top.
            .delay(std::time::Duration::ZERO),
            scope,
            db,
        }
    }

    /// Forgets every cached relation, so the next lookups read afresh, and
    /// starts a new budget (for long-lived subscriptions: each event counts
    /// as a request of its own).
    pub fn forget(&self) {
        if let Some(gate) = self.db.gate() {
            gate.reset();
        }
        self.loader.clear::<UserKey>();
        self.loader.clear::<QueueKey>();
        self.loader.clear::<TeamKey>();
        self.loader.clear::<TicketKey>();
        self.loader.clear::<ServiceKey>();
        self.loader.clear::<CatalogItemKey>();
        self.loader.clear::<CommentsKey>();
        self.loader.clear::<ApprovalsKey>();
        self.loader.clear::<TasksKey>();
        self.loader.clear::<LinksKey>();
        self.loader.clear::<AttachmentsKey>();
        self.loader.clear::<QueueStatsKey>();
    }

    /// The database, metered for this request.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The state [`RequestStateFactory`] put in `request` (for extensions
    /// further out, whose `prepare_request` sees it once the inner ones ran).
    pub fn of(request: &async_graphql::Request) -> Option<Arc<Self>> {
        request
            .data
            .get(&std::any::TypeId::of::<Arc<Self>>())
            .and_then(|data| data.downcast_ref::<Arc<Self>>())
            .cloned()
    }

    /// The viewer's scope, loaded on first use.
    pub async fn scope(&self, auth: &Auth) -> ApiResult<&Scope> {
        let viewer = auth.viewer()?;
        self.scope
            .get_or_try_init(|| Scope::load(&self.db, viewer))
            .await
    }
}

/// One batched load a request's DataLoader asked to run.
type LoadTask = BoxFuture<'static, ()>;

/// The batched loads of one request, run on the request's own task.
///
/// A DataLoader collects the keys its resolvers ask for and loads them
/// together once a short delay has passed. On a task of their own, the loads
/// could start while the request's task is still part-way through resolving
/// a page, splitting one batch into several as the machine gets busier.
/// Polled from the request's task after the request itself, a load sees
/// every key that one pass over the page asked for, however slow the pass:
/// a page of 100 costs the statements of a page of 1, always. And a load
/// waits until none of the request's statements is under way, so the rows
/// they bring join it too: sibling lists (a ticket's comments, its history)
/// share one batch of people, however their statements happen to interleave.
struct Loads {
    queued: mpsc::UnboundedReceiver<LoadTask>,
    running: FuturesUnordered<LoadTask>,
    /// The request's meter, which knows its statements under way.
    gate: Option<Arc<Gate>>,
}

impl Loads {
    fn drive(&mut self, cx: &mut Context<'_>) {
        loop {
            // A batch starts only once none of the request's statements is
            // under way: the rows they bring ask for more keys (a page's
            // authors, its comments' authors), which join the same batch.
            // Whatever wakes the request when the last statement ends drives
            // the loads again.
            if self.gate.as_ref().is_none_or(|gate| gate.active() == 0) {
                while let Poll::Ready(Some(task)) = self.queued.poll_recv(cx) {
                    self.running.push(task);
                }
            }
            let mut finished = false;
            while let Poll::Ready(Some(())) = self.running.poll_next_unpin(cx) {
                finished = true;
            }
            if !finished {
                return;
            }
        }
    }
}

/// `inner`, with the request's loads run whenever it is waiting for them.
struct Driven<F> {
    inner: F,
    loads: Arc<Mutex<Loads>>,
}

/// Notes whether a future woke its own task while it was being polled: it
/// yielded part-way through its work and wants to go on at once.
struct Yielded {
    woken: AtomicBool,
    task: Waker,
}

impl Wake for Yielded {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl<F> Driven<F> {
    /// Polls `inner` through `poll`; runs the loads only once `inner` waits
    /// on something rather than yielding in the middle of a pass, so a
    /// batch holds every key the pass asked for.
    fn step<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut F, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let yielded = Arc::new(Yielded {
            woken: AtomicBool::new(false),
            task: cx.waker().clone(),
        });
        let waker = Waker::from(yielded.clone());
        if let Poll::Ready(output) = poll(&mut self.inner, &mut Context::from_waker(&waker)) {
            return Poll::Ready(output);
        }
        if !yielded.woken.load(Ordering::Acquire)
            && let Ok(mut loads) = self.loads.lock()
        {
            loads.drive(cx);
        }
        Poll::Pending
    }
}

impl<F: Future + Unpin> Future for Driven<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.step(cx, |inner, cx| inner.poll_unpin(cx))
    }
}

impl<S: Stream + Unpin> Stream for Driven<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.step(cx, |inner, cx| inner.poll_next_unpin(cx))
    }
}

/// Adds fresh [`RequestState`] to every request.
pub struct RequestStateFactory {
    db: Db,
    budget: RequestBudget,
}

impl RequestStateFactory {
    /// State over `db`, each request metered by `budget`.
    pub fn new(db: Db, budget: RequestBudget) -> Self {
        Self { db, budget }
    }
}

impl async_graphql::extensions::ExtensionFactory for RequestStateFactory {
    fn create(&self) -> Arc<dyn async_graphql::extensions::Extension> {
        let (queue, queued) = mpsc::unbounded_channel();
        Arc::new(RequestStateExtension {
            db: self.db.clone(),
            budget: self.budget,
            queue,
            loads: Arc::new(Mutex::new(Loads {
                queued,
                running: FuturesUnordered::new(),
                gate: None,
            })),
        })
    }
}

struct RequestStateExtension {
    db: Db,
    budget: RequestBudget,
    queue: mpsc::UnboundedSender<LoadTask>,
    loads: Arc<Mutex<Loads>>,
}

#[async_graphql::async_trait::async_trait]
impl async_graphql::extensions::Extension for RequestStateExtension {
    async fn prepare_request(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        mut request: async_graphql::Request,
        next: async_graphql::extensions::NextPrepareRequest<'_>,
    ) -> async_graphql::ServerResult<async_graphql::Request> {
        let gate = Arc::new(Gate::new(self.budget));
        if let Ok(mut loads) = self.loads.lock() {
            loads.gate = Some(gate.clone());
        }
        request.data.insert(Arc::new(RequestState::new(
            self.db.gated(gate),
            self.queue.clone(),
        )));
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: async_graphql::extensions::NextExecute<'_>,
    ) -> async_graphql::Response {
        Driven {
            inner: Box::pin(next.run(ctx, operation_name)),
            loads: self.loads.clone(),
        }
        .await
    }

    fn subscribe<'s>(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        stream: BoxStream<'s, async_graphql::Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> BoxStream<'s, async_graphql::Response> {
        Driven {
            inner: next.run(ctx, stream),
            loads: self.loads.clone(),
        }
        .boxed()
    }
}
