//! `approvals`: decisions that gate requests and changes.

use sea_orm::entity::prelude::*;

use crate::vocabulary::{ApprovalMode, ApprovalState};

/// One approver's decision on one ticket. `approver_id` is null when any
/// manager may decide.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "approvals")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ticket_id: i64,
    pub approver_id: Option<i64>,
    pub mode: ApprovalMode,
    pub state: ApprovalState,
    pub decided_by: Option<i64>,
    pub comment: Option<String>,
    pub decided_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
