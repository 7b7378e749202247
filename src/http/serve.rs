//! The accept loop: each connection served by hyper with a deadline for its
//! request headers (so a client trickling them in holds no connection for
//! long), WebSocket upgrades, the client's address for the handlers, and a
//! graceful shutdown whose drain is bounded: requests still running when the
//! grace period ends are cut off rather than holding the process.
//!
//! Every connection is counted against the listener's [`Capacity`] for as
//! long as its socket is open, upgraded or not. Beyond the budget a
//! connection is answered by the refusal router (503 with `Retry-After`,
//! health probes answered) and closed. When the process runs out of file
//! descriptors anyway, accepting backs off and resumes by itself.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tower::ServiceExt;

use super::capacity::{Admission, Capacity, Slot};

/// How the listener treats slow clients and shutdown.
#[derive(Debug, Clone, Copy)]
pub struct ServeSettings {
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long in-flight requests get to finish once shutdown begins.
    pub shutdown_grace: Duration,
}

/// The first wait before accepting again after the process ran out of file
/// descriptors; it doubles while accepting keeps failing.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest wait between attempts to accept.
const LAST_BACKOFF: Duration = Duration::from_secs(1);
/// How long a refused client may take to send its request's headers.
const REFUSAL_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// One listener: what it serves, what it answers beyond its capacity, and
/// how much it holds.
pub struct Door {
    pub listener: TcpListener,
    pub router: Router,
    /// Answers connections beyond the budget.
    pub refusals: Router,
    pub capacity: Arc<Capacity>,
}

/// Serves `door` until `shutdown` completes, then drains for at most
/// `settings.shutdown_grace`.
pub async fn serve(door: Door, settings: ServeSettings, shutdown: impl Future<Output = ()> + Send) {
    let Door {
        listener,
        router,
        refusals,
        capacity,
    } = door;
    let mut connections = tokio::task::JoinSet::new();
    let (stop, stop_watch) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut backoff = FIRST_BACKOFF;
    let mut failures = 0u64;
    loop {
        // Reap finished connections so the set stays as large as the open ones.
        while connections.try_join_next().is_some() {}
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    capacity.accept_failed();
                    if client_gone(&error) {
                        // The client gave up before we accepted: nothing to wait for.
                        tracing::debug!(%error, "accept failed");
                        continue;
                    }
                    if failures == 0 {
                        let usage = capacity.usage();
                        if out_of_descriptors(&error) {
                            tracing::warn!(
                                %error,
                                connections = usage.connections,
                                websockets = usage.websockets,
                                "out of file descriptors: accepting again with back-off"
                            );
                        } else {
                            tracing::warn!(%error, "accept failed: trying again with back-off");
                        }
                    }
                    failures += 1;
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut shutdown => break,
                    }
                    backoff = (backoff * 2).min(LAST_BACKOFF);
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if failures > 0 {
            tracing::info!(failures, "accepting again after failures to accept");
            failures = 0;
            backoff = FIRST_BACKOFF;
        }
        let slot = match capacity.admit() {
            Admission::Serve(slot) => slot,
            Admission::Refuse(slot) => {
                connections.spawn(refuse(stream, slot, refusals.clone()));
                continue;
            }
            Admission::Drop => {
                tracing::debug!("connection closed unanswered: the listener is full");
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = Counted {
            stream,
            _slot: slot,
        };
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

/// Answers one request on a connection beyond the budget, then closes it.
async fn refuse(stream: TcpStream, slot: Slot, refusals: Router) {
    let _ = stream.set_nodelay(true);
    let stream = Counted {
        stream,
        _slot: slot,
    };
    let service = refusals.map_request(|request: hyper::Request<Incoming>| request.map(Body::new));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    if let Err(error) = connection.await {
        tracing::debug!(%error, "refused connection ended with an error");
    }
}

/// True for the errors that mean the process or the system has no file
/// descriptor left for a new socket.
fn out_of_descriptors(error: &io::Error) -> bool {
    // EMFILE (24) and ENFILE (23) on Linux and the BSDs; ENOBUFS and ENOMEM
    // when the kernel has no memory for the socket.
    matches!(error.raw_os_error(), Some(23 | 24 | 105 | 12))
        || error.kind() == io::ErrorKind::OutOfMemory
}

/// True for errors about one connection that are over once reported.
fn client_gone(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// A socket counted against the listener's capacity for as long as it is
/// open: the slot travels with it into an upgraded WebSocket.
struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
