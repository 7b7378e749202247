//! Reading tickets: one by id or number, filtered and ordered pages with
//! keyset cursors, and a ticket's comments, history and links.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, Order, QueryFilter,
    QueryOrder, QuerySelect, Select,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, Func, Query, SimpleExpr, WindowStatement},
};
use serde_json::{Value, json};

use super::rules::workflow;
use crate::paging::CountRows;
use crate::{
    access::Scope,
    clock::now,
    db::Db,
    entity::{comments, ticket_events, ticket_links, tickets},
    error::{ApiError, ApiResult},
    paging::{self, Page, PageInfoFlags, encode_cursor},
    vocabulary::{Priority, Status, TicketKind, Visibility},
};

/// Which tickets a list holds; empty lists and `None` do not filter.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Any of these kinds.
    pub kinds: Vec<TicketKind>,
    /// Any of these statuses.
    pub statuses: Vec<Status>,
    /// Any of these priorities.
    pub priorities: Vec<Priority>,
    /// In any of these queues.
    pub queue_ids: Vec<i64>,
    /// About any of these services.
    pub service_ids: Vec<i64>,
    /// Assigned to this user.
    pub assignee_id: Option<i64>,
    /// Requested by this user.
    pub requester_id: Option<i64>,
    /// Without (`true`) or with (`false`) an assignee.
    pub unassigned: Option<bool>,
    /// Breaching an SLA target (`true`) or not (`false`).
    pub breached: Option<bool>,
    /// Still open (`true`) or resolved, closed or cancelled (`false`).
    pub open: Option<bool>,
    /// Words in the title or description, case-insensitive.
    pub search: Option<String>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
    /// Updated at or after.
    pub updated_after: Option<DateTime<Utc>>,
    /// Updated before.
    pub updated_before: Option<DateTime<Utc>>,
}

/// SQL for "breaches an SLA target at `at`", matching `rules::sla::Clock::view`.
pub fn breached_at(at: DateTime<Utc>) -> SimpleExpr {
    let response = Func::coalesce([
        Expr::col(tickets::Column::RespondedAt),
        Expr::col(tickets::Column::SlaStoppedAt),
        Expr::val(at),
    ]);
    let resolution = Func::coalesce([
        Expr::col(tickets::Column::SlaStoppedAt),
        Expr::col(tickets::Column::PausedSince),
        Expr::val(at),
    ]);
    Expr::expr(response)
        .gt(Expr::col(tickets::Column::ResponseDueAt))
        .or(Expr::expr(resolution).gt(Expr::col(tickets::Column::ResolutionDueAt)))
}

impl TicketFilter {
    /// The SQL condition for this filter, with breaches judged at `at`.
    pub fn condition(&self, at: DateTime<Utc>) -> ApiResult<Condition> {
        let mut condition = Condition::all();
        if !self.kinds.is_empty() {
            condition = condition.add(tickets::Column::Kind.is_in(self.kinds.clone()));
        }
        if !self.statuses.is_empty() {
            condition = condition.add(tickets::Column::Status.is_in(self.statuses.clone()));
        }
        if !self.priorities.is_empty() {
            condition = condition.add(tickets::Column::Priority.is_in(self.priorities.clone()));
        }
        if !self.queue_ids.is_empty() {
            condition = condition.add(tickets::Column::QueueId.is_in(self.queue_ids.clone()));
        }
        if !self.service_ids.is_empty() {
            condition = condition.add(tickets::Column::ServiceId.is_in(self.service_ids.clone()));
        }
        if let Some(id) = self.assignee_id {
            condition = condition.add(tickets::Column::AssigneeId.eq(id));
        }
        if let Some(id) = self.requester_id {
            condition = condition.add(tickets::Column::RequesterId.eq(id));
        }
        match self.unassigned {
            Some(true) => condition = condition.add(tickets::Column::AssigneeId.is_null()),
            Some(false) => condition = condition.add(tickets::Column::AssigneeId.is_not_null()),
            None => {}
        }
        match self.open {
            Some(true) => condition = condition.add(tickets::Column::Status.is_in(workflow::OPEN)),
            Some(false) => {
                condition = condition.add(tickets::Column::Status.is_not_in(workflow::OPEN))
            }
            None => {}
        }
        match self.breached {
            Some(true) => condition = condition.add(breached_at(at)),
            Some(false) => condition = condition.add(breached_at(at).not()),
            None => {}
        }
        condition = condition.add(crate::text::search_condition(
            self.search.as_deref(),
            &[tickets::Column::Title, tickets::Column::Description],
        )?);
        let ranges = [
            (
                tickets::Column::CreatedAt,
                self.created_after,
                true,
                "createdAfter",
            ),
            (
                tickets::Column::CreatedAt,
                self.created_before,
                false,
                "createdBefore",
            ),
            (
                tickets::Column::UpdatedAt,
                self.updated_after,
                true,
                "updatedAfter",
            ),
            (
                tickets::Column::UpdatedAt,
                self.updated_before,
                false,
                "updatedBefore",
            ),
        ];
        for (column, bound, lower, field) in ranges {
            crate::clock::check_instant(field, bound)?;
            if let Some(bound) = bound {
                condition = condition.add(if lower {
                    column.gte(bound)
                } else {
                    column.lt(bound)
                });
            }
        }
        Ok(condition)
    }
}

/// The orders a ticket list can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum TicketOrderField {
    /// Priority (CRITICAL first), then resolution due time (soonest first;
    /// none last: tickets whose clock is paused or stopped, such as `PENDING`
    /// or resolved ones), then creation time, then id: the order agents work
    /// a queue in.
    Importance,
    /// Creation time, then id.
    CreatedAt,
    /// Last change, then id.
    UpdatedAt,
}

/// An order and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketOrder {
    /// The sort key.
    pub field: TicketOrderField,
    /// Ascending, or descending (every key column reversed).
    pub descending: bool,
}

impl Default for TicketOrder {
    fn default() -> Self {
        Self {
            field: TicketOrderField::Importance,
            descending: false,
        }
    }
}

#[derive(Clone, Copy)]
enum KeyKind {
    Int,
    Time,
}

impl TicketOrder {
    /// The name cursors of this order carry.
    pub fn tag(&self) -> String {
        let field = match self.field {
            TicketOrderField::Importance => "IMPORTANCE",
            TicketOrderField::CreatedAt => "CREATED_AT",
            TicketOrderField::UpdatedAt => "UPDATED_AT",
        };
        format!("{field}_{}", if self.descending { "DESC" } else { "ASC" })
    }

    fn columns(&self) -> Vec<(tickets::Column, KeyKind)> {
        use tickets::Column as C;
        match self.field {
            TicketOrderField::Importance => vec![
                (C::PriorityRank, KeyKind::Int),
                (C::QueueDueAt, KeyKind::Time),
                (C::CreatedAt, KeyKind::Time),
                (C::Id, KeyKind::Int),
            ],
            TicketOrderField::CreatedAt => {
                vec![(C::CreatedAt, KeyKind::Time), (C::Id, KeyKind::Int)]
            }
            TicketOrderField::UpdatedAt => {
                vec![(C::UpdatedAt, KeyKind::Time), (C::Id, KeyKind::Int)]
            }
        }
    }

    /// The cursor of `ticket` in this order.
    pub fn cursor(&self, ticket: &tickets::Model) -> String {
        let time = |t: DateTime<Utc>| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        let key = match self.field {
            TicketOrderField::Importance => vec![
                json!(ticket.priority_rank),
                time(ticket.queue_due_at),
                time(ticket.created_at),
                json!(ticket.id),
            ],
            TicketOrderField::CreatedAt => vec![time(ticket.created_at), json!(ticket.id)],
            TicketOrderField::UpdatedAt => vec![time(ticket.updated_at), json!(ticket.id)],
        };
        encode_cursor(&self.tag(), key)
    }

    /// Rows strictly after (`forward`) or before the cursor key, in this order.
    fn after(&self, key: &[Value], forward: bool, field: &str) -> ApiResult<SimpleExpr> {
        let columns = self.columns();
        let invalid = || ApiError::bad_input(field, "the cursor does not fit this list");
        if key.len() != columns.len() {
            return Err(invalid());
        }
        let mut values = Vec::with_capacity(key.len());
        for ((_, kind), value) in columns.iter().zip(key) {
            values.push(match kind {
                KeyKind::Int => Expr::val(value.as_i64().ok_or_else(invalid)?),
                KeyKind::Time => {
                    let text = value.as_str().ok_or_else(invalid)?;
                    let time = DateTime::parse_from_rfc3339(text).map_err(|_| invalid())?;
                    Expr::val(time.with_timezone(&Utc))
                }
            });
        }
        let row = Expr::tuple(columns.iter().map(|(column, _)| Expr::col(*column)));
        let key = Expr::tuple(values);
        // Ascending and forward, or descending and backward: greater keys.
        Ok(if forward != self.descending {
            row.gt(key)
        } else {
            row.lt(key)
        })
    }
}

/// A ticket list as a viewer asked for it: every ticket they may see, or one
/// queue's (where a queue's agents see all of it), narrowed by a filter.
#[derive(Debug, Clone)]
pub struct TicketList {
    visible: Condition,
    condition: Condition,
}

impl TicketList {
    /// The list of `queue` (or of every queue) matching `filter`, for `scope`.
    pub fn new(scope: &Scope, queue: Option<i64>, filter: &TicketFilter) -> ApiResult<Self> {
        let mut condition = filter.condition(now())?;
        let visible = match queue {
            Some(queue_id) => {
                condition = condition.add(tickets::Column::QueueId.eq(queue_id));
                scope.visible_in_queue(queue_id)
            }
            None => scope.visible(),
        };
        Ok(Self { visible, condition })
    }

    fn select(&self) -> Select<tickets::Entity> {
        tickets::Entity::find()
            .filter(self.visible.clone())
            .filter(self.condition.clone())
    }
}

/// One page of a ticket list.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn page(
    db: &Db,
    list: &TicketList,
    order: TicketOrder,
    page: &Page,
    cursor_field: &str,
) -> ApiResult<(Vec<tickets::Model>, PageInfoFlags)> {
    let mut select = list.select();
    let forward = !page.backward;
    if let Some(key) = &page.key {
        select = select.filter(order.after(key, forward, cursor_field)?);
    }
    let direction = if forward != order.descending {
        Order::Asc
    } else {
        Order::Desc
    };
    for (column, _) in order.columns() {
        select = select.order_by(column, direction.clone());
    }
    let rows = select.limit(page.limit + 1).all(db.reader()).await?;
    Ok(page.finish(rows))
}

/// How many tickets a list holds.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn count(db: &Db, list: &TicketList) -> ApiResult<u64> {
    Ok(list.select().count_rows(db.reader()).await?)
}

/// A ticket by id, if the viewer may see it.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, id))]
pub async fn by_id(db: &Db, scope: &Scope, id: i64) -> ApiResult<Option<tickets::Model>> {
    Ok(tickets::Entity::find_by_id(id)
        .one(db.reader())
        .await?
        .filter(|t| scope.can_see(t)))
}

/// A ticket by its human number, if the viewer may see it.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id))]
pub async fn by_number(db: &Db, scope: &Scope, number: &str) -> ApiResult<Option<tickets::Model>> {
    Ok(tickets::Entity::find()
        .filter(tickets::Column::Number.eq(number.trim().to_uppercase()))
        .one(db.reader())
        .await?
        .filter(|t| scope.can_see(t)))
}

/// Tickets by id, in no particular order (callers check who may see them).
#[tracing::instrument(skip_all, level = "debug", fields(count = ids.len()))]
pub async fn by_ids(db: &Db, ids: &[i64]) -> ApiResult<Vec<tickets::Model>> {
    Ok(tickets::Entity::find()
        .filter(tickets::Column::Id.is_in(ids.iter().copied()))
        .all(db.reader())
        .await?)
}

/// A comment by id, if the viewer sees its ticket and may read it (work
/// notes are for staff).
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, comment = id))]
pub async fn comment_by_id(db: &Db, scope: &Scope, id: i64) -> ApiResult<Option<comments::Model>> {
    let Some(comment) = comments::Entity::find_by_id(id).one(db.reader()).await? else {
        return Ok(None);
    };
    if !scope.visibilities().contains(&comment.visibility) {
        return Ok(None);
    }
    let ticket = by_id(db, scope, comment.ticket_id).await?;
    Ok(ticket.map(|_| comment))
}

/// The comments of ticket `ticket_id` that `visibilities` allow.
fn comments_of(ticket_id: i64, visibilities: &[Visibility]) -> Select<comments::Entity> {
    comments::Entity::find()
        .filter(comments::Column::TicketId.eq(ticket_id))
        .filter(comments::Column::Visibility.is_in(visibilities.to_vec()))
}

/// The comments of a ticket the viewer sees, oldest first, in pages.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, ticket = ticket.id))]
pub async fn comments(
    db: &Db,
    scope: &Scope,
    ticket: &tickets::Model,
    page: &Page,
) -> ApiResult<(Vec<comments::Model>, PageInfoFlags)> {
    let select = comments_of(ticket.id, scope.visibilities());
    paging::by_number(db, select, comments::Column::Id, page).await
}

/// How many comments of a ticket the viewer sees.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, ticket = ticket_id))]
pub async fn count_comments(db: &Db, scope: &Scope, ticket_id: i64) -> ApiResult<u64> {
    Ok(comments_of(ticket_id, scope.visibilities())
        .count_rows(db.reader())
        .await?)
}

/// How many comments a ticket has that a viewer may read, and the newest.
#[derive(Debug, Clone, Default)]
pub struct CommentStats {
    /// Comments the viewer may read.
    pub count: i64,
    /// The newest of them.
    pub latest: Option<comments::Model>,
}

/// [`CommentStats`] of several tickets for a viewer reading `visibilities`
/// (from [`Scope::visibilities`]): one statement however many tickets, which
/// returns each ticket's newest readable comment with the count beside it.
#[tracing::instrument(skip_all, level = "debug", fields(tickets = ticket_ids.len()))]
pub async fn comment_stats(
    db: &Db,
    ticket_ids: &[i64],
    visibilities: &[Visibility],
) -> ApiResult<HashMap<i64, CommentStats>> {
    let per_ticket = || WindowStatement::partition_by(comments::Column::TicketId);
    let readable = Query::select()
        .column(Asterisk)
        .expr_window_as(Expr::cust("COUNT(*)"), per_ticket(), Alias::new("readable"))
        .expr_window_as(
            Expr::cust("ROW_NUMBER()"),
            per_ticket()
                .order_by(comments::Column::Id, Order::Desc)
                .to_owned(),
            Alias::new("newest_first"),
        )
        .from(comments::Entity)
        .and_where(comments::Column::TicketId.is_in(ticket_ids.iter().copied()))
        .and_where(comments::Column::Visibility.is_in(visibilities.to_vec()))
        .to_owned();
    let newest = Query::select()
        .column(Asterisk)
        .from_subquery(readable, Alias::new("readable_comments"))
        .and_where(Expr::col(Alias::new("newest_first")).eq(1))
        .to_owned();
    let reader = db.reader();
    let rows = reader
        .query_all_raw(reader.get_database_backend().build(&newest))
        .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let count: i64 = row.try_get("", "readable")?;
        let latest = comments::Model::from_query_result(&row, "")?;
        found.insert(
            latest.ticket_id,
            CommentStats {
                count,
                latest: Some(latest),
            },
        );
    }
    Ok(ticket_ids
        .iter()
        .map(|id| (*id, found.remove(id).unwrap_or_default()))
        .collect())
}

/// The events of ticket `ticket_id` that `visibilities` allow.
fn events_of(ticket_id: i64, visibilities: &[Visibility]) -> Select<ticket_events::Entity> {
    ticket_events::Entity::find()
        .filter(ticket_events::Column::TicketId.eq(ticket_id))
        .filter(ticket_events::Column::Visibility.is_in(visibilities.to_vec()))
}

/// The events of a ticket the viewer sees, oldest first, in pages.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, ticket = ticket.id))]
pub async fn history(
    db: &Db,
    scope: &Scope,
    ticket: &tickets::Model,
    page: &Page,
) -> ApiResult<(Vec<ticket_events::Model>, PageInfoFlags)> {
    let select = events_of(ticket.id, scope.visibilities());
    paging::by_number(db, select, ticket_events::Column::Seq, page).await
}

/// How many events of a ticket the viewer sees.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, ticket = ticket_id))]
pub async fn count_events(db: &Db, scope: &Scope, ticket_id: i64) -> ApiResult<u64> {
    Ok(events_of(ticket_id, scope.visibilities())
        .count_rows(db.reader())
        .await?)
}

/// The tickets linked to each of `ticket_ids`, either way, by ticket.
#[tracing::instrument(skip_all, level = "debug", fields(tickets = ticket_ids.len()))]
pub async fn links_of_tickets(db: &Db, ticket_ids: &[i64]) -> ApiResult<HashMap<i64, Vec<i64>>> {
    let ids = ticket_ids.iter().copied();
    let links = ticket_links::Entity::find()
        .filter(
            Condition::any()
                .add(ticket_links::Column::FromTicketId.is_in(ids.clone()))
                .add(ticket_links::Column::ToTicketId.is_in(ids)),
        )
        .all(db.reader())
        .await?;
    let mut linked: HashMap<i64, Vec<i64>> = HashMap::new();
    for link in links {
        if ticket_ids.contains(&link.from_ticket_id) {
            linked
                .entry(link.from_ticket_id)
                .or_default()
                .push(link.to_ticket_id);
        }
        if ticket_ids.contains(&link.to_ticket_id) {
            linked
                .entry(link.to_ticket_id)
                .or_default()
                .push(link.from_ticket_id);
        }
    }
    Ok(linked)
}
