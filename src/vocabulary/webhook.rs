//! Webhook vocabulary: where an endpoint stands and how an attempt went.

use sea_orm::entity::prelude::StringLen;

vocabulary! {
    /// Where a webhook endpoint stands.
    WebhookStatus {
        /// Deliveries go out.
        Active = "ACTIVE",
        /// An admin paused it; events wait and go out, in order, on resume.
        Paused = "PAUSED",
        /// Retries ran out: it is paused until an admin resumes it.
        Failing = "FAILING",
    }
}

vocabulary! {
    /// How one delivery attempt went.
    DeliveryOutcome {
        /// The receiver answered with a 2xx status.
        Succeeded = "SUCCEEDED",
        /// Any other status, a timeout, or no connection; retried later.
        Failed = "FAILED",
    }
}
