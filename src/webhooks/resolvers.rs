//! GraphQL for webhooks (admins): the endpoints, their delivery record, and
//! the mutations that manage them.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{
    Dispatcher,
    service::{self, Fields, Filter},
};
use crate::{
    entity::{webhook_deliveries, webhooks},
    error::{ApiError, ApiResult},
    events::feed::{self, after_seq},
    graphql::{
        ContextExt,
        connection::TotalCount,
        loaders::{QueueKey, TicketKey, UserKey},
        relay::{decode_id_of, encode_id},
    },
    paging::{PageArgs, encode_cursor},
    queue::resolvers::Queue,
    ticket::resolvers::Ticket,
    user::resolvers::User,
    vocabulary::{DeliveryOutcome, EventKind, TicketKind, WebhookStatus},
};

crate::connection!(WebhookConnection, WebhookEdge, Webhook, "webhooks");
crate::connection!(
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookDelivery,
    "delivery attempts"
);

/// The cursor tag of lists ordered by id.
const BY_ID: &str = "ID";

fn dispatcher<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Dispatcher> {
    ctx.data_opt::<Dispatcher>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("schema built without webhooks")))
}

/// An endpoint that receives ticket events as signed HTTP POSTs.
pub struct Webhook(pub webhooks::Model);

/// An endpoint that receives ticket events as signed HTTP POSTs (Standard
/// Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`).
#[Object]
impl Webhook {
    /// The opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Webhook", self.0.id)
    }

    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// What it is for.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The event kinds it receives; empty for all.
    async fn events(&self) -> Vec<EventKind> {
        Filter::of(&self.0).events
    }

    /// The queues whose events it receives; empty for all.
    async fn queues(&self, ctx: &Context<'_>) -> ApiResult<Vec<Queue>> {
        let ids = Filter::of(&self.0).queue_ids;
        let found = ctx
            .state()?
            .loader
            .load_many(ids.iter().map(|id| QueueKey(*id)))
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| found.get(&QueueKey(*id)).cloned().map(Queue))
            .collect())
    }

    /// The ticket kinds whose events it receives; empty for all.
    async fn kinds(&self) -> Vec<TicketKind> {
        Filter::of(&self.0).kinds
    }

    /// Whether work notes and other internal events are sent to it.
    async fn include_internal(&self) -> bool {
        self.0.include_internal
    }

    /// Delivering, paused by an admin, or failing (paused after retries ran out).
    async fn status(&self) -> WebhookStatus {
        self.0.status
    }

    /// Failed attempts in a row (0 once one succeeds).
    async fn failures(&self) -> i32 {
        self.0.failures
    }

    /// When the current run of failures began.
    async fn retrying_since(&self) -> Option<DateTime<Utc>> {
        self.0.retry_since
    }

    /// When the next attempt is due, while retrying.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }

    /// What went wrong last, while failing.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// When a delivery last succeeded.
    async fn last_success_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_success_at
    }

    /// The cursor of the last event handled: those after it are still to
    /// come. The same cursors as `ticketEvents`.
    async fn position(&self) -> String {
        feed::cursor(self.0.cursor)
    }

    /// Events committed after `position` (before its filter is applied).
    async fn backlog(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        service::backlog(ctx.db()?, &self.0).await
    }

    /// Until when the secret it had before the last rotation still signs too.
    async fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        service::previous_secret_at(&self.0, crate::clock::now()).and(self.0.previous_secret_until)
    }

    /// The admin who registered it.
    async fn created_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        Ok(ctx
            .state()?
            .loader
            .load_one(UserKey(self.0.created_by))
            .await?
            .map(User))
    }

    /// Changes with every edit; send it back as `expectedVersion`.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When it was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When an admin last changed it.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Its delivery attempts, oldest first (`last: 20` for the newest).
    #[allow(clippy::too_many_arguments)] // the connection's arguments, as GraphQL names them
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Attempts after this cursor.")] after: Option<String>,
        #[graphql(desc = "How many (at most 100).")] first: Option<i32>,
        #[graphql(desc = "The newest attempts, this many (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Attempts before this cursor (with `last`).")] before: Option<String>,
    ) -> ApiResult<WebhookDeliveryConnection> {
        deliveries(
            ctx,
            self.0.id,
            PageArgs {
                first,
                after,
                last,
                before,
            },
        )
        .await
    }
}

async fn deliveries(
    ctx: &Context<'_>,
    id: i64,
    args: PageArgs,
) -> ApiResult<WebhookDeliveryConnection> {
    let viewer = ctx.auth().viewer()?.clone();
    let db = ctx.db()?.clone();
    let page = args.page(BY_ID)?;
    let (rows, flags) = service::deliveries(&db, &viewer, id, &page).await?;
    let rows = rows
        .into_iter()
        .map(|row| {
            (
                encode_cursor(BY_ID, vec![row.id.into()]),
                WebhookDelivery(row),
            )
        })
        .collect();
    let total = TotalCount::new(move || {
        let (db, viewer) = (db.clone(), viewer.clone());
        async move { service::count_deliveries(&db, &viewer, id).await }
    });
    Ok(WebhookDeliveryConnection::from_page(rows, flags, total))
}

/// One attempt to deliver one event to a webhook.
pub struct WebhookDelivery(pub webhook_deliveries::Model);

/// One attempt to deliver one event to a webhook.
#[Object]
impl WebhookDelivery {
    /// The opaque id.
    pub async fn id(&self) -> ID {
        encode_id("WebhookDelivery", self.0.id)
    }

    /// The endpoint.
    async fn webhook(&self, ctx: &Context<'_>) -> ApiResult<Option<Webhook>> {
        let viewer = ctx.auth().viewer()?;
        Ok(service::get(ctx.db()?, viewer, self.0.webhook_id)
            .await?
            .map(Webhook))
    }

    /// The event's cursor (as in `ticketEvents`); `redeliverWebhook` takes it.
    async fn event_cursor(&self) -> String {
        feed::cursor(self.0.seq)
    }

    /// The event's number.
    async fn seq(&self) -> i64 {
        self.0.seq
    }

    /// What happened.
    async fn event_kind(&self) -> EventKind {
        self.0.event_kind
    }

    /// The ticket the event is about, if the viewer may see it.
    async fn ticket(&self, ctx: &Context<'_>) -> ApiResult<Option<Ticket>> {
        let scope = ctx.scope().await?;
        let ticket = ctx
            .state()?
            .loader
            .load_one(TicketKey(self.0.ticket_id))
            .await?;
        Ok(ticket.filter(|t| scope.can_see(t)).map(Ticket))
    }

    /// The `webhook-id` header: the same on every attempt of one event.
    async fn message_id(&self) -> &str {
        &self.0.message_id
    }

    /// 1 for the first attempt at this event, 2 for the first retry, …
    async fn attempt(&self) -> i32 {
        self.0.attempt
    }

    /// How it went.
    async fn outcome(&self) -> DeliveryOutcome {
        self.0.outcome
    }

    /// The receiver's HTTP status, when it answered.
    async fn response_status(&self) -> Option<i32> {
        self.0.response_status
    }

    /// From sending to the end of the answer, in milliseconds.
    async fn latency_ms(&self) -> i64 {
        self.0.latency_ms
    }

    /// What went wrong: a status and the start of the answer, a timeout, a
    /// refused address, a connection error.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    /// When the attempt ended.
    async fn attempted_at(&self) -> DateTime<Utc> {
        self.0.attempted_at
    }
}

/// Registers a webhook endpoint.
#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// Where to POST deliveries: http or https, to an address the
    /// `ITSM_WEBHOOK_ALLOW` setting allows.
    pub url: String,
    /// Only these event kinds (default: all).
    #[graphql(default)]
    pub events: Vec<EventKind>,
    /// Only events in these queues (default: all).
    #[graphql(default)]
    pub queue_ids: Vec<ID>,
    /// Only events of these ticket kinds (default: all).
    #[graphql(default)]
    pub kinds: Vec<TicketKind>,
    /// Send work notes and other internal events too (default false).
    #[graphql(default)]
    pub include_internal: bool,
    /// What it is for.
    #[graphql(default)]
    pub description: String,
}

/// Changes a webhook endpoint; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateWebhookInput {
    /// The endpoint.
    pub id: ID,
    /// The version the edit is based on; a stale one gets `CONFLICT`.
    pub expected_version: Option<i32>,
    /// A new URL.
    pub url: Option<String>,
    /// New event kinds (empty: all).
    pub events: Option<Vec<EventKind>>,
    /// New queues (empty: all).
    pub queue_ids: Option<Vec<ID>>,
    /// New ticket kinds (empty: all).
    pub kinds: Option<Vec<TicketKind>>,
    /// Send internal events or not.
    pub include_internal: Option<bool>,
    /// A new description.
    pub description: Option<String>,
}

/// Names a webhook endpoint.
#[derive(InputObject)]
pub struct WebhookInput {
    /// The endpoint.
    pub id: ID,
}

/// Rewinds a webhook endpoint.
#[derive(InputObject)]
pub struct RedeliverWebhookInput {
    /// The endpoint.
    pub id: ID,
    /// Deliver again from this event on (inclusive): an `eventCursor` of
    /// `deliveries`, or a `cursor` of `ticketEvents`.
    pub from_cursor: String,
}

/// A webhook endpoint as a mutation left it.
#[derive(SimpleObject)]
pub struct WebhookPayload {
    /// The endpoint as it is now.
    pub webhook: Webhook,
}

impl From<webhooks::Model> for WebhookPayload {
    fn from(webhook: webhooks::Model) -> Self {
        Self {
            webhook: Webhook(webhook),
        }
    }
}

impl WebhookInput {
    /// The endpoint's id.
    fn id(&self) -> ApiResult<i64> {
        decode_id_of("Webhook", &self.id, "id")
    }
}

/// A webhook endpoint and its new signing secret.
#[derive(SimpleObject)]
pub struct WebhookSecretPayload {
    /// The endpoint as it is now.
    pub webhook: Webhook,
    /// The signing secret, `whsec_…`. Shown this once: store it now.
    pub secret: String,
}

/// A deleted webhook endpoint.
#[derive(SimpleObject)]
pub struct DeleteWebhookPayload {
    /// The id it had.
    pub deleted_webhook_id: ID,
}

fn queue_ids(ids: &[ID], field: &str) -> ApiResult<Vec<i64>> {
    ids.iter()
        .map(|id| decode_id_of("Queue", id, field))
        .collect()
}

/// Webhook queries (admins).
#[derive(Default)]
pub struct WebhookQuery;

/// Webhook queries (admins).
#[Object]
impl WebhookQuery {
    /// The webhook endpoints, oldest first (admins).
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Endpoints after this cursor.")] after: Option<String>,
        #[graphql(desc = "How many (at most 100).")] first: Option<i32>,
        #[graphql(desc = "The last endpoints, this many.")] last: Option<i32>,
        #[graphql(desc = "Endpoints before this cursor (with `last`).")] before: Option<String>,
    ) -> ApiResult<WebhookConnection> {
        let viewer = ctx.auth().viewer()?.clone();
        let db = ctx.db()?.clone();
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .page(BY_ID)?;
        let (rows, flags) = service::list(&db, &viewer, &page).await?;
        let rows = rows
            .into_iter()
            .map(|row| (encode_cursor(BY_ID, vec![row.id.into()]), Webhook(row)))
            .collect();
        let total = TotalCount::new(move || {
            let (db, viewer) = (db.clone(), viewer.clone());
            async move { service::count(&db, &viewer).await }
        });
        Ok(WebhookConnection::from_page(rows, flags, total))
    }

    /// The delivery attempts to one endpoint, oldest first (`last: 20` for
    /// the newest): status, latency, response code and error (admins).
    #[allow(clippy::too_many_arguments)] // the connection's arguments, as GraphQL names them
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] webhook_id: ID,
        #[graphql(desc = "Attempts after this cursor.")] after: Option<String>,
        #[graphql(desc = "How many (at most 100).")] first: Option<i32>,
        #[graphql(desc = "The newest attempts, this many (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Attempts before this cursor (with `last`).")] before: Option<String>,
    ) -> ApiResult<WebhookDeliveryConnection> {
        let id = decode_id_of("Webhook", &webhook_id, "webhookId")?;
        service::find(ctx.db()?, ctx.auth().viewer()?, id).await?;
        deliveries(
            ctx,
            id,
            PageArgs {
                first,
                after,
                last,
                before,
            },
        )
        .await
    }
}

/// Webhook mutations (admins).
#[derive(Default)]
pub struct WebhookMutation;

/// Webhook mutations (admins).
#[Object]
impl WebhookMutation {
    /// Registers an endpoint. It receives the events committed from now on,
    /// signed with the secret returned here (shown this once).
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateWebhookInput,
    ) -> ApiResult<WebhookSecretPayload> {
        let viewer = ctx.auth().viewer()?;
        let dispatcher = dispatcher(ctx)?;
        let fields = Fields {
            url: Some(input.url),
            description: Some(input.description),
            events: Some(input.events),
            queue_ids: Some(queue_ids(&input.queue_ids, "queueIds")?),
            kinds: Some(input.kinds),
            include_internal: Some(input.include_internal),
        };
        let made = service::create(ctx.db()?, viewer, dispatcher.policy(), fields).await?;
        dispatcher.wake();
        Ok(WebhookSecretPayload {
            webhook: Webhook(made.webhook),
            secret: made.secret.expose(),
        })
    }

    /// Changes an endpoint's URL, filter or description.
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateWebhookInput,
    ) -> ApiResult<WebhookPayload> {
        let viewer = ctx.auth().viewer()?;
        let id = decode_id_of("Webhook", &input.id, "id")?;
        let fields = Fields {
            url: input.url,
            description: input.description,
            events: input.events,
            queue_ids: input
                .queue_ids
                .as_deref()
                .map(|ids| queue_ids(ids, "queueIds"))
                .transpose()?,
            kinds: input.kinds,
            include_internal: input.include_internal,
        };
        let dispatcher = dispatcher(ctx)?;
        let webhook = service::update(
            ctx.db()?,
            viewer,
            dispatcher.policy(),
            id,
            input.expected_version,
            fields,
        )
        .await?;
        Ok(webhook.into())
    }

    /// Pauses an endpoint: its events wait, in order, until it is resumed.
    async fn pause_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: WebhookInput,
    ) -> ApiResult<WebhookPayload> {
        let webhook = service::pause(ctx.db()?, ctx.auth().viewer()?, input.id()?).await?;
        Ok(webhook.into())
    }

    /// Resumes a paused or failing endpoint from the first event it has not
    /// received.
    async fn resume_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: WebhookInput,
    ) -> ApiResult<WebhookPayload> {
        let webhook = service::resume(ctx.db()?, ctx.auth().viewer()?, input.id()?).await?;
        dispatcher(ctx)?.wake();
        Ok(webhook.into())
    }

    /// Gives an endpoint a new secret (shown this once). The old one keeps
    /// signing beside it for 24 hours, so the receiver can switch over.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: WebhookInput,
    ) -> ApiResult<WebhookSecretPayload> {
        let viewer = ctx.auth().viewer()?;
        let id = input.id()?;
        let made = service::rotate_secret(ctx.db()?, viewer, id).await?;
        Ok(WebhookSecretPayload {
            webhook: Webhook(made.webhook),
            secret: made.secret.expose(),
        })
    }

    /// Delivers again, in order, every event the endpoint takes from
    /// `fromCursor` on. Each keeps its `webhook-id`.
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: RedeliverWebhookInput,
    ) -> ApiResult<WebhookPayload> {
        let viewer = ctx.auth().viewer()?;
        let id = decode_id_of("Webhook", &input.id, "id")?;
        let from = after_seq(Some(&input.from_cursor))
            .map_err(|_| ApiError::bad_input("fromCursor", "not an event's cursor"))?
            .unwrap_or_default();
        let webhook = service::redeliver(ctx.db()?, viewer, id, from).await?;
        dispatcher(ctx)?.wake();
        Ok(webhook.into())
    }

    /// Deletes an endpoint and its delivery record.
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: WebhookInput,
    ) -> ApiResult<DeleteWebhookPayload> {
        let viewer = ctx.auth().viewer()?;
        let id = input.id()?;
        let deleted = service::delete(ctx.db()?, viewer, id).await?;
        Ok(DeleteWebhookPayload {
            deleted_webhook_id: encode_id("Webhook", deleted.id),
        })
    }
}
