//! `itsm seed --demo`: a realistic data set for trying the API and for
//! benchmarks. Everything goes through the domain services, so numbers,
//! events, SLAs and versions are exactly what real use would produce; only
//! creation times are spread over the past days, so that queues hold old and
//! new, breached and healthy tickets.

mod catalog;
mod people;
mod tickets;

use std::time::Instant;

use rand::{SeedableRng, rngs::StdRng};

use crate::db::Db;

/// What `itsm seed --demo` loaded.
#[derive(Debug, Default)]
pub struct Summary {
    /// Tickets created.
    pub tickets: usize,
    /// Services in the portfolio.
    pub services: usize,
    /// Catalog items.
    pub items: usize,
    /// Comments added.
    pub comments: usize,
    /// How long it took.
    pub seconds: f64,
}

/// Loads the demo data set with `tickets` tickets.
pub async fn demo(db: &Db, ticket_count: usize) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(2026);
    let mut summary = Summary::default();
    let viewers = people::people(db).await?;
    let queues = people::organisation(db, &viewers).await?;
    tickets::tickets(db, &viewers, &queues, ticket_count, &mut summary, &mut rng).await?;
    catalog::catalog(db, &viewers, &mut summary, &mut rng).await?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// A service error as an `anyhow` error, for the command line.
fn api(error: crate::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{error:?}")
}
