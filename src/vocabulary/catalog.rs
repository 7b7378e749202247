//! Catalog vocabulary: approval rules and task templates.

use sea_orm::entity::prelude::StringLen;
use serde::{Deserialize, Serialize};

vocabulary! {
    /// Who must approve a request before it is fulfilled.
    ApprovalRule {
        /// Nobody: fulfilment starts at once.
        None = "NONE",
        /// Any manager.
        AnyManager = "ANY_MANAGER",
        /// The item's named approvers.
        Approvers = "APPROVERS",
    }
}

vocabulary! {
    /// How many named approvers must approve.
    ApprovalMode {
        /// One of them.
        Any = "ANY",
        /// Every one of them.
        All = "ALL",
    }
}

/// One step of fulfilling a request, as the item defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskTemplate {
    /// What to do.
    pub title: String,
    /// The queue that does it; the request's queue when absent.
    #[serde(default)]
    pub queue_id: Option<i64>,
}
