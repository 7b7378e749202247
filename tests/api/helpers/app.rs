//! The server under test: starting it, signing tokens for it, sending it
//! GraphQL requests and shutting it down.

use std::{net::SocketAddr, sync::Once, time::Duration};

use itsm::{
    auth::{Claims, JwtKeys, Role},
    config::Settings,
    startup::Application,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};

use super::{Backend, TestDatabase};

/// The HS256 secret test servers use unless a test configures another key.
pub const TEST_SECRET: &str = "integration-test-secret-0123456789abcdef";

/// Settings as the binary would parse them from `args`.
pub fn settings(args: &[&str]) -> Settings {
    Settings::from_args(args.iter().copied()).unwrap_or_else(|e| panic!("bad test settings: {e}"))
}

/// A token for `subject` signed with [`TEST_SECRET`], for servers that are
/// not a [`TestApp`] (the real binary, started by a test).
pub fn test_token(subject: &str, role: Role) -> String {
    let keys = JwtKeys::load(&settings(&["--jwt-secret", TEST_SECRET])).expect("keys");
    keys.mint(
        &Claims {
            subject: subject.into(),
            email: None,
            name: None,
            role,
            grants: itsm::auth::Grants::default(),
        },
        Duration::from_secs(600),
    )
    .expect("token")
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
    let mut argv = vec!["--database-url", url];
    if !args.contains(&"--listen") {
        argv.extend(["--listen", "127.0.0.1:0"]);
    }
    if !args
        .iter()
        .any(|a| a.starts_with("--jwt") || a.starts_with("--oidc"))
    {
        argv.extend(["--jwt-secret", TEST_SECRET]);
    }
    // Files go beside the test's database, never into the checkout.
    let store = db.dir().join("attachments").display().to_string();
    if !args.contains(&"--attachment-store") {
        argv.extend(["--attachment-store", store.as_str()]);
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
            grants: itsm::auth::Grants::default(),
        })
    }

    /// A token for `subject` that expires after `seconds`.
    pub fn short_token(&self, subject: &str, role: Role, seconds: u64) -> String {
        let claims = Claims {
            subject: subject.into(),
            email: None,
            name: None,
            role,
            grants: itsm::auth::Grants::default(),
        };
        self.keys
            .mint(&claims, Duration::from_secs(seconds))
            .expect("mint a token")
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
