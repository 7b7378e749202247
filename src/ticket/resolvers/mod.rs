//! GraphQL for tickets: the `Ticket` type and its parts, the ticket queries
//! and mutations. Resolvers parse input, call the service and map errors.
//!
//! - `ticket`: the `Ticket` object and its connections
//! - `parts`: what hangs off a ticket (SLA, problem and change details,
//!   comments, events)
//! - `list`: ticket lists (filter, order, one page with its relations
//!   prefetched) and the ticket queries
//! - `mutations`: the ticket mutations with their inputs and payloads
//! - `fulfilment`: approvals and fulfilment tasks, their queries and mutations

mod fulfilment;
mod list;
mod mutations;
mod parts;
mod ticket;

pub use fulfilment::*;
pub use list::*;
pub use mutations::*;
pub use parts::*;
pub use ticket::*;
