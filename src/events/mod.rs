//! The event log and live updates: the writer every domain records its
//! changes through (`log`), the event pump that reads committed ticket events from the
//! log and fans them out in process, the PostgreSQL `LISTEN` bridge that
//! wakes it when another replica commits, and the subscriptions and polling
//! feed built on the log.

pub mod bus;
pub mod feed;
pub mod log;
pub mod pump;
pub mod resolvers;
pub mod sla;

pub use log::{Change, Draft, changes_of, next_counter, record};
