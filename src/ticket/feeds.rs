//! Following ticket events: who may follow which feed. The event log itself
//! (replay, live fan-out, what each viewer may read) lives in `events`.

use futures_util::Stream;

use super::query;
use crate::{
    access::Scope,
    auth::{Role, Viewer},
    db::Db,
    error::{ApiError, ApiResult},
    events::{
        bus::EventBus,
        feed::{self, Delivered, Feed},
    },
    queue,
};

/// Follows `feed` for `viewer` once [`authorize`] allows it: replays the log
/// after `after` (when given), then continues live. `counted` as in
/// [`feed::Opened::follow`].
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, feed = ?feed))]
pub async fn follow(
    db: Db,
    bus: &EventBus,
    viewer: Viewer,
    feed: Feed,
    after: Option<i64>,
    counted: bool,
) -> ApiResult<(i64, impl Stream<Item = ApiResult<Delivered>> + use<>)> {
    let opened = feed::open(db, bus, viewer, feed).await?;
    authorize(opened.db(), opened.scope(), feed).await?;
    opened.follow(after, counted).await
}

/// Checks that `viewer` may subscribe to `feed`. Ticket feeds answer
/// `NOT_FOUND` for tickets the viewer may not see, exactly as for missing ones.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, feed = ?feed))]
pub async fn authorize(db: &Db, scope: &Scope, feed: Feed) -> ApiResult<()> {
    match feed {
        Feed::Queue(id) => {
            if scope.role == Role::Requester {
                return Err(ApiError::Forbidden(
                    "requesters follow their own tickets with myTicketUpdates".into(),
                ));
            }
            if !queue::service::exists(db, id).await? {
                return Err(ApiError::NotFound("no queue with that `queueId`".into()));
            }
            Ok(())
        }
        Feed::Ticket(id) => match query::by_id(db, scope, id).await? {
            Some(_) => Ok(()),
            None => Err(ApiError::NotFound("no ticket with that `ticketId`".into())),
        },
        Feed::Requester(_) | Feed::All => Ok(()),
    }
}
