//! Prometheus metrics read back after known traffic, and checked by
//! Prometheus's own `promtool`.

use itsm::auth::Role;
use serde_json::json;

use crate::helpers::{Backend, TestApp, WsClient, metric_value, spawn_app, spawn_app_with};

crate::on_both_backends!(
    metrics_count_known_traffic_by_route_operation_and_code,
    metrics_follow_sockets_subscriptions_and_events,
    the_event_pump_lag_shows_events_not_yet_published,
    statements_per_operation_match_what_responses_report,
    pool_figures_follow_the_configured_pools,
    sla_sweeps_are_counted_with_their_alerts,
);

mod promtool {
    use crate::helpers::Backend;

    crate::on_both_backends!(
        ignore = "needs promtool (PROMTOOL=path; .ci/run unpacks Debian's prometheus package)";
        accepts_the_metrics,
    );

    async fn accepts_the_metrics(backend: Backend) {
        super::promtool_accepts_the_metrics(backend).await;
    }

    /// The shipped scrape configuration and alert rules (`deploy/prometheus/`)
    /// are what Prometheus accepts, and name metrics the service exports.
    #[tokio::test]
    #[ignore = "needs promtool (PROMTOOL=path; .ci/run unpacks Debian's prometheus package)"]
    async fn accepts_the_scrape_config_and_alert_rules() {
        let promtool = std::env::var("PROMTOOL").expect("PROMTOOL names the promtool binary");
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
        // The config names a token file; Prometheus checks that it exists.
        let dir = std::env::temp_dir().join(format!("itsm-prometheus-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for file in ["prometheus.yml", "alerts.yml"] {
            std::fs::copy(shipped.join(file), dir.join(file)).expect("copied");
        }
        std::fs::write(dir.join("itsm-metrics-token"), "a-token\n").expect("token file");
        for args in [["check", "config"], ["check", "rules"]] {
            let file = if args[1] == "config" {
                "prometheus.yml"
            } else {
                "alerts.yml"
            };
            let output = std::process::Command::new(&promtool)
                .args(args)
                .arg(file)
                .current_dir(&dir)
                .output()
                .expect("promtool ran");
            assert!(
                output.status.success(),
                "promtool {args:?} {file}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::fs::remove_dir_all(&dir).expect("cleaned up");

        // Every itsm_ metric the rules use is a family a running server exports.
        // (A family shows once it has a sample: after some traffic.)
        let app = crate::helpers::spawn_app(Backend::Sqlite).await;
        super::known_traffic(&app).await;
        let text = super::metrics_text(&app).await;
        let rules = std::fs::read_to_string(shipped.join("alerts.yml")).expect("rules");
        for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("itsm_") {
                let family = word.trim_end_matches("_bucket");
                assert!(
                    text.contains(&format!("# TYPE {family} ")),
                    "{word} is not exported:\n{text}"
                );
            }
        }
    }
}

async fn metrics_text(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// Runs a little of everything: named, anonymous and broken queries, a
/// refused mutation, a subscription, health and an unknown path.
async fn known_traffic(app: &TestApp) {
    let token = app.token("metrics.agent", Role::Agent);
    for _ in 0..3 {
        let (_, body) = app
            .graphql_with(
                json!({"query": "query Board { viewer { id } }"}),
                Some(&token),
            )
            .await;
        assert!(body["data"]["viewer"]["id"].is_string(), "{body}");
    }
    for _ in 0..2 {
        app.graphql("{ viewer { id } }", Some(&token)).await;
    }
    app.graphql("{ viewer { id ", Some(&token)).await;
    let (_, refused) = app
        .graphql(
            "mutation MakeTeam { createTeam(input: {name: \"Night shift\"}) { team { id } } }",
            Some(&token),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let health = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("health");
    assert!(health.status().is_success());
    let missing = app
        .client
        .get(app.url("/no/such/path"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);

    let mut ws = WsClient::signed_in_at(&app.ws_url(), &token).await;
    ws.subscribe(
        "beats",
        "subscription Beats { heartbeat(intervalSeconds: 1) { seq } }",
        json!({}),
    )
    .await;
    assert_eq!(
        ws.next_of("beats").await["payload"]["data"]["heartbeat"]["seq"],
        1
    );
}

async fn metrics_count_known_traffic_by_route_operation_and_code(backend: Backend) {
    let app = spawn_app(backend).await;
    known_traffic(&app).await;
    let text = metrics_text(&app).await;
    let value = |sample: &str| metric_value(&text, sample);

    let operations = "itsm_graphql_operations_total";
    assert_eq!(
        value(&format!(
            "{operations}{{operation=\"Board\",type=\"query\"}}"
        )),
        3
    );
    assert_eq!(
        value(&format!(
            "{operations}{{operation=\"anonymous\",type=\"query\"}}"
        )),
        2
    );
    assert_eq!(
        value(&format!(
            "{operations}{{operation=\"anonymous\",type=\"unknown\"}}"
        )),
        1
    );
    assert_eq!(
        value(&format!(
            "{operations}{{operation=\"MakeTeam\",type=\"mutation\"}}"
        )),
        1
    );
    assert_eq!(
        value(&format!(
            "{operations}{{operation=\"Beats\",type=\"subscription\"}}"
        )),
        1
    );
    let errors = "itsm_graphql_errors_total";
    assert_eq!(
        value(&format!(
            "{errors}{{operation=\"MakeTeam\",type=\"mutation\",code=\"FORBIDDEN\"}}"
        )),
        1
    );
    assert_eq!(
        value(&format!(
            "{errors}{{operation=\"anonymous\",type=\"unknown\",code=\"GRAPHQL_PARSE_FAILED\"}}"
        )),
        1
    );
    assert_eq!(
        value("itsm_graphql_operation_duration_seconds_count{operation=\"Board\",type=\"query\"}"),
        3
    );

    let requests = "itsm_http_requests_total";
    assert_eq!(
        value(&format!(
            "{requests}{{route=\"/graphql\",method=\"POST\",status=\"200\"}}"
        )),
        6
    );
    assert_eq!(
        value(&format!(
            "{requests}{{route=\"/graphql\",method=\"POST\",status=\"400\"}}"
        )),
        1
    );
    assert_eq!(
        value(&format!(
            "{requests}{{route=\"/graphql\",method=\"GET\",status=\"101\"}}"
        )),
        1
    );
    assert_eq!(
        value(&format!(
            "{requests}{{route=\"/healthz\",method=\"GET\",status=\"200\"}}"
        )),
        1
    );
    assert_eq!(
        value(&format!(
            "{requests}{{route=\"unmatched\",method=\"GET\",status=\"404\"}}"
        )),
        1
    );
    assert_eq!(
        value("itsm_http_request_duration_seconds_count{route=\"/graphql\",method=\"POST\"}"),
        7
    );
    assert_eq!(
        value(&format!(
            "itsm_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1
    );
    // Every family has its help and type.
    for family in [
        "itsm_http_requests_total",
        "itsm_http_request_duration_seconds",
        "itsm_graphql_operations_total",
        "itsm_graphql_operation_duration_seconds",
        "itsm_graphql_errors_total",
        "itsm_build_info",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family}: {text}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family}: {text}"
        );
    }
}

async fn promtool_accepts_the_metrics(backend: Backend) {
    let promtool = std::env::var("PROMTOOL").expect("PROMTOOL names the promtool binary");
    let app = spawn_app(backend).await;
    known_traffic(&app).await;
    let text = metrics_text(&app).await;
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {promtool}: {e}"));
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("metrics written to promtool");
    }
    let output = child.wait_with_output().expect("promtool ran");
    // Exit 3 is a lint finding (a missing HELP, a bad name or unit suffix …).
    assert!(
        output.status.success(),
        "promtool: {}\n{}{}\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One sample's value, as a float.
fn sample(text: &str, sample: &str) -> f64 {
    crate::helpers::sample_value(text, sample).unwrap_or_else(|| panic!("no {sample} in {text}"))
}

/// Scrapes until `sample` reaches at least `at_least`; fails after ten seconds.
async fn scrape_until(app: &TestApp, name: &str, at_least: f64) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = metrics_text(app).await;
        let value = crate::helpers::sample_value(&text, name).unwrap_or(0.0);
        if value >= at_least {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} stayed at {value}, below {at_least}:\n{text}"
        );
        tokio::task::yield_now().await;
    }
}

async fn event_count(app: &TestApp) -> f64 {
    let conn = app.db.connect().await;
    #[allow(clippy::cast_precision_loss)]
    let count = crate::helpers::count(&conn, "SELECT COUNT(*) FROM ticket_events").await as f64;
    count
}

async fn metrics_follow_sockets_subscriptions_and_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("ada.metrics", Role::Admin).await;
    let agent = app.person("nina.metrics", Role::Agent).await;
    let (_, queue) = app.team_with_queue(&admin, "Metrics desk", &[&agent]).await;
    let before = event_count(&app).await;

    let mut ws = WsClient::signed_in_at(&app.ws_url(), &agent.token).await;
    ws.subscribe(
        "q",
        "subscription($q: ID!) { queueUpdates(queueId: $q) { seq kind } }",
        json!({"q": queue}),
    )
    .await;
    app.wait_for_subscriptions(1).await;
    let text = metrics_text(&app).await;
    assert_eq!(
        sample(
            &text,
            "itsm_websockets_open{protocol=\"graphql-transport-ws\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "itsm_graphql_subscriptions_active{subscription=\"queueUpdates\"}"
        ),
        1.0
    );

    app.incident(&agent, "Metrics printer jam", "LOW", "LOW", Some(&queue))
        .await;
    let first = ws.next_of("q").await;
    assert_eq!(first["type"], "next", "{first}");
    // Every event committed since the pump started is published, and each
    // reaches the one subscriber.
    let created = event_count(&app).await - before;
    assert!(created >= 1.0);
    let text = scrape_until(&app, "itsm_events_published_total", created).await;
    assert_eq!(sample(&text, "itsm_events_published_total"), created);
    assert_eq!(
        sample(&text, "itsm_event_publish_delay_seconds_count"),
        created
    );
    let text = scrape_until(&app, "itsm_events_delivered_total", created).await;
    assert_eq!(sample(&text, "itsm_events_delivered_total"), created);
    assert_eq!(sample(&text, "itsm_events_dropped_total"), 0.0);
    assert_eq!(sample(&text, "itsm_event_pump_lag_events"), 0.0);
    assert_eq!(sample(&text, "itsm_event_pump_lag_seconds"), 0.0);

    // The socket closes: both gauges fall back.
    drop(ws);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = metrics_text(&app).await;
        let open = sample(
            &text,
            "itsm_websockets_open{protocol=\"graphql-transport-ws\"}",
        );
        let active = sample(
            &text,
            "itsm_graphql_subscriptions_active{subscription=\"queueUpdates\"}",
        );
        if open == 0.0 && active == 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {open} sockets and {active} subscriptions"
        );
        tokio::task::yield_now().await;
    }
}

async fn the_event_pump_lag_shows_events_not_yet_published(backend: Backend) {
    // The pump reads the log only when this process commits (or every hour).
    let app = spawn_app_with(backend, &["--event-poll", "1h"]).await;
    let agent = app.person("lara.lag", Role::Agent).await;
    app.incident(&agent, "Lag baseline", "LOW", "LOW", None)
        .await;
    let before = event_count(&app).await;
    scrape_until(&app, "itsm_events_published_total", 1.0).await;

    // An event committed behind the pump's back (as another replica's would
    // be, with its notification lost): a copy of the newest one.
    let conn = app.db.connect().await;
    for sql in [
        "UPDATE counters SET value = value + 1 WHERE name = 'EVENT'",
        "INSERT INTO ticket_events (seq, ticket_id, queue_id, requester_id, actor_id, kind, visibility, changes, occurred_at) \
         SELECT (SELECT value FROM counters WHERE name = 'EVENT'), ticket_id, queue_id, requester_id, actor_id, kind, visibility, changes, occurred_at \
         FROM ticket_events ORDER BY seq DESC LIMIT 1",
    ] {
        sea_orm::ConnectionTrait::execute_unprepared(&conn, sql)
            .await
            .expect(sql);
    }
    assert_eq!(event_count(&app).await, before + 1.0);
    let text = metrics_text(&app).await;
    assert_eq!(sample(&text, "itsm_event_pump_lag_events"), 1.0, "{text}");
    assert!(sample(&text, "itsm_event_pump_lag_seconds") > 0.0, "{text}");

    // The next local commit wakes the pump, which catches up.
    let published = sample(&text, "itsm_events_published_total");
    app.incident(&agent, "Lag catch-up", "LOW", "LOW", None)
        .await;
    let caught_up = published + (event_count(&app).await - before);
    scrape_until(&app, "itsm_events_published_total", caught_up).await;
    // The lag is read at the start of a scrape and the counters at its end:
    // the scrape that first shows the catch-up may have read the lag just
    // before it. The next ones read it after.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = metrics_text(&app).await;
        let lag = (
            sample(&text, "itsm_event_pump_lag_events"),
            sample(&text, "itsm_event_pump_lag_seconds"),
        );
        if lag == (0.0, 0.0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::task::yield_now().await;
    }
}

async fn statements_per_operation_match_what_responses_report(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = app.person("stan.statements", Role::Agent).await;
    let text = metrics_text(&app).await;
    let count_before = sample(
        &text,
        "itsm_graphql_operation_statements_count{type=\"query\"}",
    );
    let sum_before = sample(
        &text,
        "itsm_graphql_operation_statements_sum{type=\"query\"}",
    );
    let mut reported = 0;
    for query in [
        "{ viewer { id displayName } }",
        "{ tickets(first: 5) { totalCount edges { node { id requester { id } } } } }",
        "{ queues(first: 5) { edges { node { id name } } } }",
    ] {
        let (_, body) = app.graphql(query, Some(&agent.token)).await;
        assert!(body.get("errors").is_none(), "{body}");
        reported += body["extensions"]["cost"]["statements"]
            .as_u64()
            .unwrap_or_else(|| panic!("no statements in {body}"));
    }
    let text = metrics_text(&app).await;
    assert_eq!(
        sample(
            &text,
            "itsm_graphql_operation_statements_count{type=\"query\"}"
        ) - count_before,
        3.0
    );
    #[allow(clippy::cast_precision_loss)]
    let reported = reported as f64;
    assert_eq!(
        sample(
            &text,
            "itsm_graphql_operation_statements_sum{type=\"query\"}"
        ) - sum_before,
        reported
    );
}

async fn pool_figures_follow_the_configured_pools(backend: Backend) {
    // On PostgreSQL the LISTEN bridge holds one connection for good.
    let connections = match backend {
        Backend::Postgres => "2",
        Backend::Sqlite => "1",
    };
    let app = spawn_app_with(backend, &["--db-max-connections", connections]).await;
    let agent = app.person("paula.pool", Role::Agent).await;
    let text = metrics_text(&app).await;
    let pools: &[(&str, f64)] = match backend {
        // PostgreSQL: one pool for reads and writes.
        Backend::Postgres => &[("shared", 2.0)],
        // SQLite: one writer, and readers.
        Backend::Sqlite => &[("read", 1.0), ("write", 1.0)],
    };
    for (pool, max) in pools {
        assert_eq!(
            sample(
                &text,
                &format!("itsm_db_pool_max_connections{{pool=\"{pool}\"}}")
            ),
            *max,
            "{text}"
        );
        let in_use = sample(
            &text,
            &format!("itsm_db_pool_connections{{pool=\"{pool}\",state=\"in_use\"}}"),
        );
        let idle = sample(
            &text,
            &format!("itsm_db_pool_connections{{pool=\"{pool}\",state=\"idle\"}}"),
        );
        assert!(in_use + idle <= *max, "{text}");
    }
    // Many requests at once on one connection: some wait for it.
    let reads = pools[0].0;
    let waits = format!("itsm_db_pool_waits_total{{pool=\"{reads}\"}}");
    let before = sample(&text, &waits);
    let requests = (0..24).map(|_| {
        app.graphql(
            "{ tickets(first: 5) { totalCount edges { node { id } } } queues(first: 5) { totalCount } }",
            Some(&agent.token),
        )
    });
    for (_, body) in futures_util::future::join_all(requests).await {
        assert!(body.get("errors").is_none(), "{body}");
    }
    let text = metrics_text(&app).await;
    assert!(sample(&text, &waits) > before, "{text}");
}

async fn sla_sweeps_are_counted_with_their_alerts(backend: Backend) {
    let app = spawn_app_with(backend, &["--sla-sweep", "100ms"]).await;
    let agent = app.person("sam.sweep", Role::Agent).await;
    let ticket = app
        .incident(&agent, "Long forgotten", "HIGH", "HIGH", None)
        .await;
    crate::helpers::age_ticket(&app, ticket["id"].as_str().expect("id"), 24 * 30).await;
    // Both targets are long past: a response and a resolution breach, and
    // their warnings.
    let text = scrape_until(&app, "itsm_sla_alerts_raised_total", 4.0).await;
    assert_eq!(sample(&text, "itsm_sla_alerts_raised_total"), 4.0, "{text}");
    let runs = sample(&text, "itsm_sla_sweeps_total{result=\"ok\"}");
    assert!(runs >= 1.0, "{text}");
    assert_eq!(
        sample(&text, "itsm_sla_sweeps_total{result=\"error\"}"),
        0.0
    );
    assert!(sample(&text, "itsm_sla_sweep_duration_seconds_count") >= runs);
    let last = sample(&text, "itsm_sla_sweep_last_success_timestamp_seconds");
    #[allow(clippy::cast_precision_loss)]
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - 60.0..=now + 1.0).contains(&last), "{last} vs {now}");
}
