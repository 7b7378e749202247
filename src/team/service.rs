//! The team service: teams, memberships and the people directory.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Query},
};

use crate::paging::CountRows;
use crate::{
    auth::{Role, Viewer, require},
    clock::now,
    db::Db,
    entity::{team_members, teams, users},
    error::{ApiError, ApiResult},
    paging,
    paging::{Page, PageInfoFlags},
    text::{description, name},
};

/// Who belongs to which team is for staff and integrations.
fn may_see_members(viewer: &Viewer) -> ApiResult<()> {
    if viewer.role >= Role::Agent || viewer.role == Role::Integration {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only staff see team members".into()))
    }
}

/// Teams by id, in no particular order.
#[tracing::instrument(skip_all, level = "debug", fields(count = ids.len()))]
pub async fn by_ids(db: &Db, ids: &[i64]) -> ApiResult<Vec<teams::Model>> {
    Ok(teams::Entity::find()
        .filter(teams::Column::Id.is_in(ids.iter().copied()))
        .all(db.reader())
        .await?)
}

/// All teams, by name.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn list(db: &Db, page: &Page) -> ApiResult<(Vec<teams::Model>, PageInfoFlags)> {
    paging::by_name(
        db,
        teams::Entity::find(),
        teams::Column::Name,
        teams::Column::Id,
        page,
    )
    .await
}

/// How many teams there are.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn count(db: &Db) -> ApiResult<u64> {
    Ok(teams::Entity::find().count_rows(db.reader()).await?)
}

/// A team by id.
#[tracing::instrument(skip_all, level = "debug", fields(id))]
pub async fn get(db: &Db, id: i64) -> ApiResult<Option<teams::Model>> {
    Ok(teams::Entity::find_by_id(id).one(db.reader()).await?)
}

/// Creates a team (admins).
#[tracing::instrument(skip(db, viewer), fields(viewer = viewer.user.id))]
pub async fn create(
    db: &Db,
    viewer: &Viewer,
    team_name: &str,
    text: Option<&str>,
) -> ApiResult<teams::Model> {
    require(viewer, Role::Admin, "create teams")?;
    let at = now();
    teams::Entity::insert(teams::ActiveModel {
        id: NotSet,
        name: Set(name(team_name, "name")?),
        description: Set(description(text)?),
        created_at: Set(at),
        updated_at: Set(at),
    })
    .exec_with_returning(db.writer())
    .await
    .map_err(|e| ApiError::unless_unique(e, "name", "a team with this name exists"))
}

/// Adds a user to a team (admins). Adding a member twice changes nothing.
#[tracing::instrument(skip(db, viewer), fields(viewer = viewer.user.id))]
pub async fn add_member(
    db: &Db,
    viewer: &Viewer,
    team_id: i64,
    user_id: i64,
) -> ApiResult<(teams::Model, users::Model)> {
    require(viewer, Role::Admin, "change team members")?;
    let (team, user) = team_and_user(db, team_id, user_id).await?;
    let exists = team_members::Entity::find_by_id((team.id, user.id))
        .one(db.writer())
        .await?
        .is_some();
    if !exists {
        team_members::Entity::insert(team_members::ActiveModel {
            team_id: Set(team.id),
            user_id: Set(user.id),
            created_at: Set(now()),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(db.writer())
        .await?;
        db.setup_changed().await?;
    }
    Ok((team, user))
}

/// Removes a user from a team (admins).
#[tracing::instrument(skip(db, viewer), fields(viewer = viewer.user.id))]
pub async fn remove_member(
    db: &Db,
    viewer: &Viewer,
    team_id: i64,
    user_id: i64,
) -> ApiResult<(teams::Model, users::Model)> {
    require(viewer, Role::Admin, "change team members")?;
    let (team, user) = team_and_user(db, team_id, user_id).await?;
    team_members::Entity::delete_by_id((team.id, user.id))
        .exec(db.writer())
        .await?;
    db.setup_changed().await?;
    Ok((team, user))
}

async fn team_and_user(
    db: &Db,
    team_id: i64,
    user_id: i64,
) -> ApiResult<(teams::Model, users::Model)> {
    let team = teams::Entity::find_by_id(team_id)
        .one(db.writer())
        .await?
        .ok_or_else(|| ApiError::bad_input("teamId", "no such team"))?;
    let user = users::Entity::find_by_id(user_id)
        .one(db.writer())
        .await?
        .ok_or_else(|| ApiError::bad_input("userId", "no such user"))?;
    Ok((team, user))
}

fn members_of(team_id: i64) -> Condition {
    Condition::all().add(
        users::Column::Id.in_subquery(
            Query::select()
                .column(team_members::Column::UserId)
                .from(team_members::Entity)
                .and_where(Expr::col(team_members::Column::TeamId).eq(team_id))
                .to_owned(),
        ),
    )
}

/// A team's members, by name (staff and integrations).
#[tracing::instrument(skip_all, level = "debug", fields(viewer = viewer.user.id, team = team_id))]
pub async fn members(
    db: &Db,
    viewer: &Viewer,
    team_id: i64,
    page: &Page,
) -> ApiResult<(Vec<users::Model>, PageInfoFlags)> {
    may_see_members(viewer)?;
    let select = users::Entity::find().filter(members_of(team_id));
    paging::by_name(
        db,
        select,
        users::Column::DisplayName,
        users::Column::Id,
        page,
    )
    .await
}

/// How many members a team has.
#[tracing::instrument(skip_all, level = "debug", fields(team = team_id))]
pub async fn count_members(db: &Db, team_id: i64) -> ApiResult<u64> {
    Ok(users::Entity::find()
        .filter(members_of(team_id))
        .count_rows(db.reader())
        .await?)
}

fn search_condition(search: Option<&str>) -> ApiResult<Condition> {
    crate::text::search_condition(
        search,
        &[
            users::Column::DisplayName,
            users::Column::Email,
            users::Column::Subject,
        ],
    )
}

/// People matching `search` in name, email or subject (managers and admins).
#[tracing::instrument(skip_all, level = "debug", fields(viewer = viewer.user.id))]
pub async fn users(
    db: &Db,
    viewer: &Viewer,
    search: Option<&str>,
    page: &Page,
) -> ApiResult<(Vec<users::Model>, PageInfoFlags)> {
    require(viewer, Role::Manager, "list people")?;
    let select = users::Entity::find().filter(search_condition(search)?);
    paging::by_name(
        db,
        select,
        users::Column::DisplayName,
        users::Column::Id,
        page,
    )
    .await
}

/// How many people match `search`.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn count_users(db: &Db, search: Option<String>) -> ApiResult<u64> {
    Ok(users::Entity::find()
        .filter(search_condition(search.as_deref())?)
        .count_rows(db.reader())
        .await?)
}
