//! Prometheus metrics read back after known traffic, and checked by
//! Prometheus's own `promtool`.

use itsm::auth::Role;
use serde_json::json;

use crate::helpers::{Backend, TestApp, WsClient, metric_value, spawn_app};

crate::on_both_backends!(metrics_count_known_traffic_by_route_operation_and_code);

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
