//! Spawns the real server on port 0 against a fresh database (a new SQLite file,
//! or a new PostgreSQL database per test) and talks to it over real sockets.
//!
//! Split by concern; everything is re-exported here, so tests name helpers as
//! `crate::helpers::X` whichever file holds them.

mod app;
mod backend;
mod database;
mod errors;
mod example;
mod fixtures;
mod metrics;
mod moto;
mod proxy;
mod receiver;
mod ws;

pub use app::*;
pub use backend::*;
pub use database::*;
pub use errors::*;
pub use example::*;
pub use fixtures::*;
pub use metrics::*;
pub use moto::*;
pub use proxy::*;
pub use receiver::*;
pub use ws::*;
