//! Counts every GraphQL operation in the instance's metrics: by operation
//! name and type, with its duration and the codes of its errors. Requests
//! that never ran (they did not parse, say) count with type `unknown`.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use async_graphql::{
    Request, Response, ServerResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
        NextRequest, NextSubscribe,
    },
    futures_util::stream::BoxStream,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType},
};
use futures_util::StreamExt;

use crate::metrics::Metrics;

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
        let response = next.run(ctx).await;
        let seen = self.seen();
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
        next.run(ctx, stream)
            .map(move |response| {
                // Read at the first answer: by then the request is parsed.
                // The operation counts once; errors count as they come.
                let seen = snapshot(&seen);
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
            .boxed()
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.requested.clone_from(&request.operation_name);
        }
        next.run(ctx, request).await
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
