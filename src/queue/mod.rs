//! Queues: a team's work, sorted by importance, with live statistics.

pub mod resolvers;
pub mod service;
