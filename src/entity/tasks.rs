//! `tasks`: the ordered fulfilment steps of a request.

use sea_orm::entity::prelude::*;

use crate::vocabulary::TaskStatus;

/// One fulfilment step.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ticket_id: i64,
    pub position: i32,
    pub title: String,
    pub queue_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub status: TaskStatus,
    pub note: Option<String>,
    pub completed_by: Option<i64>,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
