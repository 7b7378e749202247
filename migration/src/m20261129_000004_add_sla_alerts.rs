//! SLA alerts: when a warning is due (75 % of a target), and which alerts were
//! already raised, so each is raised once per ticket and target even with
//! several replicas sweeping.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        let columns = [
            timestamp_with_time_zone_null(Tickets::ResponseWarnAt),
            timestamp_with_time_zone_null(Tickets::ResolutionWarnAt),
            boolean(Tickets::ResponseWarned).default(false).take(),
            boolean(Tickets::ResponseBreachNoted).default(false).take(),
            boolean(Tickets::ResolutionWarned).default(false).take(),
            boolean(Tickets::ResolutionBreachNoted)
                .default(false)
                .take(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tickets::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Existing tickets warn when their targets fall due.
        manager
            .exec_stmt(
                Query::update()
                    .table(Tickets::Table)
                    .value(Tickets::ResponseWarnAt, Expr::col(Tickets::ResponseDueAt))
                    .value(
                        Tickets::ResolutionWarnAt,
                        Expr::col(Tickets::ResolutionDueAt),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tickets_sla_open")
                    .table(Tickets::Table)
                    .col(Tickets::SlaStoppedAt)
                    .col(Tickets::ResponseWarnAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_tickets_sla_open")
                    .table(Tickets::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Tickets::ResponseWarnAt,
            Tickets::ResolutionWarnAt,
            Tickets::ResponseWarned,
            Tickets::ResponseBreachNoted,
            Tickets::ResolutionWarned,
            Tickets::ResolutionBreachNoted,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tickets::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    ResponseDueAt,
    ResolutionDueAt,
    SlaStoppedAt,
    ResponseWarnAt,
    ResolutionWarnAt,
    ResponseWarned,
    ResponseBreachNoted,
    ResolutionWarned,
    ResolutionBreachNoted,
}
