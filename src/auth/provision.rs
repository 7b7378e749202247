//! Just-in-time provisioning: the `users` row for a token's claims, created
//! on first sign-in and kept in step with the claims after.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter,
    sea_query::OnConflict,
};

use super::Claims;
use crate::{db::Db, entity::users, error::ApiResult, memo::Memo};

/// Returns the user for these claims, creating it on first sight and bringing
/// email, name and role in step with the claims when they changed.
///
/// A read answers the common case (known user, nothing changed); otherwise one
/// `INSERT … ON CONFLICT (subject) DO UPDATE … RETURNING` does the rest, so
/// concurrent first requests for one subject still make exactly one row.
#[tracing::instrument(skip_all, fields(subject = %claims.subject))]
pub async fn provision(db: &Db, claims: &Claims) -> ApiResult<users::Model> {
    let existing = users::Entity::find()
        .filter(users::Column::Subject.eq(&claims.subject))
        .one(db.reader())
        .await?;
    if let Some(user) = existing
        && in_step(&user, claims)
    {
        return Ok(user);
    }

    let now = Utc::now();
    let display_name = claims
        .name
        .clone()
        .or_else(|| claims.email.clone())
        .unwrap_or_else(|| claims.subject.clone());
    let row = users::ActiveModel {
        id: NotSet,
        subject: Set(claims.subject.clone()),
        email: Set(claims.email.clone()),
        display_name: Set(display_name),
        role: Set(claims.role),
        created_at: Set(now),
        updated_at: Set(now),
    };
    // Claims a token leaves out keep their stored value.
    let mut on_conflict = OnConflict::column(users::Column::Subject);
    on_conflict.update_columns([users::Column::Role, users::Column::UpdatedAt]);
    if claims.email.is_some() {
        on_conflict.update_column(users::Column::Email);
    }
    if claims.name.is_some() {
        on_conflict.update_column(users::Column::DisplayName);
    }
    let user = users::Entity::insert(row)
        .on_conflict(on_conflict)
        .exec_with_returning(db.writer())
        .await?;
    tracing::debug!(user_id = user.id, "provisioned user");
    Ok(user)
}

/// The users this process provisioned or read lately, by subject, so a
/// request whose claims match its stored row runs no statement to sign in.
/// Only provisioning writes users, so an entry can go stale only through
/// another replica provisioning from different claims: entries are trusted
/// for a minute.
#[derive(Debug)]
pub struct KnownUsers(Memo<String, users::Model>);

/// How long a provisioned user is trusted without reading it again.
const KNOWN_FOR: Duration = Duration::from_secs(60);
/// Users remembered at most; the memory starts afresh when full.
const KNOWN_MAX: usize = 10_000;

impl Default for KnownUsers {
    fn default() -> Self {
        Self(Memo::new(KNOWN_FOR, KNOWN_MAX))
    }
}

impl KnownUsers {
    /// [`provision`], answered from memory when the claims match a user
    /// provisioned within the last minute.
    pub async fn provision(&self, db: &Db, claims: &Claims) -> ApiResult<users::Model> {
        if let Some(user) = self.0.get(&claims.subject, |user| in_step(user, claims)) {
            return Ok(user);
        }
        let user = provision(db, claims).await?;
        self.0.put(claims.subject.clone(), user.clone());
        Ok(user)
    }
}

fn in_step(user: &users::Model, claims: &Claims) -> bool {
    user.role == claims.role
        && claims
            .email
            .as_ref()
            .is_none_or(|e| user.email.as_ref() == Some(e))
        && claims.name.as_ref().is_none_or(|n| &user.display_name == n)
}
