//! The ticket workflow: one state machine, and who may move a ticket along it.

use chrono::{DateTime, Utc};

use super::sla::Clock;
use crate::{
    access::Relation,
    auth::Role,
    text::clean,
    vocabulary::{PendingReason, Status},
};

/// Every status, in workflow order.
pub const ALL: [Status; 7] = [
    Status::New,
    Status::AwaitingApproval,
    Status::InProgress,
    Status::Pending,
    Status::Resolved,
    Status::Closed,
    Status::Cancelled,
];

/// The moves the state machine has, whoever makes them.
pub fn successors(from: Status) -> &'static [Status] {
    use Status::*;
    match from {
        New => &[AwaitingApproval, InProgress, Pending, Resolved, Cancelled],
        AwaitingApproval => &[InProgress, Cancelled],
        InProgress => &[Pending, Resolved, Cancelled],
        Pending => &[InProgress, Resolved, Cancelled],
        Resolved => &[InProgress, Closed],
        Closed | Cancelled => &[],
    }
}

/// The statuses in which work on a ticket is still to be done.
pub const OPEN: [Status; 4] = [
    Status::New,
    Status::AwaitingApproval,
    Status::InProgress,
    Status::Pending,
];

/// True while work on the ticket is still to be done.
pub fn is_open(status: Status) -> bool {
    OPEN.contains(&status)
}

/// The moves `relation` may make from `from`.
///
/// Staff may make every move. A requester may cancel their own open ticket,
/// and reopen or close their own resolved one. `INTEGRATION` moves nothing,
/// except that monitoring resolves the incident its alert opened.
pub fn allowed(from: Status, relation: &Relation) -> Vec<Status> {
    if relation.role == Role::Integration {
        return if relation.resolves_alert && successors(from).contains(&Status::Resolved) {
            vec![Status::Resolved]
        } else {
            Vec::new()
        };
    }
    successors(from)
        .iter()
        .copied()
        .filter(|to| {
            !(relation.approval_gated
                && from == Status::New
                && !matches!(to, Status::AwaitingApproval | Status::Cancelled))
        })
        .filter(|to| {
            relation.is_staff()
                || (relation.is_requester
                    && match to {
                        Status::Cancelled => is_open(from),
                        Status::InProgress | Status::Closed => from == Status::Resolved,
                        _ => false,
                    })
        })
        .collect()
}

/// What a move carries besides its target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Move {
    /// Why (required to cancel).
    pub reason: Option<String>,
    /// Why the ticket waits (required for `PENDING`).
    pub pending_reason: Option<PendingReason>,
    /// How it was resolved (required for `RESOLVED`).
    pub resolution: Option<String>,
}

/// Why a move was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The target is not reachable for this viewer; these are.
    NotAllowed {
        /// The moves the viewer may make.
        allowed: Vec<Status>,
    },
    /// `PENDING` needs a `pendingReason`.
    PendingReasonRequired,
    /// `RESOLVED` needs a `resolution`.
    ResolutionRequired,
    /// `CANCELLED` needs a `reason`.
    ReasonRequired,
}

/// Checks one move.
pub fn check(from: Status, to: Status, carried: &Move, relation: &Relation) -> Result<(), Refusal> {
    let allowed = allowed(from, relation);
    if !allowed.contains(&to) {
        return Err(Refusal::NotAllowed { allowed });
    }
    let blank = |text: &Option<String>| text.as_deref().is_none_or(|t| t.trim().is_empty());
    match to {
        Status::Pending if carried.pending_reason.is_none() => Err(Refusal::PendingReasonRequired),
        Status::Resolved if blank(&carried.resolution) => Err(Refusal::ResolutionRequired),
        Status::Cancelled if blank(&carried.reason) => Err(Refusal::ReasonRequired),
        _ => Ok(()),
    }
}

/// Checks that a move carries nothing meant for another target: a
/// `pendingReason` goes only with `PENDING`, a `resolution` only with
/// `RESOLVED`.
pub fn check_carried(to: Status, carried: &Move) -> Result<(), Stray> {
    if carried.pending_reason.is_some() && to != Status::Pending {
        return Err(Stray::PendingReason);
    }
    if carried.resolution.is_some() && to != Status::Resolved {
        return Err(Stray::Resolution);
    }
    Ok(())
}

/// Something a move carried that its target does not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stray {
    /// A `pendingReason` without a move to `PENDING`.
    PendingReason,
    /// A `resolution` without a move to `RESOLVED`.
    Resolution,
}

/// The fields of a ticket that its status stamps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamps {
    /// Why it waits, while `PENDING`.
    pub pending_reason: Option<PendingReason>,
    /// When it was resolved, while `RESOLVED` or `CLOSED`.
    pub resolved_at: Option<DateTime<Utc>>,
    /// How it was resolved.
    pub resolution: Option<String>,
    /// When it was closed or cancelled.
    pub closed_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
}

/// What a move does beyond the ticket's own row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Withdraw the approvals still pending: the ticket left `AWAITING_APPROVAL`.
    pub withdraw_approvals: bool,
    /// Skip the open fulfilment tasks: the ticket was cancelled.
    pub skip_open_tasks: bool,
    /// Ask any manager for approval: the ticket was sent for approval by hand.
    pub request_approval: bool,
    /// A reason to record with the move, where no field keeps it (cancelling
    /// keeps its reason in `cancelReason`).
    pub reason: Option<String>,
}

/// Applies the move `from` → `to` at `at`: runs the SLA clock (the first
/// move to `IN_PROGRESS` is the first response, `PENDING` pauses, leaving it
/// resumes, `RESOLVED`, `CLOSED` and `CANCELLED` stop, reopening restarts),
/// stamps the status fields, and says what else the move does. The move
/// must have passed [`check`].
pub fn apply(
    from: Status,
    to: Status,
    carried: &Move,
    at: DateTime<Utc>,
    clock: &mut Clock,
    stamps: &mut Stamps,
) -> Effects {
    if from == Status::Pending {
        clock.resume(at);
        stamps.pending_reason = None;
    }
    match to {
        Status::InProgress => {
            if from == Status::Resolved {
                clock.restart(at);
                stamps.resolved_at = None;
                stamps.resolution = None;
            }
            clock.respond(at);
        }
        Status::Pending => {
            clock.pause(at);
            stamps.pending_reason = carried.pending_reason;
        }
        Status::Resolved => {
            clock.stop(at);
            stamps.resolved_at = Some(at);
            stamps.resolution = clean(carried.resolution.as_deref());
        }
        Status::Closed => {
            clock.stop(at);
            stamps.closed_at = Some(at);
        }
        Status::Cancelled => {
            clock.stop(at);
            stamps.closed_at = Some(at);
            stamps.cancel_reason = clean(carried.reason.as_deref());
        }
        Status::New | Status::AwaitingApproval => {}
    }
    Effects {
        withdraw_approvals: from == Status::AwaitingApproval,
        skip_open_tasks: to == Status::Cancelled,
        request_approval: to == Status::AwaitingApproval,
        reason: clean(carried.reason.as_deref()).filter(|_| to != Status::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    fn staff() -> Relation {
        Relation {
            role: Role::Agent,
            is_requester: false,
            works_ticket: true,
            approval_gated: false,
            resolves_alert: false,
        }
    }

    fn requester() -> Relation {
        Relation {
            role: Role::Requester,
            is_requester: true,
            works_ticket: false,
            approval_gated: false,
            resolves_alert: false,
        }
    }

    fn resolved_with(note: &str) -> Move {
        Move {
            resolution: Some(note.into()),
            ..Move::default()
        }
    }

    #[test]
    fn normal_and_emergency_changes_start_only_through_approval() {
        let gated = Relation {
            approval_gated: true,
            ..staff()
        };
        assert_eq!(allowed(New, &gated), vec![AwaitingApproval, Cancelled]);
        assert!(matches!(
            check(New, InProgress, &Move::default(), &gated),
            Err(Refusal::NotAllowed { .. })
        ));
        // Once approved, the change is worked like any other ticket.
        assert_eq!(allowed(InProgress, &gated), successors(InProgress).to_vec());
    }

    #[test]
    fn closed_and_cancelled_are_final() {
        let admin = Relation {
            role: Role::Admin,
            ..staff()
        };
        assert!(allowed(Closed, &admin).is_empty());
        assert!(allowed(Cancelled, &admin).is_empty());
    }

    #[test]
    fn staff_may_make_every_move_of_the_machine() {
        for from in ALL {
            assert_eq!(
                allowed(from, &staff()),
                successors(from).to_vec(),
                "{from:?}"
            );
        }
        let manager = Relation {
            role: Role::Manager,
            is_requester: false,
            works_ticket: false,
            approval_gated: false,
            resolves_alert: false,
        };
        assert_eq!(allowed(New, &manager), successors(New).to_vec());
    }

    #[test]
    fn agents_outside_the_queue_and_integrations_may_not_move_tickets() {
        let outsider = Relation {
            works_ticket: false,
            ..staff()
        };
        assert!(allowed(InProgress, &outsider).is_empty());
        let integration = Relation {
            role: Role::Integration,
            is_requester: true,
            works_ticket: true,
            approval_gated: false,
            resolves_alert: false,
        };
        assert!(allowed(New, &integration).is_empty());
        let monitoring = Relation {
            resolves_alert: true,
            ..integration
        };
        assert_eq!(allowed(New, &monitoring), vec![Resolved]);
        assert_eq!(allowed(InProgress, &monitoring), vec![Resolved]);
        assert!(allowed(Resolved, &monitoring).is_empty());
        assert!(allowed(Closed, &monitoring).is_empty());
    }

    #[test]
    fn requesters_cancel_open_tickets_and_reopen_or_close_resolved_ones() {
        assert_eq!(allowed(New, &requester()), vec![Cancelled]);
        assert_eq!(allowed(Pending, &requester()), vec![Cancelled]);
        assert_eq!(allowed(Resolved, &requester()), vec![InProgress, Closed]);
        assert!(allowed(Closed, &requester()).is_empty());
        let stranger = Relation {
            is_requester: false,
            ..requester()
        };
        assert!(allowed(New, &stranger).is_empty());
    }

    #[test]
    fn a_refused_move_names_the_allowed_ones() {
        assert_eq!(
            check(New, Closed, &Move::default(), &requester()),
            Err(Refusal::NotAllowed {
                allowed: vec![Cancelled]
            })
        );
    }

    #[test]
    fn moves_carry_what_they_need() {
        assert_eq!(
            check(InProgress, Pending, &Move::default(), &staff()),
            Err(Refusal::PendingReasonRequired)
        );
        let waiting = Move {
            pending_reason: Some(PendingReason::AwaitingVendor),
            ..Move::default()
        };
        assert_eq!(check(InProgress, Pending, &waiting, &staff()), Ok(()));
        assert_eq!(
            check(InProgress, Resolved, &resolved_with("  "), &staff()),
            Err(Refusal::ResolutionRequired)
        );
        assert_eq!(
            check(
                InProgress,
                Resolved,
                &resolved_with("replaced disk"),
                &staff()
            ),
            Ok(())
        );
        assert_eq!(
            check(New, Cancelled, &Move::default(), &requester()),
            Err(Refusal::ReasonRequired)
        );
        let reason = Move {
            reason: Some("duplicate".into()),
            ..Move::default()
        };
        assert_eq!(check(New, Cancelled, &reason, &requester()), Ok(()));
        assert_eq!(
            check(Resolved, InProgress, &Move::default(), &requester()),
            Ok(())
        );
    }

    mod effects {
        use chrono::{DateTime, Duration, TimeZone, Utc};

        use super::super::*;
        use crate::ticket::rules::sla::Targets;
        use crate::vocabulary::Status::*;

        fn t(minutes: i64) -> DateTime<Utc> {
            Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + Duration::minutes(minutes)
        }

        fn clock() -> Clock {
            Clock::start(
                t(0),
                Targets {
                    response: Duration::hours(1),
                    resolution: Duration::hours(8),
                },
            )
        }

        fn carrying(
            reason: Option<&str>,
            pending: Option<PendingReason>,
            resolution: Option<&str>,
        ) -> Move {
            Move {
                reason: reason.map(str::to_owned),
                pending_reason: pending,
                resolution: resolution.map(str::to_owned),
            }
        }

        #[test]
        fn the_first_move_to_in_progress_is_the_first_response() {
            let (mut clock, mut stamps) = (clock(), Stamps::default());
            let effects = apply(
                New,
                InProgress,
                &Move::default(),
                t(10),
                &mut clock,
                &mut stamps,
            );
            assert_eq!(clock.responded_at, Some(t(10)));
            assert_eq!(effects, Effects::default());
            assert_eq!(stamps, Stamps::default());
        }

        #[test]
        fn pending_pauses_with_its_reason_and_leaving_resumes_and_clears_it() {
            let (mut clock, mut stamps) = (clock(), Stamps::default());
            let wait = carrying(None, Some(PendingReason::AwaitingCaller), None);
            apply(InProgress, Pending, &wait, t(30), &mut clock, &mut stamps);
            assert_eq!(clock.paused_since, Some(t(30)));
            assert_eq!(stamps.pending_reason, Some(PendingReason::AwaitingCaller));
            let due = clock.resolution_due();

            apply(
                Pending,
                InProgress,
                &Move::default(),
                t(90),
                &mut clock,
                &mut stamps,
            );
            assert_eq!(clock.paused_since, None);
            assert_eq!(clock.paused_seconds, 3600);
            assert_eq!(stamps.pending_reason, None);
            assert!(
                clock.resolution_due() > due,
                "the hour paused moves the due time"
            );
        }

        #[test]
        fn resolving_stops_the_clock_and_stamps_the_cleaned_note() {
            let (mut clock, mut stamps) = (clock(), Stamps::default());
            let done = carrying(None, None, Some("  replaced the cable  "));
            let effects = apply(InProgress, Resolved, &done, t(60), &mut clock, &mut stamps);
            assert_eq!(clock.stopped_at, Some(t(60)));
            assert_eq!(stamps.resolved_at, Some(t(60)));
            assert_eq!(stamps.resolution.as_deref(), Some("replaced the cable"));
            assert_eq!(effects, Effects::default());
        }

        #[test]
        fn reopening_clears_the_resolution_and_restarts_the_clock() {
            let (mut clock, mut stamps) = (clock(), Stamps::default());
            let done = carrying(None, None, Some("fixed"));
            apply(InProgress, Resolved, &done, t(60), &mut clock, &mut stamps);
            let again = carrying(Some("still broken"), None, None);
            let effects = apply(
                Resolved,
                InProgress,
                &again,
                t(120),
                &mut clock,
                &mut stamps,
            );
            assert_eq!(clock.stopped_at, None);
            assert_eq!(stamps.resolved_at, None);
            assert_eq!(stamps.resolution, None);
            assert_eq!(effects.reason.as_deref(), Some("still broken"));
        }

        #[test]
        fn cancelling_stamps_the_reason_and_skips_open_tasks() {
            let (mut clock, mut stamps) = (clock(), Stamps::default());
            let drop = carrying(Some(" duplicate "), None, None);
            let effects = apply(New, Cancelled, &drop, t(5), &mut clock, &mut stamps);
            assert_eq!(clock.stopped_at, Some(t(5)));
            assert_eq!(stamps.closed_at, Some(t(5)));
            assert_eq!(stamps.cancel_reason.as_deref(), Some("duplicate"));
            assert!(effects.skip_open_tasks);
            assert_eq!(effects.reason, None, "cancelReason keeps it");
        }

        #[test]
        fn closing_stamps_closed_at() {
            let (mut clock, mut stamps) = (clock(), Stamps::default());
            apply(
                Resolved,
                Closed,
                &Move::default(),
                t(200),
                &mut clock,
                &mut stamps,
            );
            assert_eq!(stamps.closed_at, Some(t(200)));
            assert_eq!(clock.stopped_at, Some(t(200)));
        }

        #[test]
        fn approval_moves_request_and_withdraw_approvals() {
            let (mut clock, mut stamps) = (clock(), Stamps::default());
            let sent = apply(
                New,
                AwaitingApproval,
                &Move::default(),
                t(1),
                &mut clock,
                &mut stamps,
            );
            assert!(sent.request_approval && !sent.withdraw_approvals);
            let left = apply(
                AwaitingApproval,
                InProgress,
                &Move::default(),
                t(2),
                &mut clock,
                &mut stamps,
            );
            assert!(left.withdraw_approvals && !left.request_approval);
            let cancelled = carrying(Some("no budget"), None, None);
            let gone = apply(
                AwaitingApproval,
                Cancelled,
                &cancelled,
                t(3),
                &mut clock,
                &mut stamps,
            );
            assert!(gone.withdraw_approvals && gone.skip_open_tasks);
        }

        #[test]
        fn stray_fields_are_refused() {
            let wait = carrying(None, Some(PendingReason::AwaitingCaller), None);
            assert_eq!(check_carried(Resolved, &wait), Err(Stray::PendingReason));
            assert_eq!(check_carried(Pending, &wait), Ok(()));
            let done = carrying(None, None, Some("x"));
            assert_eq!(check_carried(Closed, &done), Err(Stray::Resolution));
            assert_eq!(check_carried(Resolved, &done), Ok(()));
        }
    }
}
