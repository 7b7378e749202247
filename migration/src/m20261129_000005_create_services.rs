//! The service portfolio: services, each owned by a team and in one stage of
//! the ITIL lifecycle, with a history of stage moves; tickets may name the
//! service they concern.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261129_000002_create_teams_and_queues::{Teams, Users};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Services::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Services::Id))
                    .col(string_len_uniq(Services::Key, 50))
                    .col(string_len(Services::Name, 200))
                    .col(text(Services::Description))
                    .col(big_integer(Services::OwnerTeamId))
                    .col(string_len(Services::Stage, 32))
                    .col(string_len(Services::Status, 32))
                    .col(integer(Services::Version))
                    .col(timestamp_with_time_zone(Services::CreatedAt))
                    .col(timestamp_with_time_zone(Services::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_services_owner_team")
                            .from(Services::Table, Services::OwnerTeamId)
                            .to(Teams::Table, Teams::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_services_stage")
                    .table(Services::Table)
                    .col(Services::Stage)
                    .col(Services::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServiceStageMoves::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ServiceStageMoves::Id))
                    .col(big_integer(ServiceStageMoves::ServiceId))
                    .col(string_len_null(ServiceStageMoves::FromStage, 32))
                    .col(string_len(ServiceStageMoves::ToStage, 32))
                    .col(big_integer_null(ServiceStageMoves::ActorId))
                    .col(text_null(ServiceStageMoves::Note))
                    .col(timestamp_with_time_zone(ServiceStageMoves::MovedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_service_stage_moves_service")
                            .from(ServiceStageMoves::Table, ServiceStageMoves::ServiceId)
                            .to(Services::Table, Services::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_service_stage_moves_actor")
                            .from(ServiceStageMoves::Table, ServiceStageMoves::ActorId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_service_stage_moves_service")
                    .table(ServiceStageMoves::Table)
                    .col(ServiceStageMoves::ServiceId)
                    .col(ServiceStageMoves::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .add_column(big_integer_null(Tickets::ServiceId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tickets_service")
                    .table(Tickets::Table)
                    .col(Tickets::ServiceId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_tickets_service")
                    .table(Tickets::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .drop_column(Tickets::ServiceId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(ServiceStageMoves::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Services::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Services {
    Table,
    Id,
    Key,
    Name,
    Description,
    OwnerTeamId,
    Stage,
    Status,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ServiceStageMoves {
    Table,
    Id,
    ServiceId,
    FromStage,
    ToStage,
    ActorId,
    Note,
    MovedAt,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    ServiceId,
}
