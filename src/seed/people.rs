//! The demo organisation: people, teams and their queues.

use anyhow::Context;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::api;
use crate::{
    auth::{Claims, Role, Viewer},
    db::Db,
    entity::{queues, teams},
    queue::service::{self as queue_service, QueueFields},
    team::service as team_service,
};

pub(super) struct Person {
    subject: &'static str,
    name: &'static str,
    role: Role,
}

pub(super) const PEOPLE: &[Person] = &[
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
pub(super) const TEAMS: &[(&str, &str, &[&str])] = &[
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
pub(super) const QUEUES: &[(&str, &str)] = &[
    ("Network", "Network"),
    ("Desktop", "Desktop Support"),
    ("Hardware Requests", "Desktop Support"),
    ("Applications", "Applications"),
    ("Workplace", "Workplace"),
];

/// Signs every demo person in once, as their first request would.
pub(super) async fn people(db: &Db) -> anyhow::Result<Vec<Viewer>> {
    let mut viewers = Vec::new();
    for person in PEOPLE {
        let claims = Claims {
            subject: person.subject.into(),
            email: Some(format!("{}@example.com", person.subject)),
            name: Some(person.name.into()),
            role: person.role,
            grants: crate::auth::Grants::default(),
        };
        let user = crate::auth::provision(db, &claims).await.map_err(api)?;
        viewers.push(Viewer {
            user,
            role: person.role,
            grants: crate::auth::Grants::default(),
            expires_at: None,
        });
    }
    Ok(viewers)
}

pub(super) fn find(viewers: &[Viewer], subject: &str) -> anyhow::Result<Viewer> {
    viewers
        .iter()
        .find(|v| v.user.subject == subject)
        .cloned()
        .with_context(|| format!("no demo person {subject}"))
}

/// The teams with their members, and their queues; the default queue last.
pub(super) async fn organisation(
    db: &Db,
    viewers: &[Viewer],
) -> anyhow::Result<Vec<queues::Model>> {
    let admin = find(viewers, "ada.admin")?;
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
            let user = find(viewers, member)?;
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
    Ok(queue_ids)
}

pub(super) fn team_owns(queue: &queues::Model, agent: &Viewer) -> bool {
    let team_name = QUEUES
        .iter()
        .find(|(name, _)| *name == queue.name)
        .map_or("Service Desk", |(_, team)| *team);
    TEAMS.iter().any(|(name, _, members)| {
        *name == team_name && members.contains(&agent.user.subject.as_str())
    })
}
