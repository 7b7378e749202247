//! Demo tickets of every kind, taken through realistic paths.

use anyhow::Context;
use rand::{Rng, rngs::StdRng, seq::IndexedRandom};

use super::Summary;
use super::api;
use super::people::find;
use super::people::team_owns;
use crate::{
    access::Scope,
    auth::{Role, Viewer},
    db::Db,
    entity::queues,
    ticket::{
        fulfilment::{self, Decision},
        rules::workflow::Move,
        service::{self as tickets, Assignment, NewTicket},
    },
    vocabulary::{ChangeType, Level, PendingReason, Status, TicketKind, Visibility},
};

pub(super) const INCIDENTS: &[&str] = &[
    "VPN disconnects every few minutes",
    "Wifi unavailable on floor 3",
    "Laptop will not boot after update",
    "Printer on floor 2 jams on every job",
    "Cannot open shared mailbox",
    "CRM shows a blank page after login",
    "Monitor flickers on docking station",
    "Video calls drop audio",
    "Password reset email never arrives",
    "Network drive mapped as read-only",
    "Payroll export times out",
    "Keyboard keys stick",
    "Core switch reports packet loss",
    "Badge reader at main entrance rejects badges",
];

pub(super) const REQUESTS: &[&str] = &[
    "New laptop for new starter",
    "Access to the finance share",
    "Second monitor",
    "Install a diagramming tool",
    "Mobile phone replacement",
    "Guest wifi for a visitor workshop",
    "New headset",
];

pub(super) const PROBLEMS: &[&str] = &[
    "Recurring VPN drops after gateway upgrade",
    "Printer driver crashes print spooler",
    "Mail sync fails for large mailboxes",
];

pub(super) const CHANGES: &[&str] = &[
    "Upgrade access point firmware",
    "Patch database servers",
    "Replace core switch line card",
    "Roll out new laptop image",
];

pub(super) const REPLIES: &[&str] = &[
    "Thanks for reporting; we are looking into it.",
    "Could you tell us when this started?",
    "A fix has been applied; please check again.",
    "We have ordered the part; it should arrive this week.",
];

pub(super) const NOTES: &[&str] = &[
    "Same symptoms as last week's outage.",
    "Vendor case opened.",
    "Probably linked to the firmware rollout.",
    "Waiting for the change window.",
];

/// `count` tickets of every kind, spread over the past days and taken
/// through realistic paths: assigned, commented, pending, resolved, closed,
/// cancelled, approved.
pub(super) async fn tickets(
    db: &Db,
    viewers: &[Viewer],
    queue_ids: &[queues::Model],
    ticket_count: usize,
    summary: &mut Summary,
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let requesters: Vec<Viewer> = viewers
        .iter()
        .filter(|v| v.role == Role::Requester)
        .cloned()
        .collect();
    let manager = find(viewers, "mia.manager")?;
    let manager_scope = Scope::load(db, &manager).await.map_err(api)?;
    // The manager raises the changes, so someone else approves them.
    let approver = find(viewers, "ada.admin")?;
    let approver_scope = Scope::load(db, &approver).await.map_err(api)?;
    let levels = [Level::High, Level::Medium, Level::Low];
    for i in 0..ticket_count {
        let roll = rng.random_range(0..100);
        let kind = match roll {
            0..60 => TicketKind::Incident,
            60..80 => TicketKind::ServiceRequest,
            80..90 => TicketKind::Problem,
            _ => TicketKind::Change,
        };
        let queue = queue_ids.choose(rng).context("queue")?;
        let (author, title) = match kind {
            TicketKind::Incident => (
                requesters.choose(rng).context("requester")?.clone(),
                *INCIDENTS.choose(rng).context("title")?,
            ),
            TicketKind::ServiceRequest => (
                requesters.choose(rng).context("requester")?.clone(),
                *REQUESTS.choose(rng).context("title")?,
            ),
            TicketKind::Problem => (manager.clone(), *PROBLEMS.choose(rng).context("title")?),
            TicketKind::Change => (manager.clone(), *CHANGES.choose(rng).context("title")?),
        };
        let scope = Scope::load(db, &author).await.map_err(api)?;
        let mut new = NewTicket {
            kind: Some(kind),
            title: title.into(),
            description: format!("{title}. Reported through the demo portal (#{i})."),
            impact: levels.choose(rng).copied(),
            urgency: levels.choose(rng).copied(),
            queue_id: Some(queue.id),
            ..NewTicket::default()
        };
        if kind == TicketKind::Change {
            let start = crate::clock::now() + chrono::Duration::days(rng.random_range(1..30));
            new.change_type = Some(
                *[
                    ChangeType::Standard,
                    ChangeType::Normal,
                    ChangeType::Emergency,
                ]
                .choose(rng)
                .context("type")?,
            );
            new.risk = levels.choose(rng).copied();
            new.planned_start = Some(start);
            new.planned_end = Some(start + chrono::Duration::hours(rng.random_range(1..8)));
        }
        if kind == TicketKind::Problem && rng.random_bool(0.5) {
            new.workaround = Some("Restart the affected service.".into());
        }
        let ticket = tickets::create(db, &scope, new).await.map_err(api)?;
        // Spread creation over the last ten days.
        crate::ticket::store::backdate(
            db,
            ticket.id,
            chrono::Duration::minutes(rng.random_range(0..14_400)),
        )
        .await
        .map_err(api)?;
        summary.tickets += 1;

        // Agents of the queue's team work about three in four tickets.
        let team_members: Vec<&Viewer> = viewers
            .iter()
            .filter(|v| v.role == Role::Agent && team_owns(queue, v))
            .collect();
        let Some(agent) = team_members.choose(rng).copied().cloned() else {
            continue;
        };
        let agent_scope = Scope::load(db, &agent).await.map_err(api)?;
        let path = rng.random_range(0..100);
        if path < 25 {
            continue; // stays NEW
        }
        tickets::assign(
            db,
            &agent_scope,
            ticket.id,
            Assignment {
                assignee_id: Some(Some(agent.user.id)),
                queue_id: None,
            },
            None,
        )
        .await
        .map_err(api)?;
        if ticket.status == Status::AwaitingApproval {
            // A normal or emergency change: another approver decides most of them.
            if path < 35 {
                continue;
            }
            let approvals = fulfilment::approvals_of(db, ticket.id).await.map_err(api)?;
            for approval in approvals {
                fulfilment::decide(
                    db,
                    &approver,
                    &approver_scope,
                    approval.id,
                    Decision::Approved,
                    None,
                )
                .await
                .map_err(api)?;
            }
        } else {
            if matches!(kind, TicketKind::Change | TicketKind::ServiceRequest) && path < 35 {
                tickets::transition(
                    db,
                    &agent_scope,
                    ticket.id,
                    Status::AwaitingApproval,
                    Move::default(),
                    None,
                )
                .await
                .map_err(api)?;
                continue;
            }
            tickets::transition(
                db,
                &agent_scope,
                ticket.id,
                Status::InProgress,
                Move::default(),
                None,
            )
            .await
            .map_err(api)?;
        }
        if rng.random_bool(0.6) {
            tickets::comment(
                db,
                &agent_scope,
                ticket.id,
                REPLIES.choose(rng).context("reply")?,
                Visibility::Public,
            )
            .await
            .map_err(api)?;
            summary.comments += 1;
        }
        if rng.random_bool(0.4) {
            tickets::comment(
                db,
                &agent_scope,
                ticket.id,
                NOTES.choose(rng).context("note")?,
                Visibility::Internal,
            )
            .await
            .map_err(api)?;
            summary.comments += 1;
        }
        match path {
            35..55 => {} // in progress
            55..65 => {
                let reason = *[
                    PendingReason::AwaitingCaller,
                    PendingReason::AwaitingVendor,
                    PendingReason::AwaitingChange,
                ]
                .choose(rng)
                .context("reason")?;
                let carried = Move {
                    pending_reason: Some(reason),
                    ..Move::default()
                };
                tickets::transition(db, &agent_scope, ticket.id, Status::Pending, carried, None)
                    .await
                    .map_err(api)?;
            }
            65..95 => {
                let carried = Move {
                    resolution: Some("Fixed and confirmed with the requester.".into()),
                    ..Move::default()
                };
                tickets::transition(db, &agent_scope, ticket.id, Status::Resolved, carried, None)
                    .await
                    .map_err(api)?;
                if path >= 80 {
                    tickets::transition(
                        db,
                        &manager_scope,
                        ticket.id,
                        Status::Closed,
                        Move::default(),
                        None,
                    )
                    .await
                    .map_err(api)?;
                }
            }
            _ => {
                let carried = Move {
                    reason: Some("Duplicate of an earlier ticket.".into()),
                    ..Move::default()
                };
                tickets::transition(
                    db,
                    &agent_scope,
                    ticket.id,
                    Status::Cancelled,
                    carried,
                    None,
                )
                .await
                .map_err(api)?;
            }
        }
        if (i + 1) % 1000 == 0 {
            tracing::info!(tickets = i + 1, "seeding");
        }
    }
    Ok(())
}
