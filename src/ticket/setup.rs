//! What opening a ticket reads besides its own input: the default queue, the
//! enabled routing rules and the SLA policies. Every creation needs them and
//! they change rarely, through the API, which bumps the setup generation
//! (other replicas hear of it through `NOTIFY`). So they are read once per
//! generation and kept ([`crate::db::SetupMemo`]). The reading is the
//! server's own work, not the request's that happens to find it stale: it
//! counts as background work, outside the request's statement budget.

use std::{collections::HashMap, sync::Arc};

use chrono::Duration as Span;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::rules::sla::Targets;
use crate::{
    db::Db,
    entity::{queues, routing_rules, sla_policies},
    error::{ApiError, ApiResult},
    routing::{rules::Conditions, service::conditions_of},
    vocabulary::Priority,
};

/// The setup as read at one generation.
#[derive(Debug)]
pub struct Setup {
    /// Where tickets go that name no queue (none only on a database nobody
    /// set up).
    pub default_queue: Option<queues::Model>,
    /// The enabled routing rules in their order, with their conditions.
    pub rules: Vec<(routing_rules::Model, Conditions)>,
    targets: HashMap<Priority, Targets>,
}

impl Setup {
    /// The queue for a ticket that names none.
    pub fn default_queue(&self) -> ApiResult<queues::Model> {
        self.default_queue
            .clone()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no default queue is configured")))
    }

    /// The SLA targets of `priority`.
    pub fn targets(&self, priority: Priority) -> ApiResult<Targets> {
        self.targets
            .get(&priority)
            .copied()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no SLA policy for {priority:?}")))
    }
}

/// The current setup: remembered, or read now (three statements).
pub async fn current(db: &Db) -> ApiResult<Arc<Setup>> {
    let signals = db.signals();
    // Read before the setup: a change committed while it loads leaves this
    // entry stale at birth, so it is never used.
    let generation = signals.setup_generation();
    if let Some(setup) = signals.setup.get::<Setup>(generation) {
        return Ok(setup);
    }
    let background = db.background();
    let reader = background.reader();
    let default_queue = queues::Entity::find()
        .filter(queues::Column::IsDefault.eq(true))
        .one(reader)
        .await?;
    let rules = routing_rules::Entity::find()
        .filter(routing_rules::Column::Enabled.eq(true))
        .order_by_asc(routing_rules::Column::Position)
        .order_by_asc(routing_rules::Column::Id)
        .all(reader)
        .await?
        .into_iter()
        .map(|rule| {
            let conditions = conditions_of(&rule);
            (rule, conditions)
        })
        .collect();
    let targets = sla_policies::Entity::find()
        .all(reader)
        .await?
        .into_iter()
        .map(|policy| {
            let targets = Targets {
                response: Span::minutes(policy.response_minutes.into()),
                resolution: Span::minutes(policy.resolution_minutes.into()),
            };
            (policy.priority, targets)
        })
        .collect();
    let setup = Arc::new(Setup {
        default_queue,
        rules,
        targets,
    });
    signals.setup.put(generation, setup.clone());
    Ok(setup)
}
