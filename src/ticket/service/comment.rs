//! Commenting: public replies and internal work notes.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    EntityTrait,
};

use crate::ticket::store::load;
use crate::{
    access::Scope,
    auth::Role,
    clock::now,
    db::Db,
    entity::{comments, tickets},
    error::{ApiError, ApiResult},
    events::{self, Change, Draft},
    vocabulary::{EventKind, Status, Visibility},
};

pub(super) const MAX_COMMENT: usize = 10_000;

/// Adds a comment. Requesters add public comments to their own tickets; the
/// ticket's agents and managers add public comments and internal work notes.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, ticket = ticket_id))]
pub async fn comment(
    db: &Db,
    scope: &Scope,
    ticket_id: i64,
    body: &str,
    visibility: Visibility,
) -> ApiResult<(comments::Model, tickets::Model)> {
    let body = body.trim();
    if body.is_empty() || body.chars().count() > MAX_COMMENT {
        return Err(ApiError::bad_input(
            "body",
            format!("a comment holds 1 to {MAX_COMMENT} characters"),
        ));
    }
    let txn = db.begin().await?;
    let ticket = load(&txn, scope, ticket_id, "ticketId").await?;
    if !scope.may_comment() {
        return Err(ApiError::Forbidden(format!(
            "this integration's token does not carry the {} scope",
            crate::auth::grants::COMMENTS_WRITE
        )));
    }
    // An integration allowed to comment does so as staff does.
    let integration = scope.role == Role::Integration;
    let staff = scope.may_work(&ticket) || integration;
    if visibility == Visibility::Internal && !staff {
        return Err(ApiError::Forbidden(
            "only the ticket's agents and managers add internal notes".into(),
        ));
    }
    if !staff && ticket.requester_id != scope.user_id {
        return Err(ApiError::Forbidden(
            "only the requester and the ticket's agents comment on it".into(),
        ));
    }
    if matches!(ticket.status, Status::Closed | Status::Cancelled) {
        return Err(ApiError::bad_input(
            "ticketId",
            format!("a {} ticket takes no more comments", ticket.status.as_str()),
        ));
    }
    let at = now();
    let comment = comments::Entity::insert(comments::ActiveModel {
        id: NotSet,
        ticket_id: Set(ticket.id),
        author_id: Set(scope.user_id),
        body: Set(body.to_owned()),
        visibility: Set(visibility),
        created_at: Set(at),
    })
    .exec_with_returning(&txn)
    .await?;
    // A public reply by anyone but the requester is the first response.
    let mut row = tickets::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(ticket.id),
        updated_at: Set(at),
        ..Default::default()
    };
    // An integration's reply (an automatic acknowledgement, say) is not a
    // person responding.
    if visibility == Visibility::Public
        && !integration
        && scope.user_id != ticket.requester_id
        && ticket.responded_at.is_none()
    {
        row.responded_at = Set(Some(at));
    }
    let ticket = row.update(&txn).await?;
    txn.hold_ticket(ticket.id);
    let changes = [Change::new("comment", None, Some(comment.id.to_string()))];
    events::record(
        &txn,
        Draft::new(
            &ticket,
            scope.user_id,
            EventKind::CommentAdded,
            &changes,
            at,
        )
        .visible_as(visibility),
    )
    .await?;
    txn.commit().await?;
    Ok((comment, ticket))
}
