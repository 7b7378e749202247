//! What the public listener can hold, and refusing early beyond it.
//!
//! Every open socket costs a file descriptor, and a process has a fixed
//! number of them. The connection budget is what is left of that number once
//! the database pool, the listeners and a reserve are set aside; the reserve
//! keeps the database, the admin listener and the answers to refused clients
//! working when the public listener is full. Beyond the budget a new
//! connection is answered 503 with `Retry-After` at once; WebSocket upgrades
//! stop earlier, leaving room for plain HTTP; and GraphQL requests beyond the
//! concurrency limit are answered 503 rather than queued.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors kept for everything that is not a public connection: log
/// files, the runtime's own, SQLite's files, the event listener's connection,
/// the admin listener's sockets.
const RESERVE: u64 = 128;
/// Refused connections answered at once beyond the budget; more are closed
/// without an answer. Part of the descriptors set aside.
pub const OVERFLOW: usize = 64;
/// The largest budget worked out from an unlimited descriptor limit.
const MAX_AUTO: u64 = 1 << 20;

/// How many descriptors the process may open, after raising the soft limit to
/// the hard one; `None` where the platform does not say.
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The public listener's connection budget for a process that may open
/// `open_files` descriptors and pools `pool` database connections.
pub fn connection_budget(open_files: u64, pool: u32) -> usize {
    let set_aside = u64::from(pool) + 2 + RESERVE + OVERFLOW as u64;
    let budget = open_files.min(MAX_AUTO).saturating_sub(set_aside).max(1);
    usize::try_from(budget).unwrap_or(usize::MAX)
}

/// The connections kept for plain HTTP once WebSockets have taken the rest:
/// at least the request concurrency limit and a twentieth of the budget, at
/// most half of it.
pub fn http_headroom(budget: usize, max_requests: usize) -> usize {
    max_requests.max(budget / 20).min(budget / 2)
}

/// Why a client was refused.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// The listener holds as many connections as its budget.
    Connections,
    /// As many WebSockets are open as may be.
    Websockets,
    /// As many GraphQL requests run as may.
    Requests,
}

impl Refusal {
    fn index(self) -> usize {
        match self {
            Self::Connections => 0,
            Self::Websockets => 1,
            Self::Requests => 2,
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Connections => "connections",
            Self::Websockets => "websockets",
            Self::Requests => "requests",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Connections => "the server holds as many connections as it can",
            Self::Websockets => "the server holds as many WebSockets as it can",
            Self::Requests => "the server is running as many requests as it can",
        }
    }
}

/// The limits of one listener and what it holds now.
#[derive(Debug)]
pub struct Capacity {
    connections: usize,
    websockets: usize,
    overflow: usize,
    requests: usize,
    open: AtomicUsize,
    open_websockets: AtomicUsize,
    open_overflow: AtomicUsize,
    running: Arc<Semaphore>,
    retry_after: Duration,
    refused: [AtomicU64; 3],
    dropped: AtomicU64,
    accept_errors: AtomicU64,
}

/// What to do with a connection just accepted.
#[derive(Debug)]
pub enum Admission {
    /// Serve it; the slot is held as long as the socket is open.
    Serve(Slot),
    /// Answer it 503 (health probes get their answer) and close it.
    Refuse(Slot),
    /// Close it at once: even the refusals are full.
    Drop,
}

/// One open connection counted against a budget; released when dropped.
#[derive(Debug)]
pub struct Slot {
    capacity: Arc<Capacity>,
    overflow: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let counter = if self.overflow {
            &self.capacity.open_overflow
        } else {
            &self.capacity.open
        };
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One open WebSocket; released when dropped.
#[derive(Debug)]
pub struct WebsocketSlot(Arc<Capacity>);

impl Drop for WebsocketSlot {
    fn drop(&mut self) {
        self.0.open_websockets.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What `/metrics` and `/readyz` report.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub connections: usize,
    pub connection_budget: usize,
    pub websockets: usize,
    pub websocket_budget: usize,
    pub requests: usize,
    pub request_limit: usize,
    pub refused: [(Refusal, u64); 3],
    pub dropped: u64,
    pub accept_errors: u64,
}

impl Capacity {
    /// A listener that holds `connections` sockets, of which up to
    /// `websockets` upgraded, and runs `requests` GraphQL requests at once
    /// (0 for no limit). Refused clients are asked to wait `retry_after`, plus
    /// up to as much again at random.
    pub fn new(
        connections: usize,
        websockets: usize,
        requests: usize,
        retry_after: Duration,
    ) -> Arc<Self> {
        Self::build(connections, websockets, requests, retry_after, OVERFLOW)
    }

    /// A listener for operators' probes: a few connections, no WebSockets,
    /// nothing answered beyond them.
    pub fn small(connections: usize) -> Arc<Self> {
        Self::build(connections, 0, 0, Duration::from_secs(1), 0)
    }

    fn build(
        connections: usize,
        websockets: usize,
        requests: usize,
        retry_after: Duration,
        overflow: usize,
    ) -> Arc<Self> {
        let requests = if requests == 0 {
            Semaphore::MAX_PERMITS
        } else {
            requests
        };
        Arc::new(Self {
            connections: connections.max(1),
            websockets: websockets.min(connections),
            overflow,
            requests,
            open: AtomicUsize::new(0),
            open_websockets: AtomicUsize::new(0),
            open_overflow: AtomicUsize::new(0),
            running: Arc::new(Semaphore::new(requests)),
            retry_after,
            refused: Default::default(),
            dropped: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
        })
    }

    /// Counts a connection just accepted.
    pub fn admit(self: &Arc<Self>) -> Admission {
        if take(&self.open, self.connections) {
            return Admission::Serve(Slot {
                capacity: self.clone(),
                overflow: false,
            });
        }
        self.refused[Refusal::Connections.index()].fetch_add(1, Ordering::Relaxed);
        if take(&self.open_overflow, self.overflow) {
            Admission::Refuse(Slot {
                capacity: self.clone(),
                overflow: true,
            })
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            Admission::Drop
        }
    }

    /// Claims room for one more WebSocket.
    pub fn websocket(self: &Arc<Self>) -> Option<WebsocketSlot> {
        if take(&self.open_websockets, self.websockets) {
            Some(WebsocketSlot(self.clone()))
        } else {
            self.refused[Refusal::Websockets.index()].fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Claims room for one more running GraphQL request.
    pub fn request(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.running.clone().try_acquire_owned().ok();
        if permit.is_none() {
            self.refused[Refusal::Requests.index()].fetch_add(1, Ordering::Relaxed);
        }
        permit
    }

    /// Notes a failed `accept`.
    pub fn accept_failed(&self) {
        self.accept_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Why a load balancer should stop sending new clients, when it should:
    /// nine tenths of the connections or of the WebSockets are taken.
    pub fn saturated(&self) -> Option<&'static str> {
        let full = |open: usize, budget: usize| budget > 0 && open >= budget - budget / 10;
        if full(self.open.load(Ordering::Acquire), self.connections) {
            Some("connections")
        } else if full(
            self.open_websockets.load(Ordering::Acquire),
            self.websockets,
        ) {
            Some("websockets")
        } else {
            None
        }
    }

    /// What is open and refused so far.
    pub fn usage(&self) -> Usage {
        let refused = |refusal: Refusal| {
            (
                refusal,
                self.refused[refusal.index()].load(Ordering::Relaxed),
            )
        };
        Usage {
            connections: self.open.load(Ordering::Acquire),
            connection_budget: self.connections,
            websockets: self.open_websockets.load(Ordering::Acquire),
            websocket_budget: self.websockets,
            requests: self.requests - self.running.available_permits(),
            request_limit: self.requests,
            refused: [
                refused(Refusal::Connections),
                refused(Refusal::Websockets),
                refused(Refusal::Requests),
            ],
            dropped: self.dropped.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
        }
    }

    /// Whole seconds to wait before trying again: the configured wait plus up
    /// to as much again, at random, so refused clients do not all come back
    /// at the same instant.
    pub fn retry_after(&self) -> u64 {
        let base = self.retry_after.as_secs_f64().max(1.0);
        let wait = base + rand::random::<f64>() * base;
        wait.round() as u64
    }

    /// The 503 answer for a refused client.
    pub fn refusal(&self, refusal: Refusal) -> Response {
        let seconds = self.retry_after();
        let mut response = super::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            format!("{}; try again in {seconds} s", refusal.message()),
            None,
        );
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        if matches!(refusal, Refusal::Connections) {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Adds one to `counter` unless it has reached `limit`.
fn take(counter: &AtomicUsize, limit: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            (open < limit).then_some(open + 1)
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_sets_aside_the_pool_the_listeners_and_a_reserve() {
        assert_eq!(connection_budget(20_000, 10), 20_000 - 10 - 2 - 128 - 64);
        assert_eq!(connection_budget(100, 10), 1, "never below one");
        assert_eq!(connection_budget(u64::MAX, 10), (1 << 20) - 204);
    }

    #[test]
    fn http_keeps_room_beside_the_websockets() {
        assert_eq!(http_headroom(19_796, 64), 989);
        assert_eq!(http_headroom(10_000, 1_000), 1_000);
        assert_eq!(http_headroom(8, 2), 2);
        assert_eq!(http_headroom(8, 64), 4, "at most half");
    }

    #[test]
    fn connections_beyond_the_budget_are_refused_then_dropped() {
        let capacity = Capacity::new(2, 1, 0, Duration::from_secs(1));
        let first = capacity.admit();
        let second = capacity.admit();
        assert!(matches!(first, Admission::Serve(_)));
        assert!(matches!(second, Admission::Serve(_)));
        let refused: Vec<Admission> = (0..OVERFLOW).map(|_| capacity.admit()).collect();
        assert!(refused.iter().all(|a| matches!(a, Admission::Refuse(_))));
        assert!(matches!(capacity.admit(), Admission::Drop));
        drop(refused);
        drop(first);
        assert!(matches!(capacity.admit(), Admission::Serve(_)));
        let usage = capacity.usage();
        assert_eq!(usage.refused[0].1, OVERFLOW as u64 + 1);
        assert_eq!(usage.dropped, 1);
    }

    #[test]
    fn saturation_is_reported_before_the_listener_is_full() {
        let capacity = Capacity::new(20, 10, 0, Duration::from_secs(1));
        let held: Vec<WebsocketSlot> = (0..8).filter_map(|_| capacity.websocket()).collect();
        assert_eq!(capacity.saturated(), None);
        let ninth = capacity.websocket();
        assert_eq!(capacity.saturated(), Some("websockets"));
        drop(ninth);
        drop(held);
        assert_eq!(capacity.saturated(), None);
    }

    #[test]
    fn refused_clients_are_asked_to_wait_between_one_and_two_waits() {
        let capacity = Capacity::new(1, 1, 1, Duration::from_secs(4));
        let waits: Vec<u64> = (0..200).map(|_| capacity.retry_after()).collect();
        assert!(waits.iter().all(|w| (4..=8).contains(w)), "{waits:?}");
        assert!(
            waits.iter().any(|w| *w != waits[0]),
            "jittered, not all the same: {waits:?}"
        );
    }

    #[test]
    fn requests_beyond_the_limit_are_refused_and_counted() {
        let capacity = Capacity::new(10, 5, 1, Duration::from_secs(1));
        let running = capacity.request();
        assert!(running.is_some());
        assert!(capacity.request().is_none());
        drop(running);
        assert!(capacity.request().is_some());
        assert_eq!(capacity.usage().refused[2].1, 1);
    }
}
