//! The ticket service: every write to tickets, comments, links and events.
//!
//! Each write runs in one transaction that also appends its events, checks the
//! viewer's rights through [`Scope`], and honours `expectedVersion`: a stale
//! version gets `CONFLICT` and writes nothing.

mod assign;
mod comment;
mod create;
mod links;
mod transition;
mod update;

pub use assign::{Assignment, assign};
pub use comment::comment;
pub use create::{NewTicket, create, create_or_replay};
pub use links::{link, link_kind};
pub use transition::transition;
pub use update::{TicketEdit, update};

use crate::error::{ApiError, ApiResult};

const MAX_TITLE: usize = 200;

fn title(value: &str, field: &str) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::bad_input(
            field,
            format!("`{field}` must not be empty"),
        ));
    }
    if value.chars().count() > MAX_TITLE {
        return Err(ApiError::bad_input(
            field,
            format!("`{field}` holds at most {MAX_TITLE} characters"),
        ));
    }
    if crate::text::single_line_violation(value).is_some() {
        return Err(ApiError::bad_input(
            field,
            format!("`{field}` is one line: no newlines, tabs or other control characters"),
        ));
    }
    Ok(value.to_owned())
}
