//! The portfolio service: the only code that writes services and their
//! stage history. Managers and admins manage the portfolio; everyone signed
//! in reads it, requesters only the live part (in `OPERATION` and active).

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;

use crate::paging::CountRows;
use crate::{
    auth::{Role, Viewer, require},
    clock::now,
    db::{Db, Txn},
    entity::{service_stage_moves, services, teams},
    error::{ApiError, ApiResult},
    paging,
    paging::{Page, PageInfoFlags},
    text::description as checked_description,
    vocabulary::{ServiceStatus, Stage},
};

const MAX_KEY: usize = 50;
const MAX_NAME: usize = 200;

/// A service to add to the portfolio.
#[derive(Debug, Clone, Default)]
pub struct NewService {
    /// A unique key such as `LAPTOPS`: letters, digits, `-` and `_`.
    pub key: String,
    /// Display name.
    pub name: String,
    /// What the service is.
    pub description: Option<String>,
    /// The team that owns it.
    pub owner_team_id: i64,
    /// Where it starts (`STRATEGY` by default).
    pub stage: Option<Stage>,
}

/// Edits to a service; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ServiceEdit {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New owning team.
    pub owner_team_id: Option<i64>,
}

/// A live service: in operation and active. Only live services are
/// requested through the catalog, and only they are shown to requesters.
pub fn is_live(service: &services::Model) -> bool {
    service.stage == Stage::Operation && service.status == ServiceStatus::Active
}

/// May someone with `role` see `service`? The row form of [`visible_to`].
pub fn may_see(role: Role, service: &services::Model) -> bool {
    role != Role::Requester || is_live(service)
}

/// Services by id, in no particular order (callers check who may see them).
#[tracing::instrument(skip_all, level = "debug", fields(count = ids.len()))]
pub async fn by_ids(db: &Db, ids: &[i64]) -> ApiResult<Vec<services::Model>> {
    Ok(services::Entity::find()
        .filter(services::Column::Id.is_in(ids.iter().copied()))
        .all(db.reader())
        .await?)
}

/// The services someone with `role` may see.
pub fn visible_to(role: Role) -> Condition {
    if role != Role::Requester {
        Condition::all()
    } else {
        Condition::all()
            .add(services::Column::Stage.eq(Stage::Operation))
            .add(services::Column::Status.eq(ServiceStatus::Active))
    }
}

/// The services `viewer` may see.
pub fn visible(viewer: &Viewer) -> Condition {
    visible_to(viewer.role)
}

fn key(value: &str) -> ApiResult<String> {
    let value = value.trim().to_uppercase();
    let valid = !value.is_empty()
        && value.chars().count() <= MAX_KEY
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(value)
    } else {
        Err(ApiError::bad_input(
            "key",
            format!("a key holds 1 to {MAX_KEY} letters, digits, `-` or `_`"),
        ))
    }
}

fn name(value: &str) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_NAME {
        return Err(ApiError::bad_input(
            "name",
            format!("a name holds 1 to {MAX_NAME} characters"),
        ));
    }
    Ok(value.to_owned())
}

async fn team(txn: &Txn, id: i64, field: &str) -> ApiResult<teams::Model> {
    teams::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::bad_input(field, "no such team"))
}

async fn record_move(
    txn: &Txn,
    service: &services::Model,
    from: Option<Stage>,
    actor: i64,
    note: Option<String>,
) -> ApiResult<()> {
    service_stage_moves::Entity::insert(service_stage_moves::ActiveModel {
        id: NotSet,
        service_id: Set(service.id),
        from_stage: Set(from),
        to_stage: Set(service.stage),
        actor_id: Set(Some(actor)),
        note: Set(note),
        moved_at: Set(now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

fn clean_note(note: Option<&str>) -> ApiResult<Option<String>> {
    checked_description(note)
        .map_err(|_| ApiError::bad_input("note", "a note holds at most 2,000 characters"))
}

/// Adds a service to the portfolio (managers and admins).
#[tracing::instrument(skip(db, viewer, new), fields(viewer = viewer.user.id, key = %new.key))]
pub async fn create(db: &Db, viewer: &Viewer, new: NewService) -> ApiResult<services::Model> {
    require(viewer, Role::Manager, "manage the service portfolio")?;
    let key = key(&new.key)?;
    let name = name(&new.name)?;
    let description = checked_description(new.description.as_deref())?.unwrap_or_default();
    let txn = db.begin().await?;
    let owner = team(&txn, new.owner_team_id, "ownerTeamId").await?;
    let at = now();
    let service = services::Entity::insert(services::ActiveModel {
        id: NotSet,
        key: Set(key),
        name: Set(name),
        description: Set(description),
        owner_team_id: Set(owner.id),
        stage: Set(new.stage.unwrap_or(Stage::Strategy)),
        status: Set(ServiceStatus::Active),
        version: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
    })
    .exec_with_returning(&txn)
    .await
    .map_err(|error| ApiError::unless_unique(error, "key", "a service with this key exists"))?;
    record_move(&txn, &service, None, viewer.user.id, None).await?;
    txn.commit().await?;
    Ok(service)
}

async fn load_for_change(
    txn: &Txn,
    viewer: &Viewer,
    id: i64,
    expected_version: Option<i32>,
) -> ApiResult<services::Model> {
    require(viewer, Role::Manager, "manage the service portfolio")?;
    let service = services::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::NotFound("no service with that `id`".into()))?;
    if let Some(expected) = expected_version
        && expected != service.version
    {
        return Err(ApiError::Conflict(format!(
            "the service changed since version {expected} (it is at version {}); reload and retry",
            service.version
        )));
    }
    Ok(service)
}

async fn save(
    txn: &Txn,
    before: &services::Model,
    mut row: services::ActiveModel,
) -> ApiResult<services::Model> {
    row.version = Set(before.version + 1);
    row.updated_at = Set(now());
    let mut saved = services::Entity::update_many()
        .set(row)
        .filter(services::Column::Id.eq(before.id))
        .filter(services::Column::Version.eq(before.version))
        .exec_with_returning(txn)
        .await?;
    saved
        .pop()
        .ok_or_else(|| ApiError::Conflict("the service changed meanwhile; reload and retry".into()))
}

/// Edits a service (managers and admins).
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, id))]
pub async fn update(
    db: &Db,
    viewer: &Viewer,
    id: i64,
    expected_version: i32,
    edit: ServiceEdit,
) -> ApiResult<services::Model> {
    let txn = db.begin().await?;
    let before = load_for_change(&txn, viewer, id, Some(expected_version)).await?;
    let mut row = services::ActiveModel::default();
    if let Some(value) = &edit.name {
        row.name = Set(name(value)?);
    }
    if let Some(value) = &edit.description {
        row.description = Set(checked_description(Some(value))?.unwrap_or_default());
    }
    if let Some(team_id) = edit.owner_team_id {
        row.owner_team_id = Set(team(&txn, team_id, "ownerTeamId").await?.id);
    }
    let saved = save(&txn, &before, row).await?;
    txn.commit().await?;
    Ok(saved)
}

/// Moves a service to the next stage of its lifecycle (managers and admins);
/// a move the lifecycle does not allow names the ones it does.
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, id))]
pub async fn move_stage(
    db: &Db,
    viewer: &Viewer,
    id: i64,
    to: Stage,
    note: Option<&str>,
    expected_version: Option<i32>,
) -> ApiResult<services::Model> {
    let note = clean_note(note)?;
    let txn = db.begin().await?;
    let before = load_for_change(&txn, viewer, id, expected_version).await?;
    if before.status == ServiceStatus::Retired {
        return Err(ApiError::bad_input(
            "id",
            "a retired service no longer moves",
        ));
    }
    let allowed = before.stage.next();
    if !allowed.contains(&to) {
        let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
        return Err(ApiError::bad_input(
            "to",
            format!(
                "a service in {} cannot move to {}; allowed: {}",
                before.stage.as_str(),
                to.as_str(),
                names.join(", ")
            ),
        ));
    }
    let row = services::ActiveModel {
        stage: Set(to),
        ..Default::default()
    };
    let saved = save(&txn, &before, row).await?;
    record_move(&txn, &saved, Some(before.stage), viewer.user.id, note).await?;
    txn.commit().await?;
    Ok(saved)
}

/// Retires a service for good (managers and admins).
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, id))]
pub async fn retire(
    db: &Db,
    viewer: &Viewer,
    id: i64,
    note: Option<&str>,
    expected_version: Option<i32>,
) -> ApiResult<services::Model> {
    let note = clean_note(note)?;
    let txn = db.begin().await?;
    let before = load_for_change(&txn, viewer, id, expected_version).await?;
    if before.status == ServiceStatus::Retired {
        return Err(ApiError::Conflict("the service is already retired".into()));
    }
    let row = services::ActiveModel {
        status: Set(ServiceStatus::Retired),
        ..Default::default()
    };
    let saved = save(&txn, &before, row).await?;
    record_move(
        &txn,
        &saved,
        Some(before.stage),
        viewer.user.id,
        note.or(Some("retired".into())),
    )
    .await?;
    txn.commit().await?;
    Ok(saved)
}

/// A service the viewer may see.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = viewer.user.id, id))]
pub async fn get(db: &Db, viewer: &Viewer, id: i64) -> ApiResult<Option<services::Model>> {
    Ok(services::Entity::find_by_id(id)
        .filter(visible(viewer))
        .one(db.reader())
        .await?)
}

/// Which services a list holds.
#[derive(Debug, Clone, Default)]
pub struct ServiceFilter {
    /// In this stage.
    pub stage: Option<Stage>,
    /// With this status.
    pub status: Option<ServiceStatus>,
    /// Text in the key, name or description.
    pub search: Option<String>,
}

fn condition(viewer: &Viewer, filter: &ServiceFilter) -> ApiResult<Condition> {
    let mut condition = visible(viewer);
    if let Some(stage) = filter.stage {
        condition = condition.add(services::Column::Stage.eq(stage));
    }
    if let Some(status) = filter.status {
        condition = condition.add(services::Column::Status.eq(status));
    }
    condition = condition.add(crate::text::search_condition(
        filter.search.as_deref(),
        &[
            services::Column::Key,
            services::Column::Name,
            services::Column::Description,
        ],
    )?);
    Ok(condition)
}

/// Services matching `filter` that the viewer may see, by name.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = viewer.user.id))]
pub async fn list(
    db: &Db,
    viewer: &Viewer,
    filter: &ServiceFilter,
    page: &Page,
) -> ApiResult<(Vec<services::Model>, PageInfoFlags)> {
    let select = services::Entity::find().filter(condition(viewer, filter)?);
    paging::by_name(
        db,
        select,
        services::Column::Name,
        services::Column::Id,
        page,
    )
    .await
}

/// How many services match.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = viewer.user.id))]
pub async fn count(db: &Db, viewer: &Viewer, filter: &ServiceFilter) -> ApiResult<u64> {
    Ok(services::Entity::find()
        .filter(condition(viewer, filter)?)
        .count_rows(db.reader())
        .await?)
}

/// A service's stage moves, oldest first.
#[tracing::instrument(skip_all, level = "debug", fields(service = service_id))]
pub async fn history(
    db: &Db,
    service_id: i64,
    page: &Page,
) -> ApiResult<(Vec<service_stage_moves::Model>, PageInfoFlags)> {
    let mut select = service_stage_moves::Entity::find()
        .filter(service_stage_moves::Column::ServiceId.eq(service_id));
    if let Some(id) = page
        .key
        .as_ref()
        .and_then(|k| k.first())
        .and_then(Value::as_i64)
    {
        select = select.filter(if page.backward {
            service_stage_moves::Column::Id.lt(id)
        } else {
            service_stage_moves::Column::Id.gt(id)
        });
    }
    let rows = if page.backward {
        select.order_by_desc(service_stage_moves::Column::Id)
    } else {
        select.order_by_asc(service_stage_moves::Column::Id)
    }
    .limit(page.limit + 1)
    .all(db.reader())
    .await?;
    Ok(page.finish(rows))
}

/// How many stage moves a service has.
#[tracing::instrument(skip_all, level = "debug", fields(service = service_id))]
pub async fn count_history(db: &Db, service_id: i64) -> ApiResult<u64> {
    Ok(service_stage_moves::Entity::find()
        .filter(service_stage_moves::Column::ServiceId.eq(service_id))
        .count_rows(db.reader())
        .await?)
}

/// Checks that a ticket may name `service_id`: it exists and someone with
/// `role` sees it.
#[tracing::instrument(skip_all, level = "debug", fields(service = service_id))]
pub async fn for_ticket<C: sea_orm::ConnectionTrait>(
    conn: &C,
    role: Role,
    service_id: i64,
) -> ApiResult<services::Model> {
    services::Entity::find_by_id(service_id)
        .filter(visible_to(role))
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::bad_input("serviceId", "no such service"))
}
