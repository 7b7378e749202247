//! Attachments: files on a ticket or on one of its comments, kept in the
//! object store and described here; a removed one keeps its row (who removed
//! it and when) as the audit record. And the service's own keys, shared by
//! every replica (the one signing download links).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Attachments::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Attachments::Id))
                    .col(big_integer(Attachments::TicketId))
                    .col(big_integer_null(Attachments::CommentId))
                    .col(string_len(Attachments::Visibility, 32))
                    .col(string_len(Attachments::Filename, 255))
                    .col(string_len(Attachments::ContentType, 100))
                    .col(big_integer(Attachments::Size))
                    .col(string_len(Attachments::Sha256, 64))
                    .col(string_len(Attachments::StorageKey, 200).unique_key())
                    .col(big_integer(Attachments::UploadedBy))
                    .col(timestamp_with_time_zone(Attachments::CreatedAt))
                    .col(big_integer_null(Attachments::RemovedBy))
                    .col(timestamp_with_time_zone_null(Attachments::RemovedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_attachments_ticket")
                            .from(Attachments::Table, Attachments::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_ticket")
                    .table(Attachments::Table)
                    .col(Attachments::TicketId)
                    .col(Attachments::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServiceKeys::Table)
                    .if_not_exists()
                    .col(string_len(ServiceKeys::Name, 64).primary_key())
                    .col(text(ServiceKeys::Value))
                    .col(timestamp_with_time_zone(ServiceKeys::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServiceKeys::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Attachments::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    TicketId,
    CommentId,
    Visibility,
    Filename,
    ContentType,
    Size,
    Sha256,
    StorageKey,
    UploadedBy,
    CreatedAt,
    RemovedBy,
    RemovedAt,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ServiceKeys {
    Table,
    Name,
    Value,
    CreatedAt,
}
