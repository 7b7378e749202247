//! Test data: signed-in people, teams with queues, incidents, and tickets
//! moved back in time.

use itsm::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::TestApp;

/// A signed-in test user.
#[derive(Debug, Clone)]
pub struct Person {
    pub token: String,
    /// The user's global id.
    pub id: String,
}

impl Person {
    /// The subject the person signed in with (read from their token).
    pub fn token_subject(&self) -> String {
        use base64::Engine;
        let payload = self.token.split('.').nth(1).unwrap_or_default();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap_or_default();
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|claims| claims["sub"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// Fields tests read back from tickets.
pub const TICKET_FIELDS: &str = "id number kind title status priority impact urgency version \
    createdAt queue { id name } assignee { id } requester { id } \
    sla { responseDueAt resolutionDueAt respondedAt resolvedAt responseBreached resolutionBreached paused remainingSeconds }";

impl TestApp {
    /// Signs `subject` in with `role` (provisioning the user) and returns them.
    pub async fn person(&self, subject: &str, role: Role) -> Person {
        let token = self.token(subject, role);
        let id = self.viewer(&token).await["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        Person { token, id }
    }

    /// [`TestApp::person`] with an owned subject.
    pub async fn person_owned(&self, subject: String, role: Role) -> Person {
        self.person(&subject, role).await
    }

    /// Runs an operation that must succeed; returns `data`.
    pub async fn ok(&self, who: &Person, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .graphql_with(
                json!({"query": query, "variables": variables}),
                Some(&who.token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Runs an operation that must fail; returns its first error.
    pub async fn fails(&self, who: &Person, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .graphql_with(
                json!({"query": query, "variables": variables}),
                Some(&who.token),
            )
            .await;
        // A field error is 200 with `data`; a request error (nothing ran) 400 without.
        let shaped = match status {
            StatusCode::OK => body.get("data").is_some(),
            StatusCode::BAD_REQUEST => body.get("data").is_none(),
            _ => false,
        };
        assert!(shaped, "{status}: {body}");
        assert!(body.get("errors").is_some(), "expected an error: {body}");
        body["errors"][0].clone()
    }

    /// Creates a team with a queue of the same name and the given members;
    /// returns `(team id, queue id)`.
    pub async fn team_with_queue(
        &self,
        admin: &Person,
        name: &str,
        members: &[&Person],
    ) -> (String, String) {
        let team = self
            .ok(
                admin,
                "mutation($name: String!) { createTeam(input: {name: $name}) { team { id } } }",
                json!({"name": name}),
            )
            .await["createTeam"]["team"]["id"]
            .as_str()
            .expect("team id")
            .to_owned();
        for member in members {
            self.ok(
                admin,
                "mutation($t: ID!, $u: ID!) { addTeamMember(input: {teamId: $t, userId: $u}) { team { id } } }",
                json!({"t": team, "u": member.id}),
            )
            .await;
        }
        let queue = self
            .ok(
                admin,
                "mutation($name: String!, $team: ID!) { createQueue(input: {name: $name, teamId: $team}) { queue { id } } }",
                json!({"name": name, "team": team}),
            )
            .await["createQueue"]["queue"]["id"]
            .as_str()
            .expect("queue id")
            .to_owned();
        (team, queue)
    }

    /// Reports an incident and returns it with [`TICKET_FIELDS`].
    pub async fn incident(
        &self,
        who: &Person,
        title: &str,
        impact: &str,
        urgency: &str,
        queue: Option<&str>,
    ) -> Value {
        let query = format!(
            "mutation($input: CreateIncidentInput!) {{ createIncident(input: $input) {{ ticket {{ {TICKET_FIELDS} }} }} }}"
        );
        let input = json!({"title": title, "impact": impact, "urgency": urgency, "queueId": queue});
        self.ok(who, &query, json!({"input": input})).await["createIncident"]["ticket"].clone()
    }
}

/// Moves a ticket's timeline `hours` into the past, as if it had been created
/// that long ago: creation time and both SLA due times shift together.
pub async fn age_ticket(app: &TestApp, global_id: &str, hours: i64) {
    age_ticket_by(app, global_id, chrono::Duration::hours(hours)).await;
}

/// [`age_ticket`] by any span.
pub async fn age_ticket_by(app: &TestApp, global_id: &str, shift: chrono::Duration) {
    use itsm::entity::tickets;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
    let conn = app.db.connect().await;
    let id = crate::tickets::id_of(global_id);
    let ticket = tickets::Entity::find_by_id(id)
        .one(&conn)
        .await
        .expect("read ticket")
        .expect("ticket exists");
    let mut row: tickets::ActiveModel = ticket.clone().into();
    row.created_at = Set(ticket.created_at - shift);
    row.response_due_at = Set(ticket.response_due_at - shift);
    row.resolution_due_at = Set(ticket.resolution_due_at - shift);
    if ticket.queue_due_at != itsm::ticket::rules::sla::NO_DUE {
        row.queue_due_at = Set(ticket.queue_due_at - shift);
    }
    row.response_warn_at = Set(ticket.response_warn_at.map(|t| t - shift));
    row.resolution_warn_at = Set(ticket.resolution_warn_at.map(|t| t - shift));
    row.update(&conn).await.expect("age ticket");
}

/// Sets one time column of a ticket, written as the service writes times (a
/// bound value, to the microsecond): SQLite compares times as text, so a
/// hand-formatted literal could sort apart from the same instant written by
/// the service.
pub async fn set_ticket_time(
    app: &TestApp,
    id: i64,
    column: &str,
    at: chrono::DateTime<chrono::Utc>,
) {
    use chrono::SubsecRound;
    use itsm::entity::tickets;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let conn = app.db.connect().await;
    let column: tickets::Column = column.parse().expect("a tickets column");
    tickets::Entity::update_many()
        .col_expr(column, Expr::value(at.trunc_subsecs(6)))
        .filter(tickets::Column::Id.eq(id))
        .exec(&conn)
        .await
        .expect("set a ticket time");
}
