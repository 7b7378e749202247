//! The one error type domain services return. Each variant is something a client
//! can act on, except `Internal`, whose cause is logged and never sent.
//!
//! It deliberately has no `Display`: that keeps async-graphql's blanket
//! "any displayable error becomes a message" conversion away from it, so the
//! only way to a GraphQL error is `graphql::errors`, which attaches a stable
//! `extensions.code` and hides internals.

use std::sync::Arc;

use sea_orm::{DbErr, SqlErr};

/// What went wrong, in terms a client can act on.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// No valid token was presented for something that needs one.
    Unauthenticated,
    /// The viewer is known but may not do this.
    Forbidden(String),
    /// Nothing with that id exists, or the viewer may not see it.
    NotFound(String),
    /// The input is invalid; `field` names the offending input field.
    BadUserInput {
        /// The input field at fault, when there is one.
        field: Option<String>,
        /// What is wrong, for the client.
        message: String,
    },
    /// Several inputs are invalid at once (a form's answers): `(field, message)`.
    BadUserInputs(Vec<(String, String)>),
    /// The write conflicts with the current state (stale version, duplicate key).
    Conflict(String),
    /// Too many requests; try again after this many seconds.
    RateLimited,
    /// The request spent its budget of SQL statements or rows.
    BudgetExceeded(String),
    /// The database could not be reached in time; try again shortly.
    Unavailable,
    /// Anything else; the cause is logged with the request id.
    Internal(Arc<anyhow::Error>),
}

/// Shorthand for results of domain services.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The stable `extensions.code` clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput { .. } | Self::BadUserInputs(_) => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::BudgetExceeded(_) => "BUDGET_EXCEEDED",
            Self::Unavailable => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// A `BAD_USER_INPUT` error about one input field.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A database error, except that a unique-constraint violation becomes
    /// `BAD_USER_INPUT` on `field` with `message` (a name or key taken).
    pub fn unless_unique(error: DbErr, field: &str, message: impl Into<String>) -> Self {
        Self::on_unique(error, Self::bad_input(field, message))
    }

    /// A database error, except that a unique-constraint violation becomes
    /// `instead`.
    pub fn on_unique(error: DbErr, instead: Self) -> Self {
        match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => instead,
            _ => error.into(),
        }
    }

    /// An internal error with a cause for the log.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(Arc::new(cause.into()))
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Self::Conflict("a record with the same unique values already exists".into())
            }
            _ => match err {
                DbErr::Custom(message) if message.starts_with(crate::db::OVER_BUDGET) => {
                    Self::BudgetExceeded(message)
                }
                DbErr::ConnectionAcquire(_) => Self::Unavailable,
                err => Self::internal(anyhow::Error::new(err).context("database error")),
            },
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(err)
    }
}
