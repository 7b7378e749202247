//! Logs and traces. Logs go to stderr so that stdout stays clean for `itsm
//! token` and `itsm schema`. Traces go to an OpenTelemetry collector over
//! OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces endpoint) is
//! set: the service's own spans (HTTP requests, GraphQL operations, SQL
//! statements), continuing the caller's W3C `traceparent`. With traces on,
//! JSON log lines carry the `trace_id` and `span_id` they were written in.

use std::{fmt, time::Duration};

use anyhow::Context as _;
use opentelemetry::{
    KeyValue,
    trace::{FutureExt as _, TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::{Level, Subscriber};
use tracing_subscriber::{
    EnvFilter, Layer as _,
    filter::Targets,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    prelude::*,
    registry::LookupSpan,
};

use crate::config::{LogFormat, LogSettings, OtlpProtocol};

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The installed telemetry; flush it with [`Telemetry::shutdown`] before exit.
#[must_use = "shut it down before exiting, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans not yet exported and stops the exporter.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // Shutting down blocks until the exporter, which runs on this
        // runtime, is done: off the runtime's own threads.
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not flush traces: {error}"),
            Err(error) => eprintln!("could not flush traces: {error}"),
        }
    }
}

/// Installs the global subscriber and, when configured, the trace exporter.
/// Call once, from `main`, inside the runtime.
pub fn init(settings: &LogSettings) -> anyhow::Result<Telemetry> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = settings
        .traces_endpoint()
        .map(|endpoint| tracer_provider(settings, &endpoint))
        .transpose()?;
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|_| EnvFilter::new("info"));
    match &provider {
        // Each output filters on its own: the log level does not thin traces.
        Some(provider) => tracing_subscriber::registry()
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer("itsm"))
                    // The service's spans, and those made for traces alone
                    // (GraphQL operations, SQL statements) at DEBUG under
                    // `itsm::trace`.
                    .with_filter(
                        Targets::new()
                            .with_target("itsm", Level::INFO)
                            .with_target("itsm::trace", Level::DEBUG),
                    ),
            )
            .with(log_output(settings.log_format).with_filter(filter))
            .init(),
        // The logs alone filter globally. A per-layer filter keeps per-thread
        // state that a `tracing::enabled!` check (sqlx makes one per
        // statement) can leave set when it races a callsite's registration;
        // the next span made on that thread is then missing from the log,
        // and with it the request id of every line written inside it.
        None => tracing_subscriber::registry()
            .with(filter)
            .with(log_output(settings.log_format))
            .init(),
    }
    if let Some(endpoint) = settings.traces_endpoint() {
        tracing::info!(%endpoint, protocol = ?settings.traces_protocol(), "exporting traces");
    }
    Ok(Telemetry { provider })
}

/// The log lines on stderr, in the configured format.
fn log_output<S>(format: LogFormat) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .map_event_format(WithTraceIds)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    }
}

fn tracer_provider(settings: &LogSettings, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let client = Exporter {
        client: reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .context("could not build the HTTP client for traces")?,
        runtime: tokio::runtime::Handle::try_current()
            .context("traces are set up inside the runtime")?,
    };
    let protocol = match settings.traces_protocol() {
        OtlpProtocol::Protobuf => Protocol::HttpBinary,
        OtlpProtocol::Json => Protocol::HttpJson,
    };
    // Headers (OTEL_EXPORTER_OTLP_HEADERS) and the batch settings (OTEL_BSP_*)
    // are read from the environment by the exporter; the sampler
    // (OTEL_TRACES_SAMPLER) by the provider.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(endpoint)
        .with_protocol(protocol)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|error| {
            anyhow::anyhow!("could not set up the trace exporter for {endpoint}: {error}")
        })?;
    let resource = Resource::builder()
        .with_service_name(settings.otel_service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Sends exports with the service's HTTP client, on its runtime (the batch
/// processor's own thread has none).
#[derive(Debug, Clone)]
struct Exporter {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_graphql::async_trait::async_trait]
impl HttpClient for Exporter {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let send = async move {
            let response = client.execute(reqwest::Request::try_from(request)?).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let mut answer = Response::builder()
                .status(status)
                .body(response.bytes().await?)?;
            *answer.headers_mut() = headers;
            Ok::<_, HttpError>(answer)
        };
        // The exporter's context marks telemetry as suppressed: spans made
        // while exporting are not exported themselves.
        self.runtime
            .spawn(send.with_context(opentelemetry::Context::current()))
            .await?
    }
}

/// Adds `trace_id` and `span_id` to each JSON line written inside a traced span.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        // The span entered last has made its trace context current.
        let context = opentelemetry::Context::current();
        let span = context.span();
        let ids = span.span_context();
        match line.strip_suffix("}\n") {
            Some(head) if ids.is_valid() => writeln!(
                writer,
                r#"{head},"trace_id":"{}","span_id":"{}"}}"#,
                ids.trace_id(),
                ids.span_id()
            ),
            _ => writer.write_str(&line),
        }
    }
}

/// The caller's trace context from W3C `traceparent`/`tracestate` headers.
pub fn remote_context(headers: &axum::http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    })
}

/// Names `span` in traces. Its name can change after it started, which the
/// `otel.name` field cannot do (a no-op without traces).
pub fn rename(span: &tracing::Span, name: String) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if !span.is_disabled() {
        span.context().span().update_name(name);
    }
}

/// Continues the caller's trace in `span` (a no-op without traces).
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let remote = remote_context(headers);
    if remote.span().span_context().is_valid() {
        // Refused only when no trace layer is installed: nothing to continue.
        let _ = span.set_parent(remote);
    }
}
