//! Prometheus metrics of one server instance, in a registry of its own (two
//! servers in one process, as in the tests, keep separate values).
//!
//! Names and units follow Prometheus conventions: `_total` counters,
//! `_seconds` histograms, base units. Label values are bounded: routes are
//! the router's patterns, statuses and types are small sets, and operation
//! names are capped (anonymous operations are grouped, names beyond
//! [`MAX_OPERATION_NAMES`] count as `other`).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

/// Distinct operation names kept as label values; later names count as `other`.
pub const MAX_OPERATION_NAMES: usize = 200;
/// The longest operation name kept as a label value.
const MAX_OPERATION_NAME_CHARS: usize = 64;

/// Latency buckets, in seconds: 1 ms to 10 s.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn latency() -> Histogram {
    Histogram::new(BUCKETS)
}

type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRouteLabels {
    route: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    operation: String,
    r#type: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// The instance's metrics.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Latencies<HttpRouteLabels>,
    operations: Family<OperationLabels, Counter>,
    operation_duration: Latencies<OperationLabels>,
    operation_errors: Family<ErrorLabels, Counter>,
    names: Mutex<HashSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every family described.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("itsm");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            http_requests.clone(),
        );
        let http_duration: Latencies<HttpRouteLabels> = Family::new_with_constructor(latency);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request (to the response head; a WebSocket until its upgrade), by route pattern and method",
            Unit::Seconds,
            http_duration.clone(),
        );
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "graphql_operations",
            "GraphQL operations run, by operation name (anonymous ones grouped) and type",
            operations.clone(),
        );
        let operation_duration: Latencies<OperationLabels> = Family::new_with_constructor(latency);
        registry.register_with_unit(
            "graphql_operation_duration",
            "Time to run a GraphQL query or mutation, by operation name and type",
            Unit::Seconds,
            operation_duration.clone(),
        );
        let operation_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "graphql_errors",
            "Errors in GraphQL responses, by operation name, type and extensions.code",
            operation_errors.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "The running build: always 1, with its version as a label",
            build.clone(),
        );
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        Self(Arc::new(Inner {
            registry,
            http_requests,
            http_duration,
            operations,
            operation_duration,
            operation_errors,
            names: Mutex::default(),
        }))
    }

    /// Counts an HTTP answer.
    pub fn http(&self, route: &'static str, method: &str, status: u16, took: Duration) {
        let method = match method {
            "GET" => "GET",
            "POST" => "POST",
            "OPTIONS" => "OPTIONS",
            "HEAD" => "HEAD",
            _ => "other",
        };
        self.0
            .http_requests
            .get_or_create(&HttpLabels {
                route,
                method,
                status,
            })
            .inc();
        self.0
            .http_duration
            .get_or_create(&HttpRouteLabels { route, method })
            .observe(took.as_secs_f64());
    }

    /// Counts a GraphQL operation that ran (`took` is `None` for a
    /// subscription, which has no single duration), and its errors' codes.
    pub fn operation(
        &self,
        name: Option<&str>,
        kind: &'static str,
        took: Option<Duration>,
        codes: &[String],
    ) {
        let operation = self.operation_label(name);
        let labels = OperationLabels {
            operation: operation.clone(),
            r#type: kind,
        };
        self.0.operations.get_or_create(&labels).inc();
        if let Some(took) = took {
            self.0
                .operation_duration
                .get_or_create(&labels)
                .observe(took.as_secs_f64());
        }
        self.count_errors(operation, kind, codes);
    }

    /// Counts errors of an operation already counted (a subscription's later events).
    pub fn operation_errors(&self, name: Option<&str>, kind: &'static str, codes: &[String]) {
        let operation = self.operation_label(name);
        self.count_errors(operation, kind, codes);
    }

    fn count_errors(&self, operation: String, kind: &'static str, codes: &[String]) {
        for code in codes {
            self.0
                .operation_errors
                .get_or_create(&ErrorLabels {
                    operation: operation.clone(),
                    r#type: kind,
                    code: code.clone(),
                })
                .inc();
        }
    }

    /// The label for an operation name: `anonymous`, the name, or `other`
    /// once [`MAX_OPERATION_NAMES`] names are in use.
    fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return "anonymous".into();
        };
        let name: String = name.chars().take(MAX_OPERATION_NAME_CHARS).collect();
        let Ok(mut names) = self.0.names.lock() else {
            return "other".into();
        };
        if names.contains(&name) {
            return name;
        }
        if names.len() < MAX_OPERATION_NAMES {
            names.insert(name.clone());
            return name;
        }
        "other".into()
    }

    /// The registry in Prometheus's text format (0.0.4).
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.0.registry)
        {
            tracing::error!(%error, "could not render metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_bounded() {
        let metrics = Metrics::new();
        assert_eq!(metrics.operation_label(None), "anonymous");
        assert_eq!(metrics.operation_label(Some("")), "anonymous");
        for n in 0..MAX_OPERATION_NAMES {
            assert_eq!(
                metrics.operation_label(Some(&format!("Op{n}"))),
                format!("Op{n}")
            );
        }
        assert_eq!(metrics.operation_label(Some("OneTooMany")), "other");
        assert_eq!(metrics.operation_label(Some("Op7")), "Op7");
        let long = "x".repeat(500);
        assert_eq!(metrics.operation_label(Some(&long)), "other");
    }

    #[test]
    fn families_render_with_help_type_and_units() {
        let metrics = Metrics::new();
        metrics.http("/graphql", "POST", 200, Duration::from_millis(3));
        metrics.operation(
            Some("Board"),
            "query",
            Some(Duration::from_millis(2)),
            &["FORBIDDEN".into()],
        );
        let text = metrics.render();
        for line in [
            "# TYPE itsm_http_requests_total counter",
            "itsm_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"200\"} 1",
            "# TYPE itsm_http_request_duration_seconds histogram",
            "itsm_graphql_operations_total{operation=\"Board\",type=\"query\"} 1",
            "itsm_graphql_errors_total{operation=\"Board\",type=\"query\",code=\"FORBIDDEN\"} 1",
            "itsm_build_info{version=\"",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
