//! A small live field so clients can check their subscription transport end
//! to end, independently of the ticket feeds (it needs no token and no data).

use std::time::Duration;

use async_graphql::{SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, stream};

/// A sign of life on a subscription.
#[derive(SimpleObject, Debug, Clone)]
pub struct Heartbeat {
    /// Beats sent on this subscription so far, counting from 1.
    pub seq: i32,
    /// When the server sent this beat.
    pub at: DateTime<Utc>,
}

/// The heartbeat subscription.
#[derive(Default)]
pub struct HeartbeatSubscription;

/// Transport checks.
#[Subscription]
impl HeartbeatSubscription {
    /// Sends a beat at once, then one every `intervalSeconds` (1 to 300).
    async fn heartbeat(
        &self,
        #[graphql(
            default = 15,
            validator(minimum = 1, maximum = 300),
            desc = "Seconds between beats, from 1 to 300."
        )]
        interval_seconds: u32,
    ) -> impl Stream<Item = Heartbeat> + use<> {
        let interval = tokio::time::interval(Duration::from_secs(u64::from(interval_seconds)));
        stream::unfold((interval, 0), |(mut interval, seq)| async move {
            interval.tick().await;
            let seq = seq + 1;
            let beat = Heartbeat {
                seq,
                at: Utc::now(),
            };
            Some((beat, (interval, seq)))
        })
    }
}
