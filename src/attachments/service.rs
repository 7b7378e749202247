//! Attaching files to tickets and comments, removing them, reading them.
//!
//! An attachment has the visibility of what it belongs to: the ticket's own
//! are public, a comment's are the comment's (a work note's file never
//! reaches a requester). The bytes are written first and the row after, in
//! the transaction that records `ATTACHMENT_ADDED`; a failed transaction
//! deletes the bytes again, and [`sweep`] removes any left by a crash.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use sha2::{Digest, Sha256};

use super::{
    files::Files,
    sniff::{clean_filename, sniff},
};
use crate::paging::CountRows;
use crate::{
    access::Scope,
    auth::Role,
    clock::now,
    db::{Db, Txn},
    entity::{attachments, comments, tickets},
    error::{ApiError, ApiResult},
    events::{self, Change, Draft},
    vocabulary::{EventKind, Visibility},
};

/// Where attachment bytes go in the store.
pub const PREFIX: &str = "attachments";

/// How old bytes without a row must be before [`sweep`] removes them: older
/// than any upload still on its way to its transaction.
const ORPHAN_AGE: chrono::Duration = chrono::Duration::hours(1);

/// A file to attach.
#[derive(Debug)]
pub struct Upload {
    /// The name the client gave it.
    pub filename: String,
    /// Its bytes.
    pub bytes: Bytes,
}

fn may_attach(scope: &Scope, ticket: &tickets::Model, comment: Option<&comments::Model>) -> bool {
    let staff = scope.may_work(ticket) || (scope.role == Role::Integration && scope.may_comment());
    match comment {
        Some(comment) => staff || comment.author_id == scope.user_id,
        None => staff || ticket.requester_id == scope.user_id,
    }
}

/// What the checks found: the ticket, and the comment when there is one.
struct Target {
    ticket: tickets::Model,
    comment: Option<comments::Model>,
}

async fn target<C: sea_orm::ConnectionTrait>(
    conn: &C,
    scope: &Scope,
    ticket_id: i64,
    comment_id: Option<i64>,
) -> ApiResult<Target> {
    let ticket = tickets::Entity::find_by_id(ticket_id)
        .one(conn)
        .await?
        .filter(|t| scope.can_see(t))
        .ok_or_else(|| ApiError::NotFound("no ticket with that `ticketId`".into()))?;
    let comment = match comment_id {
        None => None,
        Some(id) => Some(
            comments::Entity::find_by_id(id)
                .one(conn)
                .await?
                .filter(|c| c.ticket_id == ticket.id)
                .filter(|c| scope.visibilities().contains(&c.visibility))
                .ok_or_else(|| {
                    ApiError::NotFound("no comment with that `commentId` on the ticket".into())
                })?,
        ),
    };
    if !may_attach(scope, &ticket, comment.as_ref()) {
        return Err(ApiError::Forbidden(match comment {
            Some(_) => {
                "only the comment's author and the ticket's agents attach files to it".into()
            }
            None => "only the requester and the ticket's agents attach files to a ticket".into(),
        }));
    }
    Ok(Target { ticket, comment })
}

async fn count_held<C: sea_orm::ConnectionTrait>(conn: &C, ticket_id: i64) -> ApiResult<u64> {
    Ok(attachments::Entity::find()
        .filter(attachments::Column::TicketId.eq(ticket_id))
        .filter(attachments::Column::RemovedAt.is_null())
        .count_rows(conn)
        .await?)
}

/// What the service makes of an upload before anything is written: its
/// media type read from the content, or why it refuses the file whatever
/// it is attached to (empty, too large, a type not accepted).
pub fn inspect(files: &Files, upload: &Upload) -> Result<&'static str, String> {
    let size = upload.bytes.len();
    if size == 0 {
        return Err("the file is empty".into());
    }
    if size > files.max_bytes() {
        return Err(format!("a file holds at most {} bytes", files.max_bytes()));
    }
    let media_type = sniff(&upload.bytes).unwrap_or("application/octet-stream");
    if !files.accepts(media_type) {
        return Err(format!(
            "the file's content is {media_type}, which is not accepted (accepted: {})",
            files.types()
        ));
    }
    Ok(media_type)
}

/// A file answering a catalog request form's `FILE` field, as the form
/// check sees it.
pub fn sent_for_form(
    files: &Files,
    field: &str,
    upload: &Upload,
) -> crate::catalog::form::SentFile {
    let inspected = inspect(files, upload);
    crate::catalog::form::SentFile {
        field: field.to_owned(),
        filename: clean_filename(&upload.filename),
        content_type: inspected
            .clone()
            .unwrap_or("application/octet-stream")
            .to_owned(),
        size: u64::try_from(upload.bytes.len()).unwrap_or(u64::MAX),
        sha256: hex(&Sha256::digest(&upload.bytes)),
        refused: inspected.err(),
    }
}

/// Bytes written to the store for a ticket about to be created; their rows
/// are inserted in its transaction by [`attach_staged`].
#[derive(Debug, Clone)]
pub struct Staged {
    /// Where the bytes are.
    pub storage_key: String,
    /// The form field they answer, if any.
    pub form_field: Option<String>,
    /// The cleaned file name.
    pub filename: String,
    /// The sniffed media type.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// Writes the bytes of `sent` files (already checked) to the store. On an
/// error, what was written is deleted again.
pub async fn stage(
    files: &Files,
    sent: Vec<(crate::catalog::form::SentFile, Upload)>,
) -> ApiResult<Vec<Staged>> {
    let mut staged = Vec::with_capacity(sent.len());
    for (file, upload) in sent {
        let key = format!("{PREFIX}/{}", uuid::Uuid::new_v4().simple());
        if let Err(error) = files.put(&key, upload.bytes).await {
            discard(files, &staged).await;
            return Err(error);
        }
        staged.push(Staged {
            storage_key: key,
            form_field: Some(file.field),
            filename: file.filename,
            content_type: file.content_type,
            size: file.size,
            sha256: file.sha256,
        });
    }
    Ok(staged)
}

/// Deletes staged bytes whose rows were never committed (the sweeper
/// removes any this misses).
pub async fn discard(files: &Files, staged: &[Staged]) {
    for file in staged {
        if let Err(error) = files.delete(&file.storage_key).await {
            tracing::warn!(
                ?error,
                key = file.storage_key,
                "could not delete staged bytes"
            );
        }
    }
}

/// Inserts the rows of `staged` files as `ticket`'s own (public)
/// attachments, each with its `ATTACHMENT_ADDED` event, in `txn`.
pub async fn attach_staged(
    txn: &Txn,
    scope: &Scope,
    ticket: &tickets::Model,
    staged: &[Staged],
) -> ApiResult<()> {
    for file in staged {
        let saved = attachments::Entity::insert(attachments::ActiveModel {
            id: NotSet,
            ticket_id: Set(ticket.id),
            comment_id: Set(None),
            visibility: Set(Visibility::Public),
            filename: Set(file.filename.clone()),
            content_type: Set(file.content_type.clone()),
            size: Set(i64::try_from(file.size).unwrap_or(i64::MAX)),
            sha256: Set(file.sha256.clone()),
            storage_key: Set(file.storage_key.clone()),
            uploaded_by: Set(scope.user_id),
            created_at: Set(now()),
            removed_by: Set(None),
            removed_at: Set(None),
            form_field: Set(file.form_field.clone()),
        })
        .exec_with_returning(txn)
        .await?;
        event(txn, scope, ticket, &saved, EventKind::AttachmentAdded).await?;
    }
    Ok(())
}

/// Attaches `upload` to ticket `ticket_id`, or to its comment `comment_id`.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, ticket = ticket_id))]
pub async fn add(
    db: &Db,
    files: &Files,
    scope: &Scope,
    ticket_id: i64,
    comment_id: Option<i64>,
    upload: Upload,
) -> ApiResult<attachments::Model> {
    let size = upload.bytes.len();
    let media_type =
        inspect(files, &upload).map_err(|reason| ApiError::bad_input("file", reason))?;
    // Checked before the bytes are written, and again in the transaction.
    let checked = target(db.reader(), scope, ticket_id, comment_id).await?;
    if count_held(db.reader(), checked.ticket.id).await? >= files.max_per_ticket() {
        return Err(full(files));
    }
    let key = format!("{PREFIX}/{}", uuid::Uuid::new_v4().simple());
    let sha256 = hex(&Sha256::digest(&upload.bytes));
    files.put(&key, upload.bytes).await?;
    let saved = record(db, files, scope, ticket_id, comment_id, |target| {
        attachments::ActiveModel {
            id: NotSet,
            ticket_id: Set(target.ticket.id),
            comment_id: Set(target.comment.as_ref().map(|c| c.id)),
            visibility: Set(target
                .comment
                .as_ref()
                .map_or(Visibility::Public, |c| c.visibility)),
            filename: Set(clean_filename(&upload.filename)),
            content_type: Set(media_type.to_owned()),
            size: Set(i64::try_from(size).unwrap_or(i64::MAX)),
            sha256: Set(sha256.clone()),
            storage_key: Set(key.clone()),
            uploaded_by: Set(scope.user_id),
            created_at: Set(now()),
            removed_by: Set(None),
            removed_at: Set(None),
            form_field: Set(None),
        }
    })
    .await;
    if saved.is_err()
        && let Err(error) = files.delete(&key).await
    {
        // The sweeper removes it later.
        tracing::warn!(?error, key, "could not delete the bytes of a failed upload");
    }
    saved
}

fn full(files: &Files) -> ApiError {
    ApiError::bad_input(
        "file",
        format!(
            "a ticket holds at most {} attachments; remove one first",
            files.max_per_ticket()
        ),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn record(
    db: &Db,
    files: &Files,
    scope: &Scope,
    ticket_id: i64,
    comment_id: Option<i64>,
    row: impl FnOnce(&Target) -> attachments::ActiveModel,
) -> ApiResult<attachments::Model> {
    let txn = db.begin().await?;
    // Touching the ticket first holds its row until commit: concurrent
    // uploads to one ticket count its attachments one after the other.
    tickets::Entity::update_many()
        .col_expr(
            tickets::Column::UpdatedAt,
            sea_orm::sea_query::Expr::val(now()),
        )
        .filter(tickets::Column::Id.eq(ticket_id))
        .exec(&txn)
        .await?;
    let target = target(&txn, scope, ticket_id, comment_id).await?;
    if count_held(&txn, target.ticket.id).await? >= files.max_per_ticket() {
        return Err(full(files));
    }
    let saved = attachments::Entity::insert(row(&target))
        .exec_with_returning(&txn)
        .await?;
    event(
        &txn,
        scope,
        &target.ticket,
        &saved,
        EventKind::AttachmentAdded,
    )
    .await?;
    txn.commit().await?;
    Ok(saved)
}

async fn event(
    txn: &Txn,
    scope: &Scope,
    ticket: &tickets::Model,
    attachment: &attachments::Model,
    kind: EventKind,
) -> ApiResult<()> {
    let changes = [
        Change::new("attachment", None, Some(attachment.id.to_string())),
        Change::new("filename", None, Some(attachment.filename.clone())),
    ];
    events::record(
        txn,
        Draft::new(ticket, scope.user_id, kind, &changes, now()).visible_as(attachment.visibility),
    )
    .await?;
    Ok(())
}

/// One attachment, if the viewer may see it (its ticket, and its comment's
/// visibility); removed ones included (their record).
pub async fn get(db: &Db, scope: &Scope, id: i64) -> ApiResult<Option<attachments::Model>> {
    let Some(attachment) = attachments::Entity::find_by_id(id).one(db.reader()).await? else {
        return Ok(None);
    };
    if !scope.visibilities().contains(&attachment.visibility) {
        return Ok(None);
    }
    let ticket = tickets::Entity::find_by_id(attachment.ticket_id)
        .one(db.reader())
        .await?;
    Ok(ticket.filter(|t| scope.can_see(t)).map(|_| attachment))
}

/// An attachment that may be downloaded (a signed link already said who
/// may): `None` when it does not exist or was removed.
pub async fn downloadable(db: &Db, id: i64) -> ApiResult<Option<attachments::Model>> {
    Ok(attachments::Entity::find_by_id(id)
        .one(db.reader())
        .await?
        .filter(|a| a.removed_at.is_none()))
}

/// The attachments of `ticket_ids` that `visibilities` allow, not removed,
/// oldest first, by ticket.
pub async fn of_tickets(
    db: &Db,
    ticket_ids: &[i64],
    visibilities: &[Visibility],
) -> ApiResult<Vec<(i64, Vec<attachments::Model>)>> {
    let rows = attachments::Entity::find()
        .filter(attachments::Column::TicketId.is_in(ticket_ids.iter().copied()))
        .filter(attachments::Column::Visibility.is_in(visibilities.to_vec()))
        .filter(attachments::Column::RemovedAt.is_null())
        .order_by_asc(attachments::Column::Id)
        .all(db.reader())
        .await?;
    let mut grouped: Vec<(i64, Vec<attachments::Model>)> =
        ticket_ids.iter().map(|id| (*id, Vec::new())).collect();
    for row in rows {
        if let Some((_, list)) = grouped.iter_mut().find(|(id, _)| *id == row.ticket_id) {
            list.push(row);
        }
    }
    Ok(grouped)
}

/// Removes an attachment: the uploader, or the ticket's agents. Its row
/// stays as the record (who removed it, when); `ATTACHMENT_REMOVED` goes in
/// the ticket's history; the bytes are deleted after the commit.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, attachment = id))]
pub async fn remove(
    db: &Db,
    files: &Files,
    scope: &Scope,
    id: i64,
) -> ApiResult<attachments::Model> {
    let txn = db.begin().await?;
    let attachment = attachments::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .filter(|a| scope.visibilities().contains(&a.visibility))
        .filter(|a| a.removed_at.is_none());
    let not_found = || ApiError::NotFound("no attachment with that `id`".into());
    let attachment = attachment.ok_or_else(not_found)?;
    let ticket = tickets::Entity::find_by_id(attachment.ticket_id)
        .one(&txn)
        .await?
        .filter(|t| scope.can_see(t))
        .ok_or_else(not_found)?;
    if attachment.uploaded_by != scope.user_id && !scope.may_work(&ticket) {
        return Err(ApiError::Forbidden(
            "only who attached it and the ticket's agents remove an attachment".into(),
        ));
    }
    let at = now();
    let removed = attachments::Entity::update(attachments::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(attachment.id),
        removed_by: Set(Some(scope.user_id)),
        removed_at: Set(Some(at)),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    event(&txn, scope, &ticket, &removed, EventKind::AttachmentRemoved).await?;
    txn.commit().await?;
    if let Err(error) = files.delete(&removed.storage_key).await {
        tracing::warn!(
            ?error,
            key = removed.storage_key,
            "could not delete a removed attachment's bytes"
        );
    }
    Ok(removed)
}

/// Runs [`sweep`] every hour until aborted.
pub fn spawn_sweeper(db: Db, files: Files) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            ticks.tick().await;
            match sweep(&db, &files).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed attachment files no row owns"),
                Err(error) => tracing::warn!(?error, "attachment sweep failed"),
            }
        }
    })
}

/// Removes stored bytes that no live attachment owns: left by a crash
/// between writing them and committing their row, or by a removal whose
/// delete failed. Only bytes older than an hour are considered.
pub async fn sweep(db: &Db, files: &Files) -> ApiResult<usize> {
    sweep_written_before(db, files, now() - ORPHAN_AGE).await
}

/// [`sweep`] of the bytes written before `cutoff`.
pub async fn sweep_written_before(
    db: &Db,
    files: &Files,
    cutoff: DateTime<Utc>,
) -> ApiResult<usize> {
    let stored = files.list(PREFIX).await?;
    let mut removed = 0;
    for (key, written) in stored {
        if written > cutoff {
            continue;
        }
        let live = attachments::Entity::find()
            .filter(attachments::Column::StorageKey.eq(&key))
            .filter(attachments::Column::RemovedAt.is_null())
            .count_rows(db.reader())
            .await?;
        if live == 0 {
            files.delete(&key).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
