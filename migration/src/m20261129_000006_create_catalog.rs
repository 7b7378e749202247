//! The service catalog: requestable items of services, each with a typed
//! request form, a fulfilment queue, an approval rule and a task template;
//! tickets remember the item they request and the answers given.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    m20261129_000002_create_teams_and_queues::Queues, m20261129_000005_create_services::Services,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CatalogItems::Table)
                    .if_not_exists()
                    .col(big_pk_auto(CatalogItems::Id))
                    .col(big_integer(CatalogItems::ServiceId))
                    .col(string_len_uniq(CatalogItems::Key, 50))
                    .col(string_len(CatalogItems::Name, 200))
                    .col(text(CatalogItems::Description))
                    .col(string_len(CatalogItems::Category, 100))
                    .col(boolean(CatalogItems::Active).default(true))
                    .col(big_integer(CatalogItems::FulfilmentQueueId))
                    .col(string_len(CatalogItems::DefaultImpact, 32))
                    .col(string_len(CatalogItems::DefaultUrgency, 32))
                    .col(integer(CatalogItems::FulfilmentHours))
                    .col(string_len(CatalogItems::ApprovalRule, 32))
                    .col(string_len(CatalogItems::ApprovalMode, 32))
                    .col(text(CatalogItems::Approvers))
                    .col(text(CatalogItems::Tasks))
                    .col(text(CatalogItems::Form))
                    .col(integer(CatalogItems::Version))
                    .col(timestamp_with_time_zone(CatalogItems::CreatedAt))
                    .col(timestamp_with_time_zone(CatalogItems::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_catalog_items_service")
                            .from(CatalogItems::Table, CatalogItems::ServiceId)
                            .to(Services::Table, Services::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_catalog_items_queue")
                            .from(CatalogItems::Table, CatalogItems::FulfilmentQueueId)
                            .to(Queues::Table, Queues::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_catalog_items_service", CatalogItems::ServiceId),
            ("idx_catalog_items_category", CatalogItems::Category),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(CatalogItems::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .add_column(big_integer_null(Tickets::CatalogItemId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .add_column(text_null(Tickets::RequestAnswers))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Tickets::CatalogItemId, Tickets::RequestAnswers] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tickets::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(CatalogItems::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum CatalogItems {
    Table,
    Id,
    ServiceId,
    Key,
    Name,
    Description,
    Category,
    Active,
    FulfilmentQueueId,
    DefaultImpact,
    DefaultUrgency,
    FulfilmentHours,
    ApprovalRule,
    ApprovalMode,
    Approvers,
    Tasks,
    Form,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    CatalogItemId,
    RequestAnswers,
}
