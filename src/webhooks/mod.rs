//! Outbound webhooks: admins register endpoints, and every replica's worker
//! delivers the event log to them, in order, signed the Standard Webhooks
//! way, to addresses the allow-list permits (no server-side request forgery).

pub mod delivery;
pub mod destination;
pub mod payload;
pub mod resolvers;
pub mod service;
pub mod signature;

pub use delivery::Dispatcher;
