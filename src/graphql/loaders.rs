//! DataLoaders: every relation a list can fan out to is fetched in one batch
//! per request, so a page of 100 tickets costs the same statements as a page
//! of 1. A fresh set is made for every request (and every WebSocket
//! operation), so nothing is cached across viewers.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, Func, Query},
};
use tokio::sync::OnceCell;

use crate::{
    auth::Auth,
    db::{Db, Gate, RequestBudget},
    entity::{catalog_items, comments, queues, services, teams, tickets, users},
    error::{ApiError, ApiResult},
    ticket::{access::Scope, model::Visibility},
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
/// The comments of a ticket a viewer may read: internal ones too, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommentsKey {
    /// The ticket.
    pub ticket_id: i64,
    /// Count internal notes too.
    pub internal: bool,
}

/// How many comments a ticket has, and the latest one.
#[derive(Debug, Clone, Default)]
pub struct CommentStats {
    /// Comments the viewer may read.
    pub count: i64,
    /// The newest of them.
    pub latest: Option<comments::Model>,
}

/// Loads rows by key in batches.
pub struct DbLoader {
    db: Db,
}

fn ids<K: Copy>(keys: &[K], id: impl Fn(K) -> i64) -> Vec<i64> {
    keys.iter().map(|k| id(*k)).collect()
}

impl Loader<UserKey> for DbLoader {
    type Value = users::Model;
    type Error = ApiError;

    async fn load(&self, keys: &[UserKey]) -> Result<HashMap<UserKey, Self::Value>, Self::Error> {
        let rows = users::Entity::find()
            .filter(users::Column::Id.is_in(ids(keys, |k| k.0)))
            .all(self.db.reader())
            .await?;
        Ok(rows.into_iter().map(|u| (UserKey(u.id), u)).collect())
    }
}

impl Loader<QueueKey> for DbLoader {
    type Value = queues::Model;
    type Error = ApiError;

    async fn load(&self, keys: &[QueueKey]) -> Result<HashMap<QueueKey, Self::Value>, Self::Error> {
        let rows = queues::Entity::find()
            .filter(queues::Column::Id.is_in(ids(keys, |k| k.0)))
            .all(self.db.reader())
            .await?;
        Ok(rows.into_iter().map(|q| (QueueKey(q.id), q)).collect())
    }
}

impl Loader<TeamKey> for DbLoader {
    type Value = teams::Model;
    type Error = ApiError;

    async fn load(&self, keys: &[TeamKey]) -> Result<HashMap<TeamKey, Self::Value>, Self::Error> {
        let rows = teams::Entity::find()
            .filter(teams::Column::Id.is_in(ids(keys, |k| k.0)))
            .all(self.db.reader())
            .await?;
        Ok(rows.into_iter().map(|t| (TeamKey(t.id), t)).collect())
    }
}

impl Loader<CatalogItemKey> for DbLoader {
    type Value = catalog_items::Model;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[CatalogItemKey],
    ) -> Result<HashMap<CatalogItemKey, Self::Value>, Self::Error> {
        let rows = catalog_items::Entity::find()
            .filter(catalog_items::Column::Id.is_in(ids(keys, |k| k.0)))
            .all(self.db.reader())
            .await?;
        Ok(rows
            .into_iter()
            .map(|i| (CatalogItemKey(i.id), i))
            .collect())
    }
}

impl Loader<ServiceKey> for DbLoader {
    type Value = services::Model;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[ServiceKey],
    ) -> Result<HashMap<ServiceKey, Self::Value>, Self::Error> {
        let rows = services::Entity::find()
            .filter(services::Column::Id.is_in(ids(keys, |k| k.0)))
            .all(self.db.reader())
            .await?;
        Ok(rows.into_iter().map(|s| (ServiceKey(s.id), s)).collect())
    }
}

impl Loader<TicketKey> for DbLoader {
    type Value = tickets::Model;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[TicketKey],
    ) -> Result<HashMap<TicketKey, Self::Value>, Self::Error> {
        let rows = tickets::Entity::find()
            .filter(tickets::Column::Id.is_in(ids(keys, |k| k.0)))
            .all(self.db.reader())
            .await?;
        Ok(rows.into_iter().map(|t| (TicketKey(t.id), t)).collect())
    }
}

impl Loader<CommentsKey> for DbLoader {
    type Value = CommentStats;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[CommentsKey],
    ) -> Result<HashMap<CommentsKey, Self::Value>, Self::Error> {
        let mut found = HashMap::new();
        // Within one request every key has the same `internal`; split anyway.
        for internal in [false, true] {
            let ticket_ids: Vec<i64> = keys
                .iter()
                .filter(|k| k.internal == internal)
                .map(|k| k.ticket_id)
                .collect();
            if ticket_ids.is_empty() {
                continue;
            }
            let visibilities = if internal {
                vec![Visibility::Public, Visibility::Internal]
            } else {
                vec![Visibility::Public]
            };
            let counts: Vec<(i64, i64)> = comments::Entity::find()
                .select_only()
                .column(comments::Column::TicketId)
                .column_as(comments::Column::Id.count(), "count")
                .filter(comments::Column::TicketId.is_in(ticket_ids.clone()))
                .filter(comments::Column::Visibility.is_in(visibilities.clone()))
                .group_by(comments::Column::TicketId)
                .into_tuple()
                .all(self.db.reader())
                .await?;
            let newest = Query::select()
                .expr(Func::max(Expr::col(comments::Column::Id)))
                .from(comments::Entity)
                .and_where(comments::Column::TicketId.is_in(ticket_ids.clone()))
                .and_where(comments::Column::Visibility.is_in(visibilities))
                .group_by_col(comments::Column::TicketId)
                .to_owned();
            let latest = comments::Entity::find()
                .filter(comments::Column::Id.in_subquery(newest))
                .all(self.db.reader())
                .await?;
            let mut latest: HashMap<i64, comments::Model> =
                latest.into_iter().map(|c| (c.ticket_id, c)).collect();
            let counts: HashMap<i64, i64> = counts.into_iter().collect();
            for ticket_id in ticket_ids {
                found.insert(
                    CommentsKey {
                        ticket_id,
                        internal,
                    },
                    CommentStats {
                        count: counts.get(&ticket_id).copied().unwrap_or(0),
                        latest: latest.remove(&ticket_id),
                    },
                );
            }
        }
        Ok(found)
    }
}

/// What one request (or one WebSocket operation) shares among its resolvers.
pub struct RequestState {
    /// Batches relation lookups, and remembers them for the rest of the request.
    pub loader: DataLoader<DbLoader, HashMapCache>,
    scope: OnceCell<Scope>,
    db: Db,
}

impl RequestState {
    /// Fresh state over `db`.
    pub fn new(db: Db) -> Self {
        Self {
            loader: DataLoader::with_cache(
                DbLoader { db: db.clone() },
                tokio::spawn,
                HashMapCache::default(),
            ),
            scope: OnceCell::new(),
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
    }

    /// The database, metered for this request.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The viewer's scope, loaded on first use.
    pub async fn scope(&self, auth: &Auth) -> ApiResult<&Scope> {
        let viewer = auth.viewer()?;
        self.scope
            .get_or_try_init(|| Scope::load(&self.db, viewer))
            .await
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
        Arc::new(RequestStateExtension {
            db: self.db.clone(),
            budget: self.budget,
        })
    }
}

struct RequestStateExtension {
    db: Db,
    budget: RequestBudget,
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
        request
            .data
            .insert(Arc::new(RequestState::new(self.db.gated(gate))));
        next.run(ctx, request).await
    }
}
