//! Queues, teams and assignment: importance order, keyset paging, statistics
//! and who may manage what.

use std::collections::HashSet;

use itsm::auth::Role;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, code, count, error_field, set_ticket_time, spawn_app},
    tickets::id_of,
};

crate::on_both_backends!(
    a_queue_lists_its_tickets_by_importance,
    paging_never_skips_or_repeats_while_tickets_arrive,
    queue_stats_count_open_unassigned_breached_and_by_priority,
    admins_manage_teams_and_managers_manage_queues,
    assignment_keeps_to_the_queue_team_and_records_moves,
);

const PAGE: &str = "query($q: ID!, $first: Int, $after: String, $last: Int, $before: String) { queue(id: $q) { tickets(first: $first, after: $after, last: $last, before: $before) { totalCount edges { cursor node { id number priority } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }";

fn numbers(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["node"]["number"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn backdate(app: &TestApp, ticket: &Value, column: &str, hours: i64) {
    let at = chrono::Utc::now() - chrono::Duration::hours(hours);
    let id = id_of(ticket["id"].as_str().unwrap_or_default());
    set_ticket_time(app, id, column, at).await;
}

async fn a_queue_lists_its_tickets_by_importance(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[]).await;
    let low = app
        .incident(&rita, "low", "MEDIUM", "LOW", Some(&queue))
        .await; // LOW
    let high_late = app
        .incident(&rita, "high, due later", "HIGH", "MEDIUM", Some(&queue))
        .await; // HIGH
    let critical = app
        .incident(&rita, "critical", "HIGH", "HIGH", Some(&queue))
        .await; // CRITICAL
    let high_soon = app
        .incident(&rita, "high, due sooner", "MEDIUM", "HIGH", Some(&queue))
        .await; // HIGH
    let planning = app
        .incident(&rita, "planning", "LOW", "LOW", Some(&queue))
        .await;
    let high_same_a = app
        .incident(&rita, "high A", "HIGH", "MEDIUM", Some(&queue))
        .await;
    let high_same_b = app
        .incident(&rita, "high B", "HIGH", "MEDIUM", Some(&queue))
        .await;
    // Two HIGH tickets with nothing due: one waits for the caller (its clock
    // is paused), one is resolved (stopped). Though due soonest, they come
    // after every HIGH ticket with a running deadline, oldest first.
    let high_pending = app
        .incident(&rita, "high, pending", "HIGH", "MEDIUM", Some(&queue))
        .await;
    let high_resolved = app
        .incident(&rita, "high, resolved", "HIGH", "MEDIUM", Some(&queue))
        .await;
    let transition = "mutation($input: TransitionTicketInput!) { transitionTicket(input: $input) { ticket { status } } }";
    for (ticket, input) in [
        (
            &high_pending,
            json!({"to": "PENDING", "pendingReason": "AWAITING_CALLER"}),
        ),
        (
            &high_resolved,
            json!({"to": "RESOLVED", "resolution": "Fixed"}),
        ),
    ] {
        let mut input = input;
        input["id"] = ticket["id"].clone();
        app.ok(&admin, transition, json!({"input": input})).await;
    }
    // The later-created HIGH ticket becomes due sooner; A and B share a due time
    // and are ordered by age.
    for column in ["resolution_due_at", "queue_due_at"] {
        backdate(&app, &high_soon, column, 10).await;
        backdate(&app, &high_same_a, column, 5).await;
    }
    backdate(&app, &high_pending, "resolution_due_at", 20).await;
    backdate(&app, &high_resolved, "resolution_due_at", 20).await;
    let conn = app.db.connect().await;
    let a = id_of(high_same_a["id"].as_str().unwrap_or_default());
    let b = id_of(high_same_b["id"].as_str().unwrap_or_default());
    sea_orm::ConnectionTrait::execute_unprepared(&conn, &format!("UPDATE tickets SET resolution_due_at = (SELECT resolution_due_at FROM tickets WHERE id = {a}), queue_due_at = (SELECT queue_due_at FROM tickets WHERE id = {a}) WHERE id = {b}"))
        .await
        .expect("same due");
    let data = app.ok(&admin, PAGE, json!({"q": queue, "first": 20})).await;
    let order = numbers(&data["queue"]["tickets"]);
    let n = |t: &Value| t["number"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        order,
        vec![
            n(&critical),
            n(&high_soon),
            n(&high_same_a),
            n(&high_same_b),
            n(&high_late),
            n(&high_pending),
            n(&high_resolved),
            n(&low),
            n(&planning)
        ]
    );
    // Paging by twos, across the tickets with nothing due, gives the same order.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = app
            .ok(
                &admin,
                PAGE,
                json!({"q": queue, "first": 2, "after": after}),
            )
            .await;
        let tickets = &data["queue"]["tickets"];
        paged.extend(numbers(tickets));
        if tickets["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = tickets["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(paged, order);
}

async fn paging_never_skips_or_repeats_while_tickets_arrive(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[]).await;
    let levels = ["HIGH", "MEDIUM", "LOW"];
    let mut existing = HashSet::new();
    for i in 0..25 {
        let t = app
            .incident(
                &rita,
                &format!("t{i}"),
                levels[i % 3],
                levels[(i / 3) % 3],
                Some(&queue),
            )
            .await;
        existing.insert(t["number"].as_str().unwrap_or_default().to_owned());
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut arrivals = 0;
    loop {
        let data = app
            .ok(
                &admin,
                PAGE,
                json!({"q": queue, "first": 7, "after": after}),
            )
            .await;
        let page = &data["queue"]["tickets"];
        seen.extend(numbers(page));
        // New tickets of every priority arrive between pages.
        for level in levels {
            app.incident(&rita, "arrived meanwhile", level, level, Some(&queue))
                .await;
            arrivals += 1;
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        assert_eq!(page["pageInfo"]["hasPreviousPage"], after.is_some());
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no ticket repeats: {seen:?}");
    assert!(
        existing.iter().all(|n| unique.contains(n)),
        "every ticket present at the start is seen"
    );
    assert!(arrivals > 0);

    // Backwards from the end gives the same order, page by page.
    let all = app
        .ok(&admin, PAGE, json!({"q": queue, "first": 100}))
        .await;
    let forward = numbers(&all["queue"]["tickets"]);
    let mut backward: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let data = app
            .ok(
                &admin,
                PAGE,
                json!({"q": queue, "last": 9, "before": before}),
            )
            .await;
        let page = &data["queue"]["tickets"];
        let mut chunk = numbers(page);
        chunk.extend(backward);
        backward = chunk;
        if page["pageInfo"]["hasPreviousPage"] != true {
            break;
        }
        before = page["pageInfo"]["startCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(backward, forward);
    assert_eq!(
        all["queue"]["tickets"]["totalCount"].as_u64(),
        Some(forward.len() as u64)
    );

    // Cursors are checked.
    let error = app
        .fails(
            &admin,
            PAGE,
            json!({"q": queue, "first": 5, "after": "garbage"}),
        )
        .await;
    assert_eq!(
        (code(&error), error_field(&error)),
        (Some("BAD_USER_INPUT"), Some("after"))
    );
    let error = app
        .fails(&admin, PAGE, json!({"q": queue, "first": 101}))
        .await;
    assert_eq!(error_field(&error), Some("first"));
    let created_order = "query($q: ID!, $after: String) { queue(id: $q) { tickets(first: 2, after: $after, orderBy: {field: CREATED_AT}) { nodes { number } } } }";
    let error = app
        .fails(
            &admin,
            created_order,
            json!({"q": queue, "after": all["queue"]["tickets"]["pageInfo"]["endCursor"]}),
        )
        .await;
    assert_eq!(
        error_field(&error),
        Some("after"),
        "a cursor of another order is refused"
    );
}

async fn queue_stats_count_open_unassigned_breached_and_by_priority(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let nina = app.person("nina", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&nina]).await;
    let a = app.incident(&rita, "a", "HIGH", "HIGH", Some(&queue)).await;
    let b = app.incident(&rita, "b", "HIGH", "HIGH", Some(&queue)).await;
    app.incident(&rita, "c", "LOW", "LOW", Some(&queue)).await;
    let d = app
        .incident(&rita, "d", "MEDIUM", "MEDIUM", Some(&queue))
        .await;
    app.ok(&nina, "mutation($id: ID!, $u: ID!) { assignTicket(input: {id: $id, assigneeId: $u}) { ticket { id } } }", json!({"id": a["id"], "u": nina.id})).await;
    app.ok(&nina, "mutation($id: ID!) { transitionTicket(input: {id: $id, to: RESOLVED, resolution: \"ok\"}) { ticket { id } } }", json!({"id": d["id"]})).await;
    crate::helpers::age_ticket(&app, b["id"].as_str().unwrap_or_default(), 1).await;
    let stats = app.ok(&nina, "query($q: ID!) { queue(id: $q) { stats { open unassigned breached byPriority { priority count } } } }", json!({"q": queue})).await;
    assert_eq!(
        stats["queue"]["stats"],
        json!({"open": 3, "unassigned": 2, "breached": 1, "byPriority": [
            {"priority": "CRITICAL", "count": 2}, {"priority": "HIGH", "count": 0}, {"priority": "MODERATE", "count": 0},
            {"priority": "LOW", "count": 0}, {"priority": "PLANNING", "count": 1}]})
    );
    // A requester's view of the same queue counts only their own tickets.
    let ivan = app.person("ivan", Role::Requester).await;
    let theirs = app
        .ok(
            &ivan,
            "query($q: ID!) { queue(id: $q) { stats { open } tickets { totalCount } } }",
            json!({"q": queue}),
        )
        .await;
    assert_eq!(
        theirs["queue"],
        json!({"stats": {"open": 0}, "tickets": {"totalCount": 0}})
    );
}

async fn admins_manage_teams_and_managers_manage_queues(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let boss = app.person("boss", Role::Manager).await;
    let nina = app.person("nina", Role::Agent).await;
    let create_team = "mutation($n: String!) { createTeam(input: {name: $n, description: \"Switches and wifi\"}) { team { id name description } } }";
    let error = app.fails(&boss, create_team, json!({"n": "Network"})).await;
    assert_eq!(code(&error), Some("FORBIDDEN"));
    let team =
        app.ok(&admin, create_team, json!({"n": "Network"})).await["createTeam"]["team"].clone();
    assert_eq!(team["description"], "Switches and wifi");
    let duplicate = app
        .fails(&admin, create_team, json!({"n": "Network"}))
        .await;
    assert_eq!(
        (code(&duplicate), error_field(&duplicate)),
        (Some("BAD_USER_INPUT"), Some("name"))
    );

    let member = "mutation($t: ID!, $u: ID!) { addTeamMember(input: {teamId: $t, userId: $u}) { team { members { totalCount nodes { id } } } } }";
    let error = app
        .fails(&boss, member, json!({"t": team["id"], "u": nina.id}))
        .await;
    assert_eq!(code(&error), Some("FORBIDDEN"));
    let members = app
        .ok(&admin, member, json!({"t": team["id"], "u": nina.id}))
        .await;
    assert_eq!(members["addTeamMember"]["team"]["members"]["totalCount"], 1);
    app.ok(&admin, member, json!({"t": team["id"], "u": nina.id}))
        .await;
    let remove = "mutation($t: ID!, $u: ID!) { removeTeamMember(input: {teamId: $t, userId: $u}) { team { members { totalCount } } } }";
    let after = app
        .ok(&admin, remove, json!({"t": team["id"], "u": nina.id}))
        .await;
    assert_eq!(
        after["removeTeamMember"]["team"]["members"]["totalCount"],
        0
    );

    let create_queue = "mutation($t: ID!) { createQueue(input: {name: \"Wifi\", teamId: $t}) { queue { id name isDefault team { name } } } }";
    let error = app
        .fails(&nina, create_queue, json!({"t": team["id"]}))
        .await;
    assert_eq!(code(&error), Some("FORBIDDEN"));
    let queue =
        app.ok(&boss, create_queue, json!({"t": team["id"]})).await["createQueue"]["queue"].clone();
    assert_eq!(
        (queue["isDefault"].clone(), queue["team"]["name"].clone()),
        (json!(false), json!("Network"))
    );
    let update = "mutation($q: ID!) { updateQueue(input: {id: $q, name: \"Wireless\", isDefault: true}) { queue { name isDefault } } }";
    let renamed = app.ok(&boss, update, json!({"q": queue["id"]})).await;
    assert_eq!(
        renamed["updateQueue"]["queue"],
        json!({"name": "Wireless", "isDefault": true})
    );
    // The new default takes tickets that name no queue; the old one stops being default.
    let rita = app.person("rita", Role::Requester).await;
    let ticket = app
        .incident(&rita, "Where does this go?", "LOW", "LOW", None)
        .await;
    assert_eq!(ticket["queue"]["name"], "Wireless");
    let conn = app.db.connect().await;
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM queues WHERE is_default = TRUE").await,
        1
    );

    let users = "query($s: String) { users(search: $s) { totalCount nodes { subject } } }";
    let robot = app.person("robot", Role::Integration).await;
    for outsider in [&nina, &rita, &robot] {
        let error = app.fails(outsider, users, json!({"s": "ni"})).await;
        assert_eq!(code(&error), Some("FORBIDDEN"), "{error}");
    }
    for allowed in [&boss, &admin] {
        let found = app.ok(allowed, users, json!({"s": "NIN"})).await;
        assert_eq!(
            found["users"],
            json!({"totalCount": 1, "nodes": [{"subject": "nina"}]})
        );
    }
    let teams = app
        .ok(
            &rita,
            "{ teams { totalCount nodes { name queues { nodes { name } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(teams["teams"]["totalCount"], 2);
    let hidden = app
        .fails(
            &rita,
            "query($t: ID!) { team(id: $t) { members { totalCount } } }",
            json!({"t": team["id"]}),
        )
        .await;
    assert_eq!(
        code(&hidden),
        Some("FORBIDDEN"),
        "requesters do not list staff"
    );
}

async fn assignment_keeps_to_the_queue_team_and_records_moves(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let nina = app.person("nina", Role::Agent).await;
    let omar = app.person("omar", Role::Agent).await;
    let (_, network) = app.team_with_queue(&admin, "Network", &[&nina]).await;
    let (_, desktop) = app.team_with_queue(&admin, "Desktop", &[&omar]).await;
    let ticket = app
        .incident(&rita, "Cable cut", "MEDIUM", "MEDIUM", Some(&network))
        .await;
    let assign = "mutation($input: AssignTicketInput!) { assignTicket(input: $input) { ticket { version assignee { id } queue { name } } } }";
    let id = &ticket["id"];
    let error = app
        .fails(
            &nina,
            assign,
            json!({"input": {"id": id, "assigneeId": omar.id}}),
        )
        .await;
    assert_eq!(
        (code(&error), error_field(&error)),
        (Some("BAD_USER_INPUT"), Some("assigneeId"))
    );
    let error = app
        .fails(
            &rita,
            assign,
            json!({"input": {"id": id, "assigneeId": nina.id}}),
        )
        .await;
    assert_eq!(code(&error), Some("FORBIDDEN"));
    let assigned = app
        .ok(
            &nina,
            assign,
            json!({"input": {"id": id, "assigneeId": nina.id, "expectedVersion": 1}}),
        )
        .await;
    assert_eq!(
        assigned["assignTicket"]["ticket"]["assignee"]["id"],
        nina.id
    );
    // Moving to a queue whose team Nina is not in clears her as assignee.
    let moved = app
        .ok(
            &nina,
            assign,
            json!({"input": {"id": id, "queueId": desktop}}),
        )
        .await;
    assert_eq!(moved["assignTicket"]["ticket"]["queue"]["name"], "Desktop");
    assert_eq!(moved["assignTicket"]["ticket"]["assignee"], Value::Null);
    let given = app
        .ok(
            &omar,
            assign,
            json!({"input": {"id": id, "assigneeId": omar.id}}),
        )
        .await;
    assert_eq!(given["assignTicket"]["ticket"]["assignee"]["id"], omar.id);
    let unassigned = app
        .ok(
            &omar,
            assign,
            json!({"input": {"id": id, "assigneeId": null}}),
        )
        .await;
    assert_eq!(
        unassigned["assignTicket"]["ticket"]["assignee"],
        Value::Null
    );
    let error = app.fails(&omar, assign, json!({"input": {"id": id}})).await;
    assert_eq!(code(&error), Some("BAD_USER_INPUT"));

    let history = app.ok(&omar, "query($id: ID!) { ticket(id: $id) { history { nodes { kind changes { field from to } } } } }", json!({"id": id})).await;
    let kinds: Vec<String> = history["ticket"]["history"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "CREATED",
            "ASSIGNED",
            "LEFT_QUEUE",
            "ENTERED_QUEUE",
            "ASSIGNED",
            "ASSIGNED",
            "ASSIGNED"
        ]
    );
    let conn = app.db.connect().await;
    let key = id_of(id.as_str().unwrap_or_default());
    let left_network = count(&conn, &format!("SELECT COUNT(*) FROM ticket_events WHERE ticket_id = {key} AND kind = 'LEFT_QUEUE' AND queue_id = {}", id_of(&network))).await;
    assert_eq!(
        left_network, 1,
        "LEFT_QUEUE belongs to the queue the ticket left"
    );
}
