//! Integrations that may write: an `INTEGRATION` token's OAuth scopes allow
//! opening tickets on behalf of a named person (`tickets:write`) and adding
//! comments (`comments:write`); without them it stays read-only. Every write
//! records the integration as its actor. Staff open tickets for others too.

use itsm::auth::{Claims, Grants, Role};
use serde_json::{Value, json};

use crate::helpers::{Backend, Person, TestApp, spawn_app};

crate::on_both_backends!(
    an_integration_without_scopes_stays_read_only,
    tickets_write_opens_tickets_for_a_named_requester_with_the_integration_as_actor,
    comments_write_adds_replies_and_work_notes_but_changes_nothing_else,
    agents_open_tickets_for_requesters_and_requesters_only_for_themselves,
    a_catalog_request_is_submitted_for_a_named_requester,
);

const CREATE: &str = "mutation($input: CreateIncidentInput!) { createIncident(input: $input) { ticket { id number requester { id } sla { respondedAt } history(first: 10) { edges { node { kind actor { id } } } } } } }";
const COMMENT: &str = "mutation($id: ID!, $body: String!, $v: Visibility!) { addComment(input: {ticketId: $id, body: $body, visibility: $v}) { comment { id visibility author { id } } } }";
const TRANSITION: &str = "mutation($id: ID!) { transitionTicket(input: {id: $id, to: IN_PROGRESS}) { ticket { status } } }";

/// An integration signed in with `grants`.
async fn integration(app: &TestApp, subject: &str, grants: Grants) -> Person {
    let token = app.token_for(&Claims {
        subject: subject.into(),
        email: None,
        name: Some(format!("Bot {subject}")),
        role: Role::Integration,
        grants,
    });
    let id = app.viewer(&token).await["id"]
        .as_str()
        .expect("viewer id")
        .to_owned();
    Person { token, id }
}

fn incident_for(requester: Option<&str>) -> Value {
    json!({"input": {
        "title": "Disk full on db-7",
        "impact": "MEDIUM",
        "urgency": "HIGH",
        "requesterId": requester,
    }})
}

/// The `extensions.code` of an error as [`TestApp::fails`] returns it.
fn code(error: &Value) -> &Value {
    &error["extensions"]["code"]
}

async fn an_integration_without_scopes_stays_read_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita.readonly", Role::Requester).await;
    let bot = integration(&app, "reader-bot", Grants::default()).await;
    let refused = app.fails(&bot, CREATE, incident_for(Some(&rita.id))).await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("tickets:write")),
        "{refused}"
    );
    let ticket = app.incident(&rita, "Printer", "LOW", "LOW", None).await;
    let refused = app
        .fails(
            &bot,
            COMMENT,
            json!({"id": ticket["id"], "body": "seen", "v": "INTERNAL"}),
        )
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    // It still reads everything.
    let read = app
        .ok(&bot, "{ tickets(first: 5) { totalCount } }", json!({}))
        .await;
    assert_eq!(read["tickets"]["totalCount"], 1);
}

async fn tickets_write_opens_tickets_for_a_named_requester_with_the_integration_as_actor(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita.onbehalf", Role::Requester).await;
    let bot = integration(
        &app,
        "monitoring-bot",
        Grants {
            tickets_write: true,
            ..Grants::default()
        },
    )
    .await;

    let mut variables = incident_for(Some(&rita.id));
    variables["input"]["idempotencyKey"] = json!("alert-42");
    let created = app.ok(&bot, CREATE, variables.clone()).await["createIncident"]["ticket"].clone();
    assert_eq!(created["requester"]["id"], rita.id.as_str());
    for edge in created["history"]["edges"].as_array().expect("history") {
        assert_eq!(edge["node"]["actor"]["id"], bot.id.as_str(), "{edge}");
    }
    // A retry with the same key returns the same ticket.
    let again = app.ok(&bot, CREATE, variables).await["createIncident"]["ticket"].clone();
    assert_eq!(again["id"], created["id"]);
    // The requester finds it among her tickets.
    let mine = app
        .ok(
            &rita,
            "{ tickets(first: 5) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["tickets"]["edges"][0]["node"]["id"], created["id"]);

    // An integration has no tickets of its own: it must name someone real.
    let unnamed = app.fails(&bot, CREATE, incident_for(None)).await;
    assert_eq!(code(&unnamed), "BAD_USER_INPUT", "{unnamed}");
    assert_eq!(unnamed["extensions"]["field"], "requesterId");
    let nobody = app
        .fails(&bot, CREATE, incident_for(Some("VXNlcjo5OTk5OTk")))
        .await;
    assert_eq!(code(&nobody), "BAD_USER_INPUT", "{nobody}");
    let itself = app.fails(&bot, CREATE, incident_for(Some(&bot.id))).await;
    assert_eq!(code(&itself), "BAD_USER_INPUT", "{itself}");

    // tickets:write is not comments:write, nor leave to change tickets.
    let refused = app
        .fails(
            &bot,
            COMMENT,
            json!({"id": created["id"], "body": "note", "v": "INTERNAL"}),
        )
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let refused = app
        .fails(&bot, TRANSITION, json!({"id": created["id"]}))
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
}

async fn comments_write_adds_replies_and_work_notes_but_changes_nothing_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita.commented", Role::Requester).await;
    let bot = integration(
        &app,
        "chat-bot",
        Grants {
            comments_write: true,
            ..Grants::default()
        },
    )
    .await;
    let ticket = app
        .incident(&rita, "VPN drops", "LOW", "MEDIUM", None)
        .await;
    let id = ticket["id"].clone();
    for visibility in ["PUBLIC", "INTERNAL"] {
        let comment = app
            .ok(
                &bot,
                COMMENT,
                json!({"id": id, "body": format!("From chat ({visibility})"), "v": visibility}),
            )
            .await["addComment"]["comment"]
            .clone();
        assert_eq!(comment["author"]["id"], bot.id.as_str());
        assert_eq!(comment["visibility"], visibility);
    }
    let seen = app
        .ok(
            &rita,
            "query($id: ID!) { node(id: $id) { ... on Ticket { sla { respondedAt } comments(first: 10) { edges { node { visibility } } } history(first: 20) { edges { node { kind actor { id } } } } } } }",
            json!({"id": id}),
        )
        .await["node"]
        .clone();
    // The requester sees the reply, not the work note; a bot's reply is not
    // a person responding.
    let visibilities: Vec<&Value> = seen["comments"]["edges"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|e| &e["node"]["visibility"])
        .collect();
    assert_eq!(visibilities, [&json!("PUBLIC")]);
    assert!(seen["sla"]["respondedAt"].is_null(), "{seen}");
    let commented: Vec<&Value> = seen["history"]["edges"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|e| e["node"]["kind"] == "COMMENT_ADDED")
        .map(|e| &e["node"]["actor"]["id"])
        .collect();
    assert_eq!(commented, [&json!(bot.id)], "{seen}");

    let refused = app.fails(&bot, CREATE, incident_for(Some(&rita.id))).await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let refused = app.fails(&bot, TRANSITION, json!({"id": id})).await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
}

async fn agents_open_tickets_for_requesters_and_requesters_only_for_themselves(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita.phoned", Role::Requester).await;
    let omar = app.person("omar.other", Role::Requester).await;
    let nina = app.person("nina.desk", Role::Agent).await;
    let created =
        app.ok(&nina, CREATE, incident_for(Some(&rita.id))).await["createIncident"]["ticket"]
            .clone();
    assert_eq!(created["requester"]["id"], rita.id.as_str());
    assert_eq!(
        created["history"]["edges"][0]["node"]["actor"]["id"],
        nina.id.as_str()
    );
    let refused = app.fails(&omar, CREATE, incident_for(Some(&rita.id))).await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    // Naming oneself is the same as naming no one.
    let own = app.ok(&omar, CREATE, incident_for(Some(&omar.id))).await["createIncident"]["ticket"]
        .clone();
    assert_eq!(own["requester"]["id"], omar.id.as_str());
}

async fn a_catalog_request_is_submitted_for_a_named_requester(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root.catalog", Role::Admin).await;
    let rita = app.person("rita.newstarter", Role::Requester).await;
    let (service, queue) = crate::catalog::live_service(&app, &admin, "LAPTOPS", "OPERATION").await;
    let laptop = crate::catalog::item(&app, &admin, &service, &queue, "laptop", json!({})).await;
    // An HR system orders a new starter's laptop.
    let hr = integration(
        &app,
        "hr-system",
        Grants {
            tickets_write: true,
            ..Grants::default()
        },
    )
    .await;
    let submit = "mutation($input: SubmitServiceRequestInput!) { submitServiceRequest(input: $input) { ticket { kind requester { id } history(first: 1) { edges { node { actor { id } } } } } } }";
    let answers =
        json!({"model": "14-inch", "justification": "New starter", "needed_by": "2027-01-10"});
    let ticket = app
        .ok(
            &hr,
            submit,
            json!({"input": {"catalogItemId": laptop["id"], "answers": answers, "requesterId": rita.id}}),
        )
        .await["submitServiceRequest"]["ticket"]
        .clone();
    assert_eq!(ticket["kind"], "SERVICE_REQUEST");
    assert_eq!(ticket["requester"]["id"], rita.id.as_str());
    assert_eq!(
        ticket["history"]["edges"][0]["node"]["actor"]["id"],
        hr.id.as_str()
    );
}
