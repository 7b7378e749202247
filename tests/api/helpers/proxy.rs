//! A TCP proxy between the server and PostgreSQL that a test can cut, stall
//! and restore, and the URL plumbing to route a server through it.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

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
                        // Hold the connection open and never answer. Not a wait
                        // for an event: the hour outlasts any test, and the next
                        // cut, stall or drop of the proxy aborts the task.
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

    /// [`Proxy::cut`], returning once the broken connections are closed on
    /// both sides: from then on nothing the server sent before the cut, or
    /// PostgreSQL sends it (a `NOTIFY`, say), gets through until
    /// [`Proxy::restore`].
    pub async fn cut_and_wait(&self) {
        self.open.store(false, Ordering::SeqCst);
        let tasks: Vec<_> = self.connections.lock().expect("lock").drain(..).collect();
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // Ends once the task's sockets are dropped (cancelled or done).
            let _ = task.await;
        }
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
