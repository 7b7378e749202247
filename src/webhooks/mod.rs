//! Outbound webhooks. So far their rules: how a delivery is signed (the
//! Standard Webhooks scheme) and where one may be sent (no server-side
//! request forgery). Endpoints, delivery and retries build on these.

pub mod destination;
pub mod signature;
