//! Ticket words: kinds, levels, priorities, statuses and the like.
//! Each is stored as its upper-case name and exposed as a GraphQL enum.

use sea_orm::entity::prelude::StringLen;

vocabulary! {
    /// What a ticket is about.
    TicketKind {
        /// Something broke.
        Incident = "INCIDENT",
        /// Something wanted, usually from the catalog.
        ServiceRequest = "SERVICE_REQUEST",
        /// The root cause of one or more incidents.
        Problem = "PROBLEM",
        /// A planned change.
        Change = "CHANGE",
    }
}

impl TicketKind {
    /// The prefix of this kind's ticket numbers.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Incident => "INC",
            Self::ServiceRequest => "REQ",
            Self::Problem => "PRB",
            Self::Change => "CHG",
        }
    }

    /// The kind a ticket number belongs to, from its prefix.
    pub fn from_number(number: &str) -> Option<Self> {
        let prefix = number.get(..3)?;
        [
            Self::Incident,
            Self::ServiceRequest,
            Self::Problem,
            Self::Change,
        ]
        .into_iter()
        .find(|kind| kind.prefix().eq_ignore_ascii_case(prefix))
    }

    /// The human number for the `n`th ticket of this kind, such as `INC0001001`.
    pub fn number(self, n: i64) -> String {
        format!("{}{n:07}", self.prefix())
    }
}

vocabulary! {
    /// How much something matters: impact, urgency or risk.
    Level {
        /// Large.
        High = "HIGH",
        /// Moderate.
        Medium = "MEDIUM",
        /// Small.
        Low = "LOW",
    }
}

vocabulary! {
    /// Importance, from impact × urgency.
    Priority {
        /// High impact and high urgency.
        Critical = "CRITICAL",
        /// One high and one medium.
        High = "HIGH",
        /// Medium overall.
        Moderate = "MODERATE",
        /// One medium and one low.
        Low = "LOW",
        /// Low impact and low urgency.
        Planning = "PLANNING",
    }
}

impl Priority {
    /// Every priority, most important first.
    pub const ALL: [Self; 5] = [
        Self::Critical,
        Self::High,
        Self::Moderate,
        Self::Low,
        Self::Planning,
    ];

    /// Sort rank: 0 for `CRITICAL` up to 4 for `PLANNING`.
    pub fn rank(self) -> i32 {
        match self {
            Self::Critical => 0,
            Self::High => 1,
            Self::Moderate => 2,
            Self::Low => 3,
            Self::Planning => 4,
        }
    }
}

vocabulary! {
    /// Where a ticket is in its workflow.
    Status {
        /// Just reported, not yet picked up.
        New = "NEW",
        /// Waiting for an approval decision.
        AwaitingApproval = "AWAITING_APPROVAL",
        /// Being worked.
        InProgress = "IN_PROGRESS",
        /// Waiting on someone else; the resolution clock is paused.
        Pending = "PENDING",
        /// Fixed or fulfilled; may be reopened or closed.
        Resolved = "RESOLVED",
        /// Done for good.
        Closed = "CLOSED",
        /// Withdrawn for good.
        Cancelled = "CANCELLED",
    }
}

vocabulary! {
    /// Why a ticket is `PENDING`.
    PendingReason {
        /// Waiting for the requester.
        AwaitingCaller = "AWAITING_CALLER",
        /// Waiting for a vendor.
        AwaitingVendor = "AWAITING_VENDOR",
        /// Waiting for a change to be implemented.
        AwaitingChange = "AWAITING_CHANGE",
        /// Waiting for a problem to be solved.
        AwaitingProblem = "AWAITING_PROBLEM",
    }
}

vocabulary! {
    /// How a change is authorised.
    ChangeType {
        /// Pre-approved, low-risk and routine.
        Standard = "STANDARD",
        /// Assessed and approved case by case.
        Normal = "NORMAL",
        /// Must be done at once to restore service.
        Emergency = "EMERGENCY",
    }
}

vocabulary! {
    /// Who may read a comment or an event.
    Visibility {
        /// The requester sees it.
        Public = "PUBLIC",
        /// Agents only (a work note).
        Internal = "INTERNAL",
    }
}

vocabulary! {
    /// How two tickets are linked.
    LinkKind {
        /// A problem and an incident it causes.
        CausedBy = "CAUSED_BY",
        /// A change and a ticket it relates to.
        RelatedTo = "RELATED_TO",
    }
}

vocabulary! {
    /// What happened to a ticket.
    EventKind {
        /// The ticket was created.
        Created = "CREATED",
        /// Fields changed.
        Updated = "UPDATED",
        /// The status changed.
        StatusChanged = "STATUS_CHANGED",
        /// The assignee changed.
        Assigned = "ASSIGNED",
        /// The ticket moved into a queue.
        EnteredQueue = "ENTERED_QUEUE",
        /// The ticket moved out of a queue.
        LeftQueue = "LEFT_QUEUE",
        /// Someone commented.
        CommentAdded = "COMMENT_ADDED",
        /// The ticket was linked to another.
        Linked = "LINKED",
        /// An SLA target is about to be missed.
        SlaWarning = "SLA_WARNING",
        /// An SLA target was missed.
        SlaBreached = "SLA_BREACHED",
        /// An approval was asked for.
        ApprovalRequested = "APPROVAL_REQUESTED",
        /// An approver decided.
        ApprovalDecided = "APPROVAL_DECIDED",
        /// A fulfilment task changed.
        TaskUpdated = "TASK_UPDATED",
        /// A routing rule set the queue, assignee, impact or urgency.
        Routed = "ROUTED",
        /// A file was attached to the ticket or one of its comments.
        AttachmentAdded = "ATTACHMENT_ADDED",
        /// An attachment was removed (its record stays).
        AttachmentRemoved = "ATTACHMENT_REMOVED",
    }
}

vocabulary! {
    /// Where an approval stands.
    ApprovalState {
        /// Waiting for the approver.
        Pending = "PENDING",
        /// Approved.
        Approved = "APPROVED",
        /// Rejected, with a comment.
        Rejected = "REJECTED",
        /// No longer needed: the rule was satisfied by another approver, or the
        /// ticket was rejected or cancelled before this one was decided.
        Withdrawn = "WITHDRAWN",
    }
}

vocabulary! {
    /// Where a fulfilment task stands.
    TaskStatus {
        /// To do.
        Open = "OPEN",
        /// Done.
        Done = "DONE",
        /// Not needed, with a reason.
        Skipped = "SKIPPED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_prefixed_and_padded_and_parse_back() {
        assert_eq!(TicketKind::Incident.number(1001), "INC0001001");
        assert_eq!(TicketKind::ServiceRequest.number(12), "REQ0000012");
        assert_eq!(
            TicketKind::from_number("chg0001001"),
            Some(TicketKind::Change)
        );
        assert_eq!(TicketKind::from_number("XYZ1"), None);
        assert_eq!(TicketKind::from_number("I"), None);
    }

    #[test]
    fn priorities_rank_most_important_first() {
        let ranks: Vec<i32> = Priority::ALL.iter().map(|p| p.rank()).collect();
        assert_eq!(ranks, vec![0, 1, 2, 3, 4]);
    }
}
