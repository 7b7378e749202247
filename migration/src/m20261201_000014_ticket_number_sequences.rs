//! On PostgreSQL, ticket numbers come from one sequence per kind instead of
//! a counter row, so concurrent creations no longer queue on that row's lock
//! until commit. Each sequence continues from its counter. SQLite, whose
//! writers take turns anyway, keeps the counter rows.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The ticket kinds' counter names, whose sequences are
/// `ticket_number_<name in lower case>`.
const KINDS: [&str; 4] = ["INCIDENT", "SERVICE_REQUEST", "PROBLEM", "CHANGE"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for kind in KINDS {
            let sequence = format!("ticket_number_{}", kind.to_lowercase());
            db.execute_unprepared(&format!(
                "CREATE SEQUENCE {sequence} AS bigint MINVALUE 0;
                 SELECT setval('{sequence}', value, true) FROM counters WHERE name = '{kind}';"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for kind in KINDS {
            let sequence = format!("ticket_number_{}", kind.to_lowercase());
            db.execute_unprepared(&format!(
                "UPDATE counters SET value = (SELECT last_value FROM {sequence}) WHERE name = '{kind}';
                 DROP SEQUENCE {sequence};"
            ))
            .await?;
        }
        Ok(())
    }
}
