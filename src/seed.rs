//! `itsm seed --demo`: a realistic data set for trying the API and for
//! benchmarks. Everything goes through the domain services, so numbers,
//! events, SLAs and versions are exactly what real use would produce; only
//! creation times are spread over the past days, so that queues hold old and
//! new, breached and healthy tickets.

use std::time::Instant;

use anyhow::Context;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::{
    access::Scope,
    auth::{Claims, Role, Viewer},
    catalog::{
        form::{FieldType, FormField},
        service::{self as catalog_service, Approval, ItemFields, Submission},
    },
    db::Db,
    entity::{catalog_items, queues, routing_rules, services, teams},
    lifecycle::portfolio::{self, NewService},
    queue::service::{self as queue_service, QueueFields},
    routing::{
        rules::{Actions, Conditions},
        service::{self as routing_service, RuleFields},
    },
    team::service as team_service,
    ticket::{
        fulfilment::{self, Decision, TaskChange},
        rules::workflow::Move,
        service::{self as tickets, Assignment, NewTicket},
    },
    vocabulary::{
        ApprovalMode, ApprovalRule, ChangeType, Level, PendingReason, Stage, Status, TaskTemplate,
        TicketKind, Visibility,
    },
};

/// What `itsm seed --demo` loaded.
#[derive(Debug, Default)]
pub struct Summary {
    /// Tickets created.
    pub tickets: usize,
    /// Services in the portfolio.
    pub services: usize,
    /// Catalog items.
    pub items: usize,
    /// Comments added.
    pub comments: usize,
    /// How long it took.
    pub seconds: f64,
}

struct Person {
    subject: &'static str,
    name: &'static str,
    role: Role,
}

const PEOPLE: &[Person] = &[
    Person {
        subject: "ada.admin",
        name: "Ada Admin",
        role: Role::Admin,
    },
    Person {
        subject: "mia.manager",
        name: "Mia Manager",
        role: Role::Manager,
    },
    Person {
        subject: "nina.network",
        name: "Nina Network",
        role: Role::Agent,
    },
    Person {
        subject: "noah.network",
        name: "Noah Network",
        role: Role::Agent,
    },
    Person {
        subject: "dora.desktop",
        name: "Dora Desktop",
        role: Role::Agent,
    },
    Person {
        subject: "dave.desktop",
        name: "Dave Desktop",
        role: Role::Agent,
    },
    Person {
        subject: "alex.apps",
        name: "Alex Apps",
        role: Role::Agent,
    },
    Person {
        subject: "sam.servicedesk",
        name: "Sam Servicedesk",
        role: Role::Agent,
    },
    Person {
        subject: "walt.workplace",
        name: "Walt Workplace",
        role: Role::Agent,
    },
    Person {
        subject: "rita.requester",
        name: "Rita Requester",
        role: Role::Requester,
    },
    Person {
        subject: "ivan.ito",
        name: "Ivan Ito",
        role: Role::Requester,
    },
    Person {
        subject: "lena.larsen",
        name: "Lena Larsen",
        role: Role::Requester,
    },
    Person {
        subject: "omar.okafor",
        name: "Omar Okafor",
        role: Role::Requester,
    },
    Person {
        subject: "priya.patel",
        name: "Priya Patel",
        role: Role::Requester,
    },
    Person {
        subject: "tom.tanaka",
        name: "Tom Tanaka",
        role: Role::Requester,
    },
    Person {
        subject: "zoe.zhang",
        name: "Zoe Zhang",
        role: Role::Requester,
    },
    Person {
        subject: "bruno.bianchi",
        name: "Bruno Bianchi",
        role: Role::Requester,
    },
    Person {
        subject: "reporting.bot",
        name: "Reporting Bot",
        role: Role::Integration,
    },
];

/// Teams: (name, description, members).
const TEAMS: &[(&str, &str, &[&str])] = &[
    ("Service Desk", "", &["sam.servicedesk"]),
    (
        "Network",
        "Switches, routers, wifi and VPN.",
        &["nina.network", "noah.network"],
    ),
    (
        "Desktop Support",
        "Laptops, desktops, printers and peripherals.",
        &["dora.desktop", "dave.desktop"],
    ),
    (
        "Applications",
        "Business applications, email and collaboration.",
        &["alex.apps"],
    ),
    (
        "Workplace",
        "Devices and accessories for every desk.",
        &["walt.workplace"],
    ),
];

/// Queues: (name, team).
const QUEUES: &[(&str, &str)] = &[
    ("Network", "Network"),
    ("Desktop", "Desktop Support"),
    ("Hardware Requests", "Desktop Support"),
    ("Applications", "Applications"),
    ("Workplace", "Workplace"),
];

const INCIDENTS: &[&str] = &[
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

const REQUESTS: &[&str] = &[
    "New laptop for new starter",
    "Access to the finance share",
    "Second monitor",
    "Install a diagramming tool",
    "Mobile phone replacement",
    "Guest wifi for a visitor workshop",
    "New headset",
];

const PROBLEMS: &[&str] = &[
    "Recurring VPN drops after gateway upgrade",
    "Printer driver crashes print spooler",
    "Mail sync fails for large mailboxes",
];

const CHANGES: &[&str] = &[
    "Upgrade access point firmware",
    "Patch database servers",
    "Replace core switch line card",
    "Roll out new laptop image",
];

const REPLIES: &[&str] = &[
    "Thanks for reporting; we are looking into it.",
    "Could you tell us when this started?",
    "A fix has been applied; please check again.",
    "We have ordered the part; it should arrive this week.",
];

const NOTES: &[&str] = &[
    "Same symptoms as last week's outage.",
    "Vendor case opened.",
    "Probably linked to the firmware rollout.",
    "Waiting for the change window.",
];

/// Loads the demo data set with `tickets` tickets.
pub async fn demo(db: &Db, ticket_count: usize) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(2026);
    let mut viewers = Vec::new();
    for person in PEOPLE {
        let claims = Claims {
            subject: person.subject.into(),
            email: Some(format!("{}@example.com", person.subject)),
            name: Some(person.name.into()),
            role: person.role,
        };
        let user = crate::auth::provision(db, &claims).await.map_err(api)?;
        viewers.push(Viewer {
            user,
            role: person.role,
            expires_at: None,
        });
    }
    let find = |subject: &str| viewers.iter().find(|v| v.user.subject == subject).cloned();
    let admin = find("ada.admin").context("admin")?;

    for (name, description, members) in TEAMS {
        let team = match teams::Entity::find()
            .filter(teams::Column::Name.eq(*name))
            .one(db.reader())
            .await?
        {
            Some(team) => team,
            None => team_service::create(db, &admin, name, Some(description))
                .await
                .map_err(api)?,
        };
        for member in *members {
            let user = find(member).context("member")?;
            team_service::add_member(db, &admin, team.id, user.user.id)
                .await
                .map_err(api)?;
        }
    }
    let mut queue_ids = Vec::new();
    for (name, team_name) in QUEUES {
        let existing = queues::Entity::find()
            .filter(queues::Column::Name.eq(*name))
            .one(db.reader())
            .await?;
        let queue = match existing {
            Some(queue) => queue,
            None => {
                let team = teams::Entity::find()
                    .filter(teams::Column::Name.eq(*team_name))
                    .one(db.reader())
                    .await?
                    .context("team")?;
                let fields = QueueFields {
                    name: Some((*name).into()),
                    description: None,
                    team_id: Some(team.id),
                    is_default: None,
                };
                queue_service::create(db, &admin, fields)
                    .await
                    .map_err(api)?
            }
        };
        queue_ids.push(queue);
    }
    let service_desk = queues::Entity::find()
        .filter(queues::Column::IsDefault.eq(true))
        .one(db.reader())
        .await?
        .context("default queue")?;
    queue_ids.push(service_desk);

    let requesters: Vec<Viewer> = viewers
        .iter()
        .filter(|v| v.role == Role::Requester)
        .cloned()
        .collect();
    let manager = find("mia.manager").context("manager")?;
    let manager_scope = Scope::load(db, &manager).await.map_err(api)?;
    // The manager raises the changes, so someone else approves them.
    let approver = find("ada.admin").context("admin")?;
    let approver_scope = Scope::load(db, &approver).await.map_err(api)?;
    let levels = [Level::High, Level::Medium, Level::Low];
    let mut summary = Summary::default();
    for i in 0..ticket_count {
        let roll = rng.random_range(0..100);
        let kind = match roll {
            0..60 => TicketKind::Incident,
            60..80 => TicketKind::ServiceRequest,
            80..90 => TicketKind::Problem,
            _ => TicketKind::Change,
        };
        let queue = queue_ids.choose(&mut rng).context("queue")?;
        let (author, title) = match kind {
            TicketKind::Incident => (
                requesters.choose(&mut rng).context("requester")?.clone(),
                *INCIDENTS.choose(&mut rng).context("title")?,
            ),
            TicketKind::ServiceRequest => (
                requesters.choose(&mut rng).context("requester")?.clone(),
                *REQUESTS.choose(&mut rng).context("title")?,
            ),
            TicketKind::Problem => (
                manager.clone(),
                *PROBLEMS.choose(&mut rng).context("title")?,
            ),
            TicketKind::Change => (manager.clone(), *CHANGES.choose(&mut rng).context("title")?),
        };
        let scope = Scope::load(db, &author).await.map_err(api)?;
        let mut new = NewTicket {
            kind: Some(kind),
            title: title.into(),
            description: format!("{title}. Reported through the demo portal (#{i})."),
            impact: levels.choose(&mut rng).copied(),
            urgency: levels.choose(&mut rng).copied(),
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
                .choose(&mut rng)
                .context("type")?,
            );
            new.risk = levels.choose(&mut rng).copied();
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
        let Some(agent) = team_members.choose(&mut rng).copied().cloned() else {
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
                REPLIES.choose(&mut rng).context("reply")?,
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
                NOTES.choose(&mut rng).context("note")?,
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
                .choose(&mut rng)
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
    catalog(db, &viewers, &mut summary, &mut rng).await?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn team_owns(queue: &queues::Model, agent: &Viewer) -> bool {
    let team_name = QUEUES
        .iter()
        .find(|(name, _)| *name == queue.name)
        .map_or("Service Desk", |(_, team)| *team);
    TEAMS.iter().any(|(name, _, members)| {
        *name == team_name && members.contains(&agent.user.subject.as_str())
    })
}

fn api(error: crate::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{error:?}")
}

/// Services: (key, name, description, owner team, stages it went through).
const SERVICES: &[(&str, &str, &str, &str, &[Stage])] = &[
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

fn field(key: &str, label: &str, kind: FieldType) -> FormField {
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

fn required(field: FormField) -> FormField {
    FormField {
        required: true,
        ..field
    }
}

fn options(field: FormField, options: &[&str]) -> FormField {
    FormField {
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        ..field
    }
}

/// A demo item: (key, name, category, service, queue, approval, tasks, form).
type DemoItem = (
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
fn items(approvers: &[i64]) -> Vec<DemoItem> {
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
async fn catalog(
    db: &Db,
    viewers: &[Viewer],
    summary: &mut Summary,
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let find = |subject: &str| viewers.iter().find(|v| v.user.subject == subject).cloned();
    let admin = find("ada.admin").context("admin")?;
    let manager = find("mia.manager").context("manager")?;
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
    let walt = find("walt.workplace").context("walt")?;
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
