//! No N+1: a page of 100 tickets with its relations costs the same SQL
//! statements as a page of 1.

use futures_util::future::join_all;
use itsm::auth::Role;
use serde_json::json;

use crate::helpers::{Backend, Person, TestApp, spawn_app_with};

crate::on_both_backends!(
    a_queue_page_of_100_costs_the_same_statements_as_a_page_of_1,
    every_list_a_board_or_portal_selects_costs_a_fixed_count_of_statements,
);

const PAGE: &str = "query($q: ID!, $n: Int!) { queue(id: $q) { tickets(first: $n) { totalCount edges { cursor node {
    number title priority status availableTransitions
    requester { displayName } assignee { displayName }
    queue { name team { name } }
    commentCount latestComment { body author { displayName } }
    sla { responseBreached remainingSeconds }
    approvals { state approver { displayName } } tasks { title assignee { displayName } }
    linkedTickets { number assignee { displayName } }
    attachments { filename uploadedBy { displayName } }
} } } } }";

async fn a_queue_page_of_100_costs_the_same_statements_as_a_page_of_1(backend: Backend) {
    // The page of 100 with every list is priced far above the default limit
    // (its lists may each hold 100 rows); this test counts statements.
    let app = spawn_app_with(
        backend,
        &["--graphql-max-complexity", "10000000", "--rate-limit", "0"],
    )
    .await;
    let admin = app.person("root", Role::Admin).await;
    let nina = app.person("nina", Role::Agent).await;
    let omar = app.person("omar", Role::Agent).await;
    let requesters =
        join_all((0..5).map(|i| app.person_owned(format!("r{i}"), Role::Requester))).await;
    let (_, queue) = app
        .team_with_queue(&admin, "Network", &[&nina, &omar])
        .await;
    let levels = ["HIGH", "MEDIUM", "LOW"];
    let mut ids = Vec::new();
    for i in 0..100 {
        let who = &requesters[i % requesters.len()];
        let t = app
            .incident(
                who,
                &format!("ticket {i}"),
                levels[i % 3],
                levels[(i / 3) % 3],
                Some(&queue),
            )
            .await;
        ids.push(t["id"].clone());
    }
    let assign = "mutation($id: ID!, $u: ID!) { assignTicket(input: {id: $id, assigneeId: $u}) { ticket { id } } }";
    let comment = "mutation($id: ID!, $b: String!) { addComment(input: {ticketId: $id, body: $b}) { comment { id } } }";
    for (i, id) in ids.iter().enumerate().step_by(3) {
        let agent = if i % 2 == 0 { &nina } else { &omar };
        app.ok(agent, assign, json!({"id": id, "u": agent.id}))
            .await;
        app.ok(agent, comment, json!({"id": id, "b": format!("note {i}")}))
            .await;
    }

    // A problem behind every tenth incident.
    let problem = app
        .ok(
            &nina,
            "mutation($q: ID!) { createProblem(input: {title: \"flapping uplink\", impact: HIGH, urgency: HIGH, queueId: $q}) { ticket { id } } }",
            json!({"q": queue}),
        )
        .await["createProblem"]["ticket"]["id"]
        .clone();
    let link = "mutation($a: ID!, $b: ID!) { linkTickets(input: {ticketId: $a, relatedTicketId: $b}) { ticket { id } } }";
    for id in ids.iter().step_by(10) {
        app.ok(&nina, link, json!({"a": problem, "b": id})).await;
    }

    let mut costs = Vec::new();
    for size in [1, 100, 1, 100] {
        let before = app.statements().await;
        let data = app.ok(&nina, PAGE, json!({"q": queue, "n": size})).await;
        let after = app.statements().await;
        let edges = data["queue"]["tickets"]["edges"].as_array();
        assert_eq!(edges.map(Vec::len), Some(size), "{data}");
        if size == 100 {
            let linked = edges
                .into_iter()
                .flatten()
                .filter(|edge| {
                    edge["node"]["linkedTickets"]
                        .as_array()
                        .is_some_and(|l| !l.is_empty())
                })
                .count();
            assert!(linked >= 10, "the page shows linked tickets: {data}");
        }
        costs.push((size, after - before));
    }
    println!("statements per queue page (size, statements): {costs:?}");
    assert_eq!(
        costs[0].1, costs[1].1,
        "100 tickets cost what 1 does: {costs:?}"
    );
    assert_eq!(
        costs,
        vec![costs[0], costs[1], costs[0], costs[1]],
        "and the count is stable: {costs:?}"
    );
}

/// The agents' board: `bench/src/queue_page.rs`'s page.
const BOARD: &str = "query($q: ID!) { queue(id: $q) {
    name stats { open unassigned breached }
    tickets(first: 50) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node {
        id number kind title status priority
        requester { displayName } assignee { displayName } queue { name team { name } }
        commentCount latestComment { body author { displayName } }
        sla { responseBreached resolutionBreached remainingSeconds }
    } } }
} }";

/// The board's side bar: every queue with its counts.
const QUEUES: &str = "{ queues(first: 50) { totalCount edges { node {
    name team { name } stats { open unassigned breached byPriority { priority count } }
} } } }";

/// An agent's own open work across queues.
const MY_WORK: &str =
    "query($me: ID!) { tickets(filter: {assigneeId: $me, open: true}, first: 50) {
    totalCount edges { node { number title priority status
        requester { displayName } queue { name } commentCount sla { remainingSeconds } } }
} }";

/// A requester's portal: their requests.
const MY_REQUESTS: &str = "{ tickets(first: 20) { totalCount edges { node {
    number title status priority updatedAt queue { name } assignee { displayName }
    commentCount latestComment { body author { displayName } } sla { resolutionBreached }
} } } }";

/// One ticket's page: conversation, history, files.
const DETAIL: &str = "query($id: ID!) { ticket(id: $id) {
    number title description status requester { displayName } assignee { displayName }
    comments(first: 20) { totalCount edges { node { body visibility author { displayName } attachments { filename } } } }
    history(first: 20) { totalCount edges { node { kind actor { displayName } } } }
    attachments { filename uploadedBy { displayName } }
} }";

/// The polling feed integrators read.
const FEED: &str = "{ ticketEvents(first: 100) { pageInfo { endCursor } edges { node {
    seq kind ticket { number } actor { displayName }
} } } }";

/// Statements per list once the viewer is known (their user row and team
/// queues are remembered across requests), as a tuple per list: what the
/// statements are is spelled out beside each.
async fn every_list_a_board_or_portal_selects_costs_a_fixed_count_of_statements(backend: Backend) {
    let app = spawn_app_with(backend, &["--rate-limit", "0"]).await;
    let admin = app.person("root", Role::Admin).await;
    let nina = app.person("nina", Role::Agent).await;
    let rita = app.person("rita", Role::Requester).await;
    let sam = app.person("sam", Role::Requester).await;
    let (_, network) = app.team_with_queue(&admin, "Network", &[&nina]).await;
    app.team_with_queue(&admin, "Desktop", &[]).await;
    let assign = "mutation($id: ID!, $u: ID!) { assignTicket(input: {id: $id, assigneeId: $u}) { ticket { id } } }";
    let comment = "mutation($id: ID!, $b: String!, $v: Visibility) { addComment(input: {ticketId: $id, body: $b, visibility: $v}) { comment { id } } }";
    let mut ids = Vec::new();
    for i in 0..6 {
        let who = if i % 2 == 0 { &rita } else { &sam };
        let id = app
            .incident(
                who,
                &format!("ticket {i}"),
                "HIGH",
                "MEDIUM",
                Some(&network),
            )
            .await["id"]
            .clone();
        app.ok(&nina, assign, json!({"id": id, "u": nina.id})).await;
        app.ok(
            &nina,
            comment,
            json!({"id": id, "b": "looking", "v": "PUBLIC"}),
        )
        .await;
        app.ok(
            &nina,
            comment,
            json!({"id": id, "b": "note", "v": "INTERNAL"}),
        )
        .await;
        ids.push(id);
    }

    let cost = |who, query, variables| warm_cost(&app, who, query, variables);
    let costs = vec![
        // The queue; its statistics; the page; its count; comment counts
        // with the newest comments; people; teams.
        ("board", cost(&nina, BOARD, json!({"q": network})).await, 7),
        // The queues; their count; teams; all queues' statistics.
        ("queues", cost(&nina, QUEUES, json!({})).await, 4),
        // The page; its count; comment counts; people; queues.
        (
            "my work",
            cost(&nina, MY_WORK, json!({"me": nina.id})).await,
            5,
        ),
        // The page; its count; comment counts with the newest; people; queues.
        ("my requests", cost(&rita, MY_REQUESTS, json!({})).await, 5),
        // The ticket; comments; their count; history; its count; the
        // attachments of the ticket and of its comments; people.
        (
            "detail",
            cost(&rita, DETAIL, json!({"id": ids[0]})).await,
            7,
        ),
        // The events; their tickets; people.
        ("feed", cost(&admin, FEED, json!({})).await, 3),
    ];
    println!("statements per list (list, counted, expected): {costs:?}");
    for (list, counted, expected) in &costs {
        assert_eq!(counted, expected, "{list}: {costs:?}");
    }
}

/// The statements `query` costs once the viewer is known: run once to make
/// them so, then counted.
async fn warm_cost(app: &TestApp, who: &Person, query: &str, variables: serde_json::Value) -> u64 {
    app.ok(who, query, variables.clone()).await;
    let before = app.statements().await;
    app.ok(who, query, variables).await;
    app.statements().await - before
}
