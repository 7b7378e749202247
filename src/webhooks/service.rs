//! Managing webhook endpoints (admins only): create, change, pause and
//! resume, rotate the secret, rewind, delete, and read the attempts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter,
};
use serde::{Deserialize, Serialize};

use super::{
    destination::{Policy, Refusal},
    signature::Secret,
};
use crate::paging::CountRows;
use crate::{
    auth::{Role, Viewer, require},
    clock::now,
    db::Db,
    entity::{queues, ticket_events, tickets, webhook_deliveries, webhooks},
    error::{ApiError, ApiResult},
    events::pump::latest_seq,
    paging::{self, Page, PageInfoFlags},
    vocabulary::{EventKind, TicketKind, Visibility, WebhookStatus},
};

/// How long a secret keeps signing after it was rotated out, so receivers
/// can switch without losing a delivery.
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Longest description, in characters.
const MAX_DESCRIPTION: usize = 500;

/// Longest URL, in characters.
const MAX_URL: usize = 2000;

/// Which events an endpoint receives. Empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Event kinds.
    pub events: Vec<EventKind>,
    /// Queues the event happened in (a ticket leaving a queue counts for it).
    pub queue_ids: Vec<i64>,
    /// Ticket kinds.
    pub kinds: Vec<TicketKind>,
    /// Work notes and other internal events too.
    pub include_internal: bool,
}

impl Filter {
    /// The filter an endpoint row stores.
    pub fn of(hook: &webhooks::Model) -> Self {
        Self {
            events: serde_json::from_str(&hook.events).unwrap_or_default(),
            queue_ids: serde_json::from_str(&hook.queue_ids).unwrap_or_default(),
            kinds: serde_json::from_str(&hook.kinds).unwrap_or_default(),
            include_internal: hook.include_internal,
        }
    }

    /// Does the endpoint receive this event?
    pub fn matches(&self, event: &ticket_events::Model, ticket: &tickets::Model) -> bool {
        (self.include_internal || event.visibility == Visibility::Public)
            && (self.events.is_empty() || self.events.contains(&event.kind))
            && (self.queue_ids.is_empty() || self.queue_ids.contains(&event.queue_id))
            && (self.kinds.is_empty() || self.kinds.contains(&ticket.kind))
    }
}

/// An endpoint's fields; on update `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// Where deliveries go.
    pub url: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Event kinds (empty: all).
    pub events: Option<Vec<EventKind>>,
    /// Queues (empty: all).
    pub queue_ids: Option<Vec<i64>>,
    /// Ticket kinds (empty: all).
    pub kinds: Option<Vec<TicketKind>>,
    /// Work notes and other internal events too.
    pub include_internal: Option<bool>,
}

/// The endpoint and its new secret, which is shown this once.
#[derive(Debug)]
pub struct WithSecret {
    /// The endpoint.
    pub webhook: webhooks::Model,
    /// The signing secret, `whsec_…`.
    pub secret: Secret,
}

fn admin(viewer: &Viewer) -> ApiResult<()> {
    require(viewer, Role::Admin, "manage webhooks")
}

fn json<T: Serialize>(value: &T) -> ApiResult<String> {
    serde_json::to_string(value).map_err(ApiError::internal)
}

/// Checks a URL against the allow-list: its shape, and every address its
/// host resolves to now. A host that does not resolve yet is accepted (each
/// delivery checks again).
pub async fn check_destination(policy: &Policy, url: &str) -> ApiResult<String> {
    let refused = |refusal: Refusal| ApiError::bad_input("url", refusal.to_string());
    if url.chars().count() > MAX_URL {
        return Err(ApiError::bad_input(
            "url",
            format!("a URL holds at most {MAX_URL} characters"),
        ));
    }
    let parsed = policy.check_url(url).map_err(refused)?;
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.parse::<std::net::IpAddr>().is_err() {
        let port = parsed.port_or_known_default().unwrap_or(443);
        let lookup = tokio::net::lookup_host((host.as_str(), port));
        if let Ok(Ok(addresses)) = tokio::time::timeout(Duration::from_secs(2), lookup).await {
            let addresses: Vec<_> = addresses.map(|a| a.ip()).collect();
            if let Some(first) = addresses.first()
                && !addresses.iter().any(|ip| policy.check(&host, *ip).is_ok())
            {
                return Err(refused(Refusal::Address(*first)));
            }
        }
    }
    Ok(parsed.to_string())
}

async fn check(db: &Db, policy: &Policy, fields: &mut Fields) -> ApiResult<()> {
    if let Some(url) = &fields.url {
        fields.url = Some(check_destination(policy, url).await?);
    }
    if let Some(description) = &fields.description {
        let description = description.trim();
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(ApiError::bad_input(
                "description",
                format!("a description holds at most {MAX_DESCRIPTION} characters"),
            ));
        }
        fields.description = Some(description.to_owned());
    }
    if let Some(ids) = &mut fields.queue_ids {
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            let found = queues::Entity::find()
                .filter(queues::Column::Id.is_in(ids.clone()))
                .count_rows(db.reader())
                .await?;
            if found != ids.len() as u64 {
                return Err(ApiError::bad_input("queueIds", "no such queue"));
            }
        }
    }
    if let Some(events) = &mut fields.events {
        events.sort_unstable();
        events.dedup();
    }
    if let Some(kinds) = &mut fields.kinds {
        kinds.sort_unstable();
        kinds.dedup();
    }
    Ok(())
}

/// The endpoints, by id (admins).
pub async fn list(
    db: &Db,
    viewer: &Viewer,
    page: &Page,
) -> ApiResult<(Vec<webhooks::Model>, PageInfoFlags)> {
    admin(viewer)?;
    paging::by_number(db, webhooks::Entity::find(), webhooks::Column::Id, page).await
}

/// How many endpoints there are (admins).
pub async fn count(db: &Db, viewer: &Viewer) -> ApiResult<u64> {
    admin(viewer)?;
    Ok(webhooks::Entity::find().count_rows(db.reader()).await?)
}

/// One endpoint, for admins; `None` for anyone else, as for one that does
/// not exist.
pub async fn get(db: &Db, viewer: &Viewer, id: i64) -> ApiResult<Option<webhooks::Model>> {
    if admin(viewer).is_err() {
        return Ok(None);
    }
    Ok(webhooks::Entity::find_by_id(id).one(db.reader()).await?)
}

/// One endpoint (admins); `NOT_FOUND` when there is none.
pub async fn find(db: &Db, viewer: &Viewer, id: i64) -> ApiResult<webhooks::Model> {
    admin(viewer)?;
    webhooks::Entity::find_by_id(id)
        .one(db.writer())
        .await?
        .ok_or_else(|| ApiError::NotFound("no webhook with that `id`".into()))
}

/// Registers an endpoint; it receives the events committed from now on.
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id))]
pub async fn create(
    db: &Db,
    viewer: &Viewer,
    policy: &Policy,
    mut fields: Fields,
) -> ApiResult<WithSecret> {
    admin(viewer)?;
    if fields.url.is_none() {
        return Err(ApiError::bad_input("url", "a webhook needs a URL"));
    }
    check(db, policy, &mut fields).await?;
    let secret = Secret::generate();
    let at = now();
    let webhook = webhooks::Entity::insert(webhooks::ActiveModel {
        id: NotSet,
        url: Set(fields.url.unwrap_or_default()),
        description: Set(fields.description.unwrap_or_default()),
        events: Set(json(&fields.events.unwrap_or_default())?),
        queue_ids: Set(json(&fields.queue_ids.unwrap_or_default())?),
        kinds: Set(json(&fields.kinds.unwrap_or_default())?),
        include_internal: Set(fields.include_internal.unwrap_or(false)),
        status: Set(WebhookStatus::Active),
        secret: Set(secret.expose()),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        cursor: Set(latest_seq(db).await?),
        lease_owner: Set(None),
        lease_until: Set(None),
        failures: Set(0),
        retry_since: Set(None),
        next_attempt_at: Set(None),
        last_error: Set(None),
        last_success_at: Set(None),
        created_by: Set(viewer.user.id),
        version: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
    })
    .exec_with_returning(db.writer())
    .await?;
    tracing::info!(webhook = webhook.id, url = %webhook.url, "webhook created");
    Ok(WithSecret { webhook, secret })
}

/// Saves `row` over the endpoint if it is still at `version`.
async fn save(
    db: &Db,
    hook: &webhooks::Model,
    mut row: webhooks::ActiveModel,
) -> ApiResult<webhooks::Model> {
    row.version = Set(hook.version + 1);
    row.updated_at = Set(now());
    webhooks::Entity::update_many()
        .set(row)
        .filter(webhooks::Column::Id.eq(hook.id))
        .filter(webhooks::Column::Version.eq(hook.version))
        .exec_with_returning(db.writer())
        .await?
        .pop()
        .ok_or_else(|| ApiError::Conflict("the webhook changed meanwhile; reload and retry".into()))
}

/// Changes an endpoint's URL, filter or description.
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, id))]
pub async fn update(
    db: &Db,
    viewer: &Viewer,
    policy: &Policy,
    id: i64,
    expected_version: Option<i32>,
    mut fields: Fields,
) -> ApiResult<webhooks::Model> {
    let hook = find(db, viewer, id).await?;
    if let Some(expected) = expected_version
        && hook.version != expected
    {
        return Err(ApiError::Conflict(format!(
            "the webhook changed since version {expected} (it is at version {}); reload and retry",
            hook.version
        )));
    }
    check(db, policy, &mut fields).await?;
    let mut row = webhooks::ActiveModel::default();
    if let Some(url) = fields.url {
        row.url = Set(url);
    }
    if let Some(description) = fields.description {
        row.description = Set(description);
    }
    if let Some(events) = fields.events {
        row.events = Set(json(&events)?);
    }
    if let Some(ids) = fields.queue_ids {
        row.queue_ids = Set(json(&ids)?);
    }
    if let Some(kinds) = fields.kinds {
        row.kinds = Set(json(&kinds)?);
    }
    if let Some(include) = fields.include_internal {
        row.include_internal = Set(include);
    }
    save(db, &hook, row).await
}

/// Pauses an endpoint: its events wait, in order, until it is resumed.
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, id))]
pub async fn pause(db: &Db, viewer: &Viewer, id: i64) -> ApiResult<webhooks::Model> {
    let hook = find(db, viewer, id).await?;
    if hook.status == WebhookStatus::Paused {
        return Ok(hook);
    }
    let row = webhooks::ActiveModel {
        status: Set(WebhookStatus::Paused),
        ..Default::default()
    };
    save(db, &hook, row).await
}

/// Resumes a paused or failing endpoint: delivery starts again at once with
/// the first event it has not received, and the retry count starts afresh.
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, id))]
pub async fn resume(db: &Db, viewer: &Viewer, id: i64) -> ApiResult<webhooks::Model> {
    let hook = find(db, viewer, id).await?;
    let row = webhooks::ActiveModel {
        status: Set(WebhookStatus::Active),
        ..afresh()
    };
    save(db, &hook, row).await
}

/// An endpoint's retry state cleared: the next attempt is due at once and
/// counts as the first.
fn afresh() -> webhooks::ActiveModel {
    webhooks::ActiveModel {
        failures: Set(0),
        retry_since: Set(None),
        next_attempt_at: Set(None),
        ..Default::default()
    }
}

/// Gives an endpoint a new secret. The old one keeps signing beside it (a
/// second `v1,` signature) for [`ROTATION_GRACE`].
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, id))]
pub async fn rotate_secret(db: &Db, viewer: &Viewer, id: i64) -> ApiResult<WithSecret> {
    let hook = find(db, viewer, id).await?;
    let secret = Secret::generate();
    let until = now()
        + chrono::Duration::from_std(ROTATION_GRACE).unwrap_or_else(|_| chrono::Duration::days(1));
    let row = webhooks::ActiveModel {
        secret: Set(secret.expose()),
        previous_secret: Set(Some(hook.secret.clone())),
        previous_secret_until: Set(Some(until)),
        ..Default::default()
    };
    let webhook = save(db, &hook, row).await?;
    Ok(WithSecret { webhook, secret })
}

/// Rewinds an endpoint so that delivery starts again with event `from`
/// (and everything after it that the endpoint receives).
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, id, from))]
pub async fn redeliver(db: &Db, viewer: &Viewer, id: i64, from: i64) -> ApiResult<webhooks::Model> {
    let hook = find(db, viewer, id).await?;
    if from < 1 {
        return Err(ApiError::bad_input("fromCursor", "not an event's cursor"));
    }
    let row = webhooks::ActiveModel {
        cursor: Set(from - 1),
        ..afresh()
    };
    save(db, &hook, row).await
}

/// Deletes an endpoint and its delivery record.
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, id))]
pub async fn delete(db: &Db, viewer: &Viewer, id: i64) -> ApiResult<webhooks::Model> {
    let hook = find(db, viewer, id).await?;
    let txn = db.begin().await?;
    webhook_deliveries::Entity::delete_many()
        .filter(webhook_deliveries::Column::WebhookId.eq(id))
        .exec(&txn)
        .await?;
    webhooks::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    tracing::info!(webhook = id, "webhook deleted");
    Ok(hook)
}

/// Deletes the delivery attempts made before `before`; how many went.
pub async fn prune_deliveries(db: &Db, before: DateTime<Utc>) -> ApiResult<u64> {
    Ok(webhook_deliveries::Entity::delete_many()
        .filter(webhook_deliveries::Column::AttemptedAt.lt(before))
        .exec(db.writer())
        .await?
        .rows_affected)
}

/// The delivery attempts to an endpoint, oldest first (admins).
pub async fn deliveries(
    db: &Db,
    viewer: &Viewer,
    id: i64,
    page: &Page,
) -> ApiResult<(Vec<webhook_deliveries::Model>, PageInfoFlags)> {
    admin(viewer)?;
    let select =
        webhook_deliveries::Entity::find().filter(webhook_deliveries::Column::WebhookId.eq(id));
    paging::by_number(db, select, webhook_deliveries::Column::Id, page).await
}

/// One delivery attempt, for admins; `None` for anyone else, as for one
/// that does not exist.
pub async fn delivery(
    db: &Db,
    viewer: &Viewer,
    id: i64,
) -> ApiResult<Option<webhook_deliveries::Model>> {
    if admin(viewer).is_err() {
        return Ok(None);
    }
    Ok(webhook_deliveries::Entity::find_by_id(id)
        .one(db.reader())
        .await?)
}

/// How many attempts an endpoint's record holds (admins).
pub async fn count_deliveries(db: &Db, viewer: &Viewer, id: i64) -> ApiResult<u64> {
    admin(viewer)?;
    Ok(webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::WebhookId.eq(id))
        .count_rows(db.reader())
        .await?)
}

/// How many endpoints are in each status (every status, zeros included).
pub async fn by_status(db: &Db) -> ApiResult<Vec<(WebhookStatus, i64)>> {
    use sea_orm::QuerySelect;
    let counted: Vec<(WebhookStatus, i64)> = webhooks::Entity::find()
        .select_only()
        .column(webhooks::Column::Status)
        .column_as(webhooks::Column::Id.count(), "count")
        .group_by(webhooks::Column::Status)
        .into_tuple()
        .all(db.reader())
        .await?;
    Ok([
        WebhookStatus::Active,
        WebhookStatus::Paused,
        WebhookStatus::Failing,
    ]
    .into_iter()
    .map(|status| {
        let count = counted
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        (status, count)
    })
    .collect())
}

/// The events an endpoint has not been sent yet, whatever its filter.
pub async fn backlog(db: &Db, hook: &webhooks::Model) -> ApiResult<i64> {
    Ok((latest_seq(db).await? - hook.cursor).max(0))
}

/// Whether a rotated-out secret still signs at `at`.
pub fn previous_secret_at(hook: &webhooks::Model, at: DateTime<Utc>) -> Option<&str> {
    match (&hook.previous_secret, hook.previous_secret_until) {
        (Some(secret), Some(until)) if until > at => Some(secret),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, visibility: Visibility, queue_id: i64) -> ticket_events::Model {
        ticket_events::Model {
            seq: 1,
            ticket_id: 1,
            queue_id,
            requester_id: 1,
            actor_id: None,
            kind,
            visibility,
            changes: "[]".into(),
            occurred_at: now(),
        }
    }

    fn ticket(kind: TicketKind) -> tickets::Model {
        tickets::Model {
            kind,
            ..tickets::Model::example(now())
        }
    }

    #[test]
    fn an_empty_filter_takes_every_public_event_and_no_work_note() {
        let all = Filter::default();
        let incident = ticket(TicketKind::Incident);
        assert!(all.matches(&event(EventKind::Created, Visibility::Public, 1), &incident));
        assert!(!all.matches(
            &event(EventKind::CommentAdded, Visibility::Internal, 1),
            &incident
        ));
        let internal = Filter {
            include_internal: true,
            ..Filter::default()
        };
        assert!(internal.matches(
            &event(EventKind::CommentAdded, Visibility::Internal, 1),
            &incident
        ));
    }

    #[test]
    fn every_given_list_must_hold_the_events_value() {
        let filter = Filter {
            events: vec![EventKind::Created, EventKind::StatusChanged],
            queue_ids: vec![7],
            kinds: vec![TicketKind::Incident],
            include_internal: false,
        };
        let incident = ticket(TicketKind::Incident);
        assert!(filter.matches(&event(EventKind::Created, Visibility::Public, 7), &incident));
        assert!(!filter.matches(
            &event(EventKind::Assigned, Visibility::Public, 7),
            &incident
        ));
        assert!(!filter.matches(&event(EventKind::Created, Visibility::Public, 8), &incident));
        assert!(!filter.matches(
            &event(EventKind::Created, Visibility::Public, 7),
            &ticket(TicketKind::Change)
        ));
    }
}
