//! The queue service: queues and their statistics.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect,
};

use crate::paging::CountRows;
use crate::{
    auth::{Role, Viewer, require},
    clock::now,
    db::Db,
    entity::{queues, teams},
    error::{ApiError, ApiResult},
    paging,
    paging::{Page, PageInfoFlags},
    text::{description, name},
};

/// Queues by name: every queue, or one team's.
#[tracing::instrument(skip_all, level = "debug", fields(team))]
pub async fn list(
    db: &Db,
    team: Option<i64>,
    page: &Page,
) -> ApiResult<(Vec<queues::Model>, PageInfoFlags)> {
    let select = queues::Entity::find().filter(of_team(team));
    paging::by_name(db, select, queues::Column::Name, queues::Column::Id, page).await
}

/// How many queues [`list`] holds.
#[tracing::instrument(skip_all, level = "debug", fields(team))]
pub async fn count(db: &Db, team: Option<i64>) -> ApiResult<u64> {
    Ok(queues::Entity::find()
        .filter(of_team(team))
        .count_rows(db.reader())
        .await?)
}

fn of_team(team: Option<i64>) -> Condition {
    match team {
        Some(team_id) => Condition::all().add(queues::Column::TeamId.eq(team_id)),
        None => Condition::all(),
    }
}

/// Queues by id, in no particular order.
#[tracing::instrument(skip_all, level = "debug", fields(count = ids.len()))]
pub async fn by_ids(db: &Db, ids: &[i64]) -> ApiResult<Vec<queues::Model>> {
    Ok(queues::Entity::find()
        .filter(queues::Column::Id.is_in(ids.iter().copied()))
        .all(db.reader())
        .await?)
}

/// Whether queue `id` exists. A queue found once is remembered for good:
/// queues are never deleted, so a burst of subscribers to one queue checks
/// it with one statement, not one each.
#[tracing::instrument(skip_all, level = "debug", fields(id))]
pub async fn exists(db: &Db, id: i64) -> ApiResult<bool> {
    let known = &db.signals().queues;
    if known.lock().is_ok_and(|known| known.contains(&id)) {
        return Ok(true);
    }
    let found = queues::Entity::find_by_id(id)
        .select_only()
        .column(queues::Column::Id)
        .into_tuple::<i64>()
        .one(db.reader())
        .await?
        .is_some();
    if found && let Ok(mut known) = known.lock() {
        known.insert(id);
    }
    Ok(found)
}

/// A queue by id.
#[tracing::instrument(skip_all, level = "debug", fields(id))]
pub async fn get(db: &Db, id: i64) -> ApiResult<Option<queues::Model>> {
    Ok(queues::Entity::find_by_id(id).one(db.reader()).await?)
}

/// A queue's fields to set; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct QueueFields {
    /// A unique name.
    pub name: Option<String>,
    /// What lands here; `Some("")` clears it.
    pub description: Option<String>,
    /// The owning team.
    pub team_id: Option<i64>,
    /// Make this the queue for tickets that name none.
    pub is_default: Option<bool>,
}

async fn team<C: sea_orm::ConnectionTrait>(conn: &C, id: i64) -> ApiResult<teams::Model> {
    teams::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::bad_input("teamId", "no such team"))
}

async fn clear_default<C: sea_orm::ConnectionTrait>(conn: &C) -> ApiResult<()> {
    queues::Entity::update_many()
        .col_expr(
            queues::Column::IsDefault,
            sea_orm::sea_query::Expr::val(false),
        )
        .filter(queues::Column::IsDefault.eq(true))
        .exec(conn)
        .await?;
    Ok(())
}

/// Creates a queue (managers and admins).
#[tracing::instrument(skip(db, viewer), fields(viewer = viewer.user.id))]
pub async fn create(db: &Db, viewer: &Viewer, fields: QueueFields) -> ApiResult<queues::Model> {
    require(viewer, Role::Manager, "create queues")?;
    let queue_name = name(fields.name.as_deref().unwrap_or_default(), "name")?;
    let text = description(fields.description.as_deref())?;
    let team_id = fields
        .team_id
        .ok_or_else(|| ApiError::bad_input("teamId", "a queue needs a team"))?;
    let txn = db.begin().await?;
    let team = team(&txn, team_id).await?;
    let is_default = fields.is_default.unwrap_or(false);
    if is_default {
        clear_default(&txn).await?;
    }
    let at = now();
    let queue = queues::Entity::insert(queues::ActiveModel {
        id: NotSet,
        name: Set(queue_name),
        description: Set(text),
        team_id: Set(team.id),
        is_default: Set(is_default),
        created_at: Set(at),
        updated_at: Set(at),
    })
    .exec_with_returning(&txn)
    .await
    .map_err(|e| ApiError::unless_unique(e, "name", "a queue with this name exists"))?;
    txn.commit().await?;
    // The team's agents now reach one more queue (and it may be the
    // default now).
    db.setup_changed().await?;
    Ok(queue)
}

/// Changes a queue (managers and admins).
#[tracing::instrument(skip(db, viewer), fields(viewer = viewer.user.id))]
pub async fn update(
    db: &Db,
    viewer: &Viewer,
    id: i64,
    fields: QueueFields,
) -> ApiResult<queues::Model> {
    require(viewer, Role::Manager, "change queues")?;
    let txn = db.begin().await?;
    let queue = queues::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::NotFound("no queue with that `id`".into()))?;
    let mut row: queues::ActiveModel = queue.clone().into();
    if let Some(value) = &fields.name {
        row.name = Set(name(value, "name")?);
    }
    if let Some(value) = &fields.description {
        row.description = Set(description(Some(value))?);
    }
    if let Some(team_id) = fields.team_id {
        row.team_id = Set(team(&txn, team_id).await?.id);
    }
    match fields.is_default {
        Some(true) if !queue.is_default => {
            clear_default(&txn).await?;
            row.is_default = Set(true);
        }
        Some(false) if queue.is_default => {
            return Err(ApiError::bad_input(
                "isDefault",
                "make another queue the default instead: tickets naming no queue need one",
            ));
        }
        _ => {}
    }
    row.updated_at = Set(now());
    let queue = sea_orm::ActiveModelTrait::update(row, &txn)
        .await
        .map_err(|e| ApiError::unless_unique(e, "name", "a queue with this name exists"))?;
    txn.commit().await?;
    // A queue handed to another team changes who reaches its tickets; a
    // new name or default changes what new tickets read.
    db.setup_changed().await?;
    Ok(queue)
}
