//! People known to the service. A row is created the first time a token with a
//! new `sub` is seen and kept in step with the token's claims afterwards.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Users::Id))
                    .col(string_len_uniq(Users::Subject, 255))
                    .col(string_len_null(Users::Email, 320))
                    .col(string_len(Users::DisplayName, 255))
                    .col(string_len(Users::Role, 32))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Subject,
    Email,
    DisplayName,
    Role,
    CreatedAt,
    UpdatedAt,
}
