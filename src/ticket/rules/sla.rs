//! SLA arithmetic over wall-clock time, with the clock passed in.
//!
//! Due times count from creation. Time spent `PENDING` does not count against
//! resolution: the resolution due time moves later by every paused stretch.
//! The first response is never paused. Once a ticket is resolved or cancelled
//! its clock stops.

use chrono::{DateTime, Duration, Utc};

/// Targets for one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    /// Time allowed until the first response.
    pub response: Duration,
    /// Time allowed until resolution, not counting paused time.
    pub resolution: Duration,
}

/// The SLA state stored with a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// When the ticket was created; both targets count from here.
    pub created_at: DateTime<Utc>,
    /// Targets of the ticket's current priority.
    pub targets: Targets,
    /// When someone other than the requester first responded.
    pub responded_at: Option<DateTime<Utc>>,
    /// When the ticket was resolved or cancelled (the clock stopped).
    pub stopped_at: Option<DateTime<Utc>>,
    /// When the current pause began, while `PENDING`.
    pub paused_since: Option<DateTime<Utc>>,
    /// Seconds spent paused in earlier, finished pauses.
    pub paused_seconds: i64,
}

impl Clock {
    /// A fresh clock for a ticket created at `created_at`.
    pub fn start(created_at: DateTime<Utc>, targets: Targets) -> Self {
        Self {
            created_at,
            targets,
            responded_at: None,
            stopped_at: None,
            paused_since: None,
            paused_seconds: 0,
        }
    }

    /// The first-response due time.
    pub fn response_due(&self) -> DateTime<Utc> {
        self.created_at + self.targets.response
    }

    /// The resolution due time, moved later by finished pauses. While paused it
    /// is where it would be if the pause ended now, and keeps moving.
    pub fn resolution_due(&self) -> DateTime<Utc> {
        self.created_at + self.targets.resolution + Duration::seconds(self.paused_seconds)
    }

    /// When the first-response warning is due: at 75 % of the target.
    pub fn response_warning(&self) -> DateTime<Utc> {
        self.created_at + self.targets.response * 3 / 4
    }

    /// When the resolution warning is due: at 75 % of the target, moved
    /// later by finished pauses like the due time itself.
    pub fn resolution_warning(&self) -> DateTime<Utc> {
        self.resolution_due() - self.targets.resolution / 4
    }

    /// Records the first response at `at` (later responses change nothing).
    pub fn respond(&mut self, at: DateTime<Utc>) {
        self.responded_at.get_or_insert(at);
    }

    /// Starts a pause (entering `PENDING`).
    pub fn pause(&mut self, at: DateTime<Utc>) {
        if self.paused_since.is_none() && self.stopped_at.is_none() {
            self.paused_since = Some(at);
        }
    }

    /// Ends the current pause, if any.
    pub fn resume(&mut self, at: DateTime<Utc>) {
        if let Some(since) = self.paused_since.take() {
            self.paused_seconds += (at - since).num_seconds().max(0);
        }
    }

    /// Stops the clock (resolved or cancelled), ending any pause first.
    pub fn stop(&mut self, at: DateTime<Utc>) {
        self.resume(at);
        self.stopped_at.get_or_insert(at);
    }

    /// Restarts a stopped clock (a resolved ticket reopened): the stopped
    /// stretch counts as paused, since nobody owed work on it.
    pub fn restart(&mut self, at: DateTime<Utc>) {
        if let Some(stopped) = self.stopped_at.take() {
            self.paused_seconds += (at - stopped).num_seconds().max(0);
        }
    }

    /// Applies new targets (the priority changed); due times follow.
    pub fn retarget(&mut self, targets: Targets) {
        self.targets = targets;
    }

    /// The key queues sort by due time: the resolution due time while the
    /// clock runs, [`NO_DUE`] (last) while it is paused or stopped, since
    /// nothing is then due.
    pub fn queue_due(&self) -> DateTime<Utc> {
        if self.stopped_at.is_none() && self.paused_since.is_none() {
            self.resolution_due()
        } else {
            NO_DUE
        }
    }

    /// What a viewer sees at `now`.
    pub fn view(&self, now: DateTime<Utc>) -> View {
        let response_due_at = self.response_due();
        let due = self.resolution_due();
        // The instant resolution time is measured at: now, or when it froze.
        let measured_at = self.stopped_at.or(self.paused_since).unwrap_or(now);
        // While paused the due time slides with the clock.
        let resolution_due_at = match self.paused_since {
            Some(since) => due + (now - since).max(Duration::zero()),
            None => due,
        };
        let response_breached = match self.responded_at {
            Some(at) => at > response_due_at,
            None => self.stopped_at.unwrap_or(now) > response_due_at,
        };
        View {
            response_due_at,
            resolution_due_at,
            responded_at: self.responded_at,
            response_breached,
            resolution_breached: measured_at > due,
            paused: self.paused_since.is_some(),
            remaining_seconds: self
                .stopped_at
                .is_none()
                .then(|| (due - measured_at).num_seconds()),
        }
    }
}

/// "Nothing due": 9999-12-31T23:59:59Z, later than any real due time.
pub const NO_DUE: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(at) => at,
    None => DateTime::<Utc>::MAX_UTC,
};

/// The SLA as shown to a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// When the first response is due.
    pub response_due_at: DateTime<Utc>,
    /// When resolution is due.
    pub resolution_due_at: DateTime<Utc>,
    /// When the first response came.
    pub responded_at: Option<DateTime<Utc>>,
    /// The first response came late, or is overdue.
    pub response_breached: bool,
    /// Resolution came late, or is overdue.
    pub resolution_breached: bool,
    /// The resolution clock is paused (`PENDING`).
    pub paused: bool,
    /// Seconds until resolution is due (negative when overdue); `None` once stopped.
    pub remaining_seconds: Option<i64>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::minutes(minutes)
    }

    fn high() -> Targets {
        Targets {
            response: Duration::hours(1),
            resolution: Duration::hours(8),
        }
    }

    #[test]
    fn due_times_count_from_creation() {
        let clock = Clock::start(t(0), high());
        assert_eq!(clock.response_due(), t(60));
        assert_eq!(clock.resolution_due(), t(480));
        let view = clock.view(t(30));
        assert!(!view.response_breached && !view.resolution_breached);
        assert_eq!(view.remaining_seconds, Some(450 * 60));
    }

    #[test]
    fn a_missing_response_breaches_once_due_and_a_late_one_stays_breached() {
        let mut clock = Clock::start(t(0), high());
        assert!(clock.view(t(61)).response_breached);
        clock.respond(t(90));
        clock.respond(t(10));
        assert_eq!(
            clock.responded_at,
            Some(t(90)),
            "only the first response counts"
        );
        assert!(clock.view(t(100)).response_breached);
        let mut prompt = Clock::start(t(0), high());
        prompt.respond(t(59));
        assert!(!prompt.view(t(600)).response_breached);
    }

    #[test]
    fn pending_time_does_not_count_against_resolution() {
        let mut clock = Clock::start(t(0), high());
        clock.pause(t(60));
        // While paused the remaining time is frozen and nothing breaches.
        let paused = clock.view(t(1000));
        assert!(paused.paused && !paused.resolution_breached);
        assert_eq!(paused.remaining_seconds, Some(420 * 60));
        assert_eq!(
            paused.resolution_due_at,
            t(1000 + 420),
            "the due time slides while paused"
        );
        clock.resume(t(180));
        assert_eq!(
            clock.resolution_due(),
            t(600),
            "two paused hours move the due time"
        );
        assert_eq!(clock.view(t(180)).remaining_seconds, Some(420 * 60));
        assert!(clock.view(t(601)).resolution_breached);
    }

    #[test]
    fn targets_follow_priority_changes() {
        let mut clock = Clock::start(t(0), high());
        clock.retarget(Targets {
            response: Duration::minutes(15),
            resolution: Duration::hours(4),
        });
        assert_eq!(clock.response_due(), t(15));
        assert_eq!(clock.resolution_due(), t(240));
        assert!(clock.view(t(20)).response_breached);
    }

    #[test]
    fn resolving_stops_the_clock_and_reopening_restarts_it() {
        let mut clock = Clock::start(t(0), high());
        clock.pause(t(100));
        clock.stop(t(160));
        assert_eq!(clock.paused_since, None);
        let done = clock.view(t(5000));
        assert_eq!(done.remaining_seconds, None);
        assert!(!done.resolution_breached, "resolved in time stays in time");
        clock.restart(t(1000));
        assert_eq!(clock.resolution_due(), t(480 + 60 + 840));
        assert!(!clock.view(t(1000)).resolution_breached);
    }

    #[test]
    fn warnings_fall_at_three_quarters_of_each_target() {
        let mut clock = Clock::start(t(0), high());
        assert_eq!(clock.response_warning(), t(45));
        assert_eq!(clock.resolution_warning(), t(360));
        clock.pause(t(60));
        clock.resume(t(120));
        assert_eq!(
            clock.resolution_warning(),
            t(420),
            "pauses move the warning too"
        );
    }

    #[test]
    fn resolving_late_is_a_breach() {
        let mut clock = Clock::start(t(0), high());
        clock.stop(t(481));
        assert!(clock.view(t(2000)).resolution_breached);
    }
}
