//! Relay: opaque global ids and the `Node` interface.

use async_graphql::{Context, ID, Interface, Object};

use super::ContextExt;
use crate::attachments::{self, resolvers::Attachment};
use crate::{
    catalog::{self, resolvers::CatalogItem},
    error::{ApiError, ApiResult},
    lifecycle::{self, resolvers::Service},
    queue::{self, resolvers::Queue},
    routing::{self, resolvers::RoutingRule},
    team::{self, resolvers::Team},
    ticket::{
        self,
        resolvers::{Approval, Comment, Task, Ticket},
    },
    user::{self, resolvers::User},
    webhooks::{
        self,
        resolvers::{Webhook, WebhookDelivery},
    },
};

/// Anything with a global id.
// A `Node` lives only while one field resolves; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The object's opaque global id."))]
pub enum Node {
    /// A person.
    User(User),
    /// A ticket.
    Ticket(Ticket),
    /// A queue.
    Queue(Queue),
    /// A team.
    Team(Team),
    /// A service in the portfolio.
    Service(Service),
    /// A catalog item.
    CatalogItem(CatalogItem),
    /// A comment or work note on a ticket.
    Comment(Comment),
    /// An approval of a request or change.
    Approval(Approval),
    /// A fulfilment task of a request.
    Task(Task),
    /// A routing rule.
    RoutingRule(RoutingRule),
    /// A webhook endpoint.
    Webhook(Webhook),
    /// One attempt to deliver an event to a webhook.
    WebhookDelivery(WebhookDelivery),
    /// A file attached to a ticket or a comment.
    Attachment(Attachment),
}

/// The global id of the `kind` row with primary key `id`.
pub fn encode_id(kind: &str, id: i64) -> ID {
    ID(crate::ids::global_id(kind, id))
}

/// The kind and primary key inside a global id, if it is one.
pub fn decode_id(id: &str) -> Option<(String, i64)> {
    crate::ids::parse_global_id(id)
}

/// The primary key inside a global id that must be of `kind`; `field` names
/// the input in the error otherwise.
pub fn decode_id_of(kind: &str, id: &ID, field: &str) -> ApiResult<i64> {
    match decode_id(id) {
        Some((found, key)) if found == kind => Ok(key),
        _ => Err(ApiError::bad_input(
            field,
            format!("`{}` is not a valid {kind} id", id.as_str()),
        )),
    }
}

/// The `node` query.
#[derive(Default)]
pub struct NodeQuery;

/// Relay object lookup.
#[Object]
impl NodeQuery {
    /// Fetches any object by its global id; null when it does not exist or the
    /// viewer may not see it.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id, as returned in any `id` field.")] id: ID,
    ) -> ApiResult<Option<Node>> {
        let viewer = ctx.auth().viewer()?;
        let Some((kind, key)) = decode_id(&id) else {
            return Err(ApiError::bad_input("id", "not a valid global id"));
        };
        let db = ctx.db()?;
        Ok(match kind.as_str() {
            "User" => user::service::find_visible(db, viewer, key)
                .await?
                .map(|u| Node::User(User(u))),
            "Ticket" => ticket::query::by_id(db, ctx.scope().await?, key)
                .await?
                .map(|t| Node::Ticket(Ticket(t))),
            "Queue" => queue::service::get(db, key)
                .await?
                .map(|q| Node::Queue(Queue(q))),
            "Team" => team::service::get(db, key)
                .await?
                .map(|t| Node::Team(Team(t))),
            "Service" => lifecycle::portfolio::get(db, viewer, key)
                .await?
                .map(|s| Node::Service(Service(s))),
            "CatalogItem" => catalog::service::get(db.reader(), viewer.role, key)
                .await?
                .map(|i| Node::CatalogItem(CatalogItem(i))),
            "Comment" => ticket::query::comment_by_id(db, ctx.scope().await?, key)
                .await?
                .map(|c| Node::Comment(Comment(c))),
            "Approval" => ticket::fulfilment::approval_by_id(db, viewer, ctx.scope().await?, key)
                .await?
                .map(|a| Node::Approval(Approval(a))),
            "Task" => ticket::fulfilment::task_by_id(db, ctx.scope().await?, key)
                .await?
                .map(|t| Node::Task(Task(t))),
            "RoutingRule" => routing::service::get(db, viewer, key)
                .await?
                .map(|r| Node::RoutingRule(RoutingRule(r))),
            "Webhook" => webhooks::service::get(db, viewer, key)
                .await?
                .map(|w| Node::Webhook(Webhook(w))),
            "Attachment" => attachments::service::get(db, ctx.scope().await?, key)
                .await?
                .map(|a| Node::Attachment(Attachment(a))),
            "WebhookDelivery" => webhooks::service::delivery(db, viewer, key)
                .await?
                .map(|d| Node::WebhookDelivery(WebhookDelivery(d))),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    #[test]
    fn global_ids_round_trip_and_stay_opaque() {
        let id = encode_id("User", 42);
        assert!(!id.as_str().contains("User"));
        assert_eq!(decode_id(&id), Some(("User".into(), 42)));
        assert_eq!(decode_id_of("User", &id, "id").ok(), Some(42));
    }

    #[test]
    fn malformed_or_mistyped_ids_are_bad_input() {
        assert_eq!(decode_id("not base64!"), None);
        assert_eq!(decode_id(&URL_SAFE_NO_PAD.encode("User:x")), None);
        let err = decode_id_of("Ticket", &encode_id("User", 1), "ticketId");
        assert!(matches!(
            err,
            Err(ApiError::BadUserInput { field: Some(f), .. }) if f == "ticketId"
        ));
    }
}
