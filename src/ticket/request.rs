//! Requests from the catalog: a submitted form, checked by the catalog,
//! becomes a `SERVICE_REQUEST` ticket in the item's fulfilment queue, with the
//! item's approval rule and fulfilment tasks.

use super::{
    fulfilment::Plan,
    service::{self, NewTicket},
};
use crate::{
    access::Scope,
    attachments::{
        Files,
        service::{self as attachments, Upload},
    },
    catalog::service::{self as catalog, Submission},
    db::Db,
    entity::tickets,
    error::ApiError,
    error::ApiResult,
    vocabulary::TicketKind,
};

/// Turns a submitted form into a `SERVICE_REQUEST` ticket. Every problem with
/// the answers is reported at once. A form with a required `FILE` field
/// needs [`submit_with_files`].
pub async fn submit(db: &Db, scope: &Scope, submission: Submission) -> ApiResult<tickets::Model> {
    let requester_id = submission.requester_id;
    let request = catalog::prepare(db, scope, submission, &[]).await?;
    service::create(db, scope, request_ticket(request, requester_id, Vec::new())).await
}

/// [`submit`], with the `uploads` sent for the form's `FILE` fields (by
/// field key). Every problem with the answers and the files is reported at
/// once. The files' bytes are written before the ticket's transaction and
/// deleted again if it fails, or if a retry finds the first request.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, item = submission.item_id))]
pub async fn submit_with_files(
    db: &Db,
    files: &Files,
    scope: &Scope,
    submission: Submission,
    uploads: Vec<(String, Upload)>,
) -> ApiResult<tickets::Model> {
    let requester_id = submission.requester_id;
    let sent: Vec<_> = uploads
        .into_iter()
        .map(|(field, upload)| (attachments::sent_for_form(files, &field, &upload), upload))
        .collect();
    let checked: Vec<_> = sent.iter().map(|(file, _)| file.clone()).collect();
    let request = catalog::prepare(db, scope, submission, &checked).await?;
    if sent.len() as u64 > files.max_per_ticket() {
        return Err(ApiError::bad_input(
            "files",
            format!(
                "a ticket holds at most {} attachments",
                files.max_per_ticket()
            ),
        ));
    }
    let staged = attachments::stage(files, sent).await?;
    let new = request_ticket(request, requester_id, staged.clone());
    let created = service::create_or_replay(db, scope, new).await;
    if !matches!(created, Ok((_, true))) {
        attachments::discard(files, &staged).await;
    }
    Ok(created?.0)
}

/// The ticket a checked request makes.
fn request_ticket(
    request: catalog::Request,
    requester_id: Option<i64>,
    staged: Vec<attachments::Staged>,
) -> NewTicket {
    let item = request.item;
    NewTicket {
        submitted: Some(request.submitted),
        kind: Some(TicketKind::ServiceRequest),
        title: request.title,
        description: request.description,
        impact: Some(item.default_impact),
        urgency: Some(item.default_urgency),
        queue_id: Some(item.fulfilment_queue_id),
        idempotency_key: request.idempotency_key,
        service_id: Some(item.service_id),
        catalog_item_id: Some(item.id),
        request_answers: Some(request.answers),
        plan: Plan {
            approvers: request.approvers,
            mode: Some(item.approval_mode),
            tasks: catalog::tasks_of(&item),
        },
        requester_id,
        attachments: staged,
        ..NewTicket::default()
    }
}
