//! `attachments`: files on tickets and comments.

use sea_orm::entity::prelude::*;

use crate::vocabulary::Visibility;

/// One file. A removed one keeps its row as the audit record.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attachments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ticket_id: i64,
    /// The comment it belongs to, when it is not the ticket's own.
    pub comment_id: Option<i64>,
    /// That of what it belongs to: a work note's file is internal.
    pub visibility: Visibility,
    pub filename: String,
    /// As the content shows it (sniffed), not as the client said.
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    /// Where the bytes are in the object store.
    pub storage_key: String,
    pub uploaded_by: i64,
    pub created_at: DateTimeUtc,
    pub removed_by: Option<i64>,
    pub removed_at: Option<DateTimeUtc>,
    /// The catalog request form's `FILE` field it answers, if any.
    pub form_field: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
