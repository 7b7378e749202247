//! Routing rules: the repeatable automation that puts new tickets in the
//! right queue, with the right agent and importance.

pub mod resolvers;
pub mod rules;
pub mod service;
