//! Tickets: creation, numbers, priority, versions, idempotency, validation,
//! problems and changes, and who sees what.

use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use itsm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, TICKET_FIELDS, code, count, error_field, spawn_app};

crate::on_both_backends!(
    an_incident_gets_a_number_a_priority_and_sla_targets_in_the_service_desk,
    numbers_are_never_duplicated_under_concurrent_creation,
    priority_and_sla_targets_follow_impact_and_urgency,
    a_stale_expected_version_conflicts_and_writes_nothing,
    an_idempotency_key_makes_retries_return_the_first_ticket,
    bad_input_names_the_field_and_writes_nothing,
    problems_and_changes_carry_their_fields_and_links,
    a_ticket_the_viewer_may_not_see_looks_like_no_ticket_at_all,
    agents_see_their_queues_managers_everything_and_integrations_only_read,
    tickets_filter_by_every_criterion,
);

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

const UPDATE: &str = "mutation($input: UpdateTicketInput!) { updateTicket(input: $input) { ticket { id version title impact urgency priority sla { responseDueAt resolutionDueAt } } } }";

async fn an_incident_gets_a_number_a_priority_and_sla_targets_in_the_service_desk(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    let ticket = app
        .incident(&rita, "  Laptop will not boot  ", "HIGH", "MEDIUM", None)
        .await;
    assert_eq!(ticket["number"], "INC0001001");
    assert_eq!(ticket["kind"], "INCIDENT");
    assert_eq!(
        ticket["title"], "Laptop will not boot",
        "titles are trimmed"
    );
    assert_eq!(ticket["status"], "NEW");
    assert_eq!(ticket["priority"], "HIGH");
    assert_eq!(ticket["version"], 1);
    assert_eq!(ticket["queue"]["name"], "Service Desk");
    assert_eq!(ticket["requester"]["id"], rita.id);
    assert_eq!(ticket["assignee"], Value::Null);
    let created = time(&ticket["createdAt"]);
    assert_eq!(
        time(&ticket["sla"]["responseDueAt"]) - created,
        Duration::hours(1)
    );
    assert_eq!(
        time(&ticket["sla"]["resolutionDueAt"]) - created,
        Duration::hours(8)
    );
    assert_eq!(ticket["sla"]["responseBreached"], false);
    assert_eq!(ticket["sla"]["paused"], false);
    let remaining = ticket["sla"]["remainingSeconds"]
        .as_i64()
        .unwrap_or_default();
    assert!(
        (8 * 3600 - 60..=8 * 3600).contains(&remaining),
        "{remaining}"
    );

    let second = app.incident(&rita, "Printer jam", "LOW", "LOW", None).await;
    assert_eq!(
        (second["number"].as_str(), second["priority"].as_str()),
        (Some("INC0001002"), Some("PLANNING"))
    );
    let history = app
        .ok(&rita, "query($id: ID!) { ticket(id: $id) { history { nodes { kind seq actor { id } changes { field to } } } } }", json!({"id": ticket["id"]}))
        .await;
    let events = &history["ticket"]["history"]["nodes"];
    assert_eq!(events[0]["kind"], "CREATED");
    assert_eq!(events[0]["actor"]["id"], rita.id);
    assert!(events[0]["changes"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["field"] == "priority" && c["to"] == "HIGH")
    }));
}

async fn numbers_are_never_duplicated_under_concurrent_creation(backend: Backend) {
    let app = spawn_app(backend).await;
    let people = join_all((0..4).map(|i| app.person_owned(format!("p{i}"), Role::Requester))).await;
    let creations =
        (0..20).map(|i| app.incident(&people[i % 4], "Same time", "LOW", "MEDIUM", None));
    let tickets = join_all(creations).await;
    let mut numbers: Vec<String> = tickets
        .iter()
        .map(|t| t["number"].as_str().unwrap_or_default().to_owned())
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1001..=1020).map(|n| format!("INC{n:07}")).collect();
    assert_eq!(numbers, expected);
    let conn = app.db.connect().await;
    assert_eq!(
        count(&conn, "SELECT COUNT(DISTINCT seq) FROM ticket_events").await,
        20
    );
}

async fn priority_and_sla_targets_follow_impact_and_urgency(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    let boss = app.person("boss", Role::Manager).await;
    // The seeded targets, per priority: first response and resolution.
    for (impact, urgency, priority, response, resolution) in [
        (
            "HIGH",
            "HIGH",
            "CRITICAL",
            Duration::minutes(15),
            Duration::hours(4),
        ),
        (
            "HIGH",
            "MEDIUM",
            "HIGH",
            Duration::hours(1),
            Duration::hours(8),
        ),
        (
            "MEDIUM",
            "MEDIUM",
            "MODERATE",
            Duration::hours(4),
            Duration::days(3),
        ),
        (
            "MEDIUM",
            "LOW",
            "LOW",
            Duration::hours(8),
            Duration::days(5),
        ),
        (
            "LOW",
            "LOW",
            "PLANNING",
            Duration::days(1),
            Duration::days(10),
        ),
    ] {
        let made = app.incident(&rita, priority, impact, urgency, None).await;
        assert_eq!(made["priority"], priority);
        let created = time(&made["createdAt"]);
        assert_eq!(
            (
                time(&made["sla"]["responseDueAt"]) - created,
                time(&made["sla"]["resolutionDueAt"]) - created
            ),
            (response, resolution),
            "{priority}"
        );
    }
    let ticket = app.incident(&rita, "Slow VPN", "LOW", "LOW", None).await;
    assert_eq!(ticket["priority"], "PLANNING");
    let created = time(&ticket["createdAt"]);
    let updated = app
        .ok(&boss, UPDATE, json!({"input": {"id": ticket["id"], "expectedVersion": 1, "impact": "HIGH", "urgency": "HIGH"}}))
        .await["updateTicket"]["ticket"]
        .clone();
    assert_eq!(updated["priority"], "CRITICAL");
    assert_eq!(updated["version"], 2);
    assert_eq!(
        time(&updated["sla"]["responseDueAt"]) - created,
        Duration::minutes(15)
    );
    assert_eq!(
        time(&updated["sla"]["resolutionDueAt"]) - created,
        Duration::hours(4)
    );

    let history = app
        .ok(&boss, "query($id: ID!) { ticket(id: $id) { history { nodes { kind changes { field from to } } } } }", json!({"id": ticket["id"]}))
        .await;
    let update = &history["ticket"]["history"]["nodes"][1];
    assert_eq!(update["kind"], "UPDATED");
    let changes = update["changes"].as_array().cloned().unwrap_or_default();
    assert!(
        changes.contains(&json!({"field": "priority", "from": "PLANNING", "to": "CRITICAL"})),
        "{changes:?}"
    );
    assert!(
        changes.contains(&json!({"field": "impact", "from": "LOW", "to": "HIGH"})),
        "{changes:?}"
    );

    // The requester may retitle an open ticket but not re-prioritise it.
    let retitled = app
        .ok(
            &rita,
            UPDATE,
            json!({"input": {"id": ticket["id"], "expectedVersion": 2, "title": "VPN drops"}}),
        )
        .await;
    assert_eq!(retitled["updateTicket"]["ticket"]["title"], "VPN drops");
    let refused = app
        .fails(
            &rita,
            UPDATE,
            json!({"input": {"id": ticket["id"], "expectedVersion": 3, "impact": "LOW"}}),
        )
        .await;
    assert_eq!(code(&refused), Some("FORBIDDEN"));
    // Fields of other kinds are refused by name.
    for (field, value) in [
        ("changeType", json!("NORMAL")),
        ("rootCause", json!("x")),
        ("plannedEnd", json!("2027-01-01T00:00:00Z")),
    ] {
        let mut input = json!({"id": ticket["id"], "expectedVersion": 3});
        input[field] = value;
        let error = app.fails(&boss, UPDATE, json!({"input": input})).await;
        assert_eq!(
            (code(&error), error_field(&error)),
            (Some("BAD_USER_INPUT"), Some(field)),
            "{error}"
        );
    }
}

async fn a_stale_expected_version_conflicts_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let boss = app.person("boss", Role::Manager).await;
    let ticket = app
        .incident(&boss, "Mail down", "MEDIUM", "MEDIUM", None)
        .await;
    app.ok(
        &boss,
        UPDATE,
        json!({"input": {"id": ticket["id"], "expectedVersion": 1, "title": "Mail is down"}}),
    )
    .await;
    let conn = app.db.connect().await;
    let events_before = count(&conn, "SELECT COUNT(*) FROM ticket_events").await;
    let stale = app
        .fails(
            &boss,
            UPDATE,
            json!({"input": {"id": ticket["id"], "expectedVersion": 1, "title": "Lost update"}}),
        )
        .await;
    assert_eq!(code(&stale), Some("CONFLICT"), "{stale}");
    let transition = app
        .fails(
            &boss,
            "mutation($id: ID!) { transitionTicket(input: {id: $id, to: IN_PROGRESS, expectedVersion: 1}) { ticket { id } } }",
            json!({"id": ticket["id"]}),
        )
        .await;
    assert_eq!(code(&transition), Some("CONFLICT"));
    let assign = app
        .fails(
            &boss,
            "mutation($id: ID!, $u: ID!) { assignTicket(input: {id: $id, assigneeId: $u, expectedVersion: 1}) { ticket { id } } }",
            json!({"id": ticket["id"], "u": boss.id}),
        )
        .await;
    assert_eq!(code(&assign), Some("CONFLICT"), "{assign}");
    let now = app
        .ok(
            &boss,
            "query($id: ID!) { ticket(id: $id) { title version status assignee { id } } }",
            json!({"id": ticket["id"]}),
        )
        .await;
    assert_eq!(
        now["ticket"],
        json!({"title": "Mail is down", "version": 2, "status": "NEW", "assignee": null})
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM ticket_events").await,
        events_before,
        "no event for a refused write"
    );
}

async fn an_idempotency_key_makes_retries_return_the_first_ticket(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    let ivan = app.person("ivan", Role::Requester).await;
    let create = "mutation($input: CreateIncidentInput!) { createIncident(input: $input) { ticket { id number } } }";
    let input = json!({"title": "Badge broken", "impact": "LOW", "urgency": "HIGH", "idempotencyKey": "form-42"});
    let first = app.ok(&rita, create, json!({"input": input})).await;
    let again = app.ok(&rita, create, json!({"input": input})).await;
    assert_eq!(first, again);
    // The same key with another payload is a conflict.
    let mut changed = input.clone();
    changed["title"] = json!("Badge lost");
    let conflict = app.fails(&rita, create, json!({"input": changed})).await;
    assert_eq!(code(&conflict), Some("CONFLICT"));
    // Keys belong to their requester.
    let other = app.ok(&ivan, create, json!({"input": input})).await;
    assert_ne!(other, first);
    // Concurrent retries create one ticket.
    let racing = json!({"title": "Monitor flickers", "impact": "LOW", "urgency": "LOW", "idempotencyKey": "race"});
    let answers = join_all((0..10).map(|_| app.ok(&rita, create, json!({"input": racing})))).await;
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let conn = app.db.connect().await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM tickets").await, 3);
}

async fn bad_input_names_the_field_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    let agent = app.person("andy", Role::Agent).await;
    let create = "mutation($input: CreateIncidentInput!) { createIncident(input: $input) { ticket { id } } }";
    let cases = [
        (
            json!({"title": "  ", "impact": "LOW", "urgency": "LOW"}),
            "title",
        ),
        (
            json!({"title": "x".repeat(201), "impact": "LOW", "urgency": "LOW"}),
            "title",
        ),
        (
            json!({"title": "ok", "description": "x".repeat(20_001), "impact": "LOW", "urgency": "LOW"}),
            "description",
        ),
        (
            json!({"title": "ok", "impact": "LOW", "urgency": "LOW", "queueId": "bm90LWEtcXVldWU"}),
            "queueId",
        ),
        (
            json!({"title": "ok", "impact": "LOW", "urgency": "LOW", "queueId": "UXVldWU6OTk5"}),
            "queueId",
        ),
        (
            json!({"title": "ok", "impact": "LOW", "urgency": "LOW", "idempotencyKey": ""}),
            "idempotencyKey",
        ),
    ];
    for (input, field) in cases {
        let error = app.fails(&rita, create, json!({"input": input})).await;
        assert_eq!(code(&error), Some("BAD_USER_INPUT"), "{error}");
        assert_eq!(error_field(&error), Some(field), "{error}");
    }
    // An enum value outside the schema is refused before anything runs.
    let error = app
        .fails(
            &rita,
            create,
            json!({"input": {"title": "ok", "impact": "HUGE", "urgency": "LOW"}}),
        )
        .await;
    assert!(
        matches!(
            code(&error),
            Some("BAD_USER_INPUT" | "GRAPHQL_VALIDATION_FAILED")
        ),
        "{error}"
    );
    let change =
        "mutation($input: CreateChangeInput!) { createChange(input: $input) { ticket { id } } }";
    let backwards = json!({"title": "Patch", "impact": "LOW", "urgency": "LOW", "changeType": "NORMAL", "risk": "LOW",
        "plannedStart": "2026-12-02T10:00:00Z", "plannedEnd": "2026-12-02T09:00:00Z"});
    let error = app.fails(&agent, change, json!({"input": backwards})).await;
    assert_eq!(error_field(&error), Some("plannedEnd"), "{error}");
    let problem =
        "mutation($input: CreateProblemInput!) { createProblem(input: $input) { ticket { id } } }";
    let error = app
        .fails(&agent, problem, json!({"input": {"title": "Root", "impact": "LOW", "urgency": "LOW", "incidentIds": ["VGlja2V0Ojk5OQ"]}}))
        .await;
    assert_eq!(error_field(&error), Some("incidentIds"), "{error}");
    let unknown_related = json!({"title": "Patch", "impact": "LOW", "urgency": "LOW", "changeType": "STANDARD",
        "risk": "LOW", "relatedTicketIds": ["VGlja2V0Ojk5OQ"]});
    let error = app
        .fails(&agent, change, json!({"input": unknown_related}))
        .await;
    assert_eq!(code(&error), Some("BAD_USER_INPUT"), "{error}");
    assert_eq!(error_field(&error), Some("relatedTicketIds"), "{error}");
    let conn = app.db.connect().await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM tickets").await, 0);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM ticket_events").await, 0);
    // Numbers come from a sequence on PostgreSQL, a counter row on SQLite.
    let last_number = match sea_orm::ConnectionTrait::get_database_backend(&conn) {
        sea_orm::DbBackend::Postgres => "SELECT last_value FROM ticket_number_problem",
        _ => "SELECT value FROM counters WHERE name = 'PROBLEM'",
    };
    assert_eq!(
        count(&conn, last_number).await,
        1000,
        "no number was used up"
    );
}

async fn problems_and_changes_carry_their_fields_and_links(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    let boss = app.person("boss", Role::Manager).await;
    let first = app
        .incident(&rita, "Wifi drops", "MEDIUM", "HIGH", None)
        .await;
    let second = app
        .incident(&rita, "Wifi drops again", "MEDIUM", "HIGH", None)
        .await;
    let problem = app
        .ok(
            &boss,
            "mutation($input: CreateProblemInput!) { createProblem(input: $input) { ticket { id number kind problem { rootCause workaround knownError } change { risk } linkedTickets { number } } } }",
            json!({"input": {"title": "Access point firmware", "impact": "HIGH", "urgency": "MEDIUM",
                "rootCause": "Firmware 3.1 leaks memory", "workaround": "Reboot nightly", "knownError": true,
                "incidentIds": [first["id"]]}}),
        )
        .await["createProblem"]["ticket"]
        .clone();
    assert_eq!(problem["number"], "PRB0001001");
    assert_eq!(
        problem["problem"],
        json!({"rootCause": "Firmware 3.1 leaks memory", "workaround": "Reboot nightly", "knownError": true})
    );
    assert_eq!(problem["change"], Value::Null);
    assert_eq!(problem["linkedTickets"], json!([{"number": "INC0001001"}]));

    let linked = app
        .ok(
            &boss,
            "mutation($a: ID!, $b: ID!) { linkTickets(input: {ticketId: $a, relatedTicketId: $b}) { ticket { linkedTickets { number } } relatedTicket { number } } }",
            json!({"a": second["id"], "b": problem["id"]}),
        )
        .await;
    assert_eq!(
        linked["linkTickets"]["ticket"]["linkedTickets"],
        json!([{"number": "PRB0001001"}])
    );
    let refused = app
        .fails(
            &boss,
            "mutation($a: ID!, $b: ID!) { linkTickets(input: {ticketId: $a, relatedTicketId: $b}) { ticket { id } } }",
            json!({"a": first["id"], "b": second["id"]}),
        )
        .await;
    assert_eq!(
        (code(&refused), error_field(&refused)),
        (Some("BAD_USER_INPUT"), Some("relatedTicketId"))
    );

    let change = app
        .ok(
            &boss,
            "mutation($input: CreateChangeInput!) { createChange(input: $input) { ticket { number change { changeType risk plannedStart plannedEnd } linkedTickets { number } } } }",
            json!({"input": {"title": "Upgrade firmware", "impact": "HIGH", "urgency": "LOW", "changeType": "NORMAL", "risk": "MEDIUM",
                "plannedStart": "2026-12-05T22:00:00Z", "plannedEnd": "2026-12-06T02:00:00Z", "relatedTicketIds": [problem["id"]]}}),
        )
        .await["createChange"]["ticket"]
        .clone();
    assert_eq!(change["number"], "CHG0001001");
    assert_eq!(change["change"]["changeType"], "NORMAL");
    assert_eq!(
        time(&change["change"]["plannedEnd"]) - time(&change["change"]["plannedStart"]),
        Duration::hours(4)
    );
    assert_eq!(change["linkedTickets"], json!([{"number": "PRB0001001"}]));

    let forbidden = app
        .fails(
            &rita,
            "mutation { createProblem(input: {title: \"x\", impact: LOW, urgency: LOW}) { ticket { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&forbidden), Some("FORBIDDEN"));
}

async fn a_ticket_the_viewer_may_not_see_looks_like_no_ticket_at_all(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    let ivan = app.person("ivan", Role::Requester).await;
    let hidden = app
        .incident(&rita, "Salary question", "LOW", "LOW", None)
        .await;
    let missing = json!("VGlja2V0Ojk5OTk5"); // Ticket:99999
    for id in [&hidden["id"], &missing] {
        let by_id = app
            .ok(
                &ivan,
                "query($id: ID!) { ticket(id: $id) { id } node(id: $id) { id } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(by_id, json!({"ticket": null, "node": null}));
    }
    for number in ["INC0001001", "INC0009999"] {
        let by_number = app
            .ok(
                &ivan,
                "query($n: String!) { ticket(number: $n) { id } }",
                json!({"n": number}),
            )
            .await;
        assert_eq!(by_number["ticket"], Value::Null);
    }
    let list = app
        .ok(&ivan, "{ tickets { totalCount nodes { id } } }", json!({}))
        .await;
    assert_eq!(list["tickets"], json!({"totalCount": 0, "nodes": []}));
    let ivans = app.incident(&ivan, "Ivan's own", "LOW", "LOW", None).await;
    let mutations = [
        "mutation($id: ID!) { transitionTicket(input: {id: $id, to: CANCELLED, reason: \"x\"}) { ticket { id } } }",
        "mutation($id: ID!) { addComment(input: {ticketId: $id, body: \"hi\"}) { comment { id } } }",
        "mutation($id: ID!) { updateTicket(input: {id: $id, expectedVersion: 1, title: \"x\"}) { ticket { id } } }",
        "mutation($id: ID!) { assignTicket(input: {id: $id, assigneeId: null}) { ticket { id } } }",
        "mutation($id: ID!, $own: ID!) { linkTickets(input: {ticketId: $own, relatedTicketId: $id}) { ticket { id } } }",
    ];
    for mutation in mutations {
        let seen = app
            .fails(
                &ivan,
                mutation,
                json!({"id": hidden["id"], "own": ivans["id"]}),
            )
            .await;
        let absent = app
            .fails(&ivan, mutation, json!({"id": missing, "own": ivans["id"]}))
            .await;
        assert!(
            matches!(code(&seen), Some("NOT_FOUND" | "BAD_USER_INPUT")),
            "{seen}"
        );
        assert_eq!(
            (code(&seen), error_field(&seen), &seen["message"]),
            (code(&absent), error_field(&absent), &absent["message"]),
            "hidden and absent answer alike: {mutation}"
        );
    }
    // Nor does it show through another ticket's links: a problem linked to
    // Rita's incident is staff business.
    let boss = app.person("boss", Role::Manager).await;
    app.ok(
        &boss,
        "mutation($i: ID!) { createProblem(input: {title: \"Payroll bug\", impact: LOW, urgency: LOW, incidentIds: [$i]}) { ticket { id } } }",
        json!({"i": hidden["id"]}),
    )
    .await;
    let links = "query($id: ID!) { ticket(id: $id) { linkedTickets { number } } }";
    assert_eq!(
        app.ok(&boss, links, json!({"id": hidden["id"]})).await["ticket"]["linkedTickets"],
        json!([{"number": "PRB0001001"}])
    );
    assert_eq!(
        app.ok(&rita, links, json!({"id": hidden["id"]})).await["ticket"]["linkedTickets"],
        json!([])
    );
    let own = app
        .ok(
            &rita,
            "{ tickets { totalCount nodes { number } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        own["tickets"],
        json!({"totalCount": 1, "nodes": [{"number": "INC0001001"}]})
    );
}

async fn agents_see_their_queues_managers_everything_and_integrations_only_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let nina = app.person("nina", Role::Agent).await;
    let omar = app.person("omar", Role::Agent).await;
    let boss = app.person("boss", Role::Manager).await;
    let robot = app.person("robot", Role::Integration).await;
    let (network_team, network) = app.team_with_queue(&admin, "Network", &[&nina]).await;
    let (_, desktop) = app.team_with_queue(&admin, "Desktop", &[&omar]).await;
    app.incident(&rita, "Switch down", "HIGH", "HIGH", Some(&network))
        .await;
    app.incident(&rita, "Mouse broken", "LOW", "LOW", Some(&desktop))
        .await;
    app.incident(&rita, "Unsorted", "LOW", "LOW", None).await;
    let numbers = |data: &Value| -> Vec<String> {
        data["tickets"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["number"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let query = "{ tickets(orderBy: {field: CREATED_AT}) { nodes { number } } }";
    assert_eq!(
        numbers(&app.ok(&nina, query, json!({})).await),
        vec!["INC0001001"]
    );
    assert_eq!(
        numbers(&app.ok(&omar, query, json!({})).await),
        vec!["INC0001002"]
    );
    assert_eq!(numbers(&app.ok(&boss, query, json!({})).await).len(), 3);
    assert_eq!(numbers(&app.ok(&robot, query, json!({})).await).len(), 3);
    let write = app
        .fails(&robot, "mutation { createIncident(input: {title: \"x\", impact: LOW, urgency: LOW}) { ticket { id } } }", json!({}))
        .await;
    assert_eq!(code(&write), Some("FORBIDDEN"));
    let anonymous = app.graphql("{ tickets { totalCount } }", None).await.1;
    assert_eq!(
        crate::helpers::error_code(&anonymous),
        Some("UNAUTHENTICATED")
    );

    // A ticket assigned to an agent stays hers after she leaves its team;
    // the rest of the queue does not.
    let switch = app
        .ok(
            &boss,
            "{ ticket(number: \"INC0001001\") { id } }",
            json!({}),
        )
        .await["ticket"]["id"]
        .clone();
    app.ok(&boss, "mutation($id: ID!, $u: ID!) { assignTicket(input: {id: $id, assigneeId: $u}) { ticket { id } } }", json!({"id": switch, "u": nina.id})).await;
    app.incident(&rita, "Second switch", "LOW", "LOW", Some(&network))
        .await;
    app.ok(&admin, "mutation($t: ID!, $u: ID!) { removeTeamMember(input: {teamId: $t, userId: $u}) { team { id } } }", json!({"t": network_team, "u": nina.id})).await;
    assert_eq!(
        numbers(&app.ok(&nina, query, json!({})).await),
        vec!["INC0001001"]
    );
}

async fn tickets_filter_by_every_criterion(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let nina = app.person("nina", Role::Agent).await;
    let (_, network) = app.team_with_queue(&admin, "Network", &[&nina]).await;
    let a = app
        .incident(&rita, "Router on fire", "HIGH", "HIGH", Some(&network))
        .await;
    let b = app
        .incident(&rita, "Printer 100% jammed", "LOW", "LOW", None)
        .await;
    let c = app
        .incident(&admin, "router firmware", "MEDIUM", "LOW", Some(&network))
        .await;
    app.ok(&admin, "mutation($id: ID!, $u: ID!) { assignTicket(input: {id: $id, assigneeId: $u}) { ticket { id } } }", json!({"id": c["id"], "u": nina.id})).await;
    app.ok(&admin, "mutation($id: ID!) { transitionTicket(input: {id: $id, to: RESOLVED, resolution: \"done\"}) { ticket { id } } }", json!({"id": b["id"]})).await;
    let numbers = |data: Value| -> Vec<String> {
        let mut n: Vec<String> = data["tickets"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["number"].as_str().unwrap_or_default().to_owned())
            .collect();
        n.sort();
        n
    };
    let run = |filter: Value| {
        let app = &app;
        let admin = &admin;
        async move {
            numbers(
                app.ok(
                    admin,
                    "query($f: TicketFilterInput) { tickets(filter: $f) { nodes { number } } }",
                    json!({"f": filter}),
                )
                .await,
            )
        }
    };
    let (na, nb, nc) = (
        a["number"].as_str().unwrap_or_default(),
        b["number"].as_str().unwrap_or_default(),
        c["number"].as_str().unwrap_or_default(),
    );
    assert_eq!(
        run(json!({"search": "ROUTER"})).await,
        vec![na, nc],
        "case-insensitive text"
    );
    assert_eq!(
        run(json!({"search": "100%"})).await,
        vec![nb],
        "LIKE wildcards are literal"
    );
    assert_eq!(run(json!({"priorities": ["CRITICAL"]})).await, vec![na]);
    assert_eq!(run(json!({"statuses": ["RESOLVED"]})).await, vec![nb]);
    assert_eq!(run(json!({"open": false})).await, vec![nb]);
    assert_eq!(run(json!({"queueIds": [network]})).await, vec![na, nc]);
    assert_eq!(run(json!({"assigneeId": nina.id})).await, vec![nc]);
    assert_eq!(
        run(json!({"unassigned": true, "open": true})).await,
        vec![na]
    );
    assert_eq!(run(json!({"requesterId": rita.id})).await, vec![na, nb]);
    assert_eq!(
        run(json!({"kinds": ["PROBLEM"]})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        run(
            json!({"createdAfter": "2000-01-01T00:00:00Z", "createdBefore": "2100-01-01T00:00:00Z"})
        )
        .await
        .len(),
        3
    );
    assert_eq!(
        run(json!({"updatedAfter": "2100-01-01T00:00:00Z"})).await,
        Vec::<String>::new()
    );
    assert_eq!(run(json!({"breached": false})).await.len(), 3);

    // Two hours on, the critical ticket (15 min response) has breached.
    let id = a["id"].as_str().unwrap_or_default();
    crate::helpers::age_ticket(&app, id, 2).await;
    assert_eq!(run(json!({"breached": true})).await, vec![na]);
    let sla = app
        .ok(
            &admin,
            "query($id: ID!) { ticket(id: $id) { sla { responseBreached resolutionBreached } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        sla["ticket"]["sla"],
        json!({"responseBreached": true, "resolutionBreached": false})
    );
    crate::helpers::age_ticket(&app, id, 3).await;
    let sla = app.ok(&admin, "query($id: ID!) { ticket(id: $id) { sla { responseBreached resolutionBreached remainingSeconds } } }", json!({"id": id})).await;
    assert_eq!(
        sla["ticket"]["sla"]["resolutionBreached"], true,
        "five hours past a 4 h target"
    );
    assert!(
        sla["ticket"]["sla"]["remainingSeconds"]
            .as_i64()
            .is_some_and(|s| s < -3000),
        "{sla}"
    );
    assert_eq!(run(json!({"breached": true})).await, vec![na]);
    let fields = app
        .ok(
            &admin,
            &format!("query($id: ID!) {{ ticket(id: $id) {{ {TICKET_FIELDS} }} }}"),
            json!({"id": id}),
        )
        .await;
    assert_eq!(fields["ticket"]["sla"]["responseBreached"], true);

    // The critical ticket is now five hours old, and was last touched then.
    crate::helpers::set_ticket_time(
        &app,
        id_of(id),
        "updated_at",
        Utc::now() - Duration::hours(5),
    )
    .await;
    let hour_ago = (Utc::now() - Duration::hours(1)).to_rfc3339();
    assert_eq!(run(json!({"createdBefore": hour_ago})).await, vec![na]);
    assert_eq!(run(json!({"createdAfter": hour_ago})).await, vec![nb, nc]);
    assert_eq!(run(json!({"updatedBefore": hour_ago})).await, vec![na]);
    assert_eq!(run(json!({"updatedAfter": hour_ago})).await, vec![nb, nc]);
    assert_eq!(
        run(json!({"kinds": ["INCIDENT"], "createdAfter": hour_ago})).await,
        vec![nb, nc]
    );
    assert_eq!(run(json!({"kinds": ["INCIDENT"]})).await, vec![na, nb, nc]);

    // Free text reaches descriptions too.
    let version = app
        .ok(
            &admin,
            "query($id: ID!) { ticket(id: $id) { version } }",
            json!({"id": c["id"]}),
        )
        .await["ticket"]["version"]
        .clone();
    app.ok(
        &admin,
        UPDATE,
        json!({"input": {"id": c["id"], "expectedVersion": version, "description": "Seen on the core switch after the upgrade"}}),
    )
    .await;
    assert_eq!(run(json!({"search": "core switch"})).await, vec![nc]);
}

/// The numeric key inside a global id.
pub fn id_of(global: &str) -> i64 {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(global)
        .unwrap_or_default();
    String::from_utf8(bytes)
        .ok()
        .and_then(|text| text.split_once(':').and_then(|(_, key)| key.parse().ok()))
        .unwrap_or_default()
}
