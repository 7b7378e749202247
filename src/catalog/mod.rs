//! The service catalog: requestable items with typed request forms, approval
//! rules and fulfilment task templates, and submitting requests from them.

pub mod form;
pub mod resolvers;
pub mod service;
