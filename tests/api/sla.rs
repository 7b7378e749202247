//! SLA timers: a warning at 75 % of each target and a breach at 100 %, raised
//! once per ticket and target, also with several replicas sweeping.

use std::time::Duration;

use itsm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestDatabase, WsClient, age_ticket_by, count, spawn_app_with, spawn_on,
};

crate::on_both_backends!(warnings_come_at_three_quarters_and_breaches_at_the_target_once);

const QUEUE: &str = "subscription($q: ID!) { queueUpdates(queueId: $q) { kind changes { field to } ticket { number } } }";

async fn next_kind(ws: &mut WsClient) -> Value {
    let message = ws.next_of("q").await;
    assert!(message["payload"].get("errors").is_none(), "{message}");
    message["payload"]["data"]["queueUpdates"].clone()
}

async fn warnings_come_at_three_quarters_and_breaches_at_the_target_once(backend: Backend) {
    let app = spawn_app_with(backend, &["--sla-sweep", "1s"]).await;
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let nina = app.person("nina", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&nina]).await;
    let mut board = WsClient::signed_in(&app, &nina).await;
    board.subscribe("q", QUEUE, json!({"q": queue})).await;
    let mut phone = WsClient::signed_in(&app, &rita).await;
    phone
        .subscribe(
            "mine",
            "subscription { myTicketUpdates { kind } }",
            json!({}),
        )
        .await;
    app.wait_for_subscriptions(2).await;

    // CRITICAL: first response due in 15 minutes, resolution in 4 hours.
    let ticket = app
        .incident(&rita, "Core switch down", "HIGH", "HIGH", Some(&queue))
        .await;
    assert_eq!(next_kind(&mut board).await["kind"], "CREATED");
    assert_eq!(
        phone.next_of("mine").await["payload"]["data"]["myTicketUpdates"]["kind"],
        "CREATED"
    );
    let id = ticket["id"].as_str().unwrap_or_default();

    age_ticket_by(&app, id, chrono::Duration::minutes(12)).await;
    let warning = next_kind(&mut board).await;
    assert_eq!(warning["kind"], "SLA_WARNING");
    assert!(
        warning["changes"][0]["to"]
            .as_str()
            .is_some_and(|t| t.starts_with("RESPONSE")),
        "{warning}"
    );
    assert_eq!(warning["ticket"]["number"], ticket["number"]);

    age_ticket_by(&app, id, chrono::Duration::minutes(4)).await;
    let breach = next_kind(&mut board).await;
    assert_eq!(breach["kind"], "SLA_BREACHED");
    assert!(
        breach["changes"][0]["to"]
            .as_str()
            .is_some_and(|t| t.starts_with("RESPONSE")),
        "{breach}"
    );

    // Sweeps go on; nothing is raised twice, and requesters hear none of it.
    assert!(
        board
            .next_within(Duration::from_millis(2500))
            .await
            .is_none(),
        "no repeats"
    );
    assert!(
        phone
            .next_within(Duration::from_millis(100))
            .await
            .is_none(),
        "alerts are for agents"
    );

    // Starting work counts as the response: no resolution alerts are due yet.
    app.ok(&nina, "mutation($id: ID!) { transitionTicket(input: {id: $id, to: IN_PROGRESS}) { ticket { id } } }", json!({"id": id})).await;
    assert_eq!(next_kind(&mut board).await["kind"], "STATUS_CHANGED");
    age_ticket_by(&app, id, chrono::Duration::hours(3)).await;
    let resolution = next_kind(&mut board).await;
    assert_eq!(resolution["kind"], "SLA_WARNING");
    assert!(
        resolution["changes"][0]["to"]
            .as_str()
            .is_some_and(|t| t.starts_with("RESOLUTION")),
        "{resolution}"
    );
}

/// Two replicas sweep the same database every 200 ms; each alert is raised
/// by exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ITSM_TEST_POSTGRES_URL"]
async fn alerts_are_raised_once_across_replicas() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let shared = TestDatabase::shared(&db);
    let a = crate::helpers::spawn_on(db, &["--sla-sweep", "200ms"]).await;
    let b = spawn_on(shared, &["--sla-sweep", "200ms"]).await;
    let rita = a.person("rita", Role::Requester).await;
    let mut tickets = Vec::new();
    for i in 0..10 {
        tickets.push(
            a.incident(&rita, &format!("Old {i}"), "HIGH", "HIGH", None)
                .await,
        );
    }
    for ticket in &tickets {
        // Five hours old: both warnings and both breaches are due.
        age_ticket_by(
            &b,
            ticket["id"].as_str().unwrap_or_default(),
            chrono::Duration::hours(5),
        )
        .await;
    }
    let conn = a.db.connect().await;
    let alerts = "SELECT COUNT(*) FROM ticket_events WHERE kind IN ('SLA_WARNING', 'SLA_BREACHED')";
    let mut seen = 0;
    for _ in 0..50 {
        seen = count(&conn, alerts).await;
        if seen >= 40 {
            break;
        }
        // Poll interval of this bounded loop, which counts the alerts each turn.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give both replicas several more sweeps to raise anything twice: a
    // deliberate negative window (five sweeps each), not a wait for an event.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        count(&conn, alerts).await,
        40,
        "four alerts for each of ten tickets, after {seen}"
    );
    let per_ticket = "SELECT COUNT(*) FROM (SELECT ticket_id, kind, changes FROM ticket_events WHERE kind IN ('SLA_WARNING', 'SLA_BREACHED') GROUP BY ticket_id, kind, changes HAVING COUNT(*) > 1) doubles";
    assert_eq!(count(&conn, per_ticket).await, 0);
}
