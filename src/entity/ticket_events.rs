//! `ticket_events`: the append-only, numbered record of every ticket change.

use sea_orm::entity::prelude::*;

use crate::vocabulary::{EventKind, Visibility};

/// One change to one ticket. `seq` is dense and final: once a reader has
/// seen event N, no new event below N appears (see `events::log`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub ticket_id: i64,
    /// The ticket's queue when the event happened.
    pub queue_id: i64,
    pub requester_id: i64,
    pub actor_id: Option<i64>,
    pub kind: EventKind,
    pub visibility: Visibility,
    /// JSON array of `{field, from, to}`.
    pub changes: String,
    pub occurred_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
