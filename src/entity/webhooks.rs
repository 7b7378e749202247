//! `webhooks`: the endpoints events are delivered to.

use sea_orm::entity::prelude::*;

use crate::vocabulary::WebhookStatus;

/// One endpoint, its filter, its secrets and its place in the event log.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub url: String,
    pub description: String,
    /// JSON array of `EventKind`s; empty matches every kind.
    pub events: String,
    /// JSON array of queue ids; empty matches every queue.
    pub queue_ids: String,
    /// JSON array of `TicketKind`s; empty matches every kind.
    pub kinds: String,
    pub include_internal: bool,
    pub status: WebhookStatus,
    /// `whsec_…`: signs every delivery.
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTimeUtc>,
    /// The sequence number of the last event handled.
    pub cursor: i64,
    /// The replica delivering to it, until `lease_until`.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    /// Failed attempts in a row.
    pub failures: i32,
    /// When the current run of failures began.
    pub retry_since: Option<DateTimeUtc>,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub last_success_at: Option<DateTimeUtc>,
    pub created_by: i64,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
