//! What a request may cost: every list priced before anything runs, a budget
//! of statements and rows, a bounded share of the pool, a rate limit in cost
//! points, and the cost of each response in `extensions.cost`.

use futures_util::future::join_all;
use itsm::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Person, Proxy, TestApp, TestDatabase, WsClient, error_code, postgres_socket,
    postgres_url, spawn_app, spawn_app_with, spawn_on_url, via_proxy,
};

crate::on_both_backends!(
    every_list_is_priced_and_type_cycles_are_refused_before_any_sql,
    responses_carry_their_requested_and_actual_cost,
    a_request_over_its_budget_stops_with_budget_exceeded,
    a_request_uses_at_most_its_share_of_the_pool,
    the_rate_limit_is_counted_in_cost_points_per_caller,
    a_subscription_spends_its_budget_per_event,
);

/// A desk with an agent, a requester and `tickets` tickets in one queue.
async fn desk(app: &TestApp, tickets: usize) -> (Person, Person) {
    let admin = app.person("cost-admin", Role::Admin).await;
    let agent = app.person("cost-agent", Role::Agent).await;
    let requester = app.person("cost-requester", Role::Requester).await;
    let (_, queue) = app.team_with_queue(&admin, "Cost desk", &[&agent]).await;
    for i in 0..tickets {
        app.incident(
            &requester,
            &format!("ticket {i}"),
            "LOW",
            "LOW",
            Some(&queue),
        )
        .await;
    }
    (agent, requester)
}

async fn every_list_is_priced_and_type_cycles_are_refused_before_any_sql(backend: Backend) {
    let app = spawn_app(backend).await;
    let (agent, requester) = desk(&app, 2).await;
    let priced_out = [
        // The cycle of the finding: ticket → service → openTickets → ticket …
        "{ tickets { nodes { service { openTickets { nodes { service { openTickets { nodes { id } } } } } } } } }",
        "{ tickets(first: 100) { nodes { linkedTickets { linkedTickets { id } } } } }",
        "{ tickets(first: 50) { nodes { approvals { approver { id } } tasks { title } } } }",
        "{ teams(first: 100) { nodes { members(first: 100) { nodes { id } } } } }",
        "{ myApprovals { ticket { linkedTickets { number } } } }",
        "{ services(first: 100) { nodes { catalogItems(first: 100) { nodes { form { key } } } } } }",
    ];
    for who in [&requester, &agent] {
        // What a request costs in SQL before any resolver runs (signing in).
        let before = app.statements().await;
        app.ok(who, "{ __typename }", json!({})).await;
        let baseline = app.statements().await - before;
        for query in priced_out {
            let before = app.statements().await;
            let (status, body) = app.graphql(query, Some(&who.token)).await;
            // Refused before it ran: a request error.
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(
                error_code(&body),
                Some("GRAPHQL_VALIDATION_FAILED"),
                "{query}: {body}"
            );
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains("too complex"), "{message}");
            assert_eq!(
                app.statements().await - before,
                baseline,
                "nothing ran: {query}"
            );
        }
    }
    // Ordinary pages stay well inside the limit.
    app.ok(
        &agent,
        "{ tickets(first: 100) { nodes { id title status assignee { displayName } } } }",
        json!({}),
    )
    .await;
}

fn cost(body: &Value) -> &Value {
    &body["extensions"]["cost"]
}

async fn responses_carry_their_requested_and_actual_cost(backend: Backend) {
    let app = spawn_app(backend).await;
    let (agent, _) = desk(&app, 3).await;
    let (_, body) = app
        .graphql(
            "{ tickets(first: 10) { nodes { id title } } }",
            Some(&agent.token),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    // tickets: 1 + 10 rows × (nodes 1 + id 1 + title 1)
    assert_eq!(cost(&body)["requested"], 31, "{body}");
    // What came back: tickets, nodes, and id and title of 3 tickets.
    assert_eq!(cost(&body)["actual"], 8, "{body}");
    assert_eq!(cost(&body)["limit"], 5000, "{body}");
    assert!(
        cost(&body)["statements"].as_u64().is_some_and(|n| n >= 1),
        "{body}"
    );
    assert!(
        cost(&body)["rows"].as_u64().is_some_and(|n| n >= 3),
        "{body}"
    );

    // A mutation's statements count too, those in its transaction included.
    let (_, body) = app
        .graphql(
            "mutation { createIncident(input: {title: \"Counted\", impact: LOW, urgency: LOW}) { ticket { id } } }",
            Some(&agent.token),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(
        cost(&body)["statements"].as_u64().is_some_and(|n| n >= 3),
        "{body}"
    );

    // Over the socket, each event carries its own.
    let mut ws = WsClient::signed_in(&app, &agent).await;
    ws.subscribe("q", "{ tickets(first: 10) { nodes { id } } }", json!({}))
        .await;
    let answer = ws.next_of("q").await;
    assert_eq!(
        answer["payload"]["extensions"]["cost"]["requested"], 21,
        "{answer}"
    );
}

async fn a_request_over_its_budget_stops_with_budget_exceeded(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &["--request-max-rows", "20", "--request-max-statements", "4"],
    )
    .await;
    let (agent, _) = desk(&app, 30).await;
    // Thirty rows asked for, twenty allowed.
    let error = app
        .fails(&agent, "{ tickets(first: 30) { nodes { id } } }", json!({}))
        .await;
    assert_eq!(error["extensions"]["code"], "BUDGET_EXCEEDED", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("rows"),
        "{error}"
    );
    // Many relations: more statements than four.
    let error = app
        .fails(
            &agent,
            "{ tickets(first: 5) { nodes { requester { id } queue { name team { name } } commentCount approvals { state } tasks { title } linkedTickets { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "BUDGET_EXCEEDED", "{error}");
    // Inside the budget all is well.
    let (_, body) = app
        .graphql("{ tickets(first: 5) { nodes { id } } }", Some(&agent.token))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(
        cost(&body)["statements"].as_u64().is_some_and(|n| n <= 4),
        "{body}"
    );
}

async fn a_request_uses_at_most_its_share_of_the_pool(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            "--request-max-connections",
            "1",
            "--db-max-connections",
            "3",
        ],
    )
    .await;
    let (agent, requester) = desk(&app, 5).await;
    let heavy = format!(
        "{{ {} }}",
        (0..8)
            .map(|i| format!("a{i}: tickets(first: 5) {{ nodes {{ id requester {{ displayName }} commentCount }} }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (_, body) = app.graphql(&heavy, Some(&agent.token)).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(cost(&body)["peakConnections"], 1, "{body}");

    // Heavy requests in parallel; a light one among them still succeeds.
    let heavy_runs = (0..8).map(|_| app.graphql(&heavy, Some(&agent.token)));
    let light = app.graphql(
        "{ tickets(first: 1) { nodes { title } } }",
        Some(&requester.token),
    );
    let (heavy_answers, (status, light_answer)) = tokio::join!(join_all(heavy_runs), light);
    assert_eq!(status, StatusCode::OK, "{light_answer}");
    assert!(light_answer.get("errors").is_none(), "{light_answer}");
    for (status, body) in heavy_answers {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        assert!(
            cost(&body)["peakConnections"]
                .as_u64()
                .is_some_and(|n| n <= 1),
            "{body}"
        );
    }
}

async fn the_rate_limit_is_counted_in_cost_points_per_caller(backend: Backend) {
    let app = spawn_app_with(backend, &["--rate-limit", "1000"]).await;
    let (agent, requester) = desk(&app, 2).await;
    // 1 + 100 × 3 = 301 points each: three fit in 1,000, a fourth does not.
    let query = "{ tickets(first: 100) { nodes { id title } } }";
    for _ in 0..3 {
        let (status, body) = app.graphql(query, Some(&agent.token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&agent.token)
        .json(&json!({"query": query}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], retry_after);
    // A cheap request still fits what is left; another caller has a bucket of their own.
    let (status, _) = app.graphql("{ viewer { id } }", Some(&agent.token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.graphql(query, Some(&requester.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The socket charges the same bucket.
    let mut ws = WsClient::signed_in(&app, &agent).await;
    ws.subscribe("q", query, json!({})).await;
    let answer = ws.next_of("q").await;
    assert_eq!(answer["payload"]["data"], Value::Null, "{answer}");
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{answer}"
    );
}

/// A database that does not hand out a connection in time is a 503 the
/// client may retry, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ITSM_TEST_POSTGRES_URL"]
async fn a_database_that_does_not_answer_in_time_gets_503_with_retry_after() {
    let admin = postgres_url();
    let db = TestDatabase::create(Backend::Postgres).await;
    let proxy = Proxy::start(postgres_socket(&admin)).await;
    let url = via_proxy(&db.url, proxy.address);
    let app = spawn_on_url(db, &url, &["--db-acquire-timeout", "1s"]).await;
    let agent = app.person("waiting", Role::Agent).await;
    proxy.stall();
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&agent.token)
        .json(&json!({"query": "{ tickets { totalCount } }"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get("retry-after").is_some());
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), Some("SERVICE_UNAVAILABLE"), "{body}");
    proxy.restore();
}

/// Each event of a subscription is a request of its own: a long-lived
/// subscription never runs out of budget, however many events it delivers.
async fn a_subscription_spends_its_budget_per_event(backend: Backend) {
    let app = spawn_app_with(backend, &["--request-max-statements", "6"]).await;
    let admin = app.person("sub-admin", Role::Admin).await;
    let agent = app.person("sub-agent", Role::Agent).await;
    let requester = app.person("sub-requester", Role::Requester).await;
    let (_, queue) = app.team_with_queue(&admin, "Budget desk", &[&agent]).await;
    // Start after the newest event so far: what follows is replayed or
    // delivered live, whenever the subscription is in place.
    app.incident(&requester, "before", "LOW", "LOW", Some(&queue))
        .await;
    let events = app
        .ok(
            &agent,
            "{ ticketEvents(first: 100) { nodes { cursor } } }",
            json!({}),
        )
        .await;
    let after = events["ticketEvents"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.last())
        .map(|node| node["cursor"].clone())
        .expect("an event");
    let mut ws = WsClient::signed_in(&app, &agent).await;
    ws.subscribe(
        "board",
        "subscription($q: ID!, $after: String) { queueUpdates(queueId: $q, after: $after) { seq kind ticket { number requester { displayName } queue { name } } } }",
        json!({"q": queue, "after": after}),
    )
    .await;
    for i in 0..12 {
        app.incident(
            &requester,
            &format!("event {i}"),
            "LOW",
            "LOW",
            Some(&queue),
        )
        .await;
    }
    let mut delivered = 0;
    while delivered < 12 {
        let message = ws.next_of("board").await;
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        if message["payload"]["data"]["queueUpdates"]["kind"] == "CREATED" {
            delivered += 1;
        }
    }
}
