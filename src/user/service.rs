//! The user service: reading people. Rows are written on sign-in by
//! `auth::provision`.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::{
    auth::{Role, Viewer},
    db::Db,
    entity::users,
    error::ApiResult,
};

/// May `viewer` see more of `user_id` than their display name (subject,
/// email, role, dates)? The person themselves and staff and integrations
/// may; requesters see other people's display names only.
pub fn may_see_details(viewer: &Viewer, user_id: i64) -> bool {
    viewer.user.id == user_id || viewer.role != Role::Requester
}

/// Users by id, in no particular order.
#[tracing::instrument(skip_all, level = "debug", fields(count = ids.len()))]
pub async fn by_ids(db: &Db, ids: &[i64]) -> ApiResult<Vec<users::Model>> {
    Ok(users::Entity::find()
        .filter(users::Column::Id.is_in(ids.iter().copied()))
        .all(db.reader())
        .await?)
}

/// Finds a user the viewer may see: themselves, or anyone for managers and admins.
#[tracing::instrument(skip(db, viewer), fields(viewer = viewer.user.id))]
pub async fn find_visible(db: &Db, viewer: &Viewer, id: i64) -> ApiResult<Option<users::Model>> {
    if viewer.user.id == id {
        return Ok(Some(viewer.user.clone()));
    }
    if viewer.role < Role::Manager {
        return Ok(None);
    }
    Ok(users::Entity::find_by_id(id).one(db.reader()).await?)
}
