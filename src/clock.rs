//! The service's notion of "now".

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at microsecond precision: what both SQLite and
/// PostgreSQL store, so a value read back equals the value written, and
/// cursors built from it match the stored rows exactly.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Checks that a client's instant lies in years 1 to 9999: what RFC 3339
/// writes and both databases store. (chrono parses years up to 262143,
/// which PostgreSQL refuses.)
pub fn check_instant(field: &str, value: Option<DateTime<Utc>>) -> crate::error::ApiResult<()> {
    use chrono::Datelike;
    match value {
        Some(at) if !(1..=9999).contains(&at.year()) => Err(crate::error::ApiError::bad_input(
            field,
            format!("`{field}` must lie in the years 1 to 9999"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn instants_outside_four_digit_years_are_refused() {
        let at = |y| Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).single();
        assert!(check_instant("t", at(2026)).is_ok());
        assert!(check_instant("t", at(9999)).is_ok());
        assert!(check_instant("t", None).is_ok());
        assert!(check_instant("t", at(10_000)).is_err());
        assert!(check_instant("t", at(0)).is_err());
        assert!(check_instant("t", at(-5)).is_err());
    }
}
