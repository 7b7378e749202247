//! Typed settings: every knob is a command-line flag with an `ITSM_*` environment
//! fallback. Nothing else in the crate reads the environment.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::vocabulary::Role;

/// The `itsm` command line.
#[derive(Debug, Parser)]
#[command(
    name = "itsm",
    version,
    about = "GraphQL service for IT service management"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub settings: Settings,
}

impl Settings {
    /// Parses settings from command-line arguments (without the program name)
    /// and the environment, as the binary does.
    pub fn from_args<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Self, clap::Error> {
        Cli::try_parse_from(std::iter::once("itsm").chain(args)).map(|cli| cli.settings)
    }
}

/// What to do; `serve` when nothing is given.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the GraphQL API (the default).
    Serve,
    /// Apply or inspect database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the GraphQL schema (SDL) on stdout.
    Schema,
    /// Mint a signed token with the configured key and print it alone on stdout.
    Token(TokenArgs),
    /// Exit 0 when the server on `--listen` answers `/healthz` (for container health checks).
    Healthcheck,
    /// Load data: `--demo` adds teams, queues, people and tickets to try the API on.
    Seed(SeedArgs),
}

/// What `itsm seed` loads.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Load the demo data set (teams, queues, agents, requesters, tickets, comments).
    #[arg(long)]
    pub demo: bool,
    /// How many demo tickets to create.
    #[arg(long, default_value_t = 200)]
    pub tickets: usize,
}

/// The migration actions of `itsm migrate`.
#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply pending migrations.
    Up {
        /// Apply at most this many (all when absent).
        #[arg(long)]
        steps: Option<u32>,
    },
    /// Roll back applied migrations.
    Down {
        /// How many to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List every migration and whether it is applied.
    Status,
    /// Drop every table, then apply all migrations. Destroys all data.
    Fresh {
        /// Confirm that all data may be destroyed.
        #[arg(long)]
        yes: bool,
    },
}

/// Claims of a token minted by `itsm token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The subject (`sub`): the person's stable id.
    #[arg(long)]
    pub sub: String,
    /// The role claim.
    #[arg(long, value_enum, default_value = "requester")]
    pub role: Role,
    /// The `email` claim.
    #[arg(long)]
    pub email: Option<String>,
    /// The `name` claim.
    #[arg(long)]
    pub name: Option<String>,
    /// Lifetime, such as `3600`, `90s`, `15m`, `8h` or `7d`.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// The OAuth `scope` claim, space-separated: what an integration may
    /// write (`tickets:write comments:write alerts:write`).
    #[arg(long)]
    pub scope: Option<String>,
}

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub events: EventSettings,
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub graphql: GraphqlSettings,
    #[command(flatten)]
    pub jwt: JwtSettings,
    #[command(flatten)]
    pub log: LogSettings,
    #[command(flatten)]
    pub webhooks: WebhookSettings,
    #[command(flatten)]
    pub attachments: AttachmentSettings,

    /// The subject of the person on whose behalf monitoring's incidents are
    /// opened (`POST /alerts/alertmanager`); made a requester named
    /// "Monitoring" if nobody has signed in with it.
    #[arg(
        long,
        env = "ITSM_ALERT_REQUESTER",
        default_value = "monitoring",
        global = true
    )]
    pub alert_requester: String,

    /// Development mode: "did you mean" hints in errors, and a generated
    /// development key even on PostgreSQL. Never in production.
    #[arg(long, env = "ITSM_DEV", global = true)]
    pub dev: bool,
}

/// Where the data lives and how the pool behaves.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "ITSM_DATABASE_URL",
        default_value = "sqlite://itsm.db",
        global = true
    )]
    pub database_url: String,

    /// Largest number of pooled connections (PostgreSQL, and SQLite readers).
    #[arg(
        long,
        env = "ITSM_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub db_max_connections: u32,

    /// How long a request waits for a pooled connection before failing.
    #[arg(long, env = "ITSM_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = parse_duration, global = true)]
    pub db_acquire_timeout: Duration,

    /// How long SQLite waits on a lock held by another process before giving up.
    #[arg(long, env = "ITSM_SQLITE_BUSY_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub sqlite_busy_timeout: Duration,

    /// Commit every SQLite write transaction on its own instead of in
    /// groups (for measuring; see BENCHMARKS.md).
    #[arg(long, env = "ITSM_SQLITE_NO_GROUP_COMMIT", global = true)]
    pub sqlite_no_group_commit: bool,

    /// Do not apply pending migrations when `serve` starts.
    #[arg(long, env = "ITSM_NO_MIGRATE", global = true)]
    pub no_migrate: bool,
}

impl DatabaseSettings {
    /// True for a `postgres://` or `postgresql://` URL.
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
    }

    /// The file behind an SQLite URL; `None` for PostgreSQL and in-memory SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
            return None;
        }
        Some(PathBuf::from(path))
    }
}

/// The event log's readers: the pump that feeds subscriptions, and the SLA timer.
#[derive(Debug, Clone, Args)]
pub struct EventSettings {
    /// How often the event pump reads the log without being woken (by this
    /// process's commits or, on PostgreSQL, another replica's NOTIFY): the
    /// most a lost notification can delay an event. At least 100 ms.
    #[arg(long, env = "ITSM_EVENT_POLL", default_value = "2s", value_parser = parse_duration, global = true)]
    pub event_poll: Duration,

    /// Events buffered for subscribers that read slowly; one that falls further
    /// behind is stopped and told to resume with `after`.
    #[arg(long, env = "ITSM_WS_BUFFER", default_value_t = 4096, global = true)]
    pub ws_buffer: usize,

    /// How often SLA warnings and breaches are looked for.
    #[arg(long, env = "ITSM_SLA_SWEEP", default_value = "30s", value_parser = parse_duration, global = true)]
    pub sla_sweep: Duration,
}

/// Attachments: where files are kept, and what is accepted.
#[derive(Debug, Clone, Args)]
pub struct AttachmentSettings {
    /// Where attachment files are kept: a directory (`file:///var/lib/itsm/files`
    /// or a path). By default `attachments/` beside the SQLite database, or
    /// `./attachments` with PostgreSQL.
    #[arg(long, env = "ITSM_ATTACHMENT_STORE", global = true)]
    pub attachment_store: Option<String>,

    /// Largest file accepted, in bytes.
    #[arg(long, env = "ITSM_ATTACHMENT_MAX_BYTES", default_value_t = 10 * 1024 * 1024, global = true)]
    pub attachment_max_bytes: usize,

    /// Most attachments one ticket may hold (removed ones do not count).
    #[arg(
        long,
        env = "ITSM_ATTACHMENT_MAX_PER_TICKET",
        default_value_t = 20,
        global = true
    )]
    pub attachment_max_per_ticket: u64,

    /// Accepted types, comma-separated, as the file's content shows them
    /// (not as the client names them).
    #[arg(
        long,
        env = "ITSM_ATTACHMENT_TYPES",
        value_delimiter = ',',
        default_value = "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain",
        global = true
    )]
    pub attachment_types: Vec<String>,

    /// How long a download link stays valid.
    #[arg(long, env = "ITSM_ATTACHMENT_URL_TTL", default_value = "5m", value_parser = parse_duration, global = true)]
    pub attachment_url_ttl: Duration,
}

impl AttachmentSettings {
    /// The store's location: the setting, or the default beside the database.
    pub fn store_dir(&self, database: &DatabaseSettings) -> PathBuf {
        if let Some(store) = &self.attachment_store {
            let path = store.strip_prefix("file://").unwrap_or(store);
            return PathBuf::from(path);
        }
        match database.sqlite_path() {
            Some(file) => file
                .parent()
                .map(|dir| dir.join("attachments"))
                .unwrap_or_else(|| PathBuf::from("attachments")),
            None => PathBuf::from("attachments"),
        }
    }
}

/// Outbound webhooks: where they may go and how deliveries are retried.
#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    /// Where webhooks may be sent, comma-separated: `public` (any public
    /// address), networks (`10.20.0.0/16`) or addresses, host names
    /// (`hooks.internal.example`) and domains (`*.internal.example`).
    /// Loopback, private and link-local addresses are refused unless listed.
    #[arg(
        long,
        env = "ITSM_WEBHOOK_ALLOW",
        value_delimiter = ',',
        default_value = "public",
        global = true
    )]
    pub webhook_allow: Vec<String>,

    /// How long one delivery attempt may take, connecting included.
    #[arg(long, env = "ITSM_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub webhook_timeout: Duration,

    /// How long failed deliveries are retried (with exponential backoff and
    /// jitter) before the endpoint is marked failing and paused.
    #[arg(long, env = "ITSM_WEBHOOK_RETRY_FOR", default_value = "24h", value_parser = parse_duration, global = true)]
    pub webhook_retry_for: Duration,

    /// The wait after the first failure; it doubles with each one after.
    #[arg(long, env = "ITSM_WEBHOOK_RETRY_BASE", default_value = "5s", value_parser = parse_duration, global = true)]
    pub webhook_retry_base: Duration,

    /// The longest wait between two attempts.
    #[arg(long, env = "ITSM_WEBHOOK_RETRY_MAX", default_value = "1h", value_parser = parse_duration, global = true)]
    pub webhook_retry_max: Duration,

    /// How long a replica holds an endpoint while it delivers; another
    /// replica takes over an endpoint whose holder stopped after this long.
    /// At least three delivery timeouts.
    #[arg(long, env = "ITSM_WEBHOOK_LEASE", default_value = "60s", value_parser = parse_duration, global = true)]
    pub webhook_lease: Duration,

    /// How often endpoints are looked at without being woken by an event:
    /// the most a retry or another replica's change waits.
    #[arg(long, env = "ITSM_WEBHOOK_POLL", default_value = "1s", value_parser = parse_duration, global = true)]
    pub webhook_poll: Duration,

    /// Do not deliver webhooks from this replica (endpoints are still managed).
    #[arg(long, env = "ITSM_WEBHOOK_DISABLED", global = true)]
    pub webhook_disabled: bool,

    /// How long delivery attempts stay in `webhookDeliveries`; older ones
    /// are deleted as time passes (every hour, or sooner for a shorter span).
    #[arg(long, env = "ITSM_WEBHOOK_KEEP_DELIVERIES", default_value = "30d", value_parser = parse_duration, global = true)]
    pub webhook_keep_deliveries: Duration,
}

/// The HTTP listener and its guards.
#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free port.
    #[arg(
        long,
        env = "ITSM_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "ITSM_MAX_BODY_BYTES", default_value_t = 1024 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// How long a client may take to send a request's headers before the
    /// connection is closed.
    #[arg(long, env = "ITSM_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub header_timeout: Duration,

    /// How long a client may take to send a request's body before it is
    /// answered with 408.
    #[arg(long, env = "ITSM_BODY_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub body_timeout: Duration,

    /// How long in-flight requests get to finish once shutdown begins; what
    /// still runs then is cut off.
    #[arg(long, env = "ITSM_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration, global = true)]
    pub shutdown_grace: Duration,

    /// How long one HTTP request may take before it is answered with 503.
    #[arg(long, env = "ITSM_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true)]
    pub request_timeout: Duration,

    /// Web origins that may call the API from a browser (CORS): exact origins
    /// such as `https://portal.example.com`, comma-separated, or `*` for any.
    /// Unset, browsers on other origins are refused. When set, WebSocket
    /// upgrades whose `Origin` is not listed are refused too.
    #[arg(
        long,
        env = "ITSM_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = parse_origin,
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// Most subscriptions one WebSocket may run at once; more get an error.
    #[arg(
        long,
        env = "ITSM_WS_MAX_SUBSCRIPTIONS",
        default_value_t = 100,
        global = true
    )]
    pub ws_max_subscriptions: usize,

    /// Most WebSockets one signed-in viewer may have open at once on this
    /// replica; more are closed with 4429. 0 means no cap.
    #[arg(
        long,
        env = "ITSM_WS_MAX_PER_VIEWER",
        default_value_t = 50,
        global = true
    )]
    pub ws_max_per_viewer: usize,

    /// How often the server pings an open WebSocket (protocol-level ping or `ka`).
    #[arg(long, env = "ITSM_WS_KEEPALIVE", default_value = "30s", value_parser = parse_duration, global = true)]
    pub ws_keepalive: Duration,

    /// Who may run introspection queries and read `/schema.graphql`: `on`
    /// (anyone), `authenticated` (callers with a valid token) or `off`.
    #[arg(
        long,
        env = "ITSM_INTROSPECTION",
        value_enum,
        default_value = "on",
        global = true
    )]
    pub introspection: Introspection,

    /// Serve the GraphiQL explorer at `/` (`true` or `false`).
    #[arg(long, env = "ITSM_EXPLORER", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub explorer: bool,

    /// When set, `/metrics` answers only `Authorization: Bearer <this token>`.
    #[arg(
        long,
        env = "ITSM_METRICS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub metrics_token: Option<Secret>,

    /// Most connections the public listener holds at once, WebSockets
    /// included; a connection beyond them is answered 503 with `Retry-After`
    /// and closed. 0 works it out from the open-file limit, less the database
    /// pool and a reserve.
    #[arg(long, env = "ITSM_MAX_CONNECTIONS", default_value_t = 0, global = true)]
    pub max_connections: usize,

    /// Most GraphQL HTTP requests running at once; one more is answered 503
    /// with `Retry-After` at once rather than queued. 0 means no limit.
    #[arg(long, env = "ITSM_MAX_REQUESTS", default_value_t = 32, global = true)]
    pub max_requests: usize,

    /// The shortest wait suggested to a refused client (`Retry-After`); each
    /// refusal adds up to as much again at random, so that refused clients
    /// do not all return at once.
    #[arg(long, env = "ITSM_RETRY_AFTER", default_value = "2s", value_parser = parse_duration, global = true)]
    pub retry_after: Duration,

    /// A second address serving only `/healthz`, `/readyz` and `/metrics`
    /// (which then leaves the public listener), with descriptors of its own:
    /// it answers while the public listener is full.
    #[arg(long, env = "ITSM_ADMIN_LISTEN", global = true)]
    pub admin_listen: Option<SocketAddr>,

    /// How long a WebSocket may stay open without a `connection_init`.
    #[arg(long, env = "ITSM_WS_INIT_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub ws_init_timeout: Duration,
}

/// Who may run introspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Introspection {
    /// Anyone, signed in or not.
    #[default]
    On,
    /// Callers with a valid token.
    Authenticated,
    /// Nobody.
    Off,
}

/// Limits that keep one GraphQL request from consuming the service.
#[derive(Debug, Clone, Args)]
pub struct GraphqlSettings {
    /// Deepest field nesting a query may have.
    #[arg(
        long,
        env = "ITSM_GRAPHQL_MAX_DEPTH",
        default_value_t = 12,
        global = true
    )]
    pub graphql_max_depth: usize,

    /// Highest complexity score a query may have: each field counts 1 and a
    /// list's fields count once per row asked for (a page of 100 tickets with
    /// 25 fields each scores about 2,500).
    #[arg(
        long,
        env = "ITSM_GRAPHQL_MAX_COMPLEXITY",
        default_value_t = 5000,
        global = true
    )]
    pub graphql_max_complexity: usize,

    /// Deepest nesting of braces, brackets and parentheses in a query
    /// (selection sets, arguments, input objects, lists, directives, counted
    /// through fragments), and of the JSON variables. Checked before parsing.
    #[arg(
        long,
        env = "ITSM_GRAPHQL_MAX_NESTING",
        default_value_t = 32,
        global = true
    )]
    pub graphql_max_nesting: usize,

    /// Most lexical tokens in one query document, and most values in its variables.
    #[arg(
        long,
        env = "ITSM_GRAPHQL_MAX_TOKENS",
        default_value_t = 10_000,
        global = true
    )]
    pub graphql_max_tokens: usize,

    /// Most items in any one list argument or list variable (filters, ids).
    #[arg(
        long,
        env = "ITSM_GRAPHQL_MAX_LIST",
        default_value_t = 100,
        global = true
    )]
    pub graphql_max_list: usize,

    /// Cost points each caller (a signed-in person, or an anonymous address)
    /// may spend a minute on this replica, all of them available at once; a
    /// request's points are its complexity price. 0 turns the limit off.
    #[arg(
        long,
        env = "ITSM_RATE_LIMIT",
        default_value_t = 200_000,
        global = true
    )]
    pub rate_limit: u32,

    /// Most SQL statements the reads of one request (or one subscription
    /// event) may run; a mutation's own transaction is counted in
    /// `extensions.cost` but not refused.
    #[arg(
        long,
        env = "ITSM_REQUEST_MAX_STATEMENTS",
        default_value_t = 100,
        global = true
    )]
    pub request_max_statements: u64,

    /// Most rows one request (or one subscription event) may read.
    #[arg(
        long,
        env = "ITSM_REQUEST_MAX_ROWS",
        default_value_t = 10_000,
        global = true
    )]
    pub request_max_rows: u64,

    /// Most pooled connections one request may use at once (its share of the pool).
    #[arg(
        long,
        env = "ITSM_REQUEST_MAX_CONNECTIONS",
        default_value_t = 2,
        global = true
    )]
    pub request_max_connections: usize,

    /// Most operations in one batched HTTP request; 1 turns batching off.
    #[arg(
        long,
        env = "ITSM_GRAPHQL_MAX_BATCH",
        default_value_t = 10,
        global = true
    )]
    pub graphql_max_batch: usize,

    /// Persisted queries: `auto` (Apollo's automatic persisted queries: a
    /// client sends a query's SHA-256 and registers the text once), `off`
    /// (hashes are refused with `PERSISTED_QUERY_NOT_SUPPORTED`), or `only`
    /// (an allow-list: only the operations of the manifest run).
    #[arg(
        long,
        env = "ITSM_PERSISTED_QUERIES",
        value_enum,
        default_value = "auto",
        global = true
    )]
    pub persisted_queries: PersistedQueries,

    /// A manifest of known operations (Apollo's persisted-query manifest, or
    /// a JSON object of id to query text), preloaded so that its ids run
    /// without registration; required by `--persisted-queries only`.
    #[arg(long, env = "ITSM_PERSISTED_QUERY_MANIFEST", global = true)]
    pub persisted_query_manifest: Option<PathBuf>,

    /// Most registered query texts this replica keeps (least recently used
    /// go first; a client whose hash was dropped registers it again).
    #[arg(
        long,
        env = "ITSM_PERSISTED_QUERY_CACHE",
        default_value_t = 2000,
        global = true
    )]
    pub persisted_query_cache: usize,
}

/// How persisted queries are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum PersistedQueries {
    /// Automatic persisted queries, and full queries as well.
    #[default]
    Auto,
    /// Full queries only.
    Off,
    /// Only the manifest's operations, by id or by their exact text.
    Only,
}

/// The signing algorithms the service accepts: one with a static key, the
/// configured list with an identity provider's key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256 and a shared secret.
    Hs256,
    /// RSA PKCS#1 v1.5 with SHA-256 and a PEM public key.
    Rs256,
    /// RSA-PSS with SHA-256 and a PEM public key.
    Ps256,
    /// ECDSA P-256 with SHA-256 and a PEM public key.
    Es256,
    /// Ed25519 and a PEM public key.
    #[value(name = "EdDSA")]
    EdDsa,
}

impl JwtAlgorithm {
    /// The algorithm as jsonwebtoken names it.
    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Hs256 => jsonwebtoken::Algorithm::HS256,
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Ps256 => jsonwebtoken::Algorithm::PS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// How tokens are checked.
#[derive(Debug, Clone, Args)]
pub struct JwtSettings {
    /// The one accepted algorithm with a static key (a key set has
    /// `ITSM_JWKS_ALGORITHMS`).
    #[arg(
        long,
        env = "ITSM_JWT_ALGORITHM",
        value_enum,
        ignore_case = true,
        default_value = "HS256",
        global = true
    )]
    pub jwt_algorithm: JwtAlgorithm,

    /// HS256 shared secret, at least 32 bytes.
    #[arg(long, env = "ITSM_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<Secret>,

    /// RS256/PS256/ES256/EdDSA public key: a PEM file path, or the PEM text itself.
    #[arg(long, env = "ITSM_JWT_PUBLIC_KEY", global = true)]
    pub jwt_public_key: Option<String>,

    /// The matching private key (PEM file path or text), used only by `itsm token`.
    #[arg(
        long,
        env = "ITSM_JWT_PRIVATE_KEY",
        hide_env_values = true,
        global = true
    )]
    pub jwt_private_key: Option<Secret>,

    /// Required `iss`; not checked when absent.
    #[arg(long, env = "ITSM_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// Accepted `aud` values, comma-separated; not checked when absent.
    #[arg(long, env = "ITSM_JWT_AUDIENCE", value_delimiter = ',', global = true)]
    pub jwt_audience: Vec<String>,

    /// Claims holding role names, comma-separated: names, or dotted paths
    /// such as `realm_access.roles` (Keycloak), `resource_access.itsm.roles`,
    /// `groups` (Okta) or a namespaced `https://itsm.example.com/roles`
    /// (Auth0); the names of all of them count. By default `role`, or `roles`
    /// when `role` is absent (Entra ID app roles).
    #[arg(
        long,
        env = "ITSM_JWT_ROLE_CLAIM",
        value_delimiter = ',',
        global = true
    )]
    pub jwt_role_claim: Vec<String>,

    /// The identity provider's role names for ours, comma-separated
    /// `name=ROLE` pairs (`itsm-agent=AGENT,helpdesk=AGENT,itsm-admin=ADMIN`),
    /// matched ignoring case. When set, only mapped names count.
    #[arg(long, env = "ITSM_JWT_ROLE_MAP", value_delimiter = ',', global = true)]
    pub jwt_role_map: Vec<String>,

    /// The role of a token that names no known role: `requester`,
    /// `integration`, `agent`, `manager`, `admin`, or `none` to refuse it.
    #[arg(
        long,
        env = "ITSM_JWT_DEFAULT_ROLE",
        default_value = "requester",
        global = true
    )]
    pub jwt_default_role: String,

    /// Clock skew tolerated on `exp` and `nbf`.
    #[arg(long, env = "ITSM_JWT_LEEWAY", default_value = "30s", value_parser = parse_duration, global = true)]
    pub jwt_leeway: Duration,

    /// An identity provider's JSON Web Key Set: tokens are checked with the
    /// key their `kid` names, fetched and cached (instead of a static key).
    #[arg(long, env = "ITSM_JWT_JWKS_URL", global = true)]
    pub jwt_jwks_url: Option<String>,

    /// An OpenID Connect issuer: its `/.well-known/openid-configuration`
    /// names the key set, and tokens must carry it as `iss` (unless
    /// `ITSM_JWT_ISSUER` says otherwise).
    #[arg(long, env = "ITSM_OIDC_ISSUER", global = true)]
    pub oidc_issuer: Option<String>,

    /// The algorithms accepted with a key set, comma-separated: `RS256`,
    /// `PS256`, `ES256`, `EdDSA`. A key that names its algorithm is used
    /// only with that one.
    #[arg(
        long,
        env = "ITSM_JWKS_ALGORITHMS",
        value_enum,
        ignore_case = true,
        value_delimiter = ',',
        default_value = "RS256",
        global = true
    )]
    pub jwks_algorithms: Vec<JwtAlgorithm>,

    /// The shortest time a fetched key set is kept (a smaller
    /// `Cache-Control: max-age` is raised to it), and the least time between
    /// two fetches, so unknown `kid`s cannot make the service hammer the
    /// identity provider.
    #[arg(long, env = "ITSM_JWKS_CACHE_MIN", default_value = "1m", value_parser = parse_duration, global = true)]
    pub jwks_cache_min: Duration,

    /// The longest time a fetched key set is kept before it is fetched
    /// again (a larger `max-age` is lowered to it; none means this).
    #[arg(long, env = "ITSM_JWKS_CACHE_MAX", default_value = "1h", value_parser = parse_duration, global = true)]
    pub jwks_cache_max: Duration,
}

/// Log output.
#[derive(Debug, Clone, Args)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log collectors.
    #[arg(
        long,
        env = "ITSM_LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,

    /// Filter in `tracing` syntax, such as `info` or `itsm=debug,info`.
    #[arg(long, env = "ITSM_LOG", default_value = "info", global = true)]
    pub log: String,

    /// An OTLP/HTTP collector's base URL: traces go to its `/v1/traces`.
    /// Unset: no traces.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// The traces URL in full (used as given; wins over the base URL).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", global = true)]
    pub otel_exporter_otlp_traces_endpoint: Option<String>,

    /// `http/protobuf` or `http/json` (gRPC is not built in: point at the
    /// collector's HTTP port, 4318 by convention).
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        default_value = "http/protobuf",
        value_parser = parse_otlp_protocol,
        global = true
    )]
    pub otel_exporter_otlp_protocol: OtlpProtocol,

    /// The protocol for traces only (wins over `OTEL_EXPORTER_OTLP_PROTOCOL`).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", value_parser = parse_otlp_protocol, global = true)]
    pub otel_exporter_otlp_traces_protocol: Option<OtlpProtocol>,

    /// `service.name` on every span.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "itsm", global = true)]
    pub otel_service_name: String,
}

impl LogSettings {
    /// Where traces are sent, when anywhere: the traces URL as given, else
    /// the base URL with `/v1/traces`.
    pub fn traces_endpoint(&self) -> Option<String> {
        let set = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        set(&self.otel_exporter_otlp_traces_endpoint).or_else(|| {
            set(&self.otel_exporter_otlp_endpoint)
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        })
    }

    /// The encoding of exported traces.
    pub fn traces_protocol(&self) -> OtlpProtocol {
        self.otel_exporter_otlp_traces_protocol
            .unwrap_or(self.otel_exporter_otlp_protocol)
    }
}

/// How traces are encoded over OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf`, the standard default.
    Protobuf,
    /// `http/json`.
    Json,
}

fn parse_otlp_protocol(value: &str) -> Result<OtlpProtocol, String> {
    match value.trim() {
        "http/protobuf" => Ok(OtlpProtocol::Protobuf),
        "http/json" => Ok(OtlpProtocol::Json),
        "grpc" => Err(
            "gRPC is not built in: use http/protobuf and the collector's HTTP port (4318)".into(),
        ),
        other => Err(format!(
            "unknown OTLP protocol {other:?}: use http/protobuf or http/json"
        )),
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// A value that must never appear in logs or debug output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Checks one configured origin: `*`, or `scheme://host[:port]` with an
/// `http` or `https` scheme and nothing after the authority, as browsers
/// send it in `Origin`.
fn parse_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value == "*" {
        return Ok(value.to_owned());
    }
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| format!("`{value}` is not an origin: it starts with http:// or https://"))?;
    let host_ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok {
        return Err(format!(
            "`{value}` is not an origin: scheme, host and optional port only, no path or trailing slash"
        ));
    }
    Ok(value.to_ascii_lowercase())
}

/// Parses `90`, `90s`, `250ms`, `15m`, `8h` or `7d` into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s, 15m, 8h or 7d"))?;
    let seconds = match unit.trim() {
        "ms" => return Ok(Duration::from_millis(number)),
        "" | "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        "d" => number.checked_mul(86_400),
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: use ms, s, m, h or d"
            ));
        }
    };
    seconds
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        Settings::from_args(args.iter().copied()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn durations_accept_plain_seconds_and_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(28_800)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn durations_reject_junk_and_overflow() {
        assert!(parse_duration("").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = settings(&["--jwt-secret", "super-secret-value-that-is-long-enough"]);
        assert!(!format!("{s:?}").contains("super-secret"));
    }

    #[test]
    fn the_default_database_is_an_sqlite_file_in_the_working_directory() {
        let s = settings(&[]);
        assert!(!s.database.is_postgres());
        assert_eq!(s.database.sqlite_path(), Some(PathBuf::from("itsm.db")));
    }

    #[test]
    fn sqlite_paths_ignore_query_parameters_and_memory() {
        let db = |url: &str| settings(&["--database-url", url]).database;
        assert_eq!(
            db("sqlite:///tmp/x.db?mode=rwc").sqlite_path(),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(db("sqlite::memory:").sqlite_path(), None);
        assert!(db("postgres://localhost/itsm").is_postgres());
        assert_eq!(db("postgres://localhost/itsm").sqlite_path(), None);
    }

    #[test]
    fn algorithm_names_are_case_insensitive() {
        let s = settings(&["--jwt-algorithm", "rs256"]);
        assert_eq!(s.jwt.jwt_algorithm, JwtAlgorithm::Rs256);
    }

    #[test]
    fn audiences_are_comma_separated() {
        let s = settings(&["--jwt-audience", "portal,mobile"]);
        assert_eq!(s.jwt.jwt_audience, vec!["portal", "mobile"]);
    }

    #[test]
    fn origins_are_exact_scheme_host_and_port() {
        assert_eq!(
            parse_origin("https://Portal.example.com").as_deref(),
            Ok("https://portal.example.com")
        );
        assert!(parse_origin("http://localhost:5173").is_ok());
        assert!(parse_origin("*").is_ok());
        for bad in [
            "portal.example.com",
            "https://portal.example.com/",
            "https://portal.example.com/app",
            "ftp://example.com",
            "https://",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
