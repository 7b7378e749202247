//! Teams (assignment groups), their members, and the queues they own. Seeds the
//! `Service Desk` team and its queue, which receives tickets that name no queue.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{SERVICE_DESK, now, seed_error};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Teams::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Teams::Id))
                    .col(string_len_uniq(Teams::Name, 100))
                    .col(text_null(Teams::Description))
                    .col(timestamp_with_time_zone(Teams::CreatedAt))
                    .col(timestamp_with_time_zone(Teams::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TeamMembers::Table)
                    .if_not_exists()
                    .col(big_integer(TeamMembers::TeamId))
                    .col(big_integer(TeamMembers::UserId))
                    .col(timestamp_with_time_zone(TeamMembers::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(TeamMembers::TeamId)
                            .col(TeamMembers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_team_members_team")
                            .from(TeamMembers::Table, TeamMembers::TeamId)
                            .to(Teams::Table, Teams::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_team_members_user")
                            .from(TeamMembers::Table, TeamMembers::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_team_members_user")
                    .table(TeamMembers::Table)
                    .col(TeamMembers::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Queues::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Queues::Id))
                    .col(string_len_uniq(Queues::Name, 100))
                    .col(text_null(Queues::Description))
                    .col(big_integer(Queues::TeamId))
                    .col(boolean(Queues::IsDefault).default(false))
                    .col(timestamp_with_time_zone(Queues::CreatedAt))
                    .col(timestamp_with_time_zone(Queues::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_queues_team")
                            .from(Queues::Table, Queues::TeamId)
                            .to(Teams::Table, Teams::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_queues_team")
                    .table(Queues::Table)
                    .col(Queues::TeamId)
                    .to_owned(),
            )
            .await?;

        let now = now();
        let team = Query::insert()
            .into_table(Teams::Table)
            .columns([
                Teams::Name,
                Teams::Description,
                Teams::CreatedAt,
                Teams::UpdatedAt,
            ])
            .values([
                SERVICE_DESK.into(),
                "First line: takes every ticket that names no queue.".into(),
                now.into(),
                now.into(),
            ])
            .map_err(seed_error)?
            .to_owned();
        manager.exec_stmt(team).await?;
        let queue = Query::insert()
            .into_table(Queues::Table)
            .columns([
                Queues::Name,
                Queues::Description,
                Queues::TeamId,
                Queues::IsDefault,
                Queues::CreatedAt,
                Queues::UpdatedAt,
            ])
            .select_from(
                Query::select()
                    .expr(Expr::val(SERVICE_DESK))
                    .expr(Expr::val("Tickets that name no queue land here."))
                    .column(Teams::Id)
                    .expr(Expr::val(true))
                    .expr(Expr::val(now))
                    .expr(Expr::val(now))
                    .from(Teams::Table)
                    .and_where(Expr::col(Teams::Name).eq(SERVICE_DESK))
                    .to_owned(),
            )
            .map_err(seed_error)?
            .to_owned();
        manager.exec_stmt(queue).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Queues::Table.into_iden(),
            TeamMembers::Table.into_iden(),
            Teams::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub enum Teams {
    Table,
    Id,
    Name,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum TeamMembers {
    Table,
    TeamId,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum Queues {
    Table,
    Id,
    Name,
    Description,
    TeamId,
    IsDefault,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
}
