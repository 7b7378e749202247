//! The queue service: queues and their statistics.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, Func, SimpleExpr},
};

use crate::{
    auth::{Role, Viewer, require},
    clock::now,
    db::Db,
    entity::{queues, teams, tickets},
    error::{ApiError, ApiResult},
    paging,
    paging::{Page, PageInfoFlags},
    text::{description, name},
    ticket::{access::Scope, model::Priority, query::breached_at, rules::workflow::OPEN},
};

/// Queues matching `condition`, by name.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn list(
    db: &Db,
    condition: Condition,
    page: &Page,
) -> ApiResult<(Vec<queues::Model>, PageInfoFlags)> {
    let select = queues::Entity::find().filter(condition);
    paging::by_name(db, select, queues::Column::Name, queues::Column::Id, page).await
}

/// How many queues match `condition`.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn count(db: &Db, condition: Condition) -> ApiResult<u64> {
    Ok(queues::Entity::find()
        .filter(condition)
        .count(db.reader())
        .await?)
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
    if fields.team_id.is_some() {
        // A queue handed to another team changes who reaches its tickets.
        db.scopes_changed().await?;
    }
    Ok(queue)
}

/// Counts of a queue's open tickets that the viewer may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Open tickets.
    pub open: u64,
    /// Open tickets nobody is assigned to.
    pub unassigned: u64,
    /// Open tickets breaching an SLA target.
    pub breached: u64,
    /// Open tickets per priority, most important first, zeros included.
    pub by_priority: Vec<(Priority, u64)>,
}

/// Statistics of a queue, over the open tickets the viewer may see: one
/// grouped scan of the queue's open tickets.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, queue = queue_id))]
pub async fn stats(db: &Db, scope: &Scope, queue_id: i64) -> ApiResult<Stats> {
    let flag =
        |condition: SimpleExpr| SimpleExpr::from(Func::sum(Expr::case(condition, 1).finally(0)));
    let rows: Vec<(Priority, i64, Option<i64>, Option<i64>)> = tickets::Entity::find()
        .filter(scope.visible_in_queue(queue_id))
        .filter(tickets::Column::QueueId.eq(queue_id))
        .filter(tickets::Column::Status.is_in(OPEN))
        .select_only()
        .column(tickets::Column::Priority)
        .column_as(tickets::Column::Id.count(), "open")
        .column_as(flag(tickets::Column::AssigneeId.is_null()), "unassigned")
        .column_as(flag(breached_at(now())), "breached")
        .group_by(tickets::Column::Priority)
        .into_tuple()
        .all(db.reader())
        .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let by_priority: Vec<(Priority, u64)> = Priority::ALL
        .iter()
        .map(|p| {
            let open = rows.iter().find(|row| row.0 == *p).map_or(0, |row| row.1);
            (*p, count(open))
        })
        .collect();
    Ok(Stats {
        open: by_priority.iter().map(|(_, n)| n).sum(),
        unassigned: rows.iter().map(|row| count(row.2.unwrap_or(0))).sum(),
        breached: rows.iter().map(|row| count(row.3.unwrap_or(0))).sum(),
        by_priority,
    })
}
