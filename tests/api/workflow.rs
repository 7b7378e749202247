//! The ticket workflow over the API: who may move a ticket where, what each
//! move needs, and what it does to the SLA clock.

use itsm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, Person, TestApp, code, error_field, spawn_app};

crate::on_both_backends!(
    available_transitions_depend_on_the_viewer,
    a_refused_transition_names_the_allowed_ones,
    moves_need_their_reasons,
    a_ticket_lives_through_pending_resolution_reopening_and_closing,
    the_first_response_is_a_public_reply_by_someone_else_or_work_starting,
);

const TRANSITION: &str = "mutation($input: TransitionTicketInput!) { transitionTicket(input: $input) { ticket { status version pendingReason resolution resolvedAt closedAt cancelReason availableTransitions sla { respondedAt resolvedAt paused remainingSeconds resolutionDueAt } } } }";

async fn transition(app: &TestApp, who: &Person, id: &Value, input: Value) -> Value {
    let mut input = input;
    input["id"] = id.clone();
    app.ok(who, TRANSITION, json!({"input": input})).await["transitionTicket"]["ticket"].clone()
}

async fn refused(app: &TestApp, who: &Person, id: &Value, input: Value) -> Value {
    let mut input = input;
    input["id"] = id.clone();
    app.fails(who, TRANSITION, json!({"input": input})).await
}

struct Cast {
    rita: Person,
    nina: Person,
    omar: Person,
    boss: Person,
    queue: String,
}

async fn cast(app: &TestApp) -> Cast {
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let nina = app.person("nina", Role::Agent).await;
    let omar = app.person("omar", Role::Agent).await;
    let boss = app.person("boss", Role::Manager).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&nina]).await;
    app.team_with_queue(&admin, "Desktop", &[&omar]).await;
    Cast {
        rita,
        nina,
        omar,
        boss,
        queue,
    }
}

async fn available(app: &TestApp, who: &Person, id: &Value) -> Value {
    app.ok(
        who,
        "query($id: ID!) { ticket(id: $id) { availableTransitions } }",
        json!({"id": id}),
    )
    .await["ticket"]["availableTransitions"]
        .clone()
}

async fn available_transitions_depend_on_the_viewer(backend: Backend) {
    let app = spawn_app(backend).await;
    let cast = cast(&app).await;
    let ticket = app
        .incident(&cast.rita, "Switch down", "HIGH", "LOW", Some(&cast.queue))
        .await;
    let id = &ticket["id"];
    let all = json!([
        "AWAITING_APPROVAL",
        "IN_PROGRESS",
        "PENDING",
        "RESOLVED",
        "CANCELLED"
    ]);
    assert_eq!(available(&app, &cast.rita, id).await, json!(["CANCELLED"]));
    assert_eq!(
        available(&app, &cast.nina, id).await,
        all,
        "an agent of the queue"
    );
    assert_eq!(available(&app, &cast.boss, id).await, all, "a manager");
    // Omar works another queue: he cannot see this ticket at all.
    let hidden = app
        .ok(
            &cast.omar,
            "query($id: ID!) { ticket(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(hidden["ticket"], Value::Null);
    // Assigned to him, he sees it, but moving it is still for its queue's team.
    let assign = "mutation($id: ID!, $q: ID!) { assignTicket(input: {id: $id, queueId: $q}) { ticket { id } } }";
    let listing = app
        .ok(&cast.boss, "{ queues { nodes { id name } } }", json!({}))
        .await;
    let desktop = listing["queues"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|q| q["name"] == "Desktop")
        .map(|q| q["id"].clone())
        .unwrap_or_default();
    app.ok(&cast.boss, assign, json!({"id": id, "q": desktop}))
        .await;
    assert_eq!(
        available(&app, &cast.omar, id).await,
        all,
        "now in Omar's queue"
    );
    assert_eq!(
        available(&app, &cast.nina, id).await,
        Value::Null,
        "and out of Nina's sight"
    );
}

async fn a_refused_transition_names_the_allowed_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    let cast = cast(&app).await;
    let ticket = app
        .incident(&cast.rita, "Switch down", "HIGH", "LOW", Some(&cast.queue))
        .await;
    let error = refused(
        &app,
        &cast.rita,
        &ticket["id"],
        json!({"to": "RESOLVED", "resolution": "fixed it myself"}),
    )
    .await;
    assert_eq!(
        (code(&error), error_field(&error)),
        (Some("BAD_USER_INPUT"), Some("to"))
    );
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("NEW") && message.contains("allowed: CANCELLED"),
        "{message}"
    );
}

async fn moves_need_their_reasons(backend: Backend) {
    let app = spawn_app(backend).await;
    let cast = cast(&app).await;
    let ticket = app
        .incident(&cast.rita, "Switch down", "HIGH", "LOW", Some(&cast.queue))
        .await;
    let id = &ticket["id"];
    for (input, field) in [
        (
            json!({"to": "IN_PROGRESS", "pendingReason": "AWAITING_CALLER"}),
            "pendingReason",
        ),
        (
            json!({"to": "IN_PROGRESS", "resolution": "done"}),
            "resolution",
        ),
        (json!({"to": "PENDING"}), "pendingReason"),
        (json!({"to": "RESOLVED", "resolution": "   "}), "resolution"),
        (json!({"to": "CANCELLED"}), "reason"),
    ] {
        let error = refused(&app, &cast.nina, id, input).await;
        assert_eq!(
            (code(&error), error_field(&error)),
            (Some("BAD_USER_INPUT"), Some(field)),
            "{error}"
        );
    }
    let cancelled = transition(
        &app,
        &cast.rita,
        id,
        json!({"to": "CANCELLED", "reason": "Found a spare"}),
    )
    .await;
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["cancelReason"], "Found a spare");
    assert!(cancelled["closedAt"].is_string());
    assert_eq!(cancelled["availableTransitions"], json!([]));
    let error = refused(&app, &cast.boss, id, json!({"to": "IN_PROGRESS"})).await;
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("allowed: none")),
        "{error}"
    );
}

async fn a_ticket_lives_through_pending_resolution_reopening_and_closing(backend: Backend) {
    let app = spawn_app(backend).await;
    let cast = cast(&app).await;
    let ticket = app
        .incident(
            &cast.rita,
            "VPN broken",
            "MEDIUM",
            "MEDIUM",
            Some(&cast.queue),
        )
        .await;
    let id = &ticket["id"];
    let working = transition(
        &app,
        &cast.nina,
        id,
        json!({"to": "IN_PROGRESS", "expectedVersion": 1}),
    )
    .await;
    assert_eq!(
        (working["status"].as_str(), working["version"].as_i64()),
        (Some("IN_PROGRESS"), Some(2))
    );
    assert!(
        working["sla"]["respondedAt"].is_string(),
        "starting work is the first response"
    );

    let waiting = transition(
        &app,
        &cast.nina,
        id,
        json!({"to": "PENDING", "pendingReason": "AWAITING_VENDOR"}),
    )
    .await;
    assert_eq!(waiting["pendingReason"], "AWAITING_VENDOR");
    assert_eq!(waiting["sla"]["paused"], true);
    let frozen = waiting["sla"]["remainingSeconds"].clone();
    let later = app
        .ok(
            &cast.nina,
            "query($id: ID!) { ticket(id: $id) { sla { remainingSeconds paused } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        later["ticket"]["sla"]["remainingSeconds"], frozen,
        "the clock stands still while pending"
    );

    // Two hours spent pending move the resolution due time two hours later.
    crate::helpers::set_ticket_time(
        &app,
        crate::tickets::id_of(id.as_str().unwrap_or_default()),
        "paused_since",
        chrono::Utc::now() - chrono::Duration::hours(2),
    )
    .await;
    let back = transition(&app, &cast.nina, id, json!({"to": "IN_PROGRESS"})).await;
    assert_eq!(
        (back["pendingReason"].clone(), back["sla"]["paused"].clone()),
        (Value::Null, json!(false))
    );
    let due = |t: &Value| {
        chrono::DateTime::parse_from_rfc3339(
            t["sla"]["resolutionDueAt"].as_str().unwrap_or_default(),
        )
        .map(|t| t.timestamp())
        .unwrap_or_default()
    };
    let moved = due(&back) - due(&working);
    assert!(
        (2 * 3600 - 5..=2 * 3600 + 5).contains(&moved),
        "due time moved by {moved} s"
    );

    let resolved = transition(
        &app,
        &cast.nina,
        id,
        json!({"to": "RESOLVED", "resolution": "Replaced the token"}),
    )
    .await;
    assert_eq!(resolved["resolution"], "Replaced the token");
    assert!(resolved["resolvedAt"].is_string());
    assert_eq!(resolved["sla"]["resolvedAt"], resolved["resolvedAt"]);
    assert_eq!(
        resolved["sla"]["remainingSeconds"],
        Value::Null,
        "the clock stops on resolution"
    );
    assert_eq!(
        available(&app, &cast.rita, id).await,
        json!(["IN_PROGRESS", "CLOSED"])
    );

    let reopened = transition(
        &app,
        &cast.rita,
        id,
        json!({"to": "IN_PROGRESS", "reason": "Still broken"}),
    )
    .await;
    assert_eq!(
        (reopened["status"].clone(), reopened["resolvedAt"].clone()),
        (json!("IN_PROGRESS"), Value::Null)
    );
    assert!(
        reopened["sla"]["remainingSeconds"].is_i64(),
        "the clock runs again"
    );

    transition(
        &app,
        &cast.nina,
        id,
        json!({"to": "RESOLVED", "resolution": "New token issued"}),
    )
    .await;
    let closed = transition(&app, &cast.rita, id, json!({"to": "CLOSED"})).await;
    assert_eq!(closed["status"], "CLOSED");
    assert_eq!(closed["availableTransitions"], json!([]));

    let history = app
        .ok(&cast.rita, "query($id: ID!) { ticket(id: $id) { history { totalCount nodes { kind seq changes { field from to } } } } }", json!({"id": id}))
        .await;
    let events = history["ticket"]["history"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "CREATED",
            "STATUS_CHANGED",
            "STATUS_CHANGED",
            "STATUS_CHANGED",
            "STATUS_CHANGED",
            "STATUS_CHANGED",
            "STATUS_CHANGED",
            "STATUS_CHANGED"
        ]
    );
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {seqs:?}"
    );
    let reopening = &events[5]["changes"];
    assert!(
        reopening.as_array().is_some_and(
            |c| c.contains(&json!({"field": "reason", "from": null, "to": "Still broken"}))
        ),
        "{reopening}"
    );
}

async fn the_first_response_is_a_public_reply_by_someone_else_or_work_starting(backend: Backend) {
    let app = spawn_app(backend).await;
    let cast = cast(&app).await;
    let ticket = app
        .incident(
            &cast.rita,
            "Screen flickers",
            "LOW",
            "MEDIUM",
            Some(&cast.queue),
        )
        .await;
    let id = &ticket["id"];
    let comment = "mutation($id: ID!, $body: String!, $v: Visibility!) { addComment(input: {ticketId: $id, body: $body, visibility: $v}) { ticket { sla { respondedAt } } } }";
    let responded = |data: Value| data["addComment"]["ticket"]["sla"]["respondedAt"].clone();
    let own = app
        .ok(
            &cast.rita,
            comment,
            json!({"id": id, "body": "Any news?", "v": "PUBLIC"}),
        )
        .await;
    assert_eq!(
        responded(own),
        Value::Null,
        "the requester's own comment is no response"
    );
    let note = app
        .ok(
            &cast.nina,
            comment,
            json!({"id": id, "body": "Probably the cable", "v": "INTERNAL"}),
        )
        .await;
    assert_eq!(responded(note), Value::Null, "a work note is no response");
    let reply = app
        .ok(
            &cast.nina,
            comment,
            json!({"id": id, "body": "Trying a new cable", "v": "PUBLIC"}),
        )
        .await;
    let first = responded(reply);
    assert!(first.is_string());
    let again = app
        .ok(
            &cast.boss,
            comment,
            json!({"id": id, "body": "Any luck?", "v": "PUBLIC"}),
        )
        .await;
    assert_eq!(responded(again), first, "only the first response counts");
}
