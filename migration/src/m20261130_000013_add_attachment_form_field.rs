//! An attachment sent as the answer to a catalog request form's `FILE`
//! field names that field.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Attachments::Table)
                    .add_column(string_len_null(Attachments::FormField, 50))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Attachments::Table)
                    .drop_column(Attachments::FormField)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    FormField,
}
