//! `services`: the service portfolio.

use sea_orm::entity::prelude::*;

use crate::vocabulary::{ServiceStatus, Stage};

/// A business or technical service.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "services")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub key: String,
    pub name: String,
    pub description: String,
    pub owner_team_id: i64,
    pub stage: Stage,
    pub status: ServiceStatus,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
