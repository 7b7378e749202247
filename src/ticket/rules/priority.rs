//! The ITIL priority matrix: impact × urgency → priority.

use crate::vocabulary::{Level, Priority};

/// Priority from impact and urgency:
///
/// | impact \ urgency | HIGH | MEDIUM | LOW |
/// | --- | --- | --- | --- |
/// | HIGH | CRITICAL | HIGH | MODERATE |
/// | MEDIUM | HIGH | MODERATE | LOW |
/// | LOW | MODERATE | LOW | PLANNING |
pub fn priority(impact: Level, urgency: Level) -> Priority {
    match weight(impact) + weight(urgency) {
        0 => Priority::Critical,
        1 => Priority::High,
        2 => Priority::Moderate,
        3 => Priority::Low,
        _ => Priority::Planning,
    }
}

fn weight(level: Level) -> u8 {
    match level {
        Level::High => 0,
        Level::Medium => 1,
        Level::Low => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_nine_cells_of_the_matrix() {
        use Level::{High as H, Low as L, Medium as M};
        let cells = [
            (H, H, Priority::Critical),
            (H, M, Priority::High),
            (M, H, Priority::High),
            (H, L, Priority::Moderate),
            (M, M, Priority::Moderate),
            (L, H, Priority::Moderate),
            (M, L, Priority::Low),
            (L, M, Priority::Low),
            (L, L, Priority::Planning),
        ];
        for (impact, urgency, expected) in cells {
            assert_eq!(
                priority(impact, urgency),
                expected,
                "{impact:?} x {urgency:?}"
            );
        }
    }
}
