//! GraphQL for people: the `User` type and the `viewer` query.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use crate::{
    auth::Role,
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
    async fn subject(&self) -> &str {
        &self.0.subject
    }

    /// The email address from the latest token, if it carried one.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// The name to show: the token's `name`, else email, else subject.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    /// The role granted by the latest token.
    async fn role(&self) -> Role {
        self.0.role
    }

    /// When the service first saw this person.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the stored claims last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
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
