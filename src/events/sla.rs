//! The SLA timer: raises `SLA_WARNING` at 75 % of a target and `SLA_BREACHED`
//! at 100 %, once per ticket and target. Every replica sweeps; an alert is
//! claimed by flipping its flag with a conditional update, so exactly one
//! replica writes each event.

use std::time::Duration;

use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};
use tokio::task::JoinHandle;

use crate::{
    clock::now,
    db::Db,
    entity::tickets,
    error::ApiResult,
    events::{self, Change, Draft},
    metrics::SweepStats,
    vocabulary::{EventKind, Visibility},
};

/// Tickets alerted per kind per sweep.
const BATCH: u64 = 200;

#[derive(Debug, Clone, Copy)]
enum Alert {
    ResponseWarning,
    ResponseBreach,
    ResolutionWarning,
    ResolutionBreach,
}

impl Alert {
    const ALL: [Self; 4] = [
        Self::ResponseWarning,
        Self::ResponseBreach,
        Self::ResolutionWarning,
        Self::ResolutionBreach,
    ];

    fn flag(self) -> tickets::Column {
        match self {
            Self::ResponseWarning => tickets::Column::ResponseWarned,
            Self::ResponseBreach => tickets::Column::ResponseBreachNoted,
            Self::ResolutionWarning => tickets::Column::ResolutionWarned,
            Self::ResolutionBreach => tickets::Column::ResolutionBreachNoted,
        }
    }

    /// Open tickets whose clock has reached this alert and that were not alerted.
    fn due(self, at: chrono::DateTime<chrono::Utc>) -> Condition {
        let running = Condition::all()
            .add(tickets::Column::SlaStoppedAt.is_null())
            .add(self.flag().eq(false));
        match self {
            Self::ResponseWarning => running
                .add(tickets::Column::RespondedAt.is_null())
                .add(tickets::Column::ResponseWarnAt.lte(at)),
            Self::ResponseBreach => running
                .add(tickets::Column::RespondedAt.is_null())
                .add(tickets::Column::ResponseDueAt.lte(at)),
            Self::ResolutionWarning => running
                .add(tickets::Column::PausedSince.is_null())
                .add(tickets::Column::ResolutionWarnAt.lte(at)),
            Self::ResolutionBreach => running
                .add(tickets::Column::PausedSince.is_null())
                .add(tickets::Column::ResolutionDueAt.lte(at)),
        }
    }

    fn event(self) -> (EventKind, &'static str) {
        match self {
            Self::ResponseWarning => (EventKind::SlaWarning, "RESPONSE"),
            Self::ResponseBreach => (EventKind::SlaBreached, "RESPONSE"),
            Self::ResolutionWarning => (EventKind::SlaWarning, "RESOLUTION"),
            Self::ResolutionBreach => (EventKind::SlaBreached, "RESOLUTION"),
        }
    }
}

/// Sweeps every `every` until aborted, counting each run in `stats`.
pub fn spawn(db: Db, every: Duration, stats: SweepStats) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(100)));
        loop {
            ticks.tick().await;
            let started = std::time::Instant::now();
            let outcome = sweep(&db).await;
            stats.swept(started.elapsed(), outcome.as_ref().ok().copied());
            match outcome {
                Ok(0) => {}
                Ok(raised) => tracing::debug!(raised, "SLA alerts raised"),
                Err(error) => tracing::warn!(?error, "SLA sweep failed"),
            }
        }
    })
}

/// Raises every alert that is due now; returns how many this replica raised.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn sweep(db: &Db) -> ApiResult<usize> {
    let at = now();
    let mut raised = 0;
    for alert in Alert::ALL {
        let due: Vec<i64> = tickets::Entity::find()
            .select_only()
            .column(tickets::Column::Id)
            .filter(alert.due(at))
            .limit(BATCH)
            .into_tuple()
            .all(db.reader())
            .await?;
        for id in due {
            if raise(db, alert, id).await? {
                raised += 1;
            }
        }
    }
    Ok(raised)
}

/// Claims one alert and writes its event; false when another replica (or an
/// earlier sweep) already did.
async fn raise(db: &Db, alert: Alert, id: i64) -> ApiResult<bool> {
    let txn = db.begin().await?;
    let claimed = tickets::Entity::update_many()
        .col_expr(alert.flag(), Expr::val(true))
        .filter(tickets::Column::Id.eq(id))
        .filter(alert.flag().eq(false))
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(false);
    }
    txn.hold_ticket(id);
    let Some(ticket) = tickets::Entity::find_by_id(id).one(&txn).await? else {
        txn.rollback().await?;
        return Ok(false);
    };
    let (kind, target) = alert.event();
    let due = match target {
        "RESPONSE" => ticket.response_due_at,
        _ => ticket.resolution_due_at,
    };
    let changes = [Change::new(
        "sla",
        None,
        Some(format!("{target} due {}", due.to_rfc3339())),
    )];
    let at = now();
    events::record(
        &txn,
        Draft::system(&ticket, kind, &changes, at).visible_as(Visibility::Internal),
    )
    .await?;
    // Background work: nothing reads the event next.
    txn.commit_in_background().await?;
    Ok(true)
}
