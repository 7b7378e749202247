//! Outbound webhooks through the real server and a real receiver: signed
//! Standard Webhooks deliveries in log order, the endpoint's filter and
//! work-note rule, retries through failures and stalls without loss or
//! reordering, failing and resuming, pausing, rewinding, secret rotation,
//! the destination allow-list, and who may manage endpoints.

use std::time::Duration;

use itsm::auth::Role;
use serde_json::{Value, json};

use crate::{
    cli::Served,
    helpers::{
        Answer, Backend, Person, Receiver, TEST_SECRET, TestApp, TestDatabase, spawn_app_with,
        spawn_on, test_token,
    },
};

crate::on_both_backends!(
    events_arrive_signed_in_log_order_with_the_ticket_and_its_changes,
    work_notes_reach_only_endpoints_that_include_internal_and_filters_apply,
    failures_and_stalls_are_retried_until_the_receiver_recovers_with_nothing_lost_or_reordered,
    an_endpoint_whose_retries_run_out_is_failing_until_an_admin_resumes_it,
    a_paused_endpoint_keeps_its_events_until_resumed,
    redelivery_rewinds_and_a_rotated_secret_signs_beside_the_new_one,
    destinations_outside_the_allow_list_are_refused,
    only_admins_manage_webhooks,
    a_replica_killed_mid_delivery_is_taken_over_without_losing_an_event,
    two_replicas_deliver_each_event_once_in_order,
    delivery_attempts_older_than_the_retention_are_deleted,
    with_no_endpoint_active_events_start_no_look_and_a_new_endpoint_is_served_at_once,
);

const CREATE: &str = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret webhook { id url status events kinds includeInternal queues { id } position version } } }";
const COMMENT: &str = "mutation($id: ID!, $body: String!, $v: Visibility!) { addComment(input: {ticketId: $id, body: $body, visibility: $v}) { comment { id } } }";
const WEBHOOK: &str = "query($id: ID!) { node(id: $id) { ... on Webhook { id status failures lastError retryingSince nextAttemptAt lastSuccessAt backlog position version previousSecretExpiresAt } } }";
const DELIVERIES: &str = "query($id: ID!) { webhookDeliveries(webhookId: $id, last: 100) { totalCount nodes { seq eventCursor eventKind messageId attempt outcome responseStatus latencyMs error attemptedAt ticket { number } } } }";

/// The test servers send webhooks to the loopback receiver, quickly retried.
const FAST: [&str; 8] = [
    "--webhook-allow",
    "127.0.0.1",
    "--webhook-timeout",
    "500ms",
    "--webhook-retry-base",
    "50ms",
    "--webhook-retry-max",
    "200ms",
];

async fn app_with(backend: Backend, extra: &[&str]) -> TestApp {
    let mut args = FAST.to_vec();
    args.extend_from_slice(extra);
    spawn_app_with(backend, &args).await
}

/// Registers `url` with `input`'s other fields; returns `(id, secret)`.
async fn register(app: &TestApp, admin: &Person, url: &str, input: Value) -> (String, String) {
    let mut input = input;
    input["url"] = json!(url);
    let made = app.ok(admin, CREATE, json!({"input": input})).await;
    let made = &made["createWebhook"];
    assert_eq!(made["webhook"]["status"], "ACTIVE", "{made}");
    (
        made["webhook"]["id"].as_str().expect("id").to_owned(),
        made["secret"].as_str().expect("secret").to_owned(),
    )
}

/// The sequence numbers of the events an integration reads for `ticket`, by
/// visibility (`None`: all).
async fn logged(app: &TestApp, ticket: &str, visibility: Option<&str>) -> Vec<i64> {
    let reader = app.person("log.reader", Role::Admin).await;
    let page = app
        .ok(
            &reader,
            "query($t: ID!) { ticketEvents(ticketId: $t, first: 100) { nodes { seq visibility } } }",
            json!({"t": ticket}),
        )
        .await;
    page["ticketEvents"]["nodes"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|n| visibility.is_none_or(|v| n["visibility"] == v))
        .filter_map(|n| n["seq"].as_i64())
        .collect()
}

async fn webhook(app: &TestApp, admin: &Person, id: &str) -> Value {
    app.ok(admin, WEBHOOK, json!({"id": id})).await["node"].clone()
}

/// Reads the endpoint until `done` holds (the worker writes after the
/// receiver answered, so a test that saw the request waits for the record).
async fn webhook_until(
    app: &TestApp,
    admin: &Person,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let hook = webhook(app, admin, id).await;
        if done(&hook) {
            return hook;
        }
        assert!(tokio::time::Instant::now() < deadline, "never so: {hook}");
        tokio::task::yield_now().await;
    }
}

async fn deliveries(app: &TestApp, admin: &Person, id: &str) -> Vec<Value> {
    app.ok(admin, DELIVERIES, json!({"id": id})).await["webhookDeliveries"]["nodes"]
        .as_array()
        .expect("deliveries")
        .clone()
}

async fn events_arrive_signed_in_log_order_with_the_ticket_and_its_changes(backend: Backend) {
    let app = app_with(backend, &[]).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let agent = app.person("alex.agent", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&agent]).await;
    let mut receiver = Receiver::start().await;
    let (id, secret) = register(
        &app,
        &admin,
        &receiver.url(),
        json!({"description": "chat bridge"}),
    )
    .await;
    assert!(secret.starts_with("whsec_"), "{secret}");

    let ticket = app
        .incident(&agent, "Switch down in B2", "HIGH", "HIGH", Some(&queue))
        .await;
    let ticket_id = ticket["id"].as_str().expect("id");
    app.ok(
        &agent,
        COMMENT,
        json!({"id": ticket_id, "body": "On it", "v": "PUBLIC"}),
    )
    .await;
    app.ok(
        &agent,
        "mutation($id: ID!) { transitionTicket(input: {id: $id, to: IN_PROGRESS}) { ticket { status } } }",
        json!({"id": ticket_id}),
    )
    .await;
    let (_, attached) = crate::attachments::upload(
        &app,
        &agent,
        ticket_id,
        None,
        "trace.txt",
        "text/plain",
        b"port 12 down",
    )
    .await;
    let attachment = attached["data"]["addAttachment"]["attachment"]["id"].clone();

    let expected = logged(&app, ticket_id, Some("PUBLIC")).await;
    let got = receiver.until_accepted(expected.len()).await;
    let seqs: Vec<i64> = got.iter().map(|r| r.seq()).collect();
    assert_eq!(seqs, expected, "every public event, once, in log order");
    for request in &got {
        assert!(request.signed_with(&secret), "{request:?}");
        assert!(!request.signed_with("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert_eq!(request.id, format!("evt_{}", request.seq()));
        let data = &request.body["data"];
        assert_eq!(
            request.body["type"],
            format!(
                "ticket.{}",
                data["kind"].as_str().expect("kind").to_lowercase()
            )
        );
        assert_eq!(data["ticket"]["id"], ticket_id);
        assert_eq!(data["ticket"]["number"], ticket["number"]);
        assert_eq!(data["ticket"]["queue"]["name"], "Network");
        assert_eq!(data["actor"]["id"], agent.id, "{data}");
        assert_eq!(data["visibility"], "PUBLIC");
    }
    let kinds: Vec<&str> = got
        .iter()
        .map(|r| r.body["data"]["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds.first(), Some(&"CREATED"), "{kinds:?}");
    let comment = got
        .iter()
        .find(|r| r.body["data"]["kind"] == "COMMENT_ADDED")
        .expect("the comment");
    assert_eq!(comment.body["data"]["comment"]["body"], "On it");
    assert_eq!(comment.body["data"]["comment"]["visibility"], "PUBLIC");
    let moved = got
        .iter()
        .find(|r| r.body["data"]["kind"] == "STATUS_CHANGED")
        .expect("the transition");
    assert_eq!(
        moved.body["data"]["changes"][0],
        json!({"field": "status", "from": "NEW", "to": "IN_PROGRESS"})
    );
    assert_eq!(moved.body["data"]["ticket"]["status"], "IN_PROGRESS");
    let file = got
        .iter()
        .find(|r| r.body["data"]["kind"] == "ATTACHMENT_ADDED")
        .expect("the attachment");
    assert_eq!(
        file.body["data"]["changes"],
        json!([
            {"field": "attachment", "from": null, "to": attachment},
            {"field": "filename", "from": null, "to": "trace.txt"}
        ])
    );

    // The record: one successful first attempt per event, and the endpoint
    // positioned after the last.
    let last = *expected.last().expect("events");
    let hook = webhook_until(&app, &admin, &id, |h| {
        h["lastSuccessAt"].is_string() && h["backlog"] == 0
    })
    .await;
    assert_eq!(hook["failures"], 0);
    let record = deliveries(&app, &admin, &id).await;
    let recorded: Vec<i64> = record.iter().filter_map(|d| d["seq"].as_i64()).collect();
    assert_eq!(recorded, expected, "{record:?}");
    for attempt in &record {
        assert_eq!(attempt["outcome"], "SUCCEEDED");
        assert_eq!(attempt["attempt"], 1);
        assert_eq!(attempt["responseStatus"], 204);
        assert_eq!(attempt["ticket"]["number"], ticket["number"]);
        assert!(attempt["latencyMs"].as_i64().is_some_and(|ms| ms >= 0));
        assert!(attempt["error"].is_null());
    }
    assert_eq!(record.last().expect("one")["seq"], last);
}

async fn work_notes_reach_only_endpoints_that_include_internal_and_filters_apply(backend: Backend) {
    let app = app_with(backend, &[]).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let agent = app.person("alex.agent", Role::Agent).await;
    let (_, network) = app.team_with_queue(&admin, "Network", &[&agent]).await;
    let (_, desk) = app.team_with_queue(&admin, "Desk", &[&agent]).await;
    let mut public = Receiver::start().await;
    let mut internal = Receiver::start().await;
    let mut comments_in_network = Receiver::start().await;
    register(&app, &admin, &public.url(), json!({})).await;
    register(
        &app,
        &admin,
        &internal.url(),
        json!({"includeInternal": true}),
    )
    .await;
    let (_, _) = register(
        &app,
        &admin,
        &comments_in_network.url(),
        json!({"events": ["COMMENT_ADDED"], "queueIds": [network], "kinds": ["INCIDENT"], "includeInternal": true}),
    )
    .await;

    let elsewhere = app
        .incident(&agent, "Printer jam", "LOW", "LOW", Some(&desk))
        .await;
    app.ok(
        &agent,
        COMMENT,
        json!({"id": elsewhere["id"], "body": "desk note", "v": "INTERNAL"}),
    )
    .await;
    let ticket = app
        .incident(&agent, "Switch down", "HIGH", "HIGH", Some(&network))
        .await;
    let ticket_id = ticket["id"].as_str().expect("id");
    app.ok(
        &agent,
        COMMENT,
        json!({"id": ticket_id, "body": "root password is in the vault", "v": "INTERNAL"}),
    )
    .await;
    app.ok(
        &agent,
        COMMENT,
        json!({"id": ticket_id, "body": "We are on it", "v": "PUBLIC"}),
    )
    .await;

    // Everything, work notes included, in order.
    let mut all = logged(&app, elsewhere["id"].as_str().expect("id"), None).await;
    all.extend(logged(&app, ticket_id, None).await);
    let got = internal.until_accepted(all.len()).await;
    assert_eq!(got.iter().map(|r| r.seq()).collect::<Vec<_>>(), all);
    let note = got
        .iter()
        .find(|r| r.body["data"]["comment"]["body"] == "root password is in the vault")
        .expect("the work note reaches the internal endpoint");
    assert_eq!(note.body["data"]["visibility"], "INTERNAL");

    // The public endpoint gets the same stream without the work notes: the
    // public comment comes after the note, so by the time it arrives the
    // note would have.
    let mut shown = logged(&app, elsewhere["id"].as_str().expect("id"), Some("PUBLIC")).await;
    shown.extend(logged(&app, ticket_id, Some("PUBLIC")).await);
    let got = public.until_accepted(shown.len()).await;
    assert_eq!(got.iter().map(|r| r.seq()).collect::<Vec<_>>(), shown);
    assert!(
        got.iter().all(|r| r.body["data"]["visibility"] == "PUBLIC"
            && !String::from_utf8_lossy(&r.raw).contains("vault")),
        "no work note reaches an endpoint without includeInternal"
    );

    // Comments on Network incidents only: the desk's note is not one.
    let got = comments_in_network.until_accepted(2).await;
    let bodies: Vec<&str> = got
        .iter()
        .map(|r| r.body["data"]["comment"]["body"].as_str().expect("body"))
        .collect();
    assert_eq!(bodies, ["root password is in the vault", "We are on it"]);
}

async fn failures_and_stalls_are_retried_until_the_receiver_recovers_with_nothing_lost_or_reordered(
    backend: Backend,
) {
    let app = app_with(backend, &[]).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let agent = app.person("alex.agent", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&agent]).await;
    let mut receiver = Receiver::start().await;
    // The first attempt fails, the second stalls past the 500 ms timeout,
    // the third gets a 503, then everything is accepted.
    receiver.script(&[
        Answer::Status(500),
        Answer::Stall(Duration::from_secs(3)),
        Answer::Status(503),
    ]);
    let (id, secret) = register(&app, &admin, &receiver.url(), json!({})).await;
    let mut tickets = Vec::new();
    for n in 0..3 {
        let ticket = app
            .incident(&agent, &format!("Outage {n}"), "HIGH", "LOW", Some(&queue))
            .await;
        tickets.push(ticket["id"].as_str().expect("id").to_owned());
    }
    let mut expected = Vec::new();
    for ticket in &tickets {
        expected.extend(logged(&app, ticket, Some("PUBLIC")).await);
    }
    expected.sort_unstable();

    let got = receiver.until_accepted(expected.len()).await;
    // The first event was tried four times with one webhook-id; nothing
    // after it was sent before it succeeded.
    let first: Vec<&crate::helpers::Received> = got.iter().take(4).collect();
    assert!(
        first
            .iter()
            .all(|r| r.seq() == expected[0] && r.signed_with(&secret)),
        "{first:?}"
    );
    assert_eq!(
        first.iter().map(|r| r.answer).collect::<Vec<_>>(),
        [
            Answer::Status(500),
            Answer::Stall(Duration::from_secs(3)),
            Answer::Status(503),
            Answer::Accept
        ]
    );
    let accepted: Vec<i64> = got
        .iter()
        .filter(|r| r.accepted())
        .map(|r| r.seq())
        .collect();
    assert_eq!(accepted, expected, "nothing lost, repeated or reordered");
    let sent: Vec<i64> = got.iter().map(|r| r.seq()).collect();
    assert!(
        sent.windows(2).all(|w| w[0] <= w[1]),
        "never ahead of a failed event: {sent:?}"
    );

    let hook = webhook_until(&app, &admin, &id, |h| h["backlog"] == 0).await;
    assert_eq!(hook["failures"], 0, "{hook}");
    assert!(hook["lastError"].is_null());
    let record = deliveries(&app, &admin, &id).await;
    let tries: Vec<(i64, &str, Value)> = record
        .iter()
        .take(4)
        .map(|d| {
            (
                d["attempt"].as_i64().expect("attempt"),
                d["outcome"].as_str().expect("outcome"),
                d["responseStatus"].clone(),
            )
        })
        .collect();
    assert_eq!(
        tries,
        [
            (1, "FAILED", json!(500)),
            (2, "FAILED", Value::Null),
            (3, "FAILED", json!(503)),
            (4, "SUCCEEDED", json!(204)),
        ]
    );
    assert!(
        record[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within 500 ms")),
        "{}",
        record[1]
    );
    assert!(
        record[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{}",
        record[0]
    );
    assert!(
        record
            .iter()
            .all(|d| d["messageId"] == format!("evt_{}", d["seq"]))
    );
    assert_eq!(
        app.metric("itsm_webhook_deliveries_total{outcome=\"failed\"}")
            .await,
        3
    );
    assert_eq!(
        app.metric("itsm_webhook_deliveries_total{outcome=\"succeeded\"}")
            .await,
        expected.len() as u64
    );
    assert_eq!(
        app.metric("itsm_webhook_delivery_delay_seconds_count")
            .await,
        expected.len() as u64
    );
}

async fn an_endpoint_whose_retries_run_out_is_failing_until_an_admin_resumes_it(backend: Backend) {
    let app = app_with(backend, &["--webhook-retry-for", "300ms"]).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let agent = app.person("alex.agent", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&agent]).await;
    let mut receiver = Receiver::start().await;
    receiver.otherwise(Answer::Status(502));
    let (id, _) = register(&app, &admin, &receiver.url(), json!({})).await;
    let ticket = app
        .incident(&agent, "Core router", "HIGH", "HIGH", Some(&queue))
        .await;
    let expected = logged(&app, ticket["id"].as_str().expect("id"), Some("PUBLIC")).await;

    let hook = webhook_until(&app, &admin, &id, |h| h["status"] == "FAILING").await;
    assert!(hook["failures"].as_i64().is_some_and(|n| n >= 2), "{hook}");
    assert!(
        hook["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("502")),
        "{hook}"
    );
    assert!(hook["nextAttemptAt"].is_null(), "no more attempts: {hook}");
    assert_eq!(app.metric("itsm_webhooks_marked_failing_total").await, 1);
    assert_eq!(app.metric("itsm_webhooks{status=\"FAILING\"}").await, 1);
    assert_eq!(app.metric("itsm_webhooks{status=\"ACTIVE\"}").await, 0);
    let record = deliveries(&app, &admin, &id).await;
    assert!(
        record
            .iter()
            .all(|d| d["outcome"] == "FAILED" && d["seq"] == expected[0])
    );
    let attempts: Vec<i64> = record
        .iter()
        .filter_map(|d| d["attempt"].as_i64())
        .collect();
    assert_eq!(attempts, (1..=attempts.len() as i64).collect::<Vec<_>>());

    // Resumed with the receiver back, every event arrives, the first one
    // included, in order.
    receiver.otherwise(Answer::Accept);
    let resumed = app
        .ok(
            &admin,
            "mutation($id: ID!) { resumeWebhook(input: {id: $id}) { webhook { status failures } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        resumed["resumeWebhook"]["webhook"],
        json!({"status": "ACTIVE", "failures": 0})
    );
    let mut got = receiver.until_accepted(expected.len()).await;
    got.retain(|r| r.accepted());
    assert_eq!(got.iter().map(|r| r.seq()).collect::<Vec<_>>(), expected);
}

async fn a_paused_endpoint_keeps_its_events_until_resumed(backend: Backend) {
    let app = app_with(backend, &[]).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let agent = app.person("alex.agent", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&agent]).await;
    let mut paused = Receiver::start().await;
    let mut running = Receiver::start().await;
    let (id, _) = register(&app, &admin, &paused.url(), json!({})).await;
    register(&app, &admin, &running.url(), json!({})).await;
    let status = app
        .ok(
            &admin,
            "mutation($id: ID!) { pauseWebhook(input: {id: $id}) { webhook { status } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(status["pauseWebhook"]["webhook"]["status"], "PAUSED");

    let ticket = app
        .incident(&agent, "Wifi flaky", "LOW", "HIGH", Some(&queue))
        .await;
    let expected = logged(&app, ticket["id"].as_str().expect("id"), Some("PUBLIC")).await;
    // The other endpoint has them all; the paused one holds them as backlog.
    running.until_accepted(expected.len()).await;
    let hook = webhook(&app, &admin, &id).await;
    assert_eq!(hook["status"], "PAUSED");
    assert!(
        hook["backlog"]
            .as_i64()
            .is_some_and(|n| n >= expected.len() as i64),
        "{hook}"
    );
    assert!(deliveries(&app, &admin, &id).await.is_empty());

    app.ok(
        &admin,
        "mutation($id: ID!) { resumeWebhook(input: {id: $id}) { webhook { status } } }",
        json!({"id": id}),
    )
    .await;
    let got = paused.until_accepted(expected.len()).await;
    assert_eq!(got.iter().map(|r| r.seq()).collect::<Vec<_>>(), expected);
}

async fn redelivery_rewinds_and_a_rotated_secret_signs_beside_the_new_one(backend: Backend) {
    let app = app_with(backend, &[]).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let agent = app.person("alex.agent", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&agent]).await;
    let mut receiver = Receiver::start().await;
    let (id, old) = register(&app, &admin, &receiver.url(), json!({})).await;
    let ticket = app
        .incident(&agent, "VPN down", "HIGH", "MEDIUM", Some(&queue))
        .await;
    let expected = logged(&app, ticket["id"].as_str().expect("id"), Some("PUBLIC")).await;
    let first = receiver.until_accepted(expected.len()).await;
    webhook_until(&app, &admin, &id, |h| h["backlog"] == 0).await;

    let rotated = app
        .ok(
            &admin,
            "mutation($id: ID!) { rotateWebhookSecret(input: {id: $id}) { secret webhook { previousSecretExpiresAt version } } }",
            json!({"id": id}),
        )
        .await;
    let new = rotated["rotateWebhookSecret"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert_ne!(new, old);
    assert!(rotated["rotateWebhookSecret"]["webhook"]["previousSecretExpiresAt"].is_string());

    // Rewound to the first event: every event comes again, with the same
    // webhook-ids, now signed with both secrets.
    let record = deliveries(&app, &admin, &id).await;
    let from = record[0]["eventCursor"].as_str().expect("cursor");
    let rewound = app
        .ok(
            &admin,
            "mutation($id: ID!, $from: String!) { redeliverWebhook(input: {id: $id, fromCursor: $from}) { webhook { backlog } } }",
            json!({"id": id, "from": from}),
        )
        .await;
    assert!(
        rewound["redeliverWebhook"]["webhook"]["backlog"]
            .as_i64()
            .is_some_and(|n| n >= expected.len() as i64)
    );
    let again = receiver.until_accepted(expected.len()).await;
    assert_eq!(
        again.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        first.iter().map(|r| r.id.clone()).collect::<Vec<_>>()
    );
    for request in &again {
        assert!(request.signed_with(&new) && request.signed_with(&old));
        assert_eq!(request.signature.split(' ').count(), 2);
    }

    let bad = app
        .fails(
            &admin,
            "mutation($id: ID!) { redeliverWebhook(input: {id: $id, fromCursor: \"nonsense\"}) { webhook { id } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(bad["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(bad["extensions"]["field"], "fromCursor");
}

async fn destinations_outside_the_allow_list_are_refused(backend: Backend) {
    // The default allow-list: public addresses only.
    let app = spawn_app_with(backend, &[]).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/hook",
        "http://192.168.1.1/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00::1]/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http://user:pw@example.com/hook",
        "not a url",
    ] {
        let refused = app
            .fails(&admin, CREATE, json!({"input": {"url": url}}))
            .await;
        assert_eq!(
            refused["extensions"]["code"], "BAD_USER_INPUT",
            "{url}: {refused}"
        );
        assert_eq!(refused["extensions"]["field"], "url", "{url}");
    }
    let listed = app
        .ok(&admin, "{ webhooks(first: 10) { totalCount } }", json!({}))
        .await;
    assert_eq!(listed["webhooks"]["totalCount"], 0, "nothing was written");

    // An update is held to the same rule.
    let allowed = spawn_app_with(backend, &["--webhook-allow", "public,127.0.0.1"]).await;
    let admin = allowed.person("ada.admin", Role::Admin).await;
    let (id, _) = register(&allowed, &admin, "http://127.0.0.1:9/hook", json!({})).await;
    let refused = allowed
        .fails(
            &admin,
            "mutation($id: ID!) { updateWebhook(input: {id: $id, url: \"http://10.1.2.3/\"}) { webhook { url } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(refused["extensions"]["code"], "BAD_USER_INPUT");
}

async fn only_admins_manage_webhooks(backend: Backend) {
    let app = app_with(backend, &[]).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let receiver = Receiver::start().await;
    let (id, _) = register(&app, &admin, &receiver.url(), json!({})).await;
    for (subject, role) in [
        ("mona.manager", Role::Manager),
        ("alex.agent", Role::Agent),
        ("ivan.integration", Role::Integration),
        ("rita.requester", Role::Requester),
    ] {
        let who = app.person(subject, role).await;
        let refused = app
            .fails(&who, CREATE, json!({"input": {"url": receiver.url()}}))
            .await;
        assert_eq!(refused["extensions"]["code"], "FORBIDDEN", "{subject}");
        let refused = app
            .fails(&who, "{ webhooks(first: 5) { totalCount } }", json!({}))
            .await;
        assert_eq!(refused["extensions"]["code"], "FORBIDDEN", "{subject}");
        let refused = app
            .fails(
                &who,
                "mutation($id: ID!) { deleteWebhook(input: {id: $id}) { deletedWebhookId } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(refused["extensions"]["code"], "FORBIDDEN", "{subject}");
        let seen = app.ok(&who, WEBHOOK, json!({"id": id})).await;
        assert!(seen["node"].is_null(), "{subject} sees no webhook");
    }
    let deleted = app
        .ok(
            &admin,
            "mutation($id: ID!) { deleteWebhook(input: {id: $id}) { deletedWebhookId } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(deleted["deleteWebhook"]["deletedWebhookId"], id);
    let gone = app.fails(&admin, DELIVERIES, json!({"id": id})).await;
    assert_eq!(gone["extensions"]["code"], "NOT_FOUND");
}

/// Sends `query` to a server started as its own process; the data, or a panic.
async fn served_ok(served: &Served, token: &str, query: &str, variables: Value) -> Value {
    let (status, body) = served
        .graphql_with(query, &variables, token, "webhook-test")
        .await;
    assert!(
        status.is_success() && body["errors"].is_null(),
        "{status}: {body}"
    );
    body["data"].clone()
}

async fn a_replica_killed_mid_delivery_is_taken_over_without_losing_an_event(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let mut receiver = Receiver::start().await;
    // The first delivery is still waiting for an answer when the replica is
    // killed; the receiver handles it (late) but the replica never hears.
    receiver.script(&[Answer::Stall(Duration::from_secs(20))]);
    let env = [
        ("ITSM_DATABASE_URL", db.url.as_str()),
        ("ITSM_JWT_SECRET", TEST_SECRET),
        ("ITSM_WEBHOOK_ALLOW", "127.0.0.1"),
        ("ITSM_WEBHOOK_TIMEOUT", "2s"),
        ("ITSM_WEBHOOK_LEASE", "6s"),
    ];
    let admin = test_token("ada.admin", Role::Admin);
    let requester = test_token("rita.requester", Role::Requester);
    let first = Served::start(db.dir(), &env, &[]);
    served_ok(
        &first,
        &admin,
        "mutation($url: String!) { createWebhook(input: {url: $url}) { webhook { id } } }",
        json!({"url": receiver.url()}),
    )
    .await;
    let mut tickets = Vec::new();
    for n in 0..3 {
        let made = served_ok(
            &first,
            &requester,
            "mutation($t: String!) { createIncident(input: {title: $t, impact: LOW, urgency: LOW}) { ticket { id } } }",
            json!({"t": format!("Laptop {n} will not boot")}),
        )
        .await;
        tickets.push(made["createIncident"]["ticket"]["id"].clone());
    }
    let stalled = receiver.next().await;
    assert_eq!(stalled.answer, Answer::Stall(Duration::from_secs(20)));
    assert!(!first.kill().success(), "killed, not stopped");

    // A new replica takes the endpoint over once the dead one's lease ends
    // and sends everything from the event that was in flight, in order.
    let second = Served::start(db.dir(), &env, &[]);
    let mut expected = Vec::new();
    for ticket in &tickets {
        let events = served_ok(
            &second,
            &admin,
            "query($t: ID!) { ticketEvents(ticketId: $t, first: 50) { nodes { seq visibility } } }",
            json!({"t": ticket}),
        )
        .await;
        expected.extend(
            events["ticketEvents"]["nodes"]
                .as_array()
                .expect("events")
                .iter()
                .filter(|n| n["visibility"] == "PUBLIC")
                .filter_map(|n| n["seq"].as_i64()),
        );
    }
    expected.sort_unstable();
    assert_eq!(stalled.seq(), expected[0], "the first event was in flight");
    let got = receiver.until_accepted(expected.len()).await;
    assert_eq!(
        got.iter().map(|r| r.seq()).collect::<Vec<_>>(),
        expected,
        "resumed at the event in flight: nothing lost, nothing out of order"
    );
    assert_eq!(
        got[0].id, stalled.id,
        "the repeat carries the same webhook-id"
    );
}

async fn two_replicas_deliver_each_event_once_in_order(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let one = spawn_on(TestDatabase::shared(&db), &FAST).await;
    let two = spawn_on(TestDatabase::shared(&db), &FAST).await;
    let admin = one.person("ada.admin", Role::Admin).await;
    let mut receiver = Receiver::start().await;
    let (id, secret) = register(&one, &admin, &receiver.url(), json!({})).await;
    let rita = one.person("rita.requester", Role::Requester).await;
    let mut tickets = Vec::new();
    for n in 0..12 {
        let replica = if n % 2 == 0 { &one } else { &two };
        let made = replica
            .ok(
                &rita,
                "mutation($t: String!) { createIncident(input: {title: $t, impact: LOW, urgency: LOW}) { ticket { id } } }",
                json!({"t": format!("Monitor {n} flickers")}),
            )
            .await;
        tickets.push(made["createIncident"]["ticket"]["id"].clone());
    }
    let mut expected = Vec::new();
    for ticket in &tickets {
        expected.extend(logged(&one, ticket.as_str().expect("id"), Some("PUBLIC")).await);
    }
    expected.sort_unstable();
    let got = receiver.until_accepted(expected.len()).await;
    assert!(got.iter().all(|r| r.accepted() && r.signed_with(&secret)));
    assert_eq!(
        got.iter().map(|r| r.seq()).collect::<Vec<_>>(),
        expected,
        "each event once, in log order, whichever replica sent it"
    );
    // Both replicas' records agree: one attempt per event.
    let hook = webhook_until(&two, &admin, &id, |h| h["backlog"] == 0).await;
    assert_eq!(hook["failures"], 0);
    let record = deliveries(&two, &admin, &id).await;
    assert_eq!(
        record
            .iter()
            .filter_map(|d| d["seq"].as_i64())
            .collect::<Vec<_>>(),
        expected
    );
}

async fn delivery_attempts_older_than_the_retention_are_deleted(backend: Backend) {
    let app = app_with(backend, &["--webhook-keep-deliveries", "1s"]).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let agent = app.person("alex.agent", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&agent]).await;
    let mut receiver = Receiver::start().await;
    let (id, _) = register(&app, &admin, &receiver.url(), json!({})).await;
    let ticket = app
        .incident(&agent, "Printer offline", "LOW", "LOW", Some(&queue))
        .await;
    let ticket_id = ticket["id"].as_str().expect("id");
    let first = logged(&app, ticket_id, Some("PUBLIC")).await;
    receiver.until_accepted(first.len()).await;
    webhook_until(&app, &admin, &id, |h| h["backlog"] == 0).await;

    // Every attempt was recorded (the cursor moves after its record); they
    // are deleted once older than a second, as the replica's counters tell.
    let attempts = app
        .metric("itsm_webhook_deliveries_total{outcome=\"succeeded\"}")
        .await
        + app
            .metric("itsm_webhook_deliveries_total{outcome=\"failed\"}")
            .await;
    assert!(attempts >= first.len() as u64, "{attempts} attempts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pruned = app.metric("itsm_webhook_deliveries_pruned_total").await;
        if pruned >= attempts {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {pruned} of {attempts} attempts deleted"
        );
        tokio::task::yield_now().await;
    }
    assert!(deliveries(&app, &admin, &id).await.is_empty());

    // Delivery goes on from where it was: the cursor is the endpoint's.
    app.ok(
        &agent,
        COMMENT,
        json!({"id": ticket_id, "body": "Toner replaced", "v": "PUBLIC"}),
    )
    .await;
    let all = logged(&app, ticket_id, Some("PUBLIC")).await;
    let next = receiver.until_accepted(all.len() - first.len()).await;
    assert_eq!(
        next.iter().map(|r| r.seq()).collect::<Vec<_>>(),
        all[first.len()..].to_vec()
    );
}

async fn with_no_endpoint_active_events_start_no_look_and_a_new_endpoint_is_served_at_once(
    backend: Backend,
) {
    // No poll within the test: only events and wake-ups start a look.
    let app = app_with(backend, &["--webhook-poll", "1h"]).await;
    let admin = app.person("ada.admin", Role::Admin).await;
    let agent = app.person("alex.agent", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Network", &[&agent]).await;
    const LOOKS: &str = "itsm_webhook_looks_total";
    const LAG: &str = "itsm_event_pump_lag_events";
    let started = app.metric_until(LOOKS, |n| n >= 1).await;

    // Ten events, each published to the worker before the next is made:
    // with no endpoint active, none of them is worth a look.
    let ticket = app
        .incident(&agent, "Switch port down", "LOW", "LOW", Some(&queue))
        .await;
    let ticket_id = ticket["id"].as_str().expect("id");
    app.metric_until(LAG, |n| n == 0).await;
    for n in 0..10 {
        app.ok(
            &agent,
            COMMENT,
            json!({"id": ticket_id, "body": format!("Checked {n}"), "v": "PUBLIC"}),
        )
        .await;
        app.metric_until(LAG, |n| n == 0).await;
    }
    assert_eq!(app.metric(LOOKS).await, started, "looks while idle");

    // A new endpoint wakes the worker: one look (two, should the queued
    // events be taken after it), and from then on every event is sent.
    let mut receiver = Receiver::start().await;
    register(&app, &admin, &receiver.url(), json!({})).await;
    let looked = app.metric_until(LOOKS, |n| n > started).await;
    assert!(looked <= started + 2, "{looked} looks after {started}");
    app.ok(
        &agent,
        COMMENT,
        json!({"id": ticket_id, "body": "Port re-enabled", "v": "PUBLIC"}),
    )
    .await;
    let all = logged(&app, ticket_id, Some("PUBLIC")).await;
    let got = receiver.until_accepted(1).await;
    assert_eq!(
        got.iter().map(|r| r.seq()).collect::<Vec<_>>(),
        vec![*all.last().expect("events")]
    );
}
