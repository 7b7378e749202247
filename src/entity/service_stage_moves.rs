//! `service_stage_moves`: every move of a service through the lifecycle.

use sea_orm::entity::prelude::*;

use crate::vocabulary::Stage;

/// One move of a service from one stage to another (or into its first).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "service_stage_moves")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub service_id: i64,
    pub from_stage: Option<Stage>,
    pub to_stage: Stage,
    pub actor_id: Option<i64>,
    pub note: Option<String>,
    pub moved_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
