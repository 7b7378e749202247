//! GraphQL for routing rules (managers and admins).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{
    rules::{Actions, Conditions},
    service::{self, RuleFields},
};
use crate::{
    catalog::resolvers::CatalogItem,
    entity::routing_rules,
    error::ApiResult,
    graphql::{
        ContextExt,
        loaders::{CatalogItemKey, QueueKey, ServiceKey, UserKey},
        relay::{decode_id_of, encode_id},
    },
    lifecycle::resolvers::Service,
    queue::resolvers::Queue,
    user::resolvers::User,
    vocabulary::{Level, TicketKind},
};

/// Automation applied to new tickets: the first enabled rule, in order,
/// whose conditions match sets the queue, assignee, impact or urgency.
pub struct RoutingRule(pub routing_rules::Model);

/// Automation applied to new tickets: the first enabled rule, in order,
/// whose conditions match sets the queue, assignee, impact or urgency.
#[Object]
impl RoutingRule {
    /// The opaque id.
    pub async fn id(&self) -> ID {
        encode_id("RoutingRule", self.0.id)
    }

    /// A name people recognise; recorded in the history of the tickets it routes.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Its place in the order, from 1.
    async fn position(&self) -> i32 {
        self.0.position
    }

    /// Applied or not.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// What it matches.
    async fn conditions(&self) -> RuleConditions {
        RuleConditions(service::conditions_of(&self.0))
    }

    /// What it does.
    async fn actions(&self) -> RuleActions {
        RuleActions(service::actions_of(&self.0))
    }

    /// Changes with every edit; send it back as `expectedVersion`.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// What a rule matches: every given list must contain the ticket's value.
pub struct RuleConditions(Conditions);

/// What a rule matches: every given list must contain the ticket's value.
#[Object]
impl RuleConditions {
    /// Ticket kinds.
    async fn kinds(&self) -> &[TicketKind] {
        &self.0.kinds
    }

    /// Services the ticket concerns.
    async fn services(&self, ctx: &Context<'_>) -> ApiResult<Vec<Service>> {
        let found = ctx
            .state()?
            .loader
            .load_many(self.0.service_ids.iter().map(|id| ServiceKey(*id)))
            .await?;
        Ok(self
            .0
            .service_ids
            .iter()
            .filter_map(|id| found.get(&ServiceKey(*id)).cloned().map(Service))
            .collect())
    }

    /// Catalog items requested.
    async fn catalog_items(&self, ctx: &Context<'_>) -> ApiResult<Vec<CatalogItem>> {
        let found = ctx
            .state()?
            .loader
            .load_many(self.0.catalog_item_ids.iter().map(|id| CatalogItemKey(*id)))
            .await?;
        Ok(self
            .0
            .catalog_item_ids
            .iter()
            .filter_map(|id| found.get(&CatalogItemKey(*id)).cloned().map(CatalogItem))
            .collect())
    }

    /// Catalog categories of the item requested.
    async fn categories(&self) -> &[String] {
        &self.0.categories
    }

    /// Impacts.
    async fn impacts(&self) -> &[Level] {
        &self.0.impacts
    }

    /// Urgencies.
    async fn urgencies(&self) -> &[Level] {
        &self.0.urgencies
    }

    /// Words in the title or description (any of them, ignoring case).
    async fn keywords(&self) -> &[String] {
        &self.0.keywords
    }
}

/// What a matching rule does.
pub struct RuleActions(Actions);

/// What a matching rule does.
#[Object]
impl RuleActions {
    /// The queue it puts tickets in.
    async fn queue(&self, ctx: &Context<'_>) -> ApiResult<Option<Queue>> {
        let Some(id) = self.0.queue_id else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(QueueKey(id)).await?.map(Queue))
    }

    /// The agent it assigns them to.
    async fn assignee(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.assignee_id else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(UserKey(id)).await?.map(User))
    }

    /// The impact it sets.
    async fn impact(&self) -> Option<Level> {
        self.0.impact
    }

    /// The urgency it sets.
    async fn urgency(&self) -> Option<Level> {
        self.0.urgency
    }
}

/// What a rule matches; absent lists match everything.
#[derive(InputObject, Default)]
pub struct RuleConditionsInput {
    /// Ticket kinds.
    #[graphql(default)]
    pub kinds: Vec<TicketKind>,
    /// Services the ticket concerns.
    #[graphql(default)]
    pub service_ids: Vec<ID>,
    /// Catalog items requested.
    #[graphql(default)]
    pub catalog_item_ids: Vec<ID>,
    /// Catalog categories of the item requested.
    #[graphql(default)]
    pub categories: Vec<String>,
    /// Impacts.
    #[graphql(default)]
    pub impacts: Vec<Level>,
    /// Urgencies.
    #[graphql(default)]
    pub urgencies: Vec<Level>,
    /// Words in the title or description.
    #[graphql(default)]
    pub keywords: Vec<String>,
}

impl RuleConditionsInput {
    fn decode(self) -> ApiResult<Conditions> {
        Ok(Conditions {
            kinds: self.kinds,
            service_ids: self
                .service_ids
                .iter()
                .map(|id| decode_id_of("Service", id, "conditions.serviceIds"))
                .collect::<ApiResult<_>>()?,
            catalog_item_ids: self
                .catalog_item_ids
                .iter()
                .map(|id| decode_id_of("CatalogItem", id, "conditions.catalogItemIds"))
                .collect::<ApiResult<_>>()?,
            categories: self.categories,
            impacts: self.impacts,
            urgencies: self.urgencies,
            keywords: self.keywords,
        })
    }
}

/// What a rule does; give at least one.
#[derive(InputObject, Default)]
pub struct RuleActionsInput {
    /// Put the ticket in this queue.
    pub queue_id: Option<ID>,
    /// Assign it to this agent.
    pub assignee_id: Option<ID>,
    /// Set its impact.
    pub impact: Option<Level>,
    /// Set its urgency.
    pub urgency: Option<Level>,
}

impl RuleActionsInput {
    fn decode(self) -> ApiResult<Actions> {
        Ok(Actions {
            queue_id: self
                .queue_id
                .map(|id| decode_id_of("Queue", &id, "actions.queueId"))
                .transpose()?,
            assignee_id: self
                .assignee_id
                .map(|id| decode_id_of("User", &id, "actions.assigneeId"))
                .transpose()?,
            impact: self.impact,
            urgency: self.urgency,
        })
    }
}

/// Adds a routing rule at the end of the order.
#[derive(InputObject)]
pub struct CreateRoutingRuleInput {
    /// A name people recognise.
    pub name: String,
    /// What it matches.
    #[graphql(default)]
    pub conditions: RuleConditionsInput,
    /// What it does.
    pub actions: RuleActionsInput,
    /// Applied from now on (default true).
    pub enabled: Option<bool>,
}

/// Changes a routing rule; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateRoutingRuleInput {
    /// The rule.
    pub id: ID,
    /// The version the edit is based on; a stale one gets `CONFLICT`.
    pub expected_version: i32,
    /// A new name.
    pub name: Option<String>,
    /// New conditions.
    pub conditions: Option<RuleConditionsInput>,
    /// New actions.
    pub actions: Option<RuleActionsInput>,
    /// Turn it on or off.
    pub enabled: Option<bool>,
}

/// Puts the rules in a new order.
#[derive(InputObject)]
pub struct ReorderRoutingRulesInput {
    /// Every rule, once, in the new order.
    pub ids: Vec<ID>,
}

/// The rule a mutation created or changed.
#[derive(SimpleObject)]
pub struct RoutingRulePayload {
    /// The rule as it is now.
    pub rule: RoutingRule,
}

/// The rules in their new order.
#[derive(SimpleObject)]
pub struct RoutingRulesPayload {
    /// Every rule, in order.
    pub rules: Vec<RoutingRule>,
}

/// Routing queries.
#[derive(Default)]
pub struct RoutingQuery;

/// Routing queries.
#[Object]
impl RoutingQuery {
    /// The routing rules, in the order they are tried (managers and admins).
    async fn routing_rules(&self, ctx: &Context<'_>) -> ApiResult<Vec<RoutingRule>> {
        let viewer = ctx.auth().viewer()?;
        Ok(service::list(ctx.db()?, viewer)
            .await?
            .into_iter()
            .map(RoutingRule)
            .collect())
    }
}

/// Routing mutations (managers and admins).
#[derive(Default)]
pub struct RoutingMutation;

/// Routing mutations (managers and admins).
#[Object]
impl RoutingMutation {
    /// Adds a rule at the end of the order.
    async fn create_routing_rule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateRoutingRuleInput,
    ) -> ApiResult<RoutingRulePayload> {
        let viewer = ctx.auth().viewer()?;
        let fields = RuleFields {
            name: Some(input.name),
            conditions: Some(input.conditions.decode()?),
            actions: Some(input.actions.decode()?),
            enabled: input.enabled,
        };
        let rule = service::create(ctx.db()?, viewer, fields).await?;
        Ok(RoutingRulePayload {
            rule: RoutingRule(rule),
        })
    }

    /// Changes a rule, or turns it off with `enabled: false`.
    async fn update_routing_rule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateRoutingRuleInput,
    ) -> ApiResult<RoutingRulePayload> {
        let viewer = ctx.auth().viewer()?;
        let id = decode_id_of("RoutingRule", &input.id, "id")?;
        let fields = RuleFields {
            name: input.name,
            conditions: input
                .conditions
                .map(RuleConditionsInput::decode)
                .transpose()?,
            actions: input.actions.map(RuleActionsInput::decode).transpose()?,
            enabled: input.enabled,
        };
        let rule = service::update(ctx.db()?, viewer, id, input.expected_version, fields).await?;
        Ok(RoutingRulePayload {
            rule: RoutingRule(rule),
        })
    }

    /// Puts the rules in a new order; every rule must be named once.
    async fn reorder_routing_rules(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: ReorderRoutingRulesInput,
    ) -> ApiResult<RoutingRulesPayload> {
        let viewer = ctx.auth().viewer()?;
        let ids: Vec<i64> = input
            .ids
            .iter()
            .map(|id| decode_id_of("RoutingRule", id, "ids"))
            .collect::<ApiResult<_>>()?;
        let rules = service::reorder(ctx.db()?, viewer, &ids).await?;
        Ok(RoutingRulesPayload {
            rules: rules.into_iter().map(RoutingRule).collect(),
        })
    }
}
