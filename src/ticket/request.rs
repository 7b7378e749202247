//! Requests from the catalog: a submitted form, checked by the catalog,
//! becomes a `SERVICE_REQUEST` ticket in the item's fulfilment queue, with the
//! item's approval rule and fulfilment tasks.

use super::{
    fulfilment::Plan,
    service::{self, NewTicket},
};
use crate::{
    access::Scope,
    catalog::service::{self as catalog, Submission},
    db::Db,
    entity::tickets,
    error::ApiResult,
    vocabulary::TicketKind,
};

/// Turns a submitted form into a `SERVICE_REQUEST` ticket. Every problem with
/// the answers is reported at once.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, item = submission.item_id))]
pub async fn submit(db: &Db, scope: &Scope, submission: Submission) -> ApiResult<tickets::Model> {
    let requester_id = submission.requester_id;
    let request = catalog::prepare(db, scope, submission).await?;
    let item = request.item;
    let new = NewTicket {
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
        ..NewTicket::default()
    };
    service::create(db, scope, new).await
}
