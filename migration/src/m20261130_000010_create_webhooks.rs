//! Outbound webhooks: the endpoints admins register, each with its own
//! position in the event log and a lease that lets one replica at a time
//! deliver to it, and the record of every delivery attempt.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Webhooks::Id))
                    .col(string_len(Webhooks::Url, 2000))
                    .col(string_len(Webhooks::Description, 500).default(""))
                    // JSON arrays; empty matches everything.
                    .col(text(Webhooks::Events))
                    .col(text(Webhooks::QueueIds))
                    .col(text(Webhooks::Kinds))
                    .col(boolean(Webhooks::IncludeInternal).default(false))
                    .col(string_len(Webhooks::Status, 32))
                    .col(text(Webhooks::Secret))
                    .col(text_null(Webhooks::PreviousSecret))
                    .col(timestamp_with_time_zone_null(Webhooks::PreviousSecretUntil))
                    // The last event handled (delivered or not for this endpoint).
                    .col(big_integer(Webhooks::Cursor))
                    .col(string_len_null(Webhooks::LeaseOwner, 64))
                    .col(timestamp_with_time_zone_null(Webhooks::LeaseUntil))
                    .col(integer(Webhooks::Failures).default(0))
                    .col(timestamp_with_time_zone_null(Webhooks::RetrySince))
                    .col(timestamp_with_time_zone_null(Webhooks::NextAttemptAt))
                    .col(text_null(Webhooks::LastError))
                    .col(timestamp_with_time_zone_null(Webhooks::LastSuccessAt))
                    .col(big_integer(Webhooks::CreatedBy))
                    .col(integer(Webhooks::Version))
                    .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                    .col(timestamp_with_time_zone(Webhooks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WebhookDeliveries::Id))
                    .col(big_integer(WebhookDeliveries::WebhookId))
                    .col(big_integer(WebhookDeliveries::Seq))
                    .col(big_integer(WebhookDeliveries::TicketId))
                    .col(string_len(WebhookDeliveries::EventKind, 32))
                    .col(string_len(WebhookDeliveries::MessageId, 64))
                    .col(integer(WebhookDeliveries::Attempt))
                    .col(string_len(WebhookDeliveries::Outcome, 32))
                    .col(integer_null(WebhookDeliveries::ResponseStatus))
                    .col(big_integer(WebhookDeliveries::LatencyMs))
                    .col(text_null(WebhookDeliveries::Error))
                    .col(timestamp_with_time_zone(WebhookDeliveries::AttemptedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_webhook")
                            .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_webhook")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Webhooks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Url,
    Description,
    Events,
    QueueIds,
    Kinds,
    IncludeInternal,
    Status,
    Secret,
    PreviousSecret,
    PreviousSecretUntil,
    Cursor,
    LeaseOwner,
    LeaseUntil,
    Failures,
    RetrySince,
    NextAttemptAt,
    LastError,
    LastSuccessAt,
    CreatedBy,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    Seq,
    TicketId,
    EventKind,
    MessageId,
    Attempt,
    Outcome,
    ResponseStatus,
    LatencyMs,
    Error,
    AttemptedAt,
}
