//! Connect, migrate, build the schema and router, bind, serve, shut down.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    auth::{Authenticator, JwtKeys, KeySource},
    config::Settings,
    db::{Db, RequestBudget},
    events::{self, bus::EventBus},
    graphql::{self, Limits, persisted::PersistedStore},
    http::{
        self, AppState,
        capacity::{self as budget, Capacity},
        serve::Door,
    },
};

/// Connections the admin listener holds at once.
const ADMIN_CONNECTIONS: usize = 32;

/// A bound, ready-to-serve instance of the service.
pub struct Application {
    door: Door,
    admin: Option<Door>,
    db: Db,
    address: SocketAddr,
    admin_address: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    shutdown: tokio::sync::watch::Sender<bool>,
    serve: http::serve::ServeSettings,
}

impl Application {
    /// Connects to the database, applies pending migrations (unless turned
    /// off), loads the JWT key and binds the listener. Port 0 picks a free port;
    /// [`Application::address`] tells which.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let keys = JwtKeys::load(&settings)?;
        match keys.source() {
            KeySource::Configured => {}
            KeySource::KeySet(from) => {
                tracing::info!(%from, "tokens are checked with the identity provider's key set");
            }
            KeySource::DevelopmentFile(path) => tracing::warn!(
                path = %path.display(),
                "no JWT key configured: using a generated DEVELOPMENT secret; \
                 mint tokens with `itsm token`, and configure a real key for production"
            ),
            KeySource::Ephemeral => tracing::warn!(
                "no JWT key configured: using a DEVELOPMENT secret that lives only in this process"
            ),
        }
        let graphql_settings = &settings.graphql;
        let persisted = Arc::new(PersistedStore::new(
            graphql_settings.persisted_queries,
            graphql_settings.persisted_query_manifest.as_deref(),
            graphql_settings.persisted_query_cache,
        )?);
        let db = Db::connect(&settings.database).await?;
        if settings.database.no_migrate {
            tracing::info!("not applying migrations (--no-migrate)");
        } else {
            db.migrate().await?;
        }
        let limits = Limits::from_settings(&settings);
        let mut collectors: Vec<Box<dyn prometheus_client::collector::Collector>> =
            vec![Box::new(db.collector())];
        if let Some(key_set) = keys.key_set_stats() {
            collectors.push(Box::new(key_set));
        }
        let metrics = crate::metrics::Metrics::with_collectors(collectors);
        let bus = EventBus::with_stats(settings.events.ws_buffer, metrics.events());
        let mut tasks =
            events::pump::spawn(db.background(), bus.clone(), settings.events.event_poll);
        tasks.push(events::sla::spawn(
            db.background(),
            settings.events.sla_sweep,
            metrics.sweeps(),
        ));
        let dispatcher = crate::webhooks::Dispatcher::new(&settings.webhooks, metrics.webhooks())?;
        let files =
            crate::attachments::Files::open(&settings.attachments, &settings.database, &db)?;
        tasks.push(crate::attachments::service::spawn_sweeper(
            db.background(),
            files.clone(),
        ));
        tasks.extend(dispatcher.spawn(db.background(), &bus));
        let budget = RequestBudget {
            max_concurrent: settings.graphql.request_max_connections.max(1),
            max_statements: settings.graphql.request_max_statements.max(1),
            max_rows: settings.graphql.request_max_rows.max(1),
        };
        let schema = graphql::build_schema(
            limits,
            budget,
            graphql::Shared {
                db: db.clone(),
                bus: bus.clone(),
                persisted: persisted.clone(),
                metrics: metrics.clone(),
                dispatcher,
                files: files.clone(),
            },
            settings.dev,
        );
        let capacity = connection_capacity(&settings);
        let (shutdown, shutdown_watch) = tokio::sync::watch::channel(false);
        let state = AppState {
            schema,
            db: db.clone(),
            authenticator: Authenticator::new(Arc::new(keys), db.clone()),
            settings: Arc::new(settings.http.clone()),
            max_batch: settings.graphql.graphql_max_batch,
            sockets: Arc::default(),
            capacity: capacity.clone(),
            bus,
            multiplexer: Arc::default(),
            limits,
            persisted,
            metrics,
            alert_requester: settings.alert_requester.as_str().into(),
            files,
            shutdown: shutdown_watch,
            origins: Arc::new(http::cors::Origins::from_setting(
                &settings.http.cors_origins,
            )?),
        };
        let listener = TcpListener::bind(settings.http.listen)
            .await
            .with_context(|| format!("could not listen on {}", settings.http.listen))?;
        let address = listener.local_addr().context("no local address")?;
        let (admin, admin_address) = match settings.http.admin_listen {
            Some(listen) => {
                let listener = TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("could not listen on {listen} (admin)"))?;
                let address = listener.local_addr().context("no local address")?;
                let router = http::admin_router(state.clone());
                let door = Door {
                    listener,
                    refusals: router.clone(),
                    router,
                    capacity: Capacity::small(ADMIN_CONNECTIONS),
                };
                (Some(door), Some(address))
            }
            None => (None, None),
        };
        let door = Door {
            listener,
            router: http::router(state),
            refusals: http::refusal_router(capacity.clone()),
            capacity,
        };
        Ok(Self {
            door,
            admin,
            db,
            address,
            admin_address,
            tasks,
            shutdown,
            serve: http::serve::ServeSettings {
                header_timeout: settings.http.header_timeout,
                shutdown_grace: settings.http.shutdown_grace,
            },
        })
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The admin listener's address, when one is configured.
    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin_address
    }

    /// Serves until SIGTERM or Ctrl-C, letting in-flight requests finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, letting in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.address, "listening on http://{}", self.address);
        let sockets = self.shutdown;
        let shutdown = async move {
            shutdown.await;
            // WebSockets are not HTTP requests the server waits for: tell them.
            let _ = sockets.send(true);
        };
        // The admin listener answers until the public one has drained.
        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin = self.admin.map(|door| {
            let address = self.admin_address;
            tracing::info!(admin_address = ?address, "admin listener: health and metrics");
            tokio::spawn(http::serve::serve(door, self.serve, async move {
                let _ = admin_stopped.await;
            }))
        });
        http::serve::serve(self.door, self.serve, shutdown).await;
        let _ = admin_stop.send(());
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        for task in &self.tasks {
            task.abort();
        }
        self.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Raises the open-file limit, works out the public listener's connection
/// budget and logs it.
fn connection_capacity(settings: &Settings) -> Arc<Capacity> {
    let http = &settings.http;
    // SQLite has a writer beside the pooled readers.
    let pool = settings.database.db_max_connections.saturating_add(1);
    let open_files = budget::raise_open_file_limit();
    let derived = open_files.map(|limit| budget::connection_budget(limit, pool));
    let connections = match (http.max_connections, derived) {
        (0, Some(derived)) => derived,
        (0, None) => 1024,
        (configured, derived) => {
            if derived.is_some_and(|derived| configured > derived) {
                tracing::warn!(
                    configured,
                    derived,
                    open_files,
                    "max-connections is more than the open-file limit leaves room for: \
                     expect accept failures before the budget is reached"
                );
            }
            configured
        }
    };
    let websockets = connections - budget::http_headroom(connections, http.max_requests);
    tracing::info!(
        open_files,
        connections,
        websockets,
        requests = http.max_requests,
        "connection budget"
    );
    Capacity::new(connections, websockets, http.max_requests, http.retry_after)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
