//! `tickets`: incidents, service requests, problems and changes.

use sea_orm::entity::prelude::*;

use crate::vocabulary::{ChangeType, Level, PendingReason, Priority, Status, TicketKind};

/// One unit of work.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub number: String,
    pub kind: TicketKind,
    pub title: String,
    pub description: String,
    pub status: Status,
    pub pending_reason: Option<PendingReason>,
    pub impact: Level,
    pub urgency: Level,
    pub priority: Priority,
    pub priority_rank: i32,
    pub requester_id: i64,
    pub assignee_id: Option<i64>,
    pub queue_id: i64,
    pub service_id: Option<i64>,
    pub catalog_item_id: Option<i64>,
    /// JSON object of the request form's answers.
    pub request_answers: Option<String>,
    pub version: i32,
    pub resolution: Option<String>,
    pub cancel_reason: Option<String>,
    pub root_cause: Option<String>,
    pub workaround: Option<String>,
    pub known_error: bool,
    pub change_type: Option<ChangeType>,
    pub risk: Option<Level>,
    pub planned_start: Option<DateTimeUtc>,
    pub planned_end: Option<DateTimeUtc>,
    pub response_target_seconds: i64,
    pub resolution_target_seconds: i64,
    pub response_due_at: DateTimeUtc,
    pub resolution_due_at: DateTimeUtc,
    /// The queue's due-time sort key: `resolution_due_at` while the clock
    /// runs, `NO_DUE` (see `ticket::rules::sla`) while paused or stopped.
    pub queue_due_at: DateTimeUtc,
    pub responded_at: Option<DateTimeUtc>,
    pub resolved_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    pub sla_stopped_at: Option<DateTimeUtc>,
    pub paused_since: Option<DateTimeUtc>,
    pub paused_seconds: i64,
    pub response_warn_at: Option<DateTimeUtc>,
    pub resolution_warn_at: Option<DateTimeUtc>,
    pub response_warned: bool,
    pub response_breach_noted: bool,
    pub resolution_warned: bool,
    pub resolution_breach_noted: bool,
    pub idempotency_key: Option<String>,
    pub idempotency_payload: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[cfg(test)]
impl Model {
    /// A new low-priority incident for unit tests, made `at`; tests change
    /// the fields they are about.
    pub fn example(at: DateTimeUtc) -> Self {
        use crate::vocabulary::{Level, Priority, Status, TicketKind};
        Self {
            id: 1,
            number: "INC0001001".into(),
            kind: TicketKind::Incident,
            title: "t".into(),
            description: String::new(),
            status: Status::New,
            pending_reason: None,
            impact: Level::Low,
            urgency: Level::Low,
            priority: Priority::Planning,
            priority_rank: 4,
            requester_id: 1,
            assignee_id: None,
            queue_id: 1,
            service_id: None,
            catalog_item_id: None,
            request_answers: None,
            version: 1,
            resolution: None,
            cancel_reason: None,
            root_cause: None,
            workaround: None,
            known_error: false,
            change_type: None,
            risk: None,
            planned_start: None,
            planned_end: None,
            response_target_seconds: 0,
            resolution_target_seconds: 0,
            response_due_at: at,
            resolution_due_at: at,
            queue_due_at: at,
            responded_at: None,
            resolved_at: None,
            closed_at: None,
            sla_stopped_at: None,
            paused_since: None,
            paused_seconds: 0,
            response_warn_at: None,
            resolution_warn_at: None,
            response_warned: false,
            response_breach_noted: false,
            resolution_warned: false,
            resolution_breach_noted: false,
            idempotency_key: None,
            idempotency_payload: None,
            created_at: at,
            updated_at: at,
        }
    }
}
