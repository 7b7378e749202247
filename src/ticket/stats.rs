//! Counting tickets: the statistics a queue's board shows.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect,
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

/// Statistics of queues, over the open tickets the viewer may see: one
/// grouped scan of the queues' open tickets, however many.
#[tracing::instrument(skip_all, level = "debug", fields(viewer = scope.user_id, queues = queue_ids.len()))]
pub async fn queues(db: &Db, scope: &Scope, queue_ids: &[i64]) -> ApiResult<HashMap<i64, Stats>> {
    let rows = grouped(db, scope, queue_ids).await?;
    Ok(queue_ids
        .iter()
        .map(|id| (*id, Stats::of(*id, &rows)))
        .collect())
}

/// Per queue and priority: open tickets, unassigned ones, breaching ones.
type Row = (i64, Priority, i64, Option<i64>, Option<i64>);

async fn grouped(db: &Db, scope: &Scope, queue_ids: &[i64]) -> ApiResult<Vec<Row>> {
    let flag =
        |condition: SimpleExpr| SimpleExpr::from(Func::sum(Expr::case(condition, 1).finally(0)));
    // Queues the viewer sees whole need no per-ticket check, which lets the
    // database count straight from the queue's index.
    let (whole, partly): (Vec<i64>, Vec<i64>) = queue_ids
        .iter()
        .partition(|id| scope.sees_whole_queue(**id));
    let mut reach = Condition::any();
    if !whole.is_empty() {
        reach = reach.add(tickets::Column::QueueId.is_in(whole));
    }
    if !partly.is_empty() {
        reach = reach.add(
            Condition::all()
                .add(tickets::Column::QueueId.is_in(partly))
                .add(scope.visible()),
        );
    }
    Ok(tickets::Entity::find()
        .filter(reach)
        .filter(tickets::Column::Status.is_in(OPEN))
        .select_only()
        .column(tickets::Column::QueueId)
        .column(tickets::Column::Priority)
        .column_as(tickets::Column::Id.count(), "open")
        .column_as(flag(tickets::Column::AssigneeId.is_null()), "unassigned")
        .column_as(flag(breached_at(now())), "breached")
        .group_by(tickets::Column::QueueId)
        .group_by(tickets::Column::Priority)
        .into_tuple()
        .all(db.reader())
        .await?)
}

impl Stats {
    fn of(queue_id: i64, rows: &[Row]) -> Self {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let rows: Vec<&Row> = rows.iter().filter(|row| row.0 == queue_id).collect();
        let by_priority: Vec<(Priority, u64)> = Priority::ALL
            .iter()
            .map(|p| {
                let open = rows.iter().find(|row| row.1 == *p).map_or(0, |row| row.2);
                (*p, count(open))
            })
            .collect();
        Self {
            open: by_priority.iter().map(|(_, n)| n).sum(),
            unassigned: rows.iter().map(|row| count(row.3.unwrap_or(0))).sum(),
            breached: rows.iter().map(|row| count(row.4.unwrap_or(0))).sum(),
            by_priority,
        }
    }
}
