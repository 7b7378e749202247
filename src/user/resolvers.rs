//! GraphQL for people: the `User` type and the `viewer` query.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::service;
use crate::{
    auth::{Auth, Role},
    entity::users,
    error::ApiResult,
    graphql::{ContextExt, relay::encode_id},
};

/// A person known to the service, created from their first token.
pub struct User(pub users::Model);

/// A person known to the service, created from their first token.
#[Object]
impl User {
    /// The opaque global id.
    pub async fn id(&self) -> ID {
        encode_id("User", self.0.id)
    }

    /// The identity provider's id for this person (the token's `sub`).
    /// Null for requesters looking at someone else: they see display names only.
    async fn subject(&self, ctx: &Context<'_>) -> Option<&str> {
        self.shown(ctx).then_some(self.0.subject.as_str())
    }

    /// The email address from the latest token, if it carried one. Null for
    /// requesters looking at someone else.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        self.0.email.as_deref().filter(|_| self.shown(ctx))
    }

    /// The name to show: the token's `name`, else email, else subject.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    /// The role granted by the latest token. Null for requesters looking at
    /// someone else.
    async fn role(&self, ctx: &Context<'_>) -> Option<Role> {
        self.shown(ctx).then_some(self.0.role)
    }

    /// When the service first saw this person. Null for requesters looking at
    /// someone else.
    async fn created_at(&self, ctx: &Context<'_>) -> Option<DateTime<Utc>> {
        self.shown(ctx).then_some(self.0.created_at)
    }

    /// When the stored claims last changed. Null for requesters looking at
    /// someone else.
    async fn updated_at(&self, ctx: &Context<'_>) -> Option<DateTime<Utc>> {
        self.shown(ctx).then_some(self.0.updated_at)
    }
}

impl User {
    /// Whether the viewer may see more than the display name.
    fn shown(&self, ctx: &Context<'_>) -> bool {
        match ctx.auth() {
            Auth::Viewer(viewer) => service::may_see_details(viewer, self.0.id),
            Auth::Anonymous => false,
        }
    }
}

/// Queries about people.
#[derive(Default)]
pub struct UserQuery;

/// Queries about people.
#[Object]
impl UserQuery {
    /// The signed-in person. `UNAUTHENTICATED` without a token.
    async fn viewer(&self, ctx: &Context<'_>) -> ApiResult<User> {
        let viewer = ctx.auth().viewer()?;
        Ok(User(viewer.user.clone()))
    }
}
