//! The in-process event bus: every committed ticket event, with the ticket as
//! it was when the event was read, broadcast to this process's subscribers.
//!
//! A broadcast channel keeps each event once however many subscribers there
//! are; a subscriber that falls a whole buffer behind is told so and must
//! resume from the log with `after`, so memory stays bounded.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::entity::{ticket_events, tickets};

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
}

impl EventBus {
    /// A bus that buffers `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
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

    /// How many subscriptions are listening.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }
}
