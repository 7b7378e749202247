//! The client examples under `examples/`, run against the real server as a
//! developer would run them: a browser portal on another origin in headless
//! Chromium, the explorer with no network, a Node integrator that resumes
//! across a server restart, a Python integrator that pages the event feed,
//! and Apollo Client 4. Each example checks itself and prints what it saw;
//! these tests also hold it against what the server recorded.
//!
//! They need Node, Python and Chromium (`bash examples/setup.sh`), so they
//! are ignored unless asked for; CI runs them.

use std::collections::HashSet;

use itsm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, Example, Person, TestApp, TestDatabase, free_port, spawn_on};

crate::on_both_backends!(
    ignore = "needs Node, Python and Chromium: bash examples/setup.sh";
    the_node_integrator_resumes_with_its_last_cursor_across_a_restart,
    the_python_integrator_pages_every_event_once,
    the_apollo_example_normalises_pages_resumes_and_persists,
    a_portal_on_another_origin_queries_mutates_and_subscribes_in_chromium,
    the_explorer_works_with_no_network,
    the_python_webhook_receiver_verifies_every_delivery_with_standard_webhooks,
);

/// Every event cursor `who` may read in `queue` (all of them when `None`), oldest first.
async fn all_cursors(app: &TestApp, who: &Person, queue: Option<&str>) -> Vec<String> {
    let mut cursors = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .ok(
                who,
                "query($after: String, $queue: ID) { ticketEvents(first: 100, after: $after, queueId: $queue) { edges { cursor } pageInfo { hasNextPage endCursor } } }",
                json!({"after": after, "queue": queue}),
            )
            .await;
        let events = &page["ticketEvents"];
        for edge in events["edges"].as_array().expect("edges") {
            cursors.push(edge["cursor"].as_str().expect("cursor").to_owned());
        }
        if events["pageInfo"]["hasNextPage"] != true {
            return cursors;
        }
        after = events["pageInfo"]["endCursor"].clone();
    }
}

/// The first line an example printed for step `name`.
fn step(lines: &[Value], name: &str) -> Value {
    lines
        .iter()
        .find(|line| line["step"] == name)
        .unwrap_or_else(|| panic!("no {name} step in {lines:?}"))
        .clone()
}

/// The cursors of the `event` lines an integrator printed.
fn printed_cursors(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|line| line["type"] == "event")
        .map(|line| line["cursor"].as_str().expect("cursor").to_owned())
        .collect()
}

fn assert_no_repeats(cursors: &[String]) {
    let unique: HashSet<&String> = cursors.iter().collect();
    assert_eq!(unique.len(), cursors.len(), "repeated events: {cursors:?}");
}

async fn comment(app: &TestApp, who: &Person, ticket: &str, body: &str) {
    app.ok(
        who,
        "mutation($id: ID!, $body: String!) { addComment(input: {ticketId: $id, body: $body}) { comment { id } } }",
        json!({"id": ticket, "body": body}),
    )
    .await;
}

/// A team with a queue and an agent in it, on `app`.
async fn desk(app: &TestApp) -> (Person, String) {
    let admin = app.person("ex.admin", Role::Admin).await;
    let agent = app.person("ex.agent", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&agent]).await;
    (agent, queue)
}

async fn the_node_integrator_resumes_with_its_last_cursor_across_a_restart(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let mut first = spawn_on(TestDatabase::shared(&db), &["--listen", &listen]).await;
    let (agent, queue) = desk(&first).await;
    let ticket = first
        .incident(
            &agent,
            "VPN drops every hour",
            "MEDIUM",
            "HIGH",
            Some(&queue),
        )
        .await["id"]
        .as_str()
        .expect("ticket id")
        .to_owned();
    let bot = first.person("ex.bot", Role::Integration).await;
    let state = db.dir().join("integrator.cursor");
    let env = [
        ("ITSM_URL", first.url("")),
        ("ITSM_TOKEN", bot.token.clone()),
        ("QUEUE_ID", queue.clone()),
        ("STATE_FILE", state.display().to_string()),
        ("BACKOFF_MAX_MS", "300".to_owned()),
    ];
    let mut integrator = Example::node("node-integrator/integrator.mjs", &env);
    integrator.until(|line| line["type"] == "connected").await;
    first.wait_for_subscriptions(1).await;

    // Live, then a restart with writes while this address is down (through
    // a second replica on the same database), then live again.
    for n in 1..=3 {
        comment(&first, &agent, &ticket, &format!("before the restart {n}")).await;
    }
    let last = all_cursors(&first, &bot, Some(&queue)).await;
    let last = last.last().expect("events").clone();
    integrator
        .until(|line| line["cursor"] == last.as_str())
        .await;
    first.stopped().await;
    integrator
        .until(|line| line["type"] == "disconnected")
        .await;

    let other = spawn_on(TestDatabase::shared(&db), &[]).await;
    for n in 1..=3 {
        comment(&other, &agent, &ticket, &format!("while it is down {n}")).await;
    }
    let restarted = spawn_on(TestDatabase::shared(&db), &["--listen", &listen]).await;
    integrator.until(|line| line["type"] == "connected").await;
    restarted.wait_for_subscriptions(1).await;
    for n in 1..=2 {
        comment(
            &restarted,
            &agent,
            &ticket,
            &format!("after the restart {n}"),
        )
        .await;
    }
    let everything = all_cursors(&restarted, &bot, Some(&queue)).await;
    let newest = everything.last().expect("events").clone();
    integrator
        .until(|line| line["cursor"] == newest.as_str())
        .await;
    let printed = printed_cursors(&integrator.stopped().await);

    // The integrator started from "now", so it saw everything from its
    // first event on: in order, nothing missing, nothing twice.
    assert_no_repeats(&printed);
    let start = everything
        .iter()
        .position(|cursor| *cursor == printed[0])
        .expect("the first printed event is in the feed");
    assert_eq!(printed, everything[start..], "printed vs the server's feed");
    assert!(printed.len() >= 8, "{printed:?}");

    // Its own restart resumes from the state file.
    comment(&restarted, &agent, &ticket, "while the integrator is down").await;
    let mut again = Example::node("node-integrator/integrator.mjs", &env);
    let everything = all_cursors(&restarted, &bot, Some(&queue)).await;
    let newest = everything.last().expect("events").clone();
    again.until(|line| line["cursor"] == newest.as_str()).await;
    let resumed = printed_cursors(&again.stopped().await);
    assert_eq!(resumed, everything[start + printed.len()..]);
    drop(other);
}

async fn the_python_integrator_pages_every_event_once(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let app = spawn_on(TestDatabase::shared(&db), &[]).await;
    let (agent, queue) = desk(&app).await;
    for n in 1..=4 {
        let ticket = app
            .incident(
                &agent,
                &format!("Printer {n} offline"),
                "LOW",
                "LOW",
                Some(&queue),
            )
            .await["id"]
            .as_str()
            .expect("ticket id")
            .to_owned();
        comment(&app, &agent, &ticket, "Looking into it").await;
        comment(&app, &agent, &ticket, "Toner replaced").await;
    }
    let bot = app.person("ex.bot", Role::Integration).await;
    let state = db.dir().join("events.cursor");
    let env = [
        ("ITSM_URL", app.url("")),
        ("ITSM_TOKEN", bot.token.clone()),
        ("STATE_FILE", state.display().to_string()),
        ("PAGE_SIZE", "5".to_owned()),
    ];
    let first = Example::python("python-integrator/integrator.py", &env)
        .finished()
        .await;
    let everything = all_cursors(&app, &bot, None).await;
    let done = first.last().expect("lines");
    assert_eq!(done["type"], "done", "{done}");
    assert!(done["pages"].as_u64().expect("pages") >= 3, "{done}");
    let printed = printed_cursors(&first);
    assert_eq!(printed, everything);

    // A second run prints only what happened since.
    let ticket = app
        .incident(&agent, "Scanner jammed", "LOW", "LOW", Some(&queue))
        .await["id"]
        .as_str()
        .expect("ticket id")
        .to_owned();
    comment(&app, &agent, &ticket, "Cleared").await;
    let second = printed_cursors(
        &Example::python("python-integrator/integrator.py", &env)
            .finished()
            .await,
    );
    let everything = all_cursors(&app, &bot, None).await;
    assert!(!second.is_empty());
    let mut both = printed.clone();
    both.extend(second);
    assert_no_repeats(&both);
    assert_eq!(both, everything);
}

async fn the_apollo_example_normalises_pages_resumes_and_persists(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let app = spawn_on(TestDatabase::shared(&db), &[]).await;
    let (agent, queue) = desk(&app).await;
    for n in 1..=7 {
        app.incident(
            &agent,
            &format!("Switch {n} flapping"),
            "HIGH",
            "MEDIUM",
            Some(&queue),
        )
        .await;
    }
    let lines = Example::node(
        "apollo/apollo.mjs",
        &[
            ("ITSM_URL", app.url("")),
            ("AGENT_TOKEN", agent.token.clone()),
            ("QUEUE_ID", queue.clone()),
        ],
    )
    .finished()
    .await;
    let step = |name: &str| step(&lines, name);
    assert_eq!(lines.last().expect("lines")["step"], "done");
    let paginate = step("paginate");
    assert_eq!(
        (paginate["edges"].as_u64(), paginate["unique"].as_u64()),
        (Some(6), Some(6))
    );
    assert_eq!(step("cache")["nodeFromCache"], true);
    assert_eq!(step("live")["kind"], "UPDATED");
    let normalised = step("normalised");
    assert_ne!(normalised["priority"]["from"], normalised["priority"]["to"]);
    assert_eq!(normalised["requests"], 0, "read from the cache");
    let resume = step("resume");
    assert_eq!(
        (resume["repeated"].as_u64(), resume["missed"].as_u64()),
        (Some(0), Some(0)),
        "{resume}"
    );
    assert_eq!(resume["offline"]["replayed"], true, "{resume}");
    assert!(resume["naiveRepeated"].as_u64() >= Some(1), "{resume}");

    // Persisted queries: the first run of a query misses and registers, a
    // fresh client then sends only the hash, over GET.
    let apq = step("apq");
    assert_eq!(apq["enabled"], true, "{apq}");
    let first = &apq["first"];
    assert_eq!(
        (
            first["get"].as_u64(),
            first["misses"].as_u64(),
            first["registrations"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{apq}"
    );
    let second = &apq["second"];
    assert_eq!(
        (
            second["hashOnly"].as_u64(),
            second["get"].as_u64(),
            second["misses"].as_u64(),
            second["registrations"].as_u64()
        ),
        (Some(1), Some(1), Some(0), Some(0)),
        "{apq}"
    );
    assert_eq!(apq["registrations"], apq["misses"], "{apq}");
}

async fn a_portal_on_another_origin_queries_mutates_and_subscribes_in_chromium(backend: Backend) {
    let page_port = free_port();
    let page_origin = format!("http://127.0.0.1:{page_port}");
    let db = TestDatabase::create(backend).await;
    let app = spawn_on(TestDatabase::shared(&db), &["--cors-origins", &page_origin]).await;
    let rita = app.person("rita.requester", Role::Requester).await;
    let admin = app.person("ex.admin", Role::Admin).await;
    for title in ["Monitor flickers", "Docking station dead"] {
        app.incident(&rita, title, "LOW", "MEDIUM", None).await;
    }
    let lines = Example::node(
        "portal/drive.mjs",
        &[
            ("ITSM_URL", app.url("")),
            ("REQUESTER_TOKEN", rita.token.clone()),
            ("STAFF_TOKEN", admin.token.clone()),
            ("PAGE_PORT", page_port.to_string()),
        ],
    )
    .finished()
    .await;
    let step = |name: &str| step(&lines, name);
    assert_eq!(lines.last().expect("lines")["step"], "done");
    assert_eq!(step("page-loaded")["origin"], page_origin.as_str());
    assert_eq!(step("signed-in")["viewer"], "Test rita.requester");
    assert_eq!(step("listed")["tickets"], 2);
    let reported = step("reported");
    assert!(
        reported["number"]
            .as_str()
            .is_some_and(|n| n.starts_with("INC")),
        "{reported}"
    );
    let live: Vec<&Value> = lines.iter().filter(|line| line["step"] == "live").collect();
    let kinds: Vec<&Value> = live.iter().map(|line| &line["kind"]).collect();
    assert_eq!(
        kinds,
        [&json!("COMMENT_ADDED"), &json!("STATUS_CHANGED")],
        "{lines:?}"
    );
    // A page from an origin not on the list gets nothing, socket included.
    let foreign = step("foreign-origin");
    assert_eq!(foreign["http"], "NETWORK", "{foreign}");
    assert_ne!(foreign["websocket"], "opened", "{foreign}");

    // What the page reported is what the server holds.
    let mine = app
        .ok(
            &rita,
            "query($me: ID!) { tickets(filter: {requesterId: $me}, first: 10) { totalCount edges { node { number status } } } }",
            json!({"me": rita.id}),
        )
        .await;
    assert_eq!(mine["tickets"]["totalCount"], 3);
    let row = mine["tickets"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|edge| edge["node"]["number"] == reported["number"])
        .unwrap_or_else(|| panic!("{reported} not among {mine}"));
    assert_ne!(
        row["node"]["status"], "NEW",
        "the staff change was a status change"
    );
}

async fn the_explorer_works_with_no_network(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    // With an origin list set, the explorer's own socket must still connect.
    let app = spawn_on(
        TestDatabase::shared(&db),
        &["--cors-origins", "https://portal.example.com"],
    )
    .await;
    let ada = app.person("ada.admin", Role::Admin).await;
    let lines = Example::node(
        "portal/explorer.mjs",
        &[("ITSM_URL", app.url("")), ("TOKEN", ada.token.clone())],
    )
    .finished()
    .await;
    let step = |name: &str| step(&lines, name);
    assert_eq!(lines.last().expect("lines")["step"], "done");
    assert!(
        lines.iter().all(|line| line["step"] != "warnings"),
        "{lines:?}"
    );
    assert_eq!(step("query")["data"]["viewer"]["subject"], "ada.admin");
    let subscription = step("subscription");
    assert_eq!(subscription["token"], true, "{subscription}");
    assert!(
        subscription["data"]["heartbeat"]["seq"].as_u64() >= Some(2),
        "{subscription}"
    );
    assert_eq!(
        step("reloaded")["socketToken"],
        true,
        "subscriptions keep the token after a reload"
    );
    assert_eq!(step("offline-ok")["blocked"], json!([]));
}

async fn the_python_webhook_receiver_verifies_every_delivery_with_standard_webhooks(
    backend: Backend,
) {
    let db = TestDatabase::create(backend).await;
    let app = spawn_on(db, &["--webhook-allow", "127.0.0.1"]).await;
    let admin = app.person("ex.admin", Role::Admin).await;
    let (agent, queue) = desk(&app).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let made = app
        .ok(
            &admin,
            "mutation($url: String!) { createWebhook(input: {url: $url}) { secret webhook { id } } }",
            json!({"url": url}),
        )
        .await;
    let secret = made["createWebhook"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let hook = made["createWebhook"]["webhook"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut receiver = Example::python(
        "python-integrator/webhook_receiver.py",
        &[("WEBHOOK_SECRET", secret), ("PORT", port.to_string())],
    );
    receiver.until(|line| line["step"] == "listening").await;

    let ticket = app
        .incident(&agent, "Badge reader dead", "MEDIUM", "HIGH", Some(&queue))
        .await;
    let number = ticket["number"].as_str().expect("number").to_owned();
    app.ok(
        &agent,
        "mutation($id: ID!) { transitionTicket(input: {id: $id, to: IN_PROGRESS}) { ticket { status } } }",
        json!({"id": ticket["id"]}),
    )
    .await;
    let logged = app
        .ok(
            &admin,
            "query($t: ID!) { ticketEvents(ticketId: $t, first: 50) { nodes { seq kind visibility } } }",
            json!({"t": ticket["id"]}),
        )
        .await;
    let expected: Vec<(i64, String)> = logged["ticketEvents"]["nodes"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|n| n["visibility"] == "PUBLIC")
        .map(|n| {
            (
                n["seq"].as_i64().expect("seq"),
                format!(
                    "ticket.{}",
                    n["kind"].as_str().expect("kind").to_lowercase()
                ),
            )
        })
        .collect();
    let mut verified = Vec::new();
    while verified.len() < expected.len() {
        let line = receiver.next().await;
        assert_eq!(line["step"], "event", "only verified events: {line}");
        assert_eq!(line["ticket"], number);
        verified.push((
            line["seq"].as_i64().expect("seq"),
            line["type"].as_str().expect("type").to_owned(),
        ));
    }
    assert_eq!(verified, expected, "every event verified, in order");

    // After a rotation the receiver, still on the old secret, verifies the
    // next delivery: it is signed with both.
    app.ok(
        &admin,
        "mutation($id: ID!) { rotateWebhookSecret(input: {id: $id}) { secret } }",
        json!({"id": hook}),
    )
    .await;
    app.ok(
        &agent,
        "mutation($id: ID!) { addComment(input: {ticketId: $id, body: \"Replaced the reader\", visibility: PUBLIC}) { comment { id } } }",
        json!({"id": ticket["id"]}),
    )
    .await;
    let line = receiver.next().await;
    assert_eq!(line["step"], "event", "{line}");
    assert_eq!(line["type"], "ticket.comment_added");

    // A redelivery carries the same webhook-ids: the receiver skips them.
    app.ok(
        &admin,
        "mutation($id: ID!, $from: String!) { redeliverWebhook(input: {id: $id, fromCursor: $from}) { webhook { id } } }",
        json!({"id": hook, "from": receiver.seen.iter().find(|l| l["step"] == "event").expect("one")["cursor"]}),
    )
    .await;
    let line = receiver.next().await;
    assert_eq!(line["step"], "repeat", "{line}");
    assert_eq!(line["seq"], expected[0].0);

    // A forged delivery is rejected by the library.
    let forged = app
        .client
        .post(&url)
        .header("webhook-id", "evt_999999")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header(
            "webhook-signature",
            "v1,Zm9yZ2VkIHNpZ25hdHVyZSBvZiB0aGlydHktdHdvIGJ5dGU=",
        )
        .body(r#"{"type":"ticket.created","data":{}}"#)
        .send()
        .await
        .expect("the receiver answers");
    assert_eq!(forged.status(), 400);
    receiver
        .until(|line| line["step"] == "rejected" && line["id"] == "evt_999999")
        .await;
}
