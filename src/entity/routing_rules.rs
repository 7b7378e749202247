//! `routing_rules`: ordered automation applied to new tickets.

use sea_orm::entity::prelude::*;

/// One rule: when a new ticket matches its conditions, apply its actions.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "routing_rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub position: i32,
    pub enabled: bool,
    /// JSON of `routing::rules::Conditions`.
    pub conditions: String,
    /// JSON of `routing::rules::Actions`.
    pub actions: String,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
