//! Approvals that gate requests and changes, and the fulfilment tasks a
//! request gets from its catalog item.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261129_000002_create_teams_and_queues::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Approvals::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Approvals::Id))
                    .col(big_integer(Approvals::TicketId))
                    .col(big_integer_null(Approvals::ApproverId))
                    .col(string_len(Approvals::Mode, 32))
                    .col(string_len(Approvals::State, 32))
                    .col(big_integer_null(Approvals::DecidedBy))
                    .col(text_null(Approvals::Comment))
                    .col(timestamp_with_time_zone_null(Approvals::DecidedAt))
                    .col(timestamp_with_time_zone(Approvals::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_approvals_ticket")
                            .from(Approvals::Table, Approvals::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_approvals_approver")
                            .from(Approvals::Table, Approvals::ApproverId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_approvals_ticket", Approvals::TicketId),
            ("idx_approvals_approver", Approvals::ApproverId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Approvals::Table)
                        .col(column)
                        .col(Approvals::State)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Tasks::Id))
                    .col(big_integer(Tasks::TicketId))
                    .col(integer(Tasks::Position))
                    .col(string_len(Tasks::Title, 200))
                    .col(big_integer_null(Tasks::QueueId))
                    .col(big_integer_null(Tasks::AssigneeId))
                    .col(string_len(Tasks::Status, 32))
                    .col(text_null(Tasks::Note))
                    .col(big_integer_null(Tasks::CompletedBy))
                    .col(timestamp_with_time_zone_null(Tasks::CompletedAt))
                    .col(timestamp_with_time_zone(Tasks::CreatedAt))
                    .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tasks_ticket")
                            .from(Tasks::Table, Tasks::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tasks_ticket")
                    .table(Tasks::Table)
                    .col(Tasks::TicketId)
                    .col(Tasks::Position)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Tasks::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Approvals::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Approvals {
    Table,
    Id,
    TicketId,
    ApproverId,
    Mode,
    State,
    DecidedBy,
    Comment,
    DecidedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    TicketId,
    Position,
    Title,
    QueueId,
    AssigneeId,
    Status,
    Note,
    CompletedBy,
    CompletedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
}
