//! The service's notion of "now".

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at microsecond precision: what both SQLite and
/// PostgreSQL store, so a value read back equals the value written, and
/// cursors built from it match the stored rows exactly.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
