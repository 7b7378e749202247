//! An IT service management GraphQL service: tickets, queues, the service
//! catalog and the ITIL lifecycle over sea-orm, with JWT authentication and
//! live subscriptions. `main.rs` is a thin shell over this library, which the
//! integration tests drive directly.

pub mod access;
pub mod alerts;
pub mod attachments;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod entity;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod ids;
pub mod lifecycle;
pub mod memo;
pub mod metrics;
pub mod paging;
pub mod queue;
pub mod routing;
pub mod seed;
pub mod startup;
pub mod team;
pub mod telemetry;
pub mod text;
pub mod ticket;
pub mod user;
pub mod vocabulary;
pub mod webhooks;
