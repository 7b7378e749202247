//! The queue's sort key for due time: the resolution due time while a
//! ticket's clock runs, and the far future while it is paused (`PENDING`) or
//! stopped (resolved, closed, cancelled), so that tickets with no running
//! deadline come last among those of their priority.

use sea_orm_migration::{prelude::*, schema::*};

/// "No running deadline": 9999-12-31T23:59:59Z, later than any real due time.
fn no_due() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(253_402_300_799, 0)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .add_column(
                        timestamp_with_time_zone(Tickets::QueueDueAt)
                            .default("9999-12-31T23:59:59+00:00"),
                    )
                    .to_owned(),
            )
            .await?;
        let running = Condition::all()
            .add(Expr::col(Tickets::SlaStoppedAt).is_null())
            .add(Expr::col(Tickets::PausedSince).is_null());
        manager
            .exec_stmt(
                Query::update()
                    .table(Tickets::Table)
                    .value(
                        Tickets::QueueDueAt,
                        Expr::case(running, Expr::col(Tickets::ResolutionDueAt))
                            .finally(Expr::val(no_due())),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_tickets_queue_importance", true),
            ("idx_tickets_importance", false),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Tickets::Table).to_owned())
                .await?;
            let mut index = Index::create();
            index.name(name).table(Tickets::Table);
            if columns {
                index.col(Tickets::QueueId);
            }
            index
                .col(Tickets::PriorityRank)
                .col(Tickets::QueueDueAt)
                .col(Tickets::CreatedAt)
                .col(Tickets::Id);
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, queue) in [
            ("idx_tickets_queue_importance", true),
            ("idx_tickets_importance", false),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Tickets::Table).to_owned())
                .await?;
            let mut index = Index::create();
            index.name(name).table(Tickets::Table);
            if queue {
                index.col(Tickets::QueueId);
            }
            index
                .col(Tickets::PriorityRank)
                .col(Tickets::ResolutionDueAt)
                .col(Tickets::CreatedAt)
                .col(Tickets::Id);
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .drop_column(Tickets::QueueDueAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
    QueueId,
    PriorityRank,
    ResolutionDueAt,
    CreatedAt,
    SlaStoppedAt,
    PausedSince,
    QueueDueAt,
}
