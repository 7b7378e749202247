//! The service portfolio and the ITIL lifecycle: services, the stages they
//! move through, and the record of every move.

pub mod portfolio;
pub mod resolvers;
