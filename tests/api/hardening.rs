//! The service tried as an attacker would: requests shaped to exhaust the
//! stack, overflow clocks or confuse parsers get clear errors, and the server
//! keeps serving everyone else.

use itsm::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, WsClient, count, error_code, spawn_app, spawn_app_with};

crate::on_both_backends!(
    deep_documents_are_refused_on_every_path_and_the_server_survives,
    deep_json_variables_are_refused_on_every_path,
    a_bad_token_is_refused_before_a_get_query_is_parsed,
    a_token_expiring_in_the_far_future_does_not_break_the_socket,
    an_oversized_websocket_message_closes_with_1009,
    a_body_with_a_key_twice_is_refused_and_nothing_runs,
    control_characters_are_refused_in_every_text_input_and_nothing_is_written,
    control_characters_in_token_claims_get_401_and_no_user,
    huge_lists_and_long_search_terms_are_refused,
    introspection_and_the_sdl_follow_the_exposure_setting,
    the_explorer_can_be_turned_off,
    metrics_need_the_metrics_token_once_one_is_set,
    requesters_see_only_the_display_names_of_other_people,
    a_client_trickling_headers_is_disconnected,
    a_stalled_body_gets_408,
    a_stalled_request_cannot_hold_shutdown_past_the_grace_period,
    a_viewer_may_hold_only_so_many_sockets,
    instants_outside_four_digit_years_are_refused_on_both_backends,
);

/// The nesting depths every path is tried with.
const LEVELS: [usize; 3] = [100, 1_000, 100_000];

/// Documents nested `levels` deep, each in another way.
fn deep_documents(levels: usize) -> Vec<(&'static str, String)> {
    let open_close = |open: &str, close: &str| (open.repeat(levels), close.repeat(levels));
    let (objects_open, objects_close) = open_close("{a: ", "}");
    let (lists_open, lists_close) = open_close("[", "]");
    let (selections_open, selections_close) = open_close("{ a ", "}");
    let mut documents = vec![
        (
            "input objects",
            format!("{{ __typename(x: {objects_open}1{objects_close}) }}"),
        ),
        (
            "lists",
            format!("{{ __typename(x: {lists_open}1{lists_close}) }}"),
        ),
        (
            "selection sets",
            format!("{selections_open}{selections_close}"),
        ),
        (
            "directive arguments",
            format!("{{ __typename @skip(if: {objects_open}true{objects_close}) }}"),
        ),
    ];
    // A chain of fragments, each one level deeper; 100,000 of them would not
    // fit in a body, so the chain stops at 1,000.
    if levels <= 1_000 {
        let mut chain = String::from("query { ...F0 }");
        for i in 0..levels {
            chain.push_str(&format!(
                " fragment F{i} on Query {{ __typename ... on Query {{ ...F{} }} }}",
                i + 1
            ));
        }
        chain.push_str(&format!(" fragment F{levels} on Query {{ __typename }}"));
        documents.push(("fragment chains", chain));
        documents.push((
            "a fragment cycle",
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }".to_owned(),
        ));
    }
    documents
}

fn request_body(query: &str) -> String {
    json!({ "query": query }).to_string()
}

/// Sends `GET /graphql?query=…` over a plain socket; returns the status line.
async fn raw_get(app: &TestApp, query: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    let mut stream = tokio::net::TcpStream::connect(app.address)
        .await
        .expect("connect");
    let request = format!(
        "GET /graphql?query={encoded} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    // The server may answer and close before reading it all.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn still_serves(app: &TestApp) {
    let (status, body) = app.graphql("{ __typename }", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

async fn deep_documents_are_refused_on_every_path_and_the_server_survives(backend: Backend) {
    let app = spawn_app(backend).await;
    for levels in LEVELS {
        for (shape, query) in deep_documents(levels) {
            let what = format!("{shape} at {levels} levels");

            // POST, anonymous.
            let (status, body) = app.graphql_raw(request_body(&query), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "POST {what}: {body}");
            assert_eq!(
                error_code(&body),
                Some("BAD_USER_INPUT"),
                "POST {what}: {body}"
            );
            assert_eq!(body["errors"][0]["extensions"]["field"], "query", "{what}");

            // A batch: each entry gets its own answer.
            let batch = format!(
                "[{}, {}]",
                request_body("{ __typename }"),
                request_body(&query)
            );
            let (status, body) = app.graphql_raw(batch, None).await;
            assert_eq!(status, StatusCode::OK, "batch {what}: {body}");
            assert_eq!(body[0]["data"]["__typename"], "Query", "batch {what}");
            assert_eq!(
                error_code(&body[1]),
                Some("BAD_USER_INPUT"),
                "batch {what}: {body}"
            );

            // GET: a URL past 64 KiB cannot even be written by an HTTP client
            // library; sent raw, the HTTP layer refuses it. Below that, the
            // same error as POST.
            if query.len() < 16_000 {
                let response = app
                    .client
                    .get(app.url("/graphql"))
                    .query(&[("query", query.as_str())])
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("GET {what}: {}", e.without_url()));
                let status = response.status();
                let body: Value = response.json().await.expect("json");
                assert_eq!(status, StatusCode::BAD_REQUEST, "GET {what}: {body}");
                assert_eq!(
                    error_code(&body),
                    Some("BAD_USER_INPUT"),
                    "GET {what}: {body}"
                );
            } else {
                let status = raw_get(&app, &query).await;
                assert!(status.starts_with("HTTP/1.1 4"), "GET {what}: {status}");
            }

            // Both WebSocket protocols, anonymous.
            for (protocol, start) in [
                ("graphql-transport-ws", "subscribe"),
                ("graphql-ws", "start"),
            ] {
                let mut ws = WsClient::connect(&app, protocol).await;
                ws.send(json!({"type": "connection_init", "payload": {}}))
                    .await;
                assert_eq!(ws.next().await["type"], "connection_ack");
                ws.send_text(
                    json!({"id": "deep", "type": start, "payload": {"query": query}}).to_string(),
                )
                .await;
                let answer = ws.next_of("deep").await;
                assert_eq!(answer["type"], "error", "{protocol} {what}: {answer}");
                let errors = if protocol == "graphql-ws" {
                    &answer["payload"]["errors"]
                } else {
                    &answer["payload"]
                };
                assert_eq!(
                    errors[0]["extensions"]["code"], "BAD_USER_INPUT",
                    "{protocol} {what}: {answer}"
                );
            }
        }
        still_serves(&app).await;
    }
}

/// JSON nested `levels` deep, built as text: a `Value` that deep could not
/// even be dropped without overflowing the test's own stack.
fn deep_json(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

async fn deep_json_variables_are_refused_on_every_path(backend: Backend) {
    let app = spawn_app(backend).await;
    let query = "query($x: JSON) { __typename }";
    // Just past the limit (32 by default), the schema refuses the variables;
    // far past it, the JSON is refused before it is parsed.
    for levels in [33, 100, 1_000, 100_000] {
        let body = format!(
            r#"{{"query": {query:?}, "variables": {{"x": {}}}}}"#,
            deep_json(levels)
        );
        let (status, answer) = app.graphql_raw(body.clone(), None).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "POST {levels}: {status}"
        );
        assert_eq!(
            error_code(&answer),
            Some("BAD_USER_INPUT"),
            "POST {levels}: {answer}"
        );

        let (status, answer) = app.graphql_raw(format!("[{body}]"), None).await;
        assert!(
            status.is_client_error() || status == StatusCode::OK,
            "batch {levels}"
        );
        let code = error_code(&answer).or_else(|| error_code(&answer[0]));
        assert_eq!(code, Some("BAD_USER_INPUT"), "batch {levels}: {answer}");

        if levels <= 1_000 {
            let response = app
                .client
                .get(app.url("/graphql"))
                .query(&[
                    ("query", query),
                    ("variables", &format!(r#"{{"x": {}}}"#, deep_json(levels))),
                ])
                .send()
                .await
                .expect("GET sent");
            let answer: Value = response.json().await.expect("json");
            assert_eq!(
                error_code(&answer),
                Some("BAD_USER_INPUT"),
                "GET {levels}: {answer}"
            );
        }

        for (protocol, start) in [
            ("graphql-transport-ws", "subscribe"),
            ("graphql-ws", "start"),
        ] {
            let mut ws = WsClient::connect(&app, protocol).await;
            ws.send(json!({"type": "connection_init", "payload": {}}))
                .await;
            assert_eq!(ws.next().await["type"], "connection_ack");
            ws.send_text(format!(
                r#"{{"id": "deep", "type": "{start}", "payload": {{"query": {query:?}, "variables": {{"x": {}}}}}}}"#,
                deep_json(levels)
            ))
            .await;
            let answer = ws.next_of("deep").await;
            assert_eq!(answer["type"], "error", "{protocol} {levels}: {answer}");
            let text = answer.to_string();
            assert!(
                text.contains("BAD_USER_INPUT"),
                "{protocol} {levels}: {answer}"
            );
        }
    }
    still_serves(&app).await;
}

async fn a_bad_token_is_refused_before_a_get_query_is_parsed(backend: Backend) {
    let app = spawn_app(backend).await;
    let deep = format!(
        "{{ __typename(x: {}1{}) }}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    for query in ["{ __typename }", deep.as_str(), "{ not graphql"] {
        let response = app
            .client
            .get(app.url("/graphql"))
            .query(&[("query", query)])
            .bearer_auth("not-a-token")
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.expect("json");
        assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
    }
    let (status, body) = app
        .graphql_raw(
            "{\"query\": ".to_owned() + &"[".repeat(10_000),
            Some("not-a-token"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

async fn a_token_expiring_in_the_far_future_does_not_break_the_socket(backend: Backend) {
    let app = spawn_app(backend).await;
    for exp in [
        10_000_000_000_000_000_000_u64,
        u64::MAX / 2,
        253_402_300_800,
    ] {
        let claims = json!({"sub": "far-future", "role": "agent", "exp": exp});
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(crate::helpers::TEST_SECRET.as_bytes())
                .expect("key"),
        )
        .expect("token");
        // Over HTTP the token works ...
        let (status, body) = app.graphql("{ viewer { subject } }", Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "exp {exp}: {body}");
        assert_eq!(body["data"]["viewer"]["subject"], "far-future", "{body}");
        // ... and a socket signed in with it stays up and serves.
        let mut ws = WsClient::signed_in_at(&app.ws_url(), &token).await;
        ws.subscribe(
            "beat",
            "subscription { heartbeat(intervalSeconds: 1) { seq } }",
            json!({}),
        )
        .await;
        let first = ws.next_of("beat").await;
        assert_eq!(
            first["payload"]["data"]["heartbeat"]["seq"], 1,
            "exp {exp}: {first}"
        );
    }
}

async fn an_oversized_websocket_message_closes_with_1009(backend: Backend) {
    let app = spawn_app_with(backend, &["--max-body-bytes", "4096"]).await;
    let token = app.token("big", Role::Agent);
    let mut ws = WsClient::signed_in_at(&app.ws_url(), &token).await;
    let query = format!("{{ __typename }} # {}", "x".repeat(8_192));
    ws.send_text(json!({"id": "1", "type": "subscribe", "payload": {"query": query}}).to_string())
        .await;
    let (code, _) = ws.close_code().await;
    assert_eq!(code, 1009);
    still_serves(&app).await;
}

async fn a_body_with_a_key_twice_is_refused_and_nothing_runs(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = app.person("dup-agent", Role::Agent).await;
    let mutation = r#"mutation { createIncident(input: {title: "twice", impact: LOW, urgency: LOW}) { ticket { id } } }"#;
    let bodies = [
        format!(r#"{{"query": "{{ __typename }}", "query": {mutation:?}}}"#),
        format!(r#"{{"query": {mutation:?}, "variables": {{"a": 1, "a": 2}}}}"#),
        format!(r#"[{{"query": "{{ __typename }}", "query": {mutation:?}}}]"#),
    ];
    for body in bodies {
        let (status, answer) = app.graphql_raw(body.clone(), Some(&agent.token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(
            error_code(&answer),
            Some("GRAPHQL_PARSE_FAILED"),
            "{answer}"
        );
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("appears twice"), "{message}");
    }
    // Over the socket, too: the message is refused and the socket closed.
    let mut ws = WsClient::signed_in_at(&app.ws_url(), &agent.token).await;
    ws.send_text(format!(
        r#"{{"id": "1", "type": "subscribe", "payload": {{"query": "{{ __typename }}", "query": {mutation:?}}}}}"#
    ))
    .await;
    let (code, _) = ws.close_code().await;
    assert_eq!(code, 4400);
    let conn = app.db.connect().await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM tickets").await, 0);
}

/// Control characters to try: NUL, BEL, ESC, DEL and a C1 control.
const CONTROLS: [&str; 5] = ["\u{0}", "\u{7}", "\u{1b}", "\u{7f}", "\u{85}"];

async fn control_characters_are_refused_in_every_text_input_and_nothing_is_written(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let agent = app.person("ctl-agent", Role::Admin).await;
    let create = "mutation($input: CreateIncidentInput!) { createIncident(input: $input) { ticket { id } } }";
    let good = app
        .ok(&agent, create, json!({"input": {"title": "Printer", "description": "line one\nline two\tindented", "impact": "LOW", "urgency": "LOW"}}))
        .await;
    let ticket = good["createIncident"]["ticket"]["id"].clone();
    let conn = app.db.connect().await;
    let tickets_before = count(&conn, "SELECT COUNT(*) FROM tickets").await;
    let comments_before = count(&conn, "SELECT COUNT(*) FROM comments").await;
    for control in CONTROLS {
        let bad = format!("bad{control}text");
        let attempts = [
            (
                create,
                json!({"input": {"title": bad, "impact": "LOW", "urgency": "LOW"}}),
                "input.title",
            ),
            (
                create,
                json!({"input": {"title": "ok", "description": bad, "impact": "LOW", "urgency": "LOW"}}),
                "input.description",
            ),
            (
                create,
                json!({"input": {"title": "ok", "impact": "LOW", "urgency": "LOW", "idempotencyKey": bad}}),
                "input.idempotencyKey",
            ),
            (
                "mutation($input: AddCommentInput!) { addComment(input: $input) { comment { id } } }",
                json!({"input": {"ticketId": ticket, "body": bad}}),
                "input.body",
            ),
            (
                "query($s: String) { tickets(filter: {search: $s}) { totalCount } }",
                json!({"s": bad}),
                "s",
            ),
            (
                "query($s: String) { users(search: $s) { totalCount } }",
                json!({"s": bad}),
                "s",
            ),
            (
                "query($s: String) { services(search: $s) { totalCount } }",
                json!({"s": bad}),
                "s",
            ),
            (
                "query($s: String) { catalogItems(search: $s) { totalCount } }",
                json!({"s": bad}),
                "s",
            ),
            (
                "mutation($input: CreateTeamInput!) { createTeam(input: $input) { team { id } } }",
                json!({"input": {"name": bad}}),
                "input.name",
            ),
            (
                "mutation($input: CreateTeamInput!) { createTeam(input: $input) { team { id } } }",
                json!({"input": {"name": "ok", "description": bad}}),
                "input.description",
            ),
            (
                "mutation($input: TransitionTicketInput!) { transitionTicket(input: $input) { ticket { id } } }",
                json!({"input": {"id": ticket, "to": "RESOLVED", "resolution": bad}}),
                "input.resolution",
            ),
            (
                "mutation($input: DecideApprovalInput!) { decideApproval(input: $input) { approval { id } } }",
                json!({"input": {"approvalId": "QXBwcm92YWw6MQ", "decision": "REJECTED", "comment": bad}}),
                "input.comment",
            ),
            (
                "mutation($input: CreateRoutingRuleInput!) { createRoutingRule(input: $input) { rule { id } } }",
                json!({"input": {"name": "r", "conditions": {"keywords": ["ok", bad]}, "actions": {}}}),
                "input.conditions.keywords",
            ),
            (
                "mutation($input: SubmitServiceRequestInput!) { submitServiceRequest(input: $input) { ticket { id } } }",
                json!({"input": {"catalogItemId": "Q2F0YWxvZ0l0ZW06MQ", "answers": {"justification": bad}}}),
                "input.answers.justification",
            ),
        ];
        for (query, variables, field) in attempts {
            let error = app.fails(&agent, query, variables).await;
            assert_eq!(
                error_code(&json!({"errors": [error.clone()]})),
                Some("BAD_USER_INPUT"),
                "{field}: {error}"
            );
            assert_eq!(error["extensions"]["field"], field, "{error}");
        }
        // The same text written inline in the document.
        let inline = format!(
            "mutation {{ createIncident(input: {{title: {}, impact: LOW, urgency: LOW}}) {{ ticket {{ id }} }} }}",
            serde_json::to_string(&bad).expect("json")
        );
        let error = app.fails(&agent, &inline, json!({})).await;
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
        assert_eq!(error["extensions"]["field"], "input.title", "{error}");
    }
    // A newline or tab is fine in long text but not in a one-line title.
    let error = app
        .fails(
            &agent,
            create,
            json!({"input": {"title": "two\nlines", "impact": "LOW", "urgency": "LOW"}}),
        )
        .await;
    assert_eq!(error["extensions"]["field"], "title", "{error}");
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM tickets").await,
        tickets_before
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM comments").await,
        comments_before
    );
}

async fn control_characters_in_token_claims_get_401_and_no_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let sign = |claims: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(crate::helpers::TEST_SECRET.as_bytes())
                .expect("key"),
        )
        .expect("token")
    };
    let exp = 4_000_000_000_u64;
    for control in CONTROLS.iter().chain(&["\n", "\t"]) {
        for claims in [
            json!({"sub": format!("sub{control}ject"), "exp": exp}),
            json!({"sub": "fine", "name": format!("Na{control}me"), "exp": exp}),
            json!({"sub": "fine", "email": format!("a{control}@example.com"), "exp": exp}),
        ] {
            let token = sign(claims.clone());
            let (status, body) = app.graphql("{ viewer { subject } }", Some(&token)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{claims}: {body}");
            assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
            let mut ws = WsClient::connect(&app, "graphql-transport-ws").await;
            ws.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}))
                .await;
            let (code, _) = ws.close_code().await;
            assert_eq!(code, 4403, "{claims}");
        }
    }
    let conn = app.db.connect().await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM users").await, 0);
}

async fn huge_lists_and_long_search_terms_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = app.person("lists", Role::Manager).await;
    let ids: Vec<String> = (0..50_000)
        .map(|i| itsm::graphql::relay::encode_id("Queue", i).0)
        .collect();
    let query = "query($ids: [ID!]) { tickets(filter: {queueIds: $ids}) { totalCount } }";
    let error = app.fails(&agent, query, json!({"ids": ids})).await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    let error = app.fails(&agent, query, json!({"ids": ids[..101]})).await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    assert_eq!(error["extensions"]["field"], "ids", "{error}");
    // Inline, too.
    let inline = format!(
        "{{ tickets(filter: {{statuses: [{}]}}) {{ totalCount }} }}",
        vec!["NEW"; 101].join(", ")
    );
    let error = app.fails(&agent, &inline, json!({})).await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    // At the cap it runs.
    let at_cap: Vec<String> = ids.into_iter().take(100).collect();
    app.ok(&agent, query, json!({"ids": at_cap})).await;

    let long = "x".repeat(201);
    for query in [
        "query($s: String) { tickets(filter: {search: $s}) { totalCount } }",
        "query($s: String) { users(search: $s) { totalCount } }",
        "query($s: String) { services(search: $s) { totalCount } }",
        "query($s: String) { catalogItems(search: $s) { totalCount } }",
    ] {
        let error = app.fails(&agent, query, json!({"s": long})).await;
        assert_eq!(
            error["extensions"]["code"], "BAD_USER_INPUT",
            "{query}: {error}"
        );
        assert_eq!(error["extensions"]["field"], "search", "{query}: {error}");
        app.ok(&agent, query, json!({"s": "x".repeat(200)})).await;
    }
}

const INTROSPECT: &str = "{ __schema { queryType { name } } }";

async fn introspection_and_the_sdl_follow_the_exposure_setting(backend: Backend) {
    // Off: nobody, on any path.
    let app = spawn_app_with(backend, &["--introspection", "off"]).await;
    let token = app.token("intro", Role::Admin);
    for who in [None, Some(token.as_str())] {
        let (_, body) = app.graphql(INTROSPECT, who).await;
        assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
        let (_, body) = app
            .graphql(
                "query { ...T } fragment T on Query { __type(name: \"Ticket\") { name } }",
                who,
            )
            .await;
        assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    }
    still_serves(&app).await;
    let sdl = app
        .client
        .get(app.url("/schema.graphql"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(sdl.status(), StatusCode::NOT_FOUND);
    let mut ws = WsClient::signed_in_at(&app.ws_url(), &token).await;
    ws.subscribe("i", INTROSPECT, json!({})).await;
    let answer = ws.next_of("i").await;
    assert!(answer.to_string().contains("FORBIDDEN"), "{answer}");

    // Authenticated: only with a valid token.
    let app = spawn_app_with(backend, &["--introspection", "authenticated"]).await;
    let token = app.token("intro", Role::Requester);
    let (_, body) = app.graphql(INTROSPECT, None).await;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
    let (_, body) = app.graphql(INTROSPECT, Some(&token)).await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "Query",
        "{body}"
    );
    let anonymous = app
        .client
        .get(app.url("/schema.graphql"))
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let signed = app
        .client
        .get(app.url("/schema.graphql"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(signed.status(), StatusCode::OK);
    let mut ws = WsClient::connect(&app, "graphql-transport-ws").await;
    ws.send(json!({"type": "connection_init", "payload": {}}))
        .await;
    assert_eq!(ws.next().await["type"], "connection_ack");
    ws.subscribe("i", INTROSPECT, json!({})).await;
    let answer = ws.next_of("i").await;
    assert!(answer.to_string().contains("UNAUTHENTICATED"), "{answer}");

    // On (the default): anyone.
    let app = spawn_app(backend).await;
    let (_, body) = app.graphql(INTROSPECT, None).await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "Query",
        "{body}"
    );
}

async fn the_explorer_can_be_turned_off(backend: Backend) {
    let app = spawn_app_with(backend, &["--explorer", "false"]).await;
    let page = app.client.get(app.url("/")).send().await.expect("sent");
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let asset = app
        .client
        .get(app.url("/explorer/graphiql.min.js"))
        .send()
        .await
        .expect("sent");
    assert_eq!(asset.status(), StatusCode::NOT_FOUND);
    still_serves(&app).await;
}

async fn metrics_need_the_metrics_token_once_one_is_set(backend: Backend) {
    let app = spawn_app_with(backend, &["--metrics-token", "scrape-secret-0123456789"]).await;
    let get = |token: Option<&str>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.expect("sent") }
    };
    assert_eq!(get(None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(Some("scrape-secret-012345678")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A user's token is not the metrics token.
    assert_eq!(
        get(Some(&app.token("ops", Role::Admin))).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = get(Some("scrape-secret-0123456789")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("text");
    assert!(text.contains("itsm_db_statements_total"), "{text}");
    // Probes stay open for load balancers.
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), StatusCode::OK);
}

async fn requesters_see_only_the_display_names_of_other_people(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("people-admin", Role::Admin).await;
    let agent = app.person("people-agent", Role::Agent).await;
    let requester = app.person("people-requester", Role::Requester).await;
    let (_, queue) = app.team_with_queue(&admin, "People desk", &[&agent]).await;
    let ticket = app
        .incident(&requester, "Screen flickers", "LOW", "LOW", Some(&queue))
        .await;
    app.ok(
        &agent,
        "mutation($input: AssignTicketInput!) { assignTicket(input: $input) { ticket { id } } }",
        json!({"input": {"id": ticket["id"], "assigneeId": agent.id}}),
    )
    .await;
    app.ok(
        &agent,
        "mutation($input: AddCommentInput!) { addComment(input: $input) { comment { id } } }",
        json!({"input": {"ticketId": ticket["id"], "body": "Looking into it"}}),
    )
    .await;
    let people = "{ subject email displayName role createdAt updatedAt }";
    let query = format!(
        "query($id: ID!) {{ ticket(id: $id) {{ requester {people} assignee {people} latestComment {{ author {people} }} comments {{ nodes {{ author {people} }} }} }} }}"
    );
    let seen = app
        .ok(&requester, &query, json!({"id": ticket["id"]}))
        .await["ticket"]
        .clone();
    for other in [
        &seen["assignee"],
        &seen["latestComment"]["author"],
        &seen["comments"]["nodes"][0]["author"],
    ] {
        assert_eq!(other["displayName"], "Test people-agent", "{seen}");
        for hidden in ["subject", "email", "role", "createdAt", "updatedAt"] {
            assert_eq!(other[hidden], Value::Null, "{hidden}: {seen}");
        }
    }
    // Themselves, in full.
    assert_eq!(seen["requester"]["subject"], "people-requester");
    assert_eq!(seen["requester"]["email"], "people-requester@example.com");
    // Staff see everyone in full.
    let staff = app.ok(&agent, &query, json!({"id": ticket["id"]})).await["ticket"].clone();
    assert_eq!(staff["requester"]["subject"], "people-requester", "{staff}");
    assert_eq!(staff["requester"]["role"], "REQUESTER", "{staff}");
    assert_eq!(
        staff["assignee"]["email"], "people-agent@example.com",
        "{staff}"
    );
}

/// Reads from `stream` until the server closes it; returns what it sent.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    // A safety net for a broken server, not a timing assertion.
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the server never closed the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn a_client_trickling_headers_is_disconnected(backend: Backend) {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(backend, &["--header-timeout", "1s"]).await;
    let mut stream = tokio::net::TcpStream::connect(app.address)
        .await
        .expect("connect");
    // Half a request head, then nothing.
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .expect("write");
    until_closed(&mut stream).await;
    still_serves(&app).await;
}

async fn a_stalled_body_gets_408(backend: Backend) {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(backend, &["--body-timeout", "1s"]).await;
    let mut stream = tokio::net::TcpStream::connect(app.address)
        .await
        .expect("connect");
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"query\":")
        .await
        .expect("write");
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("BAD_USER_INPUT"), "{answer}");
}

async fn a_stalled_request_cannot_hold_shutdown_past_the_grace_period(backend: Backend) {
    use tokio::io::AsyncWriteExt;
    // The body may take a minute; shutdown gives requests one second.
    let mut app = spawn_app_with(
        backend,
        &[
            "--body-timeout",
            "60s",
            "--request-timeout",
            "60s",
            "--shutdown-grace",
            "1s",
        ],
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(app.address)
        .await
        .expect("connect");
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
        .await
        .expect("write");
    // The request is in flight once the server has read its head: a second
    // request on another connection proves the server is past accepting it.
    still_serves(&app).await;
    // Half the body timeout: only the grace period can end it this soon.
    tokio::time::timeout(std::time::Duration::from_secs(30), app.stopped())
        .await
        .expect("the server stops within the grace period, not the body timeout");
    // The stalled client's connection was cut.
    until_closed(&mut stream).await;
}

async fn a_viewer_may_hold_only_so_many_sockets(backend: Backend) {
    let app = spawn_app_with(backend, &["--ws-max-per-viewer", "2"]).await;
    let agent = app.person("sockets", Role::Agent).await;
    let other = app.person("other-sockets", Role::Agent).await;
    let first = WsClient::signed_in(&app, &agent).await;
    let _second = WsClient::signed_in(&app, &agent).await;
    let mut third = WsClient::connect(&app, "graphql-transport-ws").await;
    third
        .send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", agent.token)}}))
        .await;
    let (code, _) = third.close_code().await;
    assert_eq!(code, 4429);
    // Someone else is not affected.
    let _theirs = WsClient::signed_in(&app, &other).await;
    // Closing one makes room again (once the server has let go of it).
    drop(first);
    let mut admitted = false;
    for _ in 0..200 {
        let mut again = WsClient::connect(&app, "graphql-transport-ws").await;
        again
            .send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", agent.token)}}))
            .await;
        if again.raw_or_close().await == Some(json!("connection_ack")) {
            admitted = true;
            break;
        }
    }
    assert!(admitted, "a closed socket frees its place");
}

async fn instants_outside_four_digit_years_are_refused_on_both_backends(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = app.person("far-dates", Role::Manager).await;
    for at in [
        "+200000-01-01T00:00:00Z",
        "+10000-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "-0005-01-01T00:00:00Z",
    ] {
        let filter = app
            .fails(
                &agent,
                "query($at: DateTime) { tickets(filter: {createdAfter: $at}) { totalCount } }",
                json!({"at": at}),
            )
            .await;
        assert_eq!(
            filter["extensions"]["code"], "BAD_USER_INPUT",
            "{at}: {filter}"
        );
        let change = app
            .fails(
                &agent,
                "mutation($at: DateTime) { createChange(input: {title: \"Far\", impact: LOW, urgency: LOW, changeType: STANDARD, risk: LOW, plannedStart: $at}) { ticket { id } } }",
                json!({"at": at}),
            )
            .await;
        assert_eq!(
            change["extensions"]["code"], "BAD_USER_INPUT",
            "{at}: {change}"
        );
    }
    let conn = app.db.connect().await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM tickets").await, 0);
    // The last four-digit year is fine.
    app.ok(
        &agent,
        "query($at: DateTime) { tickets(filter: {createdBefore: $at}) { totalCount } }",
        json!({"at": "9999-12-31T23:59:59Z"}),
    )
    .await;
}
