//! Teams (assignment groups) and their members; and the people directory.

pub mod resolvers;
pub mod service;
