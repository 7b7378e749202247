//! People: just-in-time provisioning from token claims, and the `viewer` query.

pub mod resolvers;
pub mod service;
