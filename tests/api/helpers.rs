//! Spawns the real server on port 0 against a fresh database (a new SQLite file,
//! or a new PostgreSQL database per test) and talks to it over real sockets.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex, Once,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use itsm::{
    auth::{Claims, JwtKeys, Role},
    config::Settings,
    startup::Application,
};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

/// The HS256 secret test servers use unless a test configures another key.
pub const TEST_SECRET: &str = "integration-test-secret-0123456789abcdef";

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each named
/// `async fn name(backend: Backend)`, in modules `sqlite` and `postgres`. The
/// PostgreSQL ones are ignored unless asked for (`cargo test -- --include-ignored`
/// with `ITSM_TEST_POSTGRES_URL` set): a run without a server shows them as
/// ignored, never as passed.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs ITSM_TEST_POSTGRES_URL"]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )+
        }
    };
}

/// The PostgreSQL server for tests, from `ITSM_TEST_POSTGRES_URL`. The tests
/// that need it are `#[ignore]`d by default; run with `--include-ignored`
/// and no URL, they fail rather than pass without having run.
pub fn postgres_url() -> String {
    match std::env::var("ITSM_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "this test needs PostgreSQL: set ITSM_TEST_POSTGRES_URL=postgres://user@host:5432/postgres"
        ),
    }
}

/// Settings as the binary would parse them from `args`.
pub fn settings(args: &[&str]) -> Settings {
    Settings::from_args(args.iter().copied()).unwrap_or_else(|e| panic!("bad test settings: {e}"))
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info,itsm=debug")
                .with_test_writer()
                .try_init();
        }
    });
}

/// A fresh, empty database of the given backend.
pub struct TestDatabase {
    pub url: String,
    dir: PathBuf,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("itsm-test-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.join("itsm.db").display()),
                dir,
                postgres: None,
            },
            Backend::Postgres => {
                let admin = postgres_url();
                let name = format!("itsm_test_{id}");
                let conn = Database::connect(&admin)
                    .await
                    .expect("connect to PostgreSQL");
                conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                Self {
                    url: with_database(&admin, &name),
                    dir,
                    postgres: Some((admin, name)),
                }
            }
        }
    }

    /// Another handle on the same database, for a second server; dropping it
    /// leaves the database alone.
    pub fn shared(other: &TestDatabase) -> Self {
        let dir = std::env::temp_dir().join(format!("itsm-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self {
            url: other.url.clone(),
            dir,
            postgres: None,
        }
    }

    /// A separate connection for the test to look at or tamper with the data.
    pub async fn connect(&self) -> DatabaseConnection {
        Database::connect(&self.url)
            .await
            .expect("connect to test database")
    }

    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((admin, name)) = self.postgres.take() {
            // Drop runs inside the test's runtime; use a thread with its own.
            let _ = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async move {
                    if let Ok(conn) = Database::connect(&admin).await {
                        let _ = conn
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub address: SocketAddr,
    /// The admin listener, when `--admin-listen` was given.
    pub admin_address: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    keys: JwtKeys,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the server on a fresh database of `backend` with the test secret.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// Like [`spawn_app`], with extra command-line arguments.
pub async fn spawn_app_with(backend: Backend, args: &[&str]) -> TestApp {
    let db = TestDatabase::create(backend).await;
    spawn_on(db, args).await
}

/// Starts the server on `db`. Unless `args` configure a key, the test secret is used.
pub async fn spawn_on(db: TestDatabase, args: &[&str]) -> TestApp {
    let url = db.url.clone();
    spawn_on_url(db, &url, args).await
}

/// Starts the server on `db`, reaching it through `url` (a proxy, say).
pub async fn spawn_on_url(db: TestDatabase, url: &str, args: &[&str]) -> TestApp {
    init_logs();
    let mut argv = vec!["--database-url", url, "--listen", "127.0.0.1:0"];
    if !args.iter().any(|a| a.starts_with("--jwt")) {
        argv.extend(["--jwt-secret", TEST_SECRET]);
    }
    argv.extend_from_slice(args);
    let settings = settings(&argv);
    let keys = JwtKeys::load(&settings).expect("test keys");
    let app = Application::build(settings)
        .await
        .expect("the server starts");
    let address = app.address();
    let admin_address = app.admin_address();
    let (shutdown, stopped) = oneshot::channel();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        admin_address,
        client: reqwest::Client::new(),
        db,
        keys,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.address)
    }

    /// A token for `subject` with `role`, signed with the server's key.
    pub fn token(&self, subject: &str, role: Role) -> String {
        self.token_for(&Claims {
            subject: subject.into(),
            email: Some(format!("{subject}@example.com")),
            name: Some(format!("Test {subject}")),
            role,
        })
    }

    /// A token for `subject` that expires after `seconds`.
    pub fn short_token(&self, subject: &str, role: Role, seconds: u64) -> String {
        let claims = Claims {
            subject: subject.into(),
            email: None,
            name: None,
            role,
        };
        self.keys
            .mint(&claims, Duration::from_secs(seconds))
            .expect("mint a token")
    }

    /// Waits until at least `count` subscriptions follow the event stream
    /// (as `/metrics` tells): from then on they receive every new event.
    pub async fn wait_for_subscriptions(&self, count: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let open = self.metric("itsm_subscriptions_open").await;
            if open >= count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {open} of {count} subscriptions registered"
            );
            tokio::task::yield_now().await;
        }
    }

    /// Starts shutting the server down, as SIGTERM would.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts the server down and waits until `run_until` has returned.
    pub async fn stopped(&mut self) {
        self.begin_shutdown();
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task ends")
                .expect("the server stops cleanly");
        }
    }

    pub fn token_for(&self, claims: &Claims) -> String {
        self.keys
            .mint(claims, Duration::from_secs(600))
            .expect("mint a token")
    }

    /// POSTs a GraphQL request; returns the status and the JSON body.
    pub async fn graphql(&self, query: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.graphql_with(json!({ "query": query }), token).await
    }

    /// POSTs a raw body as JSON to `/graphql` (for bodies too deep to build as a `Value`).
    pub async fn graphql_raw(&self, body: String, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs any JSON body to `/graphql`.
    pub async fn graphql_with(&self, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url("/graphql")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The `viewer` of `token`.
    pub async fn viewer(&self, token: &str) -> Value {
        let (status, body) = self
            .graphql(
                "{ viewer { id subject email displayName role } }",
                Some(token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["viewer"].clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// The `extensions.code` of the first error in a GraphQL response.
pub fn error_code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// Counts rows with a query on a separate connection.
pub async fn count(conn: &DatabaseConnection, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .expect("count query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

/// A TCP proxy to PostgreSQL that a test can cut and restore, to make the
/// database unreachable for the server under test.
pub struct Proxy {
    pub address: SocketAddr,
    open: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let open = Arc::new(AtomicBool::new(true));
        let stalled = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let open = open.clone();
            let stalled = stalled.clone();
            let connections = connections.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if stalled.load(Ordering::SeqCst) {
                        // Hold the connection open and never answer.
                        let task = tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            drop(inbound);
                        });
                        connections.lock().expect("lock").push(task);
                        continue;
                    }
                    if !open.load(Ordering::SeqCst) {
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().expect("lock").push(task);
                }
            }
        });
        Self {
            address,
            open,
            stalled,
            connections,
            accept,
        }
    }

    /// Breaks the open connections; new ones are accepted but never
    /// answered, as with a database that hangs.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
        self.break_open();
    }

    fn break_open(&self) {
        for task in self.connections.lock().expect("lock").drain(..) {
            task.abort();
        }
    }

    /// Refuses new connections and breaks the open ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.break_open();
    }

    pub fn restore(&self) {
        self.stalled.store(false, Ordering::SeqCst);
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The host and port of a PostgreSQL URL.
pub fn postgres_socket(url: &str) -> SocketAddr {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    host_port.parse().expect("PostgreSQL host:port")
}

/// `url` pointing at `proxy` instead of the PostgreSQL server.
pub fn via_proxy(url: &str, proxy: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}{proxy}/{path}")
}

/// A signed-in test user.
#[derive(Debug, Clone)]
pub struct Person {
    pub token: String,
    /// The user's global id.
    pub id: String,
}

impl Person {
    /// The subject the person signed in with (read from their token).
    pub fn token_subject(&self) -> String {
        use base64::Engine;
        let payload = self.token.split('.').nth(1).unwrap_or_default();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap_or_default();
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|claims| claims["sub"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// Fields tests read back from tickets.
pub const TICKET_FIELDS: &str = "id number kind title status priority impact urgency version \
    createdAt queue { id name } assignee { id } requester { id } \
    sla { responseDueAt resolutionDueAt respondedAt resolvedAt responseBreached resolutionBreached paused remainingSeconds }";

impl TestApp {
    /// Signs `subject` in with `role` (provisioning the user) and returns them.
    pub async fn person(&self, subject: &str, role: Role) -> Person {
        let token = self.token(subject, role);
        let id = self.viewer(&token).await["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        Person { token, id }
    }

    /// [`TestApp::person`] with an owned subject.
    pub async fn person_owned(&self, subject: String, role: Role) -> Person {
        self.person(&subject, role).await
    }

    /// Runs an operation that must succeed; returns `data`.
    pub async fn ok(&self, who: &Person, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .graphql_with(
                json!({"query": query, "variables": variables}),
                Some(&who.token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Runs an operation that must fail; returns its first error.
    pub async fn fails(&self, who: &Person, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .graphql_with(
                json!({"query": query, "variables": variables}),
                Some(&who.token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_some(), "expected an error: {body}");
        body["errors"][0].clone()
    }

    /// Creates a team with a queue of the same name and the given members;
    /// returns `(team id, queue id)`.
    pub async fn team_with_queue(
        &self,
        admin: &Person,
        name: &str,
        members: &[&Person],
    ) -> (String, String) {
        let team = self
            .ok(
                admin,
                "mutation($name: String!) { createTeam(input: {name: $name}) { team { id } } }",
                json!({"name": name}),
            )
            .await["createTeam"]["team"]["id"]
            .as_str()
            .expect("team id")
            .to_owned();
        for member in members {
            self.ok(
                admin,
                "mutation($t: ID!, $u: ID!) { addTeamMember(input: {teamId: $t, userId: $u}) { team { id } } }",
                json!({"t": team, "u": member.id}),
            )
            .await;
        }
        let queue = self
            .ok(
                admin,
                "mutation($name: String!, $team: ID!) { createQueue(input: {name: $name, teamId: $team}) { queue { id } } }",
                json!({"name": name, "team": team}),
            )
            .await["createQueue"]["queue"]["id"]
            .as_str()
            .expect("queue id")
            .to_owned();
        (team, queue)
    }

    /// Reports an incident and returns it with [`TICKET_FIELDS`].
    pub async fn incident(
        &self,
        who: &Person,
        title: &str,
        impact: &str,
        urgency: &str,
        queue: Option<&str>,
    ) -> Value {
        let query = format!(
            "mutation($input: CreateIncidentInput!) {{ createIncident(input: $input) {{ ticket {{ {TICKET_FIELDS} }} }} }}"
        );
        let input = json!({"title": title, "impact": impact, "urgency": urgency, "queueId": queue});
        self.ok(who, &query, json!({"input": input})).await["createIncident"]["ticket"].clone()
    }

    /// The SQL statements the server has run for requests so far, from `/metrics`.
    pub async fn statements(&self) -> u64 {
        self.metric("itsm_db_statements_total{source=\"requests\"}")
            .await
    }

    /// One sample of `/metrics`, by its name with labels.
    pub async fn metric(&self, sample: &str) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        metric_value(&text, sample)
    }
}

/// One sample's value in Prometheus text, by its name with labels.
pub fn metric_value(metrics: &str, sample: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse::<f64>().ok())?
        })
        .unwrap_or_else(|| panic!("no {sample} in {metrics}")) as u64
}

/// The `extensions.field` of an error.
pub fn error_field(error: &Value) -> Option<&str> {
    error["extensions"]["field"].as_str()
}

/// The `extensions.code` of an error.
pub fn code(error: &Value) -> Option<&str> {
    error["extensions"]["code"].as_str()
}

/// Moves a ticket's timeline `hours` into the past, as if it had been created
/// that long ago: creation time and both SLA due times shift together.
pub async fn age_ticket(app: &TestApp, global_id: &str, hours: i64) {
    age_ticket_by(app, global_id, chrono::Duration::hours(hours)).await;
}

/// [`age_ticket`] by any span.
pub async fn age_ticket_by(app: &TestApp, global_id: &str, shift: chrono::Duration) {
    use itsm::entity::tickets;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
    let conn = app.db.connect().await;
    let id = crate::tickets::id_of(global_id);
    let ticket = tickets::Entity::find_by_id(id)
        .one(&conn)
        .await
        .expect("read ticket")
        .expect("ticket exists");
    let mut row: tickets::ActiveModel = ticket.clone().into();
    row.created_at = Set(ticket.created_at - shift);
    row.response_due_at = Set(ticket.response_due_at - shift);
    row.resolution_due_at = Set(ticket.resolution_due_at - shift);
    if ticket.queue_due_at != itsm::ticket::rules::sla::NO_DUE {
        row.queue_due_at = Set(ticket.queue_due_at - shift);
    }
    row.response_warn_at = Set(ticket.response_warn_at.map(|t| t - shift));
    row.resolution_warn_at = Set(ticket.resolution_warn_at.map(|t| t - shift));
    row.update(&conn).await.expect("age ticket");
}

/// Sets one time column of a ticket, written as the service writes times (a
/// bound value, to the microsecond): SQLite compares times as text, so a
/// hand-formatted literal could sort apart from the same instant written by
/// the service.
pub async fn set_ticket_time(
    app: &TestApp,
    id: i64,
    column: &str,
    at: chrono::DateTime<chrono::Utc>,
) {
    use chrono::SubsecRound;
    use itsm::entity::tickets;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let conn = app.db.connect().await;
    let column: tickets::Column = column.parse().expect("a tickets column");
    tickets::Entity::update_many()
        .col_expr(column, Expr::value(at.trunc_subsecs(6)))
        .filter(tickets::Column::Id.eq(id))
        .exec(&conn)
        .await
        .expect("set a ticket time");
}

/// A GraphQL WebSocket client speaking either protocol.
pub struct WsClient(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
);

const WS_TIMEOUT: Duration = Duration::from_secs(10);

impl WsClient {
    /// Connects to `/graphql` offering `protocol`.
    pub async fn connect(app: &TestApp, protocol: &str) -> Self {
        Self::connect_to(&app.ws_url(), protocol).await
    }

    /// Connects to a WebSocket URL offering `protocol`.
    pub async fn connect_to(url: &str, protocol: &str) -> Self {
        use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).expect("header"),
        );
        let (stream, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connected");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol)
        );
        Self(stream)
    }

    /// Connects with a tiny receive buffer, so that a client that stops
    /// reading soon makes the server's writes wait.
    pub async fn connect_slow(app: &TestApp, protocol: &str) -> Self {
        use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("small buffer");
        let stream = socket.connect(app.address).await.expect("connect");
        let mut request = app.ws_url().into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).expect("header"),
        );
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
        let (stream, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .expect("handshake");
        Self(stream)
    }

    /// Connects with graphql-transport-ws and completes `connection_init`.
    pub async fn signed_in(app: &TestApp, who: &Person) -> Self {
        Self::signed_in_at(&app.ws_url(), &who.token).await
    }

    /// Like [`WsClient::signed_in`], at any server.
    pub async fn signed_in_at(url: &str, token: &str) -> Self {
        let mut ws = Self::connect_to(url, "graphql-transport-ws").await;
        ws.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}))
            .await;
        let ack = ws.next().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws
    }

    pub async fn send(&mut self, message: Value) {
        use futures_util::SinkExt;
        self.0
            .send(tokio_tungstenite::tungstenite::Message::text(
                message.to_string(),
            ))
            .await
            .expect("sent");
    }

    /// Sends a text frame as is (for JSON too deep to build as a `Value`).
    pub async fn send_text(&mut self, text: String) {
        use futures_util::SinkExt;
        self.0
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .expect("sent");
    }

    /// Starts operation `id` (graphql-transport-ws).
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}))
            .await;
    }

    /// The next JSON message within `wait`, pings and keep-alives included.
    pub async fn raw_within(&mut self, wait: Duration) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = match tokio::time::timeout(wait, self.0.next()).await {
                Err(_) => return None,
                Ok(message) => message.expect("stream open").expect("a frame"),
            };
            match message {
                Message::Text(text) => return Some(serde_json::from_str(&text).expect("json")),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The next JSON message within `wait`, or `None`; pings are answered
    /// and skipped. Fails on a close.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = match tokio::time::timeout(wait, self.0.next()).await {
                Err(_) => return None,
                Ok(message) => message.expect("stream open").expect("a frame"),
            };
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("json");
                    if value["type"] == "ping" {
                        self.send(json!({"type": "pong"})).await;
                        continue;
                    }
                    if value["type"] == "ka" {
                        continue;
                    }
                    return Some(value);
                }
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The next JSON message; fails on a close or after ten seconds.
    pub async fn next(&mut self) -> Value {
        self.next_within(WS_TIMEOUT)
            .await
            .expect("a message in time")
    }

    /// The next `next` payload of operation `id`, skipping other operations.
    pub async fn next_of(&mut self, id: &str) -> Value {
        loop {
            let message = self.next().await;
            if message["id"] == id {
                return message;
            }
        }
    }

    /// The type of the next message (`Some("connection_ack")`, say), or
    /// `None` when the server closes the socket instead.
    pub async fn raw_or_close(&mut self) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match tokio::time::timeout(WS_TIMEOUT, self.0.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: Value = serde_json::from_str(&text).expect("json");
                    return Some(value["type"].clone());
                }
                Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) | Err(_) => return None,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The close code the server ends the socket with, and the text messages
    /// that came before it.
    pub async fn close_code(&mut self) -> (u16, Vec<Value>) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut texts = Vec::new();
        loop {
            let message = tokio::time::timeout(WS_TIMEOUT, self.0.next())
                .await
                .expect("a close in time");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => return (frame.code.into(), texts),
                Some(Ok(Message::Text(text))) => {
                    texts.push(serde_json::from_str(&text).expect("json"));
                }
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}
