//! Routing rules: managed by managers, applied to new tickets, first match wins.

use itsm::auth::Role;
use serde_json::{Value, json};

use crate::{
    catalog::{SUBMIT, item, live_service},
    helpers::{Backend, code, error_field, spawn_app},
};

crate::on_both_backends!(
    the_first_matching_rule_routes_a_new_ticket_and_is_recorded,
    only_managers_manage_rules_and_bad_rules_are_refused,
    every_condition_and_action_applies_and_rules_can_be_rewritten,
    new_tickets_read_the_routing_and_sla_setup_once_until_it_changes,
);

const CREATE: &str = "mutation($input: CreateRoutingRuleInput!) { createRoutingRule(input: $input) { rule { id name position enabled version } } }";
const INCIDENT: &str = "mutation($input: CreateIncidentInput!) { createIncident(input: $input) { ticket { id priority urgency queue { name } assignee { displayName } history { nodes { kind changes { field from to } } } } } }";

async fn the_first_matching_rule_routes_a_new_ticket_and_is_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let mia = app.person("mia", Role::Manager).await;
    let dora = app.person("dora", Role::Agent).await;
    let rita = app.person("rita", Role::Requester).await;
    let (_, desktop) = app.team_with_queue(&admin, "Desktop", &[&dora]).await;
    let (_, network) = app.team_with_queue(&admin, "Network", &[]).await;
    let printers = app
        .ok(
            &mia,
            CREATE,
            json!({"input": {"name": "Printers to Desktop", "conditions": {"keywords": ["printer"]},
            "actions": {"queueId": desktop, "assigneeId": dora.id}}}),
        )
        .await["createRoutingRule"]["rule"]
        .clone();
    let outages = app
        .ok(&mia, CREATE, json!({"input": {"name": "High-impact incidents are urgent", "conditions": {"kinds": ["INCIDENT"], "impacts": ["HIGH"]},
            "actions": {"queueId": network, "urgency": "HIGH"}}}))
        .await["createRoutingRule"]["rule"]
        .clone();
    app.ok(&mia, CREATE, json!({"input": {"name": "Everything else (off)", "enabled": false, "actions": {"queueId": network}}})).await;
    assert_eq!(
        (printers["position"].as_i64(), outages["position"].as_i64()),
        (Some(1), Some(2))
    );

    let create = |title: &str, impact: &str| json!({"input": {"title": title, "impact": impact, "urgency": "LOW"}});
    let printer = app
        .ok(&rita, INCIDENT, create("Printer on fire", "HIGH"))
        .await["createIncident"]["ticket"]
        .clone();
    assert_eq!(
        printer["queue"]["name"], "Desktop",
        "the first matching rule wins"
    );
    // A requester sees the assignee's display name only.
    assert_eq!(printer["assignee"]["displayName"], "Test dora");
    let routed = printer["history"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["kind"] == "ROUTED")
        .cloned()
        .unwrap_or_default();
    assert!(
        routed["changes"].as_array().is_some_and(|c| c
            .contains(&json!({"field": "routingRule", "from": null, "to": "Printers to Desktop"}))),
        "{routed}"
    );

    let outage =
        app.ok(&rita, INCIDENT, create("Switch down", "HIGH")).await["createIncident"]["ticket"]
            .clone();
    assert_eq!(
        (
            outage["queue"]["name"].as_str(),
            outage["urgency"].as_str(),
            outage["priority"].as_str()
        ),
        (Some("Network"), Some("HIGH"), Some("CRITICAL"))
    );

    let quiet = app
        .ok(&rita, INCIDENT, create("Mouse squeaks", "LOW"))
        .await["createIncident"]["ticket"]
        .clone();
    assert_eq!(
        quiet["queue"]["name"], "Service Desk",
        "disabled rules never fire"
    );
    assert!(
        quiet["history"]["nodes"]
            .as_array()
            .is_some_and(|h| h.iter().all(|e| e["kind"] != "ROUTED"))
    );

    // Reordered, the other rule comes first.
    let reorder = "mutation($ids: [ID!]!) { reorderRoutingRules(input: {ids: $ids}) { rules { name position } } }";
    let rules = app
        .ok(&mia, "{ routingRules { id name } }", json!({}))
        .await["routingRules"]
        .clone();
    let ids: Vec<Value> = rules
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["id"].clone())
        .collect();
    let reordered = app
        .ok(&mia, reorder, json!({"ids": [ids[1], ids[0], ids[2]]}))
        .await;
    assert_eq!(
        reordered["reorderRoutingRules"]["rules"][0]["name"],
        "High-impact incidents are urgent"
    );
    let printer = app
        .ok(&rita, INCIDENT, create("Printer smokes", "HIGH"))
        .await["createIncident"]["ticket"]
        .clone();
    assert_eq!(printer["queue"]["name"], "Network");

    // Catalog requests match on their item's category.
    let (service, queue) = live_service(&app, &admin, "LAPTOPS", "OPERATION").await;
    let laptop = item(
        &app,
        &mia,
        &service,
        &queue,
        "laptop",
        json!({"category": "Hardware"}),
    )
    .await;
    app.ok(&mia, reorder, json!({"ids": [ids[2], ids[0], ids[1]]}))
        .await;
    app.ok(&mia, CREATE, json!({"input": {"name": "Hardware to Desktop", "conditions": {"categories": ["Hardware"], "kinds": ["SERVICE_REQUEST"]}, "actions": {"queueId": desktop}}})).await;
    let answers = json!({"model": "14-inch", "justification": "x", "needed_by": "2027-01-04"});
    let request = app
        .ok(
            &rita,
            SUBMIT,
            json!({"input": {"catalogItemId": laptop["id"], "answers": answers}}),
        )
        .await;
    assert_eq!(
        request["submitServiceRequest"]["ticket"]["queue"]["name"],
        "Desktop"
    );
}

async fn only_managers_manage_rules_and_bad_rules_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let mia = app.person("mia", Role::Manager).await;
    let nina = app.person("nina", Role::Agent).await;
    let rita = app.person("rita", Role::Requester).await;
    let (_, queue) = app.team_with_queue(&admin, "Desktop", &[]).await;
    let valid = json!({"input": {"name": "r", "actions": {"queueId": queue}}});
    for who in [&nina, &rita] {
        assert_eq!(
            code(&app.fails(who, CREATE, valid.clone()).await),
            Some("FORBIDDEN")
        );
        assert_eq!(
            code(&app.fails(who, "{ routingRules { id } }", json!({})).await),
            Some("FORBIDDEN")
        );
    }
    for (input, field) in [
        (json!({"name": "nothing", "actions": {}}), "actions"),
        (
            json!({"name": "lost", "actions": {"queueId": "UXVldWU6OTk5"}}),
            "actions.queueId",
        ),
        (
            json!({"name": "to a requester", "actions": {"assigneeId": rita.id}}),
            "actions.assigneeId",
        ),
        (json!({"name": " ", "actions": {"queueId": queue}}), "name"),
        (
            json!({"name": "bad service", "conditions": {"serviceIds": ["U2VydmljZTo5OTk"]}, "actions": {"queueId": queue}}),
            "conditions.serviceIds",
        ),
    ] {
        let error = app.fails(&mia, CREATE, json!({"input": input})).await;
        assert_eq!(
            (code(&error), error_field(&error)),
            (Some("BAD_USER_INPUT"), Some(field)),
            "{error}"
        );
    }
    let rule = app.ok(&mia, CREATE, valid).await["createRoutingRule"]["rule"].clone();
    let update = "mutation($input: UpdateRoutingRuleInput!) { updateRoutingRule(input: $input) { rule { enabled version } } }";
    let off = app
        .ok(
            &mia,
            update,
            json!({"input": {"id": rule["id"], "expectedVersion": 1, "enabled": false}}),
        )
        .await;
    assert_eq!(
        off["updateRoutingRule"]["rule"],
        json!({"enabled": false, "version": 2})
    );
    let stale = app
        .fails(
            &mia,
            update,
            json!({"input": {"id": rule["id"], "expectedVersion": 1, "enabled": true}}),
        )
        .await;
    assert_eq!(code(&stale), Some("CONFLICT"));
    let partial = app
        .fails(
            &mia,
            "mutation { reorderRoutingRules(input: {ids: []}) { rules { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_field(&partial), Some("ids"));
}

async fn every_condition_and_action_applies_and_rules_can_be_rewritten(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let mia = app.person("mia", Role::Manager).await;
    let dora = app.person("dora", Role::Agent).await;
    let nina = app.person("nina", Role::Agent).await;
    let rita = app.person("rita", Role::Requester).await;
    let (_, desktop) = app.team_with_queue(&admin, "Desktop", &[&dora]).await;
    let (_, network) = app.team_with_queue(&admin, "Network", &[]).await;
    let (service, queue) = live_service(&app, &admin, "DEVICES", "OPERATION").await;
    let laptop = item(&app, &mia, &service, &queue, "laptop", json!({})).await;
    let monitor = item(&app, &mia, &service, &queue, "monitor", json!({})).await;

    // Service and catalog item conditions; an impact action.
    app.ok(
        &mia,
        CREATE,
        json!({"input": {"name": "Monitors are big deals",
        "conditions": {"serviceIds": [service], "catalogItemIds": [monitor["id"]]},
        "actions": {"queueId": desktop, "impact": "HIGH"}}}),
    )
    .await;
    let answers = json!({"model": "14-inch", "justification": "x", "needed_by": "2027-01-04"});
    let request = "query($id: ID!) { ticket(id: $id) { impact queue { name } } }";
    let submit = |item: &Value| json!({"input": {"catalogItemId": item["id"], "answers": answers}});
    let plain =
        app.ok(&rita, SUBMIT, submit(&laptop)).await["submitServiceRequest"]["ticket"]["id"]
            .clone();
    let big = app.ok(&rita, SUBMIT, submit(&monitor)).await["submitServiceRequest"]["ticket"]["id"]
        .clone();
    assert_eq!(
        app.ok(&mia, request, json!({"id": plain})).await["ticket"],
        json!({"impact": "LOW", "queue": {"name": "DEVICES team"}}),
        "another item of the service does not match"
    );
    assert_eq!(
        app.ok(&mia, request, json!({"id": big})).await["ticket"],
        json!({"impact": "HIGH", "queue": {"name": "Desktop"}})
    );

    // An urgency condition; queue and assignee actions.
    let urgent = app
        .ok(
            &mia,
            CREATE,
            json!({"input": {"name": "Urgent incidents to Dora",
            "conditions": {"kinds": ["INCIDENT"], "urgencies": ["HIGH"]},
            "actions": {"queueId": desktop, "assigneeId": dora.id}}}),
        )
        .await["createRoutingRule"]["rule"]
        .clone();
    let incident = |urgency: &str| json!({"input": {"title": "Cannot log in", "impact": "LOW", "urgency": urgency}});
    let routed = |ticket: &Value| {
        (
            ticket["queue"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            ticket["assignee"]["displayName"]
                .as_str()
                .and_then(|name| name.strip_prefix("Test "))
                .map(str::to_owned),
        )
    };
    let high = app.ok(&rita, INCIDENT, incident("HIGH")).await["createIncident"]["ticket"].clone();
    assert_eq!(routed(&high), ("Desktop".into(), Some("dora".into())));
    let low = app.ok(&rita, INCIDENT, incident("LOW")).await["createIncident"]["ticket"].clone();
    assert_eq!(routed(&low), ("Service Desk".into(), None));

    // Rewritten: new name, conditions and actions all take effect.
    let update = "mutation($input: UpdateRoutingRuleInput!) { updateRoutingRule(input: $input) { rule { name version } } }";
    let rewrite = json!({"input": {"id": urgent["id"], "expectedVersion": urgent["version"], "name": "Medium urgency to Network",
        "conditions": {"kinds": ["INCIDENT"], "urgencies": ["MEDIUM"]}, "actions": {"queueId": network}}});
    for who in [&nina, &rita] {
        assert_eq!(
            code(&app.fails(who, update, rewrite.clone()).await),
            Some("FORBIDDEN")
        );
    }
    let rewritten = app.ok(&mia, update, rewrite).await;
    assert_eq!(
        rewritten["updateRoutingRule"]["rule"],
        json!({"name": "Medium urgency to Network", "version": 2})
    );
    let medium =
        app.ok(&rita, INCIDENT, incident("MEDIUM")).await["createIncident"]["ticket"].clone();
    assert_eq!(routed(&medium), ("Network".into(), None));
    assert!(
        medium["history"]["nodes"].as_array().is_some_and(|h| h.iter().any(|e| e["changes"]
            .as_array()
            .is_some_and(|c| c.contains(&json!({"field": "routingRule", "from": null, "to": "Medium urgency to Network"}))))),
        "{medium}"
    );
    let high = app.ok(&rita, INCIDENT, incident("HIGH")).await["createIncident"]["ticket"].clone();
    assert_eq!(routed(&high), ("Service Desk".into(), None));

    let reorder =
        "mutation($ids: [ID!]!) { reorderRoutingRules(input: {ids: $ids}) { rules { id } } }";
    let ids: Vec<Value> = app.ok(&mia, "{ routingRules { id } }", json!({})).await["routingRules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["id"].clone())
        .rev()
        .collect();
    for who in [&nina, &rita] {
        assert_eq!(
            code(&app.fails(who, reorder, json!({"ids": ids})).await),
            Some("FORBIDDEN")
        );
    }
}

/// Opening a ticket reads the default queue, the rules and the SLA policies
/// once, then from memory until a rule or a queue changes; the change
/// applies to the very next ticket. The reading is not the request's: a
/// ticket costs its request the same statements either way.
async fn new_tickets_read_the_routing_and_sla_setup_once_until_it_changes(backend: Backend) {
    const READS: &str = "itsm_db_setup_reads_total";
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let mia = app.person("mia", Role::Manager).await;
    let rita = app.person("rita", Role::Requester).await;
    let (_, desktop) = app.team_with_queue(&admin, "Desktop", &[]).await;
    app.ok(&rita, "{ viewer { id } }", json!({})).await;
    let open = |title: &'static str| {
        let app = &app;
        let rita = &rita;
        async move {
            let before = app.statements().await;
            let input = json!({"input": {"title": title, "impact": "LOW", "urgency": "LOW"}});
            let ticket = app
                .ok(rita, "mutation($input: CreateIncidentInput!) { createIncident(input: $input) { ticket { id } } }", input)
                .await["createIncident"]["ticket"]
                .clone();
            let statements = app.statements().await - before;
            let queue = app
                .ok(
                    rita,
                    "query($id: ID!) { ticket(id: $id) { queue { name } } }",
                    json!({"id": ticket["id"]}),
                )
                .await["ticket"]["queue"]["name"]
                .clone();
            (statements, queue)
        }
    };

    let reads = app.metric(READS).await;
    let (first, queue) = open("Mouse squeaks").await;
    assert_eq!(queue, "Service Desk");
    assert_eq!(
        app.metric(READS).await,
        reads + 1,
        "the first ticket reads the setup"
    );
    let (warm, _) = open("Keyboard sticks").await;
    open("Screen flickers").await;
    assert_eq!(app.metric(READS).await, reads + 1, "then it is remembered");
    assert_eq!(first, warm, "the reading is not charged to the request");

    app.ok(
        &mia,
        CREATE,
        json!({"input": {"name": "Printers", "conditions": {"keywords": ["printer"]}, "actions": {"queueId": desktop}}}),
    )
    .await;
    let (_, queue) = open("Printer jams").await;
    assert_eq!(queue, "Desktop", "the new rule routes the next ticket");
    open("Mouse squeaks again").await;
    assert_eq!(
        app.metric(READS).await,
        reads + 2,
        "read again once after the change"
    );

    // The default queue renamed: the next ticket's creation records the new
    // name.
    let queues = app
        .ok(&admin, "{ queues { nodes { id isDefault } } }", json!({}))
        .await;
    let default = queues["queues"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|q| q["isDefault"] == true)
        .map(|q| q["id"].clone())
        .unwrap_or_default();
    app.ok(
        &admin,
        "mutation($q: ID!) { updateQueue(input: {id: $q, name: \"Front Desk\"}) { queue { id } } }",
        json!({"q": default}),
    )
    .await;
    let created = app
        .ok(
            &rita,
            INCIDENT,
            json!({"input": {"title": "Mouse gone", "impact": "LOW", "urgency": "LOW"}}),
        )
        .await["createIncident"]["ticket"]["history"]["nodes"][0]["changes"]
        .clone();
    assert!(
        created.as_array().is_some_and(
            |c| c.contains(&json!({"field": "queue", "from": null, "to": "Front Desk"}))
        ),
        "{created}"
    );
}
