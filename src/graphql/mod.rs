//! Schema assembly, limits, error mapping and Relay helpers.
//!
//! Domains contribute their query, mutation and subscription parts; the roots
//! here merge them. Resolvers reach the database and the viewer through
//! [`ContextExt`].

pub mod connection;
pub mod cost;
mod documents;
pub mod errors;
mod heartbeat;
pub mod input;
pub mod loaders;
pub mod multiplex;
mod observe;
pub mod persisted;
pub mod rate;
pub mod relay;
pub mod shape;

use async_graphql::{Context, MergedObject, MergedSubscription, Schema, SchemaBuilder};

pub use errors::{Limits, RequestId};
use loaders::{RequestState, RequestStateFactory};

use crate::{
    access::Scope,
    auth::Auth,
    catalog,
    db::{Db, RequestBudget},
    error::ApiError,
    events,
    events::bus::EventBus,
    lifecycle, queue, routing, team, ticket, user, webhooks,
};

/// The service's schema type.
pub type ItsmSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Every query field, merged from the domains.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    user::resolvers::UserQuery,
    relay::NodeQuery,
    ticket::resolvers::TicketQuery,
    queue::resolvers::QueueQuery,
    team::resolvers::TeamQuery,
    events::resolvers::EventQuery,
    lifecycle::resolvers::LifecycleQuery,
    catalog::resolvers::CatalogQuery,
    ticket::resolvers::FulfilmentQuery,
    routing::resolvers::RoutingQuery,
    webhooks::resolvers::WebhookQuery,
);

/// Every mutation, merged from the domains.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    ticket::resolvers::TicketMutation,
    queue::resolvers::QueueMutation,
    team::resolvers::TeamMutation,
    lifecycle::resolvers::LifecycleMutation,
    catalog::resolvers::CatalogMutation,
    ticket::resolvers::FulfilmentMutation,
    routing::resolvers::RoutingMutation,
    webhooks::resolvers::WebhookMutation,
    crate::attachments::resolvers::AttachmentMutation,
);

/// Every subscription field, merged from the domains.
#[derive(MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(
    events::resolvers::EventSubscription,
    heartbeat::HeartbeatSubscription,
);

fn builder() -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
}

/// What every request's resolvers and extensions share.
pub struct Shared {
    /// The database.
    pub db: Db,
    /// Live events.
    pub bus: EventBus,
    /// Registered persisted queries.
    pub persisted: std::sync::Arc<persisted::PersistedStore>,
    /// The metrics registry.
    pub metrics: crate::metrics::Metrics,
    /// The webhook sender.
    pub dispatcher: webhooks::Dispatcher,
    /// The attachment store.
    pub files: crate::attachments::Files,
}

/// Builds the schema the server executes, with its limits and data.
pub fn build_schema(
    limits: Limits,
    budget: RequestBudget,
    shared: Shared,
    development: bool,
) -> ItsmSchema {
    let Shared {
        db,
        bus,
        persisted,
        metrics,
        dispatcher,
        files,
    } = shared;
    // Priced from the schema's own SDL: every list field is priced by construction.
    let types = std::sync::Arc::new(cost::TypeMap::from_sdl(&sdl()));
    let mut builder = builder()
        .extension(errors::RequestPolicy::new(limits, types))
        // Inside the policy (its errors get request ids), before the parse
        // (stored texts pass every limit a sent one does).
        .extension(persisted::PersistedQueryExtension(persisted))
        .extension(observe::OperationMetrics(metrics))
        .extension(RequestStateFactory::new(db.clone(), budget))
        // Innermost: only the parse itself is remembered.
        .extension(documents::ParsedDocuments::default())
        .data(db)
        .data(bus)
        .data(dispatcher)
        .data(files);
    if !development {
        builder = builder.disable_suggestions();
    }
    builder.finish()
}

/// The schema in SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// What resolvers read from the context.
pub trait ContextExt {
    /// Who is asking. Missing data counts as anonymous, so a forgotten
    /// `.data(auth)` fails closed.
    fn auth(&self) -> &Auth;
    /// The database.
    fn db(&self) -> Result<&Db, ApiError>;
    /// This request's loaders and caches.
    fn state(&self) -> Result<&RequestState, ApiError>;
    /// A handle on this request's state that a stream may keep.
    fn state_handle(&self) -> Result<std::sync::Arc<RequestState>, ApiError>;
    /// The viewer's reach over tickets; `UNAUTHENTICATED` when anonymous.
    fn scope(&self) -> impl std::future::Future<Output = Result<&Scope, ApiError>> + Send;
}

static ANONYMOUS: Auth = Auth::Anonymous;

impl ContextExt for Context<'_> {
    fn auth(&self) -> &Auth {
        self.data_opt::<Auth>().unwrap_or(&ANONYMOUS)
    }

    fn db(&self) -> Result<&Db, ApiError> {
        // The request's own handle, metered by its budget.
        if let Some(state) = self.data_opt::<std::sync::Arc<RequestState>>() {
            return Ok(state.db());
        }
        self.data_opt::<Db>()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("schema built without a database")))
    }

    fn state(&self) -> Result<&RequestState, ApiError> {
        self.data_opt::<std::sync::Arc<RequestState>>()
            .map(std::convert::AsRef::as_ref)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("request without state")))
    }

    fn state_handle(&self) -> Result<std::sync::Arc<RequestState>, ApiError> {
        self.data_opt::<std::sync::Arc<RequestState>>()
            .cloned()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("request without state")))
    }

    async fn scope(&self) -> Result<&Scope, ApiError> {
        let auth = self.auth();
        self.state()?.scope(auth).await
    }
}
