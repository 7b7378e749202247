//! Attachments: files on tickets and comments, kept in an object store
//! (a local directory by default), with the visibility of what they belong
//! to, type checked by content, and downloaded through short-lived signed
//! links.

pub mod files;
pub mod resolvers;
pub mod service;
pub mod sniff;

pub use files::Files;
