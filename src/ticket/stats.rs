//! Counting tickets: the statistics a queue's board shows.

use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, Func, SimpleExpr},
};

use super::{query::breached_at, rules::workflow::OPEN};
use crate::{
    access::Scope, clock::now, db::Db, entity::tickets, error::ApiResult, vocabulary::Priority,
};

/// Counts of a queue's open tickets that the viewer may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Open tickets.
    pub open: u64,
    /// Open tickets nobody is assigned to.
    pub unassigned: u64,
    /// Open tickets breaching an SLA target.
    pub breached: u64,
    /// Open tickets per priority, most important first, zeros included.
    pub by_priority: Vec<(Priority, u64)>,
}

/// Statistics of a queue, over the open tickets the viewer may see: one
/// grouped scan of the queue's open tickets.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, queue = queue_id))]
pub async fn queue(db: &Db, scope: &Scope, queue_id: i64) -> ApiResult<Stats> {
    let flag =
        |condition: SimpleExpr| SimpleExpr::from(Func::sum(Expr::case(condition, 1).finally(0)));
    let rows: Vec<(Priority, i64, Option<i64>, Option<i64>)> = tickets::Entity::find()
        .filter(scope.visible_in_queue(queue_id))
        .filter(tickets::Column::QueueId.eq(queue_id))
        .filter(tickets::Column::Status.is_in(OPEN))
        .select_only()
        .column(tickets::Column::Priority)
        .column_as(tickets::Column::Id.count(), "open")
        .column_as(flag(tickets::Column::AssigneeId.is_null()), "unassigned")
        .column_as(flag(breached_at(now())), "breached")
        .group_by(tickets::Column::Priority)
        .into_tuple()
        .all(db.reader())
        .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let by_priority: Vec<(Priority, u64)> = Priority::ALL
        .iter()
        .map(|p| {
            let open = rows.iter().find(|row| row.0 == *p).map_or(0, |row| row.1);
            (*p, count(open))
        })
        .collect();
    Ok(Stats {
        open: by_priority.iter().map(|(_, n)| n).sum(),
        unassigned: rows.iter().map(|row| count(row.2.unwrap_or(0))).sum(),
        breached: rows.iter().map(|row| count(row.3.unwrap_or(0))).sum(),
        by_priority,
    })
}
