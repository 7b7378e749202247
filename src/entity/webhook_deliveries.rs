//! `webhook_deliveries`: every attempt to deliver an event to an endpoint.

use sea_orm::entity::prelude::*;

use crate::vocabulary::{DeliveryOutcome, EventKind};

/// One attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub webhook_id: i64,
    /// The event delivered.
    pub seq: i64,
    pub ticket_id: i64,
    pub event_kind: EventKind,
    /// The `webhook-id` header: the same for every attempt of one event.
    pub message_id: String,
    /// 1 for the first attempt of this event, and so on.
    pub attempt: i32,
    pub outcome: DeliveryOutcome,
    pub response_status: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub attempted_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
