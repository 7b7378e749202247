//! Tickets: incidents, service requests, problems and changes; their
//! workflow, SLAs, comments, links and history.

pub mod access;
pub mod events;
pub mod fulfilment;
pub mod fulfilment_resolvers;
pub mod model;
pub mod query;
pub mod resolvers;
pub mod rules;
pub mod service;
