//! `ticket_links`: problems to their incidents, changes to related tickets.

use sea_orm::entity::prelude::*;

use crate::vocabulary::LinkKind;

/// A directed link: a problem to an incident it causes, a change to a ticket
/// it relates to.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub from_ticket_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub to_ticket_id: i64,
    pub kind: LinkKind,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
