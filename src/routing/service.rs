//! The routing service: managing rules, and applying them to new tickets.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::rules::{Actions, Conditions};
use crate::paging::CountRows;
use crate::{
    auth::{Role, Viewer, require},
    clock::now,
    db::{Db, Txn},
    entity::{catalog_items, queues, routing_rules, services, users},
    error::{ApiError, ApiResult},
};

/// A rule's fields; on update `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct RuleFields {
    /// A name people recognise.
    pub name: Option<String>,
    /// What it matches.
    pub conditions: Option<Conditions>,
    /// What it does.
    pub actions: Option<Actions>,
    /// Applied or not.
    pub enabled: Option<bool>,
}

/// The rules in order (managers and admins).
#[tracing::instrument(skip_all, level = "debug", fields(viewer = viewer.user.id))]
pub async fn list(db: &Db, viewer: &Viewer) -> ApiResult<Vec<routing_rules::Model>> {
    require(viewer, Role::Manager, "see routing rules")?;
    Ok(routing_rules::Entity::find()
        .order_by_asc(routing_rules::Column::Position)
        .order_by_asc(routing_rules::Column::Id)
        .all(db.reader())
        .await?)
}

/// One rule by id, for managers and admins; `None` for anyone else, as for
/// a rule that does not exist.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = viewer.user.id, rule = id))]
pub async fn get(db: &Db, viewer: &Viewer, id: i64) -> ApiResult<Option<routing_rules::Model>> {
    if require(viewer, Role::Manager, "see routing rules").is_err() {
        return Ok(None);
    }
    Ok(routing_rules::Entity::find_by_id(id)
        .one(db.reader())
        .await?)
}

/// A rule's conditions.
pub fn conditions_of(rule: &routing_rules::Model) -> Conditions {
    serde_json::from_str(&rule.conditions).unwrap_or_default()
}

/// A rule's actions.
pub fn actions_of(rule: &routing_rules::Model) -> Actions {
    serde_json::from_str(&rule.actions).unwrap_or_default()
}

async fn check(txn: &Txn, fields: &RuleFields) -> ApiResult<()> {
    if let Some(name) = &fields.name
        && (name.trim().is_empty() || name.chars().count() > 200)
    {
        return Err(ApiError::bad_input(
            "name",
            "a name holds 1 to 200 characters",
        ));
    }
    if let Some(actions) = &fields.actions {
        if actions.is_empty() {
            return Err(ApiError::bad_input(
                "actions",
                "a rule sets a queue, an assignee, an impact or an urgency",
            ));
        }
        if let Some(id) = actions.queue_id
            && queues::Entity::find_by_id(id).one(txn).await?.is_none()
        {
            return Err(ApiError::bad_input("actions.queueId", "no such queue"));
        }
        if let Some(id) = actions.assignee_id {
            let agent = users::Entity::find_by_id(id)
                .one(txn)
                .await?
                .is_some_and(|u| u.role >= Role::Agent && u.role != Role::Integration);
            if !agent {
                return Err(ApiError::bad_input(
                    "actions.assigneeId",
                    "tickets are assigned to agents, managers or admins",
                ));
            }
        }
    }
    if let Some(conditions) = &fields.conditions {
        if !conditions.service_ids.is_empty() {
            let found = services::Entity::find()
                .filter(services::Column::Id.is_in(conditions.service_ids.clone()))
                .count_rows(txn)
                .await?;
            if found != distinct(&conditions.service_ids) {
                return Err(ApiError::bad_input(
                    "conditions.serviceIds",
                    "no such service",
                ));
            }
        }
        if !conditions.catalog_item_ids.is_empty() {
            let found = catalog_items::Entity::find()
                .filter(catalog_items::Column::Id.is_in(conditions.catalog_item_ids.clone()))
                .count_rows(txn)
                .await?;
            if found != distinct(&conditions.catalog_item_ids) {
                return Err(ApiError::bad_input(
                    "conditions.catalogItemIds",
                    "no such catalog item",
                ));
            }
        }
        if conditions
            .keywords
            .iter()
            .any(|k| k.trim().is_empty() || k.chars().count() > 100)
        {
            return Err(ApiError::bad_input(
                "conditions.keywords",
                "keywords hold 1 to 100 characters",
            ));
        }
    }
    Ok(())
}

fn distinct(ids: &[i64]) -> u64 {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids.len() as u64
}

fn json<T: serde::Serialize>(value: &T) -> ApiResult<String> {
    serde_json::to_string(value).map_err(ApiError::internal)
}

/// Adds a rule at the end of the order (managers and admins).
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id))]
pub async fn create(
    db: &Db,
    viewer: &Viewer,
    fields: RuleFields,
) -> ApiResult<routing_rules::Model> {
    require(viewer, Role::Manager, "manage routing rules")?;
    if fields.name.is_none() {
        return Err(ApiError::bad_input("name", "a rule needs a name"));
    }
    if fields.actions.is_none() {
        return Err(ApiError::bad_input("actions", "a rule needs actions"));
    }
    let txn = db.begin().await?;
    check(&txn, &fields).await?;
    let last: Option<Option<i32>> = routing_rules::Entity::find()
        .select_only()
        .column_as(routing_rules::Column::Position.max(), "last")
        .into_tuple()
        .one(&txn)
        .await?;
    let at = now();
    let rule = routing_rules::Entity::insert(routing_rules::ActiveModel {
        id: NotSet,
        name: Set(fields.name.unwrap_or_default().trim().to_owned()),
        position: Set(last.flatten().unwrap_or(0) + 1),
        enabled: Set(fields.enabled.unwrap_or(true)),
        conditions: Set(json(&fields.conditions.unwrap_or_default())?),
        actions: Set(json(&fields.actions.unwrap_or_default())?),
        version: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
    })
    .exec_with_returning(&txn)
    .await?;
    txn.commit().await?;
    db.setup_changed().await?;
    Ok(rule)
}

/// Changes a rule, or turns it off (managers and admins).
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, id))]
pub async fn update(
    db: &Db,
    viewer: &Viewer,
    id: i64,
    expected_version: i32,
    fields: RuleFields,
) -> ApiResult<routing_rules::Model> {
    require(viewer, Role::Manager, "manage routing rules")?;
    let txn = db.begin().await?;
    check(&txn, &fields).await?;
    let rule = routing_rules::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::NotFound("no routing rule with that `id`".into()))?;
    if rule.version != expected_version {
        return Err(ApiError::Conflict(format!(
            "the rule changed since version {expected_version} (it is at version {}); reload and retry",
            rule.version
        )));
    }
    let mut row = routing_rules::ActiveModel::default();
    if let Some(name) = fields.name {
        row.name = Set(name.trim().to_owned());
    }
    if let Some(conditions) = fields.conditions {
        row.conditions = Set(json(&conditions)?);
    }
    if let Some(actions) = fields.actions {
        row.actions = Set(json(&actions)?);
    }
    if let Some(enabled) = fields.enabled {
        row.enabled = Set(enabled);
    }
    row.version = Set(rule.version + 1);
    row.updated_at = Set(now());
    let saved = routing_rules::Entity::update_many()
        .set(row)
        .filter(routing_rules::Column::Id.eq(id))
        .filter(routing_rules::Column::Version.eq(rule.version))
        .exec_with_returning(&txn)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Conflict("the rule changed meanwhile; reload and retry".into()))?;
    txn.commit().await?;
    db.setup_changed().await?;
    Ok(saved)
}

/// Puts every rule in the given order (managers and admins): `ids` must name
/// each rule once.
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id))]
pub async fn reorder(
    db: &Db,
    viewer: &Viewer,
    ids: &[i64],
) -> ApiResult<Vec<routing_rules::Model>> {
    require(viewer, Role::Manager, "manage routing rules")?;
    let txn = db.begin().await?;
    let mut all: Vec<i64> = routing_rules::Entity::find()
        .select_only()
        .column(routing_rules::Column::Id)
        .into_tuple()
        .all(&txn)
        .await?;
    let mut given = ids.to_vec();
    all.sort_unstable();
    given.sort_unstable();
    if all != given {
        return Err(ApiError::bad_input(
            "ids",
            "name every routing rule exactly once",
        ));
    }
    for (index, id) in ids.iter().enumerate() {
        routing_rules::Entity::update_many()
            .col_expr(
                routing_rules::Column::Position,
                sea_orm::sea_query::Expr::val(i32::try_from(index).unwrap_or(i32::MAX) + 1),
            )
            .col_expr(
                routing_rules::Column::UpdatedAt,
                sea_orm::sea_query::Expr::val(now()),
            )
            .filter(routing_rules::Column::Id.eq(*id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    db.setup_changed().await?;
    list(db, viewer).await
}
