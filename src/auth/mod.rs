//! Authentication at the edge: a bearer token becomes a [`Viewer`] once per
//! HTTP request or WebSocket connection, and resolvers read it from the context.

pub mod grants;
mod jwks;
mod keys;
mod provision;

use std::sync::Arc;

pub use crate::vocabulary::{Role, RoleRules};
pub use grants::Grants;
pub use jwks::KeySetStats;
pub use keys::{Claims, JwtKeys, KeySource, MIN_SECRET_BYTES, TokenError};
pub use provision::{KnownUsers, provision};

use crate::{
    db::Db,
    entity::users,
    error::{ApiError, ApiResult},
};

/// Who is asking: nobody, or a signed-in person.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// No token was presented.
    #[default]
    Anonymous,
    /// A valid token was presented.
    Viewer(Viewer),
}

impl Auth {
    /// The signed-in viewer, or `UNAUTHENTICATED`.
    pub fn viewer(&self) -> ApiResult<&Viewer> {
        match self {
            Self::Viewer(viewer) => Ok(viewer),
            Self::Anonymous => Err(ApiError::Unauthenticated),
        }
    }
}

/// A signed-in person: their stored record and the role their token grants.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The `users` row, as provisioned for this request.
    pub user: users::Model,
    /// The role from the token.
    pub role: Role,
    /// What the token's scopes allow an integration to write.
    pub grants: Grants,
    /// When the token stops being valid (its `exp` plus the allowed leeway),
    /// in seconds since the epoch; a WebSocket closes then.
    pub expires_at: Option<u64>,
}

/// Why authentication failed.
#[derive(Debug)]
pub enum AuthError {
    /// The credentials are bad. The reason is for the log only.
    Rejected(String),
    /// The token was fine but the user could not be loaded.
    Internal(ApiError),
}

/// Turns credentials into an [`Auth`].
#[derive(Clone, Debug)]
pub struct Authenticator {
    keys: Arc<JwtKeys>,
    db: Db,
    known: Arc<KnownUsers>,
}

impl Authenticator {
    /// Checks tokens with `keys` and provisions users in `db`.
    pub fn new(keys: Arc<JwtKeys>, db: Db) -> Self {
        Self {
            keys,
            db,
            known: Arc::default(),
        }
    }

    /// Reads an `Authorization` header value. No header means anonymous; anything
    /// but a valid `Bearer` token is rejected.
    pub async fn from_authorization(&self, header: Option<&str>) -> Result<Auth, AuthError> {
        let Some(header) = header else {
            return Ok(Auth::Anonymous);
        };
        let token = bearer_token(header)
            .ok_or_else(|| AuthError::Rejected("not a Bearer authorization".into()))?;
        self.from_token(token).await
    }

    /// Checks a bare token and provisions its user.
    pub async fn from_token(&self, token: &str) -> Result<Auth, AuthError> {
        let (claims, expires_at) = self
            .keys
            .verify_with_expiry(token)
            .await
            .map_err(|e| AuthError::Rejected(e.to_string()))?;
        let user = self
            .known
            .provision(&self.db, &claims)
            .await
            .map_err(AuthError::Internal)?;
        Ok(Auth::Viewer(Viewer {
            user,
            role: claims.role,
            grants: claims.grants,
            expires_at,
        }))
    }
}

/// The token of a `Bearer <token>` value; the scheme is case-insensitive.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Raises `FORBIDDEN` unless the viewer has at least `role`.
pub fn require(viewer: &Viewer, role: Role, what: &str) -> ApiResult<()> {
    if viewer.role >= role && viewer.role != Role::Integration {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "only {} may {what}",
            match role {
                Role::Admin => "admins",
                Role::Manager => "managers and admins",
                _ => "agents, managers and admins",
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
