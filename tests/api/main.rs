//! The one integration-test binary: each module drives the real server (or the
//! real `itsm` binary) over real sockets, on SQLite and on PostgreSQL.

mod helpers;

mod auth;
mod cli;
mod graphql;
mod health;
mod schema;
mod websocket;
