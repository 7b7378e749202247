//! What mainstream clients rely on: CORS for a portal on another origin, the
//! WebSocket close handshake, subprotocol choice, the token shapes clients
//! put in `connection_init`, and GraphQL-over-HTTP media types on every
//! answer, errors included.

use futures_util::{SinkExt, StreamExt};
use itsm::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{
    Message,
    client::IntoClientRequest,
    http::HeaderValue,
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use crate::helpers::{Backend, TestApp, WsClient, spawn_app, spawn_app_with};

const PORTAL: &str = "https://portal.example.com";

crate::on_both_backends!(
    a_preflight_from_an_allowed_origin_is_answered,
    other_origins_get_no_cors_headers,
    a_star_lets_any_origin_call_without_credentials,
    without_the_setting_there_is_no_cors,
    websocket_upgrades_are_checked_against_the_origins,
    a_client_close_is_answered_with_its_code,
    graphql_transport_ws_is_preferred_when_both_are_offered,
    the_token_is_read_from_every_payload_shape_clients_send,
    a_bad_token_in_any_shape_closes_the_connection_as_forbidden,
    errors_before_execution_carry_their_code_in_the_negotiated_type,
    results_follow_the_accept_header,
    the_explorer_loads_everything_from_the_server_itself,
    a_body_over_the_limit_gets_a_graphql_error,
    the_feed_position_is_one_query_away,
    request_errors_are_400_in_the_graphql_type_and_200_in_plain_json,
    comment_events_name_the_comment_by_its_global_id,
);

async fn with_portal(backend: Backend) -> TestApp {
    spawn_app_with(backend, &["--cors-origins", PORTAL]).await
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight")
}

fn header<'r>(response: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn a_preflight_from_an_allowed_origin_is_answered(backend: Backend) {
    let app = with_portal(backend).await;
    let response = preflight(&app, PORTAL).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some(PORTAL)
    );
    let methods = header(&response, "access-control-allow-methods").unwrap_or_default();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let headers = header(&response, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert_eq!(header(&response, "access-control-max-age"), Some("600"));
    assert_eq!(header(&response, "access-control-allow-credentials"), None);

    // The request itself: the origin is allowed and the useful headers exposed.
    let rita = app.person("rita", Role::Requester).await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("origin", PORTAL)
        .bearer_auth(&rita.token)
        .json(&json!({"query": "{ viewer { id } }"}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some(PORTAL)
    );
    let exposed = header(&response, "access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for name in ["x-request-id", "retry-after", "www-authenticate"] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["viewer"]["id"], rita.id);
}

async fn other_origins_get_no_cors_headers(backend: Backend) {
    let app = with_portal(backend).await;
    for origin in [
        "https://evil.example",
        "https://portal.example.com.evil.example",
    ] {
        let response = preflight(&app, origin).await;
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            None,
            "{origin}"
        );
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("origin", origin)
            .json(&json!({"query": "{ __typename }"}))
            .send()
            .await
            .expect("post");
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            None,
            "{origin}"
        );
    }
}

async fn a_star_lets_any_origin_call_without_credentials(backend: Backend) {
    let app = spawn_app_with(backend, &["--cors-origins", "*"]).await;
    let response = preflight(&app, "https://anywhere.example").await;
    assert!(response.status().is_success());
    assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&response, "access-control-allow-credentials"), None);
}

async fn without_the_setting_there_is_no_cors(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = preflight(&app, PORTAL).await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

/// Opens a WebSocket offering `protocols`, with an optional `Origin`;
/// the HTTP status of a refused upgrade, or the socket and the chosen
/// subprotocol.
async fn open(
    app: &TestApp,
    protocols: &str,
    origin: Option<&str>,
) -> Result<(WsClient, Option<String>), u16> {
    let mut request = app.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(protocols).expect("header"),
    );
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).expect("header"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, response)) => {
            let chosen = response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Ok((WsClient::from_stream(stream), chosen))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("unexpected handshake failure: {other}"),
    }
}

async fn websocket_upgrades_are_checked_against_the_origins(backend: Backend) {
    let app = with_portal(backend).await;
    assert!(
        open(&app, "graphql-transport-ws", Some(PORTAL))
            .await
            .is_ok()
    );
    assert!(
        open(&app, "graphql-transport-ws", None).await.is_ok(),
        "non-browser clients send no Origin"
    );
    assert_eq!(
        open(&app, "graphql-transport-ws", Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
    // The service's own pages (the explorer) connect from the host they call.
    let own = format!("http://{}", app.address);
    assert!(open(&app, "graphql-transport-ws", Some(&own)).await.is_ok());
    let other_port = format!("http://127.0.0.1:{}", app.address.port() + 1);
    assert_eq!(
        open(&app, "graphql-transport-ws", Some(&other_port))
            .await
            .err(),
        Some(403)
    );

    // Unset, any origin may open one (as before).
    let open_app = spawn_app(backend).await;
    assert!(
        open(
            &open_app,
            "graphql-transport-ws",
            Some("https://evil.example")
        )
        .await
        .is_ok()
    );
}

async fn a_client_close_is_answered_with_its_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let mut ws = WsClient::connect(&app, protocol).await;
        ws.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", rita.token)}}))
            .await;
        assert_eq!(ws.raw_or_close().await, Some(json!("connection_ack")));
        let stream = ws.stream();
        stream
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "done".into(),
            })))
            .await
            .expect("close sent");
        // The server answers with a close frame of the same code before the
        // connection ends: no abnormal closure (1006) on the client.
        let answer = loop {
            match stream.next().await {
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                other => panic!("{protocol}: no close frame, got {other:?}"),
            }
        };
        assert_eq!(answer, Some(1000), "{protocol}");
    }
}

async fn graphql_transport_ws_is_preferred_when_both_are_offered(backend: Backend) {
    let app = spawn_app(backend).await;
    for offered in [
        "graphql-ws, graphql-transport-ws",
        "graphql-transport-ws, graphql-ws",
    ] {
        let (_, chosen) = open(&app, offered, None).await.expect("upgraded");
        assert_eq!(chosen.as_deref(), Some("graphql-transport-ws"), "{offered}");
    }
    let (_, chosen) = open(&app, "graphql-ws", None).await.expect("upgraded");
    assert_eq!(chosen.as_deref(), Some("graphql-ws"));
}

async fn the_token_is_read_from_every_payload_shape_clients_send(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    let bearer = format!("Bearer {}", rita.token);
    for payload in [
        json!({"Authorization": bearer}),
        json!({"authorization": bearer}),
        json!({"headers": {"Authorization": bearer}}),
        json!({"headers": {"authorization": rita.token}}),
        json!({"authToken": rita.token}),
    ] {
        let mut ws = WsClient::connect(&app, "graphql-transport-ws").await;
        ws.send(json!({"type": "connection_init", "payload": payload}))
            .await;
        assert_eq!(
            ws.raw_or_close().await,
            Some(json!("connection_ack")),
            "{payload}"
        );
        ws.subscribe("v", "{ viewer { id } }", json!({})).await;
        let answer = ws.next_of("v").await;
        assert_eq!(
            answer["payload"]["data"]["viewer"]["id"], rita.id,
            "{payload}: {answer}"
        );
    }
}

async fn a_bad_token_in_any_shape_closes_the_connection_as_forbidden(backend: Backend) {
    let app = spawn_app(backend).await;
    for payload in [
        json!({"Authorization": "Bearer not-a-token"}),
        json!({"headers": {"Authorization": "Bearer not-a-token"}}),
        json!({"authToken": "not-a-token"}),
        json!({"Authorization": 42}),
    ] {
        let mut ws = WsClient::connect(&app, "graphql-transport-ws").await;
        ws.send(json!({"type": "connection_init", "payload": payload}))
            .await;
        let (code, _) = ws.close_code().await;
        assert_eq!(code, 4403, "{payload}");
    }
}

async fn errors_before_execution_carry_their_code_in_the_negotiated_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: [(Option<&str>, &str); 3] = [
        (None, "application/graphql-response+json"),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            "application/graphql-response+json",
        ),
        (Some("application/json"), "application/json"),
    ];
    for (accept, expected) in cases {
        let mut request = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth("not-a-token")
            .json(&json!({"query": "{ viewer { id } }"}));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.expect("post");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            header(&response, "content-type"),
            Some(expected),
            "{accept:?}"
        );
        assert!(header(&response, "www-authenticate").is_some());
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }

    // A body the server refuses to read: the same shape and type.
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .header("content-type", "text/plain")
        .body("{ viewer { id } }")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        header(&response, "content-type"),
        Some("application/graphql-response+json")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

async fn results_follow_the_accept_header(backend: Backend) {
    let app = spawn_app(backend).await;
    for (accept, expected) in [
        ("application/json", "application/json"),
        ("*/*", "application/graphql-response+json"),
        (
            "application/graphql-response+json",
            "application/graphql-response+json",
        ),
    ] {
        let response = app
            .client
            .get(app.url("/graphql?query=%7B__typename%7D"))
            .header("accept", accept)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "content-type"),
            Some(expected),
            "{accept}"
        );
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["data"]["__typename"], "Query");
    }
}

async fn the_explorer_loads_everything_from_the_server_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    let page = app.client.get(app.url("/")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text().await.expect("html");
    assert!(
        !html.contains("http:") && !html.contains("https:"),
        "{html}"
    );
    let mut references = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html.as_str();
        while let Some(at) = rest.find(attribute) {
            rest = &rest[at + attribute.len()..];
            let end = rest.find('"').expect("closed attribute");
            // An empty inline icon (`data:,`) loads nothing.
            if &rest[..end] != "data:," {
                references.push(rest[..end].to_owned());
            }
            rest = &rest[end..];
        }
    }
    assert_eq!(references.len(), 6, "{references:?}");
    for reference in &references {
        assert!(reference.starts_with("/explorer/"), "{reference}");
        let asset = app
            .client
            .get(app.url(reference))
            .send()
            .await
            .expect("asset");
        assert_eq!(asset.status(), StatusCode::OK, "{reference}");
        let media = header(&asset, "content-type")
            .unwrap_or_default()
            .to_owned();
        let expected = if reference.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(media.starts_with(expected), "{reference}: {media}");
        let body = asset.text().await.expect("body");
        assert!(body.len() > 100, "{reference}");
        if reference.ends_with("explorer.js") {
            // Subscriptions over graphql-transport-ws, with the Headers tab's token.
            assert!(body.contains("graphqlWs.createClient"));
            assert!(body.contains("connectionParams"));
            assert!(body.contains("Authorization"));
        }
    }
    let licenses = app
        .client
        .get(app.url("/explorer/LICENSES.txt"))
        .send()
        .await
        .expect("licenses");
    assert_eq!(licenses.status(), StatusCode::OK);
    let text = licenses.text().await.expect("text");
    for package in ["GraphiQL 3.8.3", "React 18.3.1", "graphql-ws 5.16.2"] {
        assert!(text.contains(package), "{package}");
    }
    let missing = app
        .client
        .get(app.url("/explorer/nope.js"))
        .send()
        .await
        .expect("missing");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

async fn a_body_over_the_limit_gets_a_graphql_error(backend: Backend) {
    let app = spawn_app_with(backend, &["--max-body-bytes", "2000"]).await;
    let query = format!("{{ __typename }} # {}", "x".repeat(5000));
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({"query": query}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        header(&response, "content-type"),
        Some("application/graphql-response+json")
    );
    let body: Value = response.json().await.expect("a GraphQL error body");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

/// `ticketEvents(last: 1)` is the newest event; a subscription started
/// after its cursor gets what follows and nothing before.
async fn the_feed_position_is_one_query_away(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    let ticket = app
        .incident(&rita, "Laptop fan loud", "LOW", "LOW", None)
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for body in ["It rattles", "Now it squeaks"] {
        app.ok(
            &rita,
            "mutation($id: ID!, $b: String!) { addComment(input: {ticketId: $id, body: $b}) { comment { id } } }",
            json!({"id": ticket, "b": body}),
        )
        .await;
    }
    let all = app
        .ok(
            &rita,
            "{ ticketEvents(first: 100) { edges { cursor } } }",
            json!({}),
        )
        .await;
    let edges = all["ticketEvents"]["edges"].as_array().expect("edges");
    let newest = app
        .ok(
            &rita,
            "{ ticketEvents(last: 1) { edges { cursor } pageInfo { hasPreviousPage } } }",
            json!({}),
        )
        .await;
    let position = &newest["ticketEvents"]["edges"][0]["cursor"];
    assert_eq!(position, &edges.last().expect("events")["cursor"]);
    assert_eq!(newest["ticketEvents"]["pageInfo"]["hasPreviousPage"], true);

    let mut ws = WsClient::signed_in(&app, &rita).await;
    ws.subscribe(
        "mine",
        "subscription($after: String) { myTicketUpdates(after: $after) { cursor kind } }",
        json!({"after": position}),
    )
    .await;
    app.wait_for_subscriptions(1).await;
    app.ok(
        &rita,
        "mutation($id: ID!) { addComment(input: {ticketId: $id, body: \"Fixed itself\"}) { comment { id } } }",
        json!({"id": ticket}),
    )
    .await;
    let event = ws.next_of("mine").await;
    assert_eq!(
        event["payload"]["data"]["myTicketUpdates"]["kind"],
        "COMMENT_ADDED"
    );
    assert_ne!(
        &event["payload"]["data"]["myTicketUpdates"]["cursor"],
        position
    );
    let after = app
        .ok(
            &rita,
            "query($after: String) { ticketEvents(after: $after) { edges { cursor } } }",
            json!({"after": position}),
        )
        .await;
    assert_eq!(
        after["ticketEvents"]["edges"][0]["cursor"],
        event["payload"]["data"]["myTicketUpdates"]["cursor"],
        "the first event after the position, nothing replayed before it"
    );
}

async fn comment_events_name_the_comment_by_its_global_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    let ticket = app.incident(&rita, "Mouse dead", "LOW", "LOW", None).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let comment = app
        .ok(
            &rita,
            "mutation($id: ID!) { addComment(input: {ticketId: $id, body: \"New batteries did not help\"}) { comment { id } } }",
            json!({"id": ticket}),
        )
        .await["addComment"]["comment"]["id"]
        .clone();
    let events = app
        .ok(
            &rita,
            "query($id: ID!) { ticketEvents(ticketId: $id, last: 1) { edges { node { kind changes { field to } } } } }",
            json!({"id": ticket}),
        )
        .await;
    let event = &events["ticketEvents"]["edges"][0]["node"];
    assert_eq!(event["kind"], "COMMENT_ADDED");
    assert_eq!(
        event["changes"],
        json!([{"field": "comment", "to": comment}])
    );
    let node = app
        .ok(
            &rita,
            "query($id: ID!) { node(id: $id) { ... on Comment { body } } }",
            json!({"id": comment}),
        )
        .await;
    assert_eq!(node["node"]["body"], "New batteries did not help");
}

/// The GraphQL-over-HTTP spec: a request that did not run (it did not parse
/// or validate) is 400 without `data` in `application/graphql-response+json`,
/// 200 in `application/json`; an error while running is 200 with `data`.
async fn request_errors_are_400_in_the_graphql_type_and_200_in_plain_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("ada", Role::Admin);
    let send = |query: &'static str, accept: &'static str| {
        let request = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .header("accept", accept)
            .json(&json!({"query": query}));
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status();
            let media = header(&response, "content-type")
                .unwrap_or_default()
                .to_owned();
            (status, media, response.json::<Value>().await.expect("json"))
        }
    };
    for (query, code) in [
        ("{ viewer { id ", "GRAPHQL_PARSE_FAILED"),
        ("{ viewer { noSuchField } }", "GRAPHQL_VALIDATION_FAILED"),
    ] {
        let (status, media, body) = send(query, "application/graphql-response+json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(media, "application/graphql-response+json");
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");

        let (status, media, body) = send(query, "application/json").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(media, "application/json");
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
    }
    // An error from a resolver: execution ran, so 200 with `data`.
    let (status, _, body) = send(
        "mutation { transitionTicket(input: {id: \"VGlja2V0Ojk5OTk\", to: RESOLVED}) { ticket { id } } }",
        "application/graphql-response+json",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("data").is_some(), "{body}");
    assert!(body["errors"][0]["path"].is_array(), "{body}");
}
