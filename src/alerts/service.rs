//! Taking an Alertmanager notification: each firing alert opens an incident
//! (or notes the one it already has), each resolved alert resolves its
//! incident. The monitoring integration is the actor of every write; the
//! incidents are requested on behalf of the configured monitoring person.
//!
//! Alertmanager's peers in a cluster each send the same notification: the
//! incident is created under an idempotency key made of the fingerprint and
//! the firing's start, so concurrent copies, on one replica or several,
//! open one incident.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::OnConflict};
use serde::Serialize;

use super::rules::{Alert, Notification};
use crate::{
    access::Scope,
    auth::Role,
    clock::now,
    db::Db,
    entity::{alert_incidents, queues, tickets, users},
    error::{ApiError, ApiResult},
    ids::global_id,
    ticket::{
        rules::workflow::{Move, is_open},
        service::{NewTicket, comment, create, transition},
    },
    vocabulary::{Level, Status, TicketKind, Visibility},
};

/// Most alerts taken from one notification.
pub const MAX_ALERTS: usize = 500;

/// What became of one alert.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handled {
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// `OPENED`, `NOTED`, `RESOLVED` or `IGNORED`.
    pub outcome: &'static str,
    /// The incident's global id, when there is one.
    pub ticket_id: Option<String>,
    /// The incident's number.
    pub number: Option<String>,
}

/// Who requests the incidents monitoring opens: the person with this
/// subject, made a requester named "Monitoring" on first use.
async fn requester(db: &Db, subject: &str) -> ApiResult<i64> {
    let find = || {
        users::Entity::find()
            .filter(users::Column::Subject.eq(subject))
            .one(db.writer())
    };
    if let Some(user) = find().await? {
        return Ok(user.id);
    }
    let at = now();
    users::Entity::insert(users::ActiveModel {
        subject: Set(subject.to_owned()),
        email: Set(None),
        display_name: Set("Monitoring".into()),
        role: Set(Role::Requester),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(users::Column::Subject)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db.writer())
    .await?;
    find()
        .await?
        .map(|user| user.id)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the monitoring person vanished")))
}

async fn queue_id(db: &Db, alert: &Alert) -> ApiResult<Option<i64>> {
    let Some(name) = alert.queue() else {
        return Ok(None);
    };
    let found = queues::Entity::find()
        .filter(queues::Column::Name.eq(name))
        .one(db.reader())
        .await?;
    if found.is_none() {
        tracing::warn!(
            queue = name,
            "an alert names a queue that does not exist; using the default"
        );
    }
    Ok(found.map(|q| q.id))
}

fn handled(fingerprint: String, outcome: &'static str, ticket: Option<&tickets::Model>) -> Handled {
    Handled {
        fingerprint,
        outcome,
        ticket_id: ticket.map(|t| global_id("Ticket", t.id)),
        number: ticket.map(|t| t.number.clone()),
    }
}

/// Takes one notification for the integration `scope`, which must carry
/// `alerts:write`; `requester` is the monitoring person's subject.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, alerts = notification.alerts.len()))]
pub async fn receive(
    db: &Db,
    scope: &Scope,
    requester_subject: &str,
    notification: &Notification,
) -> ApiResult<Vec<Handled>> {
    let Some(acting) = scope.for_alerts() else {
        return Err(ApiError::Forbidden(format!(
            "only an integration whose token carries {} feeds alerts in",
            crate::auth::grants::ALERTS_WRITE
        )));
    };
    if notification.alerts.len() > MAX_ALERTS {
        return Err(ApiError::bad_input(
            "alerts",
            format!("at most {MAX_ALERTS} alerts per notification (set max_alerts)"),
        ));
    }
    let person = requester(db, requester_subject).await?;
    let mut results = Vec::with_capacity(notification.alerts.len());
    for alert in &notification.alerts {
        let result = if alert.firing() {
            fire(db, &acting, person, notification, alert).await?
        } else {
            resolve(db, scope, alert).await?
        };
        results.push(result);
    }
    Ok(results)
}

async fn current(
    db: &Db,
    fingerprint: &str,
) -> ApiResult<Option<(alert_incidents::Model, Option<tickets::Model>)>> {
    let Some(row) = alert_incidents::Entity::find_by_id(fingerprint.to_owned())
        .one(db.writer())
        .await?
    else {
        return Ok(None);
    };
    let ticket = tickets::Entity::find_by_id(row.ticket_id)
        .one(db.writer())
        .await?;
    Ok(Some((row, ticket)))
}

async fn fire(
    db: &Db,
    acting: &Scope,
    person: i64,
    notification: &Notification,
    alert: &Alert,
) -> ApiResult<Handled> {
    let fingerprint = alert.fingerprint();
    let at = now();
    if let Some((row, Some(ticket))) = current(db, &fingerprint).await?
        && (is_open(ticket.status) || row.starts_at == alert.starts_at)
    {
        // The same alert again (a repeat, even after someone resolved its
        // incident, or a new firing while the incident it opened is still
        // being worked): a note, not a second incident.
        let note = if row.starts_at == alert.starts_at {
            format!("Alertmanager: {} is still firing.", alert.name())
        } else {
            format!(
                "Alertmanager: {} fired again at {}.",
                alert.name(),
                alert.starts_at.to_rfc3339()
            )
        };
        let ticket = match comment(db, acting, ticket.id, &note, Visibility::Internal).await {
            Ok((_, ticket)) => ticket,
            // A closed incident takes no more notes: nothing to do.
            Err(ApiError::BadUserInput { .. } | ApiError::Forbidden(_)) => {
                return Ok(handled(fingerprint, "IGNORED", Some(&ticket)));
            }
            Err(error) => return Err(error),
        };
        alert_incidents::Entity::update_many()
            .col_expr(
                alert_incidents::Column::Notifications,
                sea_orm::sea_query::ExprTrait::add(
                    sea_orm::sea_query::Expr::col(alert_incidents::Column::Notifications),
                    1,
                ),
            )
            .col_expr(
                alert_incidents::Column::LastNotifiedAt,
                sea_orm::sea_query::Expr::val(at),
            )
            .filter(alert_incidents::Column::Fingerprint.eq(&fingerprint))
            .exec(db.writer())
            .await?;
        return Ok(handled(fingerprint, "NOTED", Some(&ticket)));
    }
    let (impact, urgency): (Level, Level) = alert.levels();
    let new = NewTicket {
        kind: Some(TicketKind::Incident),
        title: alert.title(),
        description: alert.description(&notification.external_url),
        impact: Some(impact),
        urgency: Some(urgency),
        queue_id: queue_id(db, alert).await?,
        idempotency_key: Some(key(&fingerprint, alert.starts_at)),
        requester_id: Some(person),
        ..NewTicket::default()
    };
    let ticket = create(db, acting, new).await?;
    alert_incidents::Entity::insert(alert_incidents::ActiveModel {
        fingerprint: Set(fingerprint.clone()),
        ticket_id: Set(ticket.id),
        alertname: Set(alert.name().chars().take(200).collect()),
        starts_at: Set(alert.starts_at),
        status: Set("FIRING".into()),
        notifications: Set(1),
        last_notified_at: Set(at),
        resolved_at: Set(None),
        opened_by: Set(acting.user_id),
        created_at: Set(at),
    })
    .on_conflict(
        OnConflict::column(alert_incidents::Column::Fingerprint)
            .update_columns([
                alert_incidents::Column::TicketId,
                alert_incidents::Column::Alertname,
                alert_incidents::Column::StartsAt,
                alert_incidents::Column::Status,
                alert_incidents::Column::Notifications,
                alert_incidents::Column::LastNotifiedAt,
                alert_incidents::Column::ResolvedAt,
                alert_incidents::Column::OpenedBy,
            ])
            .to_owned(),
    )
    .exec_without_returning(db.writer())
    .await?;
    Ok(handled(fingerprint, "OPENED", Some(&ticket)))
}

/// The idempotency key of the incident for one firing of one alert.
fn key(fingerprint: &str, starts_at: DateTime<Utc>) -> String {
    format!(
        "alertmanager:{fingerprint}:{}",
        starts_at.timestamp_micros()
    )
}

async fn resolve(db: &Db, scope: &Scope, alert: &Alert) -> ApiResult<Handled> {
    let fingerprint = alert.fingerprint();
    let Some((row, Some(ticket))) = current(db, &fingerprint).await? else {
        return Ok(handled(fingerprint, "IGNORED", None));
    };
    if row.status == "RESOLVED" || !is_open(ticket.status) {
        return Ok(handled(fingerprint, "IGNORED", Some(&ticket)));
    }
    let acting = scope
        .resolving_alert(ticket.id)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("alerts:write was checked")))?;
    let ended = alert
        .ends_at
        .filter(|t| t.timestamp() > 0)
        .unwrap_or_else(now);
    let resolution = format!(
        "Resolved by monitoring: {} stopped firing at {}.",
        alert.name(),
        ended.to_rfc3339()
    );
    let outcome = transition(
        db,
        &acting,
        ticket.id,
        Status::Resolved,
        Move {
            resolution: Some(resolution.clone()),
            ..Move::default()
        },
        None,
    )
    .await;
    let (outcome, ticket) = match outcome {
        Ok(ticket) => ("RESOLVED", ticket),
        // Someone moved it where monitoring may not resolve it (awaiting a
        // requester, say): say so in a note and leave it to them.
        Err(ApiError::BadUserInput { .. } | ApiError::Forbidden(_)) => {
            let note = format!("{resolution} The incident was left as it is.");
            let (_, ticket) = comment(db, &acting, ticket.id, &note, Visibility::Internal).await?;
            ("NOTED", ticket)
        }
        Err(error) => return Err(error),
    };
    alert_incidents::Entity::update_many()
        .col_expr(
            alert_incidents::Column::Status,
            sea_orm::sea_query::Expr::val("RESOLVED"),
        )
        .col_expr(
            alert_incidents::Column::ResolvedAt,
            sea_orm::sea_query::Expr::val(Some(ended)),
        )
        .filter(alert_incidents::Column::Fingerprint.eq(&fingerprint))
        .filter(alert_incidents::Column::TicketId.eq(ticket.id))
        .exec(db.writer())
        .await?;
    Ok(handled(fingerprint, outcome, Some(&ticket)))
}
