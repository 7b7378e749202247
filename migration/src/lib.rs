//! Database migrations for the itsm service, one file per step.
//!
//! `itsm serve` applies pending migrations at start-up (unless told not to) and
//! `itsm migrate up|down|status|fresh` runs them on demand.

pub use sea_orm_migration::{migrator::MigrationStatus, prelude::*};

/// The name of the team and queue that receive tickets naming no queue.
pub const SERVICE_DESK: &str = "Service Desk";

/// The current time at the microsecond precision both backends store.
fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

fn seed_error(error: impl std::fmt::Display) -> DbErr {
    DbErr::Migration(format!("could not build seed data: {error}"))
}

mod m20261128_000001_create_users;
mod m20261129_000002_create_teams_and_queues;
mod m20261129_000003_create_tickets;
mod m20261129_000004_add_sla_alerts;
mod m20261129_000005_create_services;
mod m20261129_000006_create_catalog;
mod m20261129_000007_create_approvals_and_tasks;
mod m20261129_000008_create_routing_rules;
mod m20261129_000009_add_queue_due;
mod m20261130_000010_create_webhooks;
mod m20261130_000011_create_alert_incidents;
mod m20261130_000012_create_attachments;
mod m20261130_000013_add_attachment_form_field;
mod m20261201_000014_ticket_number_sequences;
mod m20261201_000015_create_event_queue;

/// Applies this crate's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_users::Migration),
            Box::new(m20261129_000002_create_teams_and_queues::Migration),
            Box::new(m20261129_000003_create_tickets::Migration),
            Box::new(m20261129_000004_add_sla_alerts::Migration),
            Box::new(m20261129_000005_create_services::Migration),
            Box::new(m20261129_000006_create_catalog::Migration),
            Box::new(m20261129_000007_create_approvals_and_tasks::Migration),
            Box::new(m20261129_000008_create_routing_rules::Migration),
            Box::new(m20261129_000009_add_queue_due::Migration),
            Box::new(m20261130_000010_create_webhooks::Migration),
            Box::new(m20261130_000011_create_alert_incidents::Migration),
            Box::new(m20261130_000012_create_attachments::Migration),
            Box::new(m20261130_000013_add_attachment_form_field::Migration),
            Box::new(m20261201_000014_ticket_number_sequences::Migration),
            Box::new(m20261201_000015_create_event_queue::Migration),
        ]
    }
}
