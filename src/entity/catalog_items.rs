//! `catalog_items`: requestable offerings of services.

use sea_orm::entity::prelude::*;

use crate::vocabulary::{ApprovalMode, ApprovalRule, Level};

/// Something a person can request, such as "New laptop".
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "catalog_items")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub service_id: i64,
    #[sea_orm(unique)]
    pub key: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub active: bool,
    pub fulfilment_queue_id: i64,
    pub default_impact: Level,
    pub default_urgency: Level,
    pub fulfilment_hours: i32,
    pub approval_rule: ApprovalRule,
    pub approval_mode: ApprovalMode,
    /// JSON array of approver user ids.
    pub approvers: String,
    /// JSON array of task templates.
    pub tasks: String,
    /// JSON array of form fields.
    pub form: String,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
