//! The in-process event bus: every committed ticket event, with the ticket as
//! it was when the event was read, broadcast to this process's subscribers.
//!
//! A broadcast channel keeps each event once however many subscribers there
//! are; a subscriber that falls a whole buffer behind is told so and must
//! resume from the log with `after`, so memory stays bounded.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::broadcast;

use crate::{
    entity::{ticket_events, tickets},
    metrics::EventStats,
};

/// One committed event and its ticket.
#[derive(Debug, Clone)]
pub struct Published {
    /// The event row.
    pub event: ticket_events::Model,
    /// The ticket, as read just after the event was committed.
    pub ticket: tickets::Model,
}

/// Fans committed events out to this process's subscribers.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Published>>,
    following: Arc<AtomicUsize>,
    stats: EventStats,
    capacity: usize,
}

/// One subscription counted as following the stream; uncounted when dropped.
#[derive(Debug)]
pub struct Following(Arc<AtomicUsize>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EventBus {
    /// A bus that buffers `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        Self::with_stats(capacity, EventStats::default())
    }

    /// A bus that buffers `capacity` events and counts them in `stats`.
    pub fn with_stats(capacity: usize, stats: EventStats) -> Self {
        let capacity = capacity.max(1);
        let (sender, _) = broadcast::channel(capacity);
        Self {
            sender,
            following: Arc::default(),
            stats,
            capacity,
        }
    }

    /// What went through the bus, and how far the pump has read.
    pub fn stats(&self) -> &EventStats {
        &self.stats
    }

    /// How many events a subscriber may fall behind before it is stopped.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.sender.subscribe()
    }

    /// Sends an event to every current subscriber.
    pub fn publish(&self, published: Published) {
        // No subscribers is not an error.
        let _ = self.sender.send(Arc::new(published));
    }

    /// Counts a subscription as following the stream: call once its
    /// starting point is fixed, so that it receives every event committed
    /// from then on. Keep the guard as long as the subscription lives.
    pub fn following(&self) -> Following {
        self.following.fetch_add(1, Ordering::AcqRel);
        Following(self.following.clone())
    }

    /// How many subscriptions follow the stream (their starting point fixed).
    pub fn subscribers(&self) -> usize {
        self.following.load(Ordering::Acquire)
    }
}
