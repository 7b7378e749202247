//! What a webhook delivery says: one event, in the Standard Webhooks
//! envelope (`type`, `timestamp`, `data`), with the ticket as an integration
//! sees it when the delivery is made, the changes the event made, and for a
//! comment, the comment.
//!
//! ```json
//! {"type": "ticket.status_changed", "timestamp": "2026-11-30T12:00:00Z",
//!  "data": {"cursor": "…", "seq": 42, "kind": "STATUS_CHANGED", "visibility": "PUBLIC",
//!           "occurredAt": "…", "actor": {"id": "…", "name": "…", "email": "…"},
//!           "changes": [{"field": "status", "from": "NEW", "to": "IN_PROGRESS"}],
//!           "ticket": {"id": "…", "number": "INC0001001", …}}}
//! ```

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Map, Value, json};

use crate::{
    db::Db,
    entity::{catalog_items, comments, queues, services, users},
    error::ApiResult,
    events::{bus::Published, changes_of, feed},
    ids::global_id,
    vocabulary::EventKind,
};

/// The `type` of an event kind: `ticket.` and the kind in lower case.
pub fn event_type(kind: EventKind) -> String {
    format!("ticket.{}", kind.as_str().to_ascii_lowercase())
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn optional_time(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |at| Value::String(time(at)))
}

/// The rows a batch of events refers to, read in one query per table.
#[derive(Debug, Default)]
pub struct Lookups {
    users: HashMap<i64, users::Model>,
    queues: HashMap<i64, queues::Model>,
    services: HashMap<i64, services::Model>,
    items: HashMap<i64, catalog_items::Model>,
    comments: HashMap<i64, comments::Model>,
}

/// The comment a `COMMENT_ADDED` event names.
fn comment_id(published: &Published) -> Option<i64> {
    if published.event.kind != EventKind::CommentAdded {
        return None;
    }
    changes_of(&published.event)
        .into_iter()
        .find(|c| c.field == "comment")
        .and_then(|c| c.to)
        .and_then(|id| id.parse().ok())
}

fn ids(values: impl Iterator<Item = i64>) -> Vec<i64> {
    let set: HashSet<i64> = values.collect();
    set.into_iter().collect()
}

impl Lookups {
    /// Reads what `batch` refers to.
    pub async fn load(db: &Db, batch: &[Published]) -> ApiResult<Self> {
        let comment_ids = ids(batch.iter().filter_map(comment_id));
        let comments: HashMap<i64, comments::Model> = if comment_ids.is_empty() {
            HashMap::new()
        } else {
            comments::Entity::find()
                .filter(comments::Column::Id.is_in(comment_ids))
                .all(db.reader())
                .await?
                .into_iter()
                .map(|c| (c.id, c))
                .collect()
        };
        let user_ids = ids(batch
            .iter()
            .flat_map(|p| {
                [
                    p.event.actor_id,
                    Some(p.ticket.requester_id),
                    p.ticket.assignee_id,
                ]
            })
            .flatten()
            .chain(comments.values().map(|c| c.author_id)));
        let users = users::Entity::find()
            .filter(users::Column::Id.is_in(user_ids))
            .all(db.reader())
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let queue_ids = ids(batch
            .iter()
            .flat_map(|p| [p.ticket.queue_id, p.event.queue_id]));
        let queues = queues::Entity::find()
            .filter(queues::Column::Id.is_in(queue_ids))
            .all(db.reader())
            .await?
            .into_iter()
            .map(|q| (q.id, q))
            .collect();
        let service_ids = ids(batch.iter().filter_map(|p| p.ticket.service_id));
        let services = if service_ids.is_empty() {
            HashMap::new()
        } else {
            services::Entity::find()
                .filter(services::Column::Id.is_in(service_ids))
                .all(db.reader())
                .await?
                .into_iter()
                .map(|s| (s.id, s))
                .collect()
        };
        let item_ids = ids(batch.iter().filter_map(|p| p.ticket.catalog_item_id));
        let items = if item_ids.is_empty() {
            HashMap::new()
        } else {
            catalog_items::Entity::find()
                .filter(catalog_items::Column::Id.is_in(item_ids))
                .all(db.reader())
                .await?
                .into_iter()
                .map(|i| (i.id, i))
                .collect()
        };
        Ok(Self {
            users,
            queues,
            services,
            items,
            comments,
        })
    }

    fn person(&self, id: Option<i64>) -> Value {
        let Some(id) = id else {
            return Value::Null;
        };
        match self.users.get(&id) {
            Some(user) => json!({
                "id": global_id("User", id),
                "name": user.display_name,
                "email": user.email,
                "role": user.role.as_str(),
            }),
            None => json!({ "id": global_id("User", id) }),
        }
    }

    fn queue(&self, id: i64) -> Value {
        json!({
            "id": global_id("Queue", id),
            "name": self.queues.get(&id).map(|q| q.name.as_str()),
        })
    }

    fn ticket(&self, published: &Published) -> Value {
        let t = &published.ticket;
        let answers = t
            .request_answers
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok());
        json!({
            "id": global_id("Ticket", t.id),
            "number": t.number,
            "kind": t.kind.as_str(),
            "title": t.title,
            "description": t.description,
            "status": t.status.as_str(),
            "pendingReason": t.pending_reason.map(|r| r.as_str()),
            "impact": t.impact.as_str(),
            "urgency": t.urgency.as_str(),
            "priority": t.priority.as_str(),
            "requester": self.person(Some(t.requester_id)),
            "assignee": self.person(t.assignee_id),
            "queue": self.queue(t.queue_id),
            "service": t.service_id.map(|id| json!({
                "id": global_id("Service", id),
                "name": self.services.get(&id).map(|s| s.name.as_str()),
            })),
            "catalogItem": t.catalog_item_id.map(|id| json!({
                "id": global_id("CatalogItem", id),
                "name": self.items.get(&id).map(|i| i.name.as_str()),
            })),
            "requestAnswers": answers,
            "resolution": t.resolution,
            "cancelReason": t.cancel_reason,
            "rootCause": t.root_cause,
            "workaround": t.workaround,
            "knownError": t.known_error,
            "changeType": t.change_type.map(|c| c.as_str()),
            "risk": t.risk.map(|r| r.as_str()),
            "plannedStart": optional_time(t.planned_start),
            "plannedEnd": optional_time(t.planned_end),
            "sla": {
                "responseDueAt": time(t.response_due_at),
                "resolutionDueAt": time(t.resolution_due_at),
                "respondedAt": optional_time(t.responded_at),
                "pausedSince": optional_time(t.paused_since),
                "stoppedAt": optional_time(t.sla_stopped_at),
            },
            "version": t.version,
            "createdAt": time(t.created_at),
            "updatedAt": time(t.updated_at),
            "resolvedAt": optional_time(t.resolved_at),
            "closedAt": optional_time(t.closed_at),
        })
    }

    /// The body of the delivery of `published`, sent at `at`.
    pub fn body(&self, published: &Published, at: DateTime<Utc>) -> Vec<u8> {
        let event = &published.event;
        let changes: Vec<Value> = changes_of(event)
            .into_iter()
            .map(|c| {
                let object = crate::events::log::named_object(event.kind, &c.field);
                let named = |value: Option<String>| -> Value {
                    match (value, object) {
                        (Some(raw), Some(kind)) => raw
                            .parse::<i64>()
                            .map_or(raw, |id| global_id(kind, id))
                            .into(),
                        (Some(raw), None) => raw.into(),
                        (None, _) => Value::Null,
                    }
                };
                json!({ "field": c.field, "from": named(c.from.clone()), "to": named(c.to.clone()) })
            })
            .collect();
        let mut data = Map::new();
        data.insert("cursor".into(), feed::cursor(event.seq).into());
        data.insert("seq".into(), event.seq.into());
        data.insert("kind".into(), event.kind.as_str().into());
        data.insert("visibility".into(), event.visibility.as_str().into());
        data.insert("occurredAt".into(), time(event.occurred_at).into());
        data.insert("actor".into(), self.person(event.actor_id));
        data.insert("queue".into(), self.queue(event.queue_id));
        data.insert("changes".into(), changes.into());
        if let Some(comment) = comment_id(published).and_then(|id| self.comments.get(&id)) {
            data.insert(
                "comment".into(),
                json!({
                    "id": global_id("Comment", comment.id),
                    "body": comment.body,
                    "visibility": comment.visibility.as_str(),
                    "author": self.person(Some(comment.author_id)),
                    "createdAt": time(comment.created_at),
                }),
            );
        }
        data.insert("ticket".into(), self.ticket(published));
        let envelope = json!({
            "type": event_type(event.kind),
            "timestamp": time(at),
            "data": data,
        });
        serde_json::to_vec(&envelope).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_the_kind_in_lower_case_under_ticket() {
        assert_eq!(event_type(EventKind::CommentAdded), "ticket.comment_added");
        assert_eq!(event_type(EventKind::Created), "ticket.created");
    }
}
