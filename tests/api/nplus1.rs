//! No N+1: a page of 100 tickets with its relations costs the same SQL
//! statements as a page of 1.

use futures_util::future::join_all;
use itsm::auth::Role;
use serde_json::json;

use crate::helpers::{Backend, spawn_app_with};

crate::on_both_backends!(a_queue_page_of_100_costs_the_same_statements_as_a_page_of_1);

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
