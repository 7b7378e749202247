//! Tickets, their links, comments and events; SLA policies; and the counters
//! behind ticket numbers and the event sequence.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    m20261129_000002_create_teams_and_queues::{Queues, Users},
    seed_error,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Seeded SLA targets in minutes: (priority, first response, resolution).
const SLA: [(&str, i32, i32); 5] = [
    ("CRITICAL", 15, 4 * 60),
    ("HIGH", 60, 8 * 60),
    ("MODERATE", 4 * 60, 3 * 24 * 60),
    ("LOW", 8 * 60, 5 * 24 * 60),
    ("PLANNING", 24 * 60, 10 * 24 * 60),
];

/// Counters: one per ticket kind (numbers start at 1001) and the event sequence.
const COUNTERS: [(&str, i64); 5] = [
    ("INCIDENT", 1000),
    ("SERVICE_REQUEST", 1000),
    ("PROBLEM", 1000),
    ("CHANGE", 1000),
    ("EVENT", 0),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SlaPolicies::Table)
                    .if_not_exists()
                    .col(string_len(SlaPolicies::Priority, 32).primary_key())
                    .col(integer(SlaPolicies::ResponseMinutes))
                    .col(integer(SlaPolicies::ResolutionMinutes))
                    .to_owned(),
            )
            .await?;
        let mut policies = Query::insert()
            .into_table(SlaPolicies::Table)
            .columns([
                SlaPolicies::Priority,
                SlaPolicies::ResponseMinutes,
                SlaPolicies::ResolutionMinutes,
            ])
            .to_owned();
        for (priority, response, resolution) in SLA {
            policies
                .values([priority.into(), response.into(), resolution.into()])
                .map_err(seed_error)?;
        }
        manager.exec_stmt(policies).await?;

        manager
            .create_table(
                Table::create()
                    .table(Counters::Table)
                    .if_not_exists()
                    .col(string_len(Counters::Name, 32).primary_key())
                    .col(big_integer(Counters::Value))
                    .to_owned(),
            )
            .await?;
        let mut counters = Query::insert()
            .into_table(Counters::Table)
            .columns([Counters::Name, Counters::Value])
            .to_owned();
        for (name, value) in COUNTERS {
            counters
                .values([name.into(), value.into()])
                .map_err(seed_error)?;
        }
        manager.exec_stmt(counters).await?;

        manager
            .create_table(
                Table::create()
                    .table(Tickets::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Tickets::Id))
                    .col(string_len_uniq(Tickets::Number, 16))
                    .col(string_len(Tickets::Kind, 32))
                    .col(string_len(Tickets::Title, 200))
                    .col(text(Tickets::Description))
                    .col(string_len(Tickets::Status, 32))
                    .col(string_len_null(Tickets::PendingReason, 32))
                    .col(string_len(Tickets::Impact, 32))
                    .col(string_len(Tickets::Urgency, 32))
                    .col(string_len(Tickets::Priority, 32))
                    .col(integer(Tickets::PriorityRank))
                    .col(big_integer(Tickets::RequesterId))
                    .col(big_integer_null(Tickets::AssigneeId))
                    .col(big_integer(Tickets::QueueId))
                    .col(integer(Tickets::Version))
                    .col(text_null(Tickets::Resolution))
                    .col(text_null(Tickets::CancelReason))
                    .col(text_null(Tickets::RootCause))
                    .col(text_null(Tickets::Workaround))
                    .col(boolean(Tickets::KnownError).default(false))
                    .col(string_len_null(Tickets::ChangeType, 32))
                    .col(string_len_null(Tickets::Risk, 32))
                    .col(timestamp_with_time_zone_null(Tickets::PlannedStart))
                    .col(timestamp_with_time_zone_null(Tickets::PlannedEnd))
                    .col(big_integer(Tickets::ResponseTargetSeconds))
                    .col(big_integer(Tickets::ResolutionTargetSeconds))
                    .col(timestamp_with_time_zone(Tickets::ResponseDueAt))
                    .col(timestamp_with_time_zone(Tickets::ResolutionDueAt))
                    .col(timestamp_with_time_zone_null(Tickets::RespondedAt))
                    .col(timestamp_with_time_zone_null(Tickets::ResolvedAt))
                    .col(timestamp_with_time_zone_null(Tickets::ClosedAt))
                    .col(timestamp_with_time_zone_null(Tickets::SlaStoppedAt))
                    .col(timestamp_with_time_zone_null(Tickets::PausedSince))
                    .col(big_integer(Tickets::PausedSeconds).default(0))
                    .col(string_len_null(Tickets::IdempotencyKey, 200))
                    .col(text_null(Tickets::IdempotencyPayload))
                    .col(timestamp_with_time_zone(Tickets::CreatedAt))
                    .col(timestamp_with_time_zone(Tickets::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tickets_requester")
                            .from(Tickets::Table, Tickets::RequesterId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tickets_assignee")
                            .from(Tickets::Table, Tickets::AssigneeId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tickets_queue")
                            .from(Tickets::Table, Tickets::QueueId)
                            .to(Queues::Table, Queues::Id),
                    )
                    .to_owned(),
            )
            .await?;
        let indexes: [(&str, &[Tickets], bool); 7] = [
            // The queue's importance order, so a page is an index range scan.
            (
                "idx_tickets_queue_importance",
                &[
                    Tickets::QueueId,
                    Tickets::PriorityRank,
                    Tickets::ResolutionDueAt,
                    Tickets::CreatedAt,
                    Tickets::Id,
                ],
                false,
            ),
            (
                "idx_tickets_importance",
                &[
                    Tickets::PriorityRank,
                    Tickets::ResolutionDueAt,
                    Tickets::CreatedAt,
                    Tickets::Id,
                ],
                false,
            ),
            (
                "idx_tickets_requester",
                &[Tickets::RequesterId, Tickets::Id],
                false,
            ),
            ("idx_tickets_assignee", &[Tickets::AssigneeId], false),
            (
                "idx_tickets_created",
                &[Tickets::CreatedAt, Tickets::Id],
                false,
            ),
            (
                "idx_tickets_updated",
                &[Tickets::UpdatedAt, Tickets::Id],
                false,
            ),
            // One ticket per (requester, idempotency key); NULL keys never clash.
            (
                "idx_tickets_idempotency",
                &[Tickets::RequesterId, Tickets::IdempotencyKey],
                true,
            ),
        ];
        for (name, columns, unique) in indexes {
            let mut index = Index::create().name(name).table(Tickets::Table).to_owned();
            for column in columns {
                index.col(column.clone());
            }
            if unique {
                index.unique();
            }
            manager.create_index(index).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(TicketLinks::Table)
                    .if_not_exists()
                    .col(big_integer(TicketLinks::FromTicketId))
                    .col(big_integer(TicketLinks::ToTicketId))
                    .col(string_len(TicketLinks::Kind, 32))
                    .col(timestamp_with_time_zone(TicketLinks::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(TicketLinks::FromTicketId)
                            .col(TicketLinks::ToTicketId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ticket_links_from")
                            .from(TicketLinks::Table, TicketLinks::FromTicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ticket_links_to")
                            .from(TicketLinks::Table, TicketLinks::ToTicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ticket_links_to")
                    .table(TicketLinks::Table)
                    .col(TicketLinks::ToTicketId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Comments::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Comments::Id))
                    .col(big_integer(Comments::TicketId))
                    .col(big_integer(Comments::AuthorId))
                    .col(text(Comments::Body))
                    .col(string_len(Comments::Visibility, 32))
                    .col(timestamp_with_time_zone(Comments::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_comments_ticket")
                            .from(Comments::Table, Comments::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_comments_author")
                            .from(Comments::Table, Comments::AuthorId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_comments_ticket")
                    .table(Comments::Table)
                    .col(Comments::TicketId)
                    .col(Comments::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TicketEvents::Table)
                    .if_not_exists()
                    .col(big_integer(TicketEvents::Seq).primary_key())
                    .col(big_integer(TicketEvents::TicketId))
                    .col(big_integer(TicketEvents::QueueId))
                    .col(big_integer(TicketEvents::RequesterId))
                    .col(big_integer_null(TicketEvents::ActorId))
                    .col(string_len(TicketEvents::Kind, 32))
                    .col(string_len(TicketEvents::Visibility, 32))
                    .col(text(TicketEvents::Changes))
                    .col(timestamp_with_time_zone(TicketEvents::OccurredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ticket_events_ticket")
                            .from(TicketEvents::Table, TicketEvents::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_ticket_events_ticket", TicketEvents::TicketId),
            ("idx_ticket_events_queue", TicketEvents::QueueId),
            ("idx_ticket_events_requester", TicketEvents::RequesterId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(TicketEvents::Table)
                        .col(column)
                        .col(TicketEvents::Seq)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TicketEvents::Table.into_iden(),
            Comments::Table.into_iden(),
            TicketLinks::Table.into_iden(),
            Tickets::Table.into_iden(),
            Counters::Table.into_iden(),
            SlaPolicies::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum SlaPolicies {
    Table,
    Priority,
    ResponseMinutes,
    ResolutionMinutes,
}

#[derive(DeriveIden)]
enum Counters {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden, Clone)]
enum Tickets {
    Table,
    Id,
    Number,
    Kind,
    Title,
    Description,
    Status,
    PendingReason,
    Impact,
    Urgency,
    Priority,
    PriorityRank,
    RequesterId,
    AssigneeId,
    QueueId,
    Version,
    Resolution,
    CancelReason,
    RootCause,
    Workaround,
    KnownError,
    ChangeType,
    Risk,
    PlannedStart,
    PlannedEnd,
    ResponseTargetSeconds,
    ResolutionTargetSeconds,
    ResponseDueAt,
    ResolutionDueAt,
    RespondedAt,
    ResolvedAt,
    ClosedAt,
    SlaStoppedAt,
    PausedSince,
    PausedSeconds,
    IdempotencyKey,
    IdempotencyPayload,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TicketLinks {
    Table,
    FromTicketId,
    ToTicketId,
    Kind,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Comments {
    Table,
    Id,
    TicketId,
    AuthorId,
    Body,
    Visibility,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TicketEvents {
    Table,
    Seq,
    TicketId,
    QueueId,
    RequesterId,
    ActorId,
    Kind,
    Visibility,
    Changes,
    OccurredAt,
}
