//! `alert_incidents`: the incident each monitoring alert opened.

use sea_orm::entity::prelude::*;

/// One alert, by its fingerprint, and its current incident.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_incidents")]
pub struct Model {
    /// Alertmanager's fingerprint of the alert's labels.
    #[sea_orm(primary_key, auto_increment = false)]
    pub fingerprint: String,
    pub ticket_id: i64,
    pub alertname: String,
    /// When the current firing began.
    pub starts_at: DateTimeUtc,
    /// `FIRING` or `RESOLVED`.
    pub status: String,
    /// Notifications received for the current incident.
    pub notifications: i32,
    pub last_notified_at: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
    /// The integration that reported it.
    pub opened_by: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
