//! Database migrations for the itsm service, one file per step.
//!
//! `itsm serve` applies pending migrations at start-up (unless told not to) and
//! `itsm migrate up|down|status|fresh` runs them on demand.

pub use sea_orm_migration::{migrator::MigrationStatus, prelude::*};

mod m20261128_000001_create_users;

/// Applies this crate's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261128_000001_create_users::Migration)]
    }
}
