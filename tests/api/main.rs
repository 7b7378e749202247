//! The one integration-test binary: each module drives the real server (or the
//! real `itsm` binary) over real sockets, on SQLite and on PostgreSQL.

mod helpers;

mod alerts;
mod architecture;
mod attachments;
mod auth;
mod catalog;
mod cli;
mod clients;
mod comments;
mod cost;
mod docs;
mod examples;
mod fulfilment;
mod fuzz;
mod graphql;
mod hardening;
mod health;
mod idp;
mod integrations;
mod lifecycle;
mod live;
mod nodes;
mod nplus1;
mod overload;
mod persisted;
mod queues;
mod routing;
mod schema;
mod sla;
mod telemetry;
mod tickets;
mod traces;
mod webhooks;
mod websocket;
mod workflow;
