//! On PostgreSQL, writers no longer number events themselves: each writing
//! transaction appends its events to `ticket_event_queue` with its
//! transaction id (`tx`) and an order key (`ord`), holding no shared row, and
//! the event pump moves them into `ticket_events` with the next sequence
//! numbers once no transaction that could still add an earlier one is
//! running (see `events::log`). SQLite, whose writers take turns anyway,
//! keeps numbering events as it writes them.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE ticket_event_queue (
                    id bigserial PRIMARY KEY,
                    tx bigint NOT NULL,
                    ord bigint NOT NULL,
                    ticket_id bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
                    queue_id bigint NOT NULL,
                    requester_id bigint NOT NULL,
                    actor_id bigint,
                    kind varchar(32) NOT NULL,
                    visibility varchar(32) NOT NULL,
                    changes text NOT NULL,
                    occurred_at timestamptz NOT NULL
                );
                CREATE INDEX idx_ticket_event_queue_ord ON ticket_event_queue (ord, id);
                CREATE INDEX idx_ticket_event_queue_ticket ON ticket_event_queue (ticket_id, ord);",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                // Queued events are numbered by the service's event pump;
                // dropping them would lose them.
                "DO $$ BEGIN
                    IF EXISTS (SELECT 1 FROM ticket_event_queue) THEN
                        RAISE EXCEPTION 'events are still queued: run the service until they are numbered, then migrate down';
                    END IF;
                END $$;
                DROP TABLE ticket_event_queue;",
            )
            .await?;
        Ok(())
    }
}
