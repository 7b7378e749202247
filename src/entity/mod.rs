//! sea-orm entities, one file per table. Only domain services use them.

pub mod users;
