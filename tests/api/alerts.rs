//! Monitoring alerts in: Alertmanager's webhook notifications, replayed as
//! Alertmanager sends them, open incidents (impact and urgency from the
//! labels, the queue from `itsm_queue`), note repeats instead of opening a
//! second incident, and resolve the incident when the alert resolves.

use itsm::auth::{Claims, Grants, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, Person, TestApp, spawn_app};

crate::on_both_backends!(
    a_firing_alert_opens_one_incident_and_a_repeat_adds_a_work_note,
    copies_from_an_alertmanager_cluster_open_one_incident,
    a_resolved_alert_resolves_its_incident_and_a_new_firing_opens_another,
    only_integrations_with_alerts_write_feed_alerts_in,
);

/// A notification as Alertmanager sends it: two alerts of one group (the
/// fixture the label-mapping unit tests read too).
fn firing() -> Value {
    serde_json::from_str(include_str!("fixtures/alertmanager-firing.json"))
        .expect("the fixture is JSON")
}

/// The first alert of [`firing`], resolved at `ends`.
fn resolved(ends: &str) -> Value {
    let mut body = firing();
    body["status"] = json!("resolved");
    let mut alert = body["alerts"][0].clone();
    alert["status"] = json!("resolved");
    alert["endsAt"] = json!(ends);
    body["alerts"] = json!([alert]);
    body
}

/// An integration whose token carries `alerts:write`.
async fn monitoring(app: &TestApp) -> Person {
    let token = app.token_for(&Claims {
        subject: "alertmanager".into(),
        email: None,
        name: Some("Alertmanager".into()),
        role: Role::Integration,
        grants: Grants {
            alerts_write: true,
            ..Grants::default()
        },
    });
    let id = app.viewer(&token).await["id"]
        .as_str()
        .expect("viewer id")
        .to_owned();
    Person { token, id }
}

async fn post(app: &TestApp, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut request = app.client.post(app.url("/alerts/alertmanager")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Posts `body` as `who` and returns the outcome of each alert.
async fn notify(app: &TestApp, who: &Person, body: &Value) -> Vec<Value> {
    let (status, answer) = post(app, Some(&who.token), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["alerts"].as_array().expect("alerts").clone()
}

const TICKET: &str = "query($id: ID!) { ticket(id: $id) { number title description status priority impact urgency resolution queue { name } requester { displayName } comments(first: 20) { nodes { body visibility author { id } } } history(first: 20) { nodes { kind actor { id } } } } }";

async fn incidents(app: &TestApp, who: &Person) -> i64 {
    app.ok(
        who,
        "{ tickets(first: 1, filter: {kinds: [INCIDENT]}) { totalCount } }",
        json!({}),
    )
    .await["tickets"]["totalCount"]
        .as_i64()
        .expect("count")
}

async fn a_firing_alert_opens_one_incident_and_a_repeat_adds_a_work_note(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    app.team_with_queue(&admin, "Network", &[]).await;
    let bot = monitoring(&app).await;

    let handled = notify(&app, &bot, &firing()).await;
    assert_eq!(handled.len(), 2);
    assert!(
        handled.iter().all(|h| h["outcome"] == "OPENED"),
        "{handled:?}"
    );
    assert_eq!(handled[0]["fingerprint"], "a1b2c3d4e5f60718");
    let id = handled[0]["ticketId"].as_str().expect("ticket id");
    let ticket = app.ok(&admin, TICKET, json!({"id": id})).await["ticket"].clone();
    assert_eq!(ticket["number"], handled[0]["number"]);
    assert_eq!(ticket["title"], "API error rate above 5%");
    assert_eq!(
        (&ticket["impact"], &ticket["urgency"], &ticket["priority"]),
        (&json!("HIGH"), &json!("HIGH"), &json!("CRITICAL"))
    );
    assert_eq!(ticket["queue"]["name"], "Network");
    assert_eq!(ticket["requester"]["displayName"], "Monitoring");
    let description = ticket["description"].as_str().expect("description");
    assert!(description.contains("5xx answers are 7.2% of all."));
    assert!(description.contains("severity=critical"));
    assert!(description.contains("http://prometheus:9090/graph"));
    assert_eq!(ticket["history"]["nodes"][0]["actor"]["id"], bot.id);
    // No `itsm_queue` label: the default queue; `warning`: medium × medium.
    let other = app
        .ok(&admin, TICKET, json!({"id": handled[1]["ticketId"]}))
        .await["ticket"]
        .clone();
    assert_eq!(other["queue"]["name"], "Service Desk");
    assert_eq!(other["priority"], "MODERATE");
    assert_eq!(other["title"], "DiskFilling on db-7:9100");

    // Alertmanager repeats the notification: notes, not new incidents.
    let again = notify(&app, &bot, &firing()).await;
    assert!(again.iter().all(|h| h["outcome"] == "NOTED"), "{again:?}");
    assert_eq!(again[0]["ticketId"], id);
    assert_eq!(incidents(&app, &admin).await, 2);
    let ticket = app.ok(&admin, TICKET, json!({"id": id})).await["ticket"].clone();
    let notes: Vec<&Value> = ticket["comments"]["nodes"]
        .as_array()
        .expect("comments")
        .iter()
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["visibility"], "INTERNAL");
    assert_eq!(notes[0]["author"]["id"], bot.id);
    assert!(
        notes[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("HighErrorRate is still firing"))
    );
}

async fn copies_from_an_alertmanager_cluster_open_one_incident(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let bot = monitoring(&app).await;
    let body = firing();
    // Every peer of an Alertmanager cluster sends the same notification.
    let copies = futures_util::future::join_all((0..4).map(|_| notify(&app, &bot, &body))).await;
    assert_eq!(incidents(&app, &admin).await, 2, "{copies:?}");
    for n in 0..2 {
        let ids: std::collections::BTreeSet<&str> = copies
            .iter()
            .map(|handled| handled[n]["ticketId"].as_str().expect("ticket id"))
            .collect();
        assert_eq!(ids.len(), 1, "every copy names one incident: {ids:?}");
    }
}

async fn a_resolved_alert_resolves_its_incident_and_a_new_firing_opens_another(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let bot = monitoring(&app).await;
    let opened = notify(&app, &bot, &firing()).await;
    let id = opened[0]["ticketId"]
        .as_str()
        .expect("ticket id")
        .to_owned();

    let done = notify(&app, &bot, &resolved("2026-11-30T10:20:00.000Z")).await;
    assert_eq!(done[0]["outcome"], "RESOLVED", "{done:?}");
    let ticket = app.ok(&admin, TICKET, json!({"id": id})).await["ticket"].clone();
    assert_eq!(ticket["status"], "RESOLVED");
    let resolution = ticket["resolution"].as_str().expect("resolution");
    assert!(
        resolution.contains("HighErrorRate stopped firing at 2026-11-30T10:20:00"),
        "{resolution}"
    );
    let kinds: Vec<&str> = ticket["history"]["nodes"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|n| n["kind"] == "STATUS_CHANGED")
        .map(|n| n["actor"]["id"].as_str().expect("actor"))
        .collect();
    assert_eq!(kinds, [bot.id.as_str()], "monitoring resolved it");
    // The other alert still fires: its incident is untouched.
    let other = app
        .ok(&admin, TICKET, json!({"id": opened[1]["ticketId"]}))
        .await["ticket"]
        .clone();
    assert_eq!(other["status"], "NEW");

    // A second resolution, or one of an alert never seen, changes nothing.
    let repeat = notify(&app, &bot, &resolved("2026-11-30T10:20:00.000Z")).await;
    assert_eq!(repeat[0]["outcome"], "IGNORED");
    let mut unknown = resolved("2026-11-30T10:20:00.000Z");
    unknown["alerts"][0]["fingerprint"] = json!("ffffffffffffffff");
    assert_eq!(notify(&app, &bot, &unknown).await[0]["outcome"], "IGNORED");

    // It fires again later: a new incident.
    let mut again = firing();
    again["alerts"][0]["startsAt"] = json!("2026-11-30T12:00:00.000Z");
    let reopened = notify(&app, &bot, &again).await;
    assert_eq!(reopened[0]["outcome"], "OPENED");
    assert_ne!(reopened[0]["ticketId"], json!(id));
    assert_eq!(reopened[1]["outcome"], "NOTED");
    assert_eq!(incidents(&app, &admin).await, 3);

    // alerts:write resolves only what an alert opened, and only that way.
    let refused = app
        .fails(
            &bot,
            "mutation($id: ID!) { transitionTicket(input: {id: $id, to: RESOLVED, resolution: \"done\"}) { ticket { status } } }",
            json!({"id": opened[1]["ticketId"]}),
        )
        .await;
    assert_eq!(refused["extensions"]["code"], "FORBIDDEN");
}

async fn only_integrations_with_alerts_write_feed_alerts_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let (status, body) = post(&app, None, &firing()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let (status, _) = post(&app, Some("not-a-token"), &firing()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let reader = app.token_for(&Claims {
        subject: "reader-bot".into(),
        email: None,
        name: None,
        role: Role::Integration,
        grants: Grants {
            tickets_write: true,
            comments_write: true,
            ..Grants::default()
        },
    });
    let agent = app.person("alex.agent", Role::Agent).await;
    for token in [reader.as_str(), agent.token.as_str(), admin.token.as_str()] {
        let (status, body) = post(&app, Some(token), &firing()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    }

    let bot = monitoring(&app).await;
    for bad in [
        json!({"alerts": "many"}),
        json!([1, 2]),
        json!({"status": "firing"}),
    ] {
        let (status, body) = post(&app, Some(&bot.token), &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
    assert_eq!(incidents(&app, &admin).await, 0, "nothing was written");
}
