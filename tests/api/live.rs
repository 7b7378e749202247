//! Live updates: subscriptions over a real WebSocket client, the polling
//! feed, resuming with `after`, and (on PostgreSQL) replicas and late commits.

use std::time::Duration;

use itsm::auth::Role;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};

use crate::{
    helpers::{
        Backend, Person, Proxy, TestApp, TestDatabase, WsClient, count, postgres_socket,
        postgres_url, spawn_app, spawn_on, spawn_on_url, via_proxy,
    },
    tickets::id_of,
};

crate::on_both_backends!(
    a_queue_stream_sees_tickets_arrive_and_move_between_queues,
    a_ticket_stream_follows_one_ticket_for_its_agents_and_requester,
    requesters_get_replies_but_never_work_notes,
    subscribing_needs_the_right_to_read,
    after_replays_exactly_the_missed_events_then_goes_live,
    an_agent_removed_from_the_team_stops_receiving_its_queue,
    the_event_feed_query_pages_what_the_viewer_may_read,
    a_subscriber_that_stops_reading_is_cut_off_and_resumes_without_loss,
    concurrent_writers_on_two_replicas_leave_no_gap_no_repeat_and_keep_each_tickets_order,
    identical_subscriptions_of_one_viewer_share_one_execution_per_event,
    a_requester_and_an_agent_on_the_same_stream_never_share_what_they_see,
);

const EVENT: &str = "seq cursor kind changes { field from to } actor { id } occurredAt ticket { number queue { name } }";

fn queue_updates() -> String {
    format!(
        "subscription($q: ID!, $after: String) {{ queueUpdates(queueId: $q, after: $after) {{ {EVENT} }} }}"
    )
}

fn my_updates() -> String {
    format!("subscription($after: String) {{ myTicketUpdates(after: $after) {{ {EVENT} }} }}")
}

/// The first error of an operation's `error` or `next` message.
fn op_error(message: &Value) -> &Value {
    if message["type"] == "error" {
        &message["payload"][0]
    } else {
        &message["payload"]["errors"][0]
    }
}

/// The next event delivered on operation `id`.
async fn event(ws: &mut WsClient, id: &str, field: &str) -> Value {
    let message = ws.next_of(id).await;
    assert_eq!(message["type"], "next", "{message}");
    assert!(message["payload"].get("errors").is_none(), "{message}");
    message["payload"]["data"][field].clone()
}

struct Cast {
    admin: Person,
    rita: Person,
    nina: Person,
    omar: Person,
    boss: Person,
    network: String,
    desktop: String,
}

async fn cast(app: &TestApp) -> Cast {
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let nina = app.person("nina", Role::Agent).await;
    let omar = app.person("omar", Role::Agent).await;
    let boss = app.person("boss", Role::Manager).await;
    let (_, network) = app.team_with_queue(&admin, "Network", &[&nina]).await;
    let (_, desktop) = app.team_with_queue(&admin, "Desktop", &[&omar]).await;
    Cast {
        admin,
        rita,
        nina,
        omar,
        boss,
        network,
        desktop,
    }
}

/// Removes Nina from the Network team through `server`, then checks that her
/// Network subscription skips a ticket made afterwards: its next event is her
/// own ticket (still hers to see), which marks the spot.
async fn removed_from_network_sees_no_more(server: &TestApp, c: &Cast, nina: &mut WsClient) {
    let teams = server
        .ok(&c.admin, "{ teams { nodes { id name } } }", json!({}))
        .await;
    let network_team = teams["teams"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == "Network")
        .map(|t| t["id"].clone())
        .unwrap_or_default();
    server.ok(&c.admin, "mutation($t: ID!, $u: ID!) { removeTeamMember(input: {teamId: $t, userId: $u}) { team { id } } }", json!({"t": network_team, "u": c.nina.id})).await;
    server
        .incident(&c.rita, "After", "LOW", "LOW", Some(&c.network))
        .await;
    let own = server
        .incident(&c.nina, "Nina's own", "LOW", "LOW", Some(&c.network))
        .await;
    let next = event(nina, "q", "queueUpdates").await;
    assert_eq!(
        next["ticket"]["number"], own["number"],
        "the ticket created after her removal never arrived"
    );
}

async fn a_queue_stream_sees_tickets_arrive_and_move_between_queues(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = cast(&app).await;
    let mut nina = WsClient::signed_in(&app, &c.nina).await;
    nina.subscribe("q", &queue_updates(), json!({"q": c.network}))
        .await;
    let mut omar = WsClient::signed_in(&app, &c.omar).await;
    omar.subscribe("q", &queue_updates(), json!({"q": c.desktop}))
        .await;
    // Let both subscriptions reach the bus before anything happens.
    app.ok(&c.nina, "{ viewer { id } }", json!({})).await;
    app.wait_for_subscriptions(2).await;

    let ticket = app
        .incident(&c.rita, "Switch down", "HIGH", "HIGH", Some(&c.network))
        .await;
    let created = event(&mut nina, "q", "queueUpdates").await;
    assert_eq!(created["kind"], "CREATED");
    assert_eq!(created["ticket"]["number"], ticket["number"]);
    assert_eq!(created["actor"]["id"], c.rita.id);

    app.ok(
        &c.boss,
        "mutation($id: ID!, $q: ID!) { assignTicket(input: {id: $id, queueId: $q}) { ticket { id } } }",
        json!({"id": ticket["id"], "q": c.desktop}),
    )
    .await;
    let left = event(&mut nina, "q", "queueUpdates").await;
    assert_eq!(left["kind"], "LEFT_QUEUE");
    assert_eq!(
        left["ticket"],
        Value::Null,
        "out of Nina's queue, out of her sight"
    );
    assert!(left["seq"].as_i64() > created["seq"].as_i64());
    let entered = event(&mut omar, "q", "queueUpdates").await;
    assert_eq!(entered["kind"], "ENTERED_QUEUE");
    assert_eq!(entered["ticket"]["queue"]["name"], "Desktop");
    assert_eq!(
        entered["changes"][0],
        json!({"field": "queue", "from": "Network", "to": "Desktop"})
    );

    // In its new queue it is assigned and edited: Omar sees both.
    app.ok(
        &c.boss,
        "mutation($id: ID!, $a: ID!) { assignTicket(input: {id: $id, assigneeId: $a}) { ticket { id } } }",
        json!({"id": ticket["id"], "a": c.omar.id}),
    )
    .await;
    let assigned = event(&mut omar, "q", "queueUpdates").await;
    assert_eq!(assigned["kind"], "ASSIGNED");
    assert_eq!(assigned["changes"][0]["field"], "assignee");
    let version = app
        .ok(
            &c.boss,
            "query($id: ID!) { ticket(id: $id) { version } }",
            json!({"id": ticket["id"]}),
        )
        .await["ticket"]["version"]
        .clone();
    app.ok(
        &c.boss,
        "mutation($id: ID!, $v: Int!) { updateTicket(input: {id: $id, expectedVersion: $v, title: \"Core switch down\"}) { ticket { id } } }",
        json!({"id": ticket["id"], "v": version}),
    )
    .await;
    let updated = event(&mut omar, "q", "queueUpdates").await;
    assert_eq!(updated["kind"], "UPDATED");
    assert_eq!(
        updated["changes"][0],
        json!({"field": "title", "from": "Switch down", "to": "Core switch down"})
    );
    // None of that reached Network's stream: its next event is a new ticket.
    let marker = app
        .incident(&c.rita, "Next in Network", "LOW", "LOW", Some(&c.network))
        .await;
    let next = event(&mut nina, "q", "queueUpdates").await;
    assert_eq!(
        (next["kind"].clone(), next["ticket"]["number"].clone()),
        (json!("CREATED"), marker["number"].clone())
    );
}

async fn a_ticket_stream_follows_one_ticket_for_its_agents_and_requester(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = cast(&app).await;
    let ticket = app
        .incident(&c.rita, "VPN drops", "MEDIUM", "MEDIUM", Some(&c.network))
        .await;
    let follow = format!("subscription($t: ID!) {{ ticketUpdates(ticketId: $t) {{ {EVENT} }} }}");
    let mut nina = WsClient::signed_in(&app, &c.nina).await;
    nina.subscribe("t", &follow, json!({"t": ticket["id"]}))
        .await;
    let mut rita = WsClient::signed_in(&app, &c.rita).await;
    rita.subscribe("t", &follow, json!({"t": ticket["id"]}))
        .await;
    app.wait_for_subscriptions(2).await;

    let add = "mutation($id: ID!, $b: String!, $v: Visibility!) { addComment(input: {ticketId: $id, body: $b, visibility: $v}) { comment { id } } }";
    app.ok(
        &c.nina,
        add,
        json!({"id": ticket["id"], "b": "Looking into it", "v": "PUBLIC"}),
    )
    .await;
    // Another ticket in the same queue is not this stream's business.
    app.incident(&c.rita, "Other", "LOW", "LOW", Some(&c.network))
        .await;
    app.ok(
        &c.nina,
        add,
        json!({"id": ticket["id"], "b": "Gateway logs show resets", "v": "INTERNAL"}),
    )
    .await;
    app.ok(
        &c.nina,
        "mutation($id: ID!) { transitionTicket(input: {id: $id, to: IN_PROGRESS}) { ticket { id } } }",
        json!({"id": ticket["id"]}),
    )
    .await;

    let mut agent = Vec::new();
    for _ in 0..3 {
        let seen = event(&mut nina, "t", "ticketUpdates").await;
        assert_eq!(seen["ticket"]["number"], ticket["number"]);
        agent.push(seen["kind"].clone());
    }
    assert_eq!(
        agent,
        vec![
            json!("COMMENT_ADDED"),
            json!("COMMENT_ADDED"),
            json!("STATUS_CHANGED")
        ]
    );
    let mut requester = Vec::new();
    for _ in 0..2 {
        let seen = event(&mut rita, "t", "ticketUpdates").await;
        assert_eq!(seen["ticket"]["number"], ticket["number"]);
        requester.push(seen["kind"].clone());
    }
    assert_eq!(
        requester,
        vec![json!("COMMENT_ADDED"), json!("STATUS_CHANGED")],
        "the work note never reaches the requester"
    );
}

async fn requesters_get_replies_but_never_work_notes(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = cast(&app).await;
    let ticket = app
        .incident(&c.rita, "Mail down", "MEDIUM", "HIGH", Some(&c.network))
        .await;
    let mut phone = WsClient::signed_in(&app, &c.rita).await;
    phone.subscribe("mine", &my_updates(), json!({})).await;
    app.wait_for_subscriptions(1).await;
    let add = "mutation($id: ID!, $b: String!, $v: Visibility!) { addComment(input: {ticketId: $id, body: $b, visibility: $v}) { comment { id } } }";
    app.ok(
        &c.nina,
        add,
        json!({"id": ticket["id"], "b": "Rebooting the mail server", "v": "INTERNAL"}),
    )
    .await;
    app.ok(
        &c.nina,
        add,
        json!({"id": ticket["id"], "b": "Should work again now", "v": "PUBLIC"}),
    )
    .await;
    let first = event(&mut phone, "mine", "myTicketUpdates").await;
    assert_eq!(first["kind"], "COMMENT_ADDED");
    assert_eq!(first["actor"]["id"], c.nina.id);
    // The work note came first but never arrived; the reply did.
    let history = app
        .ok(
            &c.nina,
            "query($id: ID!) { ticket(id: $id) { history { nodes { seq kind } } } }",
            json!({"id": ticket["id"]}),
        )
        .await;
    let seqs: Vec<i64> = history["ticket"]["history"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "COMMENT_ADDED")
        .filter_map(|e| e["seq"].as_i64())
        .collect();
    assert_eq!(seqs.len(), 2);
    assert_eq!(
        first["seq"].as_i64(),
        Some(seqs[1]),
        "the public reply, not the note"
    );
    app.ok(&c.nina, "mutation($id: ID!) { transitionTicket(input: {id: $id, to: RESOLVED, resolution: \"done\"}) { ticket { id } } }", json!({"id": ticket["id"]})).await;
    let resolved = event(&mut phone, "mine", "myTicketUpdates").await;
    assert_eq!(resolved["kind"], "STATUS_CHANGED");
    assert!(resolved.to_string().contains("RESOLVED"));
    assert!(!resolved.to_string().contains("Rebooting"));
}

async fn subscribing_needs_the_right_to_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = cast(&app).await;
    let ivan = app.person("ivan", Role::Requester).await;
    let ticket = app.incident(&c.rita, "Private", "LOW", "LOW", None).await;
    let mut ws = WsClient::signed_in(&app, &c.rita).await;
    ws.subscribe("q", &queue_updates(), json!({"q": c.network}))
        .await;
    let refused = ws.next_of("q").await;
    assert_eq!(
        op_error(&refused)["extensions"]["code"],
        "FORBIDDEN",
        "{refused}"
    );
    assert_eq!(ws.next_of("q").await["type"], "complete");

    let follow = format!("subscription($t: ID!) {{ ticketUpdates(ticketId: $t) {{ {EVENT} }} }}");
    let mut other = WsClient::signed_in(&app, &ivan).await;
    other
        .subscribe("hidden", &follow, json!({"t": ticket["id"]}))
        .await;
    let hidden = other.next_of("hidden").await;
    other
        .subscribe("missing", &follow, json!({"t": "VGlja2V0Ojk5OTk5"}))
        .await;
    let missing = other.next_of("missing").await;
    assert_eq!(
        op_error(&hidden)["extensions"]["code"],
        "NOT_FOUND",
        "{hidden}"
    );
    assert_eq!(op_error(&hidden)["message"], op_error(&missing)["message"]);

    let mut anonymous = WsClient::connect(&app, "graphql-transport-ws").await;
    anonymous.send(json!({"type": "connection_init"})).await;
    assert_eq!(anonymous.next().await["type"], "connection_ack");
    anonymous.subscribe("mine", &my_updates(), json!({})).await;
    let error = anonymous.next_of("mine").await;
    assert_eq!(
        op_error(&error)["extensions"]["code"],
        "UNAUTHENTICATED",
        "{error}"
    );
}

async fn after_replays_exactly_the_missed_events_then_goes_live(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = cast(&app).await;
    let mut phone = WsClient::signed_in(&app, &c.rita).await;
    phone.subscribe("mine", &my_updates(), json!({})).await;
    app.wait_for_subscriptions(1).await;
    let first = app
        .incident(&c.rita, "First", "LOW", "LOW", Some(&c.network))
        .await;
    let seen = event(&mut phone, "mine", "myTicketUpdates").await;
    assert_eq!(seen["ticket"]["number"], first["number"]);
    drop(phone); // a tunnel

    let missed_a = app
        .incident(&c.rita, "Second", "LOW", "LOW", Some(&c.network))
        .await;
    app.ok(&c.nina, "mutation($id: ID!) { transitionTicket(input: {id: $id, to: IN_PROGRESS}) { ticket { id } } }", json!({"id": missed_a["id"]})).await;
    app.incident(&c.admin, "Not Rita's", "LOW", "LOW", Some(&c.network))
        .await;

    let mut phone = WsClient::signed_in(&app, &c.rita).await;
    phone
        .subscribe("mine", &my_updates(), json!({"after": seen["cursor"]}))
        .await;
    let replayed_1 = event(&mut phone, "mine", "myTicketUpdates").await;
    let replayed_2 = event(&mut phone, "mine", "myTicketUpdates").await;
    assert_eq!(
        (
            replayed_1["kind"].as_str(),
            replayed_1["ticket"]["number"].as_str()
        ),
        (Some("CREATED"), missed_a["number"].as_str())
    );
    assert_eq!(replayed_2["kind"], "STATUS_CHANGED");
    let live = app
        .incident(&c.rita, "Third", "LOW", "LOW", Some(&c.network))
        .await;
    let next = event(&mut phone, "mine", "myTicketUpdates").await;
    assert_eq!(
        next["ticket"]["number"], live["number"],
        "live after the replay, nothing repeated"
    );
    assert!(
        phone
            .next_within(Duration::from_millis(300))
            .await
            .is_none(),
        "and nothing more"
    );

    let bad = WsClient::signed_in(&app, &c.rita).await;
    let mut bad = bad;
    bad.subscribe("x", &my_updates(), json!({"after": "not-a-cursor"}))
        .await;
    let error = bad.next_of("x").await;
    assert_eq!(op_error(&error)["extensions"]["field"], "after", "{error}");
}

async fn an_agent_removed_from_the_team_stops_receiving_its_queue(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = cast(&app).await;
    let mut nina = WsClient::signed_in(&app, &c.nina).await;
    nina.subscribe("q", &queue_updates(), json!({"q": c.network}))
        .await;
    app.wait_for_subscriptions(1).await;
    app.incident(&c.rita, "Before", "LOW", "LOW", Some(&c.network))
        .await;
    assert_eq!(
        event(&mut nina, "q", "queueUpdates").await["ticket"]["number"],
        "INC0001001"
    );

    removed_from_network_sees_no_more(&app, &c, &mut nina).await;
}

async fn the_event_feed_query_pages_what_the_viewer_may_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = cast(&app).await;
    let robot = app.person("robot", Role::Integration).await;
    let mine = app
        .incident(&c.rita, "Mine", "LOW", "LOW", Some(&c.network))
        .await;
    app.incident(&c.boss, "Not mine", "LOW", "LOW", Some(&c.desktop))
        .await;
    app.ok(&c.nina, "mutation($id: ID!) { addComment(input: {ticketId: $id, body: \"note\", visibility: INTERNAL}) { comment { id } } }", json!({"id": mine["id"]})).await;
    let feed = "query($after: String, $first: Int) { ticketEvents(after: $after, first: $first) { totalCount nodes { seq kind ticket { number } } pageInfo { hasNextPage endCursor } } }";
    let all = app.ok(&robot, feed, json!({"first": 2})).await["ticketEvents"].clone();
    assert_eq!(all["totalCount"], 3);
    assert_eq!(all["pageInfo"]["hasNextPage"], true);
    let rest = app
        .ok(
            &robot,
            feed,
            json!({"first": 10, "after": all["pageInfo"]["endCursor"]}),
        )
        .await["ticketEvents"]
        .clone();
    assert_eq!(rest["nodes"].as_array().map(Vec::len), Some(1));
    let rita = app.ok(&c.rita, feed, json!({})).await["ticketEvents"].clone();
    assert_eq!(
        rita["totalCount"], 1,
        "her own ticket's public events only: {rita}"
    );
    assert_eq!(rita["nodes"][0]["ticket"]["number"], mine["number"]);
    let filtered = app
        .ok(
            &robot,
            "query($q: ID!) { ticketEvents(queueId: $q) { totalCount } }",
            json!({"q": c.desktop}),
        )
        .await;
    assert_eq!(filtered["ticketEvents"]["totalCount"], 1);
    let one_ticket = "query($t: ID!) { ticketEvents(ticketId: $t) { totalCount nodes { kind } } }";
    let staff = app.ok(&c.nina, one_ticket, json!({"t": mine["id"]})).await;
    assert_eq!(
        staff["ticketEvents"]["nodes"],
        json!([{"kind": "CREATED"}, {"kind": "COMMENT_ADDED"}]),
        "Nina works the queue: the work note too"
    );
    let requester = app.ok(&c.rita, one_ticket, json!({"t": mine["id"]})).await;
    assert_eq!(
        requester["ticketEvents"]["nodes"],
        json!([{"kind": "CREATED"}])
    );
    // An agent reads her queue's events, not another team's.
    let queues = app
        .ok(&c.nina, "{ ticketEvents { totalCount } }", json!({}))
        .await;
    assert_eq!(queues["ticketEvents"]["totalCount"], 2);
    let both = app
        .fails(
            &robot,
            "query($q: ID!, $t: ID!) { ticketEvents(queueId: $q, ticketId: $t) { totalCount } }",
            json!({"q": c.network, "t": mine["id"]}),
        )
        .await;
    assert_eq!(both["extensions"]["code"], "BAD_USER_INPUT", "{both}");
}

/// Two servers share one PostgreSQL database: a change made through one
/// reaches a subscriber on the other through `NOTIFY` alone (A's unprompted
/// reads are an hour apart), also a change made while A's connections were
/// cut, and a team change made on B reaches A's subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ITSM_TEST_POSTGRES_URL"]
async fn replicas_share_events_through_postgres() {
    let admin_url = postgres_url();
    let db = TestDatabase::create(Backend::Postgres).await;
    let proxy = Proxy::start(postgres_socket(&admin_url)).await;
    let url = via_proxy(&db.url, proxy.address);
    let second_db = TestDatabase::shared(&db);
    let a = spawn_on_url(
        db,
        &url,
        &["--db-acquire-timeout", "2s", "--event-poll", "1h"],
    )
    .await;
    let b = spawn_on(second_db, &[]).await;
    let c = cast(&b).await;
    let token = a.token("nina", Role::Agent);
    let mut nina = WsClient::signed_in_at(&a.ws_url(), &token).await;
    nina.subscribe("q", &queue_updates(), json!({"q": c.network}))
        .await;
    a.wait_for_subscriptions(1).await;

    let first = b
        .incident(&c.rita, "Made on B", "HIGH", "LOW", Some(&c.network))
        .await;
    let seen = event(&mut nina, "q", "queueUpdates").await;
    assert_eq!(seen["ticket"]["number"], first["number"]);

    // A's connections to PostgreSQL, its LISTEN connection included, break;
    // a ticket is made on B meanwhile, and A catches up once back.
    proxy.cut_and_wait().await;
    let missed = b
        .incident(
            &c.rita,
            "Made on B while A is cut off",
            "HIGH",
            "LOW",
            Some(&c.network),
        )
        .await;
    // A deliberate outage window, not a wait for an event: A stays cut off
    // (its reconnects failing) after the change, so only catching up can
    // deliver it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();
    let seen = event(&mut nina, "q", "queueUpdates").await;
    assert_eq!(seen["ticket"]["number"], missed["number"]);
    let live = b
        .incident(
            &c.rita,
            "Made on B after A is back",
            "HIGH",
            "LOW",
            Some(&c.network),
        )
        .await;
    let seen = event(&mut nina, "q", "queueUpdates").await;
    assert_eq!(seen["ticket"]["number"], live["number"]);

    // Nina leaves the team through B: A stops sending her the queue.
    removed_from_network_sees_no_more(&b, &c, &mut nina).await;
}

/// New tickets read the routing and SLA setup from memory; a routing rule
/// made through one server reaches the other through `NOTIFY`, before that
/// server sees any event committed after the rule: its next ticket follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ITSM_TEST_POSTGRES_URL"]
async fn a_routing_rule_made_on_one_replica_routes_the_next_ticket_on_the_other() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let second_db = TestDatabase::shared(&db);
    let a = spawn_on(db, &["--event-poll", "1h"]).await;
    let b = spawn_on(second_db, &[]).await;
    let c = cast(&b).await;
    // A reads the setup (no rules yet) and remembers it.
    let before = a
        .incident(&c.rita, "Printer jams", "LOW", "LOW", None)
        .await;
    assert_eq!(before["queue"]["name"], "Service Desk");
    let mut omar = WsClient::signed_in(&a, &c.omar).await;
    omar.subscribe("q", &queue_updates(), json!({"q": c.desktop}))
        .await;
    a.wait_for_subscriptions(1).await;

    let rule = "mutation($q: ID!) { createRoutingRule(input: {name: \"Printers\", conditions: {keywords: [\"printer\"]}, actions: {queueId: $q}}) { rule { id } } }";
    b.ok(&c.boss, rule, json!({"q": c.desktop})).await;
    // A ticket routed on B marks the spot: once A delivers it, A has heard
    // of the rule (notifications arrive in commit order).
    let on_b = b
        .incident(&c.rita, "Printer smokes", "LOW", "LOW", None)
        .await;
    assert_eq!(on_b["queue"]["name"], "Desktop");
    let seen = event(&mut omar, "q", "queueUpdates").await;
    assert_eq!(seen["ticket"]["number"], on_b["number"]);

    let on_a = a
        .incident(&c.rita, "Printer out of toner", "LOW", "LOW", None)
        .await;
    assert_eq!(
        on_a["queue"]["name"], "Desktop",
        "A still routed by the setup it remembered"
    );
}

/// A transaction that got its id before another change to the same ticket
/// committed records its event after that change: its event is numbered
/// after the other's, not by its older id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ITSM_TEST_POSTGRES_URL"]
async fn an_event_recorded_after_a_newer_change_to_its_ticket_is_numbered_after_it() {
    use itsm::{
        entity::tickets,
        events::{Change, Draft, record},
        vocabulary::EventKind,
    };
    use sea_orm::EntityTrait;

    let app = spawn_app(Backend::Postgres).await;
    let c = cast(&app).await;
    let ticket = app
        .incident(&c.rita, "Older id", "LOW", "LOW", Some(&c.network))
        .await;
    let key = id_of(ticket["id"].as_str().unwrap_or_default());
    let settings = crate::helpers::settings(&["--database-url", &app.db.url]);
    let db = itsm::db::Db::connect(&settings.database).await.expect("db");

    // The older transaction takes its id first...
    let older = db.begin().await.expect("begin");
    older
        .execute_unprepared("SELECT pg_current_xact_id()")
        .await
        .expect("an id");
    // ...then a comment on the ticket commits through the API (its event
    // waits: the older transaction holds the horizon)...
    app.ok(
        &c.nina,
        "mutation($id: ID!) { addComment(input: {ticketId: $id, body: \"Newer\", visibility: PUBLIC}) { comment { id } } }",
        json!({"id": ticket["id"]}),
    )
    .await;
    // ...and only then does the older transaction record its change.
    let row = tickets::Entity::find_by_id(key)
        .one(&older)
        .await
        .expect("read")
        .expect("ticket");
    let changes = [Change::new("older", None, Some("yes".into()))];
    record(
        &older,
        Draft::system(&row, EventKind::Updated, &changes, chrono::Utc::now()),
    )
    .await
    .expect("recorded");
    older.commit().await.expect("commit");

    let conn = app.db.connect().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&conn, "SELECT COUNT(*) FROM ticket_event_queue").await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "events stay queued");
        tokio::task::yield_now().await;
    }
    let seq_of = |kind: &str| {
        format!("SELECT seq FROM ticket_events WHERE ticket_id = {key} AND kind = '{kind}'")
    };
    let comment = count(&conn, &seq_of("COMMENT_ADDED")).await;
    let later = count(&conn, &seq_of("UPDATED")).await;
    assert!(
        later > comment,
        "the older transaction's event ({later}) comes after the comment ({comment})"
    );
}

/// A session stuck holding the settling lock does not hold the pump's
/// connection with it: settling gives up after its wait, and settles once
/// the lock is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ITSM_TEST_POSTGRES_URL"]
async fn settling_gives_up_on_a_lock_held_elsewhere() {
    use itsm::events::log::{SETTLE_WAIT, SETTLING, settle};

    let app = spawn_app(Backend::Postgres).await;
    let settings = crate::helpers::settings(&["--database-url", &app.db.url]);
    let db = itsm::db::Db::connect(&settings.database).await.expect("db");
    let conn = app.db.connect().await;
    let stuck = conn.begin().await.expect("begin");
    stuck
        .execute_unprepared(&format!("SELECT pg_advisory_xact_lock({SETTLING})"))
        .await
        .expect("lock");
    let waited = tokio::time::timeout(SETTLE_WAIT * 5, settle(&db))
        .await
        .expect("settling waits for the lock no longer than its wait");
    assert!(waited.is_err(), "{waited:?}");
    stuck.rollback().await.expect("released");
    settle(&db).await.expect("settles once the lock is free");
}

/// A writer whose transaction began first commits last: the later writer
/// does not wait for it, but its event is numbered only once the earlier
/// transaction has ended, so subscribers receive the earlier event first,
/// then the later one, nothing skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ITSM_TEST_POSTGRES_URL"]
async fn a_late_commit_is_never_skipped() {
    let app = spawn_app(Backend::Postgres).await;
    let c = cast(&app).await;
    let ticket = app
        .incident(&c.rita, "Slow writer", "LOW", "LOW", Some(&c.network))
        .await;
    let mut nina = WsClient::signed_in(&app, &c.nina).await;
    nina.subscribe("q", &queue_updates(), json!({"q": c.network}))
        .await;
    app.wait_for_subscriptions(1).await;

    // A slow writer queues an event, as the service's writers do, and holds
    // its transaction open.
    let conn = app.db.connect().await;
    let slow = conn.begin().await.expect("begin");
    let key = id_of(ticket["id"].as_str().unwrap_or_default());
    let row = slow
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "INSERT INTO ticket_event_queue (tx, ord, ticket_id, queue_id, requester_id, actor_id, kind, visibility, changes, occurred_at) \
                 SELECT pg_current_xact_id()::text::bigint, pg_current_xact_id()::text::bigint, id, queue_id, requester_id, NULL, 'UPDATED', 'PUBLIC', \
                        '[{{\"field\":\"slow\",\"from\":null,\"to\":\"yes\"}}]', now() FROM tickets WHERE id = {key} \
                 RETURNING tx"
            ),
        ))
        .await
        .expect("held event")
        .expect("a row");
    let slow_tx: i64 = row.try_get_by_index(0).expect("tx");
    slow.execute_unprepared("NOTIFY itsm_events")
        .await
        .expect("notify");

    // Meanwhile a normal write commits without waiting for it.
    let writer = {
        let token = c.boss.token.clone();
        let client = app.client.clone();
        let url = app.url("/graphql");
        let id = ticket["id"].clone();
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"query": "mutation($id: ID!) { transitionTicket(input: {id: $id, to: IN_PROGRESS}) { ticket { id } } }", "variables": {"id": id}}))
                .send()
                .await
                .expect("sent")
                .status()
        })
    };
    let committed = format!("SELECT COUNT(*) FROM ticket_event_queue WHERE tx > {slow_tx}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&conn, &committed).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second writer never committed its event"
        );
        // Each turn is a round trip to PostgreSQL: no timer, as in
        // `wait_for_subscriptions`.
        tokio::task::yield_now().await;
    }
    assert!(
        nina.next_within(Duration::from_millis(300)).await.is_none(),
        "nothing is published out of order"
    );

    slow.commit().await.expect("commit");
    let first = event(&mut nina, "q", "queueUpdates").await;
    let second = event(&mut nina, "q", "queueUpdates").await;
    assert_eq!(first["changes"][0]["field"], "slow");
    assert_eq!(second["kind"], "STATUS_CHANGED");
    let seq = first["seq"].as_i64().expect("seq");
    assert_eq!(second["seq"].as_i64(), Some(seq + 1));
    assert!(writer.await.expect("joined").is_success());
}

/// Events written straight into the log, bypassing the API, to produce many
/// large ones quickly; returns the first and last sequence numbers.
async fn flood(app: &TestApp, ticket_id: i64, count: i64, size: usize) -> (i64, i64) {
    let conn = app.db.connect().await;
    let backend = conn.get_database_backend();
    let txn = conn.begin().await.expect("begin");
    if backend == sea_orm::DbBackend::Postgres {
        // Numbers are handed out by one settling at a time.
        txn.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock({})",
            itsm::events::log::SETTLING
        ))
        .await
        .expect("lock");
    }
    let row = txn
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            format!(
                "UPDATE counters SET value = value + {count} WHERE name = 'EVENT' RETURNING value"
            ),
        ))
        .await
        .expect("numbers")
        .expect("a row");
    let last: i64 = row.try_get_by_index(0).expect("number");
    let first = last - count + 1;
    let filler = "x".repeat(size);
    txn.execute_unprepared(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {count} - 1) \
         INSERT INTO ticket_events (seq, ticket_id, queue_id, requester_id, actor_id, kind, visibility, changes, occurred_at) \
         SELECT {first} + n.i, t.id, t.queue_id, t.requester_id, NULL, 'UPDATED', 'PUBLIC', \
                '[{{\"field\":\"flood\",\"from\":null,\"to\":\"{filler}\"}}]', t.created_at \
         FROM n, tickets t WHERE t.id = {ticket_id}"
    ))
    .await
    .expect("flood");
    if backend == sea_orm::DbBackend::Postgres {
        txn.execute_unprepared("NOTIFY itsm_events")
            .await
            .expect("notify");
    }
    txn.commit().await.expect("commit");
    (first, last)
}

async fn a_subscriber_that_stops_reading_is_cut_off_and_resumes_without_loss(backend: Backend) {
    let app = crate::helpers::spawn_app_with(backend, &["--ws-buffer", "16"]).await;
    let c = cast(&app).await;
    let ticket = app
        .incident(&c.rita, "Busy ticket", "LOW", "LOW", Some(&c.network))
        .await;
    let mut slow = WsClient::connect_slow(&app, "graphql-transport-ws").await;
    slow.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", c.nina.token)}}))
        .await;
    assert_eq!(slow.next().await["type"], "connection_ack");
    let light = "subscription($q: ID!, $after: String) { queueUpdates(queueId: $q, after: $after) { seq cursor } }";
    slow.subscribe("q", light, json!({"q": c.network})).await;
    app.wait_for_subscriptions(1).await;

    let total = 6000;
    let (first, last) = flood(
        &app,
        id_of(ticket["id"].as_str().unwrap_or_default()),
        total,
        2000,
    )
    .await;
    // The client reads nothing while the server fills the socket and falls behind:
    // a deliberate idle window, not a wait for an event (4 s, twice the 2 s event poll).
    tokio::time::sleep(Duration::from_secs(4)).await;

    let mut delivered = Vec::new();
    let stop = loop {
        let message = slow.next_of("q").await;
        if message["type"] == "complete" {
            panic!(
                "completed without an error after {} events",
                delivered.len()
            );
        }
        if let Some(error) = message["payload"]["errors"].get(0) {
            break error.clone();
        }
        delivered.push(
            message["payload"]["data"]["queueUpdates"]["seq"]
                .as_i64()
                .unwrap_or_default(),
        );
    };
    assert_eq!(
        slow.next_of("q").await["type"],
        "complete",
        "the subscription ended"
    );
    assert!(
        delivered.len() < total as usize,
        "it was cut off: {}",
        delivered.len()
    );
    assert!(
        delivered.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no gaps before the cut"
    );
    let message = stop["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("after:"), "{message}");
    // The operator sees the events the subscriber missed.
    assert!(app.metric("itsm_events_dropped_total").await > 0);
    let resume = message
        .split('"')
        .nth(1)
        .expect("a cursor in the message")
        .to_owned();

    // Resuming from the cursor delivers exactly the rest.
    let mut ws = WsClient::signed_in(&app, &c.nina).await;
    ws.subscribe("again", light, json!({"q": c.network, "after": resume}))
        .await;
    let mut rest = Vec::new();
    while rest.last().copied().unwrap_or(0) < last {
        let message = ws.next_of("again").await;
        assert!(message["payload"].get("errors").is_none(), "{message}");
        rest.push(
            message["payload"]["data"]["queueUpdates"]["seq"]
                .as_i64()
                .unwrap_or_default(),
        );
    }
    let mut all: Vec<i64> = delivered.iter().copied().filter(|s| *s >= first).collect();
    all.extend(rest);
    assert_eq!(
        all,
        (first..=last).collect::<Vec<i64>>(),
        "every event exactly once"
    );
}

/// Writers on two servers sharing one database comment on and retitle the
/// same three tickets at once. A subscriber on each server receives every
/// event once, numbered without a gap, the same on both; and each ticket's
/// title changes arrive in the order they were made (each one's `from` is
/// the `to` before it).
async fn concurrent_writers_on_two_replicas_leave_no_gap_no_repeat_and_keep_each_tickets_order(
    backend: Backend,
) {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 6;
    let db = TestDatabase::create(backend).await;
    let second = TestDatabase::shared(&db);
    let poll = ["--event-poll", "200ms"];
    let a = spawn_on(db, &poll).await;
    let b = spawn_on(second, &poll).await;
    let c = cast(&a).await;
    let mut tickets = Vec::new();
    for n in 0..3 {
        let ticket = a
            .incident(
                &c.rita,
                &format!("Shared {n}"),
                "LOW",
                "LOW",
                Some(&c.network),
            )
            .await;
        tickets.push(ticket["id"].as_str().expect("id").to_owned());
    }
    // The subscriptions start after the tickets' creation events, which a
    // long transaction in another test on the same server could still hold.
    if backend == Backend::Postgres {
        let conn = a.db.connect().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while count(&conn, "SELECT COUNT(*) FROM ticket_event_queue").await > 0 {
            assert!(tokio::time::Instant::now() < deadline, "events stay queued");
            tokio::task::yield_now().await;
        }
    }
    let mut watchers = Vec::new();
    for server in [&a, &b] {
        let mut ws = WsClient::signed_in_at(&server.ws_url(), &c.nina.token).await;
        ws.subscribe("q", &queue_updates(), json!({"q": c.network}))
            .await;
        server.wait_for_subscriptions(1).await;
        watchers.push(ws);
    }

    // Each writer alternates a comment and a retitle (retried on conflict).
    let write = |writer: usize| {
        let server = if writer.is_multiple_of(2) { &a } else { &b };
        let tickets = &tickets;
        let c = &c;
        async move {
            for round in 0..ROUNDS {
                let id = &tickets[(writer + round) % tickets.len()];
                let (status, body) = server
                    .graphql_with(
                        json!({"query": "mutation($id: ID!, $b: String!) { addComment(input: {ticketId: $id, body: $b, visibility: PUBLIC}) { comment { id } } }",
                               "variables": {"id": id, "b": format!("w{writer} r{round}")}}),
                        Some(&c.nina.token),
                    )
                    .await;
                assert!(
                    status.is_success() && body.get("errors").is_none(),
                    "{body}"
                );
                loop {
                    let (_, current) = server
                        .graphql_with(
                            json!({"query": "query($id: ID!) { node(id: $id) { ... on Ticket { version } } }", "variables": {"id": id}}),
                            Some(&c.boss.token),
                        )
                        .await;
                    let version = current["data"]["node"]["version"].clone();
                    let (_, body) = server
                        .graphql_with(
                            json!({"query": "mutation($id: ID!, $v: Int!, $t: String!) { updateTicket(input: {id: $id, expectedVersion: $v, title: $t}) { ticket { version } } }",
                                   "variables": {"id": id, "v": version, "t": format!("Title w{writer} r{round}")}}),
                            Some(&c.boss.token),
                        )
                        .await;
                    match body["errors"][0]["extensions"]["code"].as_str() {
                        None => break,
                        Some("CONFLICT") => continue,
                        Some(other) => panic!("{other}: {body}"),
                    }
                }
            }
        }
    };
    futures_util::future::join_all((0..WRITERS).map(write)).await;
    let made = WRITERS * ROUNDS * 2;

    let mut streams = Vec::new();
    for ws in &mut watchers {
        let mut got = Vec::new();
        while got.len() < made {
            got.push(event(ws, "q", "queueUpdates").await);
        }
        assert!(
            ws.next_within(Duration::from_millis(200)).await.is_none(),
            "nothing more than what was made"
        );
        streams.push(got);
    }
    let seqs = |got: &[Value]| -> Vec<i64> {
        got.iter()
            .map(|e| e["seq"].as_i64().expect("seq"))
            .collect()
    };
    let first = seqs(&streams[0]);
    assert!(
        first.windows(2).all(|w| w[1] == w[0] + 1),
        "numbered without a gap or a repeat: {first:?}"
    );
    assert_eq!(
        seqs(&streams[1]),
        first,
        "both replicas deliver the same events"
    );
    let comments = streams[0]
        .iter()
        .filter(|e| e["kind"] == "COMMENT_ADDED")
        .count();
    assert_eq!(comments, WRITERS * ROUNDS);
    let mut titles: std::collections::HashMap<String, Vec<(Value, Value)>> = Default::default();
    for e in &streams[0] {
        for change in e["changes"].as_array().into_iter().flatten() {
            if change["field"] == "title" {
                let number = e["ticket"]["number"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                titles
                    .entry(number)
                    .or_default()
                    .push((change["from"].clone(), change["to"].clone()));
            }
        }
    }
    assert_eq!(
        titles.values().map(Vec::len).sum::<usize>(),
        WRITERS * ROUNDS
    );
    for (number, chain) in &titles {
        assert!(
            chain.windows(2).all(|w| w[1].0 == w[0].1),
            "{number}'s title changes arrive in the order they were made: {chain:?}"
        );
    }
}

/// Renames `ticket` (one `UPDATED` event), as `who`.
async fn rename(app: &TestApp, who: &Person, ticket: &Value, title: &str) {
    let current = app
        .ok(
            who,
            "query($id: ID!) { ticket(id: $id) { version } }",
            json!({"id": ticket["id"]}),
        )
        .await;
    app.ok(
        who,
        "mutation($id: ID!, $v: Int!, $t: String!) { updateTicket(input: {id: $id, expectedVersion: $v, title: $t}) { ticket { id } } }",
        json!({"id": ticket["id"], "v": current["ticket"]["version"], "t": title}),
    )
    .await;
}

/// Subscriptions of one viewer with the same document and variables share
/// one execution per event, however many sockets and operations hold them;
/// another document runs apart. A member that completes leaves the others
/// served, and the group ends with its last member.
async fn identical_subscriptions_of_one_viewer_share_one_execution_per_event(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = cast(&app).await;
    let ticket = app
        .incident(&c.rita, "Shared", "LOW", "LOW", Some(&c.network))
        .await;
    let board =
        "subscription($q: ID!) { queueUpdates(queueId: $q) { seq kind ticket { number title } } }";
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut ws = WsClient::signed_in(&app, &c.nina).await;
        ws.subscribe("board", board, json!({"q": c.network})).await;
        sockets.push(ws);
    }
    // A second operation on the first socket joins the same group.
    sockets[0]
        .subscribe("again", board, json!({"q": c.network}))
        .await;
    let mut other = WsClient::signed_in(&app, &c.nina).await;
    other
        .subscribe(
            "other",
            "subscription($q: ID!) { queueUpdates(queueId: $q) { seq } }",
            json!({"q": c.network}),
        )
        .await;
    app.wait_for_subscriptions(5).await;
    assert_eq!(app.metric("itsm_subscription_groups").await, 2);
    // Joining a group is admitted without a statement: the viewer's reach
    // and the queue are known already. (A burst of reconnecting agents
    // would otherwise queue for the database, each holding an execution.)
    let mut late = WsClient::signed_in(&app, &c.nina).await;
    let statements = app.statements().await;
    late.subscribe("board", board, json!({"q": c.network}))
        .await;
    app.wait_for_subscriptions(6).await;
    assert_eq!(app.statements().await - statements, 0);
    assert_eq!(app.metric("itsm_subscription_groups").await, 2);
    sockets.push(late);

    for (round, title) in ["Shared, renamed", "Shared, renamed again"]
        .iter()
        .enumerate()
    {
        let executions = app.metric("itsm_subscription_executions_total").await;
        let delivered = app.metric("itsm_events_delivered_total").await;
        rename(&app, &c.boss, &ticket, title).await;
        let mut seqs = Vec::new();
        for (index, ws) in sockets.iter_mut().enumerate() {
            // The first socket holds "again" too, until the first round ends.
            let mut expected = vec!["board"];
            if index == 0 && round == 0 {
                expected.push("again");
            }
            while !expected.is_empty() {
                let message = ws.next().await;
                assert_eq!(message["type"], "next", "{message}");
                let id = message["id"].as_str().unwrap_or_default();
                assert!(expected.contains(&id), "{message}");
                expected.retain(|wanted| *wanted != id);
                let update = &message["payload"]["data"]["queueUpdates"];
                assert_eq!(update["kind"], "UPDATED", "{message}");
                assert_eq!(update["ticket"]["title"], *title, "{message}");
                seqs.push(update["seq"].clone());
            }
        }
        seqs.push(event(&mut other, "other", "queueUpdates").await["seq"].clone());
        assert!(seqs.windows(2).all(|w| w[0] == w[1]), "{seqs:?}");
        assert_eq!(
            app.metric("itsm_subscription_executions_total").await - executions,
            2,
            "one execution per group, not one per subscription"
        );
        assert_eq!(
            app.metric("itsm_events_delivered_total").await - delivered,
            seqs.len() as u64
        );
        if round == 0 {
            sockets[0]
                .send(json!({"id": "again", "type": "complete"}))
                .await;
            assert_eq!(sockets[0].next_of("again").await["type"], "complete");
        }
    }
    drop(sockets);
    drop(other);
    app.metric_until("itsm_subscription_groups", |groups| groups == 0)
        .await;
    app.metric_until("itsm_subscriptions_open", |open| open == 0)
        .await;
}

/// A requester and an agent sending the very same subscription never share
/// its execution: the agent receives the work note, the requester only the
/// public reply after it.
async fn a_requester_and_an_agent_on_the_same_stream_never_share_what_they_see(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = cast(&app).await;
    let ticket = app
        .incident(&c.rita, "Printer jams", "LOW", "LOW", Some(&c.network))
        .await;
    let stream = format!("subscription($t: ID!) {{ ticketUpdates(ticketId: $t) {{ {EVENT} }} }}");
    let mut phone = WsClient::signed_in(&app, &c.rita).await;
    phone
        .subscribe("t", &stream, json!({"t": ticket["id"]}))
        .await;
    let mut board = WsClient::signed_in(&app, &c.nina).await;
    board
        .subscribe("t", &stream, json!({"t": ticket["id"]}))
        .await;
    app.wait_for_subscriptions(2).await;
    assert_eq!(app.metric("itsm_subscription_groups").await, 2);

    let add = "mutation($id: ID!, $b: String!, $v: Visibility!) { addComment(input: {ticketId: $id, body: $b, visibility: $v}) { comment { id } } }";
    app.ok(
        &c.nina,
        add,
        json!({"id": ticket["id"], "b": "Replaced the fuser", "v": "INTERNAL"}),
    )
    .await;
    app.ok(
        &c.nina,
        add,
        json!({"id": ticket["id"], "b": "Fixed, please try again", "v": "PUBLIC"}),
    )
    .await;
    let note = event(&mut board, "t", "ticketUpdates").await;
    let reply = event(&mut board, "t", "ticketUpdates").await;
    assert_eq!(note["kind"], "COMMENT_ADDED");
    assert_eq!(reply["kind"], "COMMENT_ADDED");
    assert!(note["seq"].as_i64() < reply["seq"].as_i64());
    let seen = event(&mut phone, "t", "ticketUpdates").await;
    assert_eq!(
        seen["seq"], reply["seq"],
        "the requester never got the note"
    );
}
