//! Tickets: incidents, service requests, problems and changes; their
//! workflow, SLAs, comments, links and history.

pub mod feeds;
pub mod fulfilment;
pub mod query;
pub mod request;
pub mod resolvers;
pub mod rules;
pub mod service;
pub mod setup;
pub mod stats;
pub mod store;
