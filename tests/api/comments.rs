//! Comments and history: work notes stay with the agents.

use itsm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, code, error_field, spawn_app};

crate::on_both_backends!(
    internal_notes_never_reach_requesters,
    comments_are_checked_and_closed_tickets_take_none,
);

const ADD: &str = "mutation($id: ID!, $body: String!, $v: Visibility!) { addComment(input: {ticketId: $id, body: $body, visibility: $v}) { comment { id body visibility author { id } } } }";
const READ: &str = "query($id: ID!) { ticket(id: $id) { commentCount latestComment { body } comments { totalCount nodes { body visibility } } history { nodes { kind } } } }";

async fn internal_notes_never_reach_requesters(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let nina = app.person("nina", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&nina]).await;
    let ticket = app
        .incident(&rita, "No network", "HIGH", "HIGH", Some(&queue))
        .await;
    let id = &ticket["id"];
    let reply = app
        .ok(
            &nina,
            ADD,
            json!({"id": id, "body": "Looking into it", "v": "PUBLIC"}),
        )
        .await;
    assert_eq!(reply["addComment"]["comment"]["author"]["id"], nina.id);
    app.ok(
        &nina,
        ADD,
        json!({"id": id, "body": "Suspect the core switch", "v": "INTERNAL"}),
    )
    .await;

    let agent_view = app.ok(&nina, READ, json!({"id": id})).await["ticket"].clone();
    assert_eq!(agent_view["commentCount"], 2);
    assert_eq!(
        agent_view["latestComment"]["body"],
        "Suspect the core switch"
    );
    assert_eq!(agent_view["comments"]["totalCount"], 2);

    let requester_view = app.ok(&rita, READ, json!({"id": id})).await["ticket"].clone();
    assert_eq!(requester_view["commentCount"], 1);
    assert_eq!(requester_view["latestComment"]["body"], "Looking into it");
    assert_eq!(
        requester_view["comments"],
        json!({"totalCount": 1, "nodes": [{"body": "Looking into it", "visibility": "PUBLIC"}]})
    );
    let kinds = |view: &Value| {
        view["history"]["nodes"]
            .as_array()
            .map(|n| n.iter().filter(|e| e["kind"] == "COMMENT_ADDED").count())
    };
    assert_eq!(kinds(&agent_view), Some(2));
    assert_eq!(
        kinds(&requester_view),
        Some(1),
        "the work note's event is hidden too"
    );
    let text = requester_view.to_string();
    assert!(!text.contains("core switch"), "{text}");
    // Lists show the same counts.
    let listed = app
        .ok(
            &rita,
            "{ tickets { nodes { commentCount latestComment { body } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["tickets"]["nodes"][0],
        json!({"commentCount": 1, "latestComment": {"body": "Looking into it"}})
    );
}

async fn comments_are_checked_and_closed_tickets_take_none(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    let boss = app.person("boss", Role::Manager).await;
    let robot = app.person("robot", Role::Integration).await;
    let ticket = app.incident(&rita, "Keyboard", "LOW", "LOW", None).await;
    let id = &ticket["id"];
    let error = app
        .fails(
            &rita,
            ADD,
            json!({"id": id, "body": "secret", "v": "INTERNAL"}),
        )
        .await;
    assert_eq!(code(&error), Some("FORBIDDEN"));
    let error = app
        .fails(&rita, ADD, json!({"id": id, "body": "   ", "v": "PUBLIC"}))
        .await;
    assert_eq!(
        (code(&error), error_field(&error)),
        (Some("BAD_USER_INPUT"), Some("body"))
    );
    let error = app
        .fails(
            &robot,
            ADD,
            json!({"id": id, "body": "beep", "v": "PUBLIC"}),
        )
        .await;
    assert_eq!(code(&error), Some("FORBIDDEN"));
    app.ok(&boss, "mutation($id: ID!) { transitionTicket(input: {id: $id, to: CANCELLED, reason: \"dup\"}) { ticket { id } } }", json!({"id": id})).await;
    let error = app
        .fails(
            &rita,
            ADD,
            json!({"id": id, "body": "hello?", "v": "PUBLIC"}),
        )
        .await;
    assert_eq!(
        (code(&error), error_field(&error)),
        (Some("BAD_USER_INPUT"), Some("ticketId"))
    );
}
