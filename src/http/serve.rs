//! The accept loop: each connection served by hyper with a deadline for its
//! request headers (so a client trickling them in holds no connection for
//! long), WebSocket upgrades, the client's address for the handlers, and a
//! graceful shutdown whose drain is bounded: requests still running when the
//! grace period ends are cut off rather than holding the process.

use std::{future::Future, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch};
use tower::ServiceExt;

/// How the listener treats slow clients and shutdown.
#[derive(Debug, Clone, Copy)]
pub struct ServeSettings {
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long in-flight requests get to finish once shutdown begins.
    pub shutdown_grace: Duration,
}

/// How long to wait before accepting again after the process ran out of
/// file descriptors (or another accept error).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` completes, then drains for
/// at most `settings.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServeSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut connections = tokio::task::JoinSet::new();
    let (stop, stop_watch) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // Reap finished connections so the set stays as large as the open ones.
        while connections.try_join_next().is_some() {}
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed; retrying shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |request: hyper::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(remote));
                request
            });
        let service = TowerToHyperService::new(service);
        let mut stop = stop_watch.clone();
        connections.spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(settings.header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(error = %error, "connection ended with an error");
                        }
                        break;
                    }
                    changed = stop.changed(), if !*stop.borrow() => {
                        if changed.is_err() || *stop.borrow() {
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(settings.shutdown_grace, drain)
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?settings.shutdown_grace,
            left = connections.len(),
            "connections still busy at the end of the shutdown grace period are cut off"
        );
        connections.abort_all();
    }
}
