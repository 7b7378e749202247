//! Moving a ticket along the workflow: the checks that need the database,
//! the status rules from `rules::workflow`, and their effects.

use super::update::diff;
use crate::ticket::store::{check_version, clock, load, save, store_clock};
use crate::ticket::{
    fulfilment::{self, Plan},
    rules::workflow::{self, Move, Refusal, Stamps, Stray},
};
use crate::{
    access::Scope,
    clock::now,
    db::Db,
    entity::tickets,
    error::{ApiError, ApiResult},
    events::{self, Change, Draft},
    text::long_text,
    vocabulary::{EventKind, Status},
};

/// Moves a ticket along the workflow.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, ticket = id, to = to.as_str()))]
pub async fn transition(
    db: &Db,
    scope: &Scope,
    id: i64,
    to: Status,
    carried: Move,
    expected_version: Option<i32>,
) -> ApiResult<tickets::Model> {
    let txn = db.begin().await?;
    let before = load(&txn, scope, id, "id").await?;
    if !scope.may_move(&before) {
        return Err(ApiError::Forbidden("integrations are read-only".into()));
    }
    check_version(&before, expected_version)?;
    workflow::check(before.status, to, &carried, &scope.relation(&before))
        .map_err(|refusal| refused(before.status, to, refusal))?;
    if before.status == Status::AwaitingApproval
        && to == Status::InProgress
        && fulfilment::awaiting(&txn, before.id).await?
    {
        return Err(ApiError::bad_input(
            "to",
            "the ticket awaits approval: an approver decides it with decideApproval",
        ));
    }
    if to == Status::Resolved {
        let open = fulfilment::open_tasks(&txn, before.id).await?;
        if open > 0 {
            return Err(ApiError::bad_input(
                "to",
                format!("{open} fulfilment task(s) are still open: complete or skip them first"),
            ));
        }
    }
    workflow::check_carried(to, &carried).map_err(|stray| match stray {
        Stray::PendingReason => ApiError::bad_input(
            "pendingReason",
            "a pendingReason goes with a move to PENDING",
        ),
        Stray::Resolution => {
            ApiError::bad_input("resolution", "a resolution goes with a move to RESOLVED")
        }
    })?;
    for (field, text) in [
        ("reason", &carried.reason),
        ("resolution", &carried.resolution),
    ] {
        if let Some(text) = text {
            long_text(text, field)?;
        }
    }

    let at = now();
    let mut clock = clock(&before);
    let mut stamps = Stamps {
        pending_reason: before.pending_reason,
        resolved_at: before.resolved_at,
        resolution: before.resolution.clone(),
        closed_at: before.closed_at,
        cancel_reason: before.cancel_reason.clone(),
    };
    let effects = workflow::apply(before.status, to, &carried, at, &mut clock, &mut stamps);
    let mut after = tickets::Model {
        status: to,
        pending_reason: stamps.pending_reason,
        resolved_at: stamps.resolved_at,
        resolution: stamps.resolution,
        closed_at: stamps.closed_at,
        cancel_reason: stamps.cancel_reason,
        ..before.clone()
    };
    store_clock(&mut after, &clock);
    let mut changes = diff(&before, &after);
    if let Some(reason) = effects.reason {
        changes.push(Change::new("reason", None, Some(reason)));
    }
    if effects.withdraw_approvals {
        let withdrawn = fulfilment::withdraw(&txn, before.id, at).await?;
        changes.extend(fulfilment::withdrawn_change(withdrawn));
    }
    if effects.skip_open_tasks {
        let skipped = fulfilment::skip_open_tasks(&txn, scope.user_id, before.id, at).await?;
        changes.extend(fulfilment::skipped_change(skipped));
    }
    let saved = save(&txn, &before, after, at).await?;
    events::record(
        &txn,
        Draft::new(
            &saved,
            scope.user_id,
            EventKind::StatusChanged,
            &changes,
            at,
        ),
    )
    .await?;
    if effects.request_approval {
        // Sent for approval by hand: any manager decides.
        let plan = Plan {
            approvers: Some(None),
            ..Plan::default()
        };
        fulfilment::start(&txn, scope.user_id, &saved, &plan, at).await?;
    }
    txn.commit().await?;
    Ok(saved)
}

pub(super) fn refused(from: Status, to: Status, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::NotAllowed { allowed } => {
            let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
            let allowed = if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            };
            ApiError::bad_input(
                "to",
                format!(
                    "cannot move from {} to {}; allowed: {allowed}",
                    from.as_str(),
                    to.as_str()
                ),
            )
        }
        Refusal::PendingReasonRequired => {
            ApiError::bad_input("pendingReason", "PENDING needs a pendingReason")
        }
        Refusal::ResolutionRequired => {
            ApiError::bad_input("resolution", "RESOLVED needs a resolution note")
        }
        Refusal::ReasonRequired => ApiError::bad_input("reason", "cancelling needs a reason"),
    }
}
