//! sea-orm entities, one file per table. Only domain services use them.

pub mod alert_incidents;
pub mod approvals;
pub mod attachments;
pub mod catalog_items;
pub mod comments;
pub mod queues;
pub mod routing_rules;
pub mod service_keys;
pub mod service_stage_moves;
pub mod services;
pub mod sla_policies;
pub mod tasks;
pub mod team_members;
pub mod teams;
pub mod ticket_events;
pub mod ticket_links;
pub mod tickets;
pub mod users;
pub mod webhook_deliveries;
pub mod webhooks;
