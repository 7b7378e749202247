//! Error mapping and request limits.
//!
//! Every error a client sees carries a stable `extensions.code`. Domain errors
//! map one to one; an internal error is logged with its cause (inside the
//! request's span, so with its request id) and reaches the client as a generic
//! message plus the request id. Anything that slips through without a code is
//! classified here, so an unexpected error text is never sent as is.

use std::{
    any::TypeId,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use async_graphql::{
    ErrorExtensions, Request, Response, ServerError, ServerResult, ValidationResult, Value,
    Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
        NextRequest, NextSubscribe, NextValidation,
    },
    futures_util::stream::BoxStream,
    parser::types::{DocumentOperations, ExecutableDocument, Selection},
};
use futures_util::StreamExt;

use super::{
    cost::{self, TypeMap},
    input::{self, InputLimits},
    loaders::RequestState,
    rate::{Caller, ClientAddress, RateLimit},
    shape::{ShapeLimits, check_document, check_variables},
};
use crate::{auth::Auth, config::Introspection, error::ApiError};

/// What an internal error says to the client.
pub const INTERNAL_MESSAGE: &str = "internal error";
/// The code of a query that could not be parsed.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// The code of a query that does not fit the schema or the limits.
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

/// Introspection queries get at least this depth: GraphiQL's own introspection
/// query nests `ofType` deeply, though its result is bounded by the schema.
const INTROSPECTION_MIN_DEPTH: usize = 15;
/// Introspection queries get at least this complexity.
const INTROSPECTION_MIN_COMPLEXITY: usize = 500;

/// The id of the HTTP request (or WebSocket connection) being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// How large a query may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest field nesting.
    pub max_depth: usize,
    /// Highest complexity score.
    pub max_complexity: usize,
    /// Nesting and length, checked before the document is parsed.
    pub shape: ShapeLimits,
    /// What any input value may hold.
    pub input: InputLimits,
    /// Who may run introspection.
    pub introspection: Introspection,
    /// Cost points each caller may spend a minute (per replica); 0 is no limit.
    pub rate_per_minute: u32,
}

impl Limits {
    /// The limits `settings` ask for: the one place their defaults live is
    /// the command line's.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        let graphql = &settings.graphql;
        Self {
            max_depth: graphql.graphql_max_depth,
            max_complexity: graphql.graphql_max_complexity,
            shape: ShapeLimits {
                max_nesting: graphql.graphql_max_nesting.max(1),
                max_tokens: graphql.graphql_max_tokens.max(1),
            },
            input: InputLimits {
                max_list: graphql.graphql_max_list.max(1),
            },
            introspection: settings.http.introspection,
            rate_per_minute: graphql.rate_limit,
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        let (message, field) = match err {
            ApiError::Unauthenticated => (
                "authentication required: send a valid bearer token".to_owned(),
                None,
            ),
            ApiError::Forbidden(message)
            | ApiError::NotFound(message)
            | ApiError::Conflict(message) => (message, None),
            ApiError::BadUserInput { field, message } => (message, field),
            ApiError::BadUserInputs(mut problems) => {
                if problems.is_empty() {
                    ("invalid input".to_owned(), None)
                } else {
                    let (field, message) = problems.remove(0);
                    (message, Some(field))
                }
            }
            ApiError::RateLimited => ("too many requests; try again later".to_owned(), None),
            ApiError::BudgetExceeded(message) => (
                format!("{message}: ask for smaller pages or fewer nested lists"),
                None,
            ),
            ApiError::Unavailable => (
                "the database is busy; try again in a moment".to_owned(),
                None,
            ),
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                (INTERNAL_MESSAGE.to_owned(), None)
            }
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
        })
    }
}

/// Turns an error into the resolver's error; when several inputs are wrong at
/// once, each becomes an error of its own in the response, in order, so every
/// problem is reported with its `extensions.field`.
pub fn report(ctx: &async_graphql::Context<'_>, error: ApiError) -> async_graphql::Error {
    if let ApiError::BadUserInputs(mut problems) = error {
        // The resolver's own error comes last in the response.
        let last = problems.pop();
        let path: Vec<async_graphql::PathSegment> = ctx
            .path_node
            .map(|node| {
                node.to_string_vec()
                    .into_iter()
                    .map(async_graphql::PathSegment::Field)
                    .collect()
            })
            .unwrap_or_default();
        for (field, message) in problems {
            let mut extra = ServerError::new(message, Some(ctx.item.pos));
            extra.path.clone_from(&path);
            let extensions = extra.extensions.get_or_insert_with(Default::default);
            extensions.set("code", "BAD_USER_INPUT");
            extensions.set("field", field.as_str());
            ctx.add_error(extra);
        }
        return ApiError::BadUserInputs(last.into_iter().collect()).into();
    }
    error.into()
}

/// Adds limits, pricing, the rate limit and error classification to every
/// request and subscription.
pub struct RequestPolicy {
    limits: Limits,
    types: Arc<TypeMap>,
    rate: Option<Arc<RateLimit>>,
}

impl RequestPolicy {
    /// A policy enforcing `limits`, pricing queries with `types`.
    pub fn new(limits: Limits, types: Arc<TypeMap>) -> Self {
        Self {
            limits,
            types,
            rate: RateLimit::new(limits.rate_per_minute).map(Arc::new),
        }
    }
}

impl ExtensionFactory for RequestPolicy {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PolicyExtension {
            limits: self.limits,
            types: self.types.clone(),
            rate: self.rate.clone(),
            introspection_only: AtomicBool::new(false),
            request_id: Arc::default(),
            operation_name: Mutex::default(),
            meter: Arc::default(),
        })
    }
}

struct PolicyExtension {
    limits: Limits,
    types: Arc<TypeMap>,
    rate: Option<Arc<RateLimit>>,
    introspection_only: AtomicBool,
    /// Request data is not visible to the `request` hook itself, so
    /// `prepare_request` copies the id here.
    request_id: Arc<Mutex<Option<RequestId>>>,
    /// The operation the request names, for pricing.
    operation_name: Mutex<Option<String>>,
    /// The price, and the request's state (whose gate counts statements and rows).
    meter: Arc<Mutex<Meter>>,
}

/// What a request was priced at and what measures what it spends.
#[derive(Default)]
struct Meter {
    requested: Option<u64>,
    limit: u64,
    state: Option<Arc<RequestState>>,
}

impl Meter {
    /// `extensions.cost` of a response.
    fn cost(&self, response: &Response) -> Option<Value> {
        let requested = self.requested?;
        let gate = self.state.as_ref().and_then(|state| state.db().gate());
        let number = |n: u64| Value::Number(n.into());
        let mut cost = async_graphql::indexmap::IndexMap::new();
        cost.insert(async_graphql::Name::new("requested"), number(requested));
        cost.insert(
            async_graphql::Name::new("actual"),
            number(cost::measure(&response.data)),
        );
        cost.insert(async_graphql::Name::new("limit"), number(self.limit));
        if let Some(gate) = gate {
            cost.insert(
                async_graphql::Name::new("statements"),
                number(gate.statements()),
            );
            cost.insert(async_graphql::Name::new("rows"), number(gate.rows()));
            cost.insert(
                async_graphql::Name::new("peakConnections"),
                number(gate.peak()),
            );
        }
        Some(Value::Object(cost))
    }
}

fn with_cost(mut response: Response, meter: &Mutex<Meter>) -> Response {
    if let Some(cost) = meter.lock().ok().and_then(|m| m.cost(&response)) {
        response.extensions.insert("cost".to_owned(), cost);
    }
    response
}

impl PolicyExtension {
    fn request_id(
        slot: &Mutex<Option<RequestId>>,
        ctx: &ExtensionContext<'_>,
    ) -> Option<RequestId> {
        slot.lock()
            .ok()
            .and_then(|id| id.clone())
            .or_else(|| ctx.data_opt::<RequestId>().cloned())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for PolicyExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = with_cost(next.run(ctx).await, &self.meter);
        let request_id = Self::request_id(&self.request_id, ctx);
        finish(response, request_id.as_ref())
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // The connection's id lives in its session data.
        let session_id = ctx.data_opt::<RequestId>().cloned();
        let slot = self.request_id.clone();
        let meter = self.meter.clone();
        next.run(ctx, stream)
            .map(move |response| {
                let response = with_cost(response, &meter);
                let request_id = slot
                    .lock()
                    .ok()
                    .and_then(|id| id.clone())
                    .or(session_id.clone());
                finish(response, request_id.as_ref())
            })
            .boxed()
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let id = request
            .data
            .get(&TypeId::of::<RequestId>())
            .and_then(|data| data.downcast_ref::<RequestId>())
            .cloned();
        if let (Some(id), Ok(mut slot)) = (id, self.request_id.lock()) {
            *slot = Some(id);
        }
        if let Ok(mut name) = self.operation_name.lock() {
            name.clone_from(&request.operation_name);
        }
        let request = next.run(ctx, request).await?;
        // The request's state is added by an extension further in.
        let state = RequestState::of(&request);
        if let Ok(mut meter) = self.meter.lock() {
            meter.state = state;
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
        // Before the recursive parser and validator: every path (GET, POST,
        // batches, both WebSocket protocols) comes through here.
        check_document(query, &self.limits.shape)
            .and_then(|()| check_variables(variables, &self.limits.shape))
            .map_err(|error| error.to_server_error())?;
        input::check_variables(variables, &self.limits.input)
            .map_err(|error| error.to_server_error())?;
        let document = next
            .run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, PARSE_FAILED))?;
        input::check_document(&document, &self.limits.input)
            .map_err(|error| error.to_server_error())?;
        if self.limits.introspection != Introspection::On && asks_introspection(&document) {
            let signed_in = matches!(ctx.data_opt::<Auth>(), Some(Auth::Viewer(_)));
            match self.limits.introspection {
                Introspection::Off => {
                    return Err(coded(
                        "introspection is turned off on this server",
                        "FORBIDDEN",
                    ));
                }
                Introspection::Authenticated if !signed_in => {
                    return Err(coded(
                        "introspection needs a valid bearer token on this server",
                        "UNAUTHENTICATED",
                    ));
                }
                _ => {}
            }
        }
        self.introspection_only
            .store(is_introspection_only(&document), Ordering::Relaxed);
        let operation_name = self.operation_name.lock().ok().and_then(|n| n.clone());
        let requested = cost::price(&self.types, &document, operation_name.as_deref(), variables);
        if let Ok(mut meter) = self.meter.lock() {
            meter.requested = Some(requested);
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| with_code(e, VALIDATION_FAILED))
                .collect::<Vec<_>>()
        })?;
        let (max_depth, max_complexity) = if self.introspection_only.load(Ordering::Relaxed) {
            (
                self.limits.max_depth.max(INTROSPECTION_MIN_DEPTH),
                self.limits.max_complexity.max(INTROSPECTION_MIN_COMPLEXITY),
            )
        } else {
            (self.limits.max_depth, self.limits.max_complexity)
        };
        if result.depth > max_depth {
            return Err(vec![limit_error(format!(
                "query is nested too deeply: depth {} exceeds the limit of {max_depth}",
                result.depth
            ))]);
        }
        let requested = self
            .meter
            .lock()
            .ok()
            .and_then(|mut meter| {
                meter.limit = u64::try_from(max_complexity).unwrap_or(u64::MAX);
                meter.requested
            })
            .unwrap_or(0);
        if requested > u64::try_from(max_complexity).unwrap_or(u64::MAX) {
            return Err(vec![limit_error(format!(
                "query is too complex: it may cost {requested} points (each field 1, a list's fields once per row it may return), over the limit of {max_complexity}; ask for smaller pages or fewer nested lists"
            ))]);
        }
        // A group's shared execution is the server's own work: each member
        // was charged when it subscribed.
        if let Some(rate) = &self.rate
            && ctx.data_opt::<super::multiplex::Lead>().is_none()
        {
            let caller = match ctx.data_opt::<Auth>() {
                Some(Auth::Viewer(viewer)) => Caller::User(viewer.user.id),
                _ => ctx
                    .data_opt::<ClientAddress>()
                    .map_or(Caller::Anonymous, |address| Caller::Address(address.0)),
            };
            if let Err(wait) = rate.charge(&caller, requested) {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let mut error = ServerError::new(
                    format!(
                        "rate limit: this costs {requested} points and the caller's budget of {} points a minute is spent; try again in {seconds} s",
                        self.limits.rate_per_minute
                    ),
                    None,
                );
                let extensions = error.extensions.get_or_insert_with(Default::default);
                extensions.set("code", "RATE_LIMITED");
                extensions.set("retryAfter", seconds);
                return Err(vec![error]);
            }
        }
        Ok(result)
    }
}

fn coded(message: &str, code: &str) -> ServerError {
    with_code(ServerError::new(message, None), code)
}

/// True when the document selects `__schema` or `__type` anywhere (they are
/// valid only at the query root, so anywhere means there).
fn asks_introspection(document: &ExecutableDocument) -> bool {
    let mut sets: Vec<&async_graphql::Positioned<async_graphql::parser::types::SelectionSet>> =
        document
            .operations
            .iter()
            .map(|(_, op)| &op.node.selection_set)
            .chain(document.fragments.values().map(|f| &f.node.selection_set))
            .collect();
    while let Some(set) = sets.pop() {
        for item in &set.node.items {
            match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if name == "__schema" || name == "__type" {
                        return true;
                    }
                    sets.push(&field.node.selection_set);
                }
                Selection::InlineFragment(fragment) => sets.push(&fragment.node.selection_set),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    false
}

fn limit_error(message: String) -> ServerError {
    with_code(ServerError::new(message, None), VALIDATION_FAILED)
}

fn with_code(mut error: ServerError, code: &str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}

/// True when every operation selects only `__schema`, `__type` or `__typename`.
fn is_introspection_only(document: &ExecutableDocument) -> bool {
    let mut operations: Box<dyn Iterator<Item = _>> = match &document.operations {
        DocumentOperations::Single(op) => Box::new(std::iter::once(op)),
        DocumentOperations::Multiple(ops) => Box::new(ops.values()),
    };
    operations.all(|op| {
        op.node.selection_set.node.items.iter().all(|item| {
            matches!(&item.node, Selection::Field(field) if field.node.name.node.starts_with("__"))
        })
    })
}

/// Gives every error a code and hides what must not be shown.
fn finish(mut response: Response, request_id: Option<&RequestId>) -> Response {
    for error in &mut response.errors {
        classify(error, request_id);
    }
    response
}

fn classify(error: &mut ServerError, request_id: Option<&RequestId>) {
    let code = error
        .extensions
        .as_ref()
        .and_then(|ext| ext.get("code"))
        .and_then(|code| match code {
            Value::String(code) => Some(code.clone()),
            _ => None,
        });
    let internal = match code.as_deref() {
        Some("INTERNAL") => true,
        Some(_) => false,
        // A displayable error converted by `?`: its text was never meant for clients.
        None if error.source.is_some() => {
            tracing::error!(error = %error.message, path = ?error.path, "unclassified resolver error");
            error.message = INTERNAL_MESSAGE.to_owned();
            true
        }
        // Errors raised by async-graphql while coercing a field's arguments.
        None if !error.path.is_empty() => {
            set_code(error, "BAD_USER_INPUT");
            false
        }
        None => {
            set_code(error, VALIDATION_FAILED);
            false
        }
    };
    if internal {
        set_code(error, "INTERNAL");
        if let Some(RequestId(id)) = request_id {
            error.message = format!("{INTERNAL_MESSAGE} (request id {id})");
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("requestId", id.as_str());
        }
    }
}

fn set_code(error: &mut ServerError, code: &str) {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn leaky(&self) -> async_graphql::Result<i32> {
            Err(std::io::Error::other("connection to 10.0.0.7 refused").into())
        }
        async fn internal(&self) -> Result<i32, ApiError> {
            Err(ApiError::internal(anyhow::anyhow!("secret cause")))
        }
        async fn conflict(&self) -> Result<i32, ApiError> {
            Err(ApiError::Conflict("version is stale".into()))
        }
        async fn bad(&self) -> Result<i32, ApiError> {
            Err(ApiError::bad_input("title", "title must not be empty"))
        }
        async fn echo(&self, n: i32) -> i32 {
            n
        }
        async fn nested(&self) -> Query {
            Query
        }
    }

    async fn run(query: &str) -> Response {
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(RequestPolicy::new(
                Limits {
                    max_depth: 3,
                    max_complexity: 10,
                    shape: ShapeLimits {
                        max_nesting: 32,
                        max_tokens: 10_000,
                    },
                    input: InputLimits { max_list: 100 },
                    introspection: Introspection::On,
                    rate_per_minute: 0,
                },
                Arc::default(),
            ))
            .finish();
        schema
            .execute(async_graphql::Request::new(query).data(RequestId("req-1".into())))
            .await
    }

    fn first(response: &Response) -> (String, Option<String>, serde_json::Value) {
        let error = &response.errors[0];
        let ext = serde_json::to_value(&error.extensions).unwrap_or_default();
        let code = ext.get("code").and_then(|c| c.as_str()).map(str::to_owned);
        (error.message.clone(), code, ext)
    }

    #[tokio::test]
    async fn displayable_errors_become_internal_and_hide_their_text() {
        let (message, code, ext) = first(&run("{ leaky }").await);
        assert_eq!(code.as_deref(), Some("INTERNAL"));
        assert!(!message.contains("10.0.0.7"), "{message}");
        assert!(message.contains("req-1"), "{message}");
        assert_eq!(ext["requestId"], "req-1");
    }

    #[tokio::test]
    async fn internal_errors_carry_the_request_id_not_the_cause() {
        let (message, code, _) = first(&run("{ internal }").await);
        assert_eq!(code.as_deref(), Some("INTERNAL"));
        assert_eq!(message, "internal error (request id req-1)");
    }

    #[tokio::test]
    async fn domain_errors_keep_their_code_message_and_field() {
        let (message, code, _) = first(&run("{ conflict }").await);
        assert_eq!(
            (message.as_str(), code.as_deref()),
            ("version is stale", Some("CONFLICT"))
        );
        let (_, code, ext) = first(&run("{ bad }").await);
        assert_eq!(code.as_deref(), Some("BAD_USER_INPUT"));
        assert_eq!(ext["field"], "title");
    }

    #[tokio::test]
    async fn parse_validation_and_limit_errors_have_codes() {
        let (_, code, _) = first(&run("{ echo(").await);
        assert_eq!(code.as_deref(), Some(PARSE_FAILED));
        let (_, code, _) = first(&run("{ nope }").await);
        assert_eq!(code.as_deref(), Some(VALIDATION_FAILED));
        let (message, code, _) =
            first(&run("{ nested { nested { nested { echo(n: 1) } } } }").await);
        assert_eq!(code.as_deref(), Some(VALIDATION_FAILED));
        assert!(
            message.contains("depth 4 exceeds the limit of 3"),
            "{message}"
        );
        let many = format!(
            "{{ {} }}",
            (0..11)
                .map(|i| format!("a{i}: echo(n: 1)"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let (message, _, _) = first(&run(&many).await);
        assert!(message.contains("too complex"), "{message}");
    }

    #[tokio::test]
    async fn introspection_gets_room_for_graphiql_but_stays_bounded() {
        let deep =
            "{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }";
        assert!(run(deep).await.errors.is_empty());
        let too_deep = format!(
            "{{ __type(name: \"Query\") {} }}",
            "{ fields { type ".repeat(8) + "{ name }" + &" } }".repeat(8)
        );
        let (message, _, _) = first(&run(&too_deep).await);
        assert!(message.contains("nested too deeply"), "{message}");
    }
}
