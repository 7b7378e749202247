//! Monitoring alerts in: for each alert (by its Alertmanager fingerprint),
//! the incident it opened, so that a repeat notes the incident instead of
//! opening a second one and a resolution resolves it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AlertIncidents::Table)
                    .if_not_exists()
                    .col(string_len(AlertIncidents::Fingerprint, 128).primary_key())
                    .col(big_integer(AlertIncidents::TicketId))
                    .col(string_len(AlertIncidents::Alertname, 200))
                    .col(timestamp_with_time_zone(AlertIncidents::StartsAt))
                    .col(string_len(AlertIncidents::Status, 32))
                    .col(integer(AlertIncidents::Notifications).default(1))
                    .col(timestamp_with_time_zone(AlertIncidents::LastNotifiedAt))
                    .col(timestamp_with_time_zone_null(AlertIncidents::ResolvedAt))
                    .col(big_integer(AlertIncidents::OpenedBy))
                    .col(timestamp_with_time_zone(AlertIncidents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alert_incidents_ticket")
                    .table(AlertIncidents::Table)
                    .col(AlertIncidents::TicketId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AlertIncidents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AlertIncidents {
    Table,
    Fingerprint,
    TicketId,
    Alertname,
    StartsAt,
    Status,
    Notifications,
    LastNotifiedAt,
    ResolvedAt,
    OpenedBy,
    CreatedAt,
}
