//! Routing rules: ordered conditions and actions applied when a ticket is
//! created; the first matching rule wins.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RoutingRules::Table)
                    .if_not_exists()
                    .col(big_pk_auto(RoutingRules::Id))
                    .col(string_len(RoutingRules::Name, 200))
                    .col(integer(RoutingRules::Position))
                    .col(boolean(RoutingRules::Enabled).default(true))
                    .col(text(RoutingRules::Conditions))
                    .col(text(RoutingRules::Actions))
                    .col(integer(RoutingRules::Version))
                    .col(timestamp_with_time_zone(RoutingRules::CreatedAt))
                    .col(timestamp_with_time_zone(RoutingRules::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_routing_rules_position")
                    .table(RoutingRules::Table)
                    .col(RoutingRules::Position)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoutingRules::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RoutingRules {
    Table,
    Id,
    Name,
    Position,
    Enabled,
    Conditions,
    Actions,
    Version,
    CreatedAt,
    UpdatedAt,
}
