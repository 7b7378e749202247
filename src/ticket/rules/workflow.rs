//! The ticket workflow: one state machine, and who may move a ticket along it.

use crate::{
    access::Relation,
    auth::Role,
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
/// and reopen or close their own resolved one. `INTEGRATION` writes nothing.
pub fn allowed(from: Status, relation: &Relation) -> Vec<Status> {
    if relation.role == Role::Integration {
        return Vec::new();
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
        }
    }

    fn requester() -> Relation {
        Relation {
            role: Role::Requester,
            is_requester: true,
            works_ticket: false,
            approval_gated: false,
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
        };
        assert!(allowed(New, &integration).is_empty());
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
}
