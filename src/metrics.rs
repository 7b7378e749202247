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
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder},
    metrics::{
        MetricType,
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::Histogram,
    },
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

/// Buckets for SQL statements per operation.
const STATEMENT_BUCKETS: [f64; 11] = [0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 100.0];

fn statement_counts() -> Histogram {
    Histogram::new(STATEMENT_BUCKETS)
}

/// Seconds since the Unix epoch, now.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubscriptionLabels {
    subscription: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// A gauge raised while this guard lives.
#[derive(Debug)]
pub struct Held(Gauge);

impl Held {
    fn new(gauge: Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Events through this replica's bus: published by the pump, delivered to
/// subscribers, dropped for subscribers that fell behind; and how far the
/// pump has read the log.
#[derive(Clone, Debug)]
pub struct EventStats {
    published: Counter,
    delivered: Counter,
    dropped: Counter,
    executions: Counter,
    groups: Gauge,
    delay: Histogram,
    /// The sequence number of the last event published; -1 before the pump
    /// has read the log.
    position: Arc<AtomicI64>,
}

impl Default for EventStats {
    fn default() -> Self {
        Self {
            published: Counter::default(),
            delivered: Counter::default(),
            dropped: Counter::default(),
            executions: Counter::default(),
            groups: Gauge::default(),
            delay: latency(),
            position: Arc::new(AtomicI64::new(-1)),
        }
    }
}

impl EventStats {
    /// The pump starts after `seq` (events before it are not published).
    pub fn started_at(&self, seq: i64) {
        self.position.store(seq, Ordering::Release);
    }

    /// The pump published event `seq`, committed `delay` ago.
    pub fn published(&self, seq: i64, delay: Duration) {
        self.published.inc();
        self.delay.observe(delay.as_secs_f64());
        self.position.store(seq, Ordering::Release);
    }

    /// An event reached one subscriber.
    pub fn delivered(&self) {
        self.delivered.inc();
    }

    /// A subscription's selection was executed for one event.
    pub fn executed(&self) {
        self.executions.inc();
    }

    /// A group of subscriptions sharing one execution started.
    pub fn group_started(&self) {
        self.groups.inc();
    }

    /// A group of subscriptions sharing one execution ended.
    pub fn group_ended(&self) {
        self.groups.dec();
    }

    /// Events reached `count` subscribers.
    pub fn delivered_to(&self, count: u64) {
        self.delivered.inc_by(count);
    }

    /// A subscriber fell behind by `missed` events and was stopped.
    pub fn dropped(&self, missed: u64) {
        self.dropped.inc_by(missed);
    }

    /// The last sequence number published, once the pump has read the log.
    pub fn position(&self) -> Option<i64> {
        Some(self.position.load(Ordering::Acquire)).filter(|seq| *seq >= 0)
    }
}

/// The SLA sweep's runs.
#[derive(Clone, Debug)]
pub struct SweepStats {
    runs: Family<ResultLabels, Counter>,
    duration: Histogram,
    raised: Counter,
    last_success: Gauge<f64, AtomicU64>,
}

impl Default for SweepStats {
    fn default() -> Self {
        let runs = Family::<ResultLabels, Counter>::default();
        // Both series exist from the start, so rates and alerts see zeros.
        for result in ["ok", "error"] {
            let _ = runs.get_or_create(&ResultLabels { result });
        }
        Self {
            runs,
            duration: latency(),
            raised: Counter::default(),
            last_success: Gauge::default(),
        }
    }
}

impl SweepStats {
    /// One sweep took `took` and raised `raised` alerts, or failed (`None`).
    pub fn swept(&self, took: Duration, raised: Option<usize>) {
        self.duration.observe(took.as_secs_f64());
        let result = match raised {
            Some(raised) => {
                self.raised
                    .inc_by(u64::try_from(raised).unwrap_or(u64::MAX));
                self.last_success.set(unix_now());
                "ok"
            }
            None => "error",
        };
        self.runs.get_or_create(&ResultLabels { result }).inc();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

/// Webhook deliveries this replica made.
#[derive(Clone, Debug)]
pub struct WebhookStats {
    attempts: Family<OutcomeLabels, Counter>,
    duration: Histogram,
    delay: Histogram,
    failing: Counter,
    pruned: Counter,
    looks: Counter,
}

impl Default for WebhookStats {
    fn default() -> Self {
        let attempts = Family::<OutcomeLabels, Counter>::default();
        for outcome in ["succeeded", "failed"] {
            let _ = attempts.get_or_create(&OutcomeLabels { outcome });
        }
        Self {
            attempts,
            duration: latency(),
            delay: latency(),
            failing: Counter::default(),
            pruned: Counter::default(),
            looks: Counter::default(),
        }
    }
}

impl WebhookStats {
    /// One attempt took `took`; `delay` is from the event's commit to a
    /// successful answer (`None` for a failed attempt).
    pub fn attempted(&self, took: Duration, delay: Option<Duration>) {
        self.duration.observe(took.as_secs_f64());
        let outcome = match delay {
            Some(delay) => {
                self.delay.observe(delay.as_secs_f64());
                "succeeded"
            }
            None => "failed",
        };
        self.attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// An endpoint's retries ran out.
    pub fn marked_failing(&self) {
        self.failing.inc();
    }

    /// `count` old delivery attempts were deleted.
    pub fn pruned(&self, count: u64) {
        self.pruned.inc_by(count);
    }

    /// The worker looked for endpoints with events to send.
    pub fn looked(&self) {
        self.looks.inc();
    }
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
    operation_statements: Family<TypeLabels, Histogram, fn() -> Histogram>,
    websockets: Family<ProtocolLabels, Gauge>,
    subscriptions: Family<SubscriptionLabels, Gauge>,
    events: EventStats,
    event_lag: Gauge,
    event_lag_seconds: Gauge<f64, AtomicU64>,
    sweeps: SweepStats,
    webhooks: WebhookStats,
    webhook_endpoints: Family<StatusLabels, Gauge>,
    names: Mutex<HashSet<String>>,
    subscription_names: Mutex<HashSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every family described.
    pub fn new() -> Self {
        Self::with_collectors(Vec::new())
    }

    /// A fresh registry with every family described, and `collectors` that
    /// read their figures at each scrape (the database pools, the key set).
    pub fn with_collectors(collectors: Vec<Box<dyn Collector>>) -> Self {
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
        let operation_statements: Family<TypeLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(statement_counts);
        registry.register(
            "graphql_operation_statements",
            "SQL statements one GraphQL operation ran (a subscription: each event), by type",
            operation_statements.clone(),
        );
        let websockets = Family::<ProtocolLabels, Gauge>::default();
        registry.register(
            "websockets_open",
            "WebSockets open on the public listener, by subprotocol",
            websockets.clone(),
        );
        let subscriptions = Family::<SubscriptionLabels, Gauge>::default();
        registry.register(
            "graphql_subscriptions_active",
            "GraphQL subscriptions running, by subscription field",
            subscriptions.clone(),
        );
        let events = EventStats::default();
        registry.register(
            "events_published",
            "Ticket events the pump read from the log and published to this replica's subscribers",
            events.published.clone(),
        );
        registry.register(
            "events_delivered",
            "Ticket events sent to one subscription (one per subscription that receives it)",
            events.delivered.clone(),
        );
        registry.register(
            "subscription_executions",
            "Executions of a subscription's selection for one event: one per group of subscriptions that share it (same document, variables and viewer), however many are in the group",
            events.executions.clone(),
        );
        registry.register(
            "subscription_groups",
            "Groups of WebSocket subscriptions that share one execution per event",
            events.groups.clone(),
        );
        registry.register(
            "events_dropped",
            "Ticket events a subscription missed by falling a whole buffer behind (it was stopped and told to resume with after)",
            events.dropped.clone(),
        );
        registry.register_with_unit(
            "event_publish_delay",
            "Time from an event's recording to its publication on this replica",
            Unit::Seconds,
            events.delay.clone(),
        );
        let event_lag = Gauge::default();
        registry.register(
            "event_pump_lag_events",
            "Events committed to the log that this replica's pump has not published yet (read at scrape)",
            event_lag.clone(),
        );
        let event_lag_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "event_pump_lag",
            "Age of the oldest event this replica's pump has not published yet; 0 when caught up (read at scrape)",
            Unit::Seconds,
            event_lag_seconds.clone(),
        );
        let sweeps = SweepStats::default();
        registry.register(
            "sla_sweeps",
            "SLA sweeps run, by result (ok or error)",
            sweeps.runs.clone(),
        );
        registry.register_with_unit(
            "sla_sweep_duration",
            "Time one SLA sweep took",
            Unit::Seconds,
            sweeps.duration.clone(),
        );
        registry.register(
            "sla_alerts_raised",
            "SLA warnings and breaches this replica raised",
            sweeps.raised.clone(),
        );
        registry.register(
            "sla_sweep_last_success_timestamp_seconds",
            "When the last SLA sweep succeeded (Unix time; 0 before the first)",
            sweeps.last_success.clone(),
        );
        let webhooks = WebhookStats::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts this replica made, by outcome (succeeded: a 2xx answer)",
            webhooks.attempts.clone(),
        );
        registry.register_with_unit(
            "webhook_delivery_duration",
            "Time one webhook delivery attempt took, from sending to the end of the answer",
            Unit::Seconds,
            webhooks.duration.clone(),
        );
        registry.register_with_unit(
            "webhook_delivery_delay",
            "Time from an event's commit to its successful webhook delivery",
            Unit::Seconds,
            webhooks.delay.clone(),
        );
        registry.register(
            "webhooks_marked_failing",
            "Webhook endpoints this replica marked failing (and paused) after their retries ran out",
            webhooks.failing.clone(),
        );
        registry.register(
            "webhook_deliveries_pruned",
            "Webhook delivery attempts this replica deleted as older than ITSM_WEBHOOK_KEEP_DELIVERIES",
            webhooks.pruned.clone(),
        );
        registry.register(
            "webhook_looks",
            "Times this replica's webhook worker looked for endpoints with events to send",
            webhooks.looks.clone(),
        );
        let webhook_endpoints = Family::<StatusLabels, Gauge>::default();
        for status in ["ACTIVE", "PAUSED", "FAILING"] {
            let _ = webhook_endpoints.get_or_create(&StatusLabels { status });
        }
        registry.register(
            "webhooks",
            "Webhook endpoints by status (read at scrape)",
            webhook_endpoints.clone(),
        );
        for collector in collectors {
            registry.register_collector(collector);
        }
        Self(Arc::new(Inner {
            registry,
            http_requests,
            http_duration,
            operations,
            operation_duration,
            operation_errors,
            operation_statements,
            websockets,
            subscriptions,
            events,
            event_lag,
            event_lag_seconds,
            sweeps,
            webhooks,
            webhook_endpoints,
            names: Mutex::default(),
            subscription_names: Mutex::default(),
        }))
    }

    /// The event counters, for the bus and the pump.
    pub fn events(&self) -> EventStats {
        self.0.events.clone()
    }

    /// The SLA sweep's counters.
    pub fn sweeps(&self) -> SweepStats {
        self.0.sweeps.clone()
    }

    /// The webhook delivery counters.
    pub fn webhooks(&self) -> WebhookStats {
        self.0.webhooks.clone()
    }

    /// How many webhook endpoints there are in `status`, as read at a scrape.
    pub fn set_webhooks(&self, status: &'static str, count: i64) {
        self.0
            .webhook_endpoints
            .get_or_create(&StatusLabels { status })
            .set(count);
    }

    /// How far behind the log this replica's pump is, as read at a scrape.
    pub fn set_event_lag(&self, events: i64, seconds: f64) {
        self.0.event_lag.set(events);
        self.0.event_lag_seconds.set(seconds);
    }

    /// Counts a WebSocket open (with its subprotocol) while the guard lives.
    pub fn websocket(&self, protocol: &'static str) -> Held {
        Held::new(
            self.0
                .websockets
                .get_or_create(&ProtocolLabels { protocol })
                .clone(),
        )
    }

    /// Counts a subscription of root field `field` as running while the
    /// guard lives. Only fields that passed validation reach here, and the
    /// label set is capped like operation names.
    pub fn subscription(&self, field: &str) -> Held {
        let subscription = bounded(&self.0.subscription_names, Some(field), "unknown");
        Held::new(
            self.0
                .subscriptions
                .get_or_create(&SubscriptionLabels { subscription })
                .clone(),
        )
    }

    /// Counts the SQL statements one operation (or subscription event) ran.
    pub fn statements(&self, kind: &'static str, statements: u64) {
        // Precision loss only past 2^53 statements.
        #[allow(clippy::cast_precision_loss)]
        let statements = statements as f64;
        self.0
            .operation_statements
            .get_or_create(&TypeLabels { r#type: kind })
            .observe(statements);
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
        bounded(&self.0.names, name, "anonymous")
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

/// Labels of one sample written by a collector.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// Writes a counter family of figures read at scrape time (a collector's);
/// a sample without labels stands alone.
pub fn write_counters<N: Copy>(
    encoder: &mut DescriptorEncoder,
    described: Described<'_>,
    samples: &[(Labels<'_>, N)],
) -> std::fmt::Result
where
    ConstCounter<N>: EncodeMetric,
{
    write_samples(
        encoder,
        MetricType::Counter,
        described,
        samples,
        |value, to| ConstCounter::new(value).encode(to),
    )
}

/// Writes a gauge family of figures read at scrape time.
pub fn write_gauges<N: Copy>(
    encoder: &mut DescriptorEncoder,
    described: Described<'_>,
    samples: &[(Labels<'_>, N)],
) -> std::fmt::Result
where
    ConstGauge<N>: EncodeMetric,
{
    write_samples(
        encoder,
        MetricType::Gauge,
        described,
        samples,
        |value, to| ConstGauge::new(value).encode(to),
    )
}

/// A family's name, help and unit.
pub type Described<'a> = (&'a str, &'a str, Option<&'a Unit>);

fn write_samples<N: Copy>(
    encoder: &mut DescriptorEncoder,
    kind: MetricType,
    (name, help, unit): Described<'_>,
    samples: &[(Labels<'_>, N)],
    write: impl Fn(N, MetricEncoder<'_>) -> std::fmt::Result,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, unit, kind)?;
    if let [(labels, value)] = samples
        && labels.is_empty()
    {
        return write(*value, family);
    }
    for (labels, value) in samples {
        write(*value, family.encode_family(labels)?)?;
    }
    Ok(())
}

/// A label value from a bounded set: `missing` without a name, the name
/// (truncated) while fewer than [`MAX_OPERATION_NAMES`] are in use, else `other`.
fn bounded(names: &Mutex<HashSet<String>>, name: Option<&str>, missing: &str) -> String {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return missing.into();
    };
    let name: String = name.chars().take(MAX_OPERATION_NAME_CHARS).collect();
    let Ok(mut names) = names.lock() else {
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
