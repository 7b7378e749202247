//! GraphQL for the service portfolio and the ITIL lifecycle.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::portfolio::{self, NewService, ServiceEdit, ServiceFilter};
use crate::{
    connection,
    entity::{service_stage_moves, services},
    error::{ApiError, ApiResult},
    graphql::{
        ContextExt,
        connection::TotalCount,
        loaders::{TeamKey, UserKey},
        relay::{decode_id_of, encode_id},
    },
    paging::{BY_NAME, name_cursor},
    paging::{PageArgs, encode_cursor},
    team::resolvers::Team,
    ticket::resolvers::{TicketConnection, TicketFilterInput, TicketOrderInput, ticket_page},
    user::resolvers::User,
    vocabulary::{ServiceStatus, Stage, TicketKind},
};

connection!(ServiceConnection, ServiceEdge, Service, "services");
connection!(
    ServiceStageMoveConnection,
    ServiceStageMoveEdge,
    ServiceStageMove,
    "stage moves"
);

/// A stage of the ITIL service lifecycle.
pub struct LifecycleStage(pub Stage);

/// A stage of the ITIL service lifecycle.
#[Object]
impl LifecycleStage {
    /// The stage.
    async fn stage(&self) -> Stage {
        self.0
    }

    /// Its display name.
    async fn name(&self) -> &'static str {
        self.0.name()
    }

    /// What happens in it.
    async fn description(&self) -> &'static str {
        self.0.description()
    }

    /// Its place in the lifecycle, from 1.
    async fn position(&self) -> i32 {
        self.0.position()
    }

    /// The stages a service may move to from this one.
    async fn next_stages(&self) -> Vec<Stage> {
        self.0.next().to_vec()
    }

    /// The ticket kinds whose work belongs to this stage.
    async fn ticket_kinds(&self) -> Vec<TicketKind> {
        self.0.ticket_kinds().to_vec()
    }

    /// The services in this stage that the viewer may see, by name.
    async fn services(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only services with this status.")] status: Option<ServiceStatus>,
        #[graphql(desc = "Services after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
    ) -> ApiResult<ServiceConnection> {
        let filter = ServiceFilter {
            stage: Some(self.0),
            status,
            search: None,
        };
        service_page(
            ctx,
            filter,
            PageArgs {
                first,
                after,
                last: None,
                before: None,
            },
        )
        .await
    }
}

async fn service_page(
    ctx: &Context<'_>,
    filter: ServiceFilter,
    args: PageArgs,
) -> ApiResult<ServiceConnection> {
    let viewer = ctx.auth().viewer()?.clone();
    let db = ctx.db()?.clone();
    let page = args.page(BY_NAME)?;
    let (rows, flags) = portfolio::list(&db, &viewer, &filter, &page).await?;
    let rows = rows
        .into_iter()
        .map(|s| (name_cursor(&s.name, s.id), Service(s)))
        .collect();
    let total = TotalCount::new(move || {
        let (db, viewer, filter) = (db.clone(), viewer.clone(), filter.clone());
        async move { portfolio::count(&db, &viewer, &filter).await }
    });
    Ok(ServiceConnection::from_page(rows, flags, total))
}

/// A business or technical service in the portfolio.
pub struct Service(pub services::Model);

/// A business or technical service in the portfolio.
#[Object]
impl Service {
    /// The opaque global id.
    pub async fn id(&self) -> ID {
        encode_id("Service", self.0.id)
    }

    /// The unique key, such as `LAPTOPS`.
    async fn key(&self) -> &str {
        &self.0.key
    }

    /// The display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the service is.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The team that owns it.
    async fn owner_team(&self, ctx: &Context<'_>) -> ApiResult<Team> {
        let team = ctx
            .state()?
            .loader
            .load_one(TeamKey(self.0.owner_team_id))
            .await?;
        team.map(Team)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("owner team missing")))
    }

    /// Its current lifecycle stage.
    async fn stage(&self) -> Stage {
        self.0.stage
    }

    /// Its current lifecycle stage, in full.
    async fn lifecycle_stage(&self) -> LifecycleStage {
        LifecycleStage(self.0.stage)
    }

    /// Whether it is offered.
    async fn status(&self) -> ServiceStatus {
        self.0.status
    }

    /// In operation and active: requestable through the catalog.
    async fn live(&self) -> bool {
        portfolio::is_live(&self.0)
    }

    /// Changes with every edit; send it back as `expectedVersion`.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When it entered the portfolio.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Every move through the lifecycle, oldest first.
    async fn stage_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Moves after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
    ) -> ApiResult<ServiceStageMoveConnection> {
        ctx.auth().viewer()?;
        let db = ctx.db()?.clone();
        let page = PageArgs {
            first,
            after,
            last: None,
            before: None,
        }
        .page("ID")?;
        let (rows, flags) = portfolio::history(&db, self.0.id, &page).await?;
        let rows = rows
            .into_iter()
            .map(|m| (encode_cursor("ID", vec![m.id.into()]), ServiceStageMove(m)))
            .collect();
        let service_id = self.0.id;
        let total = TotalCount::new(move || {
            let db = db.clone();
            async move { portfolio::count_history(&db, service_id).await }
        });
        Ok(ServiceStageMoveConnection::from_page(rows, flags, total))
    }

    /// The service's catalog items that the viewer may see, by name.
    async fn catalog_items(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Items after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
    ) -> ApiResult<crate::catalog::resolvers::CatalogItemConnection> {
        let filter = crate::catalog::service::ItemFilter {
            service_id: Some(self.0.id),
            ..Default::default()
        };
        crate::catalog::resolvers::item_page(
            ctx,
            filter,
            PageArgs {
                first,
                after,
                last: None,
                before: None,
            },
        )
        .await
    }

    /// The open tickets about this service that the viewer may see, by importance.
    #[allow(clippy::too_many_arguments)]
    async fn open_tickets(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "More conditions.")] filter: Option<TicketFilterInput>,
        #[graphql(desc = "In what order (importance by default).")] order_by: Option<
            TicketOrderInput,
        >,
        #[graphql(desc = "Tickets after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
    ) -> ApiResult<TicketConnection> {
        let mut filter = filter.unwrap_or_default();
        filter.service_ids = Some(vec![encode_id("Service", self.0.id)]);
        filter.open = Some(true);
        ticket_page(
            ctx,
            None,
            Some(filter),
            order_by,
            PageArgs {
                first,
                after,
                last: None,
                before: None,
            },
        )
        .await
    }
}

/// One move of a service through the lifecycle.
pub struct ServiceStageMove(pub service_stage_moves::Model);

/// One move of a service through the lifecycle.
#[Object]
impl ServiceStageMove {
    /// The stage it left (null when the service entered the portfolio).
    async fn from_stage(&self) -> Option<Stage> {
        self.0.from_stage
    }

    /// The stage it entered.
    async fn to_stage(&self) -> Stage {
        self.0.to_stage
    }

    /// Who moved it.
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.actor_id else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(UserKey(id)).await?.map(User))
    }

    /// Why.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }

    /// When.
    async fn moved_at(&self) -> DateTime<Utc> {
        self.0.moved_at
    }
}

/// Portfolio queries.
#[derive(Default)]
pub struct LifecycleQuery;

/// Portfolio queries.
#[Object]
impl LifecycleQuery {
    /// The five ITIL lifecycle stages, in order.
    async fn lifecycle_stages(&self) -> Vec<LifecycleStage> {
        Stage::ALL.into_iter().map(LifecycleStage).collect()
    }

    /// Services the viewer may see, by name (requesters see live ones only).
    async fn services(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only services in this stage.")] stage: Option<Stage>,
        #[graphql(desc = "Only services with this status.")] status: Option<ServiceStatus>,
        #[graphql(desc = "Text in the key, name or description.")] search: Option<String>,
        #[graphql(desc = "Services after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
    ) -> ApiResult<ServiceConnection> {
        let filter = ServiceFilter {
            stage,
            status,
            search,
        };
        service_page(
            ctx,
            filter,
            PageArgs {
                first,
                after,
                last: None,
                before: None,
            },
        )
        .await
    }

    /// One service; null when it does not exist or the viewer may not see it.
    async fn service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The service's global id.")] id: ID,
    ) -> ApiResult<Option<Service>> {
        let viewer = ctx.auth().viewer()?;
        let id = decode_id_of("Service", &id, "id")?;
        Ok(portfolio::get(ctx.db()?, viewer, id).await?.map(Service))
    }
}

/// Adds a service to the portfolio.
#[derive(InputObject)]
pub struct CreateServiceInput {
    /// A unique key: 1 to 50 letters, digits, `-` or `_` (stored upper-case).
    pub key: String,
    /// The display name.
    pub name: String,
    /// What the service is.
    pub description: Option<String>,
    /// The team that owns it.
    pub owner_team_id: ID,
    /// Where it starts; `STRATEGY` when absent.
    pub stage: Option<Stage>,
}

/// Edits a service; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateServiceInput {
    /// The service.
    pub id: ID,
    /// The version the edit is based on; a stale one gets `CONFLICT`.
    pub expected_version: i32,
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new owning team.
    pub owner_team_id: Option<ID>,
}

/// Moves a service to another lifecycle stage.
#[derive(InputObject)]
pub struct MoveServiceStageInput {
    /// The service.
    pub id: ID,
    /// The stage to move to; see `lifecycleStage.nextStages`.
    pub to: Stage,
    /// Why, for the stage history.
    pub note: Option<String>,
    /// The version the move is based on; a stale one gets `CONFLICT`.
    pub expected_version: Option<i32>,
}

/// Retires a service.
#[derive(InputObject)]
pub struct RetireServiceInput {
    /// The service.
    pub id: ID,
    /// Why, for the stage history.
    pub note: Option<String>,
    /// The version the change is based on; a stale one gets `CONFLICT`.
    pub expected_version: Option<i32>,
}

/// The service a mutation created or changed.
#[derive(SimpleObject)]
pub struct ServicePayload {
    /// The service as it is now.
    pub service: Service,
}

/// Portfolio mutations (managers and admins).
#[derive(Default)]
pub struct LifecycleMutation;

/// Portfolio mutations (managers and admins).
#[Object]
impl LifecycleMutation {
    /// Adds a service to the portfolio.
    async fn create_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateServiceInput,
    ) -> ApiResult<ServicePayload> {
        let viewer = ctx.auth().viewer()?;
        let new = NewService {
            key: input.key,
            name: input.name,
            description: input.description,
            owner_team_id: decode_id_of("Team", &input.owner_team_id, "ownerTeamId")?,
            stage: input.stage,
        };
        let service = portfolio::create(ctx.db()?, viewer, new).await?;
        Ok(ServicePayload {
            service: Service(service),
        })
    }

    /// Edits a service's name, description or owner.
    async fn update_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateServiceInput,
    ) -> ApiResult<ServicePayload> {
        let viewer = ctx.auth().viewer()?;
        let id = decode_id_of("Service", &input.id, "id")?;
        let edit = ServiceEdit {
            name: input.name,
            description: input.description,
            owner_team_id: input
                .owner_team_id
                .map(|id| decode_id_of("Team", &id, "ownerTeamId"))
                .transpose()?,
        };
        let service =
            portfolio::update(ctx.db()?, viewer, id, input.expected_version, edit).await?;
        Ok(ServicePayload {
            service: Service(service),
        })
    }

    /// Moves a service to another stage; a move the lifecycle does not allow
    /// gets `BAD_USER_INPUT` naming the allowed ones.
    async fn move_service_stage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: MoveServiceStageInput,
    ) -> ApiResult<ServicePayload> {
        let viewer = ctx.auth().viewer()?;
        let id = decode_id_of("Service", &input.id, "id")?;
        let service = portfolio::move_stage(
            ctx.db()?,
            viewer,
            id,
            input.to,
            input.note.as_deref(),
            input.expected_version,
        )
        .await?;
        Ok(ServicePayload {
            service: Service(service),
        })
    }

    /// Retires a service: it leaves the catalog for good.
    async fn retire_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: RetireServiceInput,
    ) -> ApiResult<ServicePayload> {
        let viewer = ctx.auth().viewer()?;
        let id = decode_id_of("Service", &input.id, "id")?;
        let service = portfolio::retire(
            ctx.db()?,
            viewer,
            id,
            input.note.as_deref(),
            input.expected_version,
        )
        .await?;
        Ok(ServicePayload {
            service: Service(service),
        })
    }
}
