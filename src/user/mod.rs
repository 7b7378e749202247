//! People: who may see whom, and the `viewer` query. Provisioning on sign-in
//! is `auth::provision`.

pub mod resolvers;
pub mod service;
