//! Counts every GraphQL operation in the instance's metrics: by operation
//! name and type, with its duration, the codes of its errors and the SQL
//! statements it ran. Requests that never ran (they did not parse, say) count
//! with type `unknown`. Subscriptions that passed validation count as active,
//! by their root field, until their stream ends.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Instant,
};

use async_graphql::{
    Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
        NextRequest, NextSubscribe, NextValidation,
    },
    futures_util::stream::{BoxStream, Stream},
    parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection},
};
use futures_util::StreamExt;
use tracing::Instrument as _;

use super::loaders::RequestState;
use crate::metrics::{Held, Metrics};

/// The extension's factory: one observer per request or subscription.
pub struct OperationMetrics(pub Metrics);

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Observer {
            metrics: self.0.clone(),
            seen: Arc::default(),
        })
    }
}

#[derive(Default, Clone)]
struct Seen {
    /// The operation name the request gave.
    requested: Option<String>,
    /// The name and type of the operation the document holds.
    name: Option<String>,
    kind: Option<&'static str>,
    /// The operation's first root field.
    field: Option<String>,
    /// Whether the document passed validation, and its complexity and depth.
    valid: bool,
    complexity: Option<(usize, usize)>,
    /// The request's state, whose gate counts its statements.
    state: Option<Arc<RequestState>>,
    /// The shared execution of a group of subscriptions, whose members are
    /// counted as operations instead.
    shared: bool,
}

impl Seen {
    /// Statements the operation has run so far (since the subscription's
    /// last event), once it is known to have run.
    fn statements(&self) -> Option<(&'static str, u64)> {
        let kind = self.kind.filter(|_| self.valid)?;
        let gate = self.state.as_ref()?.db().gate()?.clone();
        Some((kind, gate.statements()))
    }
}

struct Observer {
    metrics: Metrics,
    /// Shared with a subscription's stream, which is set up before the
    /// request is prepared and parsed.
    seen: Arc<Mutex<Seen>>,
}

impl Observer {
    fn seen(&self) -> Seen {
        snapshot(&self.seen)
    }
}

fn snapshot(seen: &Mutex<Seen>) -> Seen {
    seen.lock().map(|seen| seen.clone()).unwrap_or_default()
}

fn codes(response: &Response) -> Vec<String> {
    response
        .errors
        .iter()
        .map(
            |error| match error.extensions.as_ref().and_then(|e| e.get("code")) {
                Some(Value::String(code)) => code.clone(),
                _ => "UNKNOWN".into(),
            },
        )
        .collect()
}

#[async_graphql::async_trait::async_trait]
impl Extension for Observer {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        // For traces only (off the logs' default level): named once parsed.
        let span = tracing::debug_span!(
            target: "itsm::trace",
            "graphql",
            otel.status_code = tracing::field::Empty,
            graphql.operation.name = tracing::field::Empty,
            graphql.operation.type = tracing::field::Empty,
            graphql.complexity = tracing::field::Empty,
            graphql.depth = tracing::field::Empty,
            graphql.error.codes = tracing::field::Empty,
            db.statements = tracing::field::Empty,
        );
        let response = next.run(ctx).instrument(span.clone()).await;
        let seen = self.seen();
        trace_operation(&span, &seen, &codes(&response));
        if let Some((kind, statements)) = seen.statements() {
            self.metrics.statements(kind, statements);
        }
        let name = seen.name.or(seen.requested);
        self.metrics.operation(
            name.as_deref(),
            seen.kind.unwrap_or("unknown"),
            Some(started.elapsed()),
            &codes(&response),
        );
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let metrics = self.metrics.clone();
        let seen = self.seen.clone();
        let mut first = true;
        let answers = next
            .run(ctx, stream)
            .map(move |response| {
                // Read at the first answer: by then the request is parsed.
                // The operation counts once; errors count as they come.
                let seen = snapshot(&seen);
                if seen.shared {
                    return response;
                }
                if let Some((kind, statements)) = seen.statements() {
                    metrics.statements(kind, statements);
                }
                let name = seen.name.or(seen.requested);
                let kind = seen.kind.unwrap_or("unknown");
                let codes = codes(&response);
                if first {
                    first = false;
                    metrics.operation(name.as_deref(), kind, None, &codes);
                } else if !codes.is_empty() {
                    metrics.operation_errors(name.as_deref(), kind, &codes);
                }
                response
            })
            .boxed();
        Active {
            inner: answers,
            seen: self.seen.clone(),
            metrics: self.metrics.clone(),
            held: None,
            settled: false,
        }
        .boxed()
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        if let (Ok(validated), Ok(mut seen)) = (&result, self.seen.lock()) {
            seen.valid = true;
            seen.complexity = Some((validated.complexity, validated.depth));
        }
        result
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.requested.clone_from(&request.operation_name);
            seen.shared = request
                .data
                .contains_key(&std::any::TypeId::of::<super::multiplex::Lead>());
        }
        let request = next.run(ctx, request).await?;
        // The request's state is added by an extension further in.
        let state = RequestState::of(&request);
        if let Ok(mut seen) = self.seen.lock() {
            seen.state = state;
        }
        Ok(request)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let Ok(mut seen) = self.seen.lock() {
            let requested = seen.requested.clone();
            let operation = match &document.operations {
                DocumentOperations::Single(operation) => Some((None, &operation.node)),
                DocumentOperations::Multiple(operations) => match requested.as_deref() {
                    Some(wanted) => operations
                        .iter()
                        .find(|(name, _)| name.as_str() == wanted)
                        .map(|(name, operation)| (Some(name.to_string()), &operation.node)),
                    None if operations.len() == 1 => operations
                        .iter()
                        .next()
                        .map(|(name, operation)| (Some(name.to_string()), &operation.node)),
                    None => None,
                },
            };
            if let Some((name, operation)) = operation {
                seen.field =
                    operation.selection_set.node.items.iter().find_map(
                        |selection| match &selection.node {
                            Selection::Field(field) => Some(field.node.name.node.to_string()),
                            _ => None,
                        },
                    );
                seen.name = name;
                seen.kind = Some(match operation.ty {
                    OperationType::Query => "query",
                    OperationType::Mutation => "mutation",
                    OperationType::Subscription => "subscription",
                });
            }
        }
        Ok(document)
    }
}

/// Completes an operation's span: its name, type, complexity, statements and
/// error codes.
fn trace_operation(span: &tracing::Span, seen: &Seen, codes: &[String]) {
    if span.is_disabled() {
        return;
    }
    let name = seen.name.as_deref().or(seen.requested.as_deref());
    let kind = seen.kind.unwrap_or("unknown");
    crate::telemetry::rename(
        span,
        match name {
            Some(name) => format!("{kind} {name}"),
            None => kind.to_owned(),
        },
    );
    span.record("graphql.operation.type", kind);
    if let Some(name) = name {
        span.record("graphql.operation.name", name);
    }
    if let Some((complexity, depth)) = seen.complexity {
        span.record("graphql.complexity", complexity);
        span.record("graphql.depth", depth);
    }
    if let Some((_, statements)) = seen.statements() {
        span.record("db.statements", statements);
    }
    if !codes.is_empty() {
        span.record("graphql.error.codes", codes.join(","));
        span.record("otel.status_code", "ERROR");
    }
}

/// A subscription's answers, counted as an active subscription of its root
/// field from when it passed validation until the stream is dropped.
struct Active<'s> {
    inner: BoxStream<'s, Response>,
    seen: Arc<Mutex<Seen>>,
    metrics: Metrics,
    held: Option<Held>,
    /// Whether it is known whether this one counts.
    settled: bool,
}

impl Stream for Active<'_> {
    type Item = Response;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Response>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if !self.settled {
            // Parsing and validation happen inside the first polls.
            let seen = snapshot(&self.seen);
            if seen.shared {
                self.settled = true;
            } else if seen.valid && seen.kind == Some("subscription") {
                if let Some(field) = &seen.field {
                    self.held = Some(self.metrics.subscription(field));
                }
                self.settled = true;
            } else if polled.is_ready() {
                self.settled = true;
            }
        }
        polled
    }
}
