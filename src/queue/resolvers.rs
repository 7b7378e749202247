//! GraphQL for queues: the `Queue` type with its tickets in importance order
//! and its statistics, and the queue queries and mutations.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::service::{self, QueueFields};
use crate::{
    connection,
    entity::queues,
    error::{ApiError, ApiResult},
    graphql::{
        ContextExt,
        connection::TotalCount,
        loaders::{QueueKey, QueueStatsKey, TeamKey},
        relay::{decode_id_of, encode_id},
    },
    paging::PageArgs,
    paging::{BY_NAME, name_cursor},
    team::resolvers::Team,
    ticket::resolvers::{TicketConnection, TicketFilterInput, TicketOrderInput, ticket_page},
    ticket::stats::Stats,
    vocabulary::Priority,
};

connection!(QueueConnection, QueueEdge, Queue, "queues");

/// A team's work queue.
pub struct Queue(pub queues::Model);

/// A team's work queue.
#[Object]
impl Queue {
    /// The opaque global id.
    pub async fn id(&self) -> ID {
        encode_id("Queue", self.0.id)
    }

    /// The queue's unique name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What lands here.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// Tickets that name no queue land here.
    async fn is_default(&self) -> bool {
        self.0.is_default
    }

    /// When the queue was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The team that works this queue.
    async fn team(&self, ctx: &Context<'_>) -> ApiResult<Team> {
        let team = ctx
            .state()?
            .loader
            .load_one(TeamKey(self.0.team_id))
            .await?;
        team.map(Team)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("team missing")))
    }

    /// The queue's tickets that the viewer may see, by importance unless told
    /// otherwise: priority (CRITICAL first), then resolution due time (none
    /// last: paused or stopped clocks), then age.
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
        ticket_page(
            ctx,
            Some(self.0.id),
            filter,
            order_by,
            PageArgs {
                first,
                after,
                last,
                before,
            },
        )
        .await
    }

    /// Counts over the queue's open tickets that the viewer may see.
    async fn stats(&self, ctx: &Context<'_>) -> ApiResult<QueueStats> {
        // The loader reads the scope: loaded first.
        ctx.scope().await?;
        let stats = ctx
            .state()?
            .loader
            .load_one(QueueStatsKey(self.0.id))
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("queue statistics missing")))?;
        Ok(QueueStats::from(stats))
    }
}

/// Counts over a queue's open tickets.
#[derive(SimpleObject)]
pub struct QueueStats {
    /// Open tickets.
    pub open: i64,
    /// Open tickets nobody is assigned to.
    pub unassigned: i64,
    /// Open tickets breaching an SLA target now.
    pub breached: i64,
    /// Open tickets per priority, most important first.
    pub by_priority: Vec<PriorityCount>,
}

/// How many open tickets have one priority.
#[derive(SimpleObject)]
pub struct PriorityCount {
    /// The priority.
    pub priority: Priority,
    /// How many open tickets have it.
    pub count: i64,
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl From<Stats> for QueueStats {
    fn from(stats: Stats) -> Self {
        Self {
            open: int(stats.open),
            unassigned: int(stats.unassigned),
            breached: int(stats.breached),
            by_priority: stats
                .by_priority
                .into_iter()
                .map(|(priority, count)| PriorityCount {
                    priority,
                    count: int(count),
                })
                .collect(),
        }
    }
}

/// One page of the queues: every queue, or one team's.
pub async fn queue_page(
    ctx: &Context<'_>,
    team: Option<i64>,
    args: PageArgs,
) -> ApiResult<QueueConnection> {
    ctx.auth().viewer()?;
    let db = ctx.db()?.clone();
    let page = args.page(BY_NAME)?;
    let (rows, flags) = service::list(&db, team, &page).await?;
    let rows = rows
        .into_iter()
        .map(|q| (name_cursor(&q.name, q.id), Queue(q)))
        .collect();
    let total = TotalCount::new(move || {
        let db = db.clone();
        async move { service::count(&db, team).await }
    });
    Ok(QueueConnection::from_page(rows, flags, total))
}

/// Queue queries.
#[derive(Default)]
pub struct QueueQuery;

/// Queue queries.
#[Object]
impl QueueQuery {
    /// Every queue, by name.
    async fn queues(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Queues after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
        #[graphql(desc = "Queues before the `before` cursor (at most 100).")] last: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] before: Option<String>,
    ) -> ApiResult<QueueConnection> {
        queue_page(
            ctx,
            None,
            PageArgs {
                first,
                after,
                last,
                before,
            },
        )
        .await
    }

    /// One queue; null when there is none with that id.
    async fn queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The queue's global id.")] id: ID,
    ) -> ApiResult<Option<Queue>> {
        ctx.auth().viewer()?;
        let id = decode_id_of("Queue", &id, "id")?;
        let queue = service::get(ctx.db()?, id).await?;
        if let Some(queue) = &queue {
            // Its tickets' `queue` is this one: no need to read it again.
            ctx.state()?
                .loader
                .feed_one(QueueKey(queue.id), queue.clone())
                .await;
        }
        Ok(queue.map(Queue))
    }
}

/// Creates a queue.
#[derive(InputObject)]
pub struct CreateQueueInput {
    /// A unique name, 1 to 100 characters.
    pub name: String,
    /// What lands here.
    pub description: Option<String>,
    /// The team that works it.
    pub team_id: ID,
    /// Make it the queue for tickets that name none.
    pub is_default: Option<bool>,
}

/// Changes a queue; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateQueueInput {
    /// The queue.
    pub id: ID,
    /// A new unique name.
    pub name: Option<String>,
    /// A new description; an empty one clears it.
    pub description: Option<String>,
    /// A new owning team.
    pub team_id: Option<ID>,
    /// `true` makes it the default queue (the previous default stops being one).
    pub is_default: Option<bool>,
}

/// The queue a mutation created or changed.
#[derive(SimpleObject)]
pub struct QueuePayload {
    /// The queue as it is now.
    pub queue: Queue,
}

/// Queue mutations (managers and admins).
#[derive(Default)]
pub struct QueueMutation;

/// Queue mutations (managers and admins).
#[Object]
impl QueueMutation {
    /// Creates a queue owned by a team.
    async fn create_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateQueueInput,
    ) -> ApiResult<QueuePayload> {
        let viewer = ctx.auth().viewer()?;
        let fields = QueueFields {
            name: Some(input.name),
            description: input.description,
            team_id: Some(decode_id_of("Team", &input.team_id, "teamId")?),
            is_default: input.is_default,
        };
        let queue = service::create(ctx.db()?, viewer, fields).await?;
        Ok(QueuePayload {
            queue: Queue(queue),
        })
    }

    /// Renames a queue, hands it to another team, or makes it the default.
    async fn update_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateQueueInput,
    ) -> ApiResult<QueuePayload> {
        let viewer = ctx.auth().viewer()?;
        let id = decode_id_of("Queue", &input.id, "id")?;
        let fields = QueueFields {
            name: input.name,
            description: input.description,
            team_id: input
                .team_id
                .map(|id| decode_id_of("Team", &id, "teamId"))
                .transpose()?,
            is_default: input.is_default,
        };
        let queue = service::update(ctx.db()?, viewer, id, fields).await?;
        Ok(QueuePayload {
            queue: Queue(queue),
        })
    }
}
