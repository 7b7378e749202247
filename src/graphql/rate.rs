//! A rate limit per caller, counted in cost points rather than requests: a
//! caller may spend so many points a minute, whatever the mix of small and
//! large queries. Each replica keeps its own buckets, so behind a load
//! balancer with N replicas a caller may spend up to N times the rate.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

/// Who is charged: a signed-in person, or an anonymous caller by address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A signed-in person, by user id.
    User(i64),
    /// An anonymous caller, by address.
    Address(IpAddr),
    /// An anonymous caller whose address is unknown.
    Anonymous,
}

/// The address a request came from, as request data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// Token buckets of cost points, one per caller.
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<Caller>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("callers", &self.limiter.len())
            .finish()
    }
}

/// How often idle buckets are dropped, in checks.
const SWEEP_EVERY: u64 = 4096;

impl RateLimit {
    /// `points_per_minute` for each caller, all of it available at once; `None` when 0 (off).
    pub fn new(points_per_minute: u32) -> Option<Self> {
        let rate = NonZeroU32::new(points_per_minute)?;
        Some(Self {
            limiter: RateLimiter::keyed(Quota::per_minute(rate)),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        })
    }

    /// Charges `points` to `caller`; when the bucket lacks them, how long to
    /// wait before the same request would pass.
    pub fn charge(&self, caller: &Caller, points: u64) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        let points = u32::try_from(points.max(1)).unwrap_or(u32::MAX);
        let Some(points) = NonZeroU32::new(points) else {
            return Ok(());
        };
        match self.limiter.check_key_n(caller, points) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            // More than a whole minute's worth: it can never pass at once.
            Err(_) => Err(Duration::from_secs(60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_a_bucket_of_points() {
        let limit = RateLimit::new(1_000).expect("on");
        let alice = Caller::User(1);
        let bob = Caller::User(2);
        assert_eq!(limit.charge(&alice, 600), Ok(()));
        assert_eq!(limit.charge(&alice, 300), Ok(()));
        let wait = limit.charge(&alice, 300).expect_err("over");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        // Another caller is not affected.
        assert_eq!(limit.charge(&bob, 900), Ok(()));
        assert!(limit.charge(&alice, 5_000).is_err());
        assert!(RateLimit::new(0).is_none());
    }
}
