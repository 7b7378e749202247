//! The demo service portfolio and catalog, with requests made from it.

use anyhow::Context;
use rand::{rngs::StdRng, seq::IndexedRandom};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::Summary;
use super::api;
use super::people::find;
use crate::{
    access::Scope,
    auth::{Role, Viewer},
    catalog::{
        form::{FieldType, FormField},
        service::{self as catalog_service, Approval, ItemFields, Submission},
    },
    db::Db,
    entity::{catalog_items, queues, routing_rules, services, teams},
    lifecycle::portfolio::{self, NewService},
    routing::{
        rules::{Actions, Conditions},
        service::{self as routing_service, RuleFields},
    },
    ticket::{
        fulfilment::{self, Decision, TaskChange},
        rules::workflow::Move,
        service::{self as tickets},
    },
    vocabulary::{ApprovalMode, ApprovalRule, Level, Stage, Status, TaskTemplate},
};

/// Services: (key, name, description, owner team, stages it went through).
pub(super) const SERVICES: &[(&str, &str, &str, &str, &[Stage])] = &[
    (
        "AI_ASSISTANT",
        "AI assistant",
        "A chat assistant for employees, being evaluated.",
        "Applications",
        &[Stage::Strategy],
    ),
    (
        "MEETING_ROOMS",
        "Hybrid meeting rooms",
        "Video-equipped rooms for mixed teams.",
        "Workplace",
        &[Stage::Strategy, Stage::Design],
    ),
    (
        "HR_SYSTEM",
        "HR system",
        "The new HR and payroll system, rolling out.",
        "Applications",
        &[Stage::Design, Stage::Transition],
    ),
    (
        "DEVICES",
        "End-user devices",
        "Laptops, monitors, phones and accessories.",
        "Workplace",
        &[Stage::Transition, Stage::Operation],
    ),
    (
        "EMAIL",
        "Email and calendar",
        "Mailboxes, lists and calendars.",
        "Applications",
        &[Stage::Operation],
    ),
    (
        "NETWORK",
        "Network access",
        "Wifi, VPN and guest access.",
        "Network",
        &[Stage::Operation],
    ),
    (
        "SOFTWARE",
        "Software",
        "Licensed and free software for staff.",
        "Desktop Support",
        &[Stage::Operation],
    ),
    (
        "SERVICE_DESK",
        "Service desk",
        "First-line support, being improved.",
        "Service Desk",
        &[Stage::Operation, Stage::ContinualImprovement],
    ),
];

pub(super) fn field(key: &str, label: &str, kind: FieldType) -> FormField {
    FormField {
        key: key.into(),
        label: label.into(),
        help: None,
        kind,
        required: false,
        default: None,
        min: None,
        max: None,
        options: Vec::new(),
    }
}

pub(super) fn required(field: FormField) -> FormField {
    FormField {
        required: true,
        ..field
    }
}

pub(super) fn options(field: FormField, options: &[&str]) -> FormField {
    FormField {
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        ..field
    }
}

/// A demo item: (key, name, category, service, queue, approval, tasks, form).
pub(super) type DemoItem = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Approval,
    Vec<&'static str>,
    Vec<FormField>,
);

/// The demo catalog.
pub(super) fn items(approvers: &[i64]) -> Vec<DemoItem> {
    let manager = Approval {
        rule: ApprovalRule::AnyManager,
        ..Approval::default()
    };
    let none = Approval::default();
    let named = Approval {
        rule: ApprovalRule::Approvers,
        mode: ApprovalMode::All,
        approver_ids: approvers.to_vec(),
    };
    vec![
        (
            "NEW_LAPTOP",
            "New laptop",
            "Hardware",
            "DEVICES",
            "Workplace",
            manager.clone(),
            vec!["Procure", "Image", "Deliver"],
            vec![
                required(options(
                    field("model", "Model", FieldType::Select),
                    &["14-inch standard", "16-inch performance"],
                )),
                required(field("justification", "Justification", FieldType::Textarea)),
                required(field("needed_by", "Needed by", FieldType::Date)),
            ],
        ),
        (
            "MONITOR",
            "Second monitor",
            "Hardware",
            "DEVICES",
            "Workplace",
            none.clone(),
            vec!["Ship"],
            vec![options(
                field("size", "Size", FieldType::Select),
                &["24-inch", "27-inch"],
            )],
        ),
        (
            "MOBILE_PHONE",
            "Mobile phone",
            "Hardware",
            "DEVICES",
            "Workplace",
            named.clone(),
            vec!["Order", "Activate SIM", "Deliver"],
            vec![
                required(options(
                    field("model", "Model", FieldType::Select),
                    &["Standard", "Large"],
                )),
                field("keep_number", "Keep my current number", FieldType::Boolean),
            ],
        ),
        (
            "HEADSET",
            "Headset",
            "Accessories",
            "DEVICES",
            "Workplace",
            none.clone(),
            vec!["Ship"],
            vec![options(
                field("kind", "Kind", FieldType::Select),
                &["Wired", "Wireless"],
            )],
        ),
        (
            "SHARED_MAILBOX",
            "Shared mailbox",
            "Access",
            "EMAIL",
            "Applications",
            manager.clone(),
            vec!["Create mailbox", "Grant access"],
            vec![
                required(field("address", "Address", FieldType::Email)),
                field("members", "Members (one per line)", FieldType::Textarea),
            ],
        ),
        (
            "DISTRIBUTION_LIST",
            "Distribution list",
            "Access",
            "EMAIL",
            "Applications",
            none.clone(),
            vec!["Create list"],
            vec![required(field("name", "List name", FieldType::Text))],
        ),
        (
            "VPN_ACCESS",
            "VPN access",
            "Access",
            "NETWORK",
            "Network",
            manager.clone(),
            vec!["Grant access"],
            vec![
                required(field("justification", "Why", FieldType::Textarea)),
                field("until", "Until", FieldType::Date),
            ],
        ),
        (
            "GUEST_WIFI",
            "Guest wifi",
            "Access",
            "NETWORK",
            "Network",
            none.clone(),
            vec!["Issue voucher"],
            vec![
                required(field("visitor", "Visitor's email", FieldType::Email)),
                FormField {
                    min: Some(1.0),
                    max: Some(14.0),
                    default: Some(serde_json::json!(1)),
                    ..field("days", "Days", FieldType::Number)
                },
            ],
        ),
        (
            "SOFTWARE_INSTALL",
            "Software install",
            "Software",
            "SOFTWARE",
            "Desktop",
            none,
            vec!["Install"],
            vec![
                required(options(
                    field("product", "Product", FieldType::Select),
                    &["Diagram editor", "PDF editor", "Statistics suite"],
                )),
                FormField {
                    min: Some(1.0),
                    max: Some(50.0),
                    default: Some(serde_json::json!(1)),
                    ..field("licences", "Licences", FieldType::Number)
                },
                options(
                    field("platforms", "Platforms", FieldType::MultiSelect),
                    &["Windows", "macOS", "Linux"],
                ),
            ],
        ),
        (
            "ADMIN_RIGHTS",
            "Local admin rights",
            "Access",
            "SOFTWARE",
            "Desktop",
            named,
            vec!["Grant rights", "Review after 30 days"],
            vec![required(field(
                "justification",
                "Justification",
                FieldType::Textarea,
            ))],
        ),
    ]
}

/// The portfolio, the catalog, a routing rule, and a few laptop requests at
/// every step of their journey.
pub(super) async fn catalog(
    db: &Db,
    viewers: &[Viewer],
    summary: &mut Summary,
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let admin = find(viewers, "ada.admin")?;
    let manager = find(viewers, "mia.manager")?;
    let team_id = |name: &str| {
        let name = name.to_owned();
        async move {
            teams::Entity::find()
                .filter(teams::Column::Name.eq(name))
                .one(db.reader())
                .await
                .map_err(anyhow::Error::from)?
                .map(|t| t.id)
                .context("team")
        }
    };
    let mut service_ids = std::collections::HashMap::new();
    for (key, name, description, team, stages) in SERVICES {
        let existing = services::Entity::find()
            .filter(services::Column::Key.eq(*key))
            .one(db.reader())
            .await?;
        let service = match existing {
            Some(service) => service,
            None => {
                let new = NewService {
                    key: (*key).into(),
                    name: (*name).into(),
                    description: Some((*description).into()),
                    owner_team_id: team_id(team).await?,
                    stage: stages.first().copied(),
                };
                let mut service = portfolio::create(db, &manager, new).await.map_err(api)?;
                for stage in stages.iter().skip(1) {
                    service =
                        portfolio::move_stage(db, &manager, service.id, *stage, Some("demo"), None)
                            .await
                            .map_err(api)?;
                }
                service
            }
        };
        service_ids.insert(*key, service.id);
    }
    summary.services = service_ids.len();

    let approvers = vec![manager.user.id, admin.user.id];
    let mut laptop = None;
    for (key, name, category, service, queue, approval, tasks, form) in items(&approvers) {
        let existing = catalog_items::Entity::find()
            .filter(catalog_items::Column::Key.eq(key))
            .one(db.reader())
            .await?;
        let item = match existing {
            Some(item) => item,
            None => {
                let queue_id = queues::Entity::find()
                    .filter(queues::Column::Name.eq(queue))
                    .one(db.reader())
                    .await?
                    .context("queue")?
                    .id;
                let fields = ItemFields {
                    service_id: service_ids.get(service).copied(),
                    key: Some(key.into()),
                    name: Some(name.into()),
                    description: Some(format!(
                        "Request {} through the portal.",
                        name.to_lowercase()
                    )),
                    category: Some(category.into()),
                    active: Some(true),
                    fulfilment_queue_id: Some(queue_id),
                    default_impact: Some(Level::Low),
                    default_urgency: Some(Level::Medium),
                    fulfilment_hours: Some(40),
                    approval: Some(approval),
                    tasks: Some(
                        tasks
                            .into_iter()
                            .map(|title| TaskTemplate {
                                title: title.into(),
                                queue_id: None,
                            })
                            .collect(),
                    ),
                    form: Some(form),
                };
                catalog_service::create(db, &admin, fields)
                    .await
                    .map_err(api)?
            }
        };
        summary.items += 1;
        if key == "NEW_LAPTOP" {
            laptop = Some(item);
        }
    }

    if routing_rules::Entity::find()
        .one(db.reader())
        .await?
        .is_none()
    {
        let desktop = queues::Entity::find()
            .filter(queues::Column::Name.eq("Desktop"))
            .one(db.reader())
            .await?
            .context("Desktop queue")?;
        let fields = RuleFields {
            name: Some("Printer trouble goes to Desktop".into()),
            conditions: Some(Conditions {
                keywords: vec!["printer".into()],
                ..Conditions::default()
            }),
            actions: Some(Actions {
                queue_id: Some(desktop.id),
                ..Actions::default()
            }),
            enabled: Some(true),
        };
        routing_service::create(db, &manager, fields)
            .await
            .map_err(api)?;
    }

    // Laptop requests: waiting for approval, approved and being fulfilled,
    // fulfilled and closed, and rejected.
    let Some(laptop) = laptop else {
        return Ok(());
    };
    let requesters: Vec<Viewer> = viewers
        .iter()
        .filter(|v| v.role == Role::Requester)
        .cloned()
        .collect();
    let walt = find(viewers, "walt.workplace")?;
    let manager_scope = Scope::load(db, &manager).await.map_err(api)?;
    let walt_scope = Scope::load(db, &walt).await.map_err(api)?;
    for step in 0..4 {
        let requester = requesters.choose(rng).context("requester")?.clone();
        let scope = Scope::load(db, &requester).await.map_err(api)?;
        let submission = Submission {
            item_id: laptop.id,
            answers: serde_json::json!({
                "model": if step % 2 == 0 { "14-inch standard" } else { "16-inch performance" },
                "justification": "My current laptop is five years old.",
                "needed_by": (crate::clock::now() + chrono::Duration::days(14)).format("%Y-%m-%d").to_string(),
            }),
            title: None,
            idempotency_key: None,
            requester_id: None,
        };
        let ticket = crate::ticket::request::submit(db, &scope, submission)
            .await
            .map_err(api)?;
        summary.tickets += 1;
        if step == 0 {
            continue;
        }
        let approval = fulfilment::approvals_of(db, ticket.id)
            .await
            .map_err(api)?
            .into_iter()
            .next()
            .context("approval")?;
        if step == 3 {
            fulfilment::decide(
                db,
                &manager,
                &manager_scope,
                approval.id,
                Decision::Rejected,
                Some("Refresh budget is spent until next quarter."),
            )
            .await
            .map_err(api)?;
            continue;
        }
        fulfilment::decide(
            db,
            &manager,
            &manager_scope,
            approval.id,
            Decision::Approved,
            Some("Approved."),
        )
        .await
        .map_err(api)?;
        if step == 2 {
            for task in fulfilment::tasks_of(db, ticket.id).await.map_err(api)? {
                fulfilment::change_task(db, &walt_scope, task.id, TaskChange::Complete(None))
                    .await
                    .map_err(api)?;
            }
            let carried = Move {
                resolution: Some("Delivered to the requester's desk.".into()),
                ..Move::default()
            };
            tickets::transition(db, &walt_scope, ticket.id, Status::Resolved, carried, None)
                .await
                .map_err(api)?;
            tickets::transition(db, &scope, ticket.id, Status::Closed, Move::default(), None)
                .await
                .map_err(api)?;
        }
    }
    Ok(())
}
