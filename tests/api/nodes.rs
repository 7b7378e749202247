//! Global ids: every object type with an `id` implements `Node` and comes
//! back through `node(id:)`, under the same visibility rules as everywhere
//! else.

use std::collections::BTreeSet;

use itsm::auth::Role;
use serde_json::{Value, json};

use crate::{
    catalog::item,
    fulfilment::{desk, request, toner},
    helpers::{Backend, Person, Receiver, TestApp, spawn_app_with},
};

crate::on_both_backends!(every_object_with_an_id_resolves_through_node);

const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id } }";

/// The object types whose `id: ID!` field makes them global, by introspection.
async fn types_with_ids(app: &TestApp, who: &Person) -> (BTreeSet<String>, BTreeSet<String>) {
    let schema = app
        .ok(
            who,
            "{ __schema { types { name kind interfaces { name } fields { name type { kind ofType { name } } } } } }",
            json!({}),
        )
        .await;
    let mut with_id = BTreeSet::new();
    let mut nodes = BTreeSet::new();
    for t in schema["__schema"]["types"].as_array().into_iter().flatten() {
        if t["kind"] != "OBJECT" || t["name"].as_str().is_some_and(|n| n.starts_with("__")) {
            continue;
        }
        let name = t["name"].as_str().unwrap_or_default().to_owned();
        let has_id = t["fields"].as_array().into_iter().flatten().any(|f| {
            f["name"] == "id"
                && f["type"]["kind"] == "NON_NULL"
                && f["type"]["ofType"]["name"] == "ID"
        });
        if has_id {
            with_id.insert(name.clone());
        }
        if t["interfaces"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["name"] == "Node")
        {
            nodes.insert(name);
        }
    }
    (with_id, nodes)
}

/// `node(id)` as `who`: the type name, or `None` for null.
async fn node(app: &TestApp, who: &Person, id: &Value) -> Option<String> {
    let answer = app.ok(who, NODE, json!({"id": id})).await;
    let node = &answer["node"];
    if node.is_null() {
        return None;
    }
    assert_eq!(&node["id"], id, "node returns the object asked for");
    node["__typename"].as_str().map(str::to_owned)
}

async fn every_object_with_an_id_resolves_through_node(backend: Backend) {
    let app = spawn_app_with(backend, &["--webhook-allow", "127.0.0.1"]).await;
    let d = desk(&app).await;
    let mut receiver = Receiver::start().await;
    let webhook = app
        .ok(
            &d.admin,
            "mutation($url: String!) { createWebhook(input: {url: $url}) { webhook { id } } }",
            json!({"url": receiver.url()}),
        )
        .await["createWebhook"]["webhook"]["id"]
        .clone();
    let olga = app.person("olga", Role::Requester).await;

    // One object of every kind, with who may and who may not see it.
    let toner = toner(&app, &d).await;
    let laptop = item(
        &app,
        &d.mia,
        &d.service,
        &d.queue,
        "laptop",
        json!({"approval": {"rule": "ANY_MANAGER"}}),
    )
    .await;
    let toner_request = request(&app, &d.rita, &toner).await;
    let laptop_request = request(&app, &d.rita, &laptop).await;
    let add = "mutation($id: ID!, $body: String!, $v: Visibility!) { addComment(input: {ticketId: $id, body: $body, visibility: $v}) { comment { id } } }";
    let reply = app
        .ok(
            &d.nina,
            add,
            json!({"id": toner_request, "body": "On its way", "v": "PUBLIC"}),
        )
        .await["addComment"]["comment"]["id"]
        .clone();
    let note = app
        .ok(
            &d.nina,
            add,
            json!({"id": toner_request, "body": "Stock is low", "v": "INTERNAL"}),
        )
        .await["addComment"]["comment"]["id"]
        .clone();
    let parts = "query($id: ID!) { ticket(id: $id) { approvals { id } tasks { id } queue { team { id } } service { id } } }";
    let toner_ticket = app.ok(&d.rita, parts, json!({"id": toner_request})).await["ticket"].clone();
    let laptop_ticket =
        app.ok(&d.rita, parts, json!({"id": laptop_request})).await["ticket"].clone();
    let rule = app
        .ok(
            &d.mia,
            "mutation($q: ID!) { createRoutingRule(input: {name: \"Printers\", conditions: {keywords: [\"printer\"]}, actions: {queueId: $q}}) { rule { id } } }",
            json!({"q": d.queue}),
        )
        .await["createRoutingRule"]["rule"]["id"]
        .clone();

    let (_, attached) = crate::attachments::upload(
        &app,
        &d.rita,
        toner_request.as_str().expect("ticket id"),
        None,
        "toner.txt",
        "text/plain",
        b"cyan is empty",
    )
    .await;
    let attachment = attached["data"]["addAttachment"]["attachment"]["id"].clone();
    receiver.next().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let delivery = loop {
        // Recorded once the receiver has answered.
        let record = app
            .ok(
                &d.admin,
                "query($id: ID!) { webhookDeliveries(webhookId: $id, first: 1) { nodes { id } } }",
                json!({"id": webhook}),
            )
            .await;
        let first = &record["webhookDeliveries"]["nodes"][0]["id"];
        if first.is_string() {
            break first.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery recorded"
        );
        tokio::task::yield_now().await;
    };

    // (type, id, a viewer who sees it, a viewer who must get null)
    let cases: Vec<(&str, Value, &Person, Option<&Person>)> = vec![
        ("User", json!(d.rita.id), &d.rita, Some(&olga)),
        ("Ticket", toner_request.clone(), &d.rita, Some(&olga)),
        ("Comment", reply.clone(), &d.rita, Some(&olga)),
        ("Comment", note.clone(), &d.nina, Some(&d.rita)),
        ("Queue", json!(d.queue), &d.nina, None),
        (
            "Team",
            toner_ticket["queue"]["team"]["id"].clone(),
            &d.nina,
            None,
        ),
        ("Service", json!(d.service), &d.rita, None),
        ("CatalogItem", toner["id"].clone(), &d.rita, None),
        (
            "Approval",
            laptop_ticket["approvals"][0]["id"].clone(),
            &d.mia,
            Some(&olga),
        ),
        (
            "Approval",
            laptop_ticket["approvals"][0]["id"].clone(),
            &d.rita,
            None,
        ),
        (
            "Task",
            toner_ticket["tasks"][0]["id"].clone(),
            &d.rita,
            Some(&olga),
        ),
        ("RoutingRule", rule.clone(), &d.mia, Some(&d.nina)),
        ("Attachment", attachment.clone(), &d.rita, Some(&olga)),
        ("Webhook", webhook.clone(), &d.admin, Some(&d.mia)),
        ("WebhookDelivery", delivery.clone(), &d.admin, Some(&d.mia)),
    ];

    let (with_id, nodes) = types_with_ids(&app, &d.admin).await;
    assert_eq!(
        with_id, nodes,
        "every object type with an id implements Node"
    );
    let walked: BTreeSet<String> = cases.iter().map(|c| c.0.to_owned()).collect();
    assert_eq!(walked, nodes, "the walk covers every Node type");

    for (kind, id, sees, blind) in &cases {
        assert!(id.is_string(), "{kind}: an id to look up, got {id}");
        assert_eq!(
            node(&app, sees, id).await.as_deref(),
            Some(*kind),
            "{kind} for {}",
            sees.token_subject()
        );
        if let Some(blind) = blind {
            assert_eq!(
                node(&app, blind, id).await,
                None,
                "{kind} hidden from {}",
                blind.token_subject()
            );
        }
    }
}
