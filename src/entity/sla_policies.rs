//! `sla_policies`: first-response and resolution targets per priority.

use sea_orm::entity::prelude::*;

use crate::vocabulary::Priority;

/// Targets for one priority.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sla_policies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub priority: Priority,
    pub response_minutes: i32,
    pub resolution_minutes: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
