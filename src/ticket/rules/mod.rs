//! Pure rules: no database, no GraphQL, tested beside the code.

pub mod priority;
pub mod sla;
pub mod workflow;
