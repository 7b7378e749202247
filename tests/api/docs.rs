//! The README's examples run as written: every GraphQL operation in its
//! ```graphql blocks and in the bodies of its `curl` examples is read from
//! the file itself and sent to a server loaded with the demo data, as the
//! kind of caller the README names, and must answer without an error
//! (subscriptions must deliver their event).

use itsm::{auth::Role, db::Db};
use serde_json::{Value, json};

use crate::helpers::{Backend, Person, TestApp, TestDatabase, WsClient, settings, spawn_on};

crate::on_both_backends!(every_readme_example_runs_as_written);

/// The operations of the README's ```graphql blocks; operations within a
/// block are separated by a blank line.
fn examples() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let mut operations = Vec::new();
    let mut rest = readme;
    while let Some(start) = rest.find("```graphql\n") {
        rest = &rest[start + "```graphql\n".len()..];
        let end = rest.find("```").expect("a closed block");
        operations.extend(
            rest[..end]
                .split("\n\n")
                .map(str::trim)
                .filter(|op| !op.is_empty())
                .map(str::to_owned),
        );
        rest = &rest[end + 3..];
    }
    // And the queries of the `curl … -d '{"query": …}'` examples.
    let mut rest = readme;
    while let Some(start) = rest.find("-d '{") {
        rest = &rest[start + "-d '".len()..];
        let end = rest.find('\'').expect("a closed body");
        let body: Value = serde_json::from_str(&rest[..end]).expect("a JSON body");
        operations.push(body["query"].as_str().expect("a query").to_owned());
        rest = &rest[end..];
    }
    operations
}

/// What the demo data offers the examples' variables.
struct Demo {
    requester: Person,
    agent: Person,
    manager: Person,
    integration: Person,
    network: Value,
    laptop: Value,
}

async fn demo(app: &TestApp) -> Demo {
    let requester = app.person("rita.requester", Role::Requester).await;
    let agent = app.person("nina.network", Role::Agent).await;
    let manager = app.person("mia.manager", Role::Manager).await;
    let integration = app.person("reporting.bot", Role::Integration).await;
    let queues = app
        .ok(
            &agent,
            "{ queues(first: 100) { nodes { id name } } }",
            json!({}),
        )
        .await;
    let network = queues["queues"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|q| q["name"] == "Network")
        .map(|q| q["id"].clone())
        .expect("the Network queue");
    let items = app
        .ok(
            &requester,
            "{ catalogItems(first: 100) { nodes { id key } } }",
            json!({}),
        )
        .await;
    let laptop = items["catalogItems"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["key"] == "NEW_LAPTOP")
        .map(|i| i["id"].clone())
        .expect("the laptop item");
    Demo {
        requester,
        agent,
        manager,
        integration,
        network,
        laptop,
    }
}

async fn every_readme_example_runs_as_written(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    {
        let settings = settings(&["--database-url", &db.url]);
        let pool = Db::connect(&settings.database).await.expect("connected");
        pool.migrate().await.expect("migrated");
        itsm::seed::demo(&pool, 60).await.expect("seeded");
        pool.close().await;
    }
    let app = spawn_on(TestDatabase::shared(&db), &[]).await;
    let d = demo(&app).await;
    let operations = examples();
    assert!(operations.len() >= 10, "{operations:#?}");

    for operation in &operations {
        if operation.starts_with("subscription") {
            // Follow the Network queue as its agent, then change a ticket in it.
            let mut ws = WsClient::signed_in(&app, &d.agent).await;
            ws.subscribe("board", operation, json!({"queue": d.network}))
                .await;
            app.wait_for_subscriptions(1).await;
            let created = app.ok(
                &d.requester,
                "mutation($q: ID!) { createIncident(input: {title: \"Switch down\", impact: HIGH, urgency: HIGH, queueId: $q}) { ticket { number } } }",
                json!({"q": d.network}),
            )
            .await["createIncident"]["ticket"]["number"]
            .clone();
            // Other events (SLA alerts on the demo tickets) may come first.
            loop {
                let event = ws.next_of("board").await;
                assert!(event["payload"]["errors"].is_null(), "{operation}\n{event}");
                let update = &event["payload"]["data"]["queueUpdates"];
                if update["kind"] == "CREATED" && update["ticket"]["number"] == created {
                    break;
                }
            }
            continue;
        }
        let (who, variables) = if operation.contains("Wait(") {
            // Move one of the queue's tickets that may wait, at its version.
            let board = app
                .ok(
                    &d.agent,
                    "query($q: ID!) { queue(id: $q) { tickets(first: 100) { nodes { id version availableTransitions } } } }",
                    json!({"q": d.network}),
                )
                .await;
            let ticket = board["queue"]["tickets"]["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| {
                    t["availableTransitions"]
                        .as_array()
                        .is_some_and(|moves| moves.contains(&json!("PENDING")))
                })
                .cloned()
                .expect("a ticket that may go to PENDING");
            (
                &d.agent,
                json!({"ticket": ticket["id"], "version": ticket["version"]}),
            )
        } else if operation.contains("Board(") {
            (&d.agent, json!({"queue": d.network}))
        } else if operation.contains("Sync(") {
            (
                &d.integration,
                json!({"since": "2020-01-01T00:00:00Z", "after": null}),
            )
        } else if operation.contains("History(") {
            (&d.integration, json!({"cursor": null}))
        } else if operation.contains("Request(") || operation.contains("Catalog(") {
            (&d.requester, json!({"item": d.laptop}))
        } else if operation.contains("createIncident")
            || operation.contains("tickets(filter: {open: true})")
        {
            (&d.requester, json!({}))
        } else {
            (&d.manager, json!({}))
        };
        let (status, body) = app
            .graphql_with(
                json!({"query": operation, "variables": variables}),
                Some(&who.token),
            )
            .await;
        assert!(
            status.is_success() && body["errors"].is_null() && !body["data"].is_null(),
            "{operation}\n{status} {body}"
        );
    }
}
